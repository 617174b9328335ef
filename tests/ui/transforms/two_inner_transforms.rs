// An entry nests one transform.
use fluxion::transforms;

#[transforms(jacfwd(jacrev, grad))]
fn f(x: [f64; 2]) -> f64 {
    x[0] * x[1]
}

fn main() {}
