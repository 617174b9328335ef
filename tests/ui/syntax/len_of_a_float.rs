// A loop bound must be a constant, not a variable.
use fluxion::grad;

#[grad]
fn f(x: f64, n: usize) -> f64 {
    let mut y = x;
    for _ in 0..n {
        y = y * x;
    }
    y
}

fn main() {}
