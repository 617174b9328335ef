// A named field of a constant struct.
use fluxion::grad;

struct Params {
    scale: f64,
}

const P: Params = Params { scale: 2.0 };

#[grad]
fn f(x: f64) -> f64 {
    x * P.scale
}

fn main() {}
