use fluxion::Parameters;

#[derive(Parameters)]
enum Model {
    Small { w: [f64; 2] },
    Large { w: [f64; 4] },
}

fn main() {}
