use fluxion::{transforms, Parameters};

#[derive(Parameters)]
struct Model {
    w: f64,
}

#[transforms(grad, grad_and_value)]
fn f(p: &Model, x: f64) -> f64 {
    p.w * x
}

fn main() {}
