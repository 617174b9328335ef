// A cast of a call result, whose float type fluxion cannot see.
use fluxion::{differentiable, grad};

#[differentiable]
fn g(x: f64) -> f64 {
    x * x
}

#[grad]
fn f(x: f64) -> f64 {
    let y = g(x) as f32;
    y as f64
}

fn main() {}
