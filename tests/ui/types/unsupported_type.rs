// `Option<f64>` is not a type fluxion can differentiate.
use fluxion::grad;

#[grad]
fn f(x: f64, scale: Option<f64>) -> f64 {
    x * x * scale.unwrap_or(1.0)
}

fn main() {}
