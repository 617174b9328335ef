// A field of a call result whose type fluxion cannot see: destructure it instead.
use fluxion::{differentiable, grad};

#[differentiable]
fn pair(x: f64) -> (f64, f64) {
    (x, x * x)
}

#[grad]
fn f(x: f64) -> f64 {
    pair(x).1 * 3.0
}

fn main() {}
