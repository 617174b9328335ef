// An `f32` constant in an `f64` function: rustc's errors on the original only, none from
// the generated functions.
use fluxion::grad;

const SCALE: f32 = 2.0;

#[grad]
fn f(x: f64) -> f64 {
    SCALE * x.sin() + x.powf(SCALE)
}

fn main() {
    let _ = f_grad(1.0);
}
