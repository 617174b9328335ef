//! Derivatives of ordinary functions that a small defect in the engine would make wrong,
//! each checked at ordinary points against central finite differences and against the
//! other mode (interpreted; the compiled counterparts are in `tests/mutant_regressions.rs`).
//!
//! Each test names the defect it catches (a mutant that survived the rest of the suite):
//! - `powf(x, 1.0)`: the special-cased partial `1` of a literal exponent one;
//! - a float literal passed to a call gets a zero tangent (not a unit one);
//! - the adjoint of a tuple field goes to that field (not to field 0), in and across loops;
//! - CSE merges `a + b` with `b + a` but never `a - b` with `b - a` (nor `a / b`, `b / a`);
//! - `min`/`max` derivatives at ordinary points and at NaN operands;
//! - `has_aux` on a one-element tuple or `()`: an error with diverging stand-ins, no panic
//!   (`stub_types.rs` reads `(output, aux)` only off a pair).
//!
//! Every transform is checked raw and after `simplify` (the pipeline the macros run).

mod common;

use common::*;
use fluxion_engine::simplify::simplify;
use fluxion_engine::{expand, Transform};

/// Cross-mode tolerance in ulps of the largest Jacobian entry: forward and reverse mode
/// sum the same few products in different orders.
const ULPS: f64 = 16.0;

/// The harness of `src` (float arguments shaped by `template`), with callees, raw or with
/// every transform simplified as the macros do.
fn harness(src: &str, template: Vec<Value>, callees: &[&str], simplified: bool) -> Harness {
    let f = lower(src).unwrap_or_else(|e| panic!("{e}"));
    let mut h = Harness::new(src, f, template, &RuleTable::standard());
    for c in callees {
        let g = lower(c).unwrap_or_else(|e| panic!("{e}"));
        h.env.funcs.insert(g.name.clone(), g);
    }
    if simplified {
        for f in [&mut h.fwd, &mut h.rev].into_iter().flatten() {
            simplify(f);
        }
    }
    h
}

/// Reverse mode against finite differences and forward mode against reverse mode, at each
/// point, raw and simplified. Returns the reverse-mode Jacobians (raw) for exact checks.
fn check(src: &str, template: Vec<Value>, callees: &[&str], points: &[&[f64]]) -> Vec<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for simplified in [false, true] {
        let h = harness(src, template.clone(), callees, simplified);
        for x in points {
            let at = |what: &str| {
                format!(
                    "`{src}`{}: {what} at {x:?}",
                    if simplified { " (simplified)" } else { "" }
                )
            };
            let fd = h.fd_jacobian(x).unwrap_or_else(|e| panic!("{e}"));
            let rev = h.jac_rev(x).unwrap_or_else(|e| panic!("{e}"));
            let fwd = h.jac_fwd(x).unwrap_or_else(|e| panic!("{e}"));
            compare(&at("vjp vs finite differences"), &rev, &fd, fd_close).unwrap_or_else(|e| panic!("{e}"));
            compare(&at("jvp vs finite differences"), &fwd, &fd, fd_close).unwrap_or_else(|e| panic!("{e}"));
            let s = max_abs(&rev);
            compare(&at("jvp vs vjp"), &fwd, &rev, |a, b| ulps_close(a, b, ULPS, s)).unwrap_or_else(|e| panic!("{e}"));
            if !simplified {
                out.push(rev);
            }
        }
    }
    out
}

fn f(v: f64) -> Value {
    Value::F(v)
}

fn arr(n: usize) -> Value {
    Value::Arr(vec![Value::F(0.0); n])
}

/// `x.powf(1.0) * 3.0` has derivative 3 (the literal exponent one has its own partial).
#[test]
fn powf_of_literal_one_has_unit_partial() {
    let jacs = check(
        "fn f(x: f64) -> f64 { x.powf(1.0) * 3.0 }",
        vec![f(0.0)],
        &[],
        &[&[0.7], &[1.3], &[2.9]],
    );
    for j in jacs {
        assert_eq!(j, vec![vec![3.0]]);
    }
    // Exponent one next to a variable exponent and a literal two.
    check(
        "fn f(x: f64, y: f64) -> f64 { x.powf(1.0) * y.powf(2.0) + x.powf(y) }",
        vec![f(0.0), f(0.0)],
        &[],
        &[&[0.7, 1.2], &[1.9, -0.4]],
    );
}

/// A float literal passed to a differentiable function is a constant: its tangent is zero,
/// so `helper(x, 2.0)` differentiates only through `helper`'s first argument.
#[test]
fn literal_call_argument_has_zero_tangent() {
    let helper = "fn helper(a: f64, b: f64) -> f64 { a * b + b.sin() * a.exp() }";
    check(
        "fn f(x: f64) -> f64 { helper(x, 2.0) }",
        vec![f(0.0)],
        &[helper],
        &[&[0.3], &[-1.1]],
    );
    // The literal first, and a second call with the variable in both places.
    check(
        "fn f(x: f64) -> f64 { helper(0.5, x) + helper(x, x) * helper(x, -1.5) }",
        vec![f(0.0)],
        &[helper],
        &[&[0.3], &[-1.1]],
    );
}

const POLAR: &str = "fn polar(p: [f64; 2]) -> (f64, f64) { (p[0].hypot(p[1]), p[1].atan2(p[0])) }";

/// The cotangent of a field of a tuple returned by a call goes to that field, whether the
/// tuple is bound in a loop body, bound before the loop, or read in a branch of the loop.
#[test]
fn tuple_field_adjoints_reach_their_field() {
    let points: &[&[f64]] = &[&[1.2, 0.7], &[-0.4, 1.5]];
    // Bound in the loop, only the angle used.
    check(
        "fn f(p: [f64; 2]) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                let (_r, t) = polar(p);
                s += t * (i as f64 + 1.0);
            }
            s
        }",
        vec![arr(2)],
        &[POLAR],
        points,
    );
    // Bound in the loop, both fields used with different weights.
    check(
        "fn f(p: [f64; 2]) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                let (r, t) = polar(p);
                s += 0.5 * r + t * (i as f64);
            }
            s
        }",
        vec![arr(2)],
        &[POLAR],
        points,
    );
    // Bound before the loop, fields read inside it.
    check(
        "fn f(p: [f64; 2]) -> f64 {
            let (r, t) = polar(p);
            let mut s = 0.0;
            for i in 0..3 {
                s += t * t * (i as f64) - r;
            }
            s
        }",
        vec![arr(2)],
        &[POLAR],
        points,
    );
    // The tuple itself (annotated) read in the loop: its adjoint accumulates whole tuples.
    check(
        "fn f(p: [f64; 2]) -> f64 {
            let q: (f64, f64) = polar(p);
            let mut s = 0.0;
            for i in 0..3 {
                if i > 0 {
                    s += q.1 * q.0;
                } else {
                    s += q.1.sin();
                }
            }
            s
        }",
        vec![arr(2)],
        &[POLAR],
        points,
    );
    // Bound in the loop, the angle read in a branch.
    check(
        "fn f(p: [f64; 2]) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                let (r, t) = polar(p);
                if i > 0 {
                    s += t.sin();
                } else {
                    s += r;
                }
            }
            s
        }",
        vec![arr(2)],
        &[POLAR],
        points,
    );
}

/// `a - b` and `b - a` (and `a / b`, `b / a`) are different values: CSE must keep both.
#[test]
fn cse_does_not_commute_sub_or_div() {
    let points: &[&[f64]] = &[&[0.4, 1.3], &[1.7, -0.6]];
    check(
        "fn f(x: [f64; 2]) -> f64 { (x[0] - x[1]).sin() + (x[1] - x[0]).exp() }",
        vec![arr(2)],
        &[],
        points,
    );
    check(
        "fn f(x: [f64; 2]) -> f64 { (x[0] / x[1]).sin() + (x[1] / x[0]).cos() }",
        vec![arr(2)],
        &[],
        points,
    );
    check(
        "fn f(x: f64, y: f64) -> f64 { let a = x - y; let b = y - x; a * a * a + b * 2.0 }",
        vec![f(0.0), f(0.0)],
        &[],
        points,
    );
    // `+` and `*` do commute: those merges stay.
    check(
        "fn f(x: f64, y: f64) -> f64 { (x + y).sin() * (y + x).cos() + (x * y) / (y * x + 3.0) }",
        vec![f(0.0), f(0.0)],
        &[],
        points,
    );
}

/// `min`/`max` at ordinary points (either operand smaller) and the NaN convention: the NaN
/// operand gets `0`, the other `1` (`f64::min`/`f64::max` return the other operand).
#[test]
fn min_and_max_derivatives() {
    for src in [
        "fn f(x: f64, y: f64) -> f64 { x.min(y) * 3.0 + x.max(y) * 5.0 }",
        "fn f(x: f64, y: f64) -> f64 { (x * x).min(y.sin()) + (x * y).max(y - x) }",
    ] {
        check(
            src,
            vec![f(0.0), f(0.0)],
            &[],
            &[&[0.4, 1.3], &[1.7, -0.6], &[-0.8, 0.9], &[2.0, -2.5]],
        );
    }
    let h = harness(
        "fn f(x: f64, y: f64) -> f64 { x.min(y) * 3.0 + x.max(y) * 5.0 }",
        vec![f(0.0), f(0.0)],
        &[],
        true,
    );
    for (x, want) in [
        ([2.0, 1.0], [5.0, 3.0]),
        ([1.0, 2.0], [3.0, 5.0]),
        ([1.5, 1.5], [4.0, 4.0]),
        ([f64::NAN, 1.0], [0.0, 8.0]),
        ([1.0, f64::NAN], [8.0, 0.0]),
    ] {
        let fwd = h.jac_fwd(&x).unwrap_or_else(|e| panic!("{e}"));
        let rev = h.jac_rev(&x).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fwd, vec![want.to_vec()], "jvp at {x:?}");
        assert_eq!(rev, vec![want.to_vec()], "vjp at {x:?}");
    }
}

/// `has_aux` on a result that is not a pair, here a one-element tuple and `()`: the error,
/// and stand-ins that diverge. The stand-ins' types (`stub_types::promised`) take the output
/// and the aux value only from a pair, never indexing past a shorter tuple.
#[test]
fn has_aux_on_a_short_tuple_is_an_error_not_a_panic() {
    for (ret, body) in [("(f64,)", "(x,)"), ("()", "()")] {
        let src = format!("fn f(x: f64) -> {ret} {{ {body} }}");
        let item: proc_macro2::TokenStream = src.parse().unwrap_or_else(|e| panic!("{e}"));
        let args: proc_macro2::TokenStream = "has_aux".parse().unwrap_or_else(|e| panic!("{e}"));
        let r = std::panic::catch_unwind(move || expand(Transform::Grad, args, item));
        let out = r
            .unwrap_or_else(|_| panic!("expansion panicked on `{src}`"))
            .unwrap_or_else(|e| panic!("`{src}`: {e}"))
            .to_string();
        assert!(out.contains("compile_error"), "`{src}`: no error in {out}");
        assert!(out.contains("fn f_grad (arg0 : f64) -> !"), "`{src}`: stand-in {out}");
    }
}

/// A tape's size counts the padding rustc puts in a tuple (`(f64, u8)` is 16 bytes, not 9),
/// so a tape of such tuples goes to the heap at the same 64 KiB as rustc counts them.
#[test]
fn tuple_sizes_count_padding() {
    use fluxion_engine::ir::{FloatTy, Ty};
    let f64_ = Ty::Float(Some(FloatTy::F64));
    let u8_ = Ty::Int(Some("u8".into()));
    let f32_ = Ty::Float(Some(FloatTy::F32));
    assert_eq!(Ty::Tuple(vec![f64_.clone(), u8_.clone()]).known_bytes(), Some(16));
    assert_eq!(Ty::Tuple(vec![f32_.clone(), u8_.clone()]).known_bytes(), Some(8));
    assert_eq!(Ty::Tuple(vec![f32_.clone(), f32_]).known_bytes(), Some(8));
    assert_eq!(Ty::Tuple(vec![u8_.clone(), u8_]).known_bytes(), Some(2));
    assert_eq!(Ty::Tuple(vec![]).known_bytes(), Some(0));
    assert_eq!(std::mem::size_of::<(f64, u8)>(), 16);
    assert_eq!(std::mem::size_of::<(f32, u8)>(), 8);
}

/// Names bound by reference in a tuple pattern (`ref mut a`, `ref b`) are the error of an
/// unsupported element, not mutable names.
#[test]
fn a_tuple_pattern_binds_no_references() {
    for pat in ["(ref mut a, b)", "(a, ref b)", "(mut a, ref mut b)"] {
        let src = format!("fn f(x: (f64, f64)) -> f64 {{ let {pat} = x; a + b }}");
        let e = lower(&src).err().unwrap_or_else(|| panic!("{src}: no error"));
        assert!(
            e.contains("only names, `mut` names and `_` are supported in tuple patterns"),
            "{src}: {e}"
        );
    }
}
