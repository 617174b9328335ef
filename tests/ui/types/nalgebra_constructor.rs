// nalgebra constructors that are not supported, or whose shape the path does not give.
use fluxion::grad;
use nalgebra::{Matrix2, SVector};

#[grad]
fn f(x: f64) -> f64 {
    let v: SVector<f64, 2> = SVector::zeros();
    v[0] * x
}

// A constructor other than `zeros`, `new`, `from_element`, `from_fn`.
#[grad]
fn g(x: f64) -> f64 {
    let m = Matrix2::<f64>::identity();
    m[(0, 0)] * x
}

fn main() {}
