// A slice batched by `vmap`: its length could differ between samples.
use fluxion::vmap;

#[vmap]
fn f(x: f64, ws: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..ws.len() {
        s += ws[i] * x;
    }
    s
}

fn main() {}
