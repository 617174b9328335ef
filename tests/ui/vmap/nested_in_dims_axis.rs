// The outer `vmap` of a nested one with `in_dims = 1` on an argument the inner one batches.
use fluxion::vmap;

#[vmap(in_dims = (1, None))]
#[vmap(in_dims = (0, None))]
fn f(x: [f64; 2], w: f64) -> f64 {
    x[0] * w + x[1]
}

fn main() {
    // The stand-ins have the promised types: no error at the call.
    let y: Vec<Vec<f64>> = f_vmap_vmap(&[vec![[1.0, 2.0]]], 3.0);
    let _ = y;
}
