// `f64::floor` has no derivative rule.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    f64::floor(x) * x
}

fn main() {}
