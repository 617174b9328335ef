// `name` takes a string literal.
use fluxion::grad;

#[grad(name = df)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
