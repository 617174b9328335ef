// A called function must be marked `#[differentiable]`.
use fluxion::grad;

fn square(x: f64) -> f64 {
    x * x
}

#[grad]
fn f(x: f64) -> f64 {
    square(x) * 3.0
}

fn main() {}
