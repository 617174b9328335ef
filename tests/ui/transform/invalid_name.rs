// `name` must be a valid function name.
use fluxion::grad;

#[grad(name = "1abc")]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
