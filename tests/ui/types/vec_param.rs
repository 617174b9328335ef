// `Vec` parameters are not supported.
use fluxion::grad;

#[grad]
fn f(x: Vec<f64>) -> f64 {
    x[0]
}

fn main() {}
