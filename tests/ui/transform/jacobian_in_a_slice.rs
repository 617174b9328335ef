// A Hessian with respect to a slice of arrays: built only for one slice of floats.
use fluxion::hessian;

#[hessian]
fn f(xs: &[[f64; 2]]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i][0].sin() * xs[i][1];
    }
    s
}

fn main() {}
