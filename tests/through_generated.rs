//! Generated functions are themselves differentiable: a loss that calls `model_jacrev`
//! (forces) can be `#[grad]`-ed, which is reverse over reverse, as the Lennard-Jones
//! flagship trains on forces.

use approx::assert_abs_diff_eq;
use fluxion::{grad, jacrev};

/// A tiny "model": energy of a distance with two parameters.
#[jacrev(argnums = 0)]
fn model(r: f64, a: f64, b: f64) -> f64 {
    a * (b * r).tanh() + 0.5 * r * r
}

/// Force-matching loss: the model's force -dE/dr against a target, as a function of the
/// parameters; its gradient differentiates through `model_jacrev`.
#[grad(argnums = (1, 2))]
fn force_loss(r: f64, a: f64, b: f64, target: f64) -> f64 {
    let f = -model_jacrev(r, a, b);
    (f - target) * (f - target)
}

fn fd<F: Fn(f64) -> f64>(f: F, x: f64) -> f64 {
    let h = 1e-6 * x.abs().max(1.0);
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn grad_through_a_generated_jacobian() {
    let (r, a, b, t): (f64, f64, f64, f64) = (0.7, 1.3, 0.8, -0.4);
    // dE/dr = a b sech²(b r) + r, closed form.
    let s = 1.0 / (b * r).cosh();
    assert_abs_diff_eq!(model_jacrev(r, a, b), a * b * s * s + r, epsilon = 1e-14);
    let (da, db) = force_loss_grad(r, a, b, t);
    let fa = fd(|a| force_loss(r, a, b, t), a);
    let fb = fd(|b| force_loss(r, a, b, t), b);
    assert_abs_diff_eq!(da, fa, epsilon = 1e-7 * (1.0 + fa.abs()));
    assert_abs_diff_eq!(db, fb, epsilon = 1e-7 * (1.0 + fb.abs()));
}
