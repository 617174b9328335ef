use fluxion::grad;

struct Model {
    w: f64,
}

#[grad]
fn loss(p: &Model, x: f64) -> f64 {
    p.w * x
}

fn main() {}
