// `grad` has no chunks: `chunk_size` belongs to `jacrev`, `jacfwd` and `vmap`.
use fluxion::grad;

#[grad(chunk_size = 4)]
fn f(x: [f64; 3]) -> f64 {
    x[0] * x[1]
}

fn main() {}
