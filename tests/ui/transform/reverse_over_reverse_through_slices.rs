// Reverse over reverse mode through a loop over a slice: the gradient's reverse pass
// tapes on `Vec`s; not built yet. Forward over reverse (`hessian`) is.
use fluxion::{grad, jacrev};

#[jacrev]
#[grad(argnums = 0)]
fn f(w: [f64; 2], xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (xs[i] * w[0]).sin() * w[1];
    }
    s
}

fn main() {}
