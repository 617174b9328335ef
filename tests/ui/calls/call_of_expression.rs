// The called function is an expression, not a name.
use fluxion::{differentiable, grad};

#[differentiable]
fn g(x: f64) -> f64 {
    x * x
}

#[grad]
fn f(x: f64) -> f64 {
    (g)(x)
}

fn main() {}
