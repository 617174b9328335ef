//! The generated functions themselves (`grad`, `jacfwd`, `hessian` as the macros build
//! them, simplified, with literal seeds), interpreted and checked against central finite
//! differences and against each other.
//!
//! `programs.rs` and `rules.rs` call `jvp`/`vjp` with tangents and cotangents passed as
//! arguments; here the seeds are the literal `1.0`s and basis vectors of the transforms,
//! so the builder's folding of literals (`1 * x`, `-1 * lit`, products of literal
//! partials) is what computes the numbers.
//!
//! Tolerances: as in `common/mod.rs` (`fd_close`); `grad` and `jacfwd` agree to 16 ulps of
//! the largest entry (the same products summed in other orders); the Hessian against
//! central differences of the interpreted `grad` (`fd_close`).

mod common;

use common::*;
use fluxion_engine::attr::{Argnums, Options};
use fluxion_engine::ir::Ty;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad, hessian, jacfwd, Site};
use proc_macro2::Span;

/// Scalar functions of one `[f64; 3]`, with literals of every kind in derivative positions:
/// non-integer, negative, `1`, `-1`, integer-valued, products and sums of literals.
const CORPUS: &[&str] = &[
    "fn f(x: [f64; 3]) -> f64 { -(0.5 * x[0]) * 3.0 + x[1] / 1.0 - (x[2] * -1.0).exp() }",
    "fn f(x: [f64; 3]) -> f64 { 0.1 * (0.3 * x[0]) + 2.0 * (3.0 * x[1]) - 1.5 * (-2.5 * x[2]) }",
    "fn f(x: [f64; 3]) -> f64 { x[0] * 2.0 + x[0] * 3.0 - x[1] * 0.25 - x[1] * 0.5 + x[2] * x[2] * -4.0 }",
    "fn f(x: [f64; 3]) -> f64 { -(x[0].cos()) * x[1] - (-x[2]).sin() / x[0].exp() }",
    "fn f(x: [f64; 3]) -> f64 { (x[0] - x[1]).tanh() * (x[2] - x[0]).atan() + (x[1] / x[2]).sinh() }",
    "fn f(x: [f64; 3]) -> f64 { x[0].hypot(x[1]) + x[1].atan2(x[2]) - x[2].mul_add(x[0], -x[1]) }",
    "fn f(x: [f64; 3]) -> f64 { x[0].powi(3) - x[1].powi(-2) * 0.5 + x[2].powf(1.0) * 3.0 + x[0].abs().powf(2.5) }",
    "fn f(x: [f64; 3]) -> f64 { (x[0] * x[0] + 1.0).sqrt().ln() + (x[1] * x[1] + 2.0).log2() - (x[2] * x[2] + 0.5).log10() }",
    "fn f(x: [f64; 3]) -> f64 { x[0].min(x[1]) * 3.0 - x[1].max(x[2]) * 5.0 + x[2].exp2() - x[0].exp_m1() }",
    "fn f(x: [f64; 3]) -> f64 { (x[0] * 0.3).asin() + (x[1] * 0.2).acos() * -1.0 + (x[2] * 0.5).ln_1p() + x[0].cbrt() }",
    "fn f(x: [f64; 3]) -> f64 { x[0].recip() - x[1].cosh() * x[2].tan() + x[1] * x[2] / (x[0] * x[0] + 1.0) }",
    "fn f(x: [f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { s -= x[i] * (i as f64 - 1.5); s *= 0.5; } s * s }",
    "fn f(x: [f64; 3]) -> f64 { let mut s = 1.0; for i in 0..3 { if x[i] > 0.0 { s = s * x[i] - 1.0; } else { s = -s + x[i]; } } s }",
    // Snapshots of mutable variables (`let a = s;` before `s` changes) must not be forwarded.
    "fn f(x: [f64; 3]) -> f64 { let mut s = x[0]; let a = s; s = s * x[1]; s += a * x[2]; let b = s; s = s.sin(); a * b + s }",
    "fn f(x: [f64; 3]) -> f64 { let mut v = [x[0], x[1], x[2]]; let w = v; for i in 0..3 { v[i] = v[i] * w[2 - i] + 1.0; } v[0] * w[1] - v[2] }",
    // Reads of a mutable array at one index, before and after a write there: not merged.
    "fn f(x: [f64; 3]) -> f64 { let mut v = [x[0], x[1], x[2]]; let a = v[0]; v[0] = a * x[1]; let b = v[0]; v[0] = b.sin() + x[2]; let c = v[0]; a * b + c * x[0] }",
    // `let mut s = lit; s += lit;` folds only from a zero into its own variable.
    "fn f(x: [f64; 3]) -> f64 { let mut s = 2.0; s += 1.0; let mut a = 0.0; s += 1.5; a += s * x[1]; s * a * x[0] + x[2] }",
    // `let t = e; let mut y = t;` folds only for the binding just before, used once.
    "fn f(x: [f64; 3]) -> f64 { let t = x[0] * 2.0; let u = x[1] * 3.0; let mut y = t; y += u; y * t + x[2] }",
    "fn f(x: [f64; 3]) -> f64 { let a = x[0] * 2.0; let b = x[1] * 3.0; let mut y = a; y += b; y * x[2] }",
    // A value read from a mutable array in a loop, which the loop then overwrites: the
    // reverse sweep must use the value read (taped), not the array's later contents.
    "fn f(x: [f64; 3]) -> f64 { let mut v = [x[0], x[1], x[2]]; let mut s = 0.0; for i in 0..3 { let t = v[i]; v[i] = t * t + 0.5; s += t.sin() * v[i]; } s + v[1] * v[2] }",
    "fn f(x: [f64; 3]) -> f64 { let mut v = [x[0], x[1], x[2]]; let mut s = 0.0; for i in 0..3 { let t = v[0]; v[0] = t * x[i] + 0.5; s += t.sin(); } s * v[0] }",
];

/// Points of ordinary behaviour for every function of the corpus (no ties, no zeros,
/// inside every domain).
const POINTS: [[f64; 3]; 3] = [[0.7, -1.3, 0.4], [1.9, 0.6, -0.8], [-0.45, 1.1, 1.7]];

/// Cross-mode tolerance in ulps of the largest entry.
const ULPS: f64 = 16.0;

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

fn arr(x: &[f64]) -> Value {
    Value::Arr(x.iter().map(|&v| Value::F(v)).collect())
}

struct Generated {
    f: Func,
    grad: Func,
    jacfwd: Func,
    hessian: Func,
}

fn generate(src: &str) -> Generated {
    let f = lower(src).unwrap_or_else(|e| panic!("{e}"));
    let rules = RuleTable::standard();
    let o = |t| Options::new(t, Span::call_site());
    let grad = grad(&f, &o(Transform::Grad), &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    let jacfwd = jacfwd(&f, &o(Transform::Jacfwd), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    let hessian = hessian(&f, &o(Transform::Hessian), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    Generated {
        f,
        grad,
        jacfwd,
        hessian,
    }
}

fn run(f: &Func, x: &[f64]) -> Vec<f64> {
    let v = Env::default()
        .eval(f, &[arr(x)])
        .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    flat(&v)
}

/// Central differences of `g` (vector valued) at `x`: `out[i][j] = ∂g_i/∂x_j`.
fn fd(g: &Func, x: &[f64]) -> Vec<Vec<f64>> {
    let cols: Vec<Vec<f64>> = (0..x.len())
        .map(|j| {
            let h = fd_step(x[j]);
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += h;
            xm[j] -= h;
            let (yp, ym) = (run(g, &xp), run(g, &xm));
            yp.iter().zip(&ym).map(|(a, b)| (a - b) / (xp[j] - xm[j])).collect()
        })
        .collect();
    transpose(&cols)
}

#[test]
fn generated_grad_jacfwd_and_hessian_match_finite_differences() {
    for src in CORPUS {
        let g = generate(src);
        for x in POINTS {
            let at = |what: &str| format!("`{src}`: {what} at {x:?}");
            let grad = vec![run(&g.grad, &x)];
            let fwd = vec![run(&g.jacfwd, &x)];
            compare(&at("grad vs finite differences"), &grad, &fd(&g.f, &x), fd_close)
                .unwrap_or_else(|e| panic!("{e}"));
            let s = max_abs(&grad);
            compare(&at("jacfwd vs grad"), &fwd, &grad, |a, b| ulps_close(a, b, ULPS, s))
                .unwrap_or_else(|e| panic!("{e}"));
            let h: Vec<Vec<f64>> = run(&g.hessian, &x).chunks(3).map(<[f64]>::to_vec).collect();
            compare(
                &at("hessian vs finite differences of grad"),
                &h,
                &fd(&g.grad, &x),
                fd_close,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// A column of `jacfwd` carries only what depends on its input element: the other elements'
/// tangents are structural zeros, not `0.0`, so an infinite partial (`sqrt'(0)`) does not
/// turn another column into `inf · 0 = NaN`. Exact, and equal to `grad`.
#[test]
fn jacfwd_columns_keep_other_elements_infinite_partials_out() {
    let g = generate("fn f(x: [f64; 3]) -> f64 { x[0].sqrt() * 2.0 + x[1] * x[2] }");
    let x = [0.0, 1.5, -2.0];
    let want = [f64::INFINITY, -2.0, 1.5];
    assert_eq!(run(&g.jacfwd, &x), want);
    assert_eq!(run(&g.grad, &x), want);
}

/// `argnums` selects the cotangents of the chosen arguments only: an integer argument and
/// an undifferentiated float before the chosen one do not shift the result.
#[test]
fn grad_with_argnums_after_other_arguments() {
    let src = "fn f(n: i32, x: f64, y: f64) -> f64 { (x * y).sin() * (n as f64) + x * x * y }";
    let f = lower(src).unwrap_or_else(|e| panic!("{e}"));
    let rules = RuleTable::standard();
    let span = Span::call_site();
    let (n, x, y) = (3, 0.7, -1.3);
    let args = [Value::I(n), Value::F(x), Value::F(y)];
    let want_x = (x * y).cos() * y * 3.0 + 2.0 * x * y;
    let want_y = (x * y).cos() * x * 3.0 + x * x;
    for (argnums, want) in [
        (Argnums::One(2, span), vec![want_y]),
        (Argnums::One(1, span), vec![want_x]),
        (Argnums::Many(vec![(1, span), (2, span)]), vec![want_x, want_y]),
    ] {
        let mut o = Options::new(Transform::Grad, span);
        o.argnums = Some(argnums);
        let g = grad(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{e:?}"));
        let got = flat(&Env::default().eval(&g, &args).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (a, b) in got.iter().zip(&want) {
            assert!(ulps_close(*a, *b, ULPS, 1.0), "{got:?} vs {want:?}");
        }
    }
}

/// A nalgebra column vector `SVector<f64, 3>` (a `Ty::Matrix` of 3 rows and 1 column,
/// indexed `x[i]` as row `i`, column 0) in place of `[f64; 3]`: every function of the
/// corpus gives bit for bit the derivatives of its array version, which the test above
/// checks against finite differences; the Hessian is a 3x3 matrix in JAX's layout.
#[test]
fn nalgebra_vectors_give_the_derivatives_of_arrays() {
    let column = |x: &[f64]| Value::Arr(x.iter().map(|&v| Value::Arr(vec![Value::F(v)])).collect());
    for src in CORPUS {
        let by_array = generate(src);
        let msrc = src.replacen("x: [f64; 3]", "x: SVector<f64, 3>", 1);
        let by_vector = generate(&msrc);
        assert!(
            matches!(&by_vector.f.params[0].ty, Ty::Matrix { cols, .. } if cols.is_one()),
            "{msrc}: {:?}",
            by_vector.f.params[0].ty
        );
        assert!(matches!(by_vector.hessian.ret_ty, Ty::Matrix { .. }), "{msrc}");
        for x in POINTS {
            for (a, v) in [
                (&by_array.grad, &by_vector.grad),
                (&by_array.jacfwd, &by_vector.jacfwd),
                (&by_array.hessian, &by_vector.hessian),
            ] {
                let want = run(a, &x);
                let got = flat(
                    &Env::default()
                        .eval(v, &[column(&x)])
                        .unwrap_or_else(|e| panic!("{msrc}: {e}")),
                );
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{msrc}: {} at {x:?}", v.name);
            }
        }
    }
}

/// A Hessian in a slice is built only for a scalar function (or a scalar and its aux) of
/// slices of floats or of arrays of floats; every other Hessian in a slice (beside another
/// argument, of a non-scalar function, in a slice of tuples) is the error naming the slice.
#[test]
fn a_hessian_in_a_slice_only_of_a_scalar_function_of_one_slice() {
    let rules = RuleTable::standard();
    let span = Span::call_site();
    let body = "let mut s = 0.0; for i in 0..xs.len() { s += xs[i] * xs[i] * w; }";
    let cases = [
        // A tuple without `has_aux` is not a scalar.
        (
            format!("fn f(xs: &[f64], w: f64) -> (f64, f64) {{ {body} (s, s) }}"),
            false,
            Argnums::One(0, span),
        ),
        // Nor is an array.
        (
            format!("fn f(xs: &[f64], w: f64) -> [f64; 2] {{ {body} [s, w] }}"),
            false,
            Argnums::One(0, span),
        ),
        // The slice beside another argument.
        (
            format!("fn f(xs: &[f64], w: f64) -> f64 {{ {body} s }}"),
            false,
            Argnums::Many(vec![(0, span), (1, span)]),
        ),
        // A slice of tuples: not floats, nor arrays of them.
        (
            "fn f(xs: &[(f64, f64)], w: f64) -> f64 { let mut s = 0.0; for i in 0..xs.len() { s += xs[i].0 * xs[i].1 * w; } s }"
                .to_string(),
            false,
            Argnums::One(0, span),
        ),
        // The scalar of a tuple with `has_aux` is.
        (
            format!("fn f(xs: &[f64], w: f64) -> (f64, f64) {{ {body} (s, w) }}"),
            true,
            Argnums::One(0, span),
        ),
        (
            format!("fn f(xs: &[f64], w: f64) -> f64 {{ {body} s }}"),
            false,
            Argnums::One(0, span),
        ),
        (
            "fn f(xs: &[[f64; 2]], w: f64) -> f64 { let mut s = 0.0; for i in 0..xs.len() { s += xs[i][0] * xs[i][1] * w; } s }"
                .to_string(),
            false,
            Argnums::One(0, span),
        ),        // Two slices.
        (
            "fn f(xs: &[f64], zs: &[f64]) -> f64 { let mut s = 0.0; for i in 0..xs.len() { s += xs[i] * zs[i]; } s }"
                .to_string(),
            false,
            Argnums::Many(vec![(0, span), (1, span)]),
        ),
    ];
    for (k, (src, aux, argnums)) in cases.into_iter().enumerate() {
        let f = lower(&src).unwrap_or_else(|e| panic!("{e}"));
        let mut o = Options::new(Transform::Hessian, span);
        o.argnums = Some(argnums);
        o.has_aux = aux;
        let r = hessian(&f, &o, &site(), &rules);
        if k < 4 {
            let e = format!("{:?}", r.err().unwrap_or_else(|| panic!("{src}: no error")));
            assert!(
                e.contains("`hessian` with respect to the slice `xs` is not supported yet"),
                "{src}: {e}"
            );
        } else {
            r.unwrap_or_else(|e| panic!("{src}: {e:?}"));
        }
    }
}
