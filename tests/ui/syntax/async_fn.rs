// `async fn` cannot be differentiated.
use fluxion::grad;

#[grad]
async fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
