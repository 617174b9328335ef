// `%` on floats is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x % 2.0
}

fn main() {}
