// `mut` on a parameter passed by reference.
use fluxion::grad;

#[grad]
fn f(mut x: &f64) -> f64 {
    *x * *x
}

fn main() {}
