//! A parameter struct with nalgebra fields as an argument: `grad` with respect to it is the
//! struct, field by field, against central differences on every scalar (column-major, the
//! order of `to_flat`).

mod common;

use fluxion::{grad, grad_and_value, hessian, vmap, Parameters};
use nalgebra::{SMatrix, SVector};

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Mlp {
    w1: SMatrix<f64, 4, 1>,
    b1: SVector<f64, 4>,
    w2: SMatrix<f64, 1, 4>,
    b2: f64,
}

/// One hidden tanh layer, element by element.
#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn model(p: &Mlp, r: f64) -> f64 {
    let mut out = p.b2;
    for i in 0..4 {
        let h = (p.w1[(i, 0)] * r + p.b1[i]).tanh();
        out += p.w2[(0, i)] * h;
    }
    out
}

/// Energies and forces against their targets, through the batched derivative.
#[grad]
fn loss(p: &Mlp, r: &[f64], e_true: &[f64], f_true: &[f64]) -> f64 {
    let (de, e) = model_grad_and_value_vmap(p, r);
    let mut s = 0.0;
    for k in 0..r.len() {
        let a = e[k] - e_true[k];
        let b = -de[k] - f_true[k];
        s += a * a + 0.01 * b * b;
    }
    s / r.len() as f64
}

fn mlp() -> Mlp {
    Mlp {
        w1: SMatrix::from_column_slice(&[0.5, -0.3, 0.8, 0.1]),
        b1: SVector::from_column_slice(&[0.1, 0.2, -0.1, 0.05]),
        w2: SMatrix::from_column_slice(&[0.7, -0.4, 0.2, 0.9]),
        b2: -0.1,
    }
}

#[test]
fn gradient_with_respect_to_nalgebra_fields() {
    let p = mlp();
    let r: Vec<f64> = (0..9).map(|k| 0.5 + 0.0625 * k as f64).collect();
    let e_true: Vec<f64> = r.iter().map(|x| 4.0 * (x.powi(-12) - x.powi(-6)) / 4096.0).collect();
    let f_true: Vec<f64> = r.iter().map(|x| x.cos()).collect();
    let g: Mlp = loss_grad(&p, &r, &e_true, &f_true);
    let flat = p.to_flat();
    let h = 1e-6;
    let gf = g.to_flat();
    assert_eq!(gf.len(), 13);
    for k in 0..flat.len() {
        let (mut a, mut b) = (flat.clone(), flat.clone());
        a[k] += h;
        b[k] -= h;
        let (mut pa, mut pb) = (p.clone(), p.clone());
        pa.read_flat(&a);
        pb.read_flat(&b);
        let fd = (loss(&pa, &r, &e_true, &f_true) - loss(&pb, &r, &e_true, &f_true)) / (2.0 * h);
        assert!(
            (gf[k] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
            "scalar {k}: {} vs {fd}",
            gf[k]
        );
    }
}

/// The flagship's model written with nalgebra's operations on the struct's fields.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Net {
    w1: SMatrix<f64, 8, 1>,
    b1: SVector<f64, 8>,
    w2: SMatrix<f64, 8, 8>,
    b2: SVector<f64, 8>,
    w3: SMatrix<f64, 1, 8>,
    b3: f64,
}

#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn net(p: &Net, r: f64) -> f64 {
    let h1 = (p.w1 * r + p.b1).map(|v| v.tanh());
    let h2 = (p.w2 * h1 + p.b2).map(|v| v.tanh());
    (p.w3 * h2)[0] + p.b3
}

#[grad]
fn net_loss(p: &Net, r: &[f64], e_true: &[f64], f_true: &[f64]) -> f64 {
    let (de, e) = net_grad_and_value_vmap(p, r);
    let mut s = 0.0;
    for k in 0..r.len() {
        let a = e[k] - e_true[k];
        let b = -de[k] - f_true[k];
        s += a * a + 0.01 * b * b;
    }
    s / r.len() as f64
}

#[test]
fn nalgebra_operations_on_struct_fields_through_a_batch() {
    let v = |k: usize| ((k * 7919) % 200) as f64 / 100.0 - 1.0;
    let p = Net {
        w1: SMatrix::from_fn(|i, _| 0.8 * v(i)),
        b1: SVector::from_fn(|i, _| 0.3 * v(i + 11)),
        w2: SMatrix::from_fn(|i, j| 0.35 * v(8 * i + j + 23)),
        b2: SVector::from_fn(|i, _| 0.2 * v(i + 97)),
        w3: SMatrix::from_fn(|_, j| 0.5 * v(j + 131)),
        b3: 0.05,
    };
    let r: Vec<f64> = (0..11).map(|k| 0.5 + 0.05 * k as f64).collect();
    let e_true: Vec<f64> = r.iter().map(|x| x.powi(-2) - 1.0).collect();
    let f_true: Vec<f64> = r.iter().map(|x| 2.0 * x.powi(-3)).collect();
    // Each sample's value and derivative against the original's (nalgebra's own
    // arithmetic) and central differences of it.
    let (de, e) = net_grad_and_value_vmap(&p, &r);
    for k in 0..r.len() {
        let h = 1e-6;
        let fd = (net(&p, r[k] + h) - net(&p, r[k] - h)) / (2.0 * h);
        assert!((e[k] - net(&p, r[k])).abs() < 1e-13);
        assert!((de[k] - fd).abs() < 1e-7, "{k}: {} vs {fd}", de[k]);
    }
    let g = net_loss_grad(&p, &r, &e_true, &f_true);
    let (flat, gf) = (p.to_flat(), g.to_flat());
    assert_eq!(gf.len(), 8 + 8 + 64 + 8 + 8 + 1);
    let h = 1e-6;
    for k in 0..flat.len() {
        let (mut a, mut b) = (flat.clone(), flat.clone());
        a[k] += h;
        b[k] -= h;
        let (mut pa, mut pb) = (p.clone(), p.clone());
        pa.read_flat(&a);
        pb.read_flat(&b);
        let fd = (net_loss(&pa, &r, &e_true, &f_true) - net_loss(&pb, &r, &e_true, &f_true)) / (2.0 * h);
        assert!(
            (gf[k] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
            "scalar {k}: {} vs {fd}",
            gf[k]
        );
    }
}

/// A small model of nalgebra fields for its Hessian.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Quadratic {
    w: SMatrix<f64, 2, 3>,
    b: SVector<f64, 2>,
    c: f64,
}

#[hessian]
fn quadratic(p: &Quadratic, x: &[f64; 3]) -> f64 {
    quadratic_body(p, x)
}

#[grad]
fn quadratic_g(p: &Quadratic, x: &[f64; 3]) -> f64 {
    quadratic_body(p, x)
}

#[fluxion::differentiable]
fn quadratic_body(p: &Quadratic, x: &[f64; 3]) -> f64 {
    let mut s = p.c * p.c;
    for i in 0..2 {
        let mut z = p.b[i];
        for j in 0..3 {
            z += p.w[(i, j)] * x[j];
        }
        s += (z * p.c).tanh();
    }
    s
}

/// The Hessian with respect to the struct is one struct per scalar (column-major, the order
/// of `to_flat`), row `k` the derivative of the gradient along scalar `k`.
#[test]
fn hessian_with_respect_to_nalgebra_fields() {
    let p = Quadratic {
        w: SMatrix::from_column_slice(&[0.5, -0.3, 0.8, 0.1, -0.2, 0.4]),
        b: SVector::from_column_slice(&[0.1, -0.25]),
        c: 0.9,
    };
    let x = [0.7, -1.1, 0.4];
    let h: Vec<Quadratic> = quadratic_hessian(&p, &x);
    let flat = p.to_flat();
    assert_eq!(h.len(), flat.len());
    let d = 1e-6;
    for (k, row) in h.iter().enumerate() {
        let (mut a, mut b) = (flat.clone(), flat.clone());
        a[k] += d;
        b[k] -= d;
        let (mut pa, mut pb) = (p.clone(), p.clone());
        pa.read_flat(&a);
        pb.read_flat(&b);
        let (ga, gb) = (quadratic_g_grad(&pa, &x).to_flat(), quadratic_g_grad(&pb, &x).to_flat());
        for (j, got) in row.to_flat().iter().enumerate() {
            let fd = (ga[j] - gb[j]) / (2.0 * d);
            assert!(
                (got - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                "H[{k}][{j}]: {got} vs {fd}"
            );
        }
    }
}

/// Per-sample gradients with the weights in a struct of nalgebra matrices (shared) and a
/// nalgebra vector per sample: the struct's gradient per sample.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Small {
    w1: SMatrix<f64, 5, 3>,
    b1: SVector<f64, 5>,
    w2: SMatrix<f64, 1, 5>,
    b2: f64,
}

#[vmap(in_dims = (None, 0, 0))]
#[grad]
fn sample_loss(p: &Small, x: SVector<f64, 3>, y: f64) -> f64 {
    let h = (p.w1 * x + p.b1).map(|v| v.tanh());
    let e = (p.w2 * h)[0] + p.b2 - y;
    e * e
}

#[test]
fn per_sample_gradients_of_nalgebra_samples() {
    let p = Small {
        w1: SMatrix::from_fn(|i, j| 0.3 * ((i * 3 + j) as f64 * 0.7).sin()),
        b1: SVector::from_fn(|i, _| 0.1 * i as f64 - 0.2),
        w2: SMatrix::from_fn(|_, j| 0.5 - 0.2 * j as f64),
        b2: 0.05,
    };
    for n in [0, 1, 3, 4, 5, 7, 8, 9] {
        let x: Vec<SVector<f64, 3>> = (0..n)
            .map(|k| SVector::from_fn(|i, _| ((k * 3 + i) as f64 * 0.618).fract() - 0.5))
            .collect();
        let y: Vec<f64> = (0..n).map(|k| (k as f64 * 0.3).cos()).collect();
        let g: Vec<Small> = sample_loss_grad_vmap(&p, &x, &y);
        assert_eq!(g.len(), n);
        // Into the caller's structs: the by-value form's bits, whatever the chunks.
        for chunk in [None, Some(1), Some(3), Some(4)] {
            let mut out = vec![p.clone(); n];
            sample_loss_grad_vmap_into(&p, &x, &y, &mut out, chunk);
            assert_eq!(out, g, "n = {n}, chunk {chunk:?}");
        }
        for k in 0..n {
            let e = sample_loss_grad(&p, x[k], y[k]);
            for (a, b) in g[k].to_flat().iter().zip(e.to_flat()) {
                assert!(
                    (a - b).abs() <= 1e-14 * a.abs().max(b.abs()).max(1.0),
                    "n = {n}, sample {k}: {a} vs {b}"
                );
            }
        }
    }
}

/// Fields of nalgebra's aliases (`Vector3`, `Matrix2x3`): passed as their storage like
/// `SVector` and `SMatrix` fields.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Aliased {
    v: nalgebra::Vector3<f64>,
    m: nalgebra::Matrix2x3<f64>,
}

#[grad]
fn aliased(p: &Aliased, x: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..2 {
        for j in 0..3 {
            s += (p.m[(i, j)] * p.v[j] * x).sin();
        }
    }
    s
}

#[test]
fn alias_fields_against_central_differences() {
    let p = Aliased {
        v: nalgebra::Vector3::new(0.3, -0.7, 1.1),
        m: nalgebra::Matrix2x3::new(0.5, -0.2, 0.9, 0.1, 0.4, -0.6),
    };
    let x = 0.8;
    let g = aliased_grad(&p, x).to_flat();
    let want = common::fd(&p, |q| aliased(q, x));
    for (k, &fd) in want.iter().enumerate() {
        assert!(
            (g[k] - fd).abs() <= 1e-8 * (1.0 + fd.abs()),
            "scalar {k}: {} vs {fd}",
            g[k]
        );
    }
}

/// Per-sample gradients of nalgebra parameters in plain arithmetic: the batch's gradients
/// into the caller's structs are the single-sample ones bit for bit; a wrong `out` length
/// panics naming both sizes.
#[vmap(in_dims = (None, 0, 0))]
#[grad]
fn sample_poly(p: &Small, x: SVector<f64, 3>, y: f64) -> f64 {
    let h = p.w1 * x + p.b1;
    let e = (p.w2 * h.component_mul(&h))[0] + p.b2 - y;
    e * e
}

#[test]
fn per_sample_nalgebra_gradients_into_structs() {
    let p = Small {
        w1: SMatrix::from_fn(|i, j| 0.3 * ((i * 3 + j) as f64 * 0.7).sin()),
        b1: SVector::from_fn(|i, _| 0.1 * i as f64 - 0.2),
        w2: SMatrix::from_fn(|_, j| 0.5 - 0.2 * j as f64),
        b2: 0.05,
    };
    for n in [0, 1, 3, 4, 5, 7, 8, 9] {
        let x: Vec<SVector<f64, 3>> = (0..n)
            .map(|k| SVector::from_fn(|i, _| ((k * 3 + i) as f64 * 0.618).fract() - 0.5))
            .collect();
        let y: Vec<f64> = (0..n).map(|k| (k as f64 * 0.3).cos()).collect();
        let looped: Vec<Small> = (0..n).map(|k| sample_poly_grad(&p, x[k], y[k])).collect();
        assert_eq!(sample_poly_grad_vmap(&p, &x, &y), looped, "n = {n}");
        for chunk in [None, Some(1), Some(3), Some(4)] {
            let mut garbage = p.clone();
            garbage.fill(f64::NAN);
            let mut out = vec![garbage; n];
            sample_poly_grad_vmap_into(&p, &x, &y, &mut out, chunk);
            assert_eq!(out, looped, "n = {n}, chunk {chunk:?}");
        }
    }
    let x = vec![SVector::<f64, 3>::zeros(); 3];
    let y = vec![0.0; 3];
    let mut out = vec![p.clone(); 2];
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sample_poly_grad_vmap_into(&p, &x, &y, &mut out, None)
    }))
    .expect_err("a wrong length panics");
    let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("out") && msg.contains('2') && msg.contains('3'), "{msg}");
}
