// An option is given twice.
use fluxion::grad;

#[grad(argnums = 0, argnums = 1)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
