// A function called through a module path must be marked `#[differentiable]`.
use fluxion::grad;

mod shapes {
    pub fn square(x: f64) -> f64 {
        x * x
    }
}

#[grad]
fn f(x: f64) -> f64 {
    shapes::square(x) * 3.0
}

fn main() {}
