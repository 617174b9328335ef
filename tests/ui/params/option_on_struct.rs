use fluxion::Parameters;

#[derive(Parameters)]
#[param(buffer)]
struct Model {
    w: [f64; 2],
}

fn main() {}
