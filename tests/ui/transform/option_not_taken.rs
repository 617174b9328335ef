// `vjp` does not take `argnums`.
use fluxion::vjp;

#[vjp(argnums = 0)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
