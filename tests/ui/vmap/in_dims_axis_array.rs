// `in_dims = 2` on an array argument: `[f64; 3]` has axes 0 (the samples) and 1 only; on a
// `vmap` and on the outer `vmap` of a nested one (an argument the inner one shares).
use fluxion::vmap;

#[vmap(in_dims = (2, None))]
fn f(x: [f64; 3], w: f64) -> f64 {
    x[0] * w
}

#[vmap(in_dims = (0, 2))]
#[vmap(in_dims = (0, None))]
fn g(x: f64, w: [f64; 3]) -> f64 {
    x * w[1]
}

fn main() {}
