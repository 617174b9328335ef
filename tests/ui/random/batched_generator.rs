// A generator is never batched: `randomness` says how the samples draw from it.
use fluxion::{vmap, Rng};

#[vmap(in_dims = (0, 0), randomness = "different")]
fn f(rng: &Rng, x: f64) -> f64 {
    x + 0.1 * rng.normal(0)
}

fn main() {}
