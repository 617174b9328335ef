// A second derivative through a call of a batched function with a shared slice: its
// companions go to first order; the error names it and what to write instead.
use fluxion::{hessian, vmap};

#[vmap(in_dims = (None, None, 0))]
fn model(p: [f64; 2], w: &[f64], x: f64) -> f64 {
    p[0] * x * x + p[1] * w[0]
}

#[hessian(argnums = 0)]
fn loss(p: [f64; 2], w: &[f64], xs: &[f64]) -> f64 {
    let e = model_vmap(p, w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i];
    }
    s
}

fn main() {
    let _ = loss_hessian([1.0, 2.0], &[0.5], &[0.5]);
}
