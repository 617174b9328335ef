// A function that draws random numbers under `vmap` without `randomness`: torch.func's
// default, an error at the draw naming the two choices.
use fluxion::{vmap, Rng};

#[vmap(in_dims = (None, 0))]
fn f(rng: &Rng, x: f64) -> f64 {
    x + 0.1 * rng.normal(0)
}

fn main() {}
