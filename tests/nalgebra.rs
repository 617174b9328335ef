//! nalgebra's statically sized vectors and matrices as arguments: element reads `v[i]`
//! and `m[(i, j)]`, gradients of the argument's type, Jacobians in JAX's layout (the
//! Jacobian of a vector in a vector is a matrix), checked against central differences and
//! across modes.

use approx::assert_relative_eq;
use fluxion::transforms;
use nalgebra::{Matrix2, SMatrix, SVector, Vector3};

#[transforms(grad, jacfwd, jacrev, hessian, jvp, vjp, grad_and_value)]
fn f(v: &SVector<f64, 3>, s: f64) -> f64 {
    v[0] * v[1].sin() + s * v[2] * v[2]
}

fn f_plain(v: &SVector<f64, 3>, s: f64) -> f64 {
    v[0] * v[1].sin() + s * v[2] * v[2]
}

const H: f64 = 1e-6;

/// Central differences of `f_plain` in `v`.
fn fd_v(v: &SVector<f64, 3>, s: f64) -> SVector<f64, 3> {
    SVector::from_fn(|i, _| {
        let (mut p, mut m) = (*v, *v);
        p[i] += H;
        m[i] -= H;
        (f_plain(&p, s) - f_plain(&m, s)) / (2.0 * H)
    })
}

#[test]
fn the_gradient_of_a_vector_argument_is_a_vector() {
    let v = SVector::<f64, 3>::new(0.7, -1.3, 2.1);
    let g: SVector<f64, 3> = f_grad(&v, 0.4);
    assert_relative_eq!(g, fd_v(&v, 0.4), epsilon = 1e-7);
    // Every mode gives the same numbers.
    let jf: SVector<f64, 3> = f_jacfwd(&v, 0.4);
    assert_relative_eq!(jf, g, epsilon = 1e-12);
    let jr: SVector<f64, 3> = f_jacrev(&v, 0.4);
    assert_relative_eq!(jr, g, epsilon = 1e-12);
    let (gv, val) = f_grad_and_value(&v, 0.4);
    assert_relative_eq!(gv, g, epsilon = 1e-12);
    assert_relative_eq!(val, f_plain(&v, 0.4), epsilon = 1e-15);
    let dir = SVector::<f64, 3>::new(0.3, -0.2, 0.9);
    let (y, ydot) = f_jvp(&v, 0.4, dir, 0.0);
    assert_relative_eq!(y, f_plain(&v, 0.4), epsilon = 1e-15);
    assert_relative_eq!(ydot, g.dot(&dir), epsilon = 1e-12);
    let (_, pullback) = f_vjp(&v, 0.4);
    let (vbar, sbar) = pullback(2.0);
    assert_relative_eq!(vbar, 2.0 * g, epsilon = 1e-12);
    assert_relative_eq!(sbar, 2.0 * v[2] * v[2], epsilon = 1e-12);
}

#[test]
fn the_hessian_in_a_vector_is_a_matrix() {
    let v = SVector::<f64, 3>::new(0.7, -1.3, 2.1);
    let h: SMatrix<f64, 3, 3> = f_hessian(&v, 0.4);
    let fd = SMatrix::<f64, 3, 3>::from_fn(|i, j| {
        let (mut p, mut m) = (v, v);
        p[j] += H;
        m[j] -= H;
        (f_grad(&p, 0.4)[i] - f_grad(&m, 0.4)[i]) / (2.0 * H)
    });
    assert_relative_eq!(h, fd, epsilon = 1e-6);
    assert_relative_eq!(h, h.transpose(), epsilon = 1e-12);
}

/// A matrix and a vector argument, an array result.
#[transforms(jacrev(argnums = (0, 1)), jacfwd(argnums = (0, 1)))]
fn g(m: Matrix2<f64>, v: Vector3<f64>) -> [f64; 2] {
    let mut out = [0.0; 2];
    for i in 0..2 {
        out[i] = m[(i, 0)] * m[(i, 1)] + (v[i] * v[2]).exp();
    }
    out
}

#[test]
fn jacobians_in_a_matrix_hold_one_matrix_per_output() {
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let v = Vector3::new(0.1, -0.4, 0.3);
    let (jm, jv): ([Matrix2<f64>; 2], [Vector3<f64>; 2]) = g_jacrev(m, v);
    let (fm, fv): ([Matrix2<f64>; 2], [Vector3<f64>; 2]) = g_jacfwd(m, v);
    for o in 0..2 {
        assert_relative_eq!(jm[o], fm[o], epsilon = 1e-12);
        assert_relative_eq!(jv[o], fv[o], epsilon = 1e-12);
        for i in 0..2 {
            for j in 0..2 {
                let (mut p, mut q) = (m, m);
                p[(i, j)] += H;
                q[(i, j)] -= H;
                let fd = (g_plain(p, v)[o] - g_plain(q, v)[o]) / (2.0 * H);
                assert_relative_eq!(jm[o][(i, j)], fd, epsilon = 1e-7);
            }
        }
        for i in 0..3 {
            let (mut p, mut q) = (v, v);
            p[i] += H;
            q[i] -= H;
            let fd = (g_plain(m, p)[o] - g_plain(m, q)[o]) / (2.0 * H);
            assert_relative_eq!(jv[o][i], fd, epsilon = 1e-7);
        }
    }
}

fn g_plain(m: Matrix2<f64>, v: Vector3<f64>) -> [f64; 2] {
    let mut out = [0.0; 2];
    for i in 0..2 {
        out[i] = m[(i, 0)] * m[(i, 1)] + (v[i] * v[2]).exp();
    }
    out
}

/// A const-generic length and an `f32` element type.
#[transforms(grad)]
fn norm2<const N: usize>(v: &SVector<f32, N>) -> f32 {
    let mut acc = 0.0;
    for i in 0..N {
        acc += v[i] * v[i];
    }
    acc.sqrt()
}

#[test]
fn const_generic_lengths_and_f32_elements() {
    let v = SVector::<f32, 4>::new(1.0, -2.0, 0.5, 3.0);
    let g = norm2_grad(&v);
    assert_relative_eq!(g, v / v.norm(), epsilon = 1e-6);
}

/// `jacrev` of a function returning a vector (here the generated gradient): the
/// Jacobian of a vector in a vector is a matrix, written element by element from each
/// reverse sweep's row.
#[fluxion::jacrev]
#[fluxion::grad]
fn q(v: &SVector<f64, 3>, s: f64) -> f64 {
    v[0] * v[1].sin() + s * v[2] * v[2] * v[0]
}

#[transforms(hessian)]
fn q_again(v: &SVector<f64, 3>, s: f64) -> f64 {
    v[0] * v[1].sin() + s * v[2] * v[2] * v[0]
}

#[test]
fn jacrev_of_a_vector_valued_function_is_a_matrix() {
    let v = SVector::<f64, 3>::new(0.7, -1.3, 2.1);
    let j: SMatrix<f64, 3, 3> = q_grad_jacrev(&v, 0.4);
    let h: SMatrix<f64, 3, 3> = q_again_hessian(&v, 0.4);
    assert_relative_eq!(j, h, epsilon = 1e-12);
    // Not symmetric by accident: entry (2, 0) is 2 s v2, entry (1, 1) is -v0 sin v1.
    assert_relative_eq!(j[(2, 0)], 2.0 * 0.4 * 2.1, epsilon = 1e-12);
    assert_relative_eq!(j[(1, 1)], -0.7 * (-1.3f64).sin(), epsilon = 1e-12);
}

/// `jacrev` of the gradient in a matrix (a matrix-valued function of a matrix): the
/// Jacobian holds, per row and column of the output, a matrix of the input's shape. Kills,
/// in `ir.rs`, `Dim::is_one` as `true` and `Ty::shape`'s vector guard `cols.is_one()` as
/// `true` (a matrix taken for a column vector: a Jacobian of the wrong type, or only the
/// first column of the input differentiated).
#[fluxion::jacrev]
#[fluxion::grad]
fn mat_q(m: Matrix2<f64>) -> f64 {
    m[(0, 0)] * m[(1, 1)].sin() + m[(0, 1)] * m[(1, 0)] * m[(1, 1)]
}

#[test]
fn jacrev_of_a_matrix_gradient_holds_a_matrix_per_entry() {
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let h: [[Matrix2<f64>; 2]; 2] = mat_q_grad_jacrev(m);
    for (r, hr) in h.iter().enumerate() {
        for (c, hrc) in hr.iter().enumerate() {
            for i in 0..2 {
                for j in 0..2 {
                    let (mut p, mut q) = (m, m);
                    p[(i, j)] += H;
                    q[(i, j)] -= H;
                    let fd = (mat_q_grad(p)[(r, c)] - mat_q_grad(q)[(r, c)]) / (2.0 * H);
                    assert_relative_eq!(hrc[(i, j)], fd, epsilon = 1e-7);
                }
            }
        }
    }
    // Entry (1, 0) of the gradient is m01 m11: its derivative in m11 is m01.
    assert_eq!(h[1][0][(1, 1)], m[(0, 1)]);
}

/// Second derivatives through vector-valued first ones: `[f64; 2]` in an `SVector<3>`
/// gives `[SVector<3>; 2]`, whose Jacobian in the vector is `[SMatrix<3, 3>; 2]`, by both
/// modes (an array of vectors in a vector: the array level, then the vector-in-vector
/// matrix). And the derivative in a scalar of a matrix-valued gradient is a matrix.
#[fluxion::jacfwd]
#[fluxion::jacrev]
fn pair_fwd(v: &SVector<f64, 3>) -> [f64; 2] {
    [v[0] * v[1].sin(), v[2] * v[2] * v[0]]
}

#[fluxion::jacrev]
#[fluxion::jacrev]
fn pair_rev(v: &SVector<f64, 3>) -> [f64; 2] {
    [v[0] * v[1].sin(), v[2] * v[2] * v[0]]
}

fn pair_jac(v: &SVector<f64, 3>) -> [SVector<f64, 3>; 2] {
    [
        SVector::<f64, 3>::new(v[1].sin(), v[0] * v[1].cos(), 0.0),
        SVector::<f64, 3>::new(v[2] * v[2], 0.0, 2.0 * v[2] * v[0]),
    ]
}

#[fluxion::jacfwd(argnums = 1)]
#[fluxion::grad]
fn mix(m: Matrix2<f64>, s: f64) -> f64 {
    s * m[(0, 0)] * m[(1, 1)] + s.sin() * m[(0, 1)] - s * s * m[(1, 0)]
}

#[test]
fn second_derivatives_through_vector_and_matrix_valued_first_ones() {
    let v = SVector::<f64, 3>::new(0.7, -1.3, 2.1);
    for (a, b) in pair_fwd_jacrev(&v).iter().zip(pair_jac(&v)) {
        assert_relative_eq!(*a, b, epsilon = 1e-12);
    }
    let (hf, hr): ([SMatrix<f64, 3, 3>; 2], [SMatrix<f64, 3, 3>; 2]) =
        (pair_fwd_jacrev_jacfwd(&v), pair_rev_jacrev_jacrev(&v));
    for o in 0..2 {
        // Column j: central differences of the first Jacobian's row `o` along `e_j`.
        let fd = SMatrix::<f64, 3, 3>::from_fn(|i, j| {
            let (mut p, mut q) = (v, v);
            p[j] += H;
            q[j] -= H;
            (pair_jac(&p)[o][i] - pair_jac(&q)[o][i]) / (2.0 * H)
        });
        assert_relative_eq!(hf[o], fd, epsilon = 1e-7);
        assert_relative_eq!(hr[o], fd, epsilon = 1e-7);
    }
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let d: Matrix2<f64> = mix_grad_jacfwd(m, 0.3);
    let fd = (mix_grad(m, 0.3 + H) - mix_grad(m, 0.3 - H)) / (2.0 * H);
    assert_relative_eq!(d, fd, epsilon = 1e-7);
    // d/ds of ∂/∂m: [[m11, cos s], [-2 s, m00]].
    assert_relative_eq!(d, Matrix2::new(0.25, 0.3f64.cos(), -0.6, 0.5), epsilon = 1e-12);
}

/// The Jacobian of a vector-valued gradient in a matrix: one matrix per row of the vector
/// (`[Matrix2; 2]`, the vector counting one axis).
#[fluxion::jacfwd(argnums = 1)]
#[fluxion::grad]
fn bilinear(v: SVector<f64, 2>, m: Matrix2<f64>) -> f64 {
    v[0] * m[(0, 0)] * v[1] + v[1] * m[(1, 0)].sin() + v[0] * v[0] * m[(0, 1)] * m[(1, 1)]
}

#[test]
fn the_jacobian_of_a_vector_in_a_matrix_is_a_matrix_per_row() {
    let v = SVector::<f64, 2>::new(0.4, -1.2);
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let j: [Matrix2<f64>; 2] = bilinear_grad_jacfwd(v, m);
    for (o, jo) in j.iter().enumerate() {
        let fd = Matrix2::from_fn(|a, b| {
            let (mut p, mut q) = (m, m);
            p[(a, b)] += H;
            q[(a, b)] -= H;
            (bilinear_grad(v, p)[o] - bilinear_grad(v, q)[o]) / (2.0 * H)
        });
        assert_relative_eq!(*jo, fd, epsilon = 1e-7);
    }
}

/// One-element vectors: the Jacobian of a vector in a `SVector<1>` is an `SMatrix<M, 1>`
/// whose column index is the input's row (not a vector's implicit column 0).
#[fluxion::hessian]
fn one(v: &SVector<f64, 1>) -> f64 {
    v[0].sin() * v[0]
}

#[fluxion::jacfwd]
#[fluxion::jacrev]
fn one_pair(v: &SVector<f64, 1>) -> [f64; 2] {
    [v[0] * v[0] * v[0], v[0].exp()]
}

#[test]
fn one_element_vectors() {
    let v = SVector::<f64, 1>::new(0.8);
    let h: SMatrix<f64, 1, 1> = one_hessian(&v);
    assert_relative_eq!(h[(0, 0)], 2.0 * 0.8f64.cos() - 0.8 * 0.8f64.sin(), epsilon = 1e-12);
    let j: [SMatrix<f64, 1, 1>; 2] = one_pair_jacrev_jacfwd(&v);
    assert_relative_eq!(j[0][(0, 0)], 6.0 * 0.8, epsilon = 1e-12);
    assert_relative_eq!(j[1][(0, 0)], 0.8f64.exp(), epsilon = 1e-12);
}

/// The Jacobian of a matrix-valued gradient in a vector: rows and columns of the matrix,
/// then the vector (`[[SVector<2>; 2]; 2]`), by both modes.
#[fluxion::transforms(jacfwd(grad, argnums = 1), jacrev(grad, argnums = 1))]
fn mat_vec(m: Matrix2<f64>, v: SVector<f64, 2>) -> f64 {
    m[(0, 0)] * v[0] * v[1] + m[(1, 0)] * v[0].sin() + m[(0, 1)] * m[(1, 1)] * v[1] * v[1]
}

#[test]
fn the_jacobian_of_a_matrix_in_a_vector() {
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let v = SVector::<f64, 2>::new(0.4, -1.2);
    let jf: [[SVector<f64, 2>; 2]; 2] = mat_vec_grad_jacfwd(m, v);
    let jr: [[SVector<f64, 2>; 2]; 2] = mat_vec_grad_jacrev(m, v);
    for a in 0..2 {
        for b in 0..2 {
            let fd = SVector::<f64, 2>::from_fn(|k, _| {
                let (mut p, mut q) = (v, v);
                p[k] += H;
                q[k] -= H;
                (mat_vec_grad(m, p)[(a, b)] - mat_vec_grad(m, q)[(a, b)]) / (2.0 * H)
            });
            assert_relative_eq!(jf[a][b], fd, epsilon = 1e-7);
            assert_relative_eq!(jr[a][b], fd, epsilon = 1e-7);
        }
    }
}

/// `SMatrix<T, R, C>` spelled out (three generic arguments) as an argument.
#[fluxion::grad]
fn frobenius(m: &SMatrix<f64, 2, 3>) -> f64 {
    let mut s = 0.0;
    for i in 0..2 {
        for j in 0..3 {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s
}

#[test]
fn smatrix_spelled_out() {
    let m = SMatrix::<f64, 2, 3>::new(1.0, -2.0, 0.5, 3.0, 0.25, -1.0);
    let g: SMatrix<f64, 2, 3> = frobenius_grad(&m);
    assert_relative_eq!(g, 2.0 * m, epsilon = 1e-15);
}

/// The `_into` form of a gradient of a matrix type zeroes the caller's buffer first (it
/// adds into it), whatever it held.
#[test]
fn into_forms_of_matrix_gradients_overwrite_the_buffer() {
    let m = SMatrix::<f64, 2, 3>::new(1.0, -2.0, 0.5, 3.0, 0.25, -1.0);
    let mut out = SMatrix::<f64, 2, 3>::repeat(f64::NAN);
    frobenius_grad_into(&m, &mut out);
    assert_eq!(out, frobenius_grad(&m));
}

/// Reverse over `grad_and_value` in a matrix: the cotangent is a tuple holding a matrix,
/// accumulated field by field. `vjp(ct = (C, c)) = H C + c grad`.
#[fluxion::vjp]
#[fluxion::grad_and_value]
fn quad(m: Matrix2<f64>) -> f64 {
    m[(0, 0)] * m[(1, 1)] + m[(0, 1)] * m[(0, 1)] + m[(1, 0)].sin()
}

#[test]
fn reverse_over_grad_and_value_in_a_matrix() {
    let m = Matrix2::new(0.5, -1.0, 2.0, 0.25);
    let cm = Matrix2::new(0.3, -0.7, 1.1, 0.2);
    let c = 0.9;
    let ((g, v), (bar,)) = quad_grad_and_value_vjp_ct(m, (cm, c));
    let grad = Matrix2::new(m[(1, 1)], 2.0 * m[(0, 1)], m[(1, 0)].cos(), m[(0, 0)]);
    assert_relative_eq!(g, grad, epsilon = 1e-15);
    assert_relative_eq!(
        v,
        m[(0, 0)] * m[(1, 1)] + m[(0, 1)] * m[(0, 1)] + m[(1, 0)].sin(),
        epsilon = 1e-15
    );
    let hc = Matrix2::new(cm[(1, 1)], 2.0 * cm[(0, 1)], -m[(1, 0)].sin() * cm[(1, 0)], cm[(0, 0)]);
    assert_relative_eq!(bar, hc + c * grad, epsilon = 1e-12);
}

/// A batch with a nalgebra matrix shared by the samples.
#[fluxion::vmap(in_dims = (None, 0))]
fn energy(w: &SMatrix<f64, 2, 1>, r: f64) -> f64 {
    (w[(0, 0)] * r).tanh() * w[(1, 0)]
}

/// A loss over that batch: its gradient sums the samples' cotangents of the shared matrix
/// (whose zero is nalgebra's own, not the runtime's).
#[fluxion::grad]
fn batch_loss(w: &SMatrix<f64, 2, 1>, r: &[f64]) -> f64 {
    let e = energy_vmap(w, r);
    let mut s = 0.0;
    for k in 0..r.len() {
        s += e[k] * e[k];
    }
    s
}

#[test]
fn gradient_through_a_batch_with_a_shared_matrix() {
    let w = SMatrix::<f64, 2, 1>::new(0.7, -1.3);
    let r = [0.2, -0.5, 1.1, 0.9, 0.3];
    let g = batch_loss_grad(&w, &r);
    let h = 1e-6;
    for i in 0..2 {
        let (mut a, mut b) = (w, w);
        a[(i, 0)] += h;
        b[(i, 0)] -= h;
        let fd = (batch_loss(&a, &r) - batch_loss(&b, &r)) / (2.0 * h);
        assert_relative_eq!(g[(i, 0)], fd, epsilon = 1e-8);
    }
}

/// nalgebra's operations inside the body: matrix times vector, sums, `map`, transpose,
/// `dot`, norms, component-wise products, scalar multiples.
#[fluxion::grad(argnums = (0, 1, 2))]
fn tensor_loss(w1: &SMatrix<f64, 4, 2>, b1: &SVector<f64, 4>, w2: &SMatrix<f64, 1, 4>, x: &SVector<f64, 2>) -> f64 {
    let h = (w1 * x + b1).map(|v| v.tanh());
    let o = w2 * h;
    let t = w1.transpose() * b1;
    o[0] * o[0] + 0.1 * t.dot(x) + 0.01 * h.norm_squared() - 0.5 * (2.0 * h).sum() + h.component_mul(b1).norm()
        - (h - b1 / 3.0).transpose()[(0, 1)]
}

#[test]
fn nalgebra_operations_in_the_body() {
    let w1 = SMatrix::<f64, 4, 2>::from_fn(|i, j| 0.3 * i as f64 - 0.2 * j as f64 + 0.1);
    let b1 = SVector::<f64, 4>::new(0.1, -0.2, 0.05, 0.3);
    let w2 = SMatrix::<f64, 1, 4>::new(0.5, -0.4, 0.25, 0.8);
    let x = SVector::<f64, 2>::new(0.7, -1.1);
    let (g1, gb, g2) = tensor_loss_grad(&w1, &b1, &w2, &x);
    let f = |w1: &SMatrix<f64, 4, 2>, b1: &SVector<f64, 4>, w2: &SMatrix<f64, 1, 4>| tensor_loss(w1, b1, w2, &x);
    for k in 0..8 {
        let (mut a, mut b) = (w1, w1);
        a[k] += H;
        b[k] -= H;
        assert_relative_eq!(g1[k], (f(&a, &b1, &w2) - f(&b, &b1, &w2)) / (2.0 * H), epsilon = 1e-7);
    }
    for k in 0..4 {
        let (mut a, mut b) = (b1, b1);
        a[k] += H;
        b[k] -= H;
        assert_relative_eq!(gb[k], (f(&w1, &a, &w2) - f(&w1, &b, &w2)) / (2.0 * H), epsilon = 1e-7);
        let (mut a, mut b) = (w2, w2);
        a[k] += H;
        b[k] -= H;
        assert_relative_eq!(g2[k], (f(&w1, &b1, &a) - f(&w1, &b1, &b)) / (2.0 * H), epsilon = 1e-7);
    }
}

/// A vector-valued function computed with nalgebra's operations: its Jacobian by both
/// modes against central differences of the original (which runs nalgebra's own).
#[fluxion::jacrev(argnums = 1)]
fn layer_rev(w: &SMatrix<f64, 2, 3>, x: &SVector<f64, 3>) -> SVector<f64, 2> {
    (w * x).map(|v| v.tanh()) * 2.0
}

#[fluxion::jacfwd(argnums = 1)]
fn layer_fwd(w: &SMatrix<f64, 2, 3>, x: &SVector<f64, 3>) -> SVector<f64, 2> {
    (w * x).map(|v| v.tanh()) * 2.0
}

#[test]
fn jacobian_of_a_nalgebra_result() {
    let w = SMatrix::<f64, 2, 3>::new(0.5, -0.25, 0.75, 0.1, 0.2, -0.3);
    let x = SVector::<f64, 3>::new(0.3, -1.2, 0.8);
    let jr: SMatrix<f64, 2, 3> = layer_rev_jacrev(&w, &x);
    let jf: SMatrix<f64, 2, 3> = layer_fwd_jacfwd(&w, &x);
    for k in 0..3 {
        let (mut a, mut b) = (x, x);
        a[k] += H;
        b[k] -= H;
        let fd = (layer_rev(&w, &a) - layer_rev(&w, &b)) / (2.0 * H);
        for i in 0..2 {
            assert_relative_eq!(jr[(i, k)], fd[i], epsilon = 1e-8);
            assert_relative_eq!(jf[(i, k)], jr[(i, k)], epsilon = 1e-14);
        }
    }
}

#[fluxion::grad]
fn norm_of(v: &SVector<f64, 3>) -> f64 {
    v.norm()
}

#[fluxion::vmap(in_dims = (None, 0))]
#[fluxion::grad(argnums = 1)]
fn norm_batched(v: &SVector<f64, 3>, s: f64) -> f64 {
    (v * s).norm()
}

/// `norm'(0) = 0`, the subgradient (`sqrt'(0) = inf` would give NaN); elsewhere `v / |v|`;
/// a NaN element stays NaN.
#[test]
fn norm_at_zero_has_gradient_zero() {
    assert_eq!(norm_of_grad(&SVector::zeros()), SVector::<f64, 3>::zeros());
    let v = SVector::<f64, 3>::new(3.0, 0.0, -4.0);
    assert_relative_eq!(norm_of_grad(&v), v / 5.0, epsilon = 1e-15);
    assert!(norm_of_grad(&SVector::<f64, 3>::new(f64::NAN, 1.0, 0.0))[1].is_nan());
    // On lanes (a select between the branches): 0 at the zero vector, |v| sign(s) else.
    let gs = norm_batched_grad_vmap(&v, &[0.0, 2.0, -1.0, 0.5, 0.0]);
    for (g, want) in gs.iter().zip([0.0, 5.0, -5.0, 5.0, 0.0]) {
        assert_relative_eq!(*g, want, epsilon = 1e-14);
    }
    assert_eq!((gs[0], gs[4]), (0.0, 0.0));
}

/// nalgebra values built in the body: `zeros` then element writes, `from_element`,
/// `from_fn`, `new` (row by row) of `SVector`, `SMatrix` and the aliases.
#[fluxion::grad]
fn built(x: &SVector<f64, 3>) -> f64 {
    let a = SVector::<f64, 3>::from_element(0.5);
    let m = SMatrix::<f64, 2, 3>::from_fn(|i, j| (i + 2 * j) as f64 * x[j]);
    let v = Vector3::new(x[0], x[1] * x[2], 1.0);
    let mut z = SVector::<f64, 3>::zeros();
    for i in 0..3 {
        z[i] = x[i] * x[i];
    }
    let q = Matrix2::new(1.0, 2.0, 3.0, x[0]);
    (m * a).sum() + v.dot(&z) + (q * (m * x)).norm_squared() + q[(0, 1)] * z[2]
}

#[test]
fn nalgebra_values_built_in_the_body() {
    let x = SVector::<f64, 3>::new(0.4, -1.3, 0.9);
    let g = built_grad(&x);
    for k in 0..3 {
        let (mut a, mut b) = (x, x);
        a[k] += H;
        b[k] -= H;
        assert_relative_eq!(g[k], (built(&a) - built(&b)) / (2.0 * H), epsilon = 1e-6);
    }
}

/// `cross`, `normalize`, and loops over `len()` / `nrows()` of nalgebra values.
#[fluxion::grad(argnums = (0, 1))]
fn geometry(a: &SVector<f64, 3>, b: &SVector<f64, 3>) -> f64 {
    let c = a.cross(b);
    let u = c.normalize();
    let mut s = 0.0;
    for i in 0..u.len() {
        s += u[i] * a[i];
    }
    for i in 0..c.nrows() {
        s += 0.1 * c[i] * c[i];
    }
    s
}

#[test]
fn cross_normalize_and_lengths() {
    let (a, b) = (
        SVector::<f64, 3>::new(0.3, -1.0, 0.7),
        SVector::<f64, 3>::new(1.1, 0.2, -0.4),
    );
    let (ga, gb) = geometry_grad(&a, &b);
    for k in 0..3 {
        let (mut p, mut m) = (a, a);
        p[k] += H;
        m[k] -= H;
        assert_relative_eq!(ga[k], (geometry(&p, &b) - geometry(&m, &b)) / (2.0 * H), epsilon = 1e-7);
        let (mut p, mut m) = (b, b);
        p[k] += H;
        m[k] -= H;
        assert_relative_eq!(gb[k], (geometry(&a, &p) - geometry(&a, &m)) / (2.0 * H), epsilon = 1e-7);
    }
}

/// Products of a stored matrix by a matrix of several columns (`a * b`, `b * a`), `-a`,
/// `component_div`, `add_scalar`, closures with typed parameters, and `len()` / `ncols()`
/// of matrices that are not columns.
#[fluxion::grad(argnums = (0, 1))]
fn shapes(a: &SMatrix<f64, 2, 3>, b: &SMatrix<f64, 3, 2>) -> f64 {
    let p = a * b;
    let q = b * a;
    let n = -(p.add_scalar(0.5));
    let d = a.component_div(&b.transpose().add_scalar(2.0));
    let e = SMatrix::<f64, 2, 2>::from_fn(|i: usize, j: usize| (i + 2 * j) as f64 * 0.5);
    let mut s = (e * p).map(|x: f64| x.sin()).sum();
    for k in 0..a.len() {
        s += 0.01 * (k as f64) * p[(0, 1)];
    }
    for j in 0..q.ncols() {
        s += 0.1 * (j as f64 + 1.0) * q[(1, j)];
    }
    0.1 * q.sum() + n.norm_squared() + d.sum() + s
}

#[test]
fn products_of_stored_matrices_and_matrix_lengths() {
    let a = SMatrix::<f64, 2, 3>::new(0.5, -0.25, 0.75, 0.1, 0.2, -0.3);
    let b = SMatrix::<f64, 3, 2>::new(0.3, -1.2, 0.8, 0.4, -0.6, 1.1);
    let (ga, gb) = shapes_grad(&a, &b);
    for k in 0..6 {
        let (mut p, mut m) = (a, a);
        p[k] += H;
        m[k] -= H;
        assert_relative_eq!(ga[k], (shapes(&p, &b) - shapes(&m, &b)) / (2.0 * H), epsilon = 1e-7);
        let (mut p, mut m) = (b, b);
        p[k] += H;
        m[k] -= H;
        assert_relative_eq!(gb[k], (shapes(&a, &p) - shapes(&a, &m)) / (2.0 * H), epsilon = 1e-7);
    }
}

/// Constructors whose element type is not the arguments' (`f32` values in an `f64`
/// function and back), and a shape given by a const generic parameter.
#[fluxion::grad]
fn mixed_f64(x: f64) -> f64 {
    let a = SVector::<f32, 2>::new(x as f32, 0.5);
    let b = SVector::<f64, 2>::new(x, 0.25);
    (a.dot(&a) as f64) * b.sum()
}

#[fluxion::grad]
fn mixed_f32(x: f32) -> f32 {
    let a = SVector::<f64, 2>::new(x as f64, 0.5);
    (a.dot(&a) as f32) * x
}

#[fluxion::grad]
fn weighted<const N: usize>(v: &SVector<f32, N>) -> f32 {
    let w = SVector::<f32, N>::from_element(0.5);
    v.component_mul(&w).dot(v)
}

#[test]
fn constructors_of_another_precision_or_a_const_generic_shape() {
    let x = 0.7;
    // a step the `f32` rounding inside does not swamp
    assert_relative_eq!(
        mixed_f64_grad(x),
        (mixed_f64(x + 1e-2) - mixed_f64(x - 1e-2)) / 2e-2,
        epsilon = 1e-3
    );
    let y = 0.7f32;
    assert_relative_eq!(
        mixed_f32_grad(y),
        (mixed_f32(y + 1e-3) - mixed_f32(y - 1e-3)) / 2e-3,
        epsilon = 1e-3
    );
    let v = SVector::<f32, 3>::new(0.5, -1.5, 2.0);
    let g = weighted_grad(&v);
    for k in 0..3 {
        let (mut p, mut m) = (v, v);
        p[k] += 1e-2;
        m[k] -= 1e-2;
        assert_relative_eq!(g[k], (weighted(&p) - weighted(&m)) / 2e-2, epsilon = 1e-3);
    }
}

/// `normalize` of a vector dotted with one it is not orthogonal to (in `geometry` the unit
/// vector is orthogonal to `a`: that term is zero whatever `normalize` gives).
#[fluxion::grad]
fn unit(a: &SVector<f64, 3>) -> f64 {
    let u = (a * 2.0).normalize();
    u.dot(&SVector::<f64, 3>::new(1.0, -2.0, 0.5))
}

#[test]
fn normalize_against_central_differences() {
    let a = SVector::<f64, 3>::new(0.3, -1.0, 0.7);
    let g = unit_grad(&a);
    for k in 0..3 {
        let (mut p, mut m) = (a, a);
        p[k] += H;
        m[k] -= H;
        assert_relative_eq!(g[k], (unit(&p) - unit(&m)) / (2.0 * H), epsilon = 1e-7);
    }
}
