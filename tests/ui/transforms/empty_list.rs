// An empty list.
use fluxion::transforms;

#[transforms()]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
