use fluxion::{hessian, Parameters};

#[derive(Parameters)]
struct Model {
    w: Vec<f64>,
    b: f64,
}

#[hessian]
fn f(p: &Model, x: f64) -> f64 {
    p.w[0] * p.b * x
}

fn main() {}
