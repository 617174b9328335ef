// The Hessian with respect to a `DVector` and another argument: the vector alone.
use fluxion::hessian;
use nalgebra::DVector;

#[hessian(argnums = (0, 1))]
fn f(x: &DVector<f64>, c: f64) -> f64 {
    x[0] * x[0] * c
}

fn main() {}
