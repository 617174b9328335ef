// `in_dims = 2` on a nalgebra vector: its samples have one axis, the components.
use fluxion::vmap;
use nalgebra::SVector;

#[vmap(in_dims = 2)]
fn f(x: SVector<f64, 3>) -> f64 {
    x[0]
}

fn main() {}
