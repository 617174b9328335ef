// A nalgebra value built inside the body: only arguments are nalgebra values.
use fluxion::grad;
use nalgebra::{Matrix2, SVector};

#[grad]
fn f(x: f64) -> f64 {
    let v = SVector::<f64, 2>::new(x, 2.0 * x);
    v[0] * v[1]
}

// Through an alias too.
#[grad]
fn g(x: f64) -> f64 {
    let m = Matrix2::<f64>::new(x, 0.0, 0.0, x);
    m[(0, 0)]
}

fn main() {}
