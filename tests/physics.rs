//! The Lennard-Jones potential `E(r) = EPS ((SIGMA / r)^12 - (SIGMA / r)^6)`: generated
//! derivatives against the closed forms
//!
//! ```text
//! E'(r)  = EPS (-12 SIGMA^12 / r^13 + 6 SIGMA^6 / r^7)      (the force is -E'(r))
//! E''(r) = EPS (156 SIGMA^12 / r^14 - 42 SIGMA^6 / r^8)
//! ```
//!
//! in 1-D, and in 3-D for a pair of atoms (`E(|a - b|)`, whose gradient with respect to `a`
//! is `E'(r) (a - b) / r`, the negative force on `a`) and for a small cluster (forces sum
//! to zero).
//!
//! Tolerances: `E'` and `E''` are differences of two terms of similar size (they cancel at
//! the minimum `r = 2^(1/6) SIGMA`), so errors are measured against the size of the terms:
//! `|a - b| <= 1e-13 * (|term 1| + |term 2|)` (`REL`, ~450 ulps, enough for
//! the different evaluation order of `powi` chains in the generated code). Forward and
//! reverse mode are compared with the same bound.

#![allow(clippy::needless_range_loop)] // differentiated bodies use index loops (the supported form)

use approx::{abs_diff_eq, assert_abs_diff_eq};
use fluxion::{differentiable, grad, grad_and_value, hessian, jacfwd, jacrev};

/// Argon: well depth in kJ/mol and diameter in Angstrom.
const EPS: f64 = 0.996;
const SIGMA: f64 = 3.405;

const REL: f64 = 1e-13;

/// Distances from the repulsive wall to the tail (the minimum is at ~3.822).
const RS: [f64; 7] = [3.0, 3.4, 3.6, 3.9, 4.5, 6.0, 10.0];

#[jacfwd]
#[jacrev]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[grad_and_value]
fn energy_g(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[jacfwd]
fn energy_f(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[hessian]
fn energy_h(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// The same energy written with a shared subexpression and `powf`.
#[hessian]
fn energy_powf(r: f64) -> f64 {
    let s6 = (SIGMA / r).powf(6.0);
    EPS * (s6 * s6 - s6)
}

/// `E'(r)` and the size of its two terms.
fn de(r: f64) -> (f64, f64) {
    let a = -12.0 * EPS * SIGMA.powi(12) / r.powi(13);
    let b = 6.0 * EPS * SIGMA.powi(6) / r.powi(7);
    (a + b, a.abs() + b.abs())
}

/// `E''(r)` and the size of its two terms.
fn d2e(r: f64) -> (f64, f64) {
    let a = 156.0 * EPS * SIGMA.powi(12) / r.powi(14);
    let b = -42.0 * EPS * SIGMA.powi(6) / r.powi(8);
    (a + b, a.abs() + b.abs())
}

#[track_caller]
fn assert_near(what: &str, got: f64, (want, scale): (f64, f64)) {
    assert!(
        abs_diff_eq!(got, want, epsilon = REL * scale),
        "{what}: got {got:e}, want {want:e} (diff {:e}, bound {:e})",
        got - want,
        REL * scale
    );
}

#[test]
fn lj_derivative_matches_closed_form() {
    for r in RS {
        assert_near(&format!("jacrev E'({r})"), energy_jacrev(r), de(r));
        let (g, v) = energy_g_grad_and_value(r);
        assert_near(&format!("grad E'({r})"), g, de(r));
        assert_eq!(v.to_bits(), energy(r).to_bits(), "value at {r}");
        assert_near(&format!("jacfwd E'({r})"), energy_f_jacfwd(r), de(r));
        // jacfwd == jacrev
        let scale = de(r).1;
        assert_abs_diff_eq!(energy_f_jacfwd(r), energy_jacrev(r), epsilon = REL * scale);
    }
    // Repulsive inside the minimum, attractive outside: the force -E' changes sign.
    assert!(-energy_jacrev(3.4) > 0.0);
    assert!(-energy_jacrev(4.5) < 0.0);
}

#[test]
fn lj_force_vanishes_at_minimum() {
    let r_min = 2f64.powf(1.0 / 6.0) * SIGMA;
    let scale = de(r_min).1;
    for f in [
        energy_jacrev(r_min),
        energy_g_grad_and_value(r_min).0,
        energy_f_jacfwd(r_min),
    ] {
        assert!(
            abs_diff_eq!(f, 0.0, epsilon = REL * scale),
            "force at the minimum: {f:e} (terms of size {scale:e})"
        );
    }
    // ... and the curvature there is 18 EPS / r_min^2 = 9 * 2^(2/3) EPS / SIGMA^2 (the
    // harmonic constant).
    let k = 9.0 * 2f64.powf(2.0 / 3.0) * EPS / (SIGMA * SIGMA);
    assert_near("E''(r_min)", energy_h_hessian(r_min), (k, d2e(r_min).1));
}

#[test]
fn lj_hessian_matches_closed_form() {
    for r in RS {
        assert_near(&format!("hessian E''({r})"), energy_h_hessian(r), d2e(r));
        assert_near(&format!("jacfwd(jacrev) E''({r})"), energy_jacrev_jacfwd(r), d2e(r));
        assert_near(&format!("powf E''({r})"), energy_powf_hessian(r), d2e(r));
        assert_eq!(energy_h_hessian(r), energy_jacrev_jacfwd(r));
    }
}

// ---------------------------------------------------------------------------------------
// 3-D: two atoms at `a` and `b`.
// ---------------------------------------------------------------------------------------

/// The pair potential, called from the 3-D energies below.
#[differentiable]
fn lj(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// Energy of two atoms, written inline; gradient with respect to `a`.
#[jacfwd]
#[jacrev]
fn pair_energy(a: [f64; 3], b: [f64; 3]) -> f64 {
    let mut d2 = 0.0;
    for k in 0..3 {
        let d = a[k] - b[k];
        d2 += d * d;
    }
    let r = d2.sqrt();
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[jacfwd]
fn pair_energy_fwd(a: [f64; 3], b: [f64; 3]) -> f64 {
    let mut d2 = 0.0;
    for k in 0..3 {
        let d = a[k] - b[k];
        d2 += d * d;
    }
    let r = d2.sqrt();
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// The same through a call of the `#[differentiable]` pair potential; both positions.
#[grad(argnums = (0, 1))]
fn pair_energy_call(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    lj((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt())
}

/// Hessian with respect to `a`, written inline.
#[hessian]
fn pair_energy_h(a: [f64; 3], b: [f64; 3]) -> f64 {
    let mut d2 = 0.0;
    for k in 0..3 {
        let d = a[k] - b[k];
        d2 += d * d;
    }
    let r = d2.sqrt();
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// Hessian with respect to `a`, through the call of `lj` (second order through a
/// `#[differentiable]` function).
#[hessian]
fn pair_energy_call_h(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    lj((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt())
}

/// Hessian with respect to the position of one of two 1-D atoms, through the call of `lj`.
#[hessian]
fn pair_energy_call_1d(a: f64, b: f64) -> f64 {
    lj((a - b).abs())
}

const PAIRS: [([f64; 3], [f64; 3]); 4] = [
    ([0.0, 0.0, 0.0], [3.9, 0.0, 0.0]),
    ([0.5, -1.0, 2.0], [2.1, 1.2, 0.3]),
    ([1.0, 1.0, 1.0], [-2.0, 3.0, 2.5]),
    // At the minimum, r = 2^(1/6) SIGMA: zero force.
    ([0.0, 0.0, 0.0], [0.0, 0.0, 1.122_462_048_309_373 * SIGMA]),
];

fn dist(a: [f64; 3], b: [f64; 3]) -> (f64, [f64; 3]) {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    (r, d)
}

#[test]
fn pair_gradient_is_minus_force() {
    for (a, b) in PAIRS {
        let (r, d) = dist(a, b);
        let (de_r, scale) = de(r);
        let g = pair_energy_jacrev(a, b);
        let gf = pair_energy_fwd_jacfwd(a, b);
        let (ga, gb) = pair_energy_call_grad(a, b);
        for k in 0..3 {
            // grad_a E = E'(r) (a - b) / r; the force on a is its negative.
            let want = (de_r * d[k] / r, scale * (d[k] / r).abs() + 1e-300);
            assert_near(&format!("grad_a[{k}] at r = {r}"), g[k], want);
            assert_near(&format!("jacfwd grad_a[{k}] at r = {r}"), gf[k], want);
            assert_near(&format!("call grad_a[{k}] at r = {r}"), ga[k], want);
            // Newton's third law.
            assert_eq!(gb[k], -ga[k], "grad_b = -grad_a");
            assert!(
                abs_diff_eq!(g[k], gf[k], epsilon = REL * scale),
                "jacfwd != jacrev: {} {}",
                g[k],
                gf[k]
            );
        }
    }
}

#[test]
fn pair_hessian_matches_closed_form() {
    for (a, b) in PAIRS {
        let (r, d) = dist(a, b);
        let u = d.map(|v| v / r);
        let (e1, s1) = de(r);
        let (e2, s2) = d2e(r);
        // H = E'' u u^T + E'/r (I - u u^T)
        let h = pair_energy_h_hessian(a, b);
        let h2 = pair_energy_jacrev_jacfwd(a, b);
        let h3 = pair_energy_call_h_hessian(a, b);
        for i in 0..3 {
            for j in 0..3 {
                let delta = if i == j { 1.0 } else { 0.0 };
                let want = e2 * u[i] * u[j] + e1 / r * (delta - u[i] * u[j]);
                let scale = s2 + s1 / r;
                assert!(
                    abs_diff_eq!(h[i][j], want, epsilon = REL * scale),
                    "H[{i}][{j}] at r = {r}: got {:e}, want {want:e}",
                    h[i][j]
                );
                assert!(
                    abs_diff_eq!(h2[i][j], want, epsilon = REL * scale),
                    "jacfwd(jacrev) H[{i}][{j}] at r = {r}: got {:e}, want {want:e}",
                    h2[i][j]
                );
                assert!(
                    abs_diff_eq!(h3[i][j], want, epsilon = REL * scale),
                    "H[{i}][{j}] through lj at r = {r}: got {:e}, want {want:e}",
                    h3[i][j]
                );
                // Symmetric up to rounding (H[i][j] and H[j][i] come from different sweeps).
                assert!(
                    abs_diff_eq!(h[i][j], h[j][i], epsilon = REL * scale),
                    "not symmetric: {h:?}"
                );
            }
        }
    }
}

#[test]
fn pair_hessian_through_call_1d() {
    for r in RS {
        let (a, b) = (0.25, 0.25 + r);
        let h = pair_energy_call_1d_hessian(a, b);
        assert_near(&format!("E''({r}) through lj"), h, d2e(r));
    }
}

// ---------------------------------------------------------------------------------------
// A cluster of 4 atoms: nested loops over pairs, a call of `lj` per pair.
// ---------------------------------------------------------------------------------------

#[jacrev]
fn cluster_energy(x: [[f64; 3]; 4]) -> f64 {
    let mut e = 0.0;
    for i in 0..4 {
        for j in 0..4 {
            if j > i {
                let mut d2 = 0.0;
                for k in 0..3 {
                    let d = x[i][k] - x[j][k];
                    d2 += d * d;
                }
                e += lj(d2.sqrt());
            }
        }
    }
    e
}

#[jacfwd]
fn cluster_energy_fwd(x: [[f64; 3]; 4]) -> f64 {
    let mut e = 0.0;
    for i in 0..4 {
        for j in 0..4 {
            if j > i {
                let mut d2 = 0.0;
                for k in 0..3 {
                    let d = x[i][k] - x[j][k];
                    d2 += d * d;
                }
                e += lj(d2.sqrt());
            }
        }
    }
    e
}

#[test]
fn cluster_forces_sum_to_zero_and_match_pairs() {
    let x = [[0.0, 0.0, 0.0], [3.8, 0.1, -0.2], [1.9, 3.3, 0.4], [1.7, 1.2, 3.1]];
    let g: [[f64; 3]; 4] = cluster_energy_jacrev(x);
    let gf: [[f64; 3]; 4] = cluster_energy_fwd_jacfwd(x);
    let mut total = [0.0f64; 3];
    let mut scale = 0.0;
    for i in 0..4 {
        // The gradient on atom i is the sum of its pair gradients.
        let mut want = [0.0; 3];
        for j in 0..4 {
            if j != i {
                let (r, d) = dist(x[i], x[j]);
                let (e1, s1) = de(r);
                scale += s1;
                for k in 0..3 {
                    want[k] += e1 * d[k] / r;
                }
            }
        }
        for k in 0..3 {
            total[k] += g[i][k];
            assert!(
                abs_diff_eq!(g[i][k], want[k], epsilon = REL * scale),
                "atom {i} axis {k}: {} vs {}",
                g[i][k],
                want[k]
            );
            assert!(
                abs_diff_eq!(g[i][k], gf[i][k], epsilon = REL * scale),
                "jacfwd != jacrev at atom {i} axis {k}"
            );
        }
    }
    for k in 0..3 {
        assert!(
            abs_diff_eq!(total[k], 0.0, epsilon = REL * scale),
            "net force {total:?}"
        );
    }
}
