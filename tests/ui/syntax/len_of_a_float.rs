// `len()` on something that is not a slice or an array.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let n = x.len();
    x * n as f64
}

fn main() {}
