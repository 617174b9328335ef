// Batched arguments of two float types: one lane type per function.
use fluxion::vmap;

#[vmap]
fn f(x: f64, y: f32) -> f64 {
    x * (y as f64)
}

fn main() {}
