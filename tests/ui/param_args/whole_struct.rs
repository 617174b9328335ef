use fluxion::{grad, Parameters};

#[derive(Parameters, Clone, Copy)]
struct Model {
    w: f64,
}

#[grad]
fn f(p: &Model, x: f64) -> f64 {
    let q = p;
    q.w * x
}

fn main() {}
