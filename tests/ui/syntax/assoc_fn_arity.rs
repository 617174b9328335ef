// `f64::max` called with one argument.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    f64::max(x)
}

fn main() {}
