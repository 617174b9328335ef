// The exponent of `powi` must be an integer.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x.powi(2.0)
}

fn main() {}
