// `argnums` needs a value.
use fluxion::grad;

#[grad(argnums)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
