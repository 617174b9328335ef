// Slice parameters are read-only.
use fluxion::grad;

#[grad]
fn f(xs: &[f64]) -> f64 {
    xs[0] = 1.0;
    xs[1]
}

fn main() {}
