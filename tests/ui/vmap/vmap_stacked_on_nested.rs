// A derivative stacked on a nested `vmap`.
use fluxion::{jacrev, vmap};

#[jacrev]
#[vmap]
#[vmap]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
