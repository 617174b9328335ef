// `hessian` takes one argument at a time.
use fluxion::hessian;

#[hessian(argnums = (0, 1))]
fn f(x: f64, y: f64) -> f64 {
    x * x * y
}

fn main() {}
