// `in_dims = 1` on a nalgebra vector: matrices batch one per sample only.
use fluxion::vmap;
use nalgebra::SVector;

#[vmap(in_dims = (1, None))]
fn f(x: SVector<f64, 3>, w: f64) -> f64 {
    x[0] * w
}

fn main() {}
