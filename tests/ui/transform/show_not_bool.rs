// `show` takes a boolean.
use fluxion::grad;

#[grad(show = 1)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
