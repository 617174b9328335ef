// The loop variable must be a single name over an index range.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        s += xi * i as f64;
    }
    s
}

fn main() {}
