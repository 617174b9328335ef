// A vector built in the body starts as zeros.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64]) -> Vec<f64> {
    let mut y = vec![1.0; x.len()];
    for i in 0..x.len() {
        y[i] *= x[i];
    }
    y
}

fn main() {}
