// A Hessian with respect to a slice and a float: built only in slices.
use fluxion::hessian;

#[hessian(argnums = (0, 1))]
fn f(xs: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i].sin() * w;
    }
    s
}

fn main() {}
