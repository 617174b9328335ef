// Loop labels are not supported.
#![allow(unused_labels)]
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let mut y = x;
    'outer: for _ in 0..3 {
        y = y * x;
    }
    y
}

fn main() {}
