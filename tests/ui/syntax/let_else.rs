// `let ... else` is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let Some(y) = Some(x) else { return 0.0 };
    y * y
}

fn main() {}
