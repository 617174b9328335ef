// `vec!` with listed elements: only `vec![0.0; n]` is supported.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0, 0.0];
    y[0] = x[0];
    y
}

fn main() {}
