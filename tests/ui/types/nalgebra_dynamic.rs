// A dynamically sized nalgebra matrix: `DVector` arguments are read as slices, `DMatrix`
// ones are not supported yet.
use fluxion::grad;
use nalgebra::DMatrix;

#[grad]
fn f(m: &DMatrix<f64>) -> f64 {
    m[(0, 0)] * m[(1, 0)]
}

fn main() {}
