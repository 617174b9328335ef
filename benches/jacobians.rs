//! Large Jacobians and Hessians against the dense hand-written ones (zero the output, write
//! the nonzeros), in the same run:
//!
//! - `jacobian_cyclic_{jacfwd,jacrev}/n{100,1000}`: the Jacobian of the cyclic
//!   `f(x)_i = sin(x_i) x_{(i+1) mod n} + x_{(i-1) mod n}^2` (three nonzeros per row);
//! - `hessian_rosenbrock/n{100,1000}`: the Hessian of the chained Rosenbrock function
//!   `sum_{i<n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2` (tridiagonal).
//!
//! Both have the separable shape (`sparse.rs`: each iteration reads a few elements), so
//! their emitted derivatives add each iteration's small derivative into the result. A
//! third workload has no such shape and goes through the batched sweeps:
//!
//! - `jacobian_chain_{jacfwd,jacrev}/n{100,1000}`: `s_i = s_{i-1} / 2 + sin(x_i) exp(x_{(i+1) mod n})`,
//!   `y_i = s_i` (a dense lower triangle, plus a column), against the hand-written
//!   `J_ik = sum_{j <= i} 2^{j-i} dg_j/dx_k`.
//!
//! Both write into a preallocated `n x n` buffer (the `_into` forms). `cargo bench -p
//! fluxion-benches --bench jacobians`, then `cargo run -p fluxion-benches --bin ratios`.

// The hand-written derivatives index as the formulas do.
#![allow(clippy::needless_range_loop)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxion::{hessian, transforms};

#[transforms(jacfwd, jacrev)]
fn cyclic<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = x[i].sin() * x[(i + 1) % N] + x[(i + N - 1) % N] * x[(i + N - 1) % N];
    }
    y
}

fn cyclic_hand<const N: usize>(x: &[f64; N], j: &mut [[f64; N]; N]) {
    for row in j.iter_mut() {
        row.fill(0.0);
    }
    for i in 0..N {
        let (next, prev) = ((i + 1) % N, (i + N - 1) % N);
        j[i][i] += x[i].cos() * x[next];
        j[i][next] += x[i].sin();
        j[i][prev] += 2.0 * x[prev];
    }
}

#[transforms(jacfwd, jacrev)]
fn chain<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    let mut s = 0.0;
    for i in 0..N {
        s = s * 0.5 + x[i].sin() * x[(i + 1) % N].exp();
        y[i] = s;
    }
    y
}

fn chain_hand<const N: usize>(x: &[f64; N], j: &mut [[f64; N]; N]) {
    for row in j.iter_mut() {
        row.fill(0.0);
    }
    // Row i: the row i - 1 halved, plus g_i's two partials.
    for i in 0..N {
        let next = (i + 1) % N;
        let (ds, de) = (x[i].cos() * x[next].exp(), x[i].sin() * x[next].exp());
        if i > 0 {
            let (done, rest) = j.split_at_mut(i);
            for (a, b) in rest[0].iter_mut().zip(done[i - 1].iter()) {
                *a = 0.5 * b;
            }
        }
        j[i][i] += ds;
        j[i][next] += de;
    }
}

#[hessian]
fn rosenbrock<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

fn rosenbrock_hand<const N: usize>(x: &[f64; N], h: &mut [[f64; N]; N]) {
    for row in h.iter_mut() {
        row.fill(0.0);
    }
    for i in 0..N - 1 {
        h[i][i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        h[i + 1][i + 1] += 200.0;
        h[i][i + 1] -= 400.0 * x[i];
        h[i + 1][i] -= 400.0 * x[i];
    }
}

/// An `n x n` buffer on the heap.
fn square<const N: usize>() -> Box<[[f64; N]; N]> {
    vec![[0.0; N]; N].into_boxed_slice().try_into().expect("N rows")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// A Jacobian written into the caller's `n x n` buffer.
type JacobianInto<const N: usize> = fn([f64; N], &mut [[f64; N]; N]);

/// The emitted `jacfwd` and `jacrev` of one function (`_into` forms) against its
/// hand-written Jacobian: checked equal, then timed in groups `jacobian_{name}_{mode}/n{N}`.
fn compare_jacobians<const N: usize>(
    c: &mut Criterion,
    name: &str,
    x: [f64; N],
    modes: [(&str, JacobianInto<N>); 2],
    hand: fn(&[f64; N], &mut [[f64; N]; N]),
) {
    let (mut a, mut b) = (square::<N>(), square::<N>());
    hand(&x, &mut b);
    for (mode, run) in modes {
        run(x, &mut a);
        for i in 0..N {
            for k in 0..N {
                assert!(
                    close(a[i][k], b[i][k]),
                    "{name} {mode} [{i}][{k}]: {} vs {}",
                    a[i][k],
                    b[i][k]
                );
            }
        }
        let mut g = c.benchmark_group(format!("jacobian_{name}_{mode}/n{N}"));
        g.measurement_time(Duration::from_secs(4));
        g.sample_size(20);
        g.bench_function("fluxion", |bench| bench.iter(|| run(black_box(x), &mut a)));
        g.bench_function("hand", |bench| bench.iter(|| hand(black_box(&x), &mut b)));
        g.finish();
    }
}

fn bench_n<const N: usize>(c: &mut Criterion) {
    let x: [f64; N] = std::array::from_fn(|i| 0.5 + 0.7 * ((i as f64 * 0.618_033_988_75) % 1.0));
    compare_jacobians(
        c,
        "cyclic",
        x,
        [("jacfwd", cyclic_jacfwd_into::<N>), ("jacrev", cyclic_jacrev_into::<N>)],
        cyclic_hand::<N>,
    );
    compare_jacobians(
        c,
        "chain",
        x,
        [("jacfwd", chain_jacfwd_into::<N>), ("jacrev", chain_jacrev_into::<N>)],
        chain_hand::<N>,
    );
    let (mut a, mut b) = (square::<N>(), square::<N>());
    rosenbrock_hessian_into(x, &mut a);
    rosenbrock_hand(&x, &mut b);
    for i in 0..N {
        for k in 0..N {
            assert!(
                close(a[i][k], b[i][k]),
                "hessian [{i}][{k}]: {} vs {}",
                a[i][k],
                b[i][k]
            );
        }
    }
    let mut g = c.benchmark_group(format!("hessian_rosenbrock/n{N}"));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(20);
    g.bench_function("fluxion", |bench| {
        bench.iter(|| rosenbrock_hessian_into(black_box(x), &mut a))
    });
    g.bench_function("hand", |bench| bench.iter(|| rosenbrock_hand(black_box(&x), &mut b)));
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_n::<100>(c);
    bench_n::<1000>(c);
}

criterion_group!(jacobian_benches, benches);
criterion_main!(jacobian_benches);
