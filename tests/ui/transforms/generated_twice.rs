// Two entries that generate the same name differently.
use fluxion::transforms;

#[transforms(jacrev, jacfwd(jacrev(argnums = 0)))]
fn f(x: [f64; 2]) -> [f64; 2] {
    [x[0] * x[1], x[1]]
}

fn main() {}
