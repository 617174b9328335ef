// A call through a variable holding a function.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let g = f64::sin;
    g(x)
}

fn main() {}
