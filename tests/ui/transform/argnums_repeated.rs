// `argnums` names the same argument twice.
use fluxion::grad;

#[grad(argnums = (0, 0))]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
