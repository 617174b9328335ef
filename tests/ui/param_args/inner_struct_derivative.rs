use fluxion::{grad, jacfwd, Parameters};

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
}

#[jacfwd(argnums = 1)]
#[grad]
fn f(p: &Model, x: f64) -> f64 {
    p.w[0] * p.w[1] * x
}

fn main() {}
