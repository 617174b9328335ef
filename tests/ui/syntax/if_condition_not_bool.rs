// The condition of `if` is a float.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    if x {
        x
    } else {
        2.0 * x
    }
}

fn main() {}
