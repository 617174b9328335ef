// A Hessian through a call of a gradient: third derivatives of `g` are beyond the
// companions fluxion generates (order 2).
use fluxion::{grad, hessian};

#[grad]
fn g(x: f64) -> f64 {
    x * x * x
}

#[hessian]
fn f(x: f64) -> f64 {
    g_grad(x)
}

fn main() {
    let _ = f_hessian(1.0);
}
