// An array length computed at run time (`xs.len()`), not a constant: arrays have a fixed
// size (loops may run to `xs.len()`, arrays may not be that long).
use fluxion::grad;

#[grad]
fn f(xs: &[f64]) -> f64 {
    let v = [1.0; xs.len()];
    v[0] * xs[0]
}

fn main() {}
