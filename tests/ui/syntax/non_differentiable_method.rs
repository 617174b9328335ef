// `floor` has no derivative rule.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x.floor() * x
}

fn main() {}
