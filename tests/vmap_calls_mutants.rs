//! `vmap` through calls: cases written for the mutation pass over the batched calls
//! (DEVELOPMENT.md, "Mutation testing", "vmap through calls"). Each sample's result is
//! checked against the unbatched generated function called in a loop: bit for bit, or
//! within `ULPS` where a lane transcendental (`tanh`, `ln`) is on the path.

// `y = y * g(..)` under a condition: the assignments the mutants were checked with.
#![allow(clippy::assign_op_pattern)]

use fluxion::{custom_rule, differentiable, grad, grad_and_value, jacfwd, jacrev, jvp, vmap};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 6] = [0, 1, 4, 5, 9, 17];

/// Tolerance of results computed through a lane transcendental (`tanh`), in ulps.
const ULPS: f64 = 64.0;

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= ULPS * f64::EPSILON * a.abs().max(b.abs())
}

/// `n` points in `[-1.5, 1.5)`, not evenly spaced.
fn points(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

// A callee with a custom rule: its lanes companions run the scalar ones lane by lane.

#[custom_rule(jvp = cubic_jvp, vjp = cubic_vjp)]
fn cubic(x: f64, s: &f64) -> f64 {
    x * x * x * *s
}

fn cubic_jvp(x: f64, s: &f64, dx: f64, ds: f64) -> (f64, f64) {
    (x * x * x * *s, 3.0 * x * x * *s * dx + x * x * x * ds)
}

fn cubic_vjp(x: f64, s: &f64, ct: f64) -> (f64, (f64, f64)) {
    (x * x * x * *s, (3.0 * x * x * *s * ct, x * x * x * ct))
}

#[vmap(in_dims = (0, None))]
fn through_custom(x: f64, s: f64) -> f64 {
    cubic(x, &s) + x
}

#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn through_custom_grad(x: f64, s: f64) -> f64 {
    cubic(x - 0.5, &s) * x
}

#[vmap(in_dims = (0, None, 0, None))]
#[jvp]
fn through_custom_jvp(x: f64, s: f64) -> f64 {
    cubic(x, &s) * x
}

#[test]
fn custom_rule_callees_run_lane_by_lane() {
    let s = 0.75;
    for n in SIZES {
        let xs = points(n);
        let y = through_custom_vmap(&xs, s);
        let (g, v) = through_custom_grad_grad_and_value_vmap(&xs, s);
        let ts: Vec<f64> = xs.iter().map(|x| 0.5 - x).collect();
        let (jy, jt) = through_custom_jvp_jvp_vmap(&xs, s, &ts, -0.25);
        assert_eq!((y.len(), g.len(), jy.len()), (n, n, n));
        for k in 0..n {
            let x = xs[k];
            assert_eq!(y[k].to_bits(), through_custom(x, s).to_bits(), "value, x = {x}");
            let (gk, vk) = through_custom_grad_grad_and_value(x, s);
            assert_eq!(
                (g[k].0.to_bits(), g[k].1.to_bits(), v[k].to_bits()),
                (gk.0.to_bits(), gk.1.to_bits(), vk.to_bits()),
                "grad, x = {x}"
            );
            let (yk, tk) = through_custom_jvp_jvp(x, s, ts[k], -0.25);
            assert_eq!(
                (jy[k].to_bits(), jt[k].to_bits()),
                (yk.to_bits(), tk.to_bits()),
                "jvp, x = {x}"
            );
        }
    }
}

// A shared call (no batched argument) under a batched condition: its accumulators (the
// gradient of the shared `w`) are written in every lane, and only the lanes under the
// condition keep what it added.

#[differentiable]
fn soft(w: f64) -> f64 {
    w * w + 0.5 * w
}

#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn shared_call_under_mask(x: f64, w: f64) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y = y * soft(w);
    }
    y
}

#[test]
fn a_shared_call_under_a_batched_condition_adds_only_in_its_lanes() {
    let w = 1.25;
    for n in SIZES {
        let xs = points(n);
        let (g, v) = shared_call_under_mask_grad_and_value_vmap(&xs, w);
        for k in 0..n {
            let x = xs[k];
            let (gk, vk) = shared_call_under_mask_grad_and_value(x, w);
            assert_eq!(
                (g[k].0.to_bits(), g[k].1.to_bits(), v[k].to_bits()),
                (gk.0.to_bits(), gk.1.to_bits(), vk.to_bits()),
                "x = {x}"
            );
        }
    }
}

#[vmap(in_dims = (0, None))]
#[grad]
fn unused_float(x: f64, w: f64) -> f64 {
    x * soft(x) + w
}

#[test]
fn grads_through_calls_in_f64() {
    for n in SIZES {
        let xs = points(n);
        let g = unused_float_grad_vmap(&xs, 2.0);
        for k in 0..n {
            assert_eq!(g[k].to_bits(), unused_float_grad(xs[k], 2.0).to_bits());
        }
    }
}

#[differentiable]
fn squash(x: f64) -> f64 {
    x.tanh() * 0.5
}

#[differentiable]
fn pair(x: f64, y: f64) -> [f64; 2] {
    [x * y, x - y * y]
}

#[differentiable]
fn ipow(x: f64, n: i32) -> f64 {
    x.powi(n) - x
}

/// An integer variable passed to a callee is the same in every lane (not spread), and a
/// call's result through `powi` of a shared exponent (`n as T` on lanes).
#[vmap(in_dims = (0, None))]
#[grad_and_value]
fn shared_exponent(x: f64, n: i32) -> f64 {
    ipow(x, n) + squash(x).powi(n)
}

#[test]
fn shared_integers_through_calls_and_powi() {
    for n in SIZES {
        let xs = points(n);
        for e in [2, 3] {
            let (g, v) = shared_exponent_grad_and_value_vmap(&xs, e);
            for k in 0..n {
                let (gk, vk) = shared_exponent_grad_and_value(xs[k], e);
                let x = xs[k];
                assert!(
                    close(g[k], gk) && close(v[k], vk),
                    "e = {e}, x = {x}: {:?}",
                    (g[k], gk, v[k], vk)
                );
            }
        }
    }
}

/// A call's result of a type only rustc knows (an array) assigned under a batched
/// condition, another only compared (a lane `tanh`, far from the threshold at these
/// points), and a shared condition meeting a batched one.
#[vmap(in_dims = (0, None))]
fn masked_results(x: f64, w: f64) -> f64 {
    let mut p = pair(w, x);
    if x > 0.0 {
        p = pair(x, w);
    }
    let c = w > 0.0;
    let mut r = p[0] - p[1];
    if c && x < 0.5 {
        r = r * 2.0;
    }
    if squash(x) > 0.125 {
        r + 1.0
    } else {
        r
    }
}

#[test]
fn call_results_under_batched_conditions_and_comparisons() {
    for n in SIZES {
        let xs = points(n);
        for w in [0.75, -0.5] {
            let y = masked_results_vmap(&xs, w);
            for k in 0..n {
                assert_eq!(
                    y[k].to_bits(),
                    masked_results(xs[k], w).to_bits(),
                    "w = {w}, x = {}",
                    xs[k]
                );
            }
        }
    }
}

#[differentiable]
fn dot2(w: [f64; 2], x: f64) -> f64 {
    w[0] * x + w[1] * x * x
}

/// Calls with an array argument under batched conditions: the callee's reverse half adds
/// into the caller's accumulator of `w` (`vjp_bwd_acc`) in every lane, and the lanes
/// outside the condition get their old values back. The first call is shared (no batched
/// argument), the second batched.
#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn masked_array_calls(x: f64, w: [f64; 2]) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y = y + dot2(w, 1.5);
    }
    if x < 0.5 {
        y = y * dot2(w, x);
    }
    y
}

#[test]
fn accumulators_of_calls_under_batched_conditions_keep_their_other_lanes() {
    let w = [0.75, -1.25];
    for n in SIZES {
        let xs = points(n);
        let (g, v) = masked_array_calls_grad_and_value_vmap(&xs, w);
        for k in 0..n {
            let x = xs[k];
            let ((gx, gw), vk) = masked_array_calls_grad_and_value(x, w);
            assert_eq!(
                (g[k].0.to_bits(), g[k].1.map(f64::to_bits), v[k].to_bits()),
                (gx.to_bits(), gw.map(f64::to_bits), vk.to_bits()),
                "x = {x}"
            );
        }
    }
}

/// A shared boolean variable assigned to a batched one under a batched condition: a mask
/// of the shared value in every lane.
#[vmap(in_dims = (0, None))]
fn shared_flag(x: f64, w: f64) -> f64 {
    let c = w > 0.0;
    let mut m = x < 0.5;
    if x > 1.0 {
        m = c;
    }
    if m {
        x * 2.0
    } else {
        x
    }
}

#[test]
fn a_shared_flag_in_every_lane() {
    for n in SIZES {
        let xs = points(n);
        for w in [1.0, -1.0] {
            let y = shared_flag_vmap(&xs, w);
            for k in 0..n {
                assert_eq!(
                    y[k].to_bits(),
                    shared_flag(xs[k], w).to_bits(),
                    "w = {w}, x = {}",
                    xs[k]
                );
            }
        }
    }
}

/// More than `TAPE_STACK_BYTES` of lanes: a shared array of 4096 floats spread into the
/// lanes of a call's argument (element by element, 128 KiB of `f64x4`), stored as an
/// array like the callee's parameter.
#[differentiable]
fn weighted(x: f64, w: [f64; 4096]) -> f64 {
    let mut s = 0.0;
    for i in 0..4096 {
        s += w[i] * x;
    }
    s
}

#[vmap(in_dims = (0, None))]
fn through_a_large_shared_array(x: f64, w: [f64; 4096]) -> f64 {
    weighted(x, w) + x
}

#[test]
fn a_large_shared_array_spread_into_lanes() {
    let w: [f64; 4096] = core::array::from_fn(|k| (k % 7) as f64 - 3.0);
    let xs = points(5);
    let y = through_a_large_shared_array_vmap(&xs, w);
    for k in 0..5 {
        assert_eq!(y[k].to_bits(), through_a_large_shared_array(xs[k], w).to_bits());
    }
}

#[differentiable]
fn log_dot(w: [f64; 2], x: f64) -> f64 {
    w[0] * x.ln() + w[1] * x
}

/// A call with an array argument under a batched condition inside a callee: the callee's
/// lanes companion of its gradient (`vjp_lanes`) adds through `log_dot`'s reverse half
/// (`vjp_bwd_acc_lanes`) into its accumulator of `w` in every lane. Outside the condition
/// the cotangent is zero and the taped `x.sqrt()` is zero, so the addition is
/// `0 * ln(0) = NaN`: the old values must come back in those lanes.
#[differentiable]
fn mid(x: f64, w: [f64; 2]) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y = y * log_dot(w, x.sqrt());
    }
    y
}

#[vmap(in_dims = (0, None))]
#[grad_and_value(argnums = (0, 1))]
fn through_mid(x: f64, w: [f64; 2]) -> f64 {
    mid(x, w) * 2.0
}

#[test]
fn accumulators_of_masked_calls_in_a_callee_keep_their_other_lanes() {
    let w = [0.75, -1.25];
    let (_, gw) = through_mid_grad_and_value(-1.0, w).0;
    assert_eq!(gw, [0.0, 0.0]);
    for n in SIZES {
        let xs = points(n);
        let (g, v) = through_mid_grad_and_value_vmap(&xs, w);
        for k in 0..n {
            let x = xs[k];
            let ((gx, gw), vk) = through_mid_grad_and_value(x, w);
            // Within the lane `ln`'s bound (`close` fails on NaN).
            assert!(
                close(g[k].0, gx) && close(g[k].1[0], gw[0]) && close(g[k].1[1], gw[1]) && close(v[k], vk),
                "x = {x}: {:?} vs {:?}",
                (g[k], v[k]),
                ((gx, gw), vk)
            );
        }
    }
}

/// A shared call (no batched argument) under a batched condition stays one scalar call:
/// bit for bit the unbatched value, where the lane `tanh` could differ by an ulp.
#[vmap(in_dims = (0, None))]
fn shared_tanh_under_mask(x: f64, w: f64) -> f64 {
    let mut y = x;
    if x > 0.0 {
        y = y * squash(w);
    }
    y
}

#[test]
fn a_shared_call_under_a_batched_condition_is_not_batched() {
    let xs = points(9);
    for j in 0..400 {
        let w = -3.0 + 0.015_37 * j as f64;
        let y = shared_tanh_under_mask_vmap(&xs, w);
        for k in 0..9 {
            let want = shared_tanh_under_mask(xs[k], w);
            assert_eq!(y[k].to_bits(), want.to_bits(), "w = {w}, x = {}", xs[k]);
        }
    }
}

// A Jacobian's batched sweep (rows or columns on lanes) does not go through calls: a callee
// that is a generated derivative has no lanes companions. The sweep runs per row instead.

#[grad]
fn energy(x: [f64; 4]) -> f64 {
    x[0] * x[1] + x[2].sin() * x[3] + x[3] * x[3] * x[0]
}

#[jacrev]
fn energy_hessian_rev(x: [f64; 4]) -> [f64; 4] {
    energy_grad(x)
}

#[jacfwd]
fn energy_hessian_fwd(x: [f64; 4]) -> [f64; 4] {
    energy_grad(x)
}

#[test]
fn jacobians_through_a_call_of_a_generated_gradient() {
    let x: [f64; 4] = [0.5, -1.25, 0.75, 2.0];
    let (s, c) = x[2].sin_cos();
    let want = [
        [0.0, 1.0, 0.0, 2.0 * x[3]],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, -s * x[3], c],
        [2.0 * x[3], 0.0, c, 2.0 * x[0]],
    ];
    for h in [energy_hessian_rev_jacrev(x), energy_hessian_fwd_jacfwd(x)] {
        for i in 0..4 {
            for j in 0..4 {
                assert!((h[i][j] - want[i][j]).abs() <= 1e-15, "{i}, {j}: {h:?}");
            }
        }
    }
}
