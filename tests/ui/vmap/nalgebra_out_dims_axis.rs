// `out_dims = 1` on a nalgebra result: matrices come back one per sample only.
use fluxion::vmap;
use nalgebra::SVector;

#[vmap(out_dims = 1)]
fn f(x: SVector<f64, 3>) -> SVector<f64, 3> {
    x * 2.0
}

fn main() {}
