// `grad` of a function returning a `Vec`: not a scalar.
use fluxion::grad;

#[grad]
fn f(x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for i in 0..x.len() {
        y[i] = x[i].sin();
    }
    y
}

fn main() {}
