// Reverse over reverse mode through a call that passes a slice: not built yet; the error
// names the alternatives.
use fluxion::{grad, jacrev};

#[grad]
fn g(xs: &[f64], a: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (xs[i] * a).sin();
    }
    s
}

#[jacrev(argnums = 0)]
#[grad(argnums = 0)]
fn f(w: [f64; 2], xs: &[f64]) -> f64 {
    g(xs, w[0]) * w[1]
}

fn main() {
    let _ = f_grad_jacrev([1.0, 2.0], &[0.5]);
}
