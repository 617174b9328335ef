use fluxion::grad;
use nalgebra::{SMatrix, SVector};

#[grad]
fn f(w: &SMatrix<f64, 3, 4>, x: &SVector<f64, 3>) -> f64 {
    (w * x).sum()
}

fn main() {}
