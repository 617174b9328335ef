// A batched nalgebra sample passed whole to a call: not batched yet.
use fluxion::{grad, vmap};
use nalgebra::SVector;

#[grad]
fn g(x: SVector<f64, 3>) -> f64 {
    x.norm_squared()
}

#[vmap]
fn f(x: SVector<f64, 3>) -> f64 {
    g(x) + x[0]
}

fn main() {}
