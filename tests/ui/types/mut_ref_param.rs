// `&mut` parameters are not supported.
use fluxion::grad;

#[grad]
fn f(x: &mut f64) -> f64 {
    *x * 2.0
}

fn main() {}
