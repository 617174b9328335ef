// `vmap` of a function of a `DVector`: not supported yet.
use fluxion::vmap;
use nalgebra::DVector;

#[vmap]
fn f(x: &DVector<f64>) -> f64 {
    x[0] * x[0]
}

fn main() {}
