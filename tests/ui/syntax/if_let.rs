// `if let` is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64, k: i32) -> f64 {
    if let 0 = k {
        x
    } else {
        2.0 * x
    }
}

fn main() {}
