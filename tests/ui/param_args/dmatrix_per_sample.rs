// Per-sample gradients of a struct with a field of run-time size: not supported yet.
// The engine knows `DMatrix` by its name; this package's cases build without the runtime's
// `nalgebra` feature, so a local alias of that name (a `Vec`, which is `Parameters`) keeps
// rustc's own errors out of this case.
use fluxion::{grad, vmap, Parameters};

type DMatrix<T> = Vec<T>;

#[derive(Parameters, Clone)]
struct Model {
    w: DMatrix<f64>,
}

#[vmap(in_dims = (None, 0))]
#[grad]
fn f(p: &Model, x: f64) -> f64 {
    p.w[0] * x
}

fn main() {}
