// `in_dims = 2` on an array of arrays: the axis exists, but fluxion batches along 0 or 1.
use fluxion::vmap;

#[vmap(in_dims = 2)]
fn f(x: [[f64; 3]; 2]) -> f64 {
    x[0][1] * x[1][2]
}

fn main() {}
