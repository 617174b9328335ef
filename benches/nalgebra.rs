//! Tensor code against hand-written nalgebra code, in the same run (one thread).
//!
//! - `nalgebra_mlp_grad/16`: the parameter gradient of a 5-layer tanh MLP with 16 x 16
//!   `SMatrix` weights (`16 -> 16 -> 16 -> 16 -> 16 -> 1`, squared error), written with
//!   nalgebra's operators and `grad` of it with respect to every weight and bias, against
//!   the backpropagation an expert writes with nalgebra (`Wᵀ δ`, `δ hᵀ`).
//!
//! `cargo bench -p fluxion-benches --bench nalgebra`, then
//! `cargo run -p fluxion-benches --bin ratios`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fluxion::grad;
use nalgebra::{SMatrix, SVector};

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

criterion_group!(nalgebra_benches, benches);
criterion_main!(nalgebra_benches);
