//! Calls into another crate's annotated functions, differentiated in both modes and at
//! second order (the companions are public with the functions).

use approx::{abs_diff_eq, assert_abs_diff_eq};
use fluxion::{grad, hessian, jacfwd};

/// Energy of two atoms through `physics_lib::lj` and `physics_lib::dist`.
#[grad]
fn pair(a: [f64; 3], b: [f64; 3]) -> f64 {
    physics_lib::lj(physics_lib::dist(a, b))
}

#[jacfwd]
fn pair_fwd(a: [f64; 3], b: [f64; 3]) -> f64 {
    physics_lib::lj(physics_lib::dist(a, b))
}

/// Second order through the other crate's functions.
#[hessian]
fn lj_h(r: f64) -> f64 {
    physics_lib::lj(r)
}

/// Through a generated function of the other crate (reverse over reverse).
#[grad]
fn force_sq(r: f64) -> f64 {
    let f = physics_lib::lj_jacrev(r);
    f * f
}

/// Through a custom rule of the other crate (reverse mode derived from its forward rule).
#[grad]
fn uses_cube(x: f64) -> f64 {
    physics_lib::cube(x) * 2.0
}

fn d1(r: f64) -> f64 {
    -12.0 / r.powi(13) + 6.0 / r.powi(7)
}
fn d2(r: f64) -> f64 {
    156.0 / r.powi(14) - 42.0 / r.powi(8)
}

#[test]
fn calls_across_crates() {
    let (a, b) = ([0.0, 0.0, 0.0], [1.1, 0.3, -0.2]);
    let r: f64 = (1.1f64 * 1.1 + 0.09 + 0.04).sqrt();
    let g = pair_grad(a, b);
    let gf = pair_fwd_jacfwd(a, b);
    for k in 0..3 {
        let exact = d1(r) * (a[k] - b[k]) / r;
        assert!(
            abs_diff_eq!(g[k], exact, epsilon = 1e-12 * (1.0 + exact.abs())),
            "{g:?}"
        );
        assert_abs_diff_eq!(gf[k], g[k], epsilon = 1e-13 * (1.0 + exact.abs()));
    }
    assert_abs_diff_eq!(lj_h_hessian(1.3), d2(1.3), epsilon = 1e-12 * d2(1.3).abs());
    // d/dr E'(r)² = 2 E' E''
    let exact = 2.0 * d1(1.3) * d2(1.3);
    assert_abs_diff_eq!(force_sq_grad(1.3), exact, epsilon = 1e-12 * exact.abs());
    assert_eq!(uses_cube_grad(2.0), 24.0);
}
