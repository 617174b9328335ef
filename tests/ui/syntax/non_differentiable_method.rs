// `to_bits` has no derivative rule.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x.to_bits() as f64 * x
}

fn main() {}
