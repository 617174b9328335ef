// A float used as a loop bound: bounds count iterations, so they are integers.
use fluxion::grad;

#[grad]
fn f(x: f64, xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x {
        s += xs[i];
    }
    s
}

fn main() {}
