// Complex numbers are not supported.
use fluxion::grad;

#[allow(dead_code)]
struct Complex64 {
    re: f64,
    im: f64,
}

#[grad]
fn f(z: Complex64) -> f64 {
    z.re
}

fn main() {}
