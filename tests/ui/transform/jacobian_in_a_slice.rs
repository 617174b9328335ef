// A Hessian (or Jacobian) with respect to a slice: its shape is known only at run time.
use fluxion::hessian;

#[hessian]
fn f(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i].sin();
    }
    s
}

fn main() {}
