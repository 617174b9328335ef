// A dynamically sized nalgebra matrix other than an argument (here a local's type).
use fluxion::grad;
use nalgebra::DMatrix;

#[grad]
fn f(x: f64) -> f64 {
    let m: DMatrix<f64> = DMatrix::from_element(2, 2, x);
    m[(0, 0)]
}

fn main() {}
