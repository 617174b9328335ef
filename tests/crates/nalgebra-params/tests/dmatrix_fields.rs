//! A parameter struct with a `DMatrix` field: the derive (column-major flattening, names,
//! `zeros_like`), `grad` with respect to the struct giving the field's gradient as a
//! `DMatrix` of the same shape, against central differences on every element and bit for
//! bit against the function of the matrix's storage as a slice; `grad_and_value`, `jacrev`
//! of an `[f64; 2]` result, `f32`, a nested struct, the matrix's storage passed to a
//! function of a slice, a shared struct under `vmap`; Adam and SGD steps over such structs
//! against torch's documented algorithms.

#![allow(clippy::needless_range_loop)]
// The shared optimiser references hold a helper these tests do not use.
#![allow(dead_code)]

mod common;

use fluxion::optim::{Adam, Sgd};
use fluxion::{differentiable, grad, grad_and_value, jacrev, vmap, Parameters};
use nalgebra::{DMatrix, DVector};

include!("../../../support/optim_reference.rs");

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Layer {
    w: DMatrix<f64>,
    b: DVector<f64>,
    #[param(buffer)]
    calls: u32,
}

/// `sum_i tanh(sum_j W[(i, j)] x[j] + b[i])`.
#[grad]
fn loss(p: &Layer, x: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in 0..p.w.nrows() {
        let mut s = p.b[i];
        for j in 0..p.w.ncols() {
            s += p.w[(i, j)] * x[j];
        }
        y += s.tanh();
    }
    y
}

/// `loss` with the matrix's storage as a slice (column-major) and its shape.
#[grad(argnums = (0, 3))]
fn loss_flat(w: &[f64], nrows: usize, ncols: usize, b: &[f64], x: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in 0..nrows {
        let mut s = b[i];
        for j in 0..ncols {
            s += w[i + j * nrows] * x[j];
        }
        y += s.tanh();
    }
    y
}

#[grad_and_value(argnums = (0, 1))]
fn loss_and_value(p: &Layer, x: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in 0..p.w.nrows() {
        let mut s = p.b[i];
        for j in 0..p.w.ncols() {
            s += p.w[(i, j)] * x[j];
        }
        y += s.tanh();
    }
    y
}

/// The gradient with respect to the input alone: the struct passed through.
#[grad(argnums = 1)]
fn loss_in_x(p: &Layer, x: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in 0..p.w.nrows() {
        let mut s = p.b[i];
        for j in 0..p.w.ncols() {
            s += p.w[(i, j)] * x[j];
        }
        y += s.tanh();
    }
    y
}

#[jacrev]
fn two(p: &Layer) -> [f64; 2] {
    let mut a = 0.0;
    let mut c = 0.0;
    for j in 0..p.w.ncols() {
        for i in 0..p.w.nrows() {
            a += p.w[(i, j)] * p.w[(i, j)];
            c += (p.w[(i, j)] * (j as f64 + 1.0)).sin();
        }
    }
    [a, c]
}

fn layer(rows: usize, cols: usize) -> (Layer, Vec<f64>) {
    let p = Layer {
        w: DMatrix::from_fn(rows, cols, |i, j| {
            0.3 * (i as f64 + 1.0).sin() - 0.2 * (j as f64) + 0.05
        }),
        b: DVector::from_fn(rows, |i, _| 0.1 * i as f64 - 0.15),
        calls: 7,
    };
    let x = (0..cols).map(|j| 0.7 - 0.25 * j as f64).collect();
    (p, x)
}

const SHAPES: [(usize, usize); 5] = [(0, 0), (1, 1), (3, 2), (4, 5), (2, 0)];

#[test]
fn the_derive_flattens_a_dmatrix_column_major() {
    let p = Layer {
        w: DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        b: DVector::from_vec(vec![7.0, 8.0]),
        calls: 3,
    };
    assert_eq!(p.num_scalars(), 8);
    assert_eq!(p.to_flat(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 7.0, 8.0]);
    let mut names = Vec::new();
    p.for_each_named("", &mut |n, v| names.push((n.to_string(), v.len())));
    assert_eq!(names, [("w".to_string(), 6), ("b".to_string(), 2)]);
    let z = p.zeros_like();
    assert_eq!((z.w.shape(), z.b.len(), z.calls), ((2, 3), 2, 3));
    assert_eq!(z.to_flat(), [0.0; 8]);
    let mut q = p.zeros_like();
    q.read_flat(&p.to_flat());
    assert_eq!(q, p);
}

#[test]
fn gradient_of_a_dmatrix_weight_against_central_differences() {
    for (rows, cols) in SHAPES {
        let (p, x) = layer(rows, cols);
        let g: Layer = loss_grad(&p, &x);
        assert_eq!(g.w.shape(), (rows, cols));
        assert_eq!(g.b.len(), rows);
        assert_eq!(g.calls, 7);
        let flat = p.to_flat();
        let got = g.to_flat();
        assert_eq!(got.len(), rows * cols + rows);
        let want = common::fd(&p, |q| loss(q, &x));
        for k in 0..flat.len() {
            assert!(
                (got[k] - want[k]).abs() <= 1e-7 * want[k].abs().max(1.0),
                "{rows}x{cols}, scalar {k}: {} against {}",
                got[k],
                want[k]
            );
        }
    }
}

#[test]
fn gradient_of_a_dmatrix_weight_bit_for_bit_against_the_slice_form() {
    for (rows, cols) in SHAPES {
        let (p, x) = layer(rows, cols);
        let g = loss_grad(&p, &x);
        let (gw, gb) = loss_flat_grad(p.w.as_slice(), rows, cols, p.b.as_slice(), &x);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(g.w.as_slice()), bits(&gw), "{rows}x{cols}");
        assert_eq!(bits(g.b.as_slice()), bits(&gb), "{rows}x{cols}");
        assert_eq!(
            loss(&p, &x).to_bits(),
            loss_flat(p.w.as_slice(), rows, cols, p.b.as_slice(), &x).to_bits()
        );

        let ((gs, gx), v) = loss_and_value_grad_and_value(&p, &x);
        assert_eq!(v.to_bits(), loss(&p, &x).to_bits());
        assert_eq!(bits(gs.w.as_slice()), bits(&gw));
        assert_eq!(bits(gs.b.as_slice()), bits(&gb));
        assert_eq!((gs.w.shape(), gs.calls, gx.len()), ((rows, cols), 7, cols));
        assert_eq!(
            bits(&loss_in_x_grad(&p, &x)),
            bits(&gx),
            "{rows}x{cols}: the input's gradient alone"
        );
        for j in 0..cols {
            let mut want = 0.0;
            for i in 0..rows {
                let mut s = p.b[i];
                for l in 0..cols {
                    s += p.w[(i, l)] * x[l];
                }
                let t = s.tanh();
                want += (1.0 - t * t) * p.w[(i, j)];
            }
            assert!(
                (gx[j] - want).abs() <= 1e-14 * (1.0 + want.abs()),
                "{rows}x{cols}, x[{j}]"
            );
        }
    }
}

#[test]
fn jacobian_rows_of_a_dmatrix_weight() {
    for (rows, cols) in SHAPES {
        let (p, _) = layer(rows, cols);
        let j: [Layer; 2] = two_jacrev(&p);
        for r in &j {
            assert_eq!((r.w.shape(), r.b.len(), r.calls), ((rows, cols), rows, 7));
            assert!(r.b.iter().all(|&v| v == 0.0));
        }
        for c in 0..cols {
            for i in 0..rows {
                assert_eq!(j[0].w[(i, c)], 2.0 * p.w[(i, c)]);
                let k = c as f64 + 1.0;
                assert_eq!(j[1].w[(i, c)], (p.w[(i, c)] * k).cos() * k);
            }
        }
    }
}

#[derive(Parameters, Clone, Debug)]
struct Small {
    m: DMatrix<f32>,
}

#[grad]
fn energy(p: &Small) -> f32 {
    let mut e = 0.0;
    for j in 0..p.m.ncols() {
        for i in 0..p.m.nrows() {
            e += p.m[(i, j)] * p.m[(i, j)] * (i as f32 + 2.0 * j as f32);
        }
    }
    e
}

#[test]
fn an_f32_dmatrix_field() {
    let p = Small {
        m: DMatrix::from_fn(3, 2, |i, j| 0.5 + i as f32 - j as f32),
    };
    let g = energy_grad(&p);
    assert_eq!(g.m.shape(), (3, 2));
    for j in 0..2 {
        for i in 0..3 {
            assert_eq!(g.m[(i, j)], 2.0 * p.m[(i, j)] * (i as f32 + 2.0 * j as f32));
        }
    }
}

#[test]
fn adam_and_sgd_over_a_struct_with_a_dmatrix_field() {
    for (rows, cols) in SHAPES {
        let (mut p, x) = layer(rows, cols);
        let mut flat = p.to_flat();
        let mut reference = AdamReference {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: false,
            m: Vec::new(),
            v: Vec::new(),
            v_max: Vec::new(),
            t: 0,
        };
        let mut adam = Adam::new(0.05).weight_decay(0.01);
        for t in 0..5 {
            let g = loss_grad(&p, &x);
            let gf = g.to_flat();
            adam.step(&mut p, &g);
            reference.step(&mut flat, &gf);
            assert!(close(&p.to_flat(), &flat, 1e-13), "{rows}x{cols}, step {t}");
            assert_eq!((p.w.shape(), p.calls), ((rows, cols), 7));
        }

        let (mut p, x) = layer(rows, cols);
        let mut flat = p.to_flat();
        let mut reference = SgdReference {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
            b: Vec::new(),
            t: 0,
        };
        let mut sgd = Sgd::new(0.1).momentum(0.9).nesterov(true);
        for t in 0..5 {
            let g = loss_grad(&p, &x);
            let gf = g.to_flat();
            sgd.step(&mut p, &g);
            reference.step(&mut flat, &gf);
            assert!(close(&p.to_flat(), &flat, 1e-14), "{rows}x{cols}, sgd step {t}");
        }
    }
}

#[derive(Parameters, Clone, Debug)]
struct Net {
    first: Layer,
    scale: f64,
}

/// `loss` of the nested layer, scaled, with the layer's corner through a function of the
/// matrix's storage.
#[grad]
fn net_loss(p: &Net, x: &[f64]) -> f64 {
    let mut y = 0.0;
    for i in 0..p.first.w.nrows() {
        let mut s = p.first.b[i];
        for j in 0..p.first.w.ncols() {
            s += p.first.w[(i, j)] * x[j];
        }
        y += s.tanh();
    }
    p.scale * y + corner(p.first.w.as_slice(), p.first.w.nrows(), p.first.w.ncols())
}

/// The last element of a column-major `nrows x ncols` matrix, squared (0 when empty).
#[differentiable]
fn corner(w: &[f64], nrows: usize, ncols: usize) -> f64 {
    let mut c = 0.0;
    if nrows * ncols > 0 {
        c = w[(nrows - 1) + (ncols - 1) * nrows] * w[(nrows - 1) + (ncols - 1) * nrows];
    }
    c
}

#[test]
fn a_nested_dmatrix_field_and_its_storage_passed_to_a_function() {
    for (rows, cols) in SHAPES {
        let (first, x) = layer(rows, cols);
        let p = Net { first, scale: 1.5 };
        let g = net_loss_grad(&p, &x);
        let inner = loss_grad(&p.first, &x);
        assert_eq!(g.first.w.shape(), (rows, cols));
        assert_eq!((g.first.calls, g.scale.to_bits()), (7, loss(&p.first, &x).to_bits()));
        for j in 0..cols {
            for i in 0..rows {
                let mut want = 1.5 * inner.w[(i, j)];
                if (i, j) == (rows - 1, cols - 1) {
                    want += 2.0 * p.first.w[(i, j)];
                }
                assert!((g.first.w[(i, j)] - want).abs() <= 1e-15, "{rows}x{cols} ({i}, {j})");
            }
        }
        for i in 0..rows {
            assert!((g.first.b[i] - 1.5 * inner.b[i]).abs() <= 1e-15);
        }
    }
}

/// One output per sample, the struct shared.
#[vmap(in_dims = (None, 0))]
fn scores(p: &Layer, t: f64) -> f64 {
    let mut y = 0.0;
    for i in 0..p.w.nrows() {
        for j in 0..p.w.ncols() {
            y += (p.w[(i, j)] * t + p.b[i]).sin();
        }
    }
    y
}

#[test]
fn a_shared_struct_with_a_dmatrix_field_under_vmap() {
    for (rows, cols) in SHAPES {
        let (p, _) = layer(rows, cols);
        for n in [0, 1, 3, 4, 5, 9] {
            let ts: Vec<f64> = (0..n).map(|k| 0.3 * k as f64 - 0.8).collect();
            let got = scores_vmap(&p, &ts);
            let want: Vec<u64> = ts.iter().map(|&t| scores(&p, t).to_bits()).collect();
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "{rows}x{cols}, {n}"
            );
        }
    }
}
