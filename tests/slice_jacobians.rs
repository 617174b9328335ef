//! Jacobians with respect to a slice (`&[T]`, a length known only at run time): `jacrev`
//! (one reverse sweep per output element, each row a `Vec` of the slice's length) and
//! `jacfwd` (one forward pass per element of the slice, its one-hot tangent a `Vec`).
//! Layout: the output's shape first, then the slice's rows (`[Vec<T>; M]` for an output
//! `[f64; M]`). Checked against central finite differences and across modes, at slice
//! lengths 0 to 17, beside fixed-size arguments, through a call, and in the `_into` forms.

use fluxion::{differentiable, transforms};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn points(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.2 + 2.4 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

/// Central differences of `f` in element `i` of `xs`.
fn fd<const M: usize>(f: impl Fn(&[f64]) -> [f64; M], xs: &[f64], i: usize) -> [f64; M] {
    let h = 1e-6;
    let (mut a, mut b) = (xs.to_vec(), xs.to_vec());
    a[i] += h;
    b[i] -= h;
    let (fa, fb) = (f(&a), f(&b));
    std::array::from_fn(|k| (fa[k] - fb[k]) / (2.0 * h))
}

#[transforms(
    jacrev,
    jacfwd,
    jacrev(chunk_size = 1, name = "sums_rows"),
    jacfwd(chunk_size = 1, name = "sums_cols")
)]
fn sums(xs: &[f64], w: f64) -> [f64; 2] {
    let mut s = 0.0;
    let mut q = 0.0;
    for i in 0..xs.len() {
        s += xs[i] * xs[i] * w;
        q += (xs[i] * w).sin();
    }
    [s, q * s + w]
}

#[test]
fn rows_and_columns_against_differences() {
    for n in [0, 1, 2, 5, 17] {
        let xs = points(n);
        let w = 0.7;
        let jr = sums_jacrev(&xs, w);
        let jf = sums_jacfwd(&xs, w);
        let (r1, c1) = (sums_rows(&xs, w), sums_cols(&xs, w));
        for k in 0..2 {
            assert_eq!(jr[k].len(), n);
            assert_eq!(jf[k].len(), n);
            assert_eq!(r1[k], jr[k], "chunk_size = 1, row {k}");
            assert_eq!(c1[k], jf[k], "chunk_size = 1, row {k}");
        }
        for i in 0..n {
            let d = fd(|x| sums(x, w), &xs, i);
            for k in 0..2 {
                assert!(
                    close(jr[k][i], d[k], 1e-6),
                    "n {n}: jacrev[{k}][{i}] {} vs {}",
                    jr[k][i],
                    d[k]
                );
                assert!(
                    close(jf[k][i], jr[k][i], 1e-12),
                    "n {n}: jacfwd[{k}][{i}] {} vs {}",
                    jf[k][i],
                    jr[k][i]
                );
            }
        }
    }
}

/// A slice of arrays beside an array argument, both differentiated (`argnums = (0, 1)`), a
/// matrix-shaped output, and an auxiliary output.
#[transforms(jacrev(argnums = (0, 1), has_aux), jacfwd(argnums = (0, 1), has_aux))]
fn pairs(xs: &[[f64; 2]], w: [f64; 2]) -> ([[f64; 2]; 2], usize) {
    let mut m = [[0.0; 2]; 2];
    for i in 0..xs.len() {
        let d = xs[i][0] - xs[i][1];
        m[0][0] += d * d * w[0];
        m[0][1] += xs[i][0] * w[1];
        m[1][0] += (xs[i][1] * w[0]).tanh();
        m[1][1] += d * w[0] * w[1];
    }
    (m, xs.len())
}

#[test]
fn slices_of_arrays_beside_arrays() {
    for n in [0, 1, 3, 8] {
        let xs: Vec<[f64; 2]> = points(2 * n).chunks(2).map(|c| [c[0], c[1]]).collect();
        let w = [0.9, -0.4];
        let ((jx, jw), aux) = pairs_jacrev(&xs, w);
        let ((fx, fw), aux_f) = pairs_jacfwd(&xs, w);
        assert_eq!((aux, aux_f), (n, n));
        let flat = |x: &[f64]| -> [f64; 4] {
            let ys: Vec<[f64; 2]> = x.chunks(2).map(|c| [c[0], c[1]]).collect();
            let (m, _) = pairs(&ys, w);
            [m[0][0], m[0][1], m[1][0], m[1][1]]
        };
        let xflat: Vec<f64> = xs.iter().flatten().copied().collect();
        for i in 0..n {
            for e in 0..2 {
                let d = fd(flat, &xflat, 2 * i + e);
                for (k, dk) in d.iter().enumerate() {
                    let (r, c) = (k / 2, k % 2);
                    assert!(
                        close(jx[r][c][i][e], *dk, 1e-6),
                        "n {n}: d m[{r}][{c}] / d xs[{i}][{e}]"
                    );
                    assert!(close(fx[r][c][i][e], jx[r][c][i][e], 1e-12), "n {n}: modes");
                }
            }
        }
        // With respect to the array, as before.
        for r in 0..2 {
            for c in 0..2 {
                for e in 0..2 {
                    assert!(close(fw[r][c][e], jw[r][c][e], 1e-12), "n {n}: w modes");
                }
            }
        }
    }
}

#[differentiable]
fn energy(xs: &[f64], k: f64) -> f64 {
    let mut e = 0.0;
    for i in 0..xs.len() {
        e += k * xs[i] * xs[i] * xs[i];
    }
    e
}

/// Through a call that takes the slice.
#[transforms(jacrev, jacfwd)]
fn through(xs: &[f64]) -> [f64; 3] {
    [energy(xs, 1.0), energy(xs, 2.0) * energy(xs, 0.5), xs.len() as f64]
}

#[test]
fn through_a_call_and_into_a_buffer() {
    for n in [0, 4, 9] {
        let xs = points(n);
        let jr = through_jacrev(&xs);
        let jf = through_jacfwd(&xs);
        let mut buf: [Vec<f64>; 3] = std::array::from_fn(|_| vec![f64::NAN; n]);
        through_jacrev_into(&xs, &mut buf);
        assert_eq!(buf, jr);
        through_jacfwd_into(&xs, &mut buf);
        assert_eq!(buf, jf);
        for i in 0..n {
            let d = fd(through, &xs, i);
            for k in 0..3 {
                assert!(close(jr[k][i], d[k], 1e-6), "n {n}: jacrev[{k}][{i}]");
                assert!(close(jf[k][i], jr[k][i], 1e-12), "n {n}: jacfwd[{k}][{i}]");
            }
        }
    }
}

/// The chained Rosenbrock function of a slice, and of an array of the same length.
#[transforms(hessian, grad)]
fn rosenbrock(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() - 1 {
        s += 100.0 * (xs[i + 1] - xs[i] * xs[i]).powi(2) + (1.0 - xs[i]).powi(2);
    }
    s
}

#[transforms(hessian)]
fn rosenbrock6(xs: [f64; 6]) -> f64 {
    let mut s = 0.0;
    for i in 0..5 {
        s += 100.0 * (xs[i + 1] - xs[i] * xs[i]).powi(2) + (1.0 - xs[i]).powi(2);
    }
    s
}

#[test]
fn hessians_in_a_slice() {
    let x6 = [0.3, -0.8, 1.1, 0.4, -0.2, 0.9];
    let h = rosenbrock_hessian(&x6);
    let want = rosenbrock6_hessian(x6);
    assert_eq!(h.len(), 6);
    for r in 0..6 {
        assert_eq!(h[r].len(), 6);
        for c in 0..6 {
            assert!(
                close(h[r][c], want[r][c], 1e-12),
                "[{r}][{c}] {} vs {}",
                h[r][c],
                want[r][c]
            );
        }
    }
    for n in [2, 3, 9] {
        let xs = points(n);
        let h = rosenbrock_hessian(&xs);
        for c in 0..n {
            let hh = 1e-6;
            let (mut a, mut b) = (xs.clone(), xs.clone());
            a[c] += hh;
            b[c] -= hh;
            let (ga, gb) = (rosenbrock_grad(&a), rosenbrock_grad(&b));
            for r in 0..n {
                let d = (ga[r] - gb[r]) / (2.0 * hh);
                assert!(close(h[r][c], d, 1e-6), "n {n}: [{r}][{c}] {} vs {d}", h[r][c]);
                assert!(close(h[r][c], h[c][r], 1e-12), "n {n}: symmetric at [{r}][{c}]");
            }
        }
    }
}

#[test]
#[should_panic(expected = "a row of the buffer for the derivative in `xs` has length 2, but `xs` has length 4")]
fn a_row_of_the_wrong_length_panics() {
    let xs = points(4);
    let mut buf: [Vec<f64>; 3] = std::array::from_fn(|_| vec![0.0; 2]);
    through_jacfwd_into(&xs, &mut buf);
}

#[test]
fn hessian_rows_into_a_buffer() {
    let xs = points(5);
    let mut rows = vec![vec![f64::NAN; 5]; 5];
    rosenbrock_hessian_into(&xs, &mut rows);
    assert_eq!(rows, rosenbrock_hessian(&xs));
}

/// A matrix-shaped output: rows `[[Vec<T>; 2]; 2]`, whose `_into` form checks and zeroes
/// every row of the caller's buffer (the zero's slice found through the nested repeats).
#[transforms(jacrev, jacfwd)]
fn grid(xs: &[f64]) -> [[f64; 2]; 2] {
    let mut s = 0.0;
    let mut q = 1.0;
    for i in 0..xs.len() {
        s += xs[i] * xs[i];
        q *= 1.0 + 0.5 * xs[i];
    }
    [[s, q], [s * q, 2.0 * s]]
}

#[test]
fn matrix_rows_into_a_buffer() {
    for n in [0, 3] {
        let xs = points(n);
        let mut buf: [[Vec<f64>; 2]; 2] = std::array::from_fn(|_| std::array::from_fn(|_| vec![f64::NAN; n]));
        grid_jacrev_into(&xs, &mut buf);
        assert_eq!(buf, grid_jacrev(&xs));
        buf = std::array::from_fn(|_| std::array::from_fn(|_| vec![f64::NAN; n]));
        grid_jacfwd_into(&xs, &mut buf);
        assert_eq!(buf, grid_jacfwd(&xs));
        let (jf, jr) = (grid_jacfwd(&xs), grid_jacrev(&xs));
        for i in 0..n {
            for (r, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                assert!(close(jf[r][c][i], jr[r][c][i], 1e-12), "n {n}: [{r}][{c}][{i}]");
            }
        }
    }
}

#[test]
#[should_panic(expected = "a row of the buffer for the derivative in `xs` has length 1, but `xs` has length 3")]
fn a_matrix_row_of_the_wrong_length_panics() {
    let xs = points(3);
    let mut buf: [[Vec<f64>; 2]; 2] = std::array::from_fn(|_| std::array::from_fn(|_| vec![0.0; 3]));
    buf[1][0] = vec![0.0];
    grid_jacrev_into(&xs, &mut buf);
}

/// Every row of a Hessian's buffer is checked (rows of `[Vec<T>]`), not only their number.
#[test]
#[should_panic(expected = "a row of the buffer for the derivative in `xs` has length 6, but `xs` has length 5")]
fn a_hessian_row_of_the_wrong_length_panics() {
    let xs = points(5);
    let mut rows = vec![vec![0.0; 5]; 5];
    rows[3] = vec![0.0; 6];
    rosenbrock_hessian_into(&xs, &mut rows);
}

/// A pair potential of particle positions (`&[[f64; 3]]`, as many particles as the caller
/// has): a Hessian in a slice of arrays, `Vec<[Vec<[f64; 3]>; 3]>` (`h[i][a][j][b]` is
/// `∂²E / ∂x_i[a] ∂x_j[b]`, JAX's `(n, 3, n, 3)`), and the same with three particles in a
/// fixed-size array.
#[transforms(hessian, grad)]
fn pair_energy(xs: &[[f64; 3]], k: f64) -> f64 {
    let mut e = 0.0;
    for i in 0..xs.len() {
        for j in i + 1..xs.len() {
            let mut d2 = 0.0;
            for a in 0..3 {
                let d = xs[i][a] - xs[j][a];
                d2 += d * d;
            }
            e += k * (1.0 / d2 - 1.0 / (1.0 + d2).sqrt()) + 0.1 * xs[i][0] * xs[j][1].sin();
        }
    }
    e
}

#[transforms(hessian)]
fn pair_energy3(xs: [[f64; 3]; 3], k: f64) -> f64 {
    let mut e = 0.0;
    for i in 0..3 {
        for j in i + 1..3 {
            let mut d2 = 0.0;
            for a in 0..3 {
                let d = xs[i][a] - xs[j][a];
                d2 += d * d;
            }
            e += k * (1.0 / d2 - 1.0 / (1.0 + d2).sqrt()) + 0.1 * xs[i][0] * xs[j][1].sin();
        }
    }
    e
}

fn particles(n: usize) -> Vec<[f64; 3]> {
    let p = points(3 * n);
    (0..n)
        .map(|i| [p[3 * i] + 2.0 * i as f64, p[3 * i + 1], p[3 * i + 2]])
        .collect()
}

#[test]
fn hessians_in_a_slice_of_arrays() {
    let xs = particles(3);
    let h = pair_energy_hessian(&xs, 0.7);
    let want = pair_energy3_hessian([xs[0], xs[1], xs[2]], 0.7);
    assert_eq!(h.len(), 3);
    for i in 0..3 {
        for a in 0..3 {
            assert_eq!(h[i][a].len(), 3);
            for j in 0..3 {
                for b in 0..3 {
                    let (g, w) = (h[i][a][j][b], want[i][a][j][b]);
                    assert!(close(g, w, 1e-12), "[{i}][{a}][{j}][{b}] {g} vs {w}");
                }
            }
        }
    }
    // Against central differences of the gradient, and symmetric, for 0 to 5 particles.
    for n in 0..=5 {
        let xs = particles(n);
        let h = pair_energy_hessian(&xs, 0.7);
        assert_eq!(h.len(), n);
        let hh = 1e-6;
        for j in 0..n {
            for b in 0..3 {
                let (mut p, mut m) = (xs.clone(), xs.clone());
                p[j][b] += hh;
                m[j][b] -= hh;
                let (gp, gm) = (pair_energy_grad(&p, 0.7), pair_energy_grad(&m, 0.7));
                for i in 0..n {
                    for a in 0..3 {
                        let d = (gp[i][a] - gm[i][a]) / (2.0 * hh);
                        let g = h[i][a][j][b];
                        assert!(close(g, d, 1e-6), "n {n}: [{i}][{a}][{j}][{b}] {g} vs {d}");
                        assert!(
                            close(g, h[j][b][i][a], 1e-12),
                            "n {n}: symmetric at [{i}][{a}][{j}][{b}]"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn hessian_in_a_slice_of_arrays_into_a_buffer() {
    let xs = particles(4);
    let mut rows: Vec<[Vec<[f64; 3]>; 3]> = (0..4)
        .map(|_| std::array::from_fn(|_| vec![[f64::NAN; 3]; 4]))
        .collect();
    pair_energy_hessian_into(&xs, 0.7, &mut rows);
    assert_eq!(rows, pair_energy_hessian(&xs, 0.7));
}

#[test]
#[should_panic(expected = "a row of the buffer for the derivative in `xs` has length 3, but `xs` has length 4")]
fn a_hessian_row_in_a_slice_of_arrays_of_the_wrong_length_panics() {
    let xs = particles(4);
    let mut rows: Vec<[Vec<[f64; 3]>; 3]> = (0..4).map(|_| std::array::from_fn(|_| vec![[0.0; 3]; 4])).collect();
    rows[2][1] = vec![[0.0; 3]; 3];
    pair_energy_hessian_into(&xs, 0.7, &mut rows);
}

/// A Hessian in two slices of one type and different lengths (and in a slice of floats
/// beside a slice of arrays): blocks `((h_xx, h_xz), (h_zx, h_zz))`, each with a row per
/// scalar of the first slice's gradient and a column per scalar of the second.
#[transforms(
    hessian(argnums = (0, 1)),
    grad(argnums = (0, 1)),
    hessian(argnums = (0, 2), name = "cross_arrays_hessian"),
    grad(argnums = (0, 2), name = "cross_arrays_grad")
)]
fn cross(xs: &[f64], zs: &[f64], ps: &[[f64; 2]]) -> f64 {
    let mut e = 0.0;
    for i in 0..xs.len() {
        for j in 0..zs.len() {
            e += (xs[i] * zs[j]).sin() + xs[i] * xs[i] * zs[j];
        }
        for j in 0..ps.len() {
            e += xs[i] * ps[j][0] * ps[j][1];
        }
    }
    e
}

#[test]
#[allow(clippy::needless_range_loop)] // rows and columns indexed as in the formulas
fn hessians_in_two_slices_of_different_lengths() {
    let hh = 1e-6;
    for (n, m) in [(0, 2), (3, 2), (2, 5), (4, 4)] {
        let (xs, zs) = (points(n), points(m + 3)[3..].to_vec());
        let ps = vec![[0.4, -0.9], [1.2, 0.3]];
        let ((hxx, hxz), (hzx, hzz)) = cross_hessian(&xs, &zs, &ps);
        assert_eq!((hxx.len(), hxz.len(), hzx.len(), hzz.len()), (n, n, m, m));
        assert!(hxx.iter().chain(&hzx).all(|r| r.len() == n));
        assert!(hxz.iter().chain(&hzz).all(|r| r.len() == m));
        // Column `c` of the second slice `s` against central differences of the gradient.
        for (s, len) in [(0, n), (1, m)] {
            for c in 0..len {
                let (mut xp, mut xm, mut zp, mut zm) = (xs.clone(), xs.clone(), zs.clone(), zs.clone());
                if s == 0 {
                    xp[c] += hh;
                    xm[c] -= hh;
                } else {
                    zp[c] += hh;
                    zm[c] -= hh;
                }
                let (gp, gm) = (cross_grad(&xp, &zp, &ps), cross_grad(&xm, &zm, &ps));
                for r in 0..n {
                    let d = (gp.0[r] - gm.0[r]) / (2.0 * hh);
                    let g = if s == 0 { hxx[r][c] } else { hxz[r][c] };
                    assert!(close(g, d, 1e-6), "({n}, {m}) x row {r}, slice {s} col {c}: {g} vs {d}");
                }
                for r in 0..m {
                    let d = (gp.1[r] - gm.1[r]) / (2.0 * hh);
                    let g = if s == 0 { hzx[r][c] } else { hzz[r][c] };
                    assert!(close(g, d, 1e-6), "({n}, {m}) z row {r}, slice {s} col {c}: {g} vs {d}");
                }
            }
        }
        for i in 0..n {
            for j in 0..m {
                assert!(
                    close(hxz[i][j], hzx[j][i], 1e-12),
                    "({n}, {m}): symmetric blocks at {i} {j}"
                );
            }
        }
        // A slice of floats beside a slice of arrays: the mixed blocks' shapes and values.
        let ((axx, axp), (apx, app)) = cross_arrays_hessian(&xs, &zs, &ps);
        assert_eq!(axx, hxx);
        assert_eq!((axp.len(), apx.len(), app.len()), (n, 2, 2));
        let hp = |x: &[f64], p: &[[f64; 2]]| cross_arrays_grad(x, &zs, p);
        for c in 0..2 {
            for b in 0..2 {
                let (mut pp, mut pm) = (ps.clone(), ps.clone());
                pp[c][b] += hh;
                pm[c][b] -= hh;
                let (gp, gm) = (hp(&xs, &pp), hp(&xs, &pm));
                for r in 0..n {
                    let d = (gp.0[r] - gm.0[r]) / (2.0 * hh);
                    assert!(close(axp[r][c][b], d, 1e-6), "x row {r}, p col {c} {b}");
                }
                for r in 0..2 {
                    for a in 0..2 {
                        let d = (gp.1[r][a] - gm.1[r][a]) / (2.0 * hh);
                        assert!(close(app[r][a][c][b], d, 1e-6), "p row {r} {a}, p col {c} {b}");
                        assert!(close(app[r][a][c][b], app[c][b][r][a], 1e-12));
                    }
                }
                for r in 0..n {
                    assert!(close(apx[c][b][r], axp[r][c][b], 1e-12), "symmetric mixed blocks");
                }
            }
        }
    }
}

#[test]
fn a_hessian_in_two_slices_into_a_buffer() {
    let (xs, zs, ps) = (points(3), points(5), vec![[0.4, -0.9]]);
    let rows = |r: usize, c: usize| vec![vec![f64::NAN; c]; r];
    let mut h = ((rows(3, 3), rows(3, 5)), (rows(5, 3), rows(5, 5)));
    cross_hessian_into(&xs, &zs, &ps, &mut h);
    assert_eq!(h, cross_hessian(&xs, &zs, &ps));
}
