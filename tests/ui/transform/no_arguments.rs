// A function without arguments has nothing to differentiate.
use fluxion::grad;

#[grad]
fn f() -> f64 {
    1.0
}

fn main() {}
