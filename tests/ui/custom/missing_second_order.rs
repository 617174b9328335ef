// A Hessian through a function whose custom rule is first order only.
use fluxion::{custom_rule, hessian};

#[custom_rule(vjp = sq_vjp)]
fn sq(x: f64) -> f64 {
    x * x
}

fn sq_vjp(x: f64, ct: f64) -> (f64, (f64,)) {
    (x * x, (2.0 * x * ct,))
}

#[hessian]
fn f(x: f64) -> f64 {
    sq(x).sin()
}

fn main() {
    let _ = f_hessian(1.0);
}
