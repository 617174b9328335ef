// A vector built in the body is as long as a slice argument: `n` is not a slice's length.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64], n: usize) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = x[i] * x[i];
    }
    y
}

fn main() {}
