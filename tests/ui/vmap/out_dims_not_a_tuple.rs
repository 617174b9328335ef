// `out_dims` as a tuple for a function that returns one value.
use fluxion::vmap;

#[vmap(out_dims = (1, 0))]
fn f(x: [f64; 2]) -> [f64; 2] {
    [x[1], x[0]]
}

fn main() {}
