// An array of nalgebra matrices as a batched argument: each matrix is an argument of its own.
use fluxion::vmap;
use nalgebra::SVector;

#[vmap]
fn f(xs: [SVector<f64, 3>; 2]) -> f64 {
    xs[0][0] * xs[1][1]
}

fn main() {}
