// Destructuring a float with a tuple pattern.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let (a, b) = x;
    a * b
}

fn main() {}
