//! The lane math of the runtime (`fluxion::__private::Lanes` on `f64x4`, what `vmap` will
//! call) against the scalar std loop, over 10^5 `f64` values, in the same run. Each group
//! has a `fluxion` (lanes) and a `hand` (std's method in a plain loop) function, so the
//! `ratios` binary prints lanes / scalar.
//!
//! `cargo bench -p fluxion-benches --bench lanes`, then
//! `cargo run -p fluxion-benches --bin ratios`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxion::__private::{f64x4, Lanes};

const N: usize = 100_000;

/// `f` over `xs` four lanes at a time (the last, partial chunk padded with 1).
fn lanes_unary(xs: &[f64], out: &mut [f64], f: impl Fn(f64x4) -> f64x4) {
    let mut xc = xs.chunks_exact(4);
    let mut oc = out.chunks_exact_mut(4);
    for (x, o) in (&mut xc).zip(&mut oc) {
        f(f64x4::from_slice(x)).write_to_slice(o);
    }
    let (x, o) = (xc.remainder(), oc.into_remainder());
    if !x.is_empty() {
        f(f64x4::from_slice_partial(x, 1.0)).write_to_slice_partial(o);
    }
}

fn lanes_binary(xs: &[f64], ys: &[f64], out: &mut [f64], f: impl Fn(f64x4, f64x4) -> f64x4) {
    for ((x, y), o) in xs.chunks_exact(4).zip(ys.chunks_exact(4)).zip(out.chunks_exact_mut(4)) {
        f(f64x4::from_slice(x), f64x4::from_slice(y)).write_to_slice(o);
    }
}

fn benches(c: &mut Criterion) {
    // Inputs in each function's ordinary range.
    let wave = |i: usize| ((i as f64) * 0.618_033_988_749_895).fract();
    let sym: Vec<f64> = (0..N).map(|i| 8.0 * wave(i) - 4.0).collect(); // [-4, 4)
    let pos: Vec<f64> = (0..N).map(|i| 1e-3 + 50.0 * wave(i)).collect(); // (0, 50)
    let exps: Vec<f64> = (0..N).map(|i| 6.0 * wave(i * 7 + 3) - 3.0).collect(); // [-3, 3)
    let mut out = vec![0.0; N];
    let mut want = vec![0.0; N];

    type Unary = (&'static str, fn(f64x4) -> f64x4, fn(f64) -> f64, bool);
    let unary: [Unary; 4] = [
        ("lanes_tanh", Lanes::tanh, f64::tanh, false),
        ("lanes_exp", Lanes::exp, f64::exp, false),
        ("lanes_ln", Lanes::ln, f64::ln, true),
        ("lanes_sin", Lanes::sin, f64::sin, false),
    ];
    for (name, lane, scalar, positive) in unary {
        let xs = if positive { &pos } else { &sym };
        // Correctness first: the lane results are std's within a few ulps.
        lanes_unary(xs, &mut out, lane);
        for (o, x) in out.iter().zip(xs) {
            let w = scalar(*x);
            assert!((o - w).abs() <= 4.0 * f64::EPSILON * w.abs(), "{name}({x}): {o} vs {w}");
        }
        let mut g = c.benchmark_group(name);
        g.bench_function("fluxion", |b| b.iter(|| lanes_unary(black_box(xs), &mut out, lane)));
        g.bench_function("hand", |b| {
            b.iter(|| {
                for (o, x) in want.iter_mut().zip(black_box(xs)) {
                    *o = scalar(*x);
                }
            })
        });
        g.finish();
    }

    lanes_binary(&pos, &exps, &mut out, Lanes::powf);
    for ((o, x), y) in out.iter().zip(&pos).zip(&exps) {
        let w = x.powf(*y);
        assert!(
            (o - w).abs() <= 2.0 * f64::EPSILON * w.abs(),
            "powf({x}, {y}): {o} vs {w}"
        );
    }
    let mut g = c.benchmark_group("lanes_powf");
    g.bench_function("fluxion", |b| {
        b.iter(|| lanes_binary(black_box(&pos), black_box(&exps), &mut out, Lanes::powf))
    });
    g.bench_function("hand", |b| {
        b.iter(|| {
            for ((o, x), y) in want.iter_mut().zip(black_box(&pos)).zip(black_box(&exps)) {
                *o = x.powf(*y);
            }
        })
    });
    g.finish();
}

criterion_group!(lane_benches, benches);
criterion_main!(lane_benches);
