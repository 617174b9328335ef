// `jacrev` of a function returning a tuple needs `has_aux`.
use fluxion::jacrev;

#[jacrev]
fn f(x: [f64; 2]) -> ([f64; 2], f64) {
    ([x[0] * x[1], x[0]], x[1])
}

fn main() {}
