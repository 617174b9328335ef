// `grad` of a function returning a `DVector`: not a scalar.
use fluxion::grad;
use nalgebra::DVector;

#[grad]
fn f(x: &DVector<f64>) -> DVector<f64> {
    let mut y = DVector::zeros(x.len());
    for i in 0..x.len() {
        y[i] = x[i].sin();
    }
    y
}

fn main() {}
