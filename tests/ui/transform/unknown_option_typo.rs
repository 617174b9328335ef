// `argnum` is a typo of `argnums`.
use fluxion::grad;

#[grad(argnum = 1)]
fn f(x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
