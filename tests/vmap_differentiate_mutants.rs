//! Tests written for the survivors of the mutation pass over differentiating through a
//! batch (`f_vmap`'s holder, DEVELOPMENT.md "Differentiating through a batch").

use fluxion::{grad, jacrev, vmap};

#[vmap(in_dims = (0, 0))]
fn pair(x: f64, y: f64) -> f64 {
    x * y
}

#[grad(argnums = 0)]
fn lpair(xs: &[f64], ys: &[f64]) -> f64 {
    let e = pair_vmap(xs, ys);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

/// Two batched arguments of different lengths: the holder's check names both (each
/// batched primal after the first is checked against the first).
#[test]
#[should_panic(expected = "argument 1 of `pair_vmap` has 3 samples but argument 0 of `pair_vmap` has 4")]
fn batched_arguments_of_different_lengths_panic_naming_both() {
    let _ = lpair_grad(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]);
}

#[vmap(in_dims = (None, 0))]
fn scaled(w: f64, x: f64) -> f64 {
    w * x
}

#[grad(argnums = (0, 1))]
fn lscaled(w: f64, xs: &[f64]) -> f64 {
    let e = scaled_vmap(w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

/// A shared argument's cotangent is summed in lanes over the full chunks (lane `l` holds
/// the samples `l`, `l + 4`, ..), then lane by lane: `(1e16 + -1e16) + 1 = 1` exactly,
/// where a sum in sample order (the reverse half sample by sample) rounds `1e16 + 1` to
/// `1e16` and gives `0`. Pins that the reverse half runs on lanes (`bwd_kernel`).
#[test]
fn a_shared_cotangent_is_summed_in_lanes() {
    let xs = [1e16, 1.0, 0.0, 0.0, -1e16, 0.0, 0.0, 0.0];
    let (gw, gx) = lscaled_grad(0.5, &xs);
    assert_eq!(gw, 1.0);
    assert_eq!(gx, vec![0.5; 8]);
}

#[vmap(in_dims = (None, 0))]
fn sq(w: f64, x: f64) -> f64 {
    w * x * x
}

#[grad(argnums = (0, 1))]
fn lsq(w: f64, xs: &[f64]) -> f64 {
    let e = sq_vmap(w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

/// A batch of several tasks (about 2^16 weighted operations each, at least 32 chunks):
/// each task reads its own samples and adds its own partial sums. (`drive_tasks`' own
/// loop over tasks runs only without `rayon`, which every test build of the workspace
/// has: `tests/crates/physics-lib` turns `parallel` on.)
#[test]
fn a_batch_of_several_tasks_reads_each_task_s_samples() {
    let n = 200_003;
    let xs: Vec<f64> = (0..n).map(|k| (k as f64 * 0.37).sin() + 0.01 * k as f64).collect();
    let (gw, gx) = lsq_grad(0.75, &xs);
    let sum: f64 = xs.iter().map(|x| x * x).sum();
    assert!((gw - sum).abs() <= 1e-12 * sum.abs(), "{gw} vs {sum}");
    for (i, (g, x)) in gx.iter().zip(&xs).enumerate() {
        let r = 2.0 * 0.75 * x;
        assert!((g - r).abs() <= 1e-14 * (1.0 + r.abs()), "sample {i}: {g} vs {r}");
    }
}

/// With respect to the shared scalar alone the caller takes the by-value reverse half
/// (`vjp_bwd`), which runs the in-place one from zeros: on lanes too (it was the loop over
/// samples, which gives `0` here).
#[grad(argnums = 0)]
fn lscaled_w(w: f64, xs: &[f64]) -> f64 {
    let e = scaled_vmap(w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

#[test]
fn the_by_value_reverse_half_runs_on_lanes() {
    let xs = [1e16, 1.0, 0.0, 0.0, -1e16, 0.0, 0.0, 0.0];
    assert_eq!(lscaled_w_grad(0.5, &xs), 1.0);
}

/// A Jacobian through a batch whose reverse half the caller takes by value (`vjp_bwd`: a
/// shared scalar): each row sweep takes its own copy of the batch's residuals.
#[jacrev(argnums = 0)]
fn scaled_moments(w: [f64; 1], xs: &[f64]) -> [f64; 2] {
    let e = scaled_vmap(w[0], xs);
    let mut s1 = 0.0;
    let mut s2 = 0.0;
    for i in 0..xs.len() {
        s1 += e[i];
        s2 += e[i] * e[i];
    }
    [s1, s2]
}

#[test]
fn jacobian_rows_through_a_by_value_reverse_half() {
    let xs = [0.5, -1.0, 2.0, 0.25, 1.5];
    let j = scaled_moments_jacrev([0.75], &xs);
    let sx: f64 = xs.iter().sum();
    let sxx: f64 = xs.iter().map(|x| x * x).sum();
    assert_eq!(j[0][0], sx);
    assert!((j[1][0] - 2.0 * 0.75 * sxx).abs() < 1e-14 * sxx);
}

/// A shared slice of a batch, differentiated through: its cotangent is a `Vec`, the sum of
/// the samples' (the reverse half sample by sample: a shared slice does not batch).
#[vmap(in_dims = (0, None))]
fn weighted(x: f64, w: &[f64]) -> f64 {
    w[0] * x + w[1] * x * x
}

#[grad(argnums = 1)]
fn lweighted(xs: &[f64], w: &[f64]) -> f64 {
    let e = weighted_vmap(xs, w);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

#[test]
fn a_shared_slice_through_a_batch() {
    let xs = [0.5, -1.0, 2.0, 0.25, 1.5];
    let g = lweighted_grad(&xs, &[0.3, -0.2]);
    let sx: f64 = xs.iter().sum();
    let sxx: f64 = xs.iter().map(|x| x * x).sum();
    assert_eq!(g.len(), 2);
    assert!((g[0] - sx).abs() < 1e-14 * sx.abs().max(1.0));
    assert!((g[1] - sxx).abs() < 1e-14 * sxx);
}
