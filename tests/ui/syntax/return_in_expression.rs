// `return` inside an `if` used as a value is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let y = if x > 0.0 { return x; } else { x * x };
    y * 2.0
}

fn main() {}
