use fluxion::Parameters;

#[derive(Parameters)]
struct Model {
    w: [f64; 2],
    #[param(bufer)]
    steps: usize,
}

fn main() {}
