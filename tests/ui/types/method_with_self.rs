// Methods taking `self` are not supported.
use fluxion::grad;

struct Model {
    w: f64,
}

impl Model {
    #[grad]
    fn loss(&self, x: f64) -> f64 {
        self.w * x
    }
}

fn main() {}
