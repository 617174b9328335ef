// `randomness` takes "different", "same" or "error".
use fluxion::{vmap, Rng};

#[vmap(in_dims = (None, 0), randomness = "differnt")]
fn f(rng: &Rng, x: f64) -> f64 {
    x + 0.1 * rng.normal(0)
}

fn main() {}
