// `has_aux` takes a boolean.
use fluxion::grad;

#[grad(has_aux = 1)]
fn f(x: f64) -> (f64, f64) {
    (x * x, x)
}

fn main() {}
