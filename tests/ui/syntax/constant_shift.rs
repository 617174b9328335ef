// A loop bound computed with a shift.
use fluxion::grad;

const N: usize = 4;

#[grad]
fn f(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N >> 1 {
        s += x[i];
    }
    s
}

fn main() {}
