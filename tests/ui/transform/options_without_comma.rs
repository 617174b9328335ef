// Options not separated by a comma.
use fluxion::grad;

#[grad(argnums = 0 has_aux)]
fn f(x: f64) -> (f64, f64) {
    (x * x, x)
}

fn main() {}
