// A range used to slice an array.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    let s: f64 = x[1..].iter().sum();
    s
}

fn main() {}
