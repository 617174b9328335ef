//! Tensor code against hand-written nalgebra code, in the same run (one thread).
//!
//! - `nalgebra_mlp_grad/16`: the parameter gradient of a 5-layer tanh MLP with 16 x 16
//!   `SMatrix` weights (`16 -> 16 -> 16 -> 16 -> 16 -> 1`, squared error), written with
//!   nalgebra's operators and `grad` of it with respect to every weight and bias, against
//!   the backpropagation an expert writes with nalgebra (`Wᵀ δ`, `δ hᵀ`).
//!
//! - `nalgebra_vmap_mlp/n100000/t{1,2}`: the Lennard-Jones MLP of `vmap.rs` (`1 -> 16 -> 16
//!   -> 16 -> 16 -> 1`) with its weights in a parameter struct of nalgebra matrices and the
//!   layers written with nalgebra's operators, energies and forces of 10^5 distances by
//!   `vmap(grad_and_value(model), in_dims = (None, 0))`, against the per-sample nalgebra
//!   loop carrying `dE/dr` forward (on 2 threads, each half of the batch on one).
//!
//! - `nalgebra_per_sample_grads/n1024/t{1,2}`: the per-sample-gradient workload of
//!   `vmap.rs` (`vmap_per_sample_grads`: a `32 -> 64 -> 1` tanh MLP, squared error, 1024
//!   samples) written with nalgebra: the weights in a parameter struct of matrices, each
//!   sample an `SVector<f64, 32>`, `vmap(grad(loss), in_dims = (None, 0, 0))` (one
//!   gradient struct per sample, written by `_into` into a preallocated `Vec` of structs),
//!   against the per-sample nalgebra loop writing into a preallocated `Vec` (on 2
//!   threads, each half of the batch on one).
//!
//! - `cyclic_jacobian_dvector/n{100,1000}`: the dense `n x n` Jacobian of the cyclic
//!   function of a `DVector` (`y_i = sin(x_i) x_{i+1} + x_{i-1}^2`, indices mod `n`), a
//!   `DVector` built in the body, by `jacrev` (`fluxion_jacrev`: one reverse sweep per row)
//!   and `jacfwd` (`fluxion_jacfwd`: one forward sweep per column), both `O(n^2)`, against
//!   the hand-written Jacobian (`hand`: a zeroed `DMatrix` and the three nonzeros of each
//!   row). Not in the `ratios` table (it pairs `fluxion` with `hand`).
//!
//! At 1 and 2 threads (`t1`, `t2`) both variants run inside a rayon pool of that size
//! (`install`), so both pay its hand-off.
//!
//! `cargo bench -p fluxion-benches --bench nalgebra`, then
//! `cargo run -p fluxion-benches --bin ratios`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fluxion::{grad, grad_and_value, transforms, vmap, Parameters};
use nalgebra::{DMatrix, DVector, SMatrix, SVector};

type M = SMatrix<f64, 16, 16>;
type V = SVector<f64, 16>;
type Out = SMatrix<f64, 1, 16>;
type Grads = (M, V, M, V, M, V, M, V, Out, f64);

// The types written out: an attribute sees the signature's tokens, not what an alias
// (`M`) stands for.
#[grad(argnums = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9))]
#[allow(clippy::too_many_arguments)]
fn mlp5(
    w1: &SMatrix<f64, 16, 16>,
    b1: &SVector<f64, 16>,
    w2: &SMatrix<f64, 16, 16>,
    b2: &SVector<f64, 16>,
    w3: &SMatrix<f64, 16, 16>,
    b3: &SVector<f64, 16>,
    w4: &SMatrix<f64, 16, 16>,
    b4: &SVector<f64, 16>,
    w5: &SMatrix<f64, 1, 16>,
    b5: f64,
    x: &SVector<f64, 16>,
    y: f64,
) -> f64 {
    let h1 = (w1 * x + b1).map(|v| v.tanh());
    let h2 = (w2 * h1 + b2).map(|v| v.tanh());
    let h3 = (w3 * h2 + b3).map(|v| v.tanh());
    let h4 = (w4 * h3 + b4).map(|v| v.tanh());
    let e = (w5 * h4)[0] + b5 - y;
    e * e
}

/// The backpropagation an expert writes with nalgebra.
#[allow(clippy::too_many_arguments)]
fn mlp5_hand(w: &[M; 4], b: &[V; 4], w5: &Out, b5: f64, x: &V, y: f64) -> Grads {
    let h1 = (w[0] * x + b[0]).map(f64::tanh);
    let h2 = (w[1] * h1 + b[1]).map(f64::tanh);
    let h3 = (w[2] * h2 + b[2]).map(f64::tanh);
    let h4 = (w[3] * h3 + b[3]).map(f64::tanh);
    let e = (w5 * h4)[0] + b5 - y;
    let de = 2.0 * e;
    let gw5 = h4.transpose() * de;
    let back = |d: V, h: &V| d.component_mul(&h.map(|v| 1.0 - v * v));
    let d4 = back(w5.transpose() * de, &h4);
    let d3 = back(w[3].transpose() * d4, &h3);
    let d2 = back(w[2].transpose() * d3, &h2);
    let d1 = back(w[1].transpose() * d2, &h1);
    (
        d1 * x.transpose(),
        d1,
        d2 * h1.transpose(),
        d2,
        d3 * h2.transpose(),
        d3,
        d4 * h3.transpose(),
        d4,
        gw5,
        de,
    )
}

fn benches(c: &mut Criterion) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut u = |bound: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bound * (2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
    };
    let bound = 0.25;
    let w: [M; 4] = std::array::from_fn(|_| M::from_fn(|_, _| u(bound)));
    let b: [V; 4] = std::array::from_fn(|_| V::from_fn(|_, _| u(bound)));
    let w5 = Out::from_fn(|_, _| u(bound));
    let b5 = u(bound);
    let x = V::from_fn(|_, _| u(1.0));
    let y = 0.3;
    let run = |x: &V| mlp5_grad(&w[0], &b[0], &w[1], &b[1], &w[2], &b[2], &w[3], &b[3], &w5, b5, x, y);
    // The same gradient, within rounding (the generated code sums in another order).
    let (g, h) = (run(&x), mlp5_hand(&w, &b, &w5, b5, &x, y));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
    assert!(g.0.iter().zip(h.0.iter()).all(|(a, b)| close(*a, *b)));
    assert!(g.7.iter().zip(h.7.iter()).all(|(a, b)| close(*a, *b)));
    assert!(g.8.iter().zip(h.8.iter()).all(|(a, b)| close(*a, *b)));
    assert!(close(g.9, h.9));
    let mut group = c.benchmark_group("nalgebra_mlp_grad/16");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("fluxion", |bch| bch.iter(|| run(black_box(&x))));
    group.bench_function("hand", |bch| bch.iter(|| mlp5_hand(&w, &b, &w5, b5, black_box(&x), y)));
    group.finish();
}

/// The Lennard-Jones MLP's weights.
#[derive(Parameters, Clone)]
struct Mlp {
    w1: SMatrix<f64, 16, 1>,
    b1: SVector<f64, 16>,
    w2: SMatrix<f64, 16, 16>,
    b2: SVector<f64, 16>,
    w3: SMatrix<f64, 16, 16>,
    b3: SVector<f64, 16>,
    w4: SMatrix<f64, 16, 16>,
    b4: SVector<f64, 16>,
    w5: SMatrix<f64, 1, 16>,
    b5: f64,
}

#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn model(p: &Mlp, r: f64) -> f64 {
    let h1 = (p.w1 * r + p.b1).map(|v| v.tanh());
    let h2 = (p.w2 * h1 + p.b2).map(|v| v.tanh());
    let h3 = (p.w3 * h2 + p.b3).map(|v| v.tanh());
    let h4 = (p.w4 * h3 + p.b4).map(|v| v.tanh());
    (p.w5 * h4)[0] + p.b5
}

/// The per-sample nalgebra loop: the forward pass carrying `dE/dr`.
fn model_hand(p: &Mlp, r: &[f64], force: &mut [f64], e: &mut [f64]) {
    let layer = |w: &M, b: &V, h: &V, dh: &V| {
        let t = (w * h + b).map(f64::tanh);
        let dt = (w * dh).component_mul(&t.map(|v| 1.0 - v * v));
        (t, dt)
    };
    for ((r, f), e) in r.iter().zip(force.iter_mut()).zip(e.iter_mut()) {
        let h = (p.w1 * *r + p.b1).map(f64::tanh);
        let dh = p.w1.component_mul(&h.map(|v| 1.0 - v * v));
        let (h, dh) = layer(&p.w2, &p.b2, &h, &dh);
        let (h, dh) = layer(&p.w3, &p.b3, &h, &dh);
        let (h, dh) = layer(&p.w4, &p.b4, &h, &dh);
        *e = (p.w5 * h)[0] + p.b5;
        *f = (p.w5 * dh)[0];
    }
}

fn vmap_mlp(c: &mut Criterion) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut u = |bound: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bound * (2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
    };
    let hb = 0.25;
    let p = Mlp {
        w1: SMatrix::from_fn(|_, _| u(1.0)),
        b1: SVector::from_fn(|_, _| u(1.0)),
        w2: M::from_fn(|_, _| u(hb)),
        b2: V::from_fn(|_, _| u(hb)),
        w3: M::from_fn(|_, _| u(hb)),
        b3: V::from_fn(|_, _| u(hb)),
        w4: M::from_fn(|_, _| u(hb)),
        b4: V::from_fn(|_, _| u(hb)),
        w5: Out::from_fn(|_, _| u(hb)),
        b5: u(hb),
    };
    let n = 100_000;
    let r: Vec<f64> = (0..n).map(|k| 0.5 + 0.5 * k as f64 / n as f64).collect();
    let (mut f1, mut e1, mut f2, mut e2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    model_grad_and_value_vmap_into(&p, &r, (&mut f1, &mut e1), None);
    model_hand(&p, &r, &mut f2, &mut e2);
    for k in 0..n {
        let ok = (f1[k] - f2[k]).abs() <= 1e-12 * f2[k].abs().max(1.0)
            && (e1[k] - e2[k]).abs() <= 1e-12 * e2[k].abs().max(1.0);
        assert!(ok, "sample {k}: {:?} vs {:?}", (f1[k], e1[k]), (f2[k], e2[k]));
    }
    for t in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("a thread pool");
        let mut g = c.benchmark_group(format!("nalgebra_vmap_mlp/n100000/t{t}"));
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("fluxion", |b| {
            b.iter(|| pool.install(|| model_grad_and_value_vmap_into(&p, black_box(&r), (&mut f1, &mut e1), None)))
        });
        g.bench_function("hand", |b| {
            b.iter(|| match t {
                1 => pool.install(|| model_hand(&p, black_box(&r), &mut f2, &mut e2)),
                _ => pool.install(|| {
                    let mid = n / 2;
                    let (r0, r1) = r.split_at(mid);
                    let (fa, fb) = f2.split_at_mut(mid);
                    let (ea, eb) = e2.split_at_mut(mid);
                    rayon::join(|| model_hand(&p, r0, fa, ea), || model_hand(&p, r1, fb, eb));
                }),
            })
        });
        g.finish();
    }
}

/// The per-sample-gradient MLP's weights (`32 -> 64 -> 1`).
#[derive(Parameters, Clone, PartialEq)]
struct Psg {
    w1: SMatrix<f64, 64, 32>,
    b1: SVector<f64, 64>,
    w2: SMatrix<f64, 1, 64>,
    b2: f64,
}

#[vmap(in_dims = (None, 0, 0))]
#[grad]
fn sample_loss(p: &Psg, x: SVector<f64, 32>, y: f64) -> f64 {
    let h = (p.w1 * x + p.b1).map(|v| v.tanh());
    let e = (p.w2 * h)[0] + p.b2 - y;
    e * e
}

/// The per-sample nalgebra loop: backpropagation sample by sample.
fn sample_loss_hand(p: &Psg, x: &[SVector<f64, 32>], y: &[f64], out: &mut [Psg]) {
    for ((x, y), g) in x.iter().zip(y).zip(out.iter_mut()) {
        let h = (p.w1 * x + p.b1).map(f64::tanh);
        let de = 2.0 * ((p.w2 * h)[0] + p.b2 - y);
        let d = (p.w2.transpose() * de).component_mul(&h.map(|v| 1.0 - v * v));
        g.w1 = d * x.transpose();
        g.b1 = d;
        g.w2 = h.transpose() * de;
        g.b2 = de;
    }
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
    let (b_in, b_hid) = (1.0 / 32f64.sqrt(), 1.0 / 64f64.sqrt());
    let p = Psg {
        w1: SMatrix::from_fn(|_, _| u(b_in)),
        b1: SVector::from_fn(|_, _| u(b_in)),
        w2: SMatrix::from_fn(|_, _| u(b_hid)),
        b2: u(b_hid),
    };
    let x: Vec<SVector<f64, 32>> = (0..n).map(|_| SVector::from_fn(|_, _| u(1.0))).collect();
    let y: Vec<f64> = (0..n).map(|_| u(1.0)).collect();
    let mut g2 = vec![p.clone(); n];
    let mut g1 = vec![p.clone(); n];
    sample_loss_grad_vmap_into(&p, &x, &y, &mut g1, None);
    assert!(
        sample_loss_grad_vmap(&p, &x, &y) == g1,
        "the by-value form writes the same"
    );
    sample_loss_hand(&p, &x, &y, &mut g2);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
    for k in 0..n {
        let (a, b) = (g1[k].to_flat(), g2[k].to_flat());
        assert!(a.iter().zip(&b).all(|(a, b)| close(*a, *b)), "sample {k}");
    }
    for t in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("a thread pool");
        let mut g = c.benchmark_group(format!("nalgebra_per_sample_grads/n1024/t{t}"));
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("fluxion", |b| {
            b.iter(|| pool.install(|| sample_loss_grad_vmap_into(&p, black_box(&x), &y, &mut g1, None)))
        });
        g.bench_function("hand", |b| {
            b.iter(|| match t {
                1 => pool.install(|| sample_loss_hand(&p, black_box(&x), &y, &mut g2)),
                _ => pool.install(|| {
                    let mid = n / 2;
                    let (x0, x1) = x.split_at(mid);
                    let (y0, y1) = y.split_at(mid);
                    let (ga, gb) = g2.split_at_mut(mid);
                    rayon::join(|| sample_loss_hand(&p, x0, y0, ga), || sample_loss_hand(&p, x1, y1, gb));
                }),
            })
        });
        g.finish();
    }
}

/// The cyclic function of a `DVector`: each output reads its input and both neighbours.
#[transforms(jacrev, jacfwd)]
fn cyclic(x: &DVector<f64>) -> DVector<f64> {
    let n = x.len();
    let mut y = DVector::zeros(n);
    for i in 0..n {
        y[i] = x[i].sin() * x[(i + 1) % n] + x[(i + n - 1) % n] * x[(i + n - 1) % n];
    }
    y
}

/// The cyclic Jacobian by hand: three nonzeros per row, added where the indices coincide
/// (`n` = 1, 2).
fn cyclic_jacobian_hand(x: &DVector<f64>) -> DMatrix<f64> {
    let n = x.len();
    let mut j = DMatrix::zeros(n, n);
    for i in 0..n {
        let (next, prev) = ((i + 1) % n, (i + n - 1) % n);
        j[(i, i)] += x[i].cos() * x[next];
        j[(i, next)] += x[i].sin();
        j[(i, prev)] += 2.0 * x[prev];
    }
    j
}

fn cyclic_jacobian(c: &mut Criterion) {
    for n in [100usize, 1000] {
        let x = DVector::from_fn(n, |i, _| (0.37 * i as f64).sin() + 0.1);
        let (jr, jf, h) = (cyclic_jacrev(&x), cyclic_jacfwd(&x), cyclic_jacobian_hand(&x));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
        assert_eq!((jr.nrows(), jr.ncols(), jf.nrows(), jf.ncols()), (n, n, n, n));
        assert!(jr.iter().zip(h.iter()).all(|(a, b)| close(*a, *b)));
        assert!(jf.iter().zip(h.iter()).all(|(a, b)| close(*a, *b)));
        let mut group = c.benchmark_group(format!("cyclic_jacobian_dvector/n{n}"));
        group.measurement_time(Duration::from_secs(3));
        if n >= 1000 {
            group.sample_size(10);
        }
        group.bench_function("fluxion_jacrev", |bch| bch.iter(|| cyclic_jacrev(black_box(&x))));
        group.bench_function("fluxion_jacfwd", |bch| bch.iter(|| cyclic_jacfwd(black_box(&x))));
        group.bench_function("hand", |bch| bch.iter(|| cyclic_jacobian_hand(black_box(&x))));
        group.finish();
    }
}

criterion_group!(nalgebra_benches, benches, vmap_mlp, per_sample_grads, cyclic_jacobian);
criterion_main!(nalgebra_benches);
