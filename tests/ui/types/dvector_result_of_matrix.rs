// The Jacobian of a `DVector` result with respect to a `DMatrix`.
use fluxion::jacrev;
use nalgebra::{DMatrix, DVector};

#[jacrev]
fn f(m: &DMatrix<f64>, x: &DVector<f64>) -> DVector<f64> {
    let mut y = DVector::zeros(x.len());
    for i in 0..x.len() {
        y[i] = m[(i, 0)] * x[i];
    }
    y
}

fn main() {}
