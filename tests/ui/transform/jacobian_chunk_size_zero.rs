// `chunk_size = 0` computes nothing.
use fluxion::jacrev;

#[jacrev(chunk_size = 0)]
fn f(x: [f64; 3]) -> [f64; 3] {
    [x[0] * x[1], x[1], x[2].sin()]
}

fn main() {}
