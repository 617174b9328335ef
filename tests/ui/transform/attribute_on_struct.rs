// A transform attribute goes on a function, not a struct.
use fluxion::grad;

#[grad]
struct Model {
    w: f64,
}

fn main() {}
