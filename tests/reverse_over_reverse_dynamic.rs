//! Reverse mode over reverse mode through slices and loops with a run-time trip count:
//! `jacrev` and `vjp` of a gradient (stacked), and the gradient of a function that calls a
//! generated gradient of a slice function, at lengths 0, 1, 3 and 7, with loops to
//! `xs.len()` and pair loops `for j in i + 1..n`.
//!
//! Each second-order result is checked against central differences of the first-order
//! generated gradient, and against forward over reverse (`hessian`, `jvp` of the
//! gradient, `jvp` of the caller) within `1e-12 max(1, |a|)`: the same derivative, the
//! same products in another order.

#![allow(clippy::needless_range_loop)]

const STEP: f64 = 6e-6;
const LENGTHS: [usize; 4] = [0, 1, 3, 7];

#[track_caller]
fn assert_fd(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths: {got:?} against {want:?}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(*g, *w, 1e-6),
            "{what}: entry {k}: got {g}, finite differences {w}"
        );
    }
}

#[track_caller]
fn assert_bits_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths: {got:?} against {want:?}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, 1e-12), "{what}: entry {k}: {g} against {w}");
    }
}

/// Central differences of the vector function `g` at `x` along `u`.
fn fd_dir(g: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64], u: &[f64]) -> Vec<f64> {
    let h = STEP * x.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let p: Vec<f64> = x.iter().zip(u).map(|(a, b)| a + h * b).collect();
    let m: Vec<f64> = x.iter().zip(u).map(|(a, b)| a - h * b).collect();
    g(&p).iter().zip(g(&m)).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

/// Central differences of the vector function `g` at `x`, one column per entry of `x`:
/// `out[c][r] = d g_r / d x_c`.
fn fd_cols(g: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    (0..x.len())
        .map(|c| {
            let mut u = vec![0.0; x.len()];
            u[c] = 1.0;
            fd_dir(g, x, &u)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Stacked: `jacrev` of `grad` in a fixed-size parameter, with slices of data
// ---------------------------------------------------------------------------------------

/// A loop to `xs.len()` and a pair loop over the data, differentiated twice in `w`.
#[fluxion::transforms(grad(argnums = 0), hessian(argnums = 0), jacrev(grad(argnums = 0)))]
fn fit(w: [f64; 2], xs: &[f64]) -> f64 {
    let n = xs.len();
    let mut s = 0.0;
    for i in 0..n {
        s += (xs[i] * w[0]).sin() * w[1];
        for j in i + 1..n {
            let d = xs[i] - xs[j];
            s += (w[0] * w[1] * d).cos() * xs[j];
        }
    }
    s * s + w[0] * s
}

#[test]
fn jacrev_of_a_gradient_in_a_fixed_parameter_over_slices_of_data() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 10 + k as u64);
        let w = [0.7, -1.1];
        let h = fit_grad_jacrev(w, &xs);
        let want = fit_hessian(w, &xs);
        for r in 0..2 {
            assert_bits_close(&h[r], &want[r], &format!("n = {n}: row {r} against hessian"));
        }
        let cols = fd_cols(&|v| fit_grad([v[0], v[1]], &xs).to_vec(), &w);
        for c in 0..2 {
            // `jacrev` of the gradient: row `r` is the gradient of its entry `r`.
            let col: Vec<f64> = (0..2).map(|r| h[r][c]).collect();
            assert_fd(&col, &cols[c], &format!("n = {n}: column {c}"));
        }
        if n >= 3 {
            assert!(h[0][1] != 0.0 && h[1][1] != 0.0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stacked: `vjp` of `grad` in the slice (a Hessian-vector product in reverse mode)
// ---------------------------------------------------------------------------------------

/// A pair loop `for j in i + 1..n` over a slice.
#[fluxion::transforms(grad, hessian, vjp(grad), jvp(grad), jacrev(grad))]
fn pairs(xs: &[f64]) -> f64 {
    let n = xs.len();
    let mut e = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let d = xs[i] - xs[j];
            e += (d * d + 0.5).ln() * xs[i].cos();
        }
        e += xs[i] * xs[i] * xs[i];
    }
    e
}

#[test]
fn vjp_of_a_gradient_in_a_slice_with_a_pair_loop() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 20 + k as u64);
        let g = pairs_grad(&xs);
        let (value, pullback) = pairs_grad_vjp(&xs);
        assert_eq!(value, g, "n = {n}: the value is the gradient");
        let hess = pairs_hessian(&xs);
        let rows = fd_cols(&|v| pairs_grad(v), &xs);
        for s in 0..2 {
            let u = points(n, 30 + 2 * k as u64 + s);
            // Called twice with the same cotangent: the same bits (the pullback is `Fn`).
            let (hu,) = pullback(u.clone());
            let (again,) = pullback(u.clone());
            assert_eq!(hu, again);
            let (g2, hu_fwd) = pairs_grad_jvp(&xs, &u);
            assert_eq!(g2, g);
            assert_bits_close(&hu, &hu_fwd, &format!("n = {n}: against jvp of grad"));
            let hu_h: Vec<f64> = (0..n).map(|r| (0..n).map(|c| hess[r][c] * u[c]).sum()).collect();
            assert_bits_close(&hu, &hu_h, &format!("n = {n}: against hessian"));
            assert_fd(
                &hu,
                &fd_dir(&|v| pairs_grad(v), &xs, &u),
                &format!("n = {n}: finite differences"),
            );
        }
        // Every column: the pullback of a basis vector is the Hessian's row, and so is
        // the row of `jacrev` of the gradient (one reverse sweep per entry of it).
        let jac = pairs_grad_jacrev(&xs);
        assert_eq!(jac.len(), n);
        for c in 0..n {
            let mut e = vec![0.0; n];
            e[c] = 1.0;
            let (row,) = pullback(e);
            assert_fd(&row, &rows[c], &format!("n = {n}: row {c}"));
            assert_bits_close(&jac[c], &row, &format!("n = {n}: jacrev row {c} against vjp"));
            assert_bits_close(&jac[c], &hess[c], &format!("n = {n}: jacrev row {c} against hessian"));
        }
    }
}

/// A gradient in a slice and a scalar (a tuple holding a `Vec`), differentiated again.
#[fluxion::transforms(
    grad(argnums = (0, 1)),
    vjp(grad(argnums = (0, 1))),
    jvp(grad(argnums = (0, 1))),
    jacrev(grad(argnums = (0, 1)), argnums = (0, 1))
)]
fn mixed(xs: &[f64], w: f64) -> f64 {
    let n = xs.len();
    let mut e = w * w;
    for i in 0..n {
        for j in i + 1..n {
            e += (w * xs[i] * xs[j]).sin();
        }
        e += (xs[i] - w).powi(2) * xs[i];
    }
    e
}

#[test]
fn vjp_of_a_gradient_in_a_slice_and_a_scalar() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 140 + k as u64);
        let w = 0.7;
        let (value, pullback) = mixed_grad_vjp(&xs, w);
        assert_eq!(value, mixed_grad(&xs, w));
        let u = points(n, 150 + k as u64);
        let s = -0.3;
        let (hx, hw) = pullback((u.clone(), s));
        let (_, (tx, tw)) = mixed_grad_jvp(&xs, w, &u, s);
        let mut got = hx.clone();
        got.push(hw);
        let mut want = tx.clone();
        want.push(tw);
        assert_bits_close(&got, &want, &format!("n = {n}: against jvp of grad"));
        let mut z = xs.clone();
        z.push(w);
        let mut dir = u.clone();
        dir.push(s);
        let g = |v: &[f64]| {
            let (a, b) = mixed_grad(&v[..n], v[n]);
            let mut a = a;
            a.push(b);
            a
        };
        assert_fd(&got, &fd_dir(&g, &z, &dir), &format!("n = {n}: finite differences"));
        assert!(hw != 0.0);
        // `jacrev` of the gradient: per output (the slice's entries, then `w`'s), its
        // Jacobian in `(xs, w)`; contracted with `(u, s)` it is the product above.
        let ((jxx, jxw), (jwx, jww)) = mixed_grad_jacrev(&xs, w);
        assert_eq!((jxx.len(), jxw.len(), jwx.len()), (n, n, n));
        let by_rows: Vec<f64> = (0..n)
            .map(|r| jxx[r].iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() + jxw[r] * s)
            .chain([jwx.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() + jww * s])
            .collect();
        assert_bits_close(&by_rows, &got, &format!("n = {n}: jacrev of grad against vjp"));
    }
}

/// Lennard-Jones particles (a slice of arrays, every pair once).
#[fluxion::transforms(grad, hessian, vjp(grad), jvp(grad), jacrev(grad))]
fn lj(xs: &[[f64; 3]]) -> f64 {
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

#[test]
fn vjp_of_a_gradient_in_a_slice_of_arrays() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = particles(n, 40 + k as u64);
        let (value, pullback) = lj_grad_vjp(&xs);
        assert_eq!(value, lj_grad(&xs));
        let u = unflat3(&points(3 * n, 50 + k as u64));
        let (hu,) = pullback(u.clone());
        let (_, hu_fwd) = lj_grad_jvp(&xs, &u);
        assert_bits_close(&flat3(&hu), &flat3(&hu_fwd), &format!("n = {n}: against jvp of grad"));
        let want = fd_dir(&|v| flat3(&lj_grad(&unflat3(v))), &flat3(&xs), &flat3(&u));
        assert_fd(&flat3(&hu), &want, &format!("n = {n}: finite differences"));
        if n >= 2 {
            assert!(flat3(&hu).iter().any(|v| *v != 0.0));
        }
        // `jacrev` of the gradient, `h[i][a][j][b] = ∂²E/∂xᵢ[a]∂xⱼ[b]`, against the
        // Hessian of forward over reverse (the same shape) and the pullback.
        let jac = lj_grad_jacrev(&xs);
        let hess = lj_hessian(&xs);
        assert_eq!(jac.len(), n);
        for i in 0..n {
            for a in 0..3 {
                let row = flat3(&jac[i][a]);
                assert_bits_close(
                    &row,
                    &flat3(&hess[i][a]),
                    &format!("n = {n}: [{i}][{a}] against hessian"),
                );
                let mut e = vec![[0.0; 3]; n];
                e[i][a] = 1.0;
                let (col,) = pullback(e);
                assert_bits_close(&row, &flat3(&col), &format!("n = {n}: [{i}][{a}] against vjp"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Through calls: the gradient of a function that calls generated gradients of a slice
// function (reverse over the callee's reverse pass)
// ---------------------------------------------------------------------------------------

/// A callee with a pair loop, whose gradient in the scalar `w` is called below.
#[fluxion::transforms(grad(argnums = 1), grad_and_value(argnums = 1))]
fn energy(xs: &[f64], w: f64) -> f64 {
    let n = xs.len();
    let mut s = 0.0;
    for i in 0..n {
        s += (w * xs[i]).sin();
        for j in i + 1..n {
            s += (w * (xs[i] - xs[j])).cos() * 0.5;
        }
    }
    s
}

/// The gradient in the slice and the scalar of a loss over `energy_grad_and_value` and
/// `energy_grad`; `jvp` (forward over reverse through the same calls) checks it.
#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn loss(xs: &[f64], w: f64) -> f64 {
    let (d, e) = energy_grad_and_value(xs, w);
    let g = energy_grad(xs, w * 0.5);
    d * d + e * g
}

/// The same in a loop with a run-time trip count: the calls' reverse passes run again
/// in the reverse sweep.
#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn loss_in_loop(xs: &[f64], w: f64, reps: usize) -> f64 {
    let mut s = 0.0;
    for k in 0..reps {
        let d = energy_grad(xs, w + k as f64 * 0.25);
        s += d * d;
    }
    s
}

/// The gradient in the slice itself (a `Vec`), called and indexed: the squared norm of
/// the gradient, differentiated in the slice and the scalar.
#[fluxion::transforms(grad)]
fn sin_w(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (w * x[i]).sin();
    }
    s
}

#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn grad_norm(x: &[f64], w: f64) -> f64 {
    let d = sin_w_grad(x, w);
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            s += d[i] * d[j] * x[j];
        }
        s += d[i] * d[i];
    }
    s
}

#[test]
fn the_gradient_of_a_function_that_calls_a_gradient_in_a_slice() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let x = points(n, 120 + k as u64);
        let w = 1.3;
        let (gx, gw) = grad_norm_grad(&x, w);
        let mut z = x.clone();
        z.push(w);
        let f = |v: &[f64]| vec![grad_norm(&v[..n], v[n])];
        let want: Vec<f64> = fd_cols(&f, &z).iter().map(|c| c[0]).collect();
        let mut got = gx.clone();
        got.push(gw);
        assert_fd(&got, &want, &format!("n = {n}: finite differences"));
        let u = points(n, 130 + k as u64);
        let (_, dy) = grad_norm_jvp(&x, w, &u, 0.4);
        let dot: f64 = gx.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() + gw * 0.4;
        assert!(close(dot, dy, 1e-12), "n = {n}: {dot} against jvp {dy}");
        if n >= 1 {
            assert!(gw != 0.0);
        }
    }
}

#[test]
fn the_gradient_of_a_function_that_calls_a_gradient_of_a_slice_function() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 60 + k as u64);
        let w = 0.9;
        let (gx, gw) = loss_grad(&xs, w);
        assert_eq!(gx.len(), n);
        // Finite differences of the loss (which runs the generated gradients).
        let mut z = xs.clone();
        z.push(w);
        let f = |v: &[f64]| vec![loss(&v[..n], v[n])];
        let cols = fd_cols(&f, &z);
        let mut got = gx.clone();
        got.push(gw);
        let want: Vec<f64> = cols.iter().map(|c| c[0]).collect();
        assert_fd(&got, &want, &format!("n = {n}: finite differences"));
        // Forward over reverse: the loss's tangent along each direction.
        for s in 0..2 {
            let u = points(n, 70 + 2 * k as u64 + s);
            let dw = 0.3 - s as f64;
            let (y, dy) = loss_jvp(&xs, w, &u, dw);
            assert_eq!(y.to_bits(), loss(&xs, w).to_bits());
            let dot: f64 = gx.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() + gw * dw;
            assert!(close(dot, dy, 1e-12), "n = {n}: {dot} against jvp {dy}");
        }
        if n >= 2 {
            assert!(gx.iter().all(|v| *v != 0.0));
        }
    }
}

#[test]
fn calls_of_a_gradient_of_a_slice_function_in_a_run_time_loop() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 80 + k as u64);
        for reps in [0, 1, 3] {
            let w = -0.4;
            let (gx, gw) = loss_in_loop_grad(&xs, w, reps);
            let mut z = xs.clone();
            z.push(w);
            let f = |v: &[f64]| vec![loss_in_loop(&v[..n], v[n], reps)];
            let want: Vec<f64> = fd_cols(&f, &z).iter().map(|c| c[0]).collect();
            let mut got = gx.clone();
            got.push(gw);
            assert_fd(&got, &want, &format!("n = {n}, reps = {reps}: finite differences"));
            let u = points(n, 90 + k as u64);
            let (_, dy) = loss_in_loop_jvp(&xs, w, reps, &u, 0.7);
            let dot: f64 = gx.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() + gw * 0.7;
            assert!(close(dot, dy, 1e-12), "n = {n}, reps = {reps}: {dot} against jvp {dy}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// A tuple argument holding an integer: its cotangent `(f64, ())` summed over two calls
// (`() + ()` was emitted, in static code too, as soon as a reverse pass over the gradient
// was built)
// ---------------------------------------------------------------------------------------

#[fluxion::differentiable]
fn scaled(xs: &[f64], w: (f64, usize)) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += w.0 * (xs[i] * w.0).sin() * (i + w.1) as f64;
    }
    s
}

#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn scaled_twice(xs: &[f64], w: (f64, usize)) -> f64 {
    let e = scaled(xs, w);
    e * e * e + scaled(xs, (w.0 * 0.5, w.1))
}

/// The gradient in the slice (a `Vec` returned by a generated gradient, indexed),
/// differentiated again through the calls: the cotangent of the tuple argument flows back.
#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn scaled_outer(xs: &[f64], a: f64) -> f64 {
    let (gx, _) = scaled_twice_grad(xs, (a, 2));
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += gx[i] * xs[i];
    }
    s
}

#[test]
fn a_tuple_argument_holding_an_integer() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let xs = points(n, 100 + k as u64);
        let a = 0.8;
        let (gx, ga) = scaled_outer_grad(&xs, a);
        let mut z = xs.clone();
        z.push(a);
        let f = |v: &[f64]| vec![scaled_outer(&v[..n], v[n])];
        let want: Vec<f64> = fd_cols(&f, &z).iter().map(|c| c[0]).collect();
        let mut got = gx.clone();
        got.push(ga);
        assert_fd(&got, &want, &format!("n = {n}: finite differences"));
        let u = points(n, 110 + k as u64);
        let (_, dy) = scaled_outer_jvp(&xs, a, &u, -0.6);
        let dot: f64 = gx.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>() - 0.6 * ga;
        assert!(close(dot, dy, 1e-12), "n = {n}: {dot} against jvp {dy}");
        if n >= 1 {
            assert!(ga != 0.0 && gx.iter().all(|v| *v != 0.0));
        }
    }
}

/// The same without slices (fixed-size arrays): the `vjp_vjp` of a function calling
/// `cubed` with a tuple holding an integer did not compile.
#[fluxion::differentiable]
fn cubed(x: f64, k: usize, w: (f64, usize)) -> f64 {
    w.0 * x.powi(2) * (k + w.1) as f64
}

#[fluxion::transforms(grad(argnums = (0, 2)))]
fn cubed_loss(x: f64, k: usize, w: (f64, usize)) -> f64 {
    let e = cubed(x, k, w);
    e * e * e + cubed(x * w.0, k, (w.0, w.1 + 1))
}

#[fluxion::transforms(grad(argnums = (0, 1)), jvp)]
fn cubed_outer(x: f64, a: f64) -> f64 {
    let (gx, gw) = cubed_loss_grad(x, 2, (a, 1));
    let (ga, _) = gw;
    gx * ga + gx
}

#[test]
fn a_tuple_argument_holding_an_integer_in_fixed_size_code() {
    let (x, a) = (0.7, -0.4);
    let (dx, da) = cubed_outer_grad(x, a);
    let h = STEP;
    let fx = (cubed_outer(x + h, a) - cubed_outer(x - h, a)) / (2.0 * h);
    let fa = (cubed_outer(x, a + h) - cubed_outer(x, a - h)) / (2.0 * h);
    assert_fd(&[dx, da], &[fx, fa], "finite differences");
    let (_, dy) = cubed_outer_jvp(x, a, 0.3, -1.1);
    assert!(
        close(dx * 0.3 - da * 1.1, dy, 1e-12),
        "{} against jvp {dy}",
        dx * 0.3 - da * 1.1
    );
}

include!("support/dynamic_data.rs");
