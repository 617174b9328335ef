//! Second derivatives through a batched call: a loss over `model_vmap(&p, xs)` has a
//! `hessian`, `jacfwd` and `jacrev` of its gradient, and `jacfwd` / `jacrev` of its forward
//! Jacobian, through the batch's second-order companions (sample by sample over the
//! per-sample function's). Checked against the same loss over per-sample calls of
//! `model` (the same derivative, the shared sums in another order: `1e-10` relative) and
//! against central differences of the generated gradient, at batch sizes around the
//! lane counts and empty.

#![allow(clippy::needless_range_loop)]

use fluxion::vmap;

const SIZES: [usize; 8] = [0, 1, 3, 4, 5, 7, 8, 9];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[track_caller]
fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(close(a, b, tol), "{what}: {a} against {b}");
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
fn model(p: &[f64; 4], x: f64) -> f64 {
    p[0] * (p[1] * x).tanh() + p[2] * x * x + p[3] * (x * p[0]).sin()
}

/// The loss over the batched model.
#[fluxion::transforms(
    grad(argnums = 0),
    hessian(argnums = 0),
    jacfwd(grad(argnums = 0)),
    jacrev(grad(argnums = 0)),
    jacfwd(jacfwd(argnums = 0)),
    jacrev(jacfwd(argnums = 0)),
    grad(argnums = 1, name = "loss_gx"),
    hessian(argnums = 1, name = "loss_hx")
)]
fn loss(p: [f64; 4], xs: &[f64], ys: &[f64]) -> f64 {
    let e = model_vmap(&p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (e[i] - ys[i]).powi(2) * (1.0 + 0.5 * i as f64);
    }
    s
}

/// The same loss over per-sample calls.
#[fluxion::transforms(grad(argnums = 0), hessian(argnums = 0), hessian(argnums = 1, name = "loss_ps_hx"))]
fn loss_ps(p: [f64; 4], xs: &[f64], ys: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (model(&p, xs[i]) - ys[i]).powi(2) * (1.0 + 0.5 * i as f64);
    }
    s
}

/// Central differences of the generated gradient: `out[c][r] = d grad_r / d p_c`.
fn fd_grad(p: [f64; 4], xs: &[f64], ys: &[f64]) -> [[f64; 4]; 4] {
    let h = 1e-6;
    let mut out = [[0.0; 4]; 4];
    for c in 0..4 {
        let (mut a, mut b) = (p, p);
        a[c] += h;
        b[c] -= h;
        let (ga, gb) = (loss_grad(a, xs, ys), loss_grad(b, xs, ys));
        for r in 0..4 {
            out[c][r] = (ga[r] - gb[r]) / (2.0 * h);
        }
    }
    out
}

#[test]
fn hessians_through_a_batch_in_the_shared_parameters() {
    let p = [0.8, 1.3, -0.4, 0.6];
    for n in SIZES {
        let (xs, ys) = data(n);
        let want = loss_ps_hessian(p, &xs, &ys);
        let fd = fd_grad(p, &xs, &ys);
        let forms = [
            ("hessian", loss_hessian(p, &xs, &ys)),
            ("jacfwd(grad)", loss_grad_jacfwd(p, &xs, &ys)),
            ("jacrev(grad)", loss_grad_jacrev(p, &xs, &ys)),
            ("jacfwd(jacfwd)", loss_jacfwd_jacfwd(p, &xs, &ys)),
            ("jacrev(jacfwd)", loss_jacfwd_jacrev(p, &xs, &ys)),
        ];
        for (what, h) in forms {
            for r in 0..4 {
                for c in 0..4 {
                    let w = format!("n = {n}, {what}[{r}][{c}]");
                    assert_close(h[r][c], want[r][c], 1e-10, &format!("{w} against per-sample calls"));
                    assert_close(
                        h[r][c],
                        fd[c][r],
                        1e-6,
                        &format!("{w} against differences of the gradient"),
                    );
                }
            }
        }
        if n == 0 {
            assert_eq!(loss_hessian(p, &xs, &ys), [[0.0; 4]; 4]);
        }
    }
}

#[test]
fn hessian_through_a_batch_in_the_batched_samples() {
    let p = [0.8, 1.3, -0.4, 0.6];
    for n in SIZES {
        let (xs, ys) = data(n);
        let h = loss_hx(p, &xs, &ys);
        let want = loss_ps_hx(p, &xs, &ys);
        assert_eq!(h.len(), n);
        let step = 1e-6;
        for c in 0..n {
            let (mut a, mut b) = (xs.clone(), xs.clone());
            a[c] += step;
            b[c] -= step;
            let (ga, gb) = (loss_gx(p, &a, &ys), loss_gx(p, &b, &ys));
            for r in 0..n {
                let w = format!("n = {n}, [{r}][{c}]");
                assert_close(h[r][c], want[r][c], 1e-10, &format!("{w} against per-sample calls"));
                let fd = (ga[r] - gb[r]) / (2.0 * step);
                assert_close(h[r][c], fd, 1e-6, &format!("{w} against differences of the gradient"));
            }
        }
    }
}

// A tuple result, an array sample and two batched arguments: the cotangent of the tuple
// (a tuple of per-sample `Vec`s) and the shared parameters' second-order sums.

#[vmap(in_dims = (0, None, 0))]
fn spring(x: [f64; 2], k: [f64; 2], rest: f64) -> (f64, f64) {
    let d = (x[0] * x[0] + x[1] * x[1]).sqrt() - rest;
    (0.5 * k[0] * d * d, k[1] * d * k[0])
}

#[fluxion::transforms(grad, hessian, jacrev(grad), jacrev(jacfwd))]
fn springs(k: [f64; 2], xs: &[[f64; 2]], rests: &[f64]) -> f64 {
    let (e, f) = spring_vmap(xs, k, rests);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] + 0.25 * f[i] * f[i] * e[i];
    }
    s
}

#[fluxion::transforms(hessian)]
fn springs_ps(k: [f64; 2], xs: &[[f64; 2]], rests: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        let (e, f) = spring(xs[i], k, rests[i]);
        s += e + 0.25 * f * f * e;
    }
    s
}

#[test]
fn hessians_through_a_batch_with_a_tuple_result() {
    let k = [1.7, -0.6];
    for n in SIZES {
        let xs: Vec<[f64; 2]> = (0..n).map(|i| [1.0 + 0.1 * i as f64, 0.5 - 0.05 * i as f64]).collect();
        let rests: Vec<f64> = (0..n).map(|i| 0.8 + 0.01 * i as f64).collect();
        let want = springs_ps_hessian(k, &xs, &rests);
        let h = 1e-6;
        for (what, got) in [
            ("hessian", springs_hessian(k, &xs, &rests)),
            ("jacrev(grad)", springs_grad_jacrev(k, &xs, &rests)),
            ("jacrev(jacfwd)", springs_jacfwd_jacrev(k, &xs, &rests)),
        ] {
            for c in 0..2 {
                let (mut a, mut b) = (k, k);
                a[c] += h;
                b[c] -= h;
                let (ga, gb) = (springs_grad(a, &xs, &rests), springs_grad(b, &xs, &rests));
                for r in 0..2 {
                    let w = format!("n = {n}, {what}[{r}][{c}]");
                    assert_close(got[r][c], want[r][c], 1e-10, &format!("{w} against per-sample calls"));
                    let fd = (ga[r] - gb[r]) / (2.0 * h);
                    assert_close(got[r][c], fd, 1e-6, &format!("{w} against differences of the gradient"));
                }
            }
        }
    }
}
