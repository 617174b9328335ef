// `jacrev` of a function returning an integer.
use fluxion::jacrev;

#[jacrev]
fn f(x: f64) -> i32 {
    x as i32
}

fn main() {}
