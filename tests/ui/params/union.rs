use fluxion::Parameters;

#[derive(Parameters)]
union Model {
    w: f64,
    b: f32,
}

fn main() {}
