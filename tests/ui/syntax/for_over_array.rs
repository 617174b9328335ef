// A `for` loop must run over a constant range, not over an array.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += v * v;
    }
    s
}

fn main() {}
