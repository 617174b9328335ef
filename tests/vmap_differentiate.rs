//! Batched functions called and differentiated from other annotated functions: a loss
//! over `model_vmap(p, xs)` is `grad`-able with respect to the shared parameters, a
//! function of the batch has a `jvp`, and a loss over the batched `grad_and_value` of a
//! model (energies and forces) differentiates the generated derivative again. Checked
//! against the same loss written over per-sample calls (the same terms, summed in another
//! order) and against central finite differences.

use fluxion::{grad, grad_and_value, jacrev, jvp, vmap};

/// Batch sizes around the lane count, and empty.
const SIZES: [usize; 7] = [0, 1, 3, 4, 5, 9, 33];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// `n` points in `[-1.5, 1.5)` and targets, not evenly spaced.
fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
    let xs: Vec<f64> = (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect();
    let ys = xs.iter().map(|x| (2.0 * x).sin()).collect();
    (xs, ys)
}

#[vmap(in_dims = (None, 0))]
fn model(p: [f64; 3], x: f64) -> f64 {
    p[0] * (p[1] * x).tanh() + p[2] * x
}

/// The loss over the batched model.
#[grad(argnums = 0)]
fn loss(p: [f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    let e = model_vmap(p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (e[i] - ys[i]).powi(2);
    }
    s / (xs.len() as f64 + 1.0)
}

/// The same loss over per-sample calls.
#[grad(argnums = 0)]
fn loss_per_sample(p: [f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (model(p, xs[i]) - ys[i]).powi(2);
    }
    s / (xs.len() as f64 + 1.0)
}

fn central<const N: usize>(f: impl Fn([f64; N]) -> f64, p: [f64; N], k: usize) -> f64 {
    let h = 1e-6;
    let (mut a, mut b) = (p, p);
    a[k] += h;
    b[k] -= h;
    (f(a) - f(b)) / (2.0 * h)
}

#[test]
fn gradient_through_a_batched_call() {
    let p = [0.8, 1.3, -0.4];
    for n in SIZES {
        let (xs, ys) = data(n);
        let g = loss_grad(p, &xs, &ys);
        let r = loss_per_sample_grad(p, &xs, &ys);
        for k in 0..3 {
            assert!(close(g[k], r[k], 1e-14), "n = {n}, k = {k}: {} vs {}", g[k], r[k]);
            let fd = central(|q| loss(q, &xs, &ys), p, k);
            assert!(close(g[k], fd, 1e-7), "n = {n}, k = {k}: {} vs fd {fd}", g[k]);
        }
        // The value itself is the batched function's.
        assert_eq!(loss(p, &xs, &ys).to_bits(), loss(p, &xs, &ys).to_bits());
    }
}

/// Forward mode through the batch: tangents of the shared parameters and of the samples.
#[jvp]
fn energy_sum(p: [f64; 3], xs: &[f64]) -> f64 {
    let e = model_vmap(p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i];
    }
    s
}

#[test]
fn jvp_through_a_batched_call() {
    let p = [0.8, 1.3, -0.4];
    let pd = [0.25, -0.5, 1.0];
    for n in SIZES {
        let (xs, _) = data(n);
        let xd: Vec<f64> = (0..n).map(|k| 0.1 * k as f64 - 0.3).collect();
        let (y, t) = energy_sum_jvp(p, &xs, pd, &xd);
        assert_eq!(y.to_bits(), energy_sum(p, &xs).to_bits(), "n = {n}");
        let h = 1e-6;
        let at = |s: f64| {
            let q: Vec<f64> = p.iter().zip(&pd).map(|(a, b)| a + s * b).collect();
            let x: Vec<f64> = xs.iter().zip(&xd).map(|(a, b)| a + s * b).collect();
            energy_sum([q[0], q[1], q[2]], &x)
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(close(t, fd, 1e-7), "n = {n}: {t} vs fd {fd}");
    }
}

/// A tangent slice of the wrong length panics naming it and both sizes.
#[test]
#[should_panic(
    expected = "the tangent of argument 1 of `model_vmap` has 2 samples but argument 1 of `model_vmap` has 3"
)]
fn jvp_tangent_of_the_wrong_length() {
    let _ = energy_sum_jvp([1.0, 1.0, 1.0], &[0.1, 0.2, 0.3], [0.0; 3], &[1.0, 2.0]);
}

// The flagship's shape: energies and forces from one batched `grad_and_value` of a
// per-distance model, a loss over both, its gradient with respect to the shared weights
// (second order: the reverse sweep of the generated derivative, per sample).

#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn pair(w: &[f64; 4], r: f64) -> f64 {
    let h = (w[0] * r + w[1]).tanh();
    w[2] * h * h + w[3] / r
}

#[grad(argnums = 0)]
fn fit(w: &[f64; 4], rs: &[f64], e_ref: &[f64], f_ref: &[f64]) -> f64 {
    let (de, e) = pair_grad_and_value_vmap(w, rs);
    let mut s = 0.0;
    for i in 0..rs.len() {
        s += (e[i] - e_ref[i]).powi(2) + 0.1 * (-de[i] - f_ref[i]).powi(2);
    }
    s
}

#[grad(argnums = 0)]
fn fit_per_sample(w: &[f64; 4], rs: &[f64], e_ref: &[f64], f_ref: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..rs.len() {
        let (de, e) = pair_grad_and_value(w, rs[i]);
        s += (e - e_ref[i]).powi(2) + 0.1 * (-de - f_ref[i]).powi(2);
    }
    s
}

#[test]
fn gradient_through_batched_forces() {
    let w = [0.7, -0.2, 1.5, 0.3];
    for n in SIZES {
        let rs: Vec<f64> = (0..n)
            .map(|k| 0.6 + 0.4 * ((k as f64 * 0.618_033_988_75) % 1.0))
            .collect();
        let e_ref: Vec<f64> = rs.iter().map(|r| 1.0 / (r * r)).collect();
        let f_ref: Vec<f64> = rs.iter().map(|r| 2.0 / (r * r * r)).collect();
        let g = fit_grad(&w, &rs, &e_ref, &f_ref);
        let r = fit_per_sample_grad(&w, &rs, &e_ref, &f_ref);
        for k in 0..4 {
            assert!(close(g[k], r[k], 1e-13), "n = {n}, k = {k}: {} vs {}", g[k], r[k]);
            let fd = central(|q| fit(&q, &rs, &e_ref, &f_ref), w, k);
            assert!(close(g[k], fd, 1e-6), "n = {n}, k = {k}: {} vs fd {fd}", g[k]);
        }
    }
}

// A batched argument's cotangent is per sample, a shared one's summed over the batch;
// both through the in-place accumulation (`vjp_bwd_acc`).

#[vmap(in_dims = (0, None, 0))]
fn spring(x: [f64; 2], k: f64, rest: f64) -> (f64, f64) {
    let d = (x[0] * x[0] + x[1] * x[1]).sqrt() - rest;
    (0.5 * k * d * d, k * d)
}

#[grad(argnums = (0, 1))]
fn springs(xs: &[[f64; 2]], k: f64, rests: &[f64]) -> f64 {
    let (e, f) = spring_vmap(xs, k, rests);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] + 0.25 * f[i] * f[i];
    }
    s
}

#[grad(argnums = (0, 1))]
fn springs_per_sample(xs: &[[f64; 2]], k: f64, rests: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        let (e, f) = spring(xs[i], k, rests[i]);
        s += e + 0.25 * f * f;
    }
    s
}

#[test]
fn per_sample_and_shared_cotangents() {
    for n in SIZES {
        let xs: Vec<[f64; 2]> = (0..n).map(|i| [1.0 + 0.1 * i as f64, 0.5 - 0.05 * i as f64]).collect();
        let rests: Vec<f64> = (0..n).map(|i| 0.8 + 0.01 * i as f64).collect();
        let (gx, gk) = springs_grad(&xs, 1.7, &rests);
        let (rx, rk) = springs_per_sample_grad(&xs, 1.7, &rests);
        assert_eq!(gx.len(), n);
        for i in 0..n {
            for c in 0..2 {
                assert!(close(gx[i][c], rx[i][c], 1e-14), "n = {n}, sample {i}");
            }
        }
        assert!(close(gk, rk, 1e-13), "n = {n}: {gk} vs {rk}");
        let h = 1e-6;
        let fd = (springs(&xs, 1.7 + h, &rests) - springs(&xs, 1.7 - h, &rests)) / (2.0 * h);
        assert!(close(gk, fd, 1e-7), "n = {n}: {gk} vs fd {fd}");
    }
}

/// Batches of several thread tasks: the shared cotangent is summed per task, the partial
/// sums in task order, so the gradient is the same bit for bit on 1 and 2 threads; it
/// agrees with the per-sample loss to rounding.
#[test]
fn reverse_half_in_tasks_independent_of_threads() {
    let p = [0.8, 1.3, -0.4];
    for n in [4099, 20_011] {
        let (xs, ys) = data(n);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            pool.install(|| loss_grad(p, &xs, &ys))
        };
        let (g1, g2) = (on(1), on(2));
        assert_eq!(g1.map(f64::to_bits), g2.map(f64::to_bits), "n = {n}");
        let r = loss_per_sample_grad(p, &xs, &ys);
        for k in 0..3 {
            assert!(close(g1[k], r[k], 1e-12), "n = {n}, k = {k}: {} vs {}", g1[k], r[k]);
        }
        // Per-sample cotangents of the samples, through the tasks' slices.
        let (gx, gk) = springs_grad(&vec![[1.0, 0.5]; n], 1.7, &vec![0.8; n]);
        assert_eq!(gx.len(), n);
        let (rx, rk) = springs_per_sample_grad(&vec![[1.0, 0.5]; n], 1.7, &vec![0.8; n]);
        assert!(gx
            .iter()
            .zip(&rx)
            .all(|(a, b)| close(a[0], b[0], 1e-14) && close(a[1], b[1], 1e-14)));
        assert!(close(gk, rk, 1e-11), "n = {n}: {gk} vs {rk}");
    }
}

/// The value through the batch's forward half (which keeps residuals) is the batched
/// function's own: `grad_and_value` gives `loss`'s value bit for bit, and `loss_grad`'s
/// gradient.
#[grad_and_value(argnums = 0)]
fn loss_gv(p: [f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    let e = model_vmap(p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (e[i] - ys[i]).powi(2);
    }
    s / (xs.len() as f64 + 1.0)
}

#[test]
fn value_through_the_forward_half_is_the_batched_functions() {
    let p = [0.8, 1.3, -0.4];
    for n in SIZES.into_iter().chain([4099]) {
        let (xs, ys) = data(n);
        let (g, v) = loss_gv_grad_and_value(p, &xs, &ys);
        assert_eq!(v.to_bits(), loss(p, &xs, &ys).to_bits(), "n = {n}");
        assert_eq!(g.map(f64::to_bits), loss_grad(p, &xs, &ys).map(f64::to_bits), "n = {n}");
        let e = model_vmap(p, &xs);
        assert_eq!(e.len(), n);
    }
}

/// A Jacobian of a function of the batch: the reverse sweep runs once per row, each with
/// a copy of the batch's kept residuals.
#[jacrev(argnums = 0)]
fn moments(p: [f64; 3], xs: &[f64]) -> [f64; 2] {
    let e = model_vmap(p, xs);
    let mut s1 = 0.0;
    let mut s2 = 0.0;
    for i in 0..xs.len() {
        s1 += e[i];
        s2 += e[i] * e[i];
    }
    [s1, s2]
}

#[test]
fn jacobian_through_a_batch() {
    let p = [0.8, 1.3, -0.4];
    for n in SIZES {
        let (xs, _) = data(n);
        let j = moments_jacrev(p, &xs);
        for k in 0..3 {
            let h = 1e-6;
            let (mut a, mut b) = (p, p);
            a[k] += h;
            b[k] -= h;
            let (fa, fb) = (moments(a, &xs), moments(b, &xs));
            for r in 0..2 {
                let fd = (fa[r] - fb[r]) / (2.0 * h);
                assert!(close(j[r][k], fd, 1e-6), "n = {n}: J[{r}][{k}] = {} vs {fd}", j[r][k]);
            }
        }
    }
}

/// The batch's by-value `vjp` (what a caller's companions call where they are
/// differentiated again): its value is the batched function's, its cotangents those of
/// the loss built on it.
#[test]
fn the_batchs_vjp_is_its_two_halves() {
    let p = [0.8, 1.3, -0.4];
    for n in SIZES {
        let (xs, ys) = data(n);
        let e = model_vmap(p, &xs);
        let ct: Vec<f64> = e
            .iter()
            .zip(&ys)
            .map(|(e, y)| 2.0 * (e - y) / (n as f64 + 1.0))
            .collect();
        let (y, (gp, gx)) = <model_vmap>::vjp(p, &xs, ct);
        assert_eq!(y, e, "n = {n}");
        assert_eq!(gx.len(), n);
        let g = loss_grad(p, &xs, &ys);
        for k in 0..3 {
            assert!(close(gp[k], g[k], 1e-14), "n = {n}, k = {k}: {} vs {}", gp[k], g[k]);
        }
    }
}

/// A loss that calls the batched model inside a loop (its reverse sweeps keep the batch's
/// `Vec` result in a tape's slot, copied where it is read again).
#[grad(argnums = 0)]
fn loss_in_a_loop(p: [f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    let mut s = 0.0;
    for k in 0..3 {
        let e = model_vmap(p, xs);
        for i in 0..xs.len() {
            s += (e[i] - ys[i]).powi(2) * (k as f64 + 1.0);
        }
    }
    s
}

#[test]
fn a_batch_called_in_a_loop() {
    let p = [0.8, -1.1, 0.3];
    for n in SIZES {
        let (xs, ys) = data(n);
        let g = loss_in_a_loop_grad(p, &xs, &ys);
        let per = loss_per_sample_grad(p, &xs, &ys);
        for k in 0..3 {
            // 6 times the per-sample loss's gradient, which divides by n + 1.
            let want = 6.0 * (n as f64 + 1.0) * per[k];
            assert!(close(g[k], want, 1e-12), "n {n}: grad[{k}] {} vs {want}", g[k]);
            let fd = central(|q| loss_in_a_loop(q, &xs, &ys), p, k);
            assert!(close(g[k], fd, 1e-6), "n {n}: grad[{k}] {} vs {fd}", g[k]);
        }
    }
}
