// Reverse over reverse through a function with a slice and a nalgebra argument.
use fluxion::{grad, grad_and_value};
use nalgebra::SVector;

#[grad_and_value]
fn energy(w: &SVector<f64, 2>, r: &[f64]) -> f64 {
    let mut s = 0.0;
    for k in 0..r.len() {
        s += (w[0] * r[k]).sin() * w[1];
    }
    s
}

#[grad]
fn twice(w: &SVector<f64, 2>, r: &[f64]) -> f64 {
    let (g, e) = energy_grad_and_value(w, r);
    e + g[0] * g[1]
}

fn main() {}
