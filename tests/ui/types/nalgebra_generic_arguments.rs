// `SVector` without its length.
use fluxion::grad;
use nalgebra::SVector;

#[grad]
fn f(v: SVector<f64>) -> f64 {
    v[0]
}

fn main() {}
