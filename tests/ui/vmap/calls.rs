// `vmap` of a function that calls another annotated function.
use fluxion::{differentiable, vmap};

#[differentiable]
fn g(x: f64) -> f64 {
    x.sin()
}

#[vmap]
fn f(x: f64) -> f64 {
    g(x) * 2.0
}

fn main() {}
