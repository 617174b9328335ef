use fluxion::Parameters;

#[derive(Parameters)]
struct Model([f64; 2], f64);

fn main() {}
