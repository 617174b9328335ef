use fluxion::Parameters;

#[derive(Parameters)]
struct Model {
    #[param(buffer)]
    steps: usize,
}

fn main() {}
