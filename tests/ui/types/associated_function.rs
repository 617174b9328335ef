// `#[differentiable]` on an associated function in an `impl` block.
use fluxion::differentiable;

struct Model;

impl Model {
    #[differentiable]
    fn energy(x: f64) -> f64 {
        x * x
    }
}

fn main() {
    let _ = Model::energy(1.0);
}
