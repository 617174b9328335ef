// Assigning to a parameter not declared `mut`.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x = 2.0 * x;
    x
}

fn main() {}
