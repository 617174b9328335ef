// `vmap` of a function that calls a batched derivative: the batch of a generated
// derivative has no lanes companions; the error names it and what to call instead.
use fluxion::{grad, vmap};

#[vmap(in_dims = (None, 0))]
#[grad(argnums = 0)]
fn model(p: f64, x: f64) -> f64 {
    p * x * x
}

#[vmap(in_dims = (0, None))]
fn total(p: f64, xs: &[f64]) -> f64 {
    let e = model_grad_vmap(p, xs);
    e[0] + p
}

fn main() {
    let _ = total_vmap(&[1.0, 2.0], &[0.5, 1.5]);
}
