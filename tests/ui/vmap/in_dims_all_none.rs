// `None` for every argument: nothing is batched.
use fluxion::vmap;

#[vmap(in_dims = (None, None))]
fn f(x: f64, w: f64) -> f64 {
    x * w
}

fn main() {}
