use fluxion::{vmap, Parameters};

#[derive(Parameters)]
struct Model {
    w: Vec<f64>,
}

#[vmap(in_dims = (0, 0))]
fn f(p: &Model, x: f64) -> f64 {
    p.w[0] * x * x
}

fn main() {}
