// `batched` is not an option of `grad` (and is not close to one).
use fluxion::grad;

#[grad(batched = true)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
