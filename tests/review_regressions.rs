//! Compiled regression tests for defects found in review: each function is the reported
//! input, now compiling and giving the right derivative.

use approx::assert_abs_diff_eq;
use fluxion::{differentiable, grad, hessian, jacrev};

fn close(a: f64, b: f64) -> bool {
    approx::abs_diff_eq!(a, b, epsilon = 1e-12 * (1.0 + b.abs()))
}

/// Annotated literals keep their type (`m.max(..)` on an untyped `1.0` would not compile).
#[grad]
fn annotated_literal(x: [f64; 3]) -> f64 {
    let mut m: f64 = 1.0;
    for i in 0..3 {
        m = m.max(x[i].abs());
    }
    let c: f64 = 2.0;
    m * c.sin()
}

/// A `u64` literal keeps its type (unsuffixed, `5000000000 as f64` would be an i32).
#[grad]
fn wide_literal(x: f64) -> f64 {
    let big: u64 = 5_000_000_000;
    x * (big as f64)
}

/// `*x` on reference parameters.
#[grad]
fn deref_array(x: &[f64; 3]) -> f64 {
    let mut a = *x;
    a[0] *= 2.0;
    a[0] + a[1] * a[2]
}

#[grad]
fn deref_scalar(x: &f64) -> f64 {
    if *x > 0.0 {
        *x * *x
    } else {
        0.0
    }
}

#[differentiable]
fn scale32(x: f32, k: f32) -> f32 {
    x * k
}

/// A float literal passed to an annotated function of an f32 function.
#[grad]
fn literal_arg32(x: f32) -> f32 {
    scale32(x, 2.0)
}

#[differentiable]
fn sq32(x: f32) -> f32 {
    x * x
}

/// `powi` with an integer argument on a base whose type the macro cannot see (f32).
#[grad]
fn powi_var32(x: f32, n: i32) -> f32 {
    let y = sq32(x);
    y.powi(n)
}

/// Identical literal-only operations of different float types are not merged.
#[grad(argnums = (0, 1))]
fn mixed_precision(x: f32, y: f64) -> f64 {
    (x.powf(0.5) as f64) + y.powf(0.5)
}

/// A nested repeat expression.
#[grad]
fn nested_repeat(x: f64) -> f64 {
    let a = [[x; 3]; 2];
    a[1][2] * a[0][0]
}

/// A function named with a keyword.
#[grad]
fn r#match(x: f64) -> f64 {
    x * x
}

#[differentiable]
fn bump(x: f64) -> f64 {
    x * x + x
}

/// An `if` value made of call results, inside a loop.
#[grad]
fn if_value_of_calls(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        let y = if x[i] > 0.0 { bump(x[i]) } else { bump(-x[i]) };
        s += y;
    }
    s
}

/// A one-tuple `argnums` on `hessian` gives a tuple of tuples, as torch does.
#[hessian(argnums = (0,))]
fn hess_one_tuple(x: [f64; 2]) -> f64 {
    x[0] * x[0] * x[1]
}

/// Elements of a mutable array read in place in a loop (a prefix recurrence).
#[grad]
fn prefix<const N: usize>(x: [f64; N]) -> f64 {
    let mut a = x;
    for i in 1..N {
        a[i] += a[i - 1] * 0.5;
    }
    a[N - 1]
}

const K: i32 = 3;

/// A loop bound of type `i32`: the reverse sweep's tape is indexed `i as usize`.
#[grad]
fn i32_bound(x: f64) -> f64 {
    let mut s = x;
    for i in 0..K {
        s = s * (s + i as f64);
    }
    s
}

#[test]
fn review_regressions() {
    let h = 1e-6;
    let fd = (i32_bound(0.7 + h) - i32_bound(0.7 - h)) / (2.0 * h);
    assert_abs_diff_eq!(i32_bound_grad(0.7), fd, epsilon = 1e-6 * fd.abs().max(1.0));
    let g = annotated_literal_grad([0.5, -3.0, 2.0]);
    assert_eq!(g, [0.0, -(2.0f64.sin()), 0.0]);
    assert_eq!(wide_literal_grad(1.0), 5e9);
    assert_eq!(deref_array_grad(&[1.0, 2.0, 3.0]), [2.0, 3.0, 2.0]);
    assert_eq!(deref_scalar_grad(&3.0), 6.0);
    assert_eq!(deref_scalar_grad(&-3.0), 0.0);
    assert_eq!(literal_arg32_grad(1.5), 2.0);
    // d/dx (x²)^n = 2n x^(2n-1)
    assert_abs_diff_eq!(powi_var32_grad(1.5, 3), 6.0 * 1.5f32.powi(5), epsilon = 1e-3);
    let (gx, gy) = mixed_precision_grad(4.0, 9.0);
    assert_eq!((gx, gy), (0.25, 1.0 / 6.0));
    assert_eq!(nested_repeat_grad(3.0), 6.0);
    assert_eq!(match_grad(3.0), 6.0);
    // d/dx (x² + |x|) per element: 2x + sign(x)
    let g = if_value_of_calls_grad([0.5, -2.0, 1.0]);
    assert!(close(g[0], 2.0) && close(g[1], -5.0) && close(g[2], 3.0), "{g:?}");
    let ((h,),) = hess_one_tuple_hessian([1.0, 2.0]);
    assert_eq!(h, [[4.0, 2.0], [2.0, 0.0]]);
    // a[N-1] = Σ 0.5^(N-1-i) x[i]
    let g = prefix_grad([1.0, 2.0, 3.0, 4.0]);
    assert_eq!(g, [0.125, 0.25, 0.5, 1.0]);
}

/// An array field of a tuple parameter read twice: its two adjoints are arrays, added
/// elementwise (they were emitted as `a + b`, which rustc rejects for arrays).
#[grad(argnums = (0, 1))]
fn tuple_array_field(t: (f64, [f64; 2]), x: f64) -> f64 {
    t.0 * x + t.1[0] - t.1[1] * x * x
}

#[test]
fn tuple_array_field_adjoints_add_elementwise() {
    let ((t0, t1), x) = tuple_array_field_grad((1.5, [2.0, -0.5]), 0.75);
    assert!(close(t0, 0.75));
    assert_eq!(t1[0], 1.0);
    assert!(close(t1[1], -0.75 * 0.75));
    assert!(close(x, 1.5 - 2.0 * -0.5 * 0.75));
}

#[differentiable]
fn tuple_product(p: (f64, f64)) -> f64 {
    p.0 * p.1
}

/// A call with a tuple argument built in the caller: the call's result, a value only
/// rustc types, is read by its fields (its adjoint was an accumulator that could not be
/// split into fields: "field of `t`, which is not a tuple").
#[grad]
fn through_tuple_argument(x: f64) -> f64 {
    let t = (x, 2.0 * x + 1.0);
    tuple_product(t) + x
}

#[test]
fn call_with_a_tuple_argument() {
    // d/dx [x (2x + 1) + x] = 4x + 2
    for x in [-1.5, 0.0, 0.25, 3.0] {
        assert!(close(through_tuple_argument_grad(x), 4.0 * x + 2.0), "x = {x}");
    }
}

#[differentiable]
fn square(x: f64) -> f64 {
    x * x
}

/// Jacobians of functions with a loop over a slice (its values on growing tapes), with
/// rows computed by several reverse sweeps: one per row where the sweep calls a function,
/// one per chunk of rows on lanes otherwise. Each sweep reads the tapes from their end
/// (the counters ran past zero from the second sweep on).
#[jacrev(argnums = 0)]
fn taped_rows_with_call(p: [f64; 6], xs: &[f64]) -> [f64; 6] {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (p[0] * xs[i]).tanh();
    }
    [square(p[0]) * s, p[1] * s, p[2] * s, p[3] * s, p[4] * s, p[5] * s * s]
}

#[jacrev(argnums = 0)]
fn taped_rows(p: [f64; 6], xs: &[f64]) -> [f64; 6] {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (p[0] * xs[i]).tanh();
    }
    [p[0] * p[0] * s, p[1] * s, p[2] * s, p[3] * s, p[4] * s, p[5] * s * s]
}

#[hessian]
fn taped_hessian(p: [f64; 6], xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += (p[i % 6] * xs[i]).tanh() * p[(i + 1) % 6];
    }
    s * s
}

#[test]
fn repeated_reverse_sweeps_rewind_their_tapes() {
    let p = [0.3, -0.7, 1.1, 0.5, -0.2, 0.9];
    let xs = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 0.1];
    let h = 1e-6;
    for (name, jac, f) in [
        (
            "with call",
            taped_rows_with_call_jacrev(p, &xs),
            taped_rows_with_call as fn([f64; 6], &[f64]) -> [f64; 6],
        ),
        ("lanes", taped_rows_jacrev(p, &xs), taped_rows),
    ] {
        for k in 0..6 {
            let (mut a, mut b) = (p, p);
            a[k] += h;
            b[k] -= h;
            let (fa, fb) = (f(a, &xs), f(b, &xs));
            for r in 0..6 {
                let fd = (fa[r] - fb[r]) / (2.0 * h);
                assert!(
                    (jac[r][k] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{name}: J[{r}][{k}] = {} vs {fd}",
                    jac[r][k]
                );
            }
        }
    }
    let hs = taped_hessian_hessian(p, &xs);
    for k in 0..6 {
        let (mut a, mut b) = (p, p);
        a[k] += h;
        b[k] -= h;
        for (r, row) in hs.iter().enumerate() {
            let ga = taped_hessian_grad_fd(a, &xs, r);
            let gb = taped_hessian_grad_fd(b, &xs, r);
            let fd = (ga - gb) / (2.0 * h);
            assert!(
                (row[k] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                "H[{r}][{k}] = {} vs {fd}",
                row[k]
            );
        }
    }
}

/// `d taped_hessian / d p[r]` by central differences.
fn taped_hessian_grad_fd(p: [f64; 6], xs: &[f64], r: usize) -> f64 {
    let h = 1e-5;
    let (mut a, mut b) = (p, p);
    a[r] += h;
    b[r] -= h;
    (taped_hessian(a, xs) - taped_hessian(b, xs)) / (2.0 * h)
}
