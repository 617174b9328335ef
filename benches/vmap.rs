//! `vmap` against the per-sample loop an expert writes, in the same run (one thread).
//!
//! - `vmap_lj/n1000000`: Lennard-Jones energies and forces (`EPS = 4`, `SIGMA = 0.5`) of
//!   10^6 distances uniform in `[0.5, 1.0]`: `vmap(grad_and_value(energy))` against a loop
//!   sharing `σ/r` and its powers.
//! - `vmap_mlp/n100000`: the Lennard-Jones MLP of `training.rs` (`1 -> 16 -> 16 -> 16 -> 16
//!   -> 1`, `tanh`), energies and forces of 10^5 distances with the weights shared (`None`):
//!   `vmap(grad_and_value(model))` against a loop carrying `dE/dr` forward alongside the
//!   values (forward mode, the cheapest for one input), with std's scalar `tanh`.
//! - `vmap_mlp_avx2/n100000`: the same on one thread, with a prototype of the generated
//!   loop compiled a second time for AVX2 and FMA and chosen at run time
//!   (`mlp_fluxion_avx2`; no `RUSTFLAGS`).
//! - `vmap_per_sample_grads/n1024`: per-sample gradients of a `32 -> 64 -> 1` tanh MLP with
//!   squared error, all four parameter gradients of 1024 samples written out.
//!
//! Each (but the AVX2 prototype) at 1 and 2 threads (`t1`, `t2`: rayon pools of that size; the hand loops split the
//! batch in halves on two threads). Both variants run inside the pool (`install`), so both
//! pay its hand-off to the pool's thread and back: on a virtual machine that is about
//! 0.1 ms per call, which a hand loop run on the calling thread would not count. Both variants write into preallocated buffers; no
//! `RUSTFLAGS` (the baseline x86-64 target). `cargo bench -p fluxion-benches --bench
//! vmap`, then `cargo run -p fluxion-benches --bin ratios`.

// The model takes its ten parameter arrays one by one.
#![allow(clippy::too_many_arguments)]
// The hand loops index as the formulas do.
#![allow(clippy::needless_range_loop)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxion::{grad, grad_and_value, vmap};

const EPS: f64 = 4.0;
const SIGMA: f64 = 0.5;

#[vmap]
#[grad_and_value]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// The per-sample loop: one division, the powers of `σ/r` shared by energy and force.
fn lj_hand(r: &[f64], force: &mut [f64], e: &mut [f64]) {
    for ((r, f), e) in r.iter().zip(force.iter_mut()).zip(e.iter_mut()) {
        let s = SIGMA / r;
        let s2 = s * s;
        let s6 = s2 * s2 * s2;
        let s12 = s6 * s6;
        *e = EPS * (s12 - s6);
        *f = EPS * (6.0 * s6 - 12.0 * s12) / r;
    }
}

const H: usize = 16;

#[vmap(in_dims = (0, None, None, None, None, None, None, None, None, None, None))]
#[grad_and_value(argnums = 0)]
fn model(
    r: f64,
    w1: &[f64; H],
    b1: &[f64; H],
    w2: &[[f64; H]; H],
    b2: &[f64; H],
    w3: &[[f64; H]; H],
    b3: &[f64; H],
    w4: &[[f64; H]; H],
    b4: &[f64; H],
    w5: &[f64; H],
    b5: &[f64; 1],
) -> f64 {
    let mut h1 = [0.0; H];
    for i in 0..H {
        h1[i] = (w1[i] * r + b1[i]).tanh();
    }
    let mut h2 = [0.0; H];
    for i in 0..H {
        let mut s = b2[i];
        for j in 0..H {
            s += w2[i][j] * h1[j];
        }
        h2[i] = s.tanh();
    }
    let mut h3 = [0.0; H];
    for i in 0..H {
        let mut s = b3[i];
        for j in 0..H {
            s += w3[i][j] * h2[j];
        }
        h3[i] = s.tanh();
    }
    let mut h4 = [0.0; H];
    for i in 0..H {
        let mut s = b4[i];
        for j in 0..H {
            s += w4[i][j] * h3[j];
        }
        h4[i] = s.tanh();
    }
    let mut e = b5[0];
    for j in 0..H {
        e += w5[j] * h4[j];
    }
    e
}

struct Params {
    w1: [f64; H],
    b1: [f64; H],
    w2: [[f64; H]; H],
    b2: [f64; H],
    w3: [[f64; H]; H],
    b3: [f64; H],
    w4: [[f64; H]; H],
    b4: [f64; H],
    w5: [f64; H],
    b5: [f64; 1],
}

impl Params {
    /// torch's `nn.Linear` initialisation, uniform in `±1/sqrt(fan_in)`, from a fixed
    /// sequence.
    fn new() -> Params {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut u = |bound: f64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bound * (2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
        };
        let hb = 1.0 / (H as f64).sqrt();
        Params {
            w1: std::array::from_fn(|_| u(1.0)),
            b1: std::array::from_fn(|_| u(1.0)),
            w2: std::array::from_fn(|_| std::array::from_fn(|_| u(hb))),
            b2: std::array::from_fn(|_| u(hb)),
            w3: std::array::from_fn(|_| std::array::from_fn(|_| u(hb))),
            b3: std::array::from_fn(|_| u(hb)),
            w4: std::array::from_fn(|_| std::array::from_fn(|_| u(hb))),
            b4: std::array::from_fn(|_| u(hb)),
            w5: std::array::from_fn(|_| u(hb)),
            b5: [u(hb)],
        }
    }
}

/// One hidden layer forward with its tangent: `h = tanh(W h_prev + b)`,
/// `dh = (1 - h²) (W dh_prev)`.
#[inline(always)]
fn layer(w: &[[f64; H]; H], b: &[f64; H], h: &[f64; H], dh: &[f64; H]) -> ([f64; H], [f64; H]) {
    let mut out = [0.0; H];
    let mut dout = [0.0; H];
    for i in 0..H {
        let (mut s, mut ds) = (b[i], 0.0);
        for j in 0..H {
            s += w[i][j] * h[j];
            ds += w[i][j] * dh[j];
        }
        let t = s.tanh();
        out[i] = t;
        dout[i] = (1.0 - t * t) * ds;
    }
    (out, dout)
}

/// The per-sample loop: the forward pass carrying `dE/dr`.
fn mlp_hand(p: &Params, r: &[f64], force: &mut [f64], e: &mut [f64]) {
    for ((r, f), e) in r.iter().zip(force.iter_mut()).zip(e.iter_mut()) {
        let mut h = [0.0; H];
        let mut dh = [0.0; H];
        for i in 0..H {
            let t = (p.w1[i] * r + p.b1[i]).tanh();
            h[i] = t;
            dh[i] = (1.0 - t * t) * p.w1[i];
        }
        let (h, dh) = layer(&p.w2, &p.b2, &h, &dh);
        let (h, dh) = layer(&p.w3, &p.b3, &h, &dh);
        let (h, dh) = layer(&p.w4, &p.b4, &h, &dh);
        let (mut v, mut dv) = (p.b5[0], 0.0);
        for j in 0..H {
            v += p.w5[j] * h[j];
            dv += p.w5[j] * dh[j];
        }
        *e = v;
        *f = dv;
    }
}

fn mlp_fluxion(p: &Params, r: &[f64], force: &mut [f64], e: &mut [f64]) {
    model_grad_and_value_vmap_into(
        r,
        &p.w1,
        &p.b1,
        &p.w2,
        &p.b2,
        &p.w3,
        &p.b3,
        &p.w4,
        &p.b4,
        &p.w5,
        &p.b5,
        (force, e),
        None,
    );
}

/// Per-sample gradients: a `32 -> 64 -> 1` tanh MLP with squared error, its gradient with
/// respect to the four parameter arrays for each of 1024 samples (`vmap(grad(loss),
/// in_dims = (None, None, None, None, 0, 0))`).
const D: usize = 32;
const HID: usize = 64;

#[vmap(in_dims = (None, None, None, None, 0, 0))]
#[grad(argnums = (0, 1, 2, 3))]
fn sample_loss(w1: &[[f64; D]; HID], b1: &[f64; HID], w2: &[f64; HID], b2: &[f64; 1], x: &[f64; D], y: f64) -> f64 {
    let mut out = b2[0];
    for i in 0..HID {
        let mut s = b1[i];
        for j in 0..D {
            s += w1[i][j] * x[j];
        }
        out += w2[i] * s.tanh();
    }
    let e = out - y;
    e * e
}

type Grads = (Vec<[[f64; D]; HID]>, Vec<[f64; HID]>, Vec<[f64; HID]>, Vec<[f64; 1]>);
type GradSlices<'a> = (
    &'a mut [[[f64; D]; HID]],
    &'a mut [[f64; HID]],
    &'a mut [[f64; HID]],
    &'a mut [[f64; 1]],
);

/// The per-sample loop an expert writes: forward storing the activations, backward.
fn per_sample_hand(
    w1: &[[f64; D]; HID],
    b1: &[f64; HID],
    w2: &[f64; HID],
    b2: &[f64; 1],
    x: &[[f64; D]],
    y: &[f64],
    g: GradSlices,
) {
    for k in 0..x.len() {
        let mut h = [0.0; HID];
        let mut out = b2[0];
        for i in 0..HID {
            let mut s = b1[i];
            for j in 0..D {
                s += w1[i][j] * x[k][j];
            }
            h[i] = s.tanh();
            out += w2[i] * h[i];
        }
        let de = 2.0 * (out - y[k]);
        g.3[k] = [de];
        for i in 0..HID {
            g.2[k][i] = de * h[i];
            let ds = de * w2[i] * (1.0 - h[i] * h[i]);
            g.1[k][i] = ds;
            for j in 0..D {
                g.0[k][i][j] = ds * x[k][j];
            }
        }
    }
}

/// A prototype of the generated `_vmap_into` loop compiled a second time for AVX2 and
/// FMA (chosen at run time, without `RUSTFLAGS`): `wide` keeps its SSE2 operators there
/// (it picks its paths with compile-time `cfg(target_feature)`), but the runtime's own
/// lane functions (`tanh`) are scalar kernels that LLVM vectorises to the enclosing
/// function's features, 256 bits wide here.
fn mlp_fluxion_avx2(p: &Params, r: &[f64], force: &mut [f64], e: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn run(p: &Params, r: &[f64], force: &mut [f64], e: &mut [f64]) {
            mlp_chunks(p, r, force, e);
        }
        // SAFETY: the features were detected above.
        return unsafe { run(p, r, force, e) };
    }
    mlp_chunks(p, r, force, e);
}

/// The loop of the generated `_vmap_into` for whole chunks (the benchmark's sizes are
/// multiples of 4), calling the generated kernel.
#[inline(always)]
fn mlp_chunks(p: &Params, r: &[f64], force: &mut [f64], e: &mut [f64]) {
    use fluxion::__private::{f64x4, Lanes};
    let chunks = r
        .chunks_exact(4)
        .zip(force.chunks_exact_mut(4))
        .zip(e.chunks_exact_mut(4));
    // The kernel writes `(dE/dr, E)` into a buffer of the loop's.
    let mut out = (<f64x4 as Lanes>::splat(0.0), <f64x4 as Lanes>::splat(0.0));
    for ((r, f), e) in chunks {
        __fluxion_kernel_model_grad_and_value_vmap(
            <f64x4 as Lanes>::from_slice(r),
            &p.w1,
            &p.b1,
            &p.w2,
            &p.b2,
            &p.w3,
            &p.b3,
            &p.w4,
            &p.b4,
            &p.w5,
            &p.b5,
            &mut out,
        );
        out.0.write_to_slice(f);
        out.1.write_to_slice(e);
    }
}

/// Distances uniform in `[0.5, 1.0]`, from a fixed sequence.
fn distances(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 0.5 + 0.5 * (k as f64 * 0.618_033_988_749_895).fract())
        .collect()
}

/// The hand loops on two threads: halves of the batch with `rayon::join`.
fn halves<'a>(r: &'a [f64], force: &'a mut [f64], e: &'a mut [f64], f: impl Fn(&[f64], &mut [f64], &mut [f64]) + Sync) {
    let mid = r.len() / 2;
    let (r0, r1) = r.split_at(mid);
    let (f0, f1) = force.split_at_mut(mid);
    let (e0, e1) = e.split_at_mut(mid);
    rayon::join(|| f(r0, f0, e0), || f(r1, f1, e1));
}

fn benches(c: &mut Criterion) {
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|t| {
            (
                t,
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("a thread pool"),
            )
        })
        .collect();
    // The two variants agree first (within the lane functions' few ulps).
    // Near the minimum the force cancels: compare on the scale of the terms (1).
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);

    let n = 1_000_000;
    let r = distances(n);
    let (mut f1, mut e1, mut f2, mut e2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    energy_grad_and_value_vmap_into(&r, (&mut f1, &mut e1), None);
    lj_hand(&r, &mut f2, &mut e2);
    for k in 0..n {
        assert!(
            close(f1[k], f2[k]) && close(e1[k], e2[k]),
            "sample {k}: {:?} vs {:?}",
            (f1[k], e1[k]),
            (f2[k], e2[k])
        );
    }
    for (t, pool) in &pools {
        let mut g = c.benchmark_group(format!("vmap_lj/n1000000/t{t}"));
        g.measurement_time(Duration::from_secs(4));
        g.bench_function("fluxion", |b| {
            b.iter(|| pool.install(|| energy_grad_and_value_vmap_into(black_box(&r), (&mut f1, &mut e1), None)))
        });
        g.bench_function("hand", |b| {
            b.iter(|| match t {
                1 => pool.install(|| lj_hand(black_box(&r), &mut f2, &mut e2)),
                _ => pool.install(|| halves(black_box(&r), &mut f2, &mut e2, lj_hand)),
            })
        });
        g.finish();
    }

    let n = 100_000;
    let p = Params::new();
    let r = distances(n);
    let (mut f1, mut e1, mut f2, mut e2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    mlp_fluxion(&p, &r, &mut f1, &mut e1);
    mlp_hand(&p, &r, &mut f2, &mut e2);
    for k in 0..n {
        let ok = (f1[k] - f2[k]).abs() <= 1e-12 * f2[k].abs().max(1.0)
            && (e1[k] - e2[k]).abs() <= 1e-12 * e2[k].abs().max(1.0);
        assert!(ok, "sample {k}: {:?} vs {:?}", (f1[k], e1[k]), (f2[k], e2[k]));
    }
    for (t, pool) in &pools {
        let mut g = c.benchmark_group(format!("vmap_mlp/n100000/t{t}"));
        g.measurement_time(Duration::from_secs(6));
        g.bench_function("fluxion", |b| {
            b.iter(|| pool.install(|| mlp_fluxion(&p, black_box(&r), &mut f1, &mut e1)))
        });
        g.bench_function("hand", |b| {
            b.iter(|| match t {
                1 => pool.install(|| mlp_hand(&p, black_box(&r), &mut f2, &mut e2)),
                _ => pool.install(|| halves(black_box(&r), &mut f2, &mut e2, |r, f, e| mlp_hand(&p, r, f, e))),
            })
        });
        g.finish();
    }

    // The same with the loop compiled for AVX2 and FMA where the machine has them.
    mlp_fluxion_avx2(&p, &r, &mut f1, &mut e1);
    for k in 0..n {
        let ok = (f1[k] - f2[k]).abs() <= 1e-12 * f2[k].abs().max(1.0)
            && (e1[k] - e2[k]).abs() <= 1e-12 * e2[k].abs().max(1.0);
        assert!(ok, "sample {k}: {:?} vs {:?}", (f1[k], e1[k]), (f2[k], e2[k]));
    }
    let mut g = c.benchmark_group("vmap_mlp_avx2/n100000");
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("fluxion", |b| {
        b.iter(|| mlp_fluxion_avx2(&p, black_box(&r), &mut f1, &mut e1))
    });
    g.bench_function("hand", |b| b.iter(|| mlp_hand(&p, black_box(&r), &mut f2, &mut e2)));
    g.finish();
}

fn per_sample_grads(c: &mut Criterion) {
    let n = 1024;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut u = |bound: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bound * (2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
    };
    let (b_in, b_hid) = (1.0 / (D as f64).sqrt(), 1.0 / (HID as f64).sqrt());
    let w1: Box<[[f64; D]; HID]> = Box::new(std::array::from_fn(|_| std::array::from_fn(|_| u(b_in))));
    let b1: [f64; HID] = std::array::from_fn(|_| u(b_in));
    let w2: [f64; HID] = std::array::from_fn(|_| u(b_hid));
    let b2 = [u(b_hid)];
    let x: Vec<[f64; D]> = (0..n).map(|_| std::array::from_fn(|_| u(1.0))).collect();
    let y: Vec<f64> = (0..n).map(|_| u(1.0)).collect();
    let zeros = || -> Grads {
        (
            vec![[[0.0; D]; HID]; n],
            vec![[0.0; HID]; n],
            vec![[0.0; HID]; n],
            vec![[0.0; 1]; n],
        )
    };
    let (mut g1, mut g2) = (zeros(), zeros());
    let run_fluxion = |g: &mut Grads| {
        sample_loss_grad_vmap_into(
            &w1,
            &b1,
            &w2,
            &b2,
            &x,
            &y,
            (&mut g.0, &mut g.1, &mut g.2, &mut g.3),
            None,
        )
    };
    run_fluxion(&mut g1);
    per_sample_hand(&w1, &b1, &w2, &b2, &x, &y, (&mut g2.0, &mut g2.1, &mut g2.2, &mut g2.3));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
    for k in 0..n {
        assert!(close(g1.3[k][0], g2.3[k][0]), "sample {k}");
        for i in 0..HID {
            assert!(
                close(g1.1[k][i], g2.1[k][i]) && close(g1.2[k][i], g2.2[k][i]),
                "sample {k}, unit {i}"
            );
            for j in 0..D {
                assert!(close(g1.0[k][i][j], g2.0[k][i][j]), "sample {k}, weight {i} {j}");
            }
        }
    }
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|t| {
            (
                t,
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("a thread pool"),
            )
        })
        .collect();
    for (t, pool) in &pools {
        let mut g = c.benchmark_group(format!("vmap_per_sample_grads/n1024/t{t}"));
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("fluxion", |b| b.iter(|| pool.install(|| run_fluxion(&mut g1))));
        g.bench_function("hand", |b| {
            b.iter(|| match t {
                1 => pool.install(|| {
                    per_sample_hand(
                        &w1,
                        &b1,
                        &w2,
                        &b2,
                        black_box(&x),
                        &y,
                        (&mut g2.0, &mut g2.1, &mut g2.2, &mut g2.3),
                    )
                }),
                _ => pool.install(|| {
                    let mid = n / 2;
                    let (x0, x1) = x.split_at(mid);
                    let (y0, y1) = y.split_at(mid);
                    let (a0, a1) = g2.0.split_at_mut(mid);
                    let (b0, b1_) = g2.1.split_at_mut(mid);
                    let (c0, c1) = g2.2.split_at_mut(mid);
                    let (d0, d1) = g2.3.split_at_mut(mid);
                    rayon::join(
                        || per_sample_hand(&w1, &b1, &w2, &b2, x0, y0, (a0, b0, c0, d0)),
                        || per_sample_hand(&w1, &b1, &w2, &b2, x1, y1, (a1, b1_, c1, d1)),
                    );
                }),
            })
        });
        g.finish();
    }
}

criterion_group!(vmap_benches, benches, per_sample_grads);
criterion_main!(vmap_benches);
