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
//! All write into a preallocated `n x n` buffer (the `_into` forms). Each group runs in a
//! rayon pool of 1 and of 2 threads (`/t1`, `/t2`): the emitted `jacrev` of a vector
//! output runs chunks of rows as tasks (`jacobian_rows`); the hand-written loops are
//! serial in both.
//!
//! - `jacobian_chain_jacrev_chunks/n1000/{c1,c4,c64,auto}/t{1,2}`: `chunk_size = 1` (one
//!   scalar sweep per row), `4`, `64` and the default (tasks sized by the sweep's cost).
//! - `jacobian_assembly/n1000/{in_place,stacked}_c{4,64,1024}/t{1,2}`: the runtime's two
//!   assembly strategies over the same task body (rows of the cyclic Jacobian written by
//!   hand): rows written in place in the result (`jacobian_rows`) against rows written
//!   into a buffer per task and copied into the result (`jacobian_rows_stacked`); the
//!   baseline (`hand`) writes the rows in one serial loop.
//!
//! - `hessian_rosenbrock_dvector/n{100,1000}/t{1,2}`: the same Hessian of a `&DVector<f64>`
//!   (its slice, a run-time length), returned as a new `n x n` `DMatrix`, against the
//!   hand-written dense code writing a new `DMatrix` (both allocate their result).
//!
//! `cargo bench -p fluxion-benches --bench jacobians`, then `cargo run -p fluxion-benches
//! --bin ratios`.

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

/// The chain recurrence under the attributes given (one body for every variant).
macro_rules! chain_fn {
    ($name:ident, $($attr:tt)*) => {
        $($attr)*
        fn $name<const N: usize>(x: [f64; N]) -> [f64; N] {
            let mut y = [0.0; N];
            let mut s = 0.0;
            for i in 0..N {
                s = s * 0.5 + x[i].sin() * x[(i + 1) % N].exp();
                y[i] = s;
            }
            y
        }
    };
}

chain_fn!(chain, #[transforms(jacfwd, jacrev)]);
// `chunk_size = 1` (one scalar sweep per row), `4` and `64` rows per task.
chain_fn!(chain_c1, #[transforms(jacrev(chunk_size = 1))]);
chain_fn!(chain_c4, #[transforms(jacrev(chunk_size = 4))]);
chain_fn!(chain_c64, #[transforms(jacrev(chunk_size = 64))]);

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

#[hessian]
fn rosenbrock_dv(x: &nalgebra::DVector<f64>) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        let a = x[i] - x[i - 1] * x[i - 1];
        let b = 1.0 - x[i - 1];
        s += 100.0 * a * a + b * b;
    }
    s
}

fn rosenbrock_dv_hand(x: &nalgebra::DVector<f64>) -> nalgebra::DMatrix<f64> {
    let n = x.len();
    let mut h = nalgebra::DMatrix::zeros(n, n);
    for i in 0..n.saturating_sub(1) {
        h[(i, i)] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        h[(i + 1, i + 1)] += 200.0;
        h[(i, i + 1)] -= 400.0 * x[i];
        h[(i + 1, i)] -= 400.0 * x[i];
    }
    h
}

/// The Hessian of the Rosenbrock function of a `DVector` against the hand-written one,
/// both returning a new `DMatrix`.
fn compare_dvector(c: &mut Criterion, n: usize) {
    let x = nalgebra::DVector::from_fn(n, |i, _| 0.5 + 0.7 * ((i as f64 * 0.618_033_988_75) % 1.0));
    let group = format!("hessian_rosenbrock_dvector/n{n}");
    let want = rosenbrock_dv_hand(&x);
    for (t, pool) in pools() {
        let got = pool.install(|| rosenbrock_dv_hessian(&x));
        assert_eq!(got.shape(), want.shape());
        for (k, (a, b)) in got.iter().zip(want.iter()).enumerate() {
            assert!(close(*a, *b), "{group} [{k}]: {a} vs {b}");
        }
        let mut g = c.benchmark_group(format!("{group}/t{t}"));
        g.measurement_time(Duration::from_secs(4));
        g.sample_size(20);
        g.bench_function("fluxion", |bench| {
            bench.iter(|| pool.install(|| rosenbrock_dv_hessian(black_box(&x))))
        });
        g.bench_function("hand", |bench| bench.iter(|| rosenbrock_dv_hand(black_box(&x))));
        g.finish();
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
type Jacobian<const N: usize> = [[f64; N]; N];

/// Rayon pools of 1 and 2 threads.
fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    [1, 2]
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build();
            (t, pool.expect("a thread pool"))
        })
        .collect()
}

/// `run` against the hand-written `hand`: checked equal, then timed in groups
/// `{group}/t1` and `{group}/t2` (both run in the pool; the hand loops are serial).
fn compare<const N: usize>(
    c: &mut Criterion,
    group: &str,
    run: &(dyn Fn(&mut Jacobian<N>) + Sync),
    hand: &(dyn Fn(&mut Jacobian<N>) + Sync),
) {
    let (mut a, mut b) = (square::<N>(), square::<N>());
    hand(&mut b);
    for (t, pool) in pools() {
        pool.install(|| run(&mut a));
        for i in 0..N {
            for k in 0..N {
                assert!(
                    close(a[i][k], b[i][k]),
                    "{group} [{i}][{k}]: {} vs {}",
                    a[i][k],
                    b[i][k]
                );
            }
        }
        let mut g = c.benchmark_group(format!("{group}/t{t}"));
        g.measurement_time(Duration::from_secs(4));
        g.sample_size(20);
        g.bench_function("fluxion", |bench| {
            bench.iter(|| pool.install(|| run(black_box(&mut a))))
        });
        g.bench_function("hand", |bench| bench.iter(|| pool.install(|| hand(black_box(&mut b)))));
        g.finish();
    }
}

fn bench_n<const N: usize>(c: &mut Criterion) {
    let x: [f64; N] = std::array::from_fn(|i| 0.5 + 0.7 * ((i as f64 * 0.618_033_988_75) % 1.0));
    let x = &x;
    let cyclic_h = |j: &mut Jacobian<N>| cyclic_hand(black_box(x), j);
    let chain_h = |j: &mut Jacobian<N>| chain_hand(black_box(x), j);
    compare(
        c,
        &format!("jacobian_cyclic_jacfwd/n{N}"),
        &|j| cyclic_jacfwd_into(*x, j),
        &cyclic_h,
    );
    compare(
        c,
        &format!("jacobian_cyclic_jacrev/n{N}"),
        &|j| cyclic_jacrev_into(*x, j),
        &cyclic_h,
    );
    compare(
        c,
        &format!("jacobian_chain_jacfwd/n{N}"),
        &|j| chain_jacfwd_into(*x, j),
        &chain_h,
    );
    compare(
        c,
        &format!("jacobian_chain_jacrev/n{N}"),
        &|j| chain_jacrev_into(*x, j),
        &chain_h,
    );
    compare(
        c,
        &format!("hessian_rosenbrock/n{N}"),
        &|h| rosenbrock_hessian_into(*x, h),
        &|h| rosenbrock_hand(black_box(x), h),
    );
}

/// `chunk_size` on the emitted `jacrev` of the chain, n = 1000.
fn chunk_sizes(c: &mut Criterion) {
    const N: usize = 1000;
    let x: [f64; N] = std::array::from_fn(|i| 0.5 + 0.7 * ((i as f64 * 0.618_033_988_75) % 1.0));
    let x = &x;
    let hand = |j: &mut Jacobian<N>| chain_hand(black_box(x), j);
    let group = |k: &str| format!("jacobian_chain_jacrev_chunks/n{N}/{k}");
    compare(c, &group("c1"), &|j| chain_c1_jacrev_into(*x, j), &hand);
    compare(c, &group("c4"), &|j| chain_c4_jacrev_into(*x, j), &hand);
    compare(c, &group("c64"), &|j| chain_c64_jacrev_into(*x, j), &hand);
    compare(c, &group("auto"), &|j| chain_jacrev_into(*x, j), &hand);
}

/// The runtime's two assembly strategies over one task body: rows of the cyclic
/// Jacobian, written by hand (zero the row, add its three entries).
fn assembly(c: &mut Criterion) {
    use fluxion::__private::{jacobian_rows, jacobian_rows_stacked};
    const N: usize = 1000;
    const LANES: usize = 4;
    let x: [f64; N] = std::array::from_fn(|i| 0.5 + 0.7 * ((i as f64 * 0.618_033_988_75) % 1.0));
    let x = &x;
    let body = |c0: usize, rows: &mut [[f64; N]]| {
        for (k, row) in rows.iter_mut().enumerate() {
            let i = c0 * LANES + k;
            let (next, prev) = ((i + 1) % N, (i + N - 1) % N);
            row.fill(0.0);
            row[i] += x[i].cos() * x[next];
            row[next] += x[i].sin();
            row[prev] += 2.0 * x[prev];
        }
    };
    let hand = |j: &mut Jacobian<N>| cyclic_hand(black_box(x), j);
    for chunk in [4, 64, 1024] {
        let group = |k: &str| format!("jacobian_assembly/n{N}/{k}_c{chunk}");
        compare(
            c,
            &group("in_place"),
            &|j| jacobian_rows(&mut j[..], LANES, Some(chunk), 1, &body),
            &hand,
        );
        compare(
            c,
            &group("stacked"),
            &|j| jacobian_rows_stacked(&mut j[..], [0.0; N], LANES, Some(chunk), 1, &body),
            &hand,
        );
    }
}

fn benches(c: &mut Criterion) {
    bench_n::<100>(c);
    bench_n::<1000>(c);
    compare_dvector(c, 100);
    compare_dvector(c, 1000);
    chunk_sizes(c);
    assembly(c);
}

criterion_group!(jacobian_benches, benches);
criterion_main!(jacobian_benches);
