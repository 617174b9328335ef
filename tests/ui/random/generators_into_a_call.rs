// Under `randomness = "different"` the samples' generators cannot be passed to a callee
// yet: the error says what to write instead.
use fluxion::{differentiable, vmap, Rng};

#[differentiable]
fn noise(rng: &Rng, x: f64) -> f64 {
    x + rng.normal(0)
}

#[vmap(in_dims = (None, 0), randomness = "different")]
fn f(rng: &Rng, x: f64) -> f64 {
    noise(rng, x) * 2.0
}

fn main() {}
