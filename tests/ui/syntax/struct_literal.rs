// Struct literals are not supported.
use fluxion::grad;

struct Point {
    x: f64,
    y: f64,
}

#[grad]
fn f(x: f64) -> f64 {
    let p = Point { x, y: 2.0 };
    let _ = (p.x, p.y);
    x
}

fn main() {}
