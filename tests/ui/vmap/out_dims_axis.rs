// `out_dims = 1` on a scalar output: a scalar has no axis 1.
use fluxion::vmap;

#[vmap(out_dims = (0, 1))]
fn f(x: [f64; 2]) -> ([f64; 2], f64) {
    (x, x[0] * x[1])
}

fn main() {
    // The stand-in has the promised type: no error at the call.
    let (a, b): (Vec<[f64; 2]>, Vec<f64>) = f_vmap(&[[1.0, 2.0]]);
    let _ = (a, b);
}
