// `in_dims = 1` on a nalgebra matrix of several columns: matrices batch one per sample
// only (a vector, one column, batches in components as an array does).
use fluxion::vmap;
use nalgebra::SMatrix;

#[vmap(in_dims = (1, None))]
fn f(x: SMatrix<f64, 2, 3>, w: f64) -> f64 {
    x[(0, 1)] * w
}

fn main() {}
