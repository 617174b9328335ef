// `out_dims` with more entries than the tuple result has outputs.
use fluxion::vmap;

#[vmap(out_dims = (0, 1, 0))]
fn f(x: [f64; 2]) -> (f64, [f64; 2]) {
    (x[0], x)
}

fn main() {}
