// The body ends with a statement: its value is not returned.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x * x;
}

fn main() {}
