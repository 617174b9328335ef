// `in_dims` with more entries than the function has arguments.
use fluxion::vmap;

#[vmap(in_dims = (0, None, 0))]
fn f(x: f64, w: f64) -> f64 {
    x * w
}

fn main() {}
