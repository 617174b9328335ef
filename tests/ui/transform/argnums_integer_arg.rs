// `argnums` names an integer argument, which cannot be differentiated.
use fluxion::grad;

#[grad(argnums = 1)]
fn f(x: f64, n: i32) -> f64 {
    x.powi(n)
}

fn main() {}
