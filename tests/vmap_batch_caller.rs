//! `vmap` of a function that calls a batched function: an ensemble of models, each over
//! the same samples (`ensemble_vmap(ps, xs)`, each `ps[k]` calling `model_vmap(&p, xs)`).
//! The caller's lanes run the batch's lanes companion: sample `j` of every lane at once,
//! through the per-sample function's lanes companion. Checked against a loop of the
//! unbatched caller: bit for bit without transcendental functions (the same operations,
//! lane by lane), within rounding with them (the lanes' `tanh` against the scalar one),
//! at ensemble sizes around the lane counts and batch sizes from 0.

#![allow(clippy::needless_range_loop)]

use fluxion::{jvp, vmap};

const SIZES: [usize; 8] = [0, 1, 3, 4, 5, 7, 8, 9];

fn samples(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

fn params(m: usize) -> Vec<[f64; 4]> {
    (0..m)
        .map(|k| {
            let t = k as f64;
            [0.8 - 0.1 * t, 1.3 + 0.05 * t, -0.4 + 0.03 * t, 0.6 - 0.02 * t]
        })
        .collect()
}

#[vmap(in_dims = (None, 0))]
fn model(p: &[f64; 4], x: f64) -> f64 {
    (p[0] * x + p[1]) * x + p[2] / (1.0 + p[3] * p[3] * x * x)
}

/// One model of the ensemble over the batch.
#[vmap(in_dims = (0, None))]
fn ensemble(p: [f64; 4], xs: &[f64]) -> f64 {
    let e = model_vmap(&p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i] + 0.5 * e[i];
    }
    s + p[0]
}

/// Its `jvp`, batched over the models and their tangents.
#[vmap(in_dims = (0, None, 0, None))]
#[jvp]
fn ensemble_t(p: [f64; 4], xs: &[f64]) -> f64 {
    let e = model_vmap(&p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i] + 0.5 * e[i];
    }
    s + p[0]
}

#[test]
fn an_ensemble_over_a_batch_bit_for_bit() {
    for m in SIZES {
        for n in [0, 1, 3, 4, 5, 9] {
            let (ps, xs) = (params(m), samples(n));
            let got = ensemble_vmap(&ps, &xs);
            assert_eq!(got.len(), m);
            for k in 0..m {
                let want = ensemble(ps[k], &xs);
                assert_eq!(got[k].to_bits(), want.to_bits(), "m = {m}, n = {n}, model {k}");
            }
        }
    }
}

#[test]
fn the_jvp_of_an_ensemble_over_a_batch_bit_for_bit() {
    for m in SIZES {
        for n in [0, 1, 4, 5, 9] {
            let (ps, xs) = (params(m), samples(n));
            let ts: Vec<[f64; 4]> = params(m).iter().map(|p| [p[3], -p[2], 0.5, p[0]]).collect();
            let xs_dot: Vec<f64> = xs.iter().map(|x| 0.25 - x).collect();
            let (y, d) = ensemble_t_jvp_vmap(&ps, &xs, &ts, &xs_dot);
            assert_eq!((y.len(), d.len()), (m, m));
            for k in 0..m {
                let (wy, wd) = ensemble_t_jvp(ps[k], &xs, ts[k], &xs_dot);
                assert_eq!(y[k].to_bits(), wy.to_bits(), "m = {m}, n = {n}, model {k}: value");
                assert_eq!(d[k].to_bits(), wd.to_bits(), "m = {m}, n = {n}, model {k}: tangent");
            }
        }
    }
}

// With `tanh`, and a tuple result: within rounding of the loop.

#[vmap(in_dims = (None, 0))]
fn layer(w: &[f64; 2], x: f64) -> (f64, f64) {
    ((w[0] * x).tanh(), w[1] * x * x)
}

#[vmap(in_dims = (0, None))]
fn layers(w: [f64; 2], xs: &[f64]) -> f64 {
    let (a, b) = layer_vmap(&w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += a[i] * b[i];
    }
    s
}

#[test]
fn an_ensemble_with_tuple_results_and_tanh() {
    for m in SIZES {
        for n in [0, 1, 3, 4, 5, 9] {
            let xs = samples(n);
            let ws: Vec<[f64; 2]> = params(m).iter().map(|p| [p[0], p[1]]).collect();
            let got = layers_vmap(&ws, &xs);
            for k in 0..m {
                let want = layers(ws[k], &xs);
                assert!(
                    (got[k] - want).abs() <= 1e-13 * (1.0 + want.abs()),
                    "m = {m}, n = {n}, model {k}: {} against {want}",
                    got[k]
                );
            }
        }
    }
}

// A shared slice of the batch, passed as it is to every lane.

#[vmap(in_dims = (None, None, 0))]
fn horner(a: f64, w: &[f64], x: f64) -> f64 {
    let mut s = a;
    for i in 0..w.len() {
        s = s * x + w[i];
    }
    s
}

#[vmap(in_dims = (0, None, None))]
fn horner_sum(a: f64, w: &[f64], xs: &[f64]) -> f64 {
    let e = horner_vmap(a, w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * a;
    }
    s
}

#[test]
fn an_ensemble_over_a_batch_with_a_shared_slice_bit_for_bit() {
    let w = [0.5, -1.25, 2.0];
    for m in SIZES {
        for n in [0, 1, 3, 4, 5, 9] {
            let xs = samples(n);
            let a: Vec<f64> = (0..m).map(|k| 0.3 + 0.2 * k as f64).collect();
            let got = horner_sum_vmap(&a, &w, &xs);
            for k in 0..m {
                let want = horner_sum(a[k], &w, &xs);
                assert_eq!(got[k].to_bits(), want.to_bits(), "m = {m}, n = {n}, model {k}");
            }
        }
    }
}
