// `out_dims = None`: every output carries the batch, along axis 0 or 1.
use fluxion::vmap;

#[vmap(out_dims = None)]
fn f(x: f64) -> f64 {
    x * 2.0
}

fn main() {}
