// `vmap` of a gradient through a call of a second derivative: the derivative's own
// companion would be of order 3 (a stub), and its lanes companion is a stub too, saying
// that derivatives are not batched through calls.
use fluxion::{grad, hessian, vmap};

#[hessian]
fn h(x: [f64; 2]) -> f64 {
    x[0] * x[0] * x[1]
}

#[vmap]
#[grad]
fn f(x: f64) -> f64 {
    h_hessian([x, 1.0])[0][0] * x
}

fn main() {
    let _ = f_grad_vmap(&[1.0, 2.0]);
}
