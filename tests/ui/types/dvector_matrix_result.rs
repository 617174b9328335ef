// A function of a `DVector` returning a `DMatrix`: not a result the `DVector` form supports.
use fluxion::jacrev;
use nalgebra::{DMatrix, DVector};

#[jacrev]
fn f(x: &DVector<f64>) -> DMatrix<f64> {
    DMatrix::zeros(x.len(), 2)
}

fn main() {}
