use fluxion::{hessian, Parameters};

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
}

#[hessian(argnums = (0, 1))]
fn f(p: &Model, x: f64) -> f64 {
    p.w[0] * p.w[1] * x
}

fn main() {}
