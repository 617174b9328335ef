//! Generated derivatives against the analytic derivative an expert would write, in the
//! same run. Each group has a `fluxion` and a `hand` function; the `ratios` binary of this
//! crate prints their ratios from criterion's results.
//!
//! `cargo bench -p fluxion-benches --bench derivatives`, then
//! `cargo run -p fluxion-benches --bin ratios`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxion::{grad, hessian, jacrev};

const EPS: f64 = 1.0;
const SIGMA: f64 = 1.0;

#[jacrev]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// dE/dr by hand: with t = σ/r, E = ε(t¹² - t⁶), dE/dr = ε(6t⁶ - 12t¹²)/r.
fn energy_deriv_hand(r: f64) -> f64 {
    let t = SIGMA / r;
    let t6 = t.powi(6);
    EPS * (6.0 * t6 - 12.0 * t6 * t6) / r
}

#[grad]
fn sum_sin<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i].sin();
    }
    s
}

fn sum_sin_grad_hand<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut g = [0.0; N];
    for i in 0..N {
        g[i] = x[i].cos();
    }
    g
}

#[hessian]
fn rosenbrock(x: [f64; 2]) -> f64 {
    let a = 1.0 - x[0];
    let b = x[1] - x[0] * x[0];
    a * a + 100.0 * b * b
}

fn rosenbrock_hessian_hand(x: [f64; 2]) -> [[f64; 2]; 2] {
    let h00 = 2.0 - 400.0 * (x[1] - x[0] * x[0]) + 800.0 * x[0] * x[0];
    let h01 = -400.0 * x[0];
    [[h00, h01], [h01, 200.0]]
}

/// One tanh layer with a squared loss; the gradient with respect to the weights.
#[grad]
fn layer_loss(w: [[f64; 8]; 8], x: [f64; 8], y: [f64; 8]) -> f64 {
    let mut loss = 0.0;
    for i in 0..8 {
        let mut s = 0.0;
        for j in 0..8 {
            s += w[i][j] * x[j];
        }
        let d = s.tanh() - y[i];
        loss += d * d;
    }
    loss
}

/// Backpropagation by hand: dL/dWᵢⱼ = 2(hᵢ - yᵢ)(1 - hᵢ²)xⱼ.
fn layer_loss_grad_hand(w: [[f64; 8]; 8], x: [f64; 8], y: [f64; 8]) -> [[f64; 8]; 8] {
    let mut g = [[0.0; 8]; 8];
    for i in 0..8 {
        let mut s = 0.0;
        for j in 0..8 {
            s += w[i][j] * x[j];
        }
        let h = s.tanh();
        let ds = 2.0 * (h - y[i]) * (1.0 - h * h);
        for j in 0..8 {
            g[i][j] = ds * x[j];
        }
    }
    g
}

fn inputs8() -> ([[f64; 8]; 8], [f64; 8], [f64; 8]) {
    let mut w = [[0.0; 8]; 8];
    for (i, row) in w.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = ((i * 8 + j) as f64 * 0.37).sin() * 0.5;
        }
    }
    let x: [f64; 8] = std::array::from_fn(|j| (j as f64 * 0.7).cos());
    let y: [f64; 8] = std::array::from_fn(|j| (j as f64 * 0.3).sin() * 0.2);
    (w, x, y)
}

fn benches(c: &mut Criterion) {
    // Correctness first: a benchmark of wrong numbers is worthless.
    assert!((energy_jacrev(1.3) - energy_deriv_hand(1.3)).abs() < 1e-12);
    let (w, x, y) = inputs8();
    let (ga, gb) = (layer_loss_grad(w, x, y), layer_loss_grad_hand(w, x, y));
    for i in 0..8 {
        for j in 0..8 {
            assert!((ga[i][j] - gb[i][j]).abs() < 1e-12);
        }
    }
    assert_eq!(rosenbrock_hessian([0.3, 0.7]), rosenbrock_hessian_hand([0.3, 0.7]));

    let mut g = c.benchmark_group("lj_force");
    g.bench_function("fluxion", |b| b.iter(|| energy_jacrev(black_box(1.3))));
    g.bench_function("hand", |b| b.iter(|| energy_deriv_hand(black_box(1.3))));
    g.finish();

    let xs: [f64; 64] = std::array::from_fn(|i| i as f64 * 0.1);
    let mut g = c.benchmark_group("sum_sin_grad_64");
    g.bench_function("fluxion", |b| b.iter(|| sum_sin_grad(black_box(xs))));
    g.bench_function("hand", |b| b.iter(|| sum_sin_grad_hand(black_box(xs))));
    g.finish();

    let mut g = c.benchmark_group("rosenbrock_hessian");
    g.bench_function("fluxion", |b| b.iter(|| rosenbrock_hessian(black_box([0.3, 0.7]))));
    g.bench_function("hand", |b| b.iter(|| rosenbrock_hessian_hand(black_box([0.3, 0.7]))));
    g.finish();

    let mut g = c.benchmark_group("tanh_layer_grad");
    g.bench_function("fluxion", |b| {
        b.iter(|| layer_loss_grad(black_box(w), black_box(x), black_box(y)))
    });
    g.bench_function("hand", |b| {
        b.iter(|| layer_loss_grad_hand(black_box(w), black_box(x), black_box(y)))
    });
    g.finish();
}

criterion_group!(derivative_benches, benches);
criterion_main!(derivative_benches);
