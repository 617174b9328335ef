// `vmap` of a gradient through a call of a generated derivative: a derivative's companions
// have no lanes companions (they would double every function's generated code), and the
// error says what to write instead.
use fluxion::{grad, vmap};

#[grad]
fn g(x: f64) -> f64 {
    x * x * x
}

#[vmap]
#[grad]
fn f(x: f64) -> f64 {
    g_grad(x) * x
}

fn main() {
    // Unbatched, the gradient through the derivative works.
    let _ = f_grad(2.0);
    let _ = f_grad_vmap(&[1.0, 2.0]);
}
