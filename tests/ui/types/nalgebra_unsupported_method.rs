use fluxion::grad;
use nalgebra::SVector;

#[grad]
fn f(x: &SVector<f64, 3>) -> f64 {
    x.amax()
}

fn main() {}
