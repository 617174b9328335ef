// A reference to a reference.
use fluxion::grad;

#[grad]
fn f(x: &&f64) -> f64 {
    **x * **x
}

fn main() {}
