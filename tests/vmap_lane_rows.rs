//! Large array outputs of `vmap` written straight into the samples, lane by lane (no lanes
//! buffer of the output's size transposed afterwards): arrays of at least 64 floats per
//! sample, or of lengths given by named constants. Each sample's result against the
//! unbatched generated function called in a loop, bit for bit (the bodies are arithmetic,
//! exact on lanes), for batch sizes around the lane counts, every `chunk_size` of the
//! buffer form (partial chunks pad their lanes into a buffer of the task's), tuple results
//! mixing such outputs with small ones, outputs zeroed before their stores, `f32` on 8
//! lanes, the smaller arrays that keep the lanes buffer, and per-sample gradients with
//! respect to a parameter struct written into the caller's structs.

// The checks index the samples as the formulas do.
#![allow(clippy::needless_range_loop)]

use fluxion::{grad, jacrev, vmap, Parameters};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 10] = [0, 1, 3, 4, 5, 7, 8, 9, 17, 1023];

const D: usize = 5;
const H: usize = 6;

/// A value in `[-1, 1)` from a sample index and a salt, not evenly spaced.
fn val(k: usize, salt: usize) -> f64 {
    2.0 * (((k * 7 + salt * 13) as f64 * 0.618_033_988_75) % 1.0) - 1.0
}

/// A one-hidden-layer model with a rational activation (exact on lanes): the per-sample
/// gradients of its squared error with respect to the shared weights. The outputs'
/// lengths are named constants (the macro cannot see them): written lane by lane.
#[vmap(in_dims = (None, None, None, 0, 0))]
#[grad(argnums = (0, 1, 2))]
fn loss(w1: &[[f64; D]; H], b1: &[f64; H], w2: &[f64; H], x: &[f64; D], y: f64) -> f64 {
    let mut out = 0.0;
    for i in 0..H {
        let mut s = b1[i];
        for j in 0..D {
            s += w1[i][j] * x[j];
        }
        out += w2[i] * s / (1.0 + s * s);
    }
    let e = out - y;
    e * e
}

fn model() -> ([[f64; D]; H], [f64; H], [f64; H]) {
    (
        std::array::from_fn(|i| std::array::from_fn(|j| val(i * D + j, 1) * 0.7)),
        std::array::from_fn(|i| val(i, 2) * 0.3),
        std::array::from_fn(|i| val(i, 3)),
    )
}

type LossGrads = (Vec<[[f64; D]; H]>, Vec<[f64; H]>, Vec<[f64; H]>);

#[test]
fn per_sample_gradients_lane_by_lane_equal_the_loop() {
    let (w1, b1, w2) = model();
    for n in SIZES {
        let x: Vec<[f64; D]> = (0..n).map(|k| std::array::from_fn(|j| val(k, j + 4))).collect();
        let y: Vec<f64> = (0..n).map(|k| val(k, 11)).collect();
        let want: Vec<_> = (0..n).map(|k| loss_grad(&w1, &b1, &w2, &x[k], y[k])).collect();
        let got = loss_grad_vmap(&w1, &b1, &w2, &x, &y);
        assert_eq!((got.0.len(), got.1.len(), got.2.len()), (n, n, n));
        for k in 0..n {
            assert_eq!((got.0[k], got.1[k], got.2[k]), want[k], "n = {n}, sample {k}");
        }
        // The buffer form at every chunk size: whole and partial chunks, the padding
        // lanes never written to the caller's samples (each buffer starts as NaN).
        for chunk in [None, Some(1), Some(2), Some(3), Some(4), Some(5), Some(8)] {
            let mut buf: LossGrads = (
                vec![[[f64::NAN; D]; H]; n],
                vec![[f64::NAN; H]; n],
                vec![[f64::NAN; H]; n],
            );
            loss_grad_vmap_into(&w1, &b1, &w2, &x, &y, (&mut buf.0, &mut buf.1, &mut buf.2), chunk);
            assert_eq!(buf, got, "n = {n}, chunk_size {chunk:?}");
        }
    }
}

/// A literal length of 64 (written lane by lane) beside one of 8 (through the lanes
/// buffer), both batched, in one tuple result.
#[vmap(in_dims = (0, 0))]
#[grad(argnums = (0, 1))]
fn mixed(x: [f64; 64], w: [f64; 8]) -> f64 {
    let mut s = 0.0;
    for i in 0..64 {
        s += x[i] * x[i] * w[i % 8] + x[i];
    }
    s * s / (1.0 + s * s)
}

#[test]
fn literal_lengths_above_and_below_the_threshold_equal_the_loop() {
    for n in SIZES {
        let x: Vec<[f64; 64]> = (0..n).map(|k| std::array::from_fn(|i| val(k * 64 + i, 6))).collect();
        let w: Vec<[f64; 8]> = (0..n).map(|k| std::array::from_fn(|i| val(k * 8 + i, 5))).collect();
        let (gx, gw) = mixed_grad_vmap(&x, &w);
        assert_eq!((gx.len(), gw.len()), (n, n));
        for k in 0..n {
            assert_eq!((gx[k], gw[k]), mixed_grad(x[k], w[k]), "n = {n}, sample {k}");
        }
        for chunk in [Some(1), Some(3), Some(5)] {
            let (mut bx, mut bw) = (vec![[f64::NAN; 64]; n], vec![[f64::NAN; 8]; n]);
            mixed_grad_vmap_into(&x, &w, (&mut bx, &mut bw), chunk);
            assert_eq!((bx, bw), (gx.clone(), gw.clone()), "n = {n}, chunk_size {chunk:?}");
        }
    }
}

/// Per-sample Jacobians of `[f64; D] -> [f64; H]`: each row stored whole by the reverse
/// sweep of its output, the rows of named-constant lengths.
#[vmap(in_dims = (0, None))]
#[jacrev]
fn layer(x: [f64; D], w: &[[f64; D]; H]) -> [f64; H] {
    let mut y = [0.0; H];
    for i in 0..H {
        let mut s = 0.0;
        for j in 0..D {
            s += w[i][j] * x[j] * x[j];
        }
        y[i] = s / (1.0 + x[i % D] * x[i % D]);
    }
    y
}

#[test]
fn per_sample_jacobians_equal_the_loop() {
    let w: [[f64; D]; H] = std::array::from_fn(|i| std::array::from_fn(|j| val(i * D + j, 8)));
    for n in SIZES {
        let x: Vec<[f64; D]> = (0..n).map(|k| std::array::from_fn(|j| val(k, j + 9))).collect();
        let got = layer_jacrev_vmap(&x, &w);
        assert_eq!(got.len(), n);
        for k in 0..n {
            assert_eq!(got[k], layer_jacrev(x[k], &w), "n = {n}, sample {k}");
        }
        for chunk in [Some(1), Some(3), Some(6)] {
            let mut buf = vec![[[f64::NAN; D]; H]; n];
            layer_jacrev_vmap_into(&x, &w, &mut buf, chunk);
            assert_eq!(buf, got, "n = {n}, chunk_size {chunk:?}");
        }
    }
}

const F: usize = 9;

/// `f32` on 8 lanes: per-sample gradients of a shared array of named-constant length.
#[vmap(in_dims = (None, 0))]
#[grad(argnums = 0)]
fn weights32(w: &[f32; F], x: f32) -> f32 {
    let mut s = 0.0f32;
    for i in 0..F {
        s += w[i] * x * (i as f32 + 1.0);
    }
    s * s
}

#[test]
fn f32_gradients_on_eight_lanes_equal_the_loop() {
    let w: [f32; F] = std::array::from_fn(|i| val(i, 12) as f32);
    for n in SIZES {
        let x: Vec<f32> = (0..n).map(|k| val(k, 13) as f32).collect();
        let got = weights32_grad_vmap(&w, &x);
        assert_eq!(got.len(), n);
        for k in 0..n {
            assert_eq!(got[k], weights32_grad(&w, x[k]), "n = {n}, sample {k}");
        }
        for chunk in [Some(1), Some(7), Some(9)] {
            let mut buf = vec![[f32::NAN; F]; n];
            weights32_grad_vmap_into(&w, &x, &mut buf, chunk);
            assert_eq!(buf, got, "n = {n}, chunk_size {chunk:?}");
        }
    }
}

/// A matrix product written as nalgebra lowers it, its first column peeled (`a[i] = w[0][i]
/// * x[0]`, then `a[i] += w[j][i] * x[j]` for `j` in `1..`): the reverse sweep's two nests
/// of the weights' cotangent store to elements the other does not touch, so both store and
/// nothing is zeroed first; an overlapping pair (`j` in `0..` again) adds. At 64 x 2 (written
/// lane by lane) and 4 x 2 (through the lanes buffer).
#[vmap(in_dims = (None, 0))]
#[grad(argnums = 0)]
fn peeled64(w: &[[f64; 64]; 2], x: [f64; 2]) -> f64 {
    let mut a = [0.0; 64];
    for i in 0..64 {
        a[i] = w[0][i] * x[0];
    }
    for j in 1..2 {
        for i in 0..64 {
            a[i] += w[j][i] * x[j];
        }
    }
    let mut s = 0.0;
    for i in 0..64 {
        s += a[i] * a[i] / (1.0 + a[i] * a[i]);
    }
    s
}

#[vmap(in_dims = (None, 0))]
#[grad(argnums = 0)]
fn peeled4(w: &[[f64; 4]; 2], x: [f64; 2]) -> f64 {
    let mut a = [0.0; 4];
    for i in 0..4 {
        a[i] = w[0][i] * x[0];
    }
    for j in 0..2 {
        for i in 0..4 {
            a[i] += w[j][i] * x[j] * x[j];
        }
    }
    let mut s = 0.0;
    for i in 0..4 {
        s += a[i] * a[i] / (1.0 + a[i] * a[i]);
    }
    s
}

#[test]
fn peeled_products_equal_the_loop() {
    let w64: [[f64; 64]; 2] = std::array::from_fn(|j| std::array::from_fn(|i| val(i * 2 + j, 14)));
    let w4: [[f64; 4]; 2] = std::array::from_fn(|j| std::array::from_fn(|i| val(i * 2 + j, 15)));
    for n in SIZES {
        let x: Vec<[f64; 2]> = (0..n).map(|k| [val(k, 16), val(k, 17)]).collect();
        let (g64, g4) = (peeled64_grad_vmap(&w64, &x), peeled4_grad_vmap(&w4, &x));
        for k in 0..n {
            assert_eq!(g64[k], peeled64_grad(&w64, x[k]), "n = {n}, sample {k}");
            assert_eq!(g4[k], peeled4_grad(&w4, x[k]), "n = {n}, sample {k}");
        }
        for chunk in [Some(1), Some(3)] {
            let mut buf = vec![[[f64::NAN; 64]; 2]; n];
            peeled64_grad_vmap_into(&w64, &x, &mut buf, chunk);
            assert_eq!(buf, g64, "n = {n}, chunk_size {chunk:?}");
        }
    }
}

/// A parameter struct with large fields (written lane by lane into each sample's struct),
/// a small one (through the lanes buffer) and a buffer.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Net {
    w: [[f64; D]; H],
    v: [f64; 64],
    c: [f64; 2],
    #[param(buffer)]
    scale: f64,
}

#[vmap(in_dims = (None, 0, 0))]
#[grad]
fn net_loss(p: &Net, x: &[f64; D], y: f64) -> f64 {
    let mut out = p.c[0];
    for i in 0..H {
        let mut s = p.c[1];
        for j in 0..D {
            s += p.w[i][j] * x[j];
        }
        out += s / (1.0 + s * s) * p.v[i];
    }
    for i in H..64 {
        out += p.v[i] * x[i % D] * p.scale;
    }
    let e = out - y;
    e * e
}

#[test]
fn per_sample_struct_gradients_lane_by_lane_equal_the_loop() {
    let p = Net {
        w: std::array::from_fn(|i| std::array::from_fn(|j| val(i * D + j, 18))),
        v: std::array::from_fn(|i| val(i, 19)),
        c: [val(0, 20), val(1, 20)],
        scale: 0.5,
    };
    for n in SIZES {
        let x: Vec<[f64; D]> = (0..n).map(|k| std::array::from_fn(|j| val(k, j + 21))).collect();
        let y: Vec<f64> = (0..n).map(|k| val(k, 22)).collect();
        let want: Vec<Net> = (0..n).map(|k| net_loss_grad(&p, &x[k], y[k])).collect();
        assert_eq!(net_loss_grad_vmap(&p, &x, &y), want, "n = {n}");
        for chunk in [None, Some(1), Some(3), Some(5)] {
            let mut out = vec![
                Net {
                    w: [[f64::NAN; D]; H],
                    v: [f64::NAN; 64],
                    c: [f64::NAN; 2],
                    scale: 0.5,
                };
                n
            ];
            net_loss_grad_vmap_into(&p, &x, &y, &mut out, chunk);
            assert_eq!(out, want, "n = {n}, chunk_size {chunk:?}");
        }
    }
}
