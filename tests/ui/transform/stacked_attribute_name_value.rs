// A stacked attribute written `#[jacrev = ..]` instead of `#[jacrev(..)]`.
use fluxion::{jacfwd, jacrev};

#[jacfwd]
#[jacrev = 1]
fn f(x: [f64; 2]) -> f64 {
    x[0] * x[1]
}

fn main() {}
