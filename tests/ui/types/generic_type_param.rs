// Generic type parameters are not supported.
use fluxion::grad;

#[grad]
fn f<T: Into<f64>>(x: T) -> f64 {
    x.into()
}

fn main() {}
