//! Newton's method on the extended Rosenbrock function with the generated `grad` and
//! `hessian`: each iterate solves `H d = -g` (nalgebra's Cholesky, or a gradient step where
//! the Hessian is not positive definite) and backtracks until the objective decreases.
//!
//! `cargo run --release --example newton`

use fluxion::transforms;
use nalgebra::{SMatrix, SVector};

const N: usize = 10;

/// The extended Rosenbrock function: `Σ 100 (x[2i+1] - x[2i]²)² + (1 - x[2i])²`.
#[transforms(grad, hessian)]
pub fn rosenbrock(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N / 2 {
        let a = x[2 * i + 1] - x[2 * i] * x[2 * i];
        let b = 1.0 - x[2 * i];
        s += 100.0 * a * a + b * b;
    }
    s
}

fn main() {
    // The classic start: (-1.2, 1) in every pair.
    let mut x: [f64; N] = std::array::from_fn(|i| if i % 2 == 0 { -1.2 } else { 1.0 });
    println!("iterate   0: f = {:.6e}", rosenbrock(x));
    for it in 1..=100 {
        let g = SVector::<f64, N>::from(rosenbrock_grad(x));
        if g.norm() < 1e-10 {
            break;
        }
        let h = SMatrix::<f64, N, N>::from_fn(|i, j| rosenbrock_hessian(x)[i][j]);
        let d = match h.cholesky() {
            Some(c) => -c.solve(&g),
            None => -g,
        };
        let f0 = rosenbrock(x);
        let mut t = 1.0;
        let mut next = x;
        while t > 1e-12 {
            next = std::array::from_fn(|i| x[i] + t * d[i]);
            if rosenbrock(next) < f0 {
                break;
            }
            t *= 0.5;
        }
        x = next;
        println!("iterate {it:>3}: f = {:.6e}, step {t}", rosenbrock(x));
    }
    let err = x.iter().map(|v| (v - 1.0).abs()).fold(0.0, f64::max);
    println!("minimum at x = {x:.6?} (largest distance from the optimum 1: {err:.1e})");
    assert!(err < 1e-8, "Newton's method did not converge");
}
