use fluxion::{grad, Parameters};

#[derive(Parameters)]
struct Model {
    w: f64,
}

#[grad]
fn f(p: &Model, x: f64) -> f64 {
    p.v * x
}

fn main() {}
