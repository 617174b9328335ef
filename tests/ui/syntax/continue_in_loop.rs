// `continue` is not supported.
use fluxion::grad;

#[grad]
fn f(x: [f64; 4]) -> f64 {
    let mut s = 0.0;
    for i in 0..4 {
        if x[i] < 0.0 {
            continue;
        }
        s += x[i];
    }
    s
}

fn main() {}
