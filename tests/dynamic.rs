//! Dynamic-length data through the real macros: slice arguments (`&[f64]`, `&[[f64; 3]]`,
//! `&Vec<f64>`), `xs.len()`, loops with run-time bounds (`0..xs.len()`, `0..n`, the
//! triangular `i + 1..n` and `0..i`, reversed and inclusive ranges), in every mode, against
//! central finite differences and forward against reverse, at lengths 0, 1 and more.
//!
//! Tolerances: central differences with step `h = 6e-6 max(1, |x|)`, derivatives within
//! `1e-6 max(1, |fd|)` (as `tests/compiled.rs`); forward against reverse within
//! `1e-12 max(1, |a|)` (the same products in another order).

// `&Vec<f64>` on purpose: the macros read it as a slice.
#![allow(clippy::needless_range_loop, clippy::ptr_arg)]

use fluxion::grad;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const STEP: f64 = 6e-6;

/// Central differences of `f` at `x` (one entry per float of `x`).
fn fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let h = STEP * x[i].abs().max(1.0);
            let mut p = x.to_vec();
            let mut m = x.to_vec();
            p[i] += h;
            m[i] -= h;
            (f(&p) - f(&m)) / (2.0 * h)
        })
        .collect()
}

#[track_caller]
fn assert_fd(got: &[f64], want: &[f64]) {
    assert_eq!(
        got.len(),
        want.len(),
        "lengths: got {got:?}, finite differences {want:?}"
    );
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, 1e-6), "entry {k}: got {g}, finite differences {w}");
    }
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, 1e-12), "entry {k}: {g} against {w}");
    }
}

const LENGTHS: [usize; 6] = [0, 1, 2, 3, 5, 8];

// ---------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------

/// A loop to `xs.len()`.
#[fluxion::transforms(grad, grad_and_value, jvp, vjp)]
fn weighted(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        let w = (i as f64 + 1.0).sqrt();
        s += w * xs[i] * xs[i].sin();
    }
    s
}

/// The pair energy of Lennard-Jones particles: every pair once, `j` from `i + 1`.
#[fluxion::transforms(grad, grad_and_value)]
fn lj_energy(xs: &[[f64; 3]]) -> f64 {
    let n = xs.len();
    let mut e = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let mut r2 = 0.0;
            for k in 0..3 {
                let d = xs[i][k] - xs[j][k];
                r2 += d * d;
            }
            let s6 = (0.25 / r2).powi(3);
            e += 4.0 * (s6 * s6 - s6);
        }
    }
    e
}

/// The lower triangle `j < i` with `n` a parameter, and a state carried across the
/// iterations of the inner loop (its values differ in every iteration).
#[fluxion::transforms(grad(argnums = 0), jvp)]
fn lower(xs: &[f64], n: usize) -> f64 {
    let mut total = 0.0;
    for i in 0..n {
        let mut acc = xs[i];
        for j in 0..i {
            acc = (acc * xs[j]).tanh() + 0.5 * acc;
        }
        total += acc * acc;
    }
    total
}

/// Reversed and inclusive run-time ranges, a `&Vec<f64>` argument and a scalar argument.
#[grad(argnums = (0, 1))]
fn horner(cs: &Vec<f64>, x: f64) -> f64 {
    let mut y = 0.0;
    let m = cs.len();
    if m > 0 {
        for i in (0..=m - 1).rev() {
            y = y * x + cs[i].cos();
        }
    }
    y
}

/// A fixed-size parameter with slices of data: a model fitted to points.
#[fluxion::transforms(grad(argnums = 0), hessian(argnums = 0), jacrev(argnums = 0), jacfwd(argnums = 0))]
fn fit(w: [f64; 2], xs: &[f64], ys: &[f64]) -> f64 {
    let mut l = 0.0;
    for i in 0..xs.len() {
        let r = (w[0] * xs[i]).tanh() * w[1] - ys[i];
        l += r * r;
    }
    l / (xs.len() as f64 + 1.0)
}

/// A vector-valued function of a fixed parameter, with slice data: Jacobians both ways.
#[fluxion::transforms(jacrev(argnums = 0), jacfwd(argnums = 0))]
fn moments(w: [f64; 2], xs: &[f64]) -> [f64; 2] {
    let mut m = [0.0; 2];
    for i in 0..xs.len() {
        let t = (w[0] + w[1] * xs[i]).exp();
        m[0] += t;
        m[1] += t * xs[i];
    }
    m
}

/// A callee with a slice argument, called from another annotated function.
#[grad]
fn norm2(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += xs[i] * xs[i];
    }
    s
}

#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn scaled(xs: &[f64], a: f64) -> f64 {
    let s = norm2(xs);
    a * (s + 1.0).sqrt() + xs.len() as f64
}

/// A call inside a loop with a run-time bound.
#[grad(argnums = 0)]
fn calls_in_loop(xs: &[f64], k: usize) -> f64 {
    let mut t = 0.0;
    for r in 0..k {
        t += norm2(xs) * (r as f64 + 1.0);
    }
    t
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn a_loop_to_the_length_of_a_slice_in_every_mode() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n, s as u64);
        let g = weighted_grad(&x);
        assert_fd(&g, &fd(&|x| weighted(x), &x));
        let (g2, v) = weighted_grad_and_value(&x);
        assert_eq!(v.to_bits(), weighted(&x).to_bits());
        assert_eq!(g, g2);
        // Forward against reverse: the directional derivative along u is <grad, u>.
        let u = points(n, 100 + s as u64);
        let (y, dy) = weighted_jvp(&x, &u);
        assert_eq!(y.to_bits(), weighted(&x).to_bits());
        let dot: f64 = g.iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!(close(dy, dot, 1e-12), "jvp {dy} against <grad, u> {dot}");
        let (y, pullback) = weighted_vjp(&x);
        assert_eq!(y.to_bits(), weighted(&x).to_bits());
        assert_close(&pullback(2.0).0, &g.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
        // The pullback can be called again (its tapes are read, not consumed).
        assert_close(&pullback(1.0).0, &g);
    }
}

#[test]
fn the_gradient_of_a_pair_potential_over_all_pairs() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let xs = particles(n, s as u64);
        let g = lj_energy_grad(&xs);
        assert_eq!(g.len(), n);
        let want = fd(&|v| lj_energy(&unflat3(v)), &flat3(&xs));
        assert_fd(&flat3(&g), &want);
        let (g2, v) = lj_energy_grad_and_value(&xs);
        assert_eq!(v.to_bits(), lj_energy(&xs).to_bits());
        assert_eq!(g, g2);
        // Newton's third law: the forces sum to zero.
        for k in 0..3 {
            let f: f64 = g.iter().map(|p| p[k]).sum();
            assert!(f.abs() < 1e-9 * g.iter().map(|p| p[k].abs()).sum::<f64>().max(1.0));
        }
    }
    // The energy is not trivially zero: pairs do interact.
    assert!(lj_energy(&particles(3, 1)).abs() > 1e-6);
}

#[test]
fn a_lower_triangular_loop_with_state_carried_across_iterations() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n + 2, 7 + s as u64);
        // The loop bound `n` may be shorter than the slice: only the first `n` count.
        let g = lower_grad(&x, n);
        assert_eq!(g.len(), n + 2);
        assert_fd(&g, &fd(&|v| lower(v, n), &x));
        assert!(g[n..].iter().all(|v| *v == 0.0));
        let u = points(n + 2, 50 + s as u64);
        let (y, dy) = lower_jvp(&x, n, &u);
        assert_eq!(y.to_bits(), lower(&x, n).to_bits());
        let dot: f64 = g.iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!(close(dy, dot, 1e-12), "jvp {dy} against <grad, u> {dot}");
    }
}

#[test]
fn reversed_and_inclusive_ranges_over_a_vec() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let cs = points(n, 3 + s as u64);
        let x = 0.7;
        let (gc, gx) = horner_grad(&cs, x);
        assert_fd(&gc, &fd(&|c| horner(&c.to_vec(), x), &cs));
        assert_fd(&[gx], &fd(&|v| horner(&cs, v[0]), &[x]));
    }
}

#[test]
fn derivatives_in_a_fixed_parameter_with_slices_of_data() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 11 + s as u64);
        let ys = points(n, 21 + s as u64);
        let w = [0.8, -1.1];
        let f = |v: &[f64]| fit([v[0], v[1]], &xs, &ys);
        let g = fit_grad(w, &xs, &ys);
        assert_fd(&g, &fd(&f, &w));
        assert_close(&fit_jacrev(w, &xs, &ys), &g);
        assert_close(&fit_jacfwd(w, &xs, &ys), &g);
        let h = fit_hessian(w, &xs, &ys);
        for i in 0..2 {
            let row = fd(&|v| fit_grad([v[0], v[1]], &xs, &ys)[i], &w);
            assert_fd(&h[i], &row);
        }
        let jr = moments_jacrev(w, &xs);
        let jf = moments_jacfwd(w, &xs);
        for i in 0..2 {
            assert_fd(&jr[i], &fd(&|v| moments([v[0], v[1]], &xs)[i], &w));
            assert_close(&jr[i], &jf[i]);
        }
    }
}

#[test]
fn calls_between_functions_with_slice_arguments() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n, 31 + s as u64);
        let a = 1.7;
        let (gx, ga) = scaled_grad(&x, a);
        if n > 0 {
            assert_fd(&gx, &fd(&|v| scaled(v, a), &x));
        }
        assert_fd(&[ga], &fd(&|v| scaled(&x, v[0]), &[a]));
        let u = points(n, 41 + s as u64);
        let (y, dy) = scaled_jvp(&x, a, &u, 0.5);
        assert_eq!(y.to_bits(), scaled(&x, a).to_bits());
        let dot: f64 = gx.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>() + 0.5 * ga;
        assert!(close(dy, dot, 1e-12), "jvp {dy} against <grad, u> {dot}");
        for k in [0, 1, 3] {
            let g = calls_in_loop_grad(&x, k);
            assert_fd(&g, &fd(&|v| calls_in_loop(v, k), &x));
        }
        assert_close(&norm2_grad(&x), &x.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }
}

#[test]
fn into_forms_write_a_slice_gradient_into_the_callers_buffer() {
    let x = points(5, 9);
    let mut out = [7.0; 5];
    weighted_grad_into(&x, &mut out);
    assert_eq!(out.to_vec(), weighted_grad(&x));
    let ps = particles(5, 2);
    let mut out = vec![[3.0; 3]; 5];
    lj_energy_grad_into(&ps, &mut out);
    assert_eq!(out, lj_energy_grad(&ps));
    // `grad_and_value`'s buffer holds the value and a `Vec` of the slice's length.
    let mut both = (vec![[1.0; 3]; 5], 0.0);
    lj_energy_grad_and_value_into(&ps, &mut both);
    assert_eq!(both, lj_energy_grad_and_value(&ps));
}

#[test]
#[should_panic(expected = "the buffer for the gradient of `xs` has length 4, but `xs` has length 5")]
fn an_into_buffer_of_the_wrong_length_panics_naming_the_argument() {
    let x = points(5, 9);
    let mut out = [0.0; 4];
    weighted_grad_into(&x, &mut out);
}

/// A shared slice and a shared run-time loop bound in a batched function.
#[fluxion::vmap(in_dims = (0, None))]
fn poly(x: f64, cs: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in (0..cs.len()).rev() {
        y = y * x + cs[i];
    }
    y
}

#[test]
fn vmap_with_a_shared_slice() {
    let cs = [0.5, -1.0, 2.0, 0.25];
    for n in [0, 1, 3, 4, 5, 9] {
        let xs = points(n, 60 + n as u64);
        let ys = poly_vmap(&xs, &cs);
        assert_eq!(ys.len(), n);
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(y.to_bits(), poly(*x, &cs).to_bits());
        }
    }
    assert_eq!(poly_vmap(&[2.0], &[]), vec![0.0]);
}

/// A callee over a slice, differentiated at second order through the call (forward over
/// reverse: the callee's `vjp_jvp` companion).
#[fluxion::differentiable]
fn inner(a: f64, xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        for j in 0..i {
            s += (a * xs[i] * xs[j]).sin();
        }
    }
    s
}

#[fluxion::transforms(grad(argnums = 0), hessian(argnums = 0))]
fn outer(w: [f64; 2], xs: &[f64]) -> f64 {
    inner(w[0], xs) * w[1] + inner(w[1] * w[0], xs)
}

#[test]
fn second_order_through_a_call_with_a_slice() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 70 + s as u64);
        let w = [0.6, -0.9];
        let g = outer_grad(w, &xs);
        assert_fd(&g, &fd(&|v| outer([v[0], v[1]], &xs), &w));
        let h = outer_hessian(w, &xs);
        for i in 0..2 {
            assert_fd(&h[i], &fd(&|v| outer_grad([v[0], v[1]], &xs)[i], &w));
        }
        if n >= 2 {
            assert!(h[0][0] != 0.0);
        }
    }
}

/// A run-time trip count without a slice: `n` a parameter, and a `let` of it.
#[fluxion::transforms(grad(argnums = 0), jvp, hessian(argnums = 0))]
fn iterate(x: f64, n: usize) -> f64 {
    let mut y = x;
    let m = n;
    for k in 0..m {
        y = (y * x).sin() + 0.1 * k as f64;
    }
    y
}

#[test]
fn a_run_time_trip_count_without_slices() {
    for n in [0, 1, 2, 7] {
        let x = 0.8;
        let g = iterate_grad(x, n);
        assert_fd(&[g], &fd(&|v| iterate(v[0], n), &[x]));
        let (y, dy) = iterate_jvp(x, n, 1.0);
        assert_eq!(y.to_bits(), iterate(x, n).to_bits());
        assert!(close(dy, g, 1e-12), "{dy} against {g}");
        let h = iterate_hessian(x, n);
        assert_fd(&[h], &fd(&|v| iterate_grad(v[0], n), &[x]));
    }
}

#[fluxion::differentiable]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..a.len() {
        s += a[i] * b[i].sin();
    }
    s
}

/// The same slice passed twice: the second cotangent is added into the first's
/// accumulator after the call (the runtime's `acc_slice`).
#[grad]
fn self_dot(xs: &[f64]) -> f64 {
    dot(xs, xs)
}

#[test]
fn a_slice_passed_twice_to_a_call() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n, 80 + s as u64);
        let g = self_dot_grad(&x);
        assert_fd(&g, &fd(&|v| self_dot(v), &x));
        let want: Vec<f64> = x.iter().map(|v| v.sin() + v * v.cos()).collect();
        assert_close(&g, &want);
    }
}

/// The sum of a slice (its adjoint broadcasts the cotangent: the runtime's
/// `broadcast_vec`) and of an empty one.
#[fluxion::transforms(grad, jvp)]
fn mean_square(xs: &[f64]) -> f64 {
    let s = xs.iter().sum::<f64>();
    let m = s / (xs.len() as f64 + 1.0);
    m * m + s.sin()
}

#[test]
fn the_sum_of_a_slice() {
    for (s, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n, 90 + s as u64);
        let g = mean_square_grad(&x);
        assert_eq!(g.len(), n);
        assert_fd(&g, &fd(&|v| mean_square(v), &x));
        let u = points(n, 95 + s as u64);
        let (_, dy) = mean_square_jvp(&x, &u);
        let dot: f64 = g.iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!(close(dy, dot, 1e-12));
    }
}

include!("support/dynamic_data.rs");
