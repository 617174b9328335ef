// `vmap` through a call of a function that cannot be batched, with a `bool` parameter: the
// stand-in lanes companion keeps the flag a `bool` (it is the same for every sample), so
// the error is the callee's reason, not a type mismatch.
use fluxion::{differentiable, vmap};

#[differentiable]
fn g(x: f64, neg: bool) -> f64 {
    let n = x as i32;
    if neg {
        -x.powi(n)
    } else {
        x.powi(n)
    }
}

#[vmap]
fn f(x: f64) -> f64 {
    g(x, true) * 2.0
}

fn main() {
    let _ = f_vmap(&[1.0, 2.0]);
}
