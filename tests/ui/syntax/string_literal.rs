// A string literal in the body.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let _unit = "m";
    x * x
}

fn main() {}
