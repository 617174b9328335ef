// An integer literal beyond the range fluxion computes with (i128).
use fluxion::grad;

#[grad]
fn f(x: f64, n: u128) -> f64 {
    if n == 340282366920938463463374607431768211455 {
        x
    } else {
        2.0 * x
    }
}

fn main() {}
