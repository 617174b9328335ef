// An `in_dims` entry that is neither an axis nor `None` (a lower-case `none`).
use fluxion::vmap;

#[vmap(in_dims = (none, 0))]
fn f(x: f64, w: f64) -> f64 {
    x * w
}

fn main() {}
