// `out_dims = 1` on a nalgebra matrix of several columns: matrices come back one per
// sample only (a vector, one column, comes back in components as an array does).
use fluxion::vmap;
use nalgebra::SMatrix;

#[vmap(out_dims = 1)]
fn f(x: SMatrix<f64, 2, 2>) -> SMatrix<f64, 2, 2> {
    x * 2.0
}

fn main() {}
