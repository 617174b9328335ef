// An integer argument batched by default: integers are shared by the whole batch.
use fluxion::vmap;

#[vmap]
fn f(x: f64, n: i32) -> f64 {
    x.powi(n)
}

fn main() {}
