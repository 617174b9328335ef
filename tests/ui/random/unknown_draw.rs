// A generator offers `uniform`, `normal`, their `_f32` forms and `fold_in`.
use fluxion::{grad, Rng};

#[grad(argnums = 1)]
fn f(rng: &Rng, x: f64) -> f64 {
    x * rng.exponential(0)
}

fn main() {}
