use fluxion::{vjp, Parameters};

#[derive(Parameters)]
struct Model {
    w: f64,
}

#[vjp]
fn f(p: &Model, x: f64) -> f64 {
    p.w * x
}

fn main() {}
