// Bitwise operators are not supported.
use fluxion::grad;

#[grad]
fn f(x: f64, n: u32) -> f64 {
    let k = n & 3;
    x.powi(k as i32)
}

fn main() {}
