// An `async` block in the body.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let _ = async { x };
    x * x
}

fn main() {}
