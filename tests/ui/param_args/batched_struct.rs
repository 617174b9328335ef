use fluxion::{grad, vmap, Parameters};

#[derive(Parameters)]
struct Model {
    w: f64,
}

#[vmap(in_dims = (0, 0))]
#[grad(argnums = 1)]
fn f(p: &Model, x: f64) -> f64 {
    p.w * x * x
}

fn main() {}
