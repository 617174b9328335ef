// `vmap` through a call of a function that cannot be batched (an integer computed from a
// float differs between samples): the error names the callee and why, where it is used.
use fluxion::{differentiable, vmap};

#[differentiable]
fn g(x: f64) -> f64 {
    let n = x as i32;
    x.powi(n)
}

#[vmap]
fn f(x: f64) -> f64 {
    g(x) * 2.0
}

fn main() {
    // Unbatched, `g` and its derivatives still work.
    let _ = g(2.0);
    let _ = f_vmap(&[1.0, 2.0]);
}
