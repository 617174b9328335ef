use fluxion::Parameters;

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
    b: [f32; 2],
}

fn main() {}
