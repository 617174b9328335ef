// An integer computed from a batched value differs between samples.
use fluxion::vmap;

#[vmap(in_dims = (0, None))]
fn f(x: f64, w: f64) -> f64 {
    let n = x as i32;
    w.powi(n)
}

fn main() {}
