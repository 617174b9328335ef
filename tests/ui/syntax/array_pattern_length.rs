// An array pattern whose length differs from the array's.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    let [a, b] = x;
    a * b
}

fn main() {}
