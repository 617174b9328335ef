// A function returning a reference has no promised type: its stand-in diverges, so a
// call that expects a Jacobian adds no error.
use fluxion::jacrev;

#[jacrev]
fn f(x: &[f64; 2]) -> &[f64; 2] {
    x
}

fn main() {
    let _: [[f64; 2]; 2] = f_jacrev(&[1.0, 2.0]);
}
