// A body that ends with a `let`: it has no value to return.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let y = x * x;
}

fn main() {}
