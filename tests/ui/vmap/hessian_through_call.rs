// `vmap` of a second derivative through a call: the callee's batched second-order
// companions are not built, and the error says so and what to write instead.
use fluxion::{differentiable, hessian, vmap};

#[differentiable]
fn g(x: f64) -> f64 {
    x * x * x
}

#[vmap]
#[hessian]
fn f(x: [f64; 2]) -> f64 {
    g(x[0]) * x[1]
}

fn main() {
    // Unbatched, the Hessian through the call works.
    let _ = f_hessian([1.0, 2.0]);
    let _ = f_hessian_vmap(&[[1.0, 2.0]]);
}
