// A `Vec` result holds floats.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64]) -> Vec<[f64; 2]> {
    let mut y = vec![0.0; x.len()];
    y
}

fn main() {}
