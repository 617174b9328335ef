// `#[grad] #[hessian]` composes: grad(hessian(f)) differentiates `sq` three times.
use fluxion::{differentiable, grad, hessian};

#[differentiable]
fn sq(x: f64) -> f64 {
    x * x
}

#[grad]
#[hessian]
fn f(x: f64) -> f64 {
    sq(x) * x
}

fn main() {}
