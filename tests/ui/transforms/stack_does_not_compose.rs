// `#[grad] #[jacrev]` on an array function: grad of a Jacobian, which is not a scalar.
use fluxion::{grad, jacrev};

#[grad]
#[jacrev]
fn f(x: [f64; 2]) -> f64 {
    x[0] * x[1]
}

fn main() {}
