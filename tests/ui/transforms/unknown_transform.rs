// A misspelt transform in the list.
use fluxion::transforms;

#[transforms(grad, hesian)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
