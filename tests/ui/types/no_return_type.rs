// A differentiated function must return a value.
use fluxion::grad;

#[grad]
fn f(x: f64) {
    let _ = x;
}

fn main() {}
