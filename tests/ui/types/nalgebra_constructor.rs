// A nalgebra value built inside the body: only arguments are nalgebra values.
use fluxion::grad;
use nalgebra::SVector;

#[grad]
fn f(x: f64) -> f64 {
    let v = SVector::<f64, 2>::new(x, 2.0 * x);
    v[0] * v[1]
}

fn main() {}
