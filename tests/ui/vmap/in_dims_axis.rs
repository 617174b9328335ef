// A batch axis other than the leading one.
use fluxion::vmap;

#[vmap(in_dims = (1, None))]
fn f(x: [f64; 3], w: f64) -> f64 {
    x[0] * w
}

fn main() {}
