// nalgebra operations the body cannot do: one error each, at the offending token.
use fluxion::grad;
use nalgebra::SVector;

#[grad]
fn sum_of_shapes(a: &SVector<f64, 3>, b: &SVector<f64, 2>) -> f64 {
    (a + b).sum()
}

#[grad]
fn dot_of_shapes(a: &SVector<f64, 3>, b: &SVector<f64, 2>) -> f64 {
    a.dot(b)
}

#[grad]
fn matrix_quotient(a: &SVector<f64, 2>, b: &SVector<f64, 2>) -> f64 {
    (a / b).sum()
}

#[grad]
fn cross_of_pairs(a: &SVector<f64, 2>, b: &SVector<f64, 2>) -> f64 {
    a.cross(b).sum()
}

#[grad]
fn map_of_a_function(a: &SVector<f64, 2>) -> f64 {
    a.map(f64::tanh).sum()
}

#[grad]
fn new_with_three(x: f64) -> f64 {
    nalgebra::SMatrix::<f64, 2, 2>::new(x, x, x).sum()
}

fn main() {}
