// A slice by value (not behind a reference).
use fluxion::grad;

#[grad]
fn f(x: [f64]) -> f64 {
    x[0]
}

fn main() {}
