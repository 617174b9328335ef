//! `vmap` of functions that call other annotated functions: the batched kernel calls the
//! callee's lanes companion (`lanes`, `jvp_lanes`, `vjp_fwd_lanes`, ..), built by the
//! callee's own macro, with shared arguments spread into every lane. Each sample's result
//! is checked against the unbatched generated function called in a loop: bit for bit where
//! only arithmetic, `sqrt` and selects are involved, within the lane functions' bound
//! (`ULPS`) through a lane transcendental. A `#[custom_rule]` callee's lanes companions run
//! the scalar function and rules lane by lane: bit for bit, transcendentals included.

use fluxion::{custom_rule, differentiable, grad, grad_and_value, jacfwd, jvp, vmap};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 9, 1023];

/// Tolerance of results computed through lane transcendentals, in ulps of the result.
const ULPS: f64 = 8.0;

/// Tolerance of a gradient through two lane transcendentals and a cancellation.
const COMPOSED: f64 = 64.0;

fn close(a: f64, b: f64, ulps: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ulps * f64::EPSILON * a.abs().max(b.abs())
}

/// `n` points in `[-1.5, 1.5)`, not evenly spaced.
fn points(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

// Callees: arithmetic and `sqrt` only (exact on lanes), a transcendental, array and tuple
// results, an integer argument, and a callee that calls another.

#[differentiable]
fn poly(x: f64, w: [f64; 2]) -> f64 {
    w[0] * x * x + w[1] * x + (x * x + 1.0).sqrt()
}

#[differentiable]
fn squash(x: f64) -> f64 {
    x.tanh() * 0.5
}

#[differentiable]
fn split(x: f64) -> (f64, f64) {
    (x * x, 3.0 * x - 1.0)
}

#[differentiable]
fn pair(x: f64, y: f64) -> [f64; 2] {
    [x * y, x - y * y]
}

#[differentiable]
fn power(x: f64, n: i32) -> f64 {
    x.powi(n) + x
}

#[differentiable]
fn outer(x: f64, w: [f64; 2]) -> f64 {
    poly(x, w) * poly(w[1], w) + x
}

/// Arithmetic through calls: every composition bit for bit against the loop.
#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn through_arith(x: f64, w: [f64; 2]) -> f64 {
    let (a, b) = split(x);
    let p = pair(a, w[0]);
    poly(b, w) * p[0] - p[1] + power(x, 3) + outer(x, w)
}

#[vmap(in_dims = (0, None))]
fn through_arith_value(x: f64, w: [f64; 2]) -> f64 {
    let (a, b) = split(x);
    let p = pair(a, w[0]);
    poly(b, w) * p[0] - p[1] + power(x, 3) + outer(x, w)
}

#[vmap(in_dims = (0, None, 0, None))]
#[jvp]
fn through_arith_jvp(x: f64, w: [f64; 2]) -> f64 {
    let (a, b) = split(x);
    let p = pair(a, w[0]);
    poly(b, w) * p[0] - p[1] + power(x, 3) + outer(x, w)
}

#[vmap]
#[jacfwd]
fn through_arith_jacobian(x: [f64; 2]) -> [f64; 2] {
    let p = pair(x[0], x[1]);
    [poly(p[0], x), p[1] * x[0]]
}

#[test]
fn every_composition_through_calls_bit_for_bit() {
    let w = [0.75, -1.25];
    for n in SIZES {
        let xs = points(n);
        let (g, v) = through_arith_grad_and_value_vmap(&xs, w);
        let y = through_arith_value_vmap(&xs, w);
        let ts: Vec<f64> = xs.iter().map(|x| 0.5 - x).collect();
        let (jy, jt) = through_arith_jvp_jvp_vmap(&xs, w, &ts, [0.25, -0.5]);
        let x2: Vec<[f64; 2]> = xs.iter().map(|&x| [x, 0.5 * x - 0.25]).collect();
        let j = through_arith_jacobian_jacfwd_vmap(&x2);
        for k in 0..n {
            let x = xs[k];
            let (gk, vk) = through_arith_grad_and_value(x, w);
            assert_eq!(
                (g[k].0.to_bits(), v[k].to_bits()),
                (gk.0.to_bits(), vk.to_bits()),
                "grad, n = {n}, x = {x}"
            );
            assert_eq!(g[k].1, gk.1, "grad w, n = {n}, x = {x}");
            assert_eq!(y[k].to_bits(), vk.to_bits(), "value, n = {n}, x = {x}");
            let (yk, tk) = through_arith_jvp_jvp(x, w, ts[k], [0.25, -0.5]);
            assert_eq!(
                (jy[k].to_bits(), jt[k].to_bits()),
                (yk.to_bits(), tk.to_bits()),
                "jvp, n = {n}, x = {x}"
            );
            assert_eq!(
                j[k],
                through_arith_jacobian_jacfwd(x2[k]),
                "jacfwd, n = {n}, x = {:?}",
                x2[k]
            );
        }
    }
}

/// A lane transcendental inside the callee, and a call's result through `powi`. The lane
/// `tanh` is within a few ulp of std's; its derivative `1 - tanh^2` and the chain through
/// `sin` amplify that (cancellation near `tanh = ±1`), so the gradient is compared within
/// `COMPOSED` ulp.
#[vmap(in_dims = (0, None))]
#[grad_and_value]
fn through_tanh(x: f64, s: f64) -> f64 {
    let y = squash(x * s);
    y.powi(3) + squash(y).sin()
}

#[test]
fn transcendentals_in_callees_within_the_lane_bound() {
    for n in SIZES {
        let xs = points(n);
        let (g, v) = through_tanh_grad_and_value_vmap(&xs, 1.5);
        for k in 0..n {
            let (want, value) = through_tanh_grad_and_value(xs[k], 1.5);
            assert!(close(v[k], value, ULPS), "n = {n}, x = {}: {} vs {value}", xs[k], v[k]);
            assert!(
                close(g[k], want, COMPOSED),
                "n = {n}, x = {}: {} vs {want}",
                xs[k],
                g[k]
            );
        }
    }
}

/// A call under a batched condition, whose untaken side is NaN (`sqrt` of a negative): the
/// results, and the gradient (the callee's accumulators written under the mask).
#[vmap]
#[grad_and_value]
fn guarded(x: f64) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y = poly(x.sqrt(), [1.0, -2.0]);
    }
    if x < 0.25 {
        power(y, 2)
    } else {
        squash(y) * 0.0 + y
    }
}

#[test]
fn calls_under_batched_conditions_take_their_own_side() {
    let xs = [-1.0, 4.0, 0.0, -0.0, 2.25, -9.0, 1e-300, 0.5, -0.5];
    let (g, v) = guarded_grad_and_value_vmap(&xs);
    for (k, &x) in xs.iter().enumerate() {
        let (gk, vk) = guarded_grad_and_value(x);
        assert_eq!(
            (g[k].to_bits(), v[k].to_bits()),
            (gk.to_bits(), vk.to_bits()),
            "x = {x}"
        );
        assert!(!g[k].is_nan() && !v[k].is_nan(), "x = {x}");
    }
}

/// A shared call (no batched argument) stays one scalar call per chunk; its result, an
/// array, is spread into the lanes where it meets them.
#[vmap(in_dims = (0, None))]
#[grad]
fn shared_call(x: f64, w: f64) -> f64 {
    let c = pair(w, 2.0);
    let (_, b) = split(w);
    poly(x, c) + b * x
}

#[test]
fn shared_call_results_are_spread() {
    for n in SIZES {
        let xs = points(n);
        let g = shared_call_grad_vmap(&xs, 0.375);
        for k in 0..n {
            assert_eq!(
                g[k].to_bits(),
                shared_call_grad(xs[k], 0.375).to_bits(),
                "n = {n}, x = {}",
                xs[k]
            );
        }
    }
}

#[differentiable]
fn scale32(x: f32, s: f32) -> f32 {
    x * s + (x * x).sqrt()
}

/// `f32` callees batch on eight lanes.
#[vmap(in_dims = (0, None))]
#[grad]
fn through_f32(x: f32, s: f32) -> f32 {
    scale32(x, s) * x
}

#[test]
fn f32_calls_on_eight_lanes() {
    for n in SIZES {
        let xs: Vec<f32> = points(n).iter().map(|&x| x as f32).collect();
        let g = through_f32_grad_vmap(&xs, 0.5);
        for k in 0..n {
            assert_eq!(
                g[k].to_bits(),
                through_f32_grad(xs[k], 0.5).to_bits(),
                "n = {n}, x = {}",
                xs[k]
            );
        }
    }
}

/// Nested vmap through a call.
#[vmap]
#[vmap(in_dims = (0, None))]
fn nested_call(x: f64, w: [f64; 2]) -> f64 {
    poly(x, w)
}

#[test]
fn nested_vmap_through_calls() {
    let ws: Vec<[f64; 2]> = (0..5).map(|k| [k as f64 * 0.5, 1.0 - k as f64]).collect();
    let xs: Vec<Vec<f64>> = (0..5).map(|k| points(k * 3)).collect();
    let y = nested_call_vmap_vmap(&xs, &ws);
    assert_eq!(y.len(), 5);
    for (i, row) in y.iter().enumerate() {
        assert_eq!(row.len(), xs[i].len());
        for (j, v) in row.iter().enumerate() {
            assert_eq!(v.to_bits(), poly(xs[i][j], ws[i]).to_bits(), "batch {i}, sample {j}");
        }
    }
}

/// A custom rule (both rules written by hand), with transcendentals the engine does not
/// batch: its lanes companions run the scalar function and rules lane by lane, so the
/// results are the scalar ones exactly.
#[custom_rule(jvp = wave_jvp, vjp = wave_vjp)]
fn wave(x: f64, w: [f64; 2]) -> f64 {
    (x * w[0]).sin() * w[1] + x.exp()
}

fn wave_jvp(x: f64, w: [f64; 2], dx: f64, dw: [f64; 2]) -> (f64, f64) {
    let (s, c) = (x * w[0]).sin_cos();
    let dy = c * w[1] * (dx * w[0] + x * dw[0]) + s * dw[1] + x.exp() * dx;
    (wave(x, w), dy)
}

fn wave_vjp(x: f64, w: [f64; 2], ct: f64) -> (f64, (f64, [f64; 2])) {
    let (s, c) = (x * w[0]).sin_cos();
    let t = c * w[1] * ct;
    (wave(x, w), (t * w[0] + x.exp() * ct, [t * x, s * ct]))
}

/// Only a forward rule (the reverse one derived), over scalars.
#[custom_rule(jvp = cubic_jvp)]
fn cubic(x: f64, y: f64) -> f64 {
    x * x * x - y * x
}

fn cubic_jvp(x: f64, y: f64, dx: f64, dy: f64) -> (f64, f64) {
    (cubic(x, y), (3.0 * x * x - y) * dx - x * dy)
}

/// Custom-rule callees with batched and shared arguments, one with a shared array, one
/// under a batched condition.
#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn through_custom(x: f64, w: [f64; 2]) -> f64 {
    let a = wave(x, w);
    let mut b = cubic(a, w[1]);
    if x > 0.5 {
        b = cubic(w[0], x) * wave(w[1], [x, a]);
    }
    a * b + wave(w[0], w)
}

#[vmap(in_dims = (0, None))]
fn through_custom_value(x: f64, w: [f64; 2]) -> f64 {
    let a = wave(x, w);
    let mut b = cubic(a, w[1]);
    if x > 0.5 {
        b = cubic(w[0], x) * wave(w[1], [x, a]);
    }
    a * b + wave(w[0], w)
}

#[vmap(in_dims = (0, None, 0, None))]
#[jvp]
fn through_custom_jvp(x: f64, w: [f64; 2]) -> f64 {
    let a = wave(x, w);
    let mut b = cubic(a, w[1]);
    if x > 0.5 {
        b = cubic(w[0], x) * wave(w[1], [x, a]);
    }
    a * b + wave(w[0], w)
}

#[test]
fn custom_rules_lane_by_lane_bit_for_bit() {
    let w = [0.75, -1.25];
    let dw = [0.25, -0.5];
    for n in SIZES {
        let xs = points(n);
        let y = through_custom_value_vmap(&xs, w);
        let (g, v) = through_custom_grad_and_value_vmap(&xs, w);
        let ts: Vec<f64> = xs.iter().map(|x| 0.5 - x).collect();
        let (jy, jt) = through_custom_jvp_jvp_vmap(&xs, w, &ts, dw);
        assert_eq!((y.len(), g.len(), jt.len()), (n, n, n));
        for k in 0..n {
            let x = xs[k];
            let (gk, vk) = through_custom_grad_and_value(x, w);
            assert_eq!(
                y[k].to_bits(),
                through_custom_value(x, w).to_bits(),
                "value, n = {n}, x = {x}"
            );
            assert_eq!(v[k].to_bits(), vk.to_bits(), "grad's value, n = {n}, x = {x}");
            assert_eq!(g[k].0.to_bits(), gk.0.to_bits(), "grad x, n = {n}, x = {x}");
            assert_eq!(
                g[k].1.map(f64::to_bits),
                gk.1.map(f64::to_bits),
                "grad w, n = {n}, x = {x}"
            );
            let (yk, tk) = through_custom_jvp_jvp(x, w, ts[k], dw);
            assert_eq!(
                (jy[k].to_bits(), jt[k].to_bits()),
                (yk.to_bits(), tk.to_bits()),
                "jvp, n = {n}, x = {x}"
            );
        }
    }
}

// A callee whose reverse half reads an index from its residuals (`(k + 1) % 3` taped): the
// integer stays shared inside the batched residual tuple (its split halves have lanes
// companions; they used to be stubs).

#[differentiable]
fn pick(x: [f64; 3], k: usize) -> f64 {
    x[(k + 1) % 3] * x[k] + x[(k + 2) % 3].sqrt()
}

#[differentiable]
fn pick_twice(x: [f64; 3], k: usize) -> f64 {
    pick(x, k) * pick(x, k + 1)
}

#[vmap(in_dims = (0, None))]
#[grad_and_value]
fn through_residual_index(x: [f64; 3], k: usize) -> f64 {
    pick_twice(x, k) + x[0]
}

#[test]
fn residual_indices_stay_shared() {
    for n in SIZES {
        let xs: Vec<[f64; 3]> = points(n).iter().map(|&p| [2.0 + p, 1.0 + p * p, 2.0 - p]).collect();
        let r = through_residual_index_grad_and_value_vmap(&xs, 1);
        for (k, x) in xs.iter().enumerate() {
            let (g, v) = through_residual_index_grad_and_value(*x, 1);
            assert_eq!(r.1[k].to_bits(), v.to_bits(), "value, n = {n}, k = {k}");
            assert_eq!(r.0[k], g, "gradient, n = {n}, k = {k}");
        }
    }
}

/// A shared parameter taken by reference and passed on as it is to a callee that takes it
/// by reference: spread into lanes, it is borrowed again (it used to be passed by value).
#[differentiable]
fn affine_ref(x: f64, w: &[f64; 2]) -> f64 {
    w[0] * x + w[1]
}

#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = 0)]
fn passes_ref(x: f64, w: &[f64; 2]) -> f64 {
    affine_ref(x, w) * affine_ref(x * x, w)
}

#[test]
fn a_shared_reference_passes_on_to_a_callee() {
    let w = [0.5, -1.25];
    for n in SIZES {
        let xs = points(n);
        let (g, v) = passes_ref_grad_and_value_vmap(&xs, &w);
        for k in 0..n {
            let (gk, vk) = passes_ref_grad_and_value(xs[k], &w);
            assert_eq!(
                (g[k].to_bits(), v[k].to_bits()),
                (gk.to_bits(), vk.to_bits()),
                "sample {k} of {n}"
            );
        }
    }
}
