// A function of a `DVector` returning one it does not build with `DVector::zeros(n)`: a copy of the argument.
use fluxion::jacrev;
use nalgebra::DVector;

#[jacrev]
fn f(x: &DVector<f64>) -> DVector<f64> {
    x.clone()
}

fn main() {}
