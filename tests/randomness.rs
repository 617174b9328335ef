//! Random draws (`fluxion::Rng`) in annotated functions, and `vmap`'s `randomness`.
//!
//! A draw is a pure function of the generator and its counter, so the original function,
//! every generated derivative and every sample of a batch see the same numbers: checked
//! bit for bit. Derivatives treat draws as constants: checked against central differences
//! of the original function with the same generator. Under `vmap`, sample `k` draws from
//! `rng.sample(k)` (`randomness = "different"`) or from `rng` itself (`"same"`), whatever
//! the batch size, chunk size and thread count.

use fluxion::{differentiable, grad, grad_and_value, hessian, transforms, vmap, Rng};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 9, 1023];

fn points(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

/// Noise added to a quadratic, one normal draw per loop iteration and a uniform scale from a
/// derived generator. Arithmetic and `sqrt` only, so lanes give the scalar bits.
#[transforms(
    vmap(in_dims = (None, 0), randomness = "different", name = "noisy_different"),
    vmap(in_dims = (None, 0), randomness = "same", name = "noisy_same"),
    grad_and_value(argnums = 1),
    jvp,
    vjp
)]
fn noisy(rng: &Rng, x: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        let z = rng.normal(i);
        s += (x + 0.1 * z) * (x - 0.2 * z);
    }
    let scale = 1.0 + rng.fold_in(7).uniform(0);
    (s * s + 1.0).sqrt() * scale
}

/// `noisy`'s gradient batched: the draws of each sample's forward and reverse pass agree.
#[vmap(in_dims = (None, 0), randomness = "different")]
#[grad_and_value(argnums = 1)]
fn noisy_g(rng: &Rng, x: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        let z = rng.normal(i);
        s += (x + 0.1 * z) * (x - 0.2 * z);
    }
    let scale = 1.0 + rng.fold_in(7).uniform(0);
    (s * s + 1.0).sqrt() * scale
}

/// A generator by value, draws at counters computed from a loop index, an array argument.
#[transforms(
    jacrev(argnums = 1),
    jacfwd(argnums = 1),
    vmap(in_dims = (None, 0), randomness = "different")
)]
fn mix(rng: Rng, x: [f64; 3]) -> [f64; 2] {
    let mut y = [0.0; 2];
    for i in 0..3 {
        let a = rng.uniform(2 * i);
        let b = rng.uniform(2 * i + 1);
        y[0] += a * x[i] * x[i];
        y[1] += b * x[i] - a * b;
    }
    y
}

#[hessian(argnums = 1)]
fn noisy_quartic(rng: &Rng, x: [f64; 2]) -> f64 {
    let a = rng.normal(0);
    let b = rng.normal(1);
    a * x[0] * x[0] * x[1] + b * x[1] * x[1] * x[1] * x[1]
}

/// `f32`: `uniform_f32` and `normal_f32`, 8 lanes.
#[vmap(in_dims = (None, 0), randomness = "different")]
fn noisy32(rng: &Rng, x: f32) -> f32 {
    x * (1.0 + rng.uniform_f32(0)) + 0.5 * rng.normal_f32(1)
}

/// Nested: sample `(o, k)` draws from `rng.sample(o).sample(k)`.
#[vmap(in_dims = (None, 0), randomness = "different")]
#[vmap(in_dims = (None, 0), randomness = "different")]
fn jitter(rng: &Rng, x: f64) -> f64 {
    x + rng.normal(0)
}

fn central<F: Fn(f64) -> f64>(f: F, x: f64) -> f64 {
    let h = 1e-6;
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn derivatives_see_the_originals_draws() {
    for seed in [0, 1, 99] {
        let rng = Rng::new(seed);
        for x in points(7) {
            let (g, v) = noisy_grad_and_value(&rng, x);
            assert_eq!(v.to_bits(), noisy(&rng, x).to_bits());
            let fd = central(|x| noisy(&rng, x), x);
            assert!((g - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "grad {g} vs {fd} at {x}");
            let (y, t) = noisy_jvp(&rng, x, 1.0);
            assert_eq!(y.to_bits(), v.to_bits());
            assert!((t - g).abs() <= 1e-12 * (1.0 + g.abs()), "jvp {t} vs grad {g}");
            let (y, pullback) = noisy_vjp(&rng, x);
            assert_eq!(y.to_bits(), v.to_bits());
            let (gx,) = pullback(1.0);
            assert!((gx - g).abs() <= 1e-12 * (1.0 + g.abs()), "vjp {gx} vs grad {g}");
        }
    }
}

#[test]
fn jacobians_and_hessians_treat_draws_as_constants() {
    let rng = Rng::new(5);
    let x = [0.3, -1.2, 0.8];
    let jr = mix_jacrev(rng, x);
    let jf = mix_jacfwd(rng, x);
    for r in 0..2 {
        for c in 0..3 {
            let fd = central(
                |t| {
                    let mut y = x;
                    y[c] = t;
                    mix(rng, y)[r]
                },
                x[c],
            );
            assert!((jr[r][c] - fd).abs() < 1e-7, "jacrev[{r}][{c}] {} vs {fd}", jr[r][c]);
            assert_eq!(jr[r][c].to_bits(), jf[r][c].to_bits());
        }
    }
    // Exact second derivatives of a polynomial with drawn coefficients.
    let (a, b) = (rng.normal(0), rng.normal(1));
    let x = [0.7, -0.4];
    let h = noisy_quartic_hessian(&rng, x);
    let want = [
        [2.0 * a * x[1], 2.0 * a * x[0]],
        [2.0 * a * x[0], 12.0 * b * x[1] * x[1]],
    ];
    for r in 0..2 {
        for c in 0..2 {
            assert!(
                (h[r][c] - want[r][c]).abs() < 1e-12,
                "hessian[{r}][{c}] {} vs {}",
                h[r][c],
                want[r][c]
            );
        }
    }
}

#[test]
fn different_gives_sample_k_the_generator_rng_sample_k() {
    let rng = Rng::new(11);
    for n in SIZES {
        let xs = points(n);
        let ys = noisy_different(&rng, &xs);
        let same = noisy_same(&rng, &xs);
        let (gs, vs) = noisy_g_grad_and_value_vmap(&rng, &xs);
        assert_eq!(ys.len(), n);
        for k in 0..n {
            assert_eq!(
                ys[k].to_bits(),
                noisy(&rng.sample(k), xs[k]).to_bits(),
                "sample {k} of {n}"
            );
            assert_eq!(same[k].to_bits(), noisy(&rng, xs[k]).to_bits(), "sample {k} of {n}");
            let (g, v) = noisy_g_grad_and_value(&rng.sample(k), xs[k]);
            assert_eq!(
                (gs[k].to_bits(), vs[k].to_bits()),
                (g.to_bits(), v.to_bits()),
                "sample {k} of {n}"
            );
        }
        if n > 1 {
            assert_ne!(ys[0], ys[1], "each sample its own draws");
        }
    }
}

#[test]
fn draws_do_not_depend_on_chunks_or_threads() {
    let rng = Rng::new(3);
    let xs = points(1023);
    let want = noisy_different(&rng, &xs);
    for chunk in [None, Some(1), Some(3), Some(4), Some(100)] {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut out = vec![0.0; xs.len()];
            pool.install(|| noisy_different_into(&rng, &xs, &mut out, chunk));
            let same = out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "chunk {chunk:?}, {threads} threads");
        }
    }
}

#[test]
fn arrays_by_value_generators_and_f32() {
    let rng = Rng::new(8);
    for n in SIZES {
        let xs: Vec<[f64; 3]> = points(n).iter().map(|&p| [p, 1.0 - p, p * p]).collect();
        let ys = mix_vmap(rng, &xs);
        for k in 0..n {
            let y = mix(rng.sample(k), xs[k]);
            assert_eq!(ys[k].map(f64::to_bits), y.map(f64::to_bits), "sample {k} of {n}");
        }
        let xs: Vec<f32> = points(n).iter().map(|&p| p as f32).collect();
        let ys = noisy32_vmap(&rng, &xs);
        for k in 0..n {
            assert_eq!(
                ys[k].to_bits(),
                noisy32(&rng.sample(k), xs[k]).to_bits(),
                "f32 sample {k} of {n}"
            );
        }
    }
}

#[test]
fn nested_batches_derive_each_level() {
    let rng = Rng::new(21);
    let xs: Vec<Vec<f64>> = (0..5).map(|o| points(o * 3)).collect();
    let ys = jitter_vmap_vmap(&rng, &xs);
    for (o, inner) in xs.iter().enumerate() {
        for (k, x) in inner.iter().enumerate() {
            assert_eq!(ys[o][k].to_bits(), jitter(&rng.sample(o).sample(k), *x).to_bits());
        }
    }
}

/// A model with noise shared by the batch (`randomness = "same"`), differentiated through.
#[vmap(in_dims = (None, None, 0), randomness = "same")]
fn shaky(rng: &Rng, p: [f64; 2], x: f64) -> f64 {
    let z = rng.normal(0);
    p[0] * x * x + p[1] * x + 0.1 * z * p[0] * p[1]
}

#[grad(argnums = 1)]
fn shaky_loss(rng: &Rng, p: [f64; 2], xs: &[f64]) -> f64 {
    let e = shaky_vmap(rng, p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i];
    }
    s
}

#[test]
fn a_loss_differentiates_through_a_batch_with_shared_draws() {
    let rng = Rng::new(4);
    let p = [0.7, -1.3];
    for n in [0, 1, 5, 33] {
        let xs = points(n);
        let g = shaky_loss_grad(&rng, p, &xs);
        for k in 0..2 {
            let fd = central(
                |t| {
                    let mut q = p;
                    q[k] = t;
                    shaky_loss(&rng, q, &xs)
                },
                p[k],
            );
            assert!(
                (g[k] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                "n {n}: grad[{k}] {} vs {fd}",
                g[k]
            );
        }
    }
}

/// A function whose generator is chosen under a condition that differs between samples,
/// stamped with the attributes given.
macro_rules! switching {
    ($name:ident, $(#[$a:meta])*) => {
        $(#[$a])*
        fn $name(rng: &Rng, x: f64) -> f64 {
            let mut r = rng.fold_in(1);
            if x > 0.0 {
                r = rng.fold_in(2);
            }
            let mut s = x;
            for i in 0..3 {
                if s < r.uniform(i) {
                    r = r.fold_in(i as u64);
                }
                s = s * x + r.normal(i);
            }
            s * r.uniform(9)
        }
    };
}

// Each lane selects its own sample's generator (lanes of generators selected under a lane
// mask), in the kernel and in the kernel of its gradient.
switching!(switched, #[vmap(in_dims = (None, 0), randomness = "different")] #[grad_and_value(argnums = 1)]);
switching!(switched_primal, #[vmap(in_dims = (None, 0), randomness = "different")]);
// The same under `randomness = "same"`: the shared generator in every lane, selected.
switching!(switched_same, #[vmap(in_dims = (None, 0), randomness = "same")] #[grad_and_value(argnums = 1)]);

#[test]
fn shared_generators_selected_under_a_batched_condition() {
    let rng = Rng::new(17);
    for n in SIZES {
        let xs = points(n);
        let (gs, vs) = switched_same_grad_and_value_vmap(&rng, &xs);
        for k in 0..n {
            let (g, v) = switched_same_grad_and_value(&rng, xs[k]);
            assert_eq!(
                (gs[k].to_bits(), vs[k].to_bits()),
                (g.to_bits(), v.to_bits()),
                "sample {k} of {n}"
            );
        }
    }
}

#[test]
fn generators_selected_under_a_batched_condition() {
    let rng = Rng::new(13);
    for n in SIZES {
        let xs = points(n);
        let ys = switched_primal_vmap(&rng, &xs);
        let (gs, vs) = switched_grad_and_value_vmap(&rng, &xs);
        for k in 0..n {
            let y = switched_primal(&rng.sample(k), xs[k]);
            assert_eq!(ys[k].to_bits(), y.to_bits(), "sample {k} of {n}");
            let (g, v) = switched_grad_and_value(&rng.sample(k), xs[k]);
            assert_eq!(
                (gs[k].to_bits(), vs[k].to_bits()),
                (g.to_bits(), v.to_bits()),
                "sample {k} of {n}"
            );
            assert_eq!(v.to_bits(), y.to_bits());
        }
    }
}

/// A model with each sample's own noise (`randomness = "different"`, dropout-like), in a
/// loss differentiated through the batch.
#[vmap(in_dims = (None, None, 0), randomness = "different")]
#[differentiable]
fn dropped(rng: &Rng, p: [f64; 2], x: f64) -> f64 {
    let keep = if rng.uniform(0) < 0.7 { 1.0 / 0.7 } else { 0.0 };
    (p[0] * x * x + p[1] * x) * keep + 0.01 * rng.normal(1) * p[1]
}

#[grad(argnums = 1)]
fn dropped_loss(rng: &Rng, p: [f64; 2], xs: &[f64]) -> f64 {
    let e = dropped_vmap(rng, p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i];
    }
    s
}

/// The same loss over per-sample calls with each sample's generator.
#[grad(argnums = 1)]
fn dropped_loss_per_sample(rng: &Rng, p: [f64; 2], x: f64, k: usize) -> f64 {
    let r = rng.sample(k);
    let e = dropped(&r, p, x);
    e * e
}

#[test]
fn a_loss_differentiates_through_a_batch_with_each_samples_draws() {
    let rng = Rng::new(6);
    let p = [0.4, 1.1];
    for n in [0, 1, 3, 4, 5, 9, 200] {
        let xs = points(n);
        let g = dropped_loss_grad(&rng, p, &xs);
        let mut want = [0.0; 2];
        for (k, &x) in xs.iter().enumerate() {
            let gk = dropped_loss_per_sample_grad(&rng, p, x, k);
            want[0] += gk[0];
            want[1] += gk[1];
        }
        for k in 0..2 {
            assert!(
                (g[k] - want[k]).abs() <= 1e-12 * (1.0 + want[k].abs()),
                "n {n}: grad[{k}] {} vs {}",
                g[k],
                want[k]
            );
            let fd = central(
                |t| {
                    let mut q = p;
                    q[k] = t;
                    dropped_loss(&rng, q, &xs)
                },
                p[k],
            );
            assert!(
                (g[k] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                "n {n}: grad[{k}] {} vs {fd}",
                g[k]
            );
        }
    }
}

/// A callee that draws, called by batched functions: each lane's generator is passed on
/// (`"different"`), or the shared one in every lane (`"same"`).
#[differentiable]
fn noise(rng: &Rng, x: f64) -> f64 {
    x * (1.0 + 0.1 * rng.normal(0)) + rng.fold_in(3).uniform(1)
}

#[transforms(
    vmap(in_dims = (None, 0), randomness = "different", name = "calls_different"),
    vmap(in_dims = (None, 0), randomness = "same", name = "calls_same")
)]
fn calls(rng: &Rng, x: f64) -> f64 {
    noise(rng, x) * noise(&rng.fold_in(1), x * x)
}

#[vmap(in_dims = (None, 0), randomness = "different")]
#[grad_and_value(argnums = 1)]
fn calls_g(rng: &Rng, x: f64) -> f64 {
    noise(rng, x) * noise(&rng.fold_in(1), x * x)
}

#[vmap(in_dims = (None, 0), randomness = "same")]
#[grad_and_value(argnums = 1)]
fn calls_g_same(rng: &Rng, x: f64) -> f64 {
    noise(rng, x) * noise(&rng.fold_in(1), x * x)
}

#[test]
fn generators_pass_to_callees() {
    let rng = Rng::new(23);
    for n in SIZES {
        let xs = points(n);
        let (d, s) = (calls_different(&rng, &xs), calls_same(&rng, &xs));
        let (gd, vd) = calls_g_grad_and_value_vmap(&rng, &xs);
        let (gs, vs) = calls_g_same_grad_and_value_vmap(&rng, &xs);
        for k in 0..n {
            let r = rng.sample(k);
            assert_eq!(d[k].to_bits(), calls(&r, xs[k]).to_bits(), "sample {k} of {n}");
            assert_eq!(s[k].to_bits(), calls(&rng, xs[k]).to_bits(), "sample {k} of {n}");
            let (g, v) = calls_g_grad_and_value(&r, xs[k]);
            assert_eq!(
                (gd[k].to_bits(), vd[k].to_bits()),
                (g.to_bits(), v.to_bits()),
                "sample {k} of {n}"
            );
            let (g, v) = calls_g_grad_and_value(&rng, xs[k]);
            assert_eq!(
                (gs[k].to_bits(), vs[k].to_bits()),
                (g.to_bits(), v.to_bits()),
                "sample {k} of {n}"
            );
        }
    }
}
