//! fluxion in five minutes: compile-time `grad`, `jacrev`, `jacfwd`, `hessian`, `vjp` and
//! `jvp` on ordinary Rust functions. Run with `cargo run --release --example quickstart`;
//! see the generated code in `examples/expanded/quickstart-expanded.rs`.

use fluxion::{differentiable, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp};

const EPS: f64 = 1.0;
const SIGMA: f64 = 1.0;

/// Lennard-Jones pair energy; `#[jacrev]` generates `energy_jacrev(r) = dE/dr`.
#[jacrev]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// A loop over a const-generic array: the gradient is a loop too (no unrolling, no tape
/// on the heap).
#[grad]
fn sum_of_sines<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i].sin();
    }
    s
}

/// Stacked attributes compose like nested calls: `jacfwd(jacrev(f))`, a Hessian.
#[jacfwd]
#[jacrev]
fn rosenbrock(x: [f64; 2]) -> f64 {
    let a = 1.0 - x[0];
    let b = x[1] - x[0] * x[0];
    a * a + 100.0 * b * b
}

/// A function other transforms differentiate through (both modes, second order).
#[differentiable]
fn softplus(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

/// `hessian` of a function that calls another one, and its gradient with its value.
#[hessian]
fn loss(w: f64, x: f64) -> f64 {
    let y = softplus(w * x);
    (y - 1.0) * (y - 1.0)
}

#[grad_and_value]
fn loss2(w: f64, x: f64) -> f64 {
    let y = softplus(w * x);
    (y - 1.0) * (y - 1.0)
}

/// Elementwise map: `vjp` with ones and `jvp` with ones agree (the Jacobian is diagonal).
#[vjp]
fn squash(x: [f64; 3]) -> [f64; 3] {
    [x[0].tanh(), x[1].tanh(), x[2].tanh()]
}

#[jvp]
#[jacfwd]
fn squash2(x: [f64; 3]) -> [f64; 3] {
    [x[0].tanh(), x[1].tanh(), x[2].tanh()]
}

fn main() {
    // Force of the Lennard-Jones potential, against the closed form: repulsive inside the
    // minimum, attractive outside.
    for r in [0.95, 1.12, 1.5] {
        let force = -energy_jacrev(r);
        let exact = EPS * (12.0 * SIGMA.powi(12) / r.powi(13) - 6.0 * SIGMA.powi(6) / r.powi(7));
        println!("r = {r:.4}: force {force:+.6}  (closed form {exact:+.6})");
        assert!((force - exact).abs() < 1e-12 * (1.0 + exact.abs()));
    }
    // At the minimum r = 2^(1/6) SIGMA the two terms of the force (each about 2.7 here)
    // cancel: what is left is rounding, of either sign.
    let r_min = 2f64.powf(1.0 / 6.0) * SIGMA;
    let force = -energy_jacrev(r_min);
    println!("r = {r_min:.4} (the minimum): force {force:+.1e}, zero up to rounding");
    assert!(force.abs() < 1e-14);

    let g = sum_of_sines_grad([0.0, 1.0, 2.0]);
    println!("grad sum sin([0, 1, 2]) = {g:?}  (= cos x)");

    let h = rosenbrock_jacrev_jacfwd([1.0, 1.0]);
    println!("hessian of rosenbrock at its minimum = {h:?}");
    assert_eq!(h, [[802.0, -400.0], [-400.0, 200.0]]);

    let (dw, value) = loss2_grad_and_value(0.5, 2.0);
    let hw = loss_hessian(0.5, 2.0);
    println!("loss = {value:.6}, dloss/dw = {dw:.6}, d2loss/dw2 = {hw:.6}");

    let (y, pullback) = squash_vjp([0.1, 0.2, 0.3]);
    let (x_bar,) = pullback([1.0, 1.0, 1.0]);
    let jac = squash2_jacfwd([0.1, 0.2, 0.3]);
    // jvp of the Jacobian: how the Jacobian changes along the tangent (1, 1, 1). On the
    // diagonal, d/dx (1 - tanh(x)^2) = -2 tanh(x) (1 - tanh(x)^2).
    let (_, jac_dot) = squash2_jacfwd_jvp([0.1, 0.2, 0.3], [1.0, 1.0, 1.0]);
    println!(
        "tanh(x) = {y:?}\n  vjp(ones) = {x_bar:?}\n  diag(jacfwd) = {:?}",
        [jac[0][0], jac[1][1], jac[2][2]]
    );
    println!("  d(jacobian) along (1, 1, 1) = {jac_dot:?}");
    for i in 0..3 {
        assert!((x_bar[i] - jac[i][i]).abs() < 1e-15);
        assert!((jac_dot[i][i] + 2.0 * y[i] * jac[i][i]).abs() < 1e-15);
    }
}
