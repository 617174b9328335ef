// A differentiated function cannot return a reference.
use fluxion::grad;

#[grad]
fn f(x: &f64) -> &f64 {
    x
}

fn main() {}
