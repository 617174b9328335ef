// A matrix indexed by one number (nalgebra's column-major linear index): fluxion asks
// for the row and the column.
use fluxion::grad;
use nalgebra::Matrix2;

#[grad]
fn f(m: &Matrix2<f64>) -> f64 {
    m[1] * m[(0, 0)]
}

fn main() {}
