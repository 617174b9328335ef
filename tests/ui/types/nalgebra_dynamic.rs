// A dynamically sized nalgebra vector: fluxion differentiates statically sized ones.
use fluxion::grad;
use nalgebra::DVector;

#[grad]
fn f(v: &DVector<f64>) -> f64 {
    v[0] * v[1]
}

fn main() {}
