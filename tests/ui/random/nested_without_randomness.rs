// The outer `vmap` of a function that draws needs its own `randomness`.
use fluxion::{vmap, Rng};

#[vmap(in_dims = (None, 0))]
#[vmap(in_dims = (None, 0), randomness = "different")]
fn f(rng: &Rng, x: f64) -> f64 {
    x + rng.normal(0)
}

fn main() {}
