// `#[grad]` on an associated function in an `impl` block: one error.
use fluxion::grad;

struct Model;

impl Model {
    #[grad]
    fn energy(x: f64) -> f64 {
        x * x
    }
}

fn main() {}
