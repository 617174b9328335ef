// A function of a `DVector` returning one: results of run-time length are not supported.
use fluxion::jacrev;
use nalgebra::DVector;

#[jacrev]
fn f(x: &DVector<f64>) -> DVector<f64> {
    x.clone()
}

fn main() {}
