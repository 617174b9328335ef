//! Results of run-time length: functions of `&[f64]` returning a `Vec<f64>` built in the
//! body (`let mut y = vec![0.0; x.len()]`, index writes, returned), whose `jacrev` / `jacfwd`
//! are `Vec<Vec<f64>>` rows (row `i` = output `i`, column `j` = input `j`), and functions of
//! a `DVector` returning a `DVector` built with `DVector::zeros(n)`, whose Jacobians are
//! `n_out x n_in` `DMatrix`es. The roadmap's cyclic function against central differences
//! at lengths 0, 1, 2, 3, 7 and 17, `jacrev` against `jacfwd`, the slice form against the
//! `DVector` form bit for bit, the `_into` forms, and `jvp` / `vjp` of the slice form (the
//! Jacobian times a vector, a vector times it).

#![allow(clippy::needless_range_loop)]

use fluxion::{jacfwd, jacrev, transforms};
use nalgebra::{DMatrix, DVector};

const LENGTHS: [usize; 6] = [0, 1, 2, 3, 7, 17];
const STEP: f64 = 6e-6;

fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.3 + 0.17 * i as f64 - 0.05 * (i * i) as f64).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// Central differences of a vector function `f` at `x`: `d[i][j]` = d f_i / d x_j.
fn fd_jacobian(f: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let m = f(x).len();
    let mut d = vec![vec![0.0; x.len()]; m];
    for j in 0..x.len() {
        let h = STEP * x[j].abs().max(1.0);
        let (mut p, mut q) = (x.to_vec(), x.to_vec());
        p[j] += h;
        q[j] -= h;
        let (fp, fq) = (f(&p), f(&q));
        for i in 0..m {
            d[i][j] = (fp[i] - fq[i]) / (2.0 * h);
        }
    }
    d
}

// The roadmap's cyclic function, of a `DVector` and of a slice.

#[transforms(jacrev, jacfwd, jacfwd(chunk_size = 1, name = "cyclic_jacfwd1"))]
fn cyclic(x: &DVector<f64>) -> DVector<f64> {
    let n = x.len();
    let mut y = DVector::zeros(n);
    for i in 0..n {
        y[i] = x[i].sin() * x[(i + 1) % n] + x[(i + n - 1) % n] * x[(i + n - 1) % n];
    }
    y
}

#[transforms(jacrev, jacfwd, jvp, vjp)]
fn cyclic_s(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = x[i].sin() * x[(i + 1) % n] + x[(i + n - 1) % n] * x[(i + n - 1) % n];
    }
    y
}

/// The cyclic Jacobian written by hand: three nonzeros per row (added where indices
/// coincide, at lengths 1 and 2).
fn cyclic_by_hand(x: &[f64]) -> Vec<Vec<f64>> {
    let n = x.len();
    let mut j = vec![vec![0.0; n]; n];
    for i in 0..n {
        let (next, prev) = ((i + 1) % n, (i + n - 1) % n);
        j[i][i] += x[i].cos() * x[next];
        j[i][next] += x[i].sin();
        j[i][prev] += 2.0 * x[prev];
    }
    j
}

#[test]
fn the_plain_functions_return_the_vector() {
    for n in LENGTHS {
        let x = point(n);
        let y = cyclic(&DVector::from_vec(x.clone()));
        let ys = cyclic_s(&x);
        assert_eq!(y.len(), n);
        assert_eq!(y.as_slice(), ys.as_slice());
        for i in 0..n {
            let want = x[i].sin() * x[(i + 1) % n] + x[(i + n - 1) % n] * x[(i + n - 1) % n];
            assert_eq!(ys[i], want);
        }
    }
}

#[test]
fn cyclic_jacobians_against_central_differences() {
    for n in LENGTHS {
        let x = point(n);
        let xv = DVector::from_vec(x.clone());
        let jr: DMatrix<f64> = cyclic_jacrev(&xv);
        let jf: DMatrix<f64> = cyclic_jacfwd(&xv);
        let j1: DMatrix<f64> = cyclic_jacfwd1(&xv);
        assert_eq!((jr.nrows(), jr.ncols()), (n, n));
        assert_eq!((jf.nrows(), jf.ncols()), (n, n));
        assert_eq!(j1, jf, "chunk_size = 1 is the unchunked Jacobian");
        let d = fd_jacobian(&|p| cyclic(&DVector::from_row_slice(p)).as_slice().to_vec(), &x);
        let hand = cyclic_by_hand(&x);
        for i in 0..n {
            for j in 0..n {
                assert!(
                    close(jr[(i, j)], d[i][j], 1e-6),
                    "n = {n}: jacrev ({i}, {j}) {} vs {}",
                    jr[(i, j)],
                    d[i][j]
                );
                assert!(
                    close(jr[(i, j)], jf[(i, j)], 1e-12),
                    "n = {n}: jacrev vs jacfwd ({i}, {j})"
                );
                assert!(close(jr[(i, j)], hand[i][j], 1e-12), "n = {n}: by hand ({i}, {j})");
            }
        }
    }
}

#[test]
fn slice_form_rows_against_central_differences_and_the_dvector_form() {
    for n in LENGTHS {
        let x = point(n);
        let xv = DVector::from_vec(x.clone());
        let jr = cyclic_s_jacrev(&x);
        let jf = cyclic_s_jacfwd(&x);
        assert_eq!(jr.len(), n);
        assert_eq!(jf.len(), n);
        let d = fd_jacobian(&|p| cyclic_s(p), &x);
        let (mr, mf) = (cyclic_jacrev(&xv), cyclic_jacfwd(&xv));
        for i in 0..n {
            assert_eq!(jr[i].len(), n);
            assert_eq!(jf[i].len(), n);
            for j in 0..n {
                assert!(close(jr[i][j], d[i][j], 1e-6), "n = {n}: jacrev row {i} col {j}");
                assert!(close(jr[i][j], jf[i][j], 1e-12), "n = {n}: jacrev vs jacfwd ({i}, {j})");
                // The `DVector` form is the slice form, rows into a matrix.
                assert_eq!(mr[(i, j)], jr[i][j]);
                assert_eq!(mf[(i, j)], jf[i][j]);
            }
        }
    }
}

#[test]
fn into_forms_overwrite_the_rows() {
    for n in LENGTHS {
        let x = point(n);
        let (jr, jf) = (cyclic_s_jacrev(&x), cyclic_s_jacfwd(&x));
        let mut buf = vec![vec![f64::NAN; n]; n];
        cyclic_s_jacrev_into(&x, &mut buf);
        assert_eq!(buf, jr);
        let mut buf = vec![vec![f64::NAN; n]; n];
        cyclic_s_jacfwd_into(&x, &mut buf);
        assert_eq!(buf, jf);
    }
}

#[test]
#[should_panic]
fn an_into_buffer_of_the_wrong_length_panics() {
    let x = point(3);
    let mut buf = vec![vec![0.0; 3]; 2];
    cyclic_s_jacrev_into(&x, &mut buf);
}

// The built vector read back in the body (a recurrence), a float argument beside the
// vector, and `f32`.

#[transforms(jacrev, jacfwd)]
fn recurrence(x: &[f64], w: f64) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for i in 0..x.len() {
        if i == 0 {
            y[i] = x[i];
        } else {
            y[i] = y[i - 1] * x[i] * w + x[i].sin();
        }
    }
    y
}

#[jacrev(argnums = (0, 1))]
fn scaled(x: &DVector<f64>, w: f64) -> DVector<f64> {
    let mut y: DVector<f64> = DVector::zeros(x.len());
    for i in 0..x.len() {
        y[i] = x[i] * x[i] * w;
    }
    y
}

#[jacfwd]
fn squares32(x: &DVector<f32>) -> DVector<f32> {
    let n = x.len();
    let mut y = DVector::zeros(n);
    for i in 0..n {
        y[i] = x[i] * x[i];
    }
    y
}

#[test]
fn a_vector_read_back_in_the_body() {
    let w = 0.7;
    for n in LENGTHS {
        let x = point(n);
        let jr = recurrence_jacrev(&x, w);
        let jf = recurrence_jacfwd(&x, w);
        let d = fd_jacobian(&|p| recurrence(p, w), &x);
        assert_eq!(jr.len(), n);
        for i in 0..n {
            for j in 0..n {
                assert!(
                    close(jr[i][j], d[i][j], 1e-6),
                    "n = {n}: ({i}, {j}) {} vs {}",
                    jr[i][j],
                    d[i][j]
                );
                assert!(close(jr[i][j], jf[i][j], 1e-12), "n = {n}: jacrev vs jacfwd ({i}, {j})");
            }
        }
    }
}

#[test]
fn a_float_beside_the_vector_and_f32() {
    for n in LENGTHS {
        let x = point(n);
        let w = 1.3;
        let (jx, jw): (DMatrix<f64>, DVector<f64>) = scaled_jacrev(&DVector::from_vec(x.clone()), w);
        assert_eq!((jx.nrows(), jx.ncols(), jw.len()), (n, n, n));
        for i in 0..n {
            assert_eq!(jw[i], x[i] * x[i]);
            for j in 0..n {
                assert_eq!(jx[(i, j)], if i == j { 2.0 * x[i] * w } else { 0.0 });
            }
        }
        let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let j32: DMatrix<f32> = squares32_jacfwd(&DVector::from_vec(x32.clone()));
        assert_eq!((j32.nrows(), j32.ncols()), (n, n));
        for i in 0..n {
            for j in 0..n {
                assert_eq!(j32[(i, j)], if i == j { 2.0 * x32[i] } else { 0.0 });
            }
        }
    }
}

// A result as long as another slice than the one differentiated.

#[transforms(jacrev, jacfwd)]
fn other_length(a: &[f64], b: &[f64]) -> Vec<f64> {
    let m = b.len();
    let mut y = vec![0.0; m];
    for i in 0..m {
        for j in 0..a.len() {
            y[i] += b[i] * a[j] * a[j] * (j + 1) as f64;
        }
    }
    y
}

#[test]
fn a_result_as_long_as_another_slice() {
    for (na, nb) in [(2, 3), (3, 2), (0, 2), (2, 0), (1, 1)] {
        let (a, b) = (point(na), point(nb + 1)[1..].to_vec());
        let jr = other_length_jacrev(&a, &b);
        let jf = other_length_jacfwd(&a, &b);
        assert_eq!(jr.len(), nb, "rows of jacrev at ({na}, {nb})");
        assert_eq!(jf.len(), nb, "rows of jacfwd at ({na}, {nb})");
        for i in 0..nb {
            assert_eq!((jr[i].len(), jf[i].len()), (na, na));
            for j in 0..na {
                let want = b[i] * 2.0 * a[j] * (j + 1) as f64;
                assert!(
                    close(jr[i][j], want, 1e-12) && close(jf[i][j], want, 1e-12),
                    "({i}, {j})"
                );
            }
        }
    }
}

#[test]
fn jvp_and_vjp_of_the_slice_form() {
    for n in LENGTHS {
        let x = point(n);
        let v: Vec<f64> = (0..n).map(|i| 1.0 - 0.3 * i as f64).collect();
        let j = cyclic_s_jacrev(&x);
        let (y, y_dot) = cyclic_s_jvp(&x, &v);
        assert_eq!(y, cyclic_s(&x));
        let (y2, pullback) = cyclic_s_vjp(&x);
        assert_eq!(y2, y);
        let (x_bar,) = pullback(v.clone());
        assert_eq!((y_dot.len(), x_bar.len()), (n, n));
        for i in 0..n {
            let jv: f64 = (0..n).map(|k| j[i][k] * v[k]).sum();
            let vj: f64 = (0..n).map(|k| v[k] * j[k][i]).sum();
            assert!(close(y_dot[i], jv, 1e-12), "n = {n}: jvp {i}");
            assert!(close(x_bar[i], vj, 1e-12), "n = {n}: vjp {i}");
        }
    }
}

// A result assigned whole after its zeros: its length is the value's, not the zeros'.

#[transforms(jacrev, jacfwd)]
fn reassigned(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; a.len()];
    let mut z = vec![0.0; b.len()];
    for i in 0..b.len() {
        for j in 0..a.len() {
            z[i] += b[i] * a[j] * a[j];
        }
    }
    y = z;
    y
}

#[test]
fn a_result_assigned_whole_has_the_value_s_length() {
    for (na, nb) in [(2, 3), (3, 2), (1, 1)] {
        let (a, b) = (point(na), point(nb + 1)[1..].to_vec());
        let (jr, jf) = (reassigned_jacrev(&a, &b), reassigned_jacfwd(&a, &b));
        assert_eq!((jr.len(), jf.len()), (nb, nb), "rows at ({na}, {nb})");
        for i in 0..nb {
            for j in 0..na {
                let want = b[i] * 2.0 * a[j];
                assert!(
                    close(jr[i][j], want, 1e-12) && close(jf[i][j], want, 1e-12),
                    "({i}, {j})"
                );
            }
        }
    }
}
