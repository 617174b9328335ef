// `in_dims = None` shares every argument: nothing is batched.
use fluxion::vmap;

#[vmap(in_dims = None)]
fn f(x: f64) -> f64 {
    x * 2.0
}

fn main() {}
