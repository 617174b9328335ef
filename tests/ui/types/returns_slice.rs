// A slice as the result: its length is known only at run time.
use fluxion::grad;

#[grad]
fn f(x: &[f64]) -> &[f64] {
    x
}

fn main() {}
