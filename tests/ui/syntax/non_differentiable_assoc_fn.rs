// `f64::to_bits` has no derivative rule.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    f64::to_bits(x) as f64 * x
}

fn main() {}
