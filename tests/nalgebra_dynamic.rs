//! `DVector` arguments of annotated functions (read as slices of their column-major
//! storage): `grad` as `DVector`, `hessian` as an n x n `DMatrix`, `jacrev` / `jacfwd` of an
//! `[T; M]` result as an M x n `DMatrix`, `grad_and_value` with a float beside the vector;
//! against central differences and bit for bit against the same functions of `&[f64]`, at
//! lengths 0, 1, 3 and 7, in `f64` and `f32`.

#![allow(clippy::needless_range_loop)]

use fluxion::{grad, grad_and_value, hessian, jacfwd, jacrev};
use nalgebra::{DMatrix, DVector};

const LENGTHS: [usize; 4] = [0, 1, 3, 7];
const STEP: f64 = 6e-6;

fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.3 + 0.17 * i as f64 - 0.05 * (i * i) as f64).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// Central differences of `f` at `x`.
fn fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let h = STEP * x[i].abs().max(1.0);
            let (mut p, mut m) = (x.to_vec(), x.to_vec());
            p[i] += h;
            m[i] -= h;
            (f(&p) - f(&m)) / (2.0 * h)
        })
        .collect()
}

// Rosenbrock's function, of a `DVector` and of a slice.

#[grad]
fn rosen(x: &DVector<f64>) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        let a = x[i] - x[i - 1] * x[i - 1];
        let b = 1.0 - x[i - 1];
        s += 100.0 * a * a + b * b;
    }
    s
}

/// The slice version: `rosen_s` itself, its gradient and its Hessian.
#[fluxion::transforms(grad, hessian)]
fn rosen_s(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        let a = x[i] - x[i - 1] * x[i - 1];
        let b = 1.0 - x[i - 1];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[hessian]
fn rosen_h(x: &DVector<f64>) -> f64 {
    let mut s = 0.0;
    for i in 1..x.nrows() {
        let a = x[i] - x[i - 1] * x[i - 1];
        let b = 1.0 - x[i - 1];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[test]
fn grad_of_a_dvector_is_a_dvector() {
    for n in LENGTHS {
        let p = point(n);
        let x = DVector::from_vec(p.clone());
        let g: DVector<f64> = rosen_grad(&x);
        assert_eq!(g.len(), n);
        assert_eq!(g.as_slice(), rosen_s_grad(&p).as_slice(), "n = {n}");
        for (k, (a, b)) in g.iter().zip(fd(&rosen_s, &p)).enumerate() {
            assert!(close(*a, b, 1e-6), "n = {n}, entry {k}: {a} against {b}");
        }
        assert_eq!(rosen(&x), rosen_s(&p));
    }
}

#[test]
fn hessian_of_a_dvector_is_a_dmatrix() {
    for n in LENGTHS {
        let p = point(n);
        let x = DVector::from_vec(p.clone());
        let h: DMatrix<f64> = rosen_h_hessian(&x);
        assert_eq!(h.shape(), (n, n));
        let hs = rosen_s_hessian(&p);
        for i in 0..n {
            // Row i: central differences of the gradient's entry i.
            let want = fd(&|y: &[f64]| rosen_s_grad(y)[i], &p);
            for j in 0..n {
                assert_eq!(h[(i, j)].to_bits(), hs[i][j].to_bits(), "n = {n}, ({i}, {j})");
                assert!(
                    close(h[(i, j)], want[j], 1e-5),
                    "n = {n}, ({i}, {j}): {} against {}",
                    h[(i, j)],
                    want[j]
                );
            }
        }
    }
}

// A function of a `DVector` with an array result: its Jacobian is M x n.

/// The slice version: `two_s` itself and both Jacobians.
#[fluxion::transforms(jacrev, jacfwd)]
fn two_s(x: &[f64], c: f64) -> [f64; 2] {
    let mut a = 0.0;
    let mut b = 0.0;
    for i in 0..x.len() {
        a += x[i].sin() * c;
        b += x[i] * x[i] * (i as f64 + 1.0);
    }
    [a, b]
}

#[jacrev]
fn two_r(x: &DVector<f64>, c: f64) -> [f64; 2] {
    let mut a = 0.0;
    let mut b = 0.0;
    for i in 0..x.len() {
        a += x[i].sin() * c;
        b += x[i] * x[i] * (i as f64 + 1.0);
    }
    [a, b]
}

#[jacfwd]
fn two_f(x: &DVector<f64>, c: f64) -> [f64; 2] {
    let mut a = 0.0;
    let mut b = 0.0;
    for i in 0..x.len() {
        a += x[i].sin() * c;
        b += x[i] * x[i] * (i as f64 + 1.0);
    }
    [a, b]
}

#[test]
fn jacobians_of_an_array_result_are_m_by_n() {
    let c = 1.3;
    for n in LENGTHS {
        let p = point(n);
        let x = DVector::from_vec(p.clone());
        let jr: DMatrix<f64> = two_r_jacrev(&x, c);
        let jf: DMatrix<f64> = two_f_jacfwd(&x, c);
        assert_eq!(jr.shape(), (2, n));
        assert_eq!(jf.shape(), (2, n));
        let (rs, fs) = (two_s_jacrev(&p, c), two_s_jacfwd(&p, c));
        for m in 0..2 {
            let want = fd(&|y: &[f64]| two_s(y, c)[m], &p);
            for j in 0..n {
                assert_eq!(jr[(m, j)].to_bits(), rs[m][j].to_bits());
                assert_eq!(jf[(m, j)].to_bits(), fs[m][j].to_bits());
                assert!(close(jr[(m, j)], want[j], 1e-6));
                assert!(close(jf[(m, j)], jr[(m, j)], 1e-12));
            }
        }
    }
}

// `grad_and_value` with respect to the vector (taken by value) and a float.

#[grad_and_value(argnums = (0, 1))]
fn scaled(x: DVector<f64>, c: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.nrows() {
        s += (x[i] * c).cos() + x[i];
    }
    s
}

#[grad_and_value(argnums = (0, 1))]
fn scaled_s(x: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] * c).cos() + x[i];
    }
    s
}

#[test]
fn grad_and_value_with_a_float_beside_the_vector() {
    for n in LENGTHS {
        let p = point(n);
        let ((gx, gc), v) = scaled_grad_and_value(DVector::from_vec(p.clone()), 0.7);
        let ((sx, sc), sv) = scaled_s_grad_and_value(&p, 0.7);
        assert_eq!(gx.as_slice(), sx.as_slice());
        assert_eq!(gc.to_bits(), sc.to_bits());
        assert_eq!(v.to_bits(), sv.to_bits());
        let _: DVector<f64> = gx;
    }
}

// `f32`.

#[grad]
fn norm2_f32(x: &DVector<f32>) -> f32 {
    let mut s = 0.0f32;
    for i in 0..x.len() {
        s += x[i] * x[i] * x[i];
    }
    s
}

#[test]
fn f32_gradient() {
    for n in LENGTHS {
        let x = DVector::<f32>::from_fn(n, |i, _| 0.5 + i as f32);
        let g: DVector<f32> = norm2_f32_grad(&x);
        for i in 0..n {
            assert_eq!(g[i], 3.0 * x[i] * x[i]);
        }
    }
}

// `DMatrix` arguments: `m[(i, j)]`, `nrows`, `ncols`; the gradient a matrix of the same
// shape, the Jacobian of `[T; M]` one matrix per output.

fn quad_plain(m: &[f64], r: usize, c: usize) -> f64 {
    let mut s = 0.0;
    for j in 0..c {
        for i in 0..r {
            s += m[i + j * r] * m[i + j * r] * (1.0 + i as f64) + (m[i + j * r] * (j as f64 + 0.5)).sin();
        }
    }
    s
}

#[grad]
fn quad(m: &DMatrix<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)] * (1.0 + i as f64) + (m[(i, j)] * (j as f64 + 0.5)).sin();
        }
    }
    s
}

#[jacrev]
fn pair(m: &DMatrix<f64>) -> [f64; 2] {
    let mut a = 0.0;
    let mut b = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            a += m[(i, j)] * m[(i, j)];
            b += (m[(i, j)] * (i + 2 * j) as f64).cos();
        }
    }
    [a, b]
}

#[test]
fn dmatrix_gradient_and_jacobian() {
    for (r, c) in [(0, 0), (1, 1), (2, 3), (3, 1), (1, 7)] {
        let m = DMatrix::from_fn(r, c, |i, j| 0.2 + 0.3 * i as f64 - 0.1 * j as f64);
        let g: DMatrix<f64> = quad_grad(&m);
        assert_eq!(g.shape(), (r, c));
        let want = fd(&|y: &[f64]| quad_plain(y, r, c), m.as_slice());
        for (k, (a, b)) in g.as_slice().iter().zip(&want).enumerate() {
            assert!(close(*a, *b, 1e-6), "{r}x{c}, entry {k}: {a} against {b}");
        }
        let j: [DMatrix<f64>; 2] = pair_jacrev(&m);
        for (o, jo) in j.iter().enumerate() {
            assert_eq!(jo.shape(), (r, c));
            let want = fd(
                &|y: &[f64]| {
                    let y = DMatrix::from_column_slice(r, c, y);
                    pair(&y)[o]
                },
                m.as_slice(),
            );
            for (k, (a, b)) in jo.as_slice().iter().zip(&want).enumerate() {
                assert!(close(*a, *b, 1e-6), "{r}x{c}, output {o}, entry {k}: {a} against {b}");
            }
        }
    }
}

// The Hessian with respect to a `DMatrix` (taken by value): `rc x rc` over its storage.

#[hessian]
fn quad_h(m: DMatrix<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)] * (1.0 + i as f64) + (m[(i, j)] * (j as f64 + 0.5)).sin();
        }
    }
    s
}

#[test]
fn dmatrix_hessian_over_the_storage() {
    for (r, c) in [(0, 0), (1, 1), (2, 3)] {
        let m = DMatrix::from_fn(r, c, |i, j| 0.2 + 0.3 * i as f64 - 0.1 * j as f64);
        let h: DMatrix<f64> = quad_h_hessian(m.clone());
        let n = r * c;
        assert_eq!(h.shape(), (n, n));
        for a in 0..n {
            let want = fd(
                &|y: &[f64]| quad_grad(&DMatrix::from_column_slice(r, c, y))[a],
                m.as_slice(),
            );
            for b in 0..n {
                assert!(
                    close(h[(a, b)], want[b], 1e-5),
                    "{r}x{c} ({a}, {b}): {} against {}",
                    h[(a, b)],
                    want[b]
                );
            }
        }
    }
}

// A raw identifier and two matrices: each matrix's counts reach its own reads.

#[grad(argnums = (0, 1))]
fn two_matrices(r#type: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..r#type.ncols() {
        for i in 0..r#type.nrows() {
            s += r#type[(i, j)] * b[(j, i)];
        }
    }
    s
}

#[test]
fn two_matrices_of_transposed_shapes() {
    let a = DMatrix::from_fn(2, 3, |i, j| 1.0 + i as f64 + 10.0 * j as f64);
    let b = DMatrix::from_fn(3, 2, |i, j| -0.5 + 2.0 * i as f64 - j as f64);
    let (ga, gb) = two_matrices_grad(&a, &b);
    assert_eq!(ga, b.transpose());
    assert_eq!(gb, a.transpose());
}
