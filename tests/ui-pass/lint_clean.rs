// Generated code keeps a strict crate clean: stacked attributes' imports count as used,
// the originals' index loops and unused originals raise no warnings, companions and
// markers are documented or hidden.
#![deny(warnings, missing_docs, clippy::all)]
//! A binary using fluxion under strict lints.

use fluxion::{differentiable, grad, hessian, jacfwd, jacrev, vjp};

/// A helper other functions call.
#[differentiable]
pub fn helper(r: f64) -> f64 {
    r * r
}

/// Stacked: jacfwd(jacrev(energy)).
#[jacfwd]
#[jacrev]
pub fn energy<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += helper(x[i]).sin();
    }
    s
}

/// Gradient and Hessian of one function.
#[hessian]
#[grad]
pub fn scalar(r: f64) -> f64 {
    1.0 / r
}

/// A pullback.
#[vjp]
pub fn pairs(x: [f64; 2]) -> [f64; 2] {
    [x[0] * x[1], x[1]]
}

fn main() {
    let h = energy_jacrev_jacfwd([0.1, 0.2]);
    assert!(h[0][1] == 0.0);
    // d²/dr² of the gradient -1/r² is -6/r⁴.
    assert!((scalar_grad_hessian(2.0) + 6.0 / 16.0).abs() < 1e-15);
    let (_, pullback) = pairs_vjp([1.0, 2.0]);
    assert_eq!(pullback([1.0, 0.0]).0, [2.0, 1.0]);
}
