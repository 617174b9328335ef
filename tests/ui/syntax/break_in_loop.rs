// `break` is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let mut y = x;
    for _ in 0..10 {
        if y > 100.0 {
            break;
        }
        y = y * x;
    }
    y
}

fn main() {}
