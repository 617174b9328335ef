// A compound assignment used as a value.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let mut s = 0.0;
    let _ = s += x;
    s
}

fn main() {}
