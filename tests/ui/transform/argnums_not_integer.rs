// `argnums` takes integers, not argument names.
use fluxion::grad;

#[grad(argnums = y)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
