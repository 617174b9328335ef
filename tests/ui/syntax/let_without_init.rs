// `let` without an initializer is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let y;
    y = x * x;
    y
}

fn main() {}
