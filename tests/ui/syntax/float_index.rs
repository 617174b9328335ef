// An array indexed by a float.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    x[1.0]
}

fn main() {}
