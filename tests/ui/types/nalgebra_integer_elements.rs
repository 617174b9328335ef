// A nalgebra vector of integers carries no derivative.
use fluxion::grad;
use nalgebra::SVector;

#[grad]
fn f(v: SVector<i32, 3>, x: f64) -> f64 {
    x * 2.0
}

fn main() {}
