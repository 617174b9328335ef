// `in_dims = 1` on a scalar argument: a scalar sample has no axis 1.
use fluxion::vmap;

#[vmap(in_dims = (0, 1))]
fn f(x: f64, w: f64) -> f64 {
    x * w
}

fn main() {}
