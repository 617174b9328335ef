// `vec!` anywhere but as the `let mut` declaration of a vector built in the body.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64]) -> Vec<f64> {
    let y = vec![0.0; x.len()];
    y
}

fn main() {}
