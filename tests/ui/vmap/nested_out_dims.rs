// The outer `vmap` of a nested one with `out_dims = 1`: the outer batch comes first.
use fluxion::vmap;

#[vmap(out_dims = 1)]
#[vmap(out_dims = 1)]
fn f(x: [f64; 2]) -> [f64; 2] {
    [x[1], x[0]]
}

fn main() {}
