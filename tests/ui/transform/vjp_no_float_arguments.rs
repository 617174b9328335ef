// `vjp` needs at least one float argument.
use fluxion::vjp;

#[vjp]
fn f(n: i32) -> f64 {
    n as f64
}

fn main() {}
