// The cotangent of a shared slice differs between samples: a `Vec` per sample is not
// batched yet.
use fluxion::{grad, vmap};

#[vmap(in_dims = (0, None))]
#[grad(argnums = (0, 1))]
fn f(x: f64, ws: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..ws.len() {
        s += ws[i] * x;
    }
    s
}

fn main() {}
