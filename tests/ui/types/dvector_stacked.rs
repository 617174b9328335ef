// Stacked transforms of a function of a `DVector`: one transform per function for now.
use fluxion::{grad, jacfwd};
use nalgebra::DVector;

#[jacfwd]
#[grad]
fn f(x: &DVector<f64>) -> f64 {
    x[0] * x[0]
}

fn main() {}
