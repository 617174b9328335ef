// A slice bound with `let mut`: slices are read-only and never copied.
use fluxion::grad;

#[grad]
fn f(xs: &[f64]) -> f64 {
    let mut ys = xs;
    ys[0]
}

fn main() {}
