// A result that is not floats: nothing to batch into lanes.
use fluxion::vmap;

#[vmap]
fn f(x: f64) -> usize {
    if x > 0.0 {
        1
    } else {
        0
    }
}

fn main() {}
