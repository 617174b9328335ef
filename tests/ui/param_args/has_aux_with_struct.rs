use fluxion::{grad, Parameters};

#[derive(Parameters)]
struct Model {
    w: f64,
}

#[grad(has_aux)]
fn f(p: &Model, x: f64) -> (f64, f64) {
    (p.w * x, x)
}

fn main() {}
