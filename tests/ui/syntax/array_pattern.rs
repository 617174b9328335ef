// An array pattern: bind the array and index it.
use fluxion::grad;

#[grad]
fn f(x: [f64; 2]) -> f64 {
    let [a, b] = x;
    a * b
}

fn main() {}
