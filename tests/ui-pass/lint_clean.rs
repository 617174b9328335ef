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

/// A pair energy over points of run-time number: slices, `len()`, a triangular loop.
#[fluxion::transforms(grad, grad_and_value, vjp, jvp, vjp(grad))]
pub fn pair_energy(xs: &[[f64; 2]]) -> f64 {
    let n = xs.len();
    let mut e = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let d = xs[i][0] - xs[j][0];
            e += (d * d + xs[i][1] * xs[j][1]).sin();
        }
    }
    e
}

/// A model with a fixed parameter fitted to slices of data.
#[fluxion::transforms(grad(argnums = 0), grad_and_value(argnums = 0), hessian(argnums = 0), jacrev(grad(argnums = 0)))]
pub fn loss(w: [f64; 2], xs: &[f64]) -> f64 {
    let mut l = 0.0;
    for i in (0..xs.len()).rev() {
        l += (w[0] * xs[i] + w[1]).tanh();
    }
    l
}

/// Reverse over reverse through a call of a generated gradient of a slice function.
#[grad(argnums = (0, 1))]
pub fn fit(w: [f64; 2], xs: &[f64]) -> f64 {
    let (g, l) = loss_grad_and_value(w, xs);
    g[0] * g[1] + l
}

fn main() {
    let xs = [[0.1, 0.2], [0.3, -0.4], [1.0, 0.5]];
    let g = pair_energy_grad(&xs);
    assert_eq!(g.len(), 3);
    let mut out = [[0.0; 2]; 3];
    pair_energy_grad_into(&xs, &mut out);
    assert_eq!(out.to_vec(), g);
    let (g2, _) = pair_energy_grad_and_value(&xs);
    assert_eq!(g, g2);
    let (_, pullback) = pair_energy_vjp(&xs);
    assert_eq!(pullback(1.0).0, g);
    let (_, t) = pair_energy_jvp(&xs, &[[1.0, 0.0]; 3]);
    assert!(t.is_finite());
    assert!(loss_hessian([0.5, 0.1], &[0.2, 0.4])[0][0].is_finite());
    assert!(loss_grad([0.5, 0.1], &[])[0] == 0.0);
    let h = energy_jacrev_jacfwd([0.1, 0.2]);
    assert!(h[0][1] == 0.0);
    // d²/dr² of the gradient -1/r² is -6/r⁴.
    assert!((scalar_grad_hessian(2.0) + 6.0 / 16.0).abs() < 1e-15);
    let (g3, hvp) = pair_energy_grad_vjp(&xs);
    assert_eq!(g3, g);
    assert_eq!(hvp(vec![[0.0; 2]; 3]).0, vec![[0.0; 2]; 3]);
    let h2 = loss_grad_jacrev([0.5, 0.1], &[0.2, 0.4]);
    let h = loss_hessian([0.5, 0.1], &[0.2, 0.4]);
    assert!((h2[0][1] - h[0][1]).abs() < 1e-12 && (h2[1][0] - h[1][0]).abs() < 1e-12);
    let (gw, gx) = fit_grad([0.5, 0.1], &[0.2, 0.4]);
    assert!(gw[0].is_finite() && gx.len() == 2);
    let (_, pullback) = pairs_vjp([1.0, 2.0]);
    assert_eq!(pullback([1.0, 0.0]).0, [2.0, 1.0]);
}
