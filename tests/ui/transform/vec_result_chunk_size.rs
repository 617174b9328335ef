// `chunk_size` on the Jacobian of a `DVector` result: no chunks at run-time lengths.
use fluxion::transforms;
use nalgebra::DVector;

#[transforms(jacrev, jacfwd, jacfwd(chunk_size = 4, name = "cyclic_jacfwd4"))]
fn cyclic(x: &DVector<f64>) -> DVector<f64> {
    let n = x.len();
    let mut y = DVector::zeros(n);
    for i in 0..n {
        y[i] = x[i].sin() * x[(i + 1) % n] + x[(i + n - 1) % n] * x[(i + n - 1) % n];
    }
    y
}

fn main() {}
