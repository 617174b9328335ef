// A struct with a `DMatrix` field passed whole to another function: not supported yet (the
// callee's flat form would need the matrix's shape).
use fluxion::{differentiable, grad, Parameters};
use nalgebra::DMatrix;

#[derive(Parameters, Clone)]
struct Model {
    s: f64,
    #[param(buffer)]
    m: DMatrix<f64>,
}

#[differentiable]
fn inner(p: &Model, x: f64) -> f64 {
    p.s * x
}

#[grad]
fn outer(p: &Model, x: f64) -> f64 {
    inner(p, x) * p.m[(0, 0)]
}

fn main() {}
