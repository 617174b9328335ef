// A `DVector` other than an argument (here a local's type) is not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let v: nalgebra::DVector<f64> = nalgebra::DVector::from_element(2, x);
    v[0]
}

fn main() {}
