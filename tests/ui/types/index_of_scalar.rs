// Indexing a float as if it were an array.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x[0]
}

fn main() {}
