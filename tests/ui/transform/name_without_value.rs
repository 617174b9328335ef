// `name` without its value.
use fluxion::grad;

#[grad(name)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
