#![deny(missing_docs)]
//! Functions another crate differentiates through: `#[differentiable]`, a generated
//! function (`lj_jacrev`) and a custom rule, all public.

use fluxion::{custom_rule, differentiable, jacrev};

/// Lennard-Jones pair energy (reduced units).
#[differentiable]
#[jacrev]
pub fn lj(r: f64) -> f64 {
    (1.0 / r).powi(12) - (1.0 / r).powi(6)
}

/// Distance between two points.
#[differentiable]
pub fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for k in 0..3 {
        let d = a[k] - b[k];
        s += d * d;
    }
    s.sqrt()
}

/// `x³`, opaque to the engine, with a hand-written forward rule.
#[custom_rule(jvp = cube_jvp)]
pub fn cube(x: f64) -> f64 {
    x * x * x
}

/// The forward rule of [`cube`].
pub fn cube_jvp(x: f64, dx: f64) -> (f64, f64) {
    (x * x * x, 3.0 * x * x * dx)
}
