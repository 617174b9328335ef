// `in_dims` with more entries than the function has arguments, on a `vmap` and on the
// outer `vmap` of a nested one.
use fluxion::vmap;

#[vmap(in_dims = (0, None, 0))]
fn f(x: f64, w: f64) -> f64 {
    x * w
}

#[vmap(in_dims = (0, None, 0))]
#[vmap]
fn g(x: f64, w: f64) -> f64 {
    x * w
}

fn main() {}
