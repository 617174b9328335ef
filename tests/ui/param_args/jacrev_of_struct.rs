use fluxion::{jacrev, Parameters};

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
}

#[jacrev]
fn f(p: &Model, x: f64) -> [f64; 2] {
    [p.w[0] * x, p.w[1] * x]
}

fn main() {}
