// `in_dims = 2` on an array argument: `[f64; 3]` has axes 0 (the samples) and 1 only.
use fluxion::vmap;

#[vmap(in_dims = (2, None))]
fn f(x: [f64; 3], w: f64) -> f64 {
    x[0] * w
}

fn main() {}
