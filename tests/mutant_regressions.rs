//! Compiled derivatives of ordinary functions that a small defect in the engine or the
//! runtime would make wrong (each defect survived the rest of the suite), checked at
//! ordinary points against central finite differences and against the other mode, and
//! exactly where the value is known. The interpreted counterparts are in
//! `macros/engine/tests/mutant_regressions.rs`.
//!
//! Also the `min`/`max` convention at ties (`0.5`/`0.5`) and NaN operands (the NaN one gets
//! `0`, the other `1`), exactly: the runtime's `min_da`/`max_da` are only reached from
//! compiled code. The other conventions are in `tests/edge_conventions.rs`.
//!
//! Also the runtime's storage helpers: `_into` forms that accumulate into the caller's
//! buffer clear it first (`fill_zero`), and tapes stay on the stack up to
//! `TAPE_STACK_BYTES` whether the loop bound is a literal (the engine's `Ty::known_bytes`)
//! or a named constant (the runtime's `TapeStorage`); a global allocator counts each
//! thread's allocations.

// The differentiated bodies are written in the supported subset on purpose.
#![allow(clippy::needless_range_loop)]

use fluxion::{differentiable, grad, jacfwd};

include!("support/both.rs");

/// Central-difference step (`~cbrt(eps)`, scaled by the point) and tolerance: truncation and
/// rounding errors are ~1e-11 for these O(1) functions, a wrong rule is off by O(1).
const STEP: f64 = 6e-6;
const FD_TOL: f64 = 1e-6;

/// `∂f/∂x_i` at `x` by central differences.
fn fd<const N: usize>(f: impl Fn([f64; N]) -> f64, x: [f64; N]) -> [f64; N] {
    std::array::from_fn(|i| {
        let h = STEP * x[i].abs().max(1.0);
        let (mut xp, mut xm) = (x, x);
        xp[i] += h;
        xm[i] -= h;
        (f(xp) - f(xm)) / (xp[i] - xm[i])
    })
}

/// A gradient against finite differences and against the forward-mode one (a few ulps).
#[track_caller]
fn check_grad<const N: usize>(what: &str, x: [f64; N], f: impl Fn([f64; N]) -> f64, rev: [f64; N], fwd: [f64; N]) {
    let d = fd(f, x);
    let scale = rev.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for i in 0..N {
        assert!(
            (rev[i] - d[i]).abs() <= FD_TOL * d[i].abs().max(1.0),
            "{what} at {x:?}: reverse mode {rev:?}, finite differences {d:?}"
        );
        assert!(
            (rev[i] - fwd[i]).abs() <= 16.0 * f64::EPSILON * scale,
            "{what} at {x:?}: reverse mode {rev:?}, forward mode {fwd:?}"
        );
    }
}

/// Ordinary points of the plane (no ties, no zeros).
const POINTS: [[f64; 2]; 4] = [[0.4, 1.3], [1.7, -0.6], [-0.8, 0.9], [2.0, -2.5]];

// ---------------------------------------------------------------------------------------
// `powf(x, 1.0)`: the special-cased partial of a literal exponent one is `1`.
// ---------------------------------------------------------------------------------------

both!(
    pow_one_r,
    pow_one_f,
    (),
    fn pow_one(x: f64) -> f64 {
        x.powf(1.0) * 3.0
    }
);

both!(
    pow_mixed_r,
    pow_mixed_f,
    (argnums = (0, 1)),
    fn pow_mixed(x: f64, y: f64) -> f64 {
        x.powf(1.0) * y.powf(2.0) + x.powf(y)
    }
);

#[test]
fn powf_literal_one() {
    for x in [0.7, 1.3, 2.9] {
        assert_eq!(pow_one_r_grad(x), 3.0, "grad at {x}");
        assert_eq!(pow_one_f_jacfwd(x), 3.0, "jacfwd at {x}");
        check_grad(
            "x.powf(1.0) * 3.0",
            [x],
            |[x]| pow_one(x),
            [pow_one_r_grad(x)],
            [pow_one_f_jacfwd(x)],
        );
    }
    for [x, y] in [[0.7, 1.2], [1.9, -0.4], [1.1, 2.5]] {
        let (r, f) = (pow_mixed_r_grad(x, y), pow_mixed_f_jacfwd(x, y));
        check_grad("pow_mixed", [x, y], |[x, y]| pow_mixed(x, y), [r.0, r.1], [f.0, f.1]);
    }
}

// ---------------------------------------------------------------------------------------
// A float literal passed to a call is a constant: its tangent is zero.
// ---------------------------------------------------------------------------------------

#[differentiable]
fn helper(a: f64, b: f64) -> f64 {
    a * b + b.sin() * a.exp()
}

both!(
    lit_arg_r,
    lit_arg_f,
    (),
    fn lit_arg(x: f64) -> f64 {
        helper(x, 2.0)
    }
);

both!(
    lit_args_r,
    lit_args_f,
    (),
    fn lit_args(x: f64) -> f64 {
        helper(0.5, x) + helper(x, x) * helper(x, -1.5)
    }
);

#[differentiable]
fn helper32(a: f32, b: f32) -> f32 {
    a * b + b.sin() * a.exp()
}

#[jacfwd]
fn lit_arg32(x: f32) -> f32 {
    helper32(x, 2.0)
}

#[test]
fn literal_call_arguments() {
    for x in [0.3f64, -1.1, 1.6] {
        // d/dx helper(x, 2) = 2 + sin(2) e^x.
        let want = 2.0 + 2.0f64.sin() * x.exp();
        let got = lit_arg_f_jacfwd(x);
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
            "jacfwd at {x}: {got}, want {want}"
        );
        check_grad(
            "helper(x, 2.0)",
            [x],
            |[x]| lit_arg(x),
            [lit_arg_r_grad(x)],
            [lit_arg_f_jacfwd(x)],
        );
        check_grad(
            "helper(0.5, x) + ..",
            [x],
            |[x]| lit_args(x),
            [lit_args_r_grad(x)],
            [lit_args_f_jacfwd(x)],
        );
        let x32 = x as f32;
        let want32 = 2.0 + 2.0f32.sin() * x32.exp();
        let got32 = lit_arg32_jacfwd(x32);
        assert!(
            (got32 - want32).abs() <= 4.0 * f32::EPSILON * want32.abs(),
            "f32 jacfwd at {x}: {got32}, want {want32}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The adjoint of a tuple field goes to that field, in and across loops.
// ---------------------------------------------------------------------------------------

#[differentiable]
fn polar(p: [f64; 2]) -> (f64, f64) {
    (p[0].hypot(p[1]), p[1].atan2(p[0]))
}

both!(
    angle_in_loop_r,
    angle_in_loop_f,
    (),
    fn angle_in_loop(p: [f64; 2]) -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            let (_r, t) = polar(p);
            s += t * (i as f64 + 1.0);
        }
        s
    }
);

both!(
    both_in_loop_r,
    both_in_loop_f,
    (),
    fn both_in_loop(p: [f64; 2]) -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            let (r, t) = polar(p);
            s += 0.5 * r + t * (i as f64);
        }
        s
    }
);

both!(
    before_loop_r,
    before_loop_f,
    (),
    fn before_loop(p: [f64; 2]) -> f64 {
        let (r, t) = polar(p);
        let mut s = 0.0;
        for i in 0..3 {
            s += t * t * (i as f64) - r;
        }
        s
    }
);

both!(
    in_branch_r,
    in_branch_f,
    (),
    fn in_branch(p: [f64; 2]) -> f64 {
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
    }
);

both!(
    whole_tuple_r,
    whole_tuple_f,
    (),
    fn whole_tuple(p: [f64; 2]) -> f64 {
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
    }
);

#[test]
fn tuple_fields_in_loops() {
    for p in [[1.2, 0.7], [-0.4, 1.5], [0.9, -2.0]] {
        check_grad(
            "angle_in_loop",
            p,
            angle_in_loop,
            angle_in_loop_r_grad(p),
            angle_in_loop_f_jacfwd(p),
        );
        check_grad(
            "both_in_loop",
            p,
            both_in_loop,
            both_in_loop_r_grad(p),
            both_in_loop_f_jacfwd(p),
        );
        check_grad(
            "before_loop",
            p,
            before_loop,
            before_loop_r_grad(p),
            before_loop_f_jacfwd(p),
        );
        check_grad("in_branch", p, in_branch, in_branch_r_grad(p), in_branch_f_jacfwd(p));
        check_grad(
            "whole_tuple",
            p,
            whole_tuple,
            whole_tuple_r_grad(p),
            whole_tuple_f_jacfwd(p),
        );
        // d/dp 6 atan2(p1, p0) = 6 (-p1, p0) / |p|^2.
        let n2 = p[0] * p[0] + p[1] * p[1];
        let want = [-6.0 * p[1] / n2, 6.0 * p[0] / n2];
        let g = angle_in_loop_r_grad(p);
        for k in 0..2 {
            assert!(
                (g[k] - want[k]).abs() <= 1e-14 * want[k].abs().max(1.0),
                "{g:?} vs {want:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// `a - b` and `b - a`, `a / b` and `b / a` are different values (CSE keeps both).
// ---------------------------------------------------------------------------------------

both!(
    diffs_r,
    diffs_f,
    (),
    fn diffs(x: [f64; 2]) -> f64 {
        (x[0] - x[1]).sin() + (x[1] - x[0]).exp()
    }
);

both!(
    quots_r,
    quots_f,
    (),
    fn quots(x: [f64; 2]) -> f64 {
        (x[0] / x[1]).sin() + (x[1] / x[0]).cos()
    }
);

both!(
    diffs2_r,
    diffs2_f,
    (argnums = (0, 1)),
    fn diffs2(x: f64, y: f64) -> f64 {
        let a = x - y;
        let b = y - x;
        a * a * a + b * 2.0
    }
);

#[test]
fn sub_and_div_do_not_commute() {
    for x in POINTS {
        check_grad("diffs", x, diffs, diffs_r_grad(x), diffs_f_jacfwd(x));
        check_grad("quots", x, quots, quots_r_grad(x), quots_f_jacfwd(x));
        let (r, f) = (diffs2_r_grad(x[0], x[1]), diffs2_f_jacfwd(x[0], x[1]));
        check_grad("diffs2", x, |[a, b]| diffs2(a, b), [r.0, r.1], [f.0, f.1]);
        // d/dx0 = cos(x0 - x1) - exp(x1 - x0).
        let want = (x[0] - x[1]).cos() - (x[1] - x[0]).exp();
        assert_eq!(diffs_r_grad(x)[0], want, "diffs at {x:?}");
    }
}

// ---------------------------------------------------------------------------------------
// `min` and `max`: ordinary points, ties and NaN operands (the runtime's `min_da`, `max_da`).
// ---------------------------------------------------------------------------------------

both!(
    minmax_r,
    minmax_f,
    (argnums = (0, 1)),
    fn minmax(x: f64, y: f64) -> f64 {
        x.min(y) * 3.0 + x.max(y) * 5.0
    }
);

both!(
    minmax2_r,
    minmax2_f,
    (argnums = (0, 1)),
    fn minmax2(x: f64, y: f64) -> f64 {
        (x * x).min(y.sin()) + (x * y).max(y - x)
    }
);

both!(
    min32_r,
    min32_f,
    (argnums = (0, 1)),
    fn min32(x: f32, y: f32) -> f32 {
        x.min(y) * 3.0 + x.max(y) * 5.0
    }
);

#[test]
fn min_and_max_at_ordinary_points() {
    for [x, y] in POINTS {
        let (r, f) = (minmax_r_grad(x, y), minmax_f_jacfwd(x, y));
        check_grad("minmax", [x, y], |[a, b]| minmax(a, b), [r.0, r.1], [f.0, f.1]);
        let want = if x < y { (3.0, 5.0) } else { (5.0, 3.0) };
        assert_eq!(r, want, "grad at {x}, {y}");
        assert_eq!(f, want, "jacfwd at {x}, {y}");
        let (r, f) = (minmax2_r_grad(x, y), minmax2_f_jacfwd(x, y));
        check_grad("minmax2", [x, y], |[a, b]| minmax2(a, b), [r.0, r.1], [f.0, f.1]);
        let want32 = if x < y { (3.0, 5.0) } else { (5.0, 3.0) };
        assert_eq!(min32_r_grad(x as f32, y as f32), want32, "f32 grad at {x}, {y}");
        assert_eq!(min32_f_jacfwd(x as f32, y as f32), want32, "f32 jacfwd at {x}, {y}");
    }
}

both!(
    min_only_r,
    min_only_f,
    (argnums = (0, 1)),
    fn min_only(x: f64, y: f64) -> f64 {
        x.min(y)
    }
);

both!(
    max_only_r,
    max_only_f,
    (argnums = (0, 1)),
    fn max_only(x: f64, y: f64) -> f64 {
        x.max(y)
    }
);

/// The documented convention, exactly: ties split `0.5`/`0.5`; a NaN operand gets `0` and
/// the other operand `1`, because `f64::min`/`f64::max` return the other operand.
#[test]
fn min_and_max_conventions_at_ties_and_nan() {
    let nan = f64::NAN;
    for (x, y, want) in [
        (1.5, 1.5, (0.5, 0.5)),
        (nan, 1.0, (0.0, 1.0)),
        (1.0, nan, (1.0, 0.0)),
        (2.0, 1.0, (0.0, 1.0)),
    ] {
        assert_eq!(min_only_r_grad(x, y), want, "min grad at ({x}, {y})");
        assert_eq!(min_only_f_jacfwd(x, y), want, "min jacfwd at ({x}, {y})");
    }
    for (x, y, want) in [
        (1.5, 1.5, (0.5, 0.5)),
        (nan, 1.0, (0.0, 1.0)),
        (1.0, nan, (1.0, 0.0)),
        (1.0, 2.0, (0.0, 1.0)),
    ] {
        assert_eq!(max_only_r_grad(x, y), want, "max grad at ({x}, {y})");
        assert_eq!(max_only_f_jacfwd(x, y), want, "max jacfwd at ({x}, {y})");
    }
    assert_eq!(min32_r_grad(f32::NAN, 1.0), (0.0, 8.0));
    assert_eq!(min32_f_jacfwd(1.0, f32::NAN), (8.0, 0.0));
}

// ---------------------------------------------------------------------------------------
// Products of literals in derivatives: folded only where exact in `f32` and `f64` alike
// (the literal's type is rustc's to choose), so an `f32` gradient is the `f32` product.
// ---------------------------------------------------------------------------------------

#[grad]
fn lit_prod32(x: f32) -> f32 {
    0.1 * (0.3 * x)
}

#[grad]
fn int_lit_prod32(x: f32) -> f32 {
    3.0 * (0.3 * x) + 0.3 * (7.0 * x)
}

#[grad]
fn int_result32(x: f32) -> f32 {
    100.0 * (0.3 * x)
}

#[grad]
fn lit_sum32(x: f32) -> f32 {
    x * 0.1 + x * 0.2
}

#[grad]
fn lit_prod64(x: f64) -> f64 {
    0.1 * (0.3 * x)
}

#[grad]
fn int_prod32(x: f32) -> f32 {
    -(3.0 * (2.0 * x))
}

#[test]
fn literal_products_keep_their_float_type() {
    // Folding `0.1 * 0.3` in f64 and rounding to f32 gives another f32.
    assert_ne!((0.1f32 * 0.3f32).to_bits(), ((0.1f64 * 0.3f64) as f32).to_bits());
    assert_eq!(lit_prod32_grad(2.0).to_bits(), (0.1f32 * 0.3f32).to_bits());
    assert_eq!(lit_sum32_grad(2.0).to_bits(), (0.1f32 + 0.2f32).to_bits());
    // An integer times a fraction: `3 * 0.3` is not exact either.
    assert_ne!((3.0f32 * 0.3f32).to_bits(), ((3.0f64 * 0.3f64) as f32).to_bits());
    assert_eq!(
        int_lit_prod32_grad(2.0).to_bits(),
        (3.0f32 * 0.3f32 + 0.3f32 * 7.0f32).to_bits()
    );
    assert_eq!(lit_prod64_grad(2.0).to_bits(), (0.1f64 * 0.3f64).to_bits());
    // An integer in f64 need not be one in f32: `0.3 * 100` is `30` in f64 only.
    assert_ne!((0.3f32 * 100.0f32).to_bits(), ((0.3f64 * 100.0f64) as f32).to_bits());
    assert_eq!(int_result32_grad(2.0).to_bits(), (0.3f32 * 100.0f32).to_bits());
    assert_eq!(int_prod32_grad(2.0), -6.0);
}

// ---------------------------------------------------------------------------------------
// `powf` with a literal exponent: `y - 1` is folded only where exact in `f32` and `f64`.
// ---------------------------------------------------------------------------------------

#[grad]
fn pow_frac32(x: f32) -> f32 {
    x.powf(1.1)
}

#[grad]
fn pow_int32(x: f32) -> f32 {
    x.powf(3.0)
}

#[test]
fn powf_literal_exponent_minus_one_in_its_own_type() {
    // `1.1 - 1` in f64, rounded to f32, is not the f32 `1.1 - 1`; at 1e4 the powers differ.
    let x = 1.0e4f32;
    let want = 1.1f32 * x.powf(1.1f32 - 1.0f32);
    assert_ne!(want.to_bits(), (1.1f32 * x.powf((1.1f64 - 1.0) as f32)).to_bits());
    assert_eq!(pow_frac32_grad(x).to_bits(), want.to_bits());
    assert_eq!(pow_int32_grad(1.5f32).to_bits(), (3.0f32 * 1.5f32.powf(2.0)).to_bits());
}

// ---------------------------------------------------------------------------------------
// `let mut a = [x; 2]` inside a loop: reverse mode splits the initialiser into an immutable
// value (`vjp.rs` `normalize`, recursing into loop bodies), or its adjoint is lost.
// ---------------------------------------------------------------------------------------

#[grad]
fn loop_local_arrays(x: f64) -> f64 {
    let mut s = 0.0;
    for _i in 0..2 {
        let mut a = [x; 2];
        let mut b = [x, 3.0 * x];
        a[1] *= x;
        b[0] *= b[1];
        s += a[0] + a[1] + b[0];
    }
    s
}

#[test]
fn mutable_arrays_declared_in_a_loop_pass_their_adjoint_back() {
    for x in [0.7f64, -1.3] {
        // s = 2 (x + x² + 3x²)
        let (got, want) = (loop_local_arrays_grad(x), 2.0 + 16.0 * x);
        assert!((got - want).abs() < 1e-12, "{got} != {want}");
    }
}

// ---------------------------------------------------------------------------------------
// `_into` forms whose gradient is accumulated (`out[i] += ..`) clear `out` first: the
// runtime's `fill_zero` (the function, and its `f64`, `f32` and array impls).
// ---------------------------------------------------------------------------------------

#[grad]
fn accumulated(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s = s * x[i].sin() + x[i];
    }
    s
}

#[grad]
fn accumulated32(x: [f32; 2]) -> f32 {
    x[0] * x[1] + x[1].sin()
}

#[test]
fn into_forms_clear_an_accumulated_buffer() {
    let x = [0.4, -1.1, 0.8];
    let mut g = [f64::NAN; 3];
    accumulated_grad_into(x, &mut g);
    assert_eq!(g, accumulated_grad(x));
    check_grad("accumulated", x, accumulated, g, g);
    // s = (x0 sin x1 + x1) sin x2 + x2
    let want0 = x[1].sin() * x[2].sin();
    assert!((g[0] - want0).abs() <= 1e-15, "{g:?}");
    let y = [1.5f32, -0.5];
    let mut g32 = [f32::NAN, 7.0];
    accumulated32_grad_into(y, &mut g32);
    assert_eq!(g32, accumulated32_grad(y));
    assert_eq!(g32, [y[1], y[0] + y[1].cos()]);
}

// ---------------------------------------------------------------------------------------
// A tape sized by a named constant is on the stack up to `TAPE_STACK_BYTES` (64 KiB: no
// allocation), on the heap above (the runtime's `TapeStorage`, chosen by rustc).
// ---------------------------------------------------------------------------------------

include!("support/counting_alloc.rs");

/// Tapes of 8 KB (two of them: `x` and `x.sin()` per step).
const STEPS: usize = 1000;
/// Tapes of 80 KB.
const LONG_STEPS: usize = 10_000;

#[grad]
fn euler_steps(k: f64) -> f64 {
    let mut x: f64 = 1.0;
    for _i in 0..STEPS {
        x = x - 1e-3 * k * x.sin();
    }
    x
}

#[grad]
fn euler_long_steps(k: f64) -> f64 {
    let mut x: f64 = 1.0;
    for _i in 0..LONG_STEPS {
        x = x - 1e-4 * k * x.sin();
    }
    x
}

/// `d/dk` of `x <- x - h k sin x`, `n` steps from `x = 1`, by the chain rule.
fn euler_dk(k: f64, h: f64, n: usize) -> f64 {
    let (mut x, mut dx) = (1.0f64, 0.0);
    for _ in 0..n {
        dx = dx - h * x.sin() - h * k * x.cos() * dx;
        x = x - h * k * x.sin();
    }
    dx
}

#[test]
fn tapes_to_a_named_bound_allocate_only_above_64_kib() {
    let (g, n) = allocated(|| euler_steps_grad(0.7));
    assert_eq!(n, 0, "8 KB tapes allocated");
    assert!((g - euler_dk(0.7, 1e-3, STEPS)).abs() <= 1e-12, "{g}");
    let (g, n) = allocated(|| euler_long_steps_grad(0.7));
    assert!(n > 0, "80 KB tapes on the stack");
    assert!((g - euler_dk(0.7, 1e-4, LONG_STEPS)).abs() <= 1e-12, "{g}");
}

// A tape sized by a literal bound: the engine decides from the element's size
// (`Ty::known_bytes`: 8 bytes for `f64` and for a call's result, 4 for `f32`).

#[grad]
fn euler_literal64(k: f64) -> f64 {
    let mut x: f64 = 1.0;
    for _i in 0..10_000 {
        x = x - 1e-4 * k * x.sin();
    }
    x
}

#[grad]
fn euler_literal32(k: f32) -> f32 {
    let mut x: f32 = 1.0;
    for _i in 0..10_000 {
        x = x - 1e-4 * k * x.sin();
    }
    x
}

#[differentiable]
fn damp(x: f64, k: f64) -> f64 {
    x - 1e-3 * k * x.sin()
}

#[grad]
fn damped_literal(k: f64) -> f64 {
    let mut x = 1.0;
    for _i in 0..100 {
        x = damp(x, k);
    }
    x
}

#[test]
fn tapes_to_a_literal_bound_allocate_only_above_64_kib() {
    // 10 000 `f64`s: 80 KB, on the heap.
    let (g, n) = allocated(|| euler_literal64_grad(0.7));
    assert!(n > 0, "80 KB tapes on the stack");
    assert!((g - euler_dk(0.7, 1e-4, 10_000)).abs() <= 1e-12, "{g}");
    // 10 000 `f32`s: 40 KB, on the stack.
    let (g, n) = allocated(|| euler_literal32_grad(0.7));
    assert_eq!(n, 0, "40 KB tapes allocated");
    let want = euler_dk(0.7, 1e-4, 10_000) as f32;
    assert!((g - want).abs() <= 1e-3 * want.abs(), "{g} vs {want}");
    // 100 results of a call (a type only rustc knows, counted as 8 bytes): on the stack.
    let (g, n) = allocated(|| damped_literal_grad(0.7));
    assert_eq!(n, 0, "a 800-byte tape of call results allocated");
    assert!((g - euler_dk(0.7, 1e-3, 100)).abs() <= 1e-12, "{g}");
}
