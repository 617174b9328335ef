// A derivative stacked on `vmap`, whose function takes slices and returns a `Vec`.
use fluxion::{grad, vmap};

#[grad]
#[vmap]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
