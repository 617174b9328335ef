// A draw's counter is an integer.
use fluxion::{grad, Rng};

#[grad(argnums = 1)]
fn f(rng: &Rng, x: f64) -> f64 {
    x * rng.normal(x)
}

fn main() {}
