// A Hessian with respect to two slices: built only for one slice.
use fluxion::hessian;

#[hessian(argnums = (0, 1))]
fn f(xs: &[f64], ys: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i].sin() * ys[i];
    }
    s
}

fn main() {}
