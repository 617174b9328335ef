// Assigning to a variable that was never declared.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    total = x * x;
    x
}

fn main() {}
