//! Gradients with respect to parameter structs (JAX's pytrees, torch's `make_functional`):
//! `grad` of a function taking a `#[derive(Parameters)]` struct returns the struct type,
//! field by field, buffers cloned. Checked against central differences on every scalar
//! of every trainable field (through `Parameters::to_flat` / `read_flat`), and against the
//! same function written with the fields as separate arguments.

use fluxion::{differentiable, grad, grad_and_value, hessian, jacfwd, jacrev, vmap, Parameters};

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Lin {
    w: [f64; 3],
    b: f64,
    #[param(buffer)]
    scale: f64,
}

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Layer {
    w: [[f64; 2]; 3],
    b: [f64; 3],
}

/// Two layers, one of them nested, and a `Vec` of output weights.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Net {
    hidden: Layer,
    out: Vec<f64>,
    bias: f64,
}

#[grad]
fn loss(p: &Lin, x: &[f64; 3]) -> f64 {
    let mut s = p.b;
    for i in 0..3 {
        s += p.w[i] * x[i];
    }
    (s * p.scale).tanh()
}

/// `loss` with the fields as arguments.
#[grad(argnums = (0, 1))]
fn loss_fields(w: &[f64; 3], b: f64, scale: f64, x: &[f64; 3]) -> f64 {
    let mut s = b;
    for i in 0..3 {
        s += w[i] * x[i];
    }
    (s * scale).tanh()
}

/// One layer, called with the nested struct.
#[differentiable]
fn layer(l: &Layer, x: &[f64; 2]) -> [f64; 3] {
    let mut h = [0.0; 3];
    for i in 0..3 {
        let mut s = l.b[i];
        for j in 0..2 {
            s += l.w[i][j] * x[j];
        }
        h[i] = s.tanh();
    }
    h
}

#[grad_and_value(argnums = (0, 2))]
fn net_loss(p: &Net, x: &[f64; 2], y: f64) -> f64 {
    let h = layer(&p.hidden, x);
    let mut o = p.bias;
    for i in 0..3 {
        o += p.out[i] * h[i];
    }
    let e = o - y;
    e * e
}

/// The network passed whole to a callee.
#[differentiable]
fn predict(p: &Net, x: &[f64; 2]) -> f64 {
    let h = layer(&p.hidden, x);
    let mut o = p.bias;
    for i in 0..3 {
        o += p.out[i] * h[i];
    }
    o
}

#[grad]
fn net_loss_call(p: &Net, x: &[f64; 2], y: f64) -> f64 {
    let e = predict(p, x) - y;
    e * e
}

/// The flagship's shape: the per-point energy and its derivative, batched with the
/// parameters shared, and a loss over the batch differentiated with respect to the struct.
#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn energy(p: &Layer, r: f64) -> f64 {
    let mut e = 0.0;
    for i in 0..3 {
        e += (p.w[i][0] * r + p.b[i]).tanh() * p.w[i][1];
    }
    e
}

#[grad]
fn fit(p: &Layer, r: &[f64], target: &[f64]) -> f64 {
    let (de, e) = energy_grad_and_value_vmap(p, r);
    let mut s = 0.0;
    for k in 0..r.len() {
        let a = e[k] - target[k];
        let b = de[k] + target[k];
        s += a * a + 0.1 * b * b;
    }
    s / r.len() as f64
}

fn lin() -> Lin {
    Lin {
        w: [0.1, -0.2, 0.3],
        b: 0.05,
        scale: 2.0,
    }
}

fn net() -> Net {
    Net {
        hidden: Layer {
            w: [[0.3, -0.1], [0.2, 0.4], [-0.5, 0.25]],
            b: [0.1, -0.05, 0.2],
        },
        out: vec![0.7, -0.3, 0.45],
        bias: 0.02,
    }
}

/// Central differences of `f` at `p` on every trainable scalar, in `to_flat`'s order.
fn fd<P: Parameters<Scalar = f64> + Clone>(p: &P, f: impl Fn(&P) -> f64) -> Vec<f64> {
    let flat = p.to_flat();
    let h = 1e-6;
    (0..flat.len())
        .map(|k| {
            let (mut a, mut b) = (flat.clone(), flat.clone());
            a[k] += h;
            b[k] -= h;
            let (mut pa, mut pb) = (p.clone(), p.clone());
            pa.read_flat(&a);
            pb.read_flat(&b);
            (f(&pa) - f(&pb)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "scalar {k}: {x} vs {y}");
    }
}

#[test]
fn gradient_is_the_struct_and_matches_the_fields_version() {
    let (p, x) = (lin(), [1.0, 2.0, -0.5]);
    let g: Lin = loss_grad(&p, &x);
    let (gw, gb) = loss_fields_grad(&p.w, p.b, p.scale, &x);
    assert_eq!((g.w, g.b), (gw, gb));
    // The buffer is carried, as `zeros_like` does.
    assert_eq!(g.scale, p.scale);
    assert_close(&g.to_flat(), &fd(&p, |q| loss(q, &x)), 1e-8);
}

#[test]
fn gradient_into_a_buffer() {
    let (p, x) = (lin(), [0.3, -2.0, 1.5]);
    let mut g = p.zeros_like();
    g.scale = -1.0;
    loss_grad_into(&p, &x, &mut g);
    let want = loss_grad(&p, &x);
    assert_eq!((g.w, g.b), (want.w, want.b));
}

#[test]
fn nested_struct_vec_field_and_a_plain_argument() {
    let (p, x, y) = (net(), [0.4, -1.2], 0.3);
    let ((gp, gy), v) = net_loss_grad_and_value(&p, &x, y);
    assert_eq!(v, net_loss(&p, &x, y));
    assert_close(&gp.to_flat(), &fd(&p, |q| net_loss(q, &x, y)), 1e-7);
    let h = 1e-6;
    let fy = (net_loss(&p, &x, y + h) - net_loss(&p, &x, y - h)) / (2.0 * h);
    assert!((gy - fy).abs() < 1e-7);
    let mut out = ((p.zeros_like(), 0.0), 0.0);
    net_loss_grad_and_value_into(&p, &x, y, &mut out);
    assert_eq!(out.0 .0, gp);
    assert_eq!((out.0 .1, out.1), (gy, v));
}

#[test]
fn struct_passed_whole_to_a_callee() {
    let (p, x, y) = (net(), [-0.7, 0.9], -0.1);
    let g = net_loss_call_grad(&p, &x, y);
    let ((want, _), _) = net_loss_grad_and_value(&p, &x, y);
    assert_eq!(g, want);
}

#[test]
fn loss_over_a_batch_with_the_struct_shared() {
    let p = net().hidden;
    let r: Vec<f64> = (0..7).map(|k| 0.5 + 0.1 * k as f64).collect();
    let target: Vec<f64> = r.iter().map(|x| (2.0 * x).sin()).collect();
    let (de, e) = energy_grad_and_value_vmap(&p, &r);
    for k in 0..r.len() {
        // Within the lane functions' documented bound (`tanh` on lanes).
        let (d, v) = energy_grad_and_value(&p, r[k]);
        assert_close(&[de[k], e[k], e[k]], &[d, v, energy(&p, r[k])], 1e-14);
    }
    let g = fit_grad(&p, &r, &target);
    assert_close(&g.to_flat(), &fd(&p, |q| fit(q, &r, &target)), 1e-6);
}

/// An array-valued function of a struct and a plain argument: its Jacobian with respect to
/// the struct is one struct per output element.
#[jacrev(argnums = (0, 1))]
fn outputs(p: &Lin, x: &[f64; 3]) -> [f64; 2] {
    let mut s = p.b;
    for i in 0..3 {
        s += p.w[i] * x[i];
    }
    [(s * p.scale).sin(), s * x[0] * p.w[2]]
}

#[jacfwd]
#[differentiable]
fn outputs_fwd(p: &Lin, x: &[f64; 3]) -> [f64; 2] {
    outputs(p, x)
}

#[test]
fn jacobian_is_one_struct_per_output() {
    let (p, x) = (lin(), [0.4, -1.0, 2.0]);
    let (jp, jx): ([Lin; 2], [[f64; 3]; 2]) = outputs_jacrev(&p, &x);
    let jf: [Lin; 2] = outputs_fwd_jacfwd(&p, &x);
    for m in 0..2 {
        assert_eq!(jp[m].scale, p.scale);
        assert_close(&jp[m].to_flat(), &fd(&p, |q| outputs(q, &x)[m]), 1e-8);
        assert_close(&jf[m].to_flat(), &jp[m].to_flat(), 1e-14);
        for k in 0..3 {
            let h = 1e-6;
            let (mut a, mut b) = (x, x);
            a[k] += h;
            b[k] -= h;
            let want = (outputs(&p, &a)[m] - outputs(&p, &b)[m]) / (2.0 * h);
            assert!((jx[m][k] - want).abs() < 1e-8);
        }
    }
    // The `_into` form writes the same into the caller's structs.
    let mut out = ([p.zeros_like(), p.zeros_like()], [[0.0; 3]; 2]);
    outputs_jacrev_into(&p, &x, &mut out);
    assert_eq!(out.0, jp);
    assert_eq!(out.1, jx);
}

/// Ensembles (functorch's `combine_state_for_ensemble` + `vmap`): several models' structs
/// in a slice, batched along axis 0.
#[vmap(in_dims = (0, None))]
fn ensemble_same_input(p: &Lin, x: &[f64; 3]) -> f64 {
    loss(p, x)
}

#[vmap(in_dims = (0, 0))]
fn ensemble_own_input(p: &Lin, x: &[f64; 3]) -> f64 {
    loss(p, x)
}

/// The gradient of every model's loss at once: one struct per model.
#[vmap(in_dims = (0, 0))]
#[grad]
fn ensemble_loss(p: &Lin, x: &[f64; 3]) -> f64 {
    loss(p, x)
}

/// Per-sample gradients with the struct shared: one struct per sample, and the value.
#[vmap(in_dims = (None, 0, 0))]
#[grad_and_value(argnums = (0, 2))]
fn sample_loss(p: &Lin, x: &[f64; 3], y: f64) -> f64 {
    let e = loss(p, x) - y;
    e * e
}

fn models() -> Vec<Lin> {
    (0..5)
        .map(|m| Lin {
            w: [0.1 * m as f64, -0.2, 0.3 + 0.05 * m as f64],
            b: 0.05 - 0.01 * m as f64,
            scale: 1.0 + m as f64,
        })
        .collect()
}

#[test]
fn ensembles_of_structs() {
    let ms = models();
    let xs: Vec<[f64; 3]> = (0..5).map(|k| [0.3 * k as f64, 1.0, -0.5 + 0.1 * k as f64]).collect();
    let same = ensemble_same_input_vmap(&ms, &xs[0]);
    let own = ensemble_own_input_vmap(&ms, &xs);
    let grads: Vec<Lin> = ensemble_loss_grad_vmap(&ms, &xs);
    assert_eq!(grads.len(), ms.len());
    for (m, p) in ms.iter().enumerate() {
        // Within the lane functions' documented bound (`tanh` on lanes).
        assert_close(&[same[m], own[m]], &[loss(p, &xs[0]), loss(p, &xs[m])], 1e-14);
        let want = loss_grad(p, &xs[m]);
        assert_close(&grads[m].to_flat(), &want.to_flat(), 1e-14);
        assert_eq!(grads[m].scale, p.scale, "each model's buffer");
    }
    // Batch sizes that disagree: the `try_` form reports them.
    assert!(try_ensemble_loss_grad_vmap(&ms, &xs[..3]).is_err());
    assert_eq!(try_ensemble_loss_grad_vmap(&ms, &xs).map(|g| g.len()), Ok(5));
}

#[test]
fn per_sample_gradients_of_a_shared_struct() {
    let p = lin();
    let xs: Vec<[f64; 3]> = (0..7).map(|k| [0.1 * k as f64, -0.4, 1.0]).collect();
    let ys: Vec<f64> = (0..7).map(|k| (k as f64).sin()).collect();
    let (gs, vs) = sample_loss_grad_and_value_vmap(&p, &xs, &ys);
    for k in 0..xs.len() {
        let ((gp, gy), v) = sample_loss_grad_and_value(&p, &xs[k], ys[k]);
        assert_close(&[vs[k]], &[v], 1e-14);
        assert_close(&gs[k].0.to_flat(), &gp.to_flat(), 1e-14);
        assert!((gs[k].1 - gy).abs() <= 1e-14);
        assert_eq!(gs[k].0.scale, p.scale);
    }
}

/// A struct of one field: its gradient is still the struct.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Scale {
    k: f64,
}

#[vmap(in_dims = (None, 0))]
#[grad]
fn scaled(p: &Scale, x: f64) -> f64 {
    (p.k * x).sin()
}

#[test]
fn one_field_struct() {
    let p = Scale { k: 0.7 };
    assert_eq!(
        scaled_grad(&p, 2.0),
        Scale {
            k: 2.0 * (1.4f64).cos()
        }
    );
    let gs = scaled_grad_vmap(&p, &[2.0, -1.0]);
    assert_close(&[gs[0].k, gs[1].k], &[2.0 * (1.4f64).cos(), -(0.7f64).cos()], 1e-14);
}

/// A nested struct with a buffer, a scalar, an array and a matrix-shaped array.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Quad {
    inner: Layer,
    #[param(buffer)]
    t: f64,
    c: f64,
    v: [f64; 2],
}

#[differentiable]
fn quad_body(p: &Quad, x: &[f64; 2]) -> f64 {
    let mut s = p.c * p.c * p.t;
    for i in 0..3 {
        let mut z = p.inner.b[i] * p.c;
        for j in 0..2 {
            z += p.inner.w[i][j] * x[j] * p.v[j];
        }
        s += z.tanh() * p.inner.b[i];
    }
    s + (p.v[0] * p.v[1]).sin()
}

/// `quad_body`'s Hessian (through the call, the struct passed whole).
#[hessian]
fn quad(p: &Quad, x: &[f64; 2]) -> f64 {
    quad_body(p, x)
}

/// Its gradient.
#[grad]
fn quad_g(p: &Quad, x: &[f64; 2]) -> f64 {
    quad_body(p, x)
}

/// `quad` with the trainable fields as arguments: its Hessian's blocks.
#[hessian(argnums = (0, 1, 2, 3))]
fn quad_fields(w: &[[f64; 2]; 3], b: &[f64; 3], c: f64, v: &[f64; 2], t: f64, x: &[f64; 2]) -> f64 {
    let mut s = c * c * t;
    for i in 0..3 {
        let mut z = b[i] * c;
        for j in 0..2 {
            z += w[i][j] * x[j] * v[j];
        }
        s += z.tanh() * b[i];
    }
    s + (v[0] * v[1]).sin()
}

fn quad_params() -> Quad {
    Quad {
        inner: Layer {
            w: [[0.3, -0.1], [0.2, 0.4], [-0.5, 0.25]],
            b: [0.1, -0.05, 0.2],
        },
        t: 1.5,
        c: 0.7,
        v: [0.9, -0.6],
    }
}

#[test]
fn hessian_is_one_struct_per_scalar() {
    let (p, x) = (quad_params(), [0.8, -1.2]);
    let h: Vec<Quad> = quad_hessian(&p, &x);
    let n = p.to_flat().len();
    assert_eq!(n, 6 + 3 + 1 + 2);
    assert_eq!(h.len(), n);
    // Row `k` against central differences of the generated gradient along scalar `k`;
    // buffers carried.
    let flat = p.to_flat();
    let d = 1e-6;
    for (k, row) in h.iter().enumerate() {
        assert_eq!(row.t, p.t);
        let (mut a, mut b) = (flat.clone(), flat.clone());
        a[k] += d;
        b[k] -= d;
        let (mut pa, mut pb) = (p.clone(), p.clone());
        pa.read_flat(&a);
        pb.read_flat(&b);
        let (ga, gb) = (quad_g_grad(&pa, &x).to_flat(), quad_g_grad(&pb, &x).to_flat());
        let fd: Vec<f64> = ga.iter().zip(&gb).map(|(a, b)| (a - b) / (2.0 * d)).collect();
        assert_close(&row.to_flat(), &fd, 1e-7);
    }
    // Symmetric, bit for bit where both halves are the same sums: within rounding.
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (h[i].to_flat()[j], h[j].to_flat()[i]);
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                "H[{i}][{j}] = {a}, H[{j}][{i}] = {b}"
            );
        }
    }
    // The same numbers as the blocks of the fields version, in the flattening order.
    let blocks = quad_fields_hessian(&p.inner.w, &p.inner.b, p.c, &p.v, p.t, &x);
    let ((h00, h01, h02, h03), (h10, h11, h12, h13), (h20, h21, h22, h23), (h30, h31, h32, h33)) = blocks;
    let flat_w = |m: &[[f64; 2]; 3]| m.iter().flatten().copied().collect::<Vec<f64>>();
    let row = |w: Vec<f64>, b: &[f64; 3], c: f64, v: &[f64; 2]| {
        let mut r = w;
        r.extend_from_slice(b);
        r.push(c);
        r.extend_from_slice(v);
        r
    };
    let mut want: Vec<Vec<f64>> = Vec::new();
    for i in 0..3 {
        for j in 0..2 {
            want.push(row(flat_w(&h00[i][j]), &h01[i][j], h02[i][j], &h03[i][j]));
        }
    }
    for i in 0..3 {
        want.push(row(flat_w(&h10[i]), &h11[i], h12[i], &h13[i]));
    }
    want.push(row(flat_w(&h20), &h21, h22, &h23));
    for i in 0..2 {
        want.push(row(flat_w(&h30[i]), &h31[i], h32[i], &h33[i]));
    }
    let got: Vec<Vec<f64>> = h.iter().map(|r| r.to_flat()).collect();
    assert_eq!(got, want);
}

/// A struct of one trainable field.
#[hessian]
fn scaled_sq(p: &Scale, x: f64) -> f64 {
    (p.k * x).sin() * p.k
}

#[test]
fn hessian_of_a_one_field_struct() {
    let (k, x) = (0.7, 2.0);
    let h = scaled_sq_hessian(&Scale { k }, x);
    // d²/dk² (k sin(kx)) = 2x cos(kx) - k x² sin(kx)
    let want = 2.0 * x * (k * x).cos() - k * x * x * (k * x).sin();
    assert_eq!(h.len(), 1);
    assert!((h[0].k - want).abs() < 1e-12, "{} vs {want}", h[0].k);
}

/// Per-sample gradients of a shared struct with a nested struct and a buffer, in plain
/// arithmetic (no lane function): the batch's gradients are the single-sample ones bit for
/// bit.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Poly {
    inner: Layer,
    lin: Lin,
    #[param(buffer)]
    tag: [f64; 2],
}

#[vmap(in_dims = (None, 0, 0))]
#[grad]
fn poly_loss(p: &Poly, x: &[f64; 2], y: f64) -> f64 {
    let mut s = p.lin.b;
    for i in 0..3 {
        let mut h = p.inner.b[i];
        for j in 0..2 {
            h += p.inner.w[i][j] * x[j];
        }
        s += p.lin.w[i] * h * h;
    }
    let e = s * p.lin.scale - y;
    e * e
}

fn poly() -> Poly {
    Poly {
        inner: Layer {
            w: [[0.3, -0.2], [0.1, 0.5], [-0.4, 0.25]],
            b: [0.05, -0.1, 0.2],
        },
        lin: Lin {
            w: [0.7, -0.3, 0.45],
            b: 0.1,
            scale: 1.5,
        },
        tag: [3.0, 4.0],
    }
}

/// `poly_loss_grad_vmap_into` writes each sample's gradient into its struct: the same bits
/// as the by-value form and as a loop of `poly_loss_grad`, for every batch and chunk size,
/// buffers set from the shared struct.
#[test]
fn per_sample_gradients_into_structs() {
    let p = poly();
    for n in [0, 1, 3, 4, 5, 7, 8, 9] {
        let xs: Vec<[f64; 2]> = (0..n)
            .map(|k| [((k * 2) as f64 * 0.618).fract() - 0.5, (k as f64 * 0.37).sin()])
            .collect();
        let ys: Vec<f64> = (0..n).map(|k| (k as f64 * 0.3).cos()).collect();
        let by_value: Vec<Poly> = poly_loss_grad_vmap(&p, &xs, &ys);
        assert_eq!(by_value.len(), n);
        let looped: Vec<Poly> = xs.iter().zip(&ys).map(|(x, &y)| poly_loss_grad(&p, x, y)).collect();
        assert_eq!(by_value, looped, "n = {n}");
        for chunk in [None, Some(1), Some(3), Some(4)] {
            // Garbage in every field, buffers included: all of them are set.
            let mut garbage = p.clone();
            garbage.fill(f64::NAN);
            garbage.tag = [f64::NAN; 2];
            garbage.lin.scale = f64::NAN;
            let mut out = vec![garbage; n];
            poly_loss_grad_vmap_into(&p, &xs, &ys, &mut out, chunk);
            for (k, (a, b)) in out.iter().zip(&looped).enumerate() {
                let (fa, fb) = (a.to_flat(), b.to_flat());
                assert!(
                    fa.iter().zip(&fb).all(|(u, v)| u.to_bits() == v.to_bits()),
                    "n = {n}, chunk {chunk:?}, sample {k}"
                );
                assert_eq!(a.tag, p.tag);
                assert_eq!(a.lin.scale, p.lin.scale);
            }
        }
        assert_eq!(try_poly_loss_grad_vmap(&p, &xs, &ys).map(|g| g.len()), Ok(n));
    }
    assert!(try_poly_loss_grad_vmap(&p, &[[0.0; 2]; 3], &[0.0; 2]).is_err());
}

/// A buffer of the wrong length: the panic names `out` and the batch, with both sizes.
#[test]
fn per_sample_gradients_into_wrong_length() {
    let p = poly();
    let xs = [[0.1, 0.2]; 5];
    let ys = [0.3; 5];
    for len in [0, 4, 6] {
        let mut out = vec![p.clone(); len];
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poly_loss_grad_vmap_into(&p, &xs, &ys, &mut out, None)
        }))
        .expect_err("a wrong length panics");
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(
            msg.contains("out") && msg.contains("x") && msg.contains(&len.to_string()) && msg.contains('5'),
            "{msg}"
        );
    }
}

/// An ensemble's gradients into the caller's structs: each model's buffer from that model.
#[test]
fn ensemble_gradients_into_structs() {
    let ms = models();
    let xs: Vec<[f64; 3]> = (0..5).map(|k| [0.3 * k as f64, 1.0, -0.5 + 0.1 * k as f64]).collect();
    let by_value: Vec<Lin> = ensemble_loss_grad_vmap(&ms, &xs);
    for chunk in [None, Some(1), Some(3), Some(4)] {
        let mut out = vec![lin(); 5];
        ensemble_loss_grad_vmap_into(&ms, &xs, &mut out, chunk);
        assert_eq!(out, by_value, "chunk {chunk:?}");
        for (g, m) in out.iter().zip(&ms) {
            assert_eq!(g.scale, m.scale);
        }
    }
}

/// `f32` parameters: eight samples per chunk of lanes.
#[derive(Parameters, Clone, Debug, PartialEq)]
struct Lin32 {
    w: [[f32; 3]; 2],
    b: f32,
}

#[vmap(in_dims = (None, 0))]
#[grad]
fn lin32_loss(p: &Lin32, x: &[f32; 3]) -> f32 {
    let mut s = p.b;
    for i in 0..2 {
        for j in 0..3 {
            s += p.w[i][j] * x[j] * x[i];
        }
    }
    s * s
}

#[test]
fn per_sample_gradients_into_f32_structs() {
    let p = Lin32 {
        w: [[0.5, -0.25, 0.125], [0.75, 0.3, -0.6]],
        b: 0.2,
    };
    for n in [0, 1, 7, 8, 9, 17] {
        let xs: Vec<[f32; 3]> = (0..n).map(|k| [k as f32 * 0.1, 1.0 - k as f32 * 0.05, 0.3]).collect();
        let looped: Vec<Lin32> = xs.iter().map(|x| lin32_loss_grad(&p, x)).collect();
        assert_eq!(lin32_loss_grad_vmap(&p, &xs), looped);
        for chunk in [None, Some(1), Some(3), Some(8)] {
            let mut out = vec![p.clone(); n];
            lin32_loss_grad_vmap_into(&p, &xs, &mut out, chunk);
            assert_eq!(out, looped, "n = {n}, chunk {chunk:?}");
        }
    }
}
