// `stop_gradient` called with two arguments.
use fluxion::{grad, stop_gradient};

#[grad]
fn f(x: f64) -> f64 {
    x * stop_gradient(x, x)
}

fn main() {}
