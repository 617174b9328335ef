// `argnums = (1)` is an integer in parentheses, not a tuple.
use fluxion::grad;

#[grad(argnums = (1))]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
