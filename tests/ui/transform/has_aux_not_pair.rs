// `has_aux` needs the function to return `(output, aux)`.
use fluxion::grad;

#[grad(has_aux)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
