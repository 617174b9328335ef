// `differentiable` on a function of a `DVector`: other annotated functions cannot call it.
use fluxion::differentiable;
use nalgebra::DVector;

#[differentiable]
fn f(x: &DVector<f64>) -> f64 {
    x[0] * x[0]
}

fn main() {}
