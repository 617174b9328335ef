use fluxion::Parameters;

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
    name: String,
}

fn main() {}
