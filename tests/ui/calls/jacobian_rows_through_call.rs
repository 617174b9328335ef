// A Jacobian of a `Vec` result (`Vec<Vec<f64>>`) differentiated again through a call.
use fluxion::{grad, jacrev};

#[jacrev]
fn f(x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for i in 0..x.len() {
        y[i] = x[i].sin();
    }
    y
}

#[grad]
fn g(x: &[f64]) -> f64 {
    let j = f_jacrev(x);
    j[0][0]
}

fn main() {
    let _ = g_grad(&[1.0]);
}
