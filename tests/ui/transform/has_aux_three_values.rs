// `has_aux` needs a pair, not a triple.
use fluxion::grad;

#[grad(has_aux)]
fn f(x: f64) -> (f64, f64, f64) {
    (x * x, x, 1.0)
}

fn main() {}
