// A reference is only allowed as a call argument.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let r = &x;
    *r * 2.0
}

fn main() {}
