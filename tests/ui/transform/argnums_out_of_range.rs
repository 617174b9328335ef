// `argnums` names an argument that does not exist.
use fluxion::grad;

#[grad(argnums = 2)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
