//! Generated derivatives of varied functions, checked against central finite differences,
//! against each other (reverse vs forward mode), for structure (symmetric Hessians,
//! `grad_and_value`'s value bitwise equal to the function), and against the engine's IR
//! interpreter run on the same source text (`tests/cases/shared.rs`).
//!
//! Tolerances (`Tol`):
//! - Finite differences: central, step `h_i = STEP * max(1, |x_i|)` with
//!   `STEP = 6e-6 ~ cbrt(f64::EPSILON)`, so truncation (`h^2 |f'''| / 6`) and rounding
//!   (`eps |f| / h`) errors are both ~1e-11 for these O(1) functions; derivatives must
//!   agree to `1e-6 * max(1, |fd|)`. The same bound is used for Hessians, differentiating
//!   the generated gradient. For `f32` functions: `STEP = 5e-3` (~`cbrt(f32::EPSILON)`),
//!   bound `5e-3 * max(1, |fd|)`.
//! - `jacrev` vs `jacfwd`: both evaluate the same chain-rule products in different orders, so
//!   they agree to a few ulps: `|a - b| <= 8 eps * max(|a|, |b|)` (eps of the float type).
//! - Hessian symmetry: `|H_ij - H_ji| <= 16 eps * max(1, max |H|)` (the two entries come
//!   from different sweeps).
//! - `grad_and_value`: the value is bitwise equal to the plain function; its gradient is
//!   bitwise equal to `jacrev`'s.
//! - Compiled vs interpreted: primal values bitwise equal (the interpreter evaluates in
//!   `f64` with the same libm), derivatives within the ulps bound above.
//!
//! Edge inputs use the documented conventions: `abs'(0) = 0`, `max`/`min` ties split 0.5 /
//! 0.5, `sqrt'(0) = inf`, `signum' = 0`.

// The differentiated bodies are written in the supported subset on purpose: index loops,
// nested `if`s, `let` before the tail.
#![allow(clippy::needless_range_loop, clippy::collapsible_if, clippy::let_and_return)]

use std::collections::HashMap;
use std::fmt::Debug;

use approx::{abs_diff_eq, assert_abs_diff_eq};
use fluxion::{differentiable, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, stop_gradient, vjp};
use fluxion_engine::interp::{companion, Env, Value};
use fluxion_engine::ir::{Func, Mode, Prim};
use fluxion_engine::rules::{Mutation, RuleTable};

// =======================================================================================
// Helpers: flattening, finite differences, comparisons.
// =======================================================================================

/// Values made of floats (and integers, which have no tangent), flattened in index order
/// (for Jacobians: JAX's layout, output indices first, then input indices).
trait Flat: Copy + Debug {
    fn push(&self, out: &mut Vec<f64>);
    /// A value shaped like `self` with its floats taken from `it`.
    fn pull(&self, it: &mut dyn Iterator<Item = f64>) -> Self;
    /// The interpreter's value.
    fn value(&self) -> Value;
    fn flat(&self) -> Vec<f64> {
        let mut v = Vec::new();
        self.push(&mut v);
        v
    }
}

impl Flat for f64 {
    fn push(&self, out: &mut Vec<f64>) {
        out.push(*self);
    }
    fn pull(&self, it: &mut dyn Iterator<Item = f64>) -> Self {
        it.next().expect("too few floats")
    }
    fn value(&self) -> Value {
        Value::F(*self)
    }
}

impl Flat for f32 {
    fn push(&self, out: &mut Vec<f64>) {
        out.push(f64::from(*self));
    }
    fn pull(&self, it: &mut dyn Iterator<Item = f64>) -> Self {
        it.next().expect("too few floats") as f32
    }
    fn value(&self) -> Value {
        Value::F(f64::from(*self))
    }
}

impl<T: Flat, const N: usize> Flat for [T; N] {
    fn push(&self, out: &mut Vec<f64>) {
        self.iter().for_each(|x| x.push(out));
    }
    fn pull(&self, it: &mut dyn Iterator<Item = f64>) -> Self {
        let mut r = *self;
        for x in r.iter_mut() {
            *x = x.pull(it);
        }
        r
    }
    fn value(&self) -> Value {
        Value::Arr(self.iter().map(Flat::value).collect())
    }
}

impl<A: Flat, B: Flat> Flat for (A, B) {
    fn push(&self, out: &mut Vec<f64>) {
        self.0.push(out);
        self.1.push(out);
    }
    fn pull(&self, it: &mut dyn Iterator<Item = f64>) -> Self {
        (self.0.pull(it), self.1.pull(it))
    }
    fn value(&self) -> Value {
        Value::Tup(vec![self.0.value(), self.1.value()])
    }
}

/// Finite-difference settings and comparison bounds of one float type (see the module docs).
#[derive(Clone, Copy)]
struct Tol {
    step: f64,
    fd: f64,
    ulps: f64,
    eps: f64,
}

const F64: Tol = Tol {
    step: 6e-6,
    fd: 1e-6,
    ulps: 8.0,
    eps: f64::EPSILON,
};
const F32: Tol = Tol {
    step: 5e-3,
    fd: 5e-3,
    ulps: 8.0,
    eps: f32::EPSILON as f64,
};

/// Central-difference Jacobian of `f` at `x`, flattened in JAX's layout: entry
/// `o * n + i` is `d f_o / d x_i` (`n` floats in `x`). The step actually taken is read
/// back from the perturbed input, so `f32` rounding of `x + h` is accounted for.
fn fd_jacobian<X: Flat, Y: Flat>(f: impl Fn(X) -> Y, x: X, step: f64) -> Vec<f64> {
    let x0 = x.flat();
    let n = x0.len();
    let mut cols = Vec::with_capacity(n);
    for i in 0..n {
        let h = step * x0[i].abs().max(1.0);
        let mut xp = x0.clone();
        let mut xm = x0.clone();
        xp[i] += h;
        xm[i] -= h;
        let (xp, xm) = (x.pull(&mut xp.into_iter()), x.pull(&mut xm.into_iter()));
        let denom = xp.flat()[i] - xm.flat()[i];
        let (yp, ym) = (f(xp).flat(), f(xm).flat());
        cols.push(yp.iter().zip(&ym).map(|(a, b)| (a - b) / denom).collect::<Vec<f64>>());
    }
    let m = cols.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(m * n);
    for o in 0..m {
        for col in &cols {
            out.push(col[o]);
        }
    }
    out
}

/// Same value, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[track_caller]
fn assert_fd(what: &str, ad: &[f64], fd: &[f64], tol: Tol) {
    assert_eq!(
        ad.len(),
        fd.len(),
        "{what}: {} derivatives, {} finite differences",
        ad.len(),
        fd.len()
    );
    for (k, (a, f)) in ad.iter().zip(fd).enumerate() {
        assert!(
            abs_diff_eq!(a, f, epsilon = tol.fd * f.abs().max(1.0)),
            "{what}[{k}]: generated {a:e}, finite differences {f:e}\n  generated {ad:?}\n  fd        {fd:?}"
        );
    }
}

/// Equal within `tol.ulps` ulps of the largest magnitude in `a` and `b` (entries that are
/// small through cancellation carry the rounding of the larger terms they came from). NaN
/// equals NaN, inf equals inf.
#[track_caller]
fn assert_ulps(what: &str, a: &[f64], b: &[f64], tol: Tol) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = a
        .iter()
        .chain(b)
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = same(*x, *y) || (x - y).abs() <= tol.ulps * tol.eps * scale;
        assert!(
            ok,
            "{what}[{k}]: {x:e} vs {y:e} (diff {:e}, bound {:e})\n  {a:?}\n  {b:?}",
            x - y,
            tol.ulps * tol.eps * scale
        );
    }
}

/// `h` (flattened `m x n x n`) is symmetric in its last two indices.
#[track_caller]
fn assert_symmetric(what: &str, h: &[f64], n: usize, tol: Tol) {
    let scale = h.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for blk in h.chunks(n * n) {
        for i in 0..n {
            for j in 0..i {
                let (a, b) = (blk[i * n + j], blk[j * n + i]);
                assert!(
                    (a - b).abs() <= 2.0 * tol.ulps * tol.eps * scale,
                    "{what}: H[{i}][{j}] = {a:e}, H[{j}][{i}] = {b:e}"
                );
            }
        }
    }
}

/// The first-order checks for a scalar function of `x`: gradient vs FD,
/// `jacrev == jacfwd`, `grad_and_value` (gradient equal to jacrev's, value bitwise).
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn check_scalar<X: Flat, S: Flat + Into<f64>, G: Flat>(
    name: &str,
    x: X,
    tol: Tol,
    f: impl Fn(X) -> S,
    rev: impl Fn(X) -> G,
    fwd: impl Fn(X) -> G,
    gv: impl Fn(X) -> (G, S),
) {
    let what = |s: &str| format!("{name} {s} at {x:?}");
    let g = rev(x).flat();
    assert_fd(&what("jacrev"), &g, &fd_jacobian(&f, x, tol.step), tol);
    assert_ulps(&what("jacrev vs jacfwd"), &g, &fwd(x).flat(), tol);
    let (g2, v) = gv(x);
    assert_eq!(g2.flat(), g, "{}", what("grad_and_value's gradient vs jacrev"));
    let (v, fx): (f64, f64) = (v.into(), f(x).into());
    assert_eq!(
        v.to_bits(),
        fx.to_bits(),
        "{}: {v} vs {fx}",
        what("grad_and_value's value")
    );
}

/// The Hessian `hess(x)` against FD of the gradient `grad`, and symmetric.
#[track_caller]
fn check_hessian<X: Flat, G: Flat, H: Flat>(name: &str, x: X, tol: Tol, grad: impl Fn(X) -> G, hess: impl Fn(X) -> H) {
    let what = |s: &str| format!("{name} {s} at {x:?}");
    let h = hess(x).flat();
    assert_fd(&what("hessian"), &h, &fd_jacobian(&grad, x, tol.step), tol);
    assert_symmetric(&what("hessian"), &h, x.flat().len(), tol);
}

/// The checks for a vector function: Jacobian vs FD and `jacrev == jacfwd`.
#[track_caller]
fn check_vector<X: Flat, Y: Flat, J: Flat>(
    name: &str,
    x: X,
    tol: Tol,
    f: impl Fn(X) -> Y,
    rev: impl Fn(X) -> J,
    fwd: impl Fn(X) -> J,
) {
    let what = |s: &str| format!("{name} {s} at {x:?}");
    let j = rev(x).flat();
    assert_fd(&what("jacrev"), &j, &fd_jacobian(&f, x, tol.step), tol);
    assert_ulps(&what("jacrev vs jacfwd"), &j, &fwd(x).flat(), tol);
}

/// Stamps out one function body under several names and attribute stacks:
/// `variants! { { fn f(..) -> T { .. } } f_r: [#[jacrev]]; f_f: [#[jacfwd]]; }` defines
/// `f`, `f_r` (with `f_r_jacrev`) and `f_f` (with `f_f_jacfwd`).
macro_rules! variants {
    (@one [$($attr:tt)*] $name:ident { $(#[$doc:meta])* fn $f:ident $($rest:tt)* }) => {
        $(#[$doc])* $($attr)* #[allow(dead_code)] fn $name $($rest)*
    };
    (@plain { $(#[$doc:meta])* fn $f:ident $($rest:tt)* }) => {
        $(#[$doc])* fn $f $($rest)*
    };
    ($item:tt $( $name:ident: [$($attr:tt)*] ;)*) => {
        variants!(@plain $item);
        $( variants!(@one [$($attr)*] $name $item); )*
    };
}

// =======================================================================================
// Functions with the full set of checks.
// =======================================================================================

variants! {
    {
        /// Const generic length, a mutable local array, `.iter().sum()`, a cast index.
        fn sum_cubes<const N: usize>(x: [f64; N]) -> f64 {
            let mut c = [0.0; N];
            for i in 0..N {
                c[i] = x[i].powi(3) - x[i] * (i as f64);
            }
            c.iter().sum()
        }
    }
    sum_cubes_r: [#[jacrev]];
    sum_cubes_f: [#[jacfwd]];
    sum_cubes_h: [#[hessian]];
    sum_cubes_gv: [#[grad_and_value]];
}

variants! {
    {
        /// Rosenbrock: a range bound computed from a const generic (`0..N - 1`).
        fn rosenbrock<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 0.0;
            for i in 0..N - 1 {
                let a = x[i + 1] - x[i] * x[i];
                let b = 1.0 - x[i];
                s += 100.0 * a * a + b * b;
            }
            s
        }
    }
    rosenbrock_r: [#[jacrev]];
    rosenbrock_f: [#[jacfwd]];
    rosenbrock_h: [#[hessian]];
    rosenbrock_gv: [#[grad_and_value]];
}

variants! {
    {
        /// `&[f64; N]` parameters (const generic), `hypot`, `sqrt`, an index `N - 1`,
        /// w.r.t. both arguments.
        fn weighted_norm<const N: usize>(x: &[f64; N], w: &[f64; N]) -> f64 {
            let mut s = 0.0;
            for i in 0..N {
                s += w[i] * x[i] * x[i];
            }
            s.sqrt().hypot(x[0] * w[N - 1])
        }
    }
    weighted_norm_r: [#[jacrev(argnums = (0, 1))]];
    weighted_norm_f: [#[jacfwd(argnums = (0, 1))]];
    weighted_norm_h: [#[hessian]];
    weighted_norm_gv: [#[grad_and_value(argnums = (0, 1))]];
}

variants! {
    {
        /// Integer arguments are passed through: an exponent and a weight.
        fn int_args(x: [f64; 3], k: usize, p: i32) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                s += x[i].powi(p) * ((i + k) as f64);
            }
            s + (k as f64) * x[0]
        }
    }
    int_args_r: [#[jacrev]];
    int_args_f: [#[jacfwd]];
    int_args_h: [#[hessian]];
    int_args_gv: [#[grad_and_value]];
}

variants! {
    {
        /// `f32`: log-sum-exp.
        fn logsumexp32(x: [f32; 3]) -> f32 {
            let mut m = x[0];
            for i in 1..3 {
                m = m.max(x[i]);
            }
            let m = stop_gradient(m);
            let mut s = 0.0f32;
            for i in 0..3 {
                s += (x[i] - m).exp();
            }
            s.ln() + m
        }
    }
    logsumexp32_r: [#[jacrev]];
    logsumexp32_f: [#[jacfwd]];
    logsumexp32_h: [#[hessian]];
    logsumexp32_gv: [#[grad_and_value]];
}

variants! {
    {
        /// `f32` vector output: softmax.
        fn softmax32(x: [f32; 3]) -> [f32; 3] {
            let mut e = [0.0f32; 3];
            let mut s = 0.0f32;
            for i in 0..3 {
                e[i] = x[i].exp();
                s += e[i];
            }
            for i in 0..3 {
                e[i] /= s;
            }
            e
        }
    }
    softmax32_r: [#[jacrev]];
    softmax32_f: [#[jacfwd]];
}

variants! {
    {
        /// A tuple output `(loss, aux)` used with `has_aux`.
        fn with_aux(x: [f64; 3]) -> (f64, [f64; 3]) {
            let mut r = [0.0; 3];
            let mut loss = 0.0;
            for i in 0..3 {
                r[i] = x[i].tanh() - 0.5;
                loss += r[i] * r[i];
            }
            (loss, r)
        }
    }
    with_aux_r: [#[jacrev(has_aux)]];
    with_aux_f: [#[jacfwd(has_aux)]];
    with_aux_gv: [#[grad_and_value(has_aux)]];
    with_aux_jr: [#[jacfwd(has_aux)] #[jacrev(has_aux)]];
}

variants! {
    {
        /// `x^T A x` with nested loops over `[[f64; 3]; 3]`; the Hessian in `x` is `A + A^T`.
        fn quad_form(a: [[f64; 3]; 3], x: [f64; 3]) -> f64 {
            let mut s = 0.0;
            for i in 0..3 {
                for j in 0..3 {
                    s += x[i] * a[i][j] * x[j];
                }
            }
            s
        }
    }
    quad_form_r: [#[jacrev(argnums = (0, 1))]];
    quad_form_f: [#[jacfwd(argnums = (0, 1))]];
    quad_form_h: [#[hessian(argnums = 1)]];
    quad_form_gv: [#[grad_and_value(argnums = (0, 1))]];
}

variants! {
    {
        /// A small matrix-vector product with `[[f64; 3]; 2]`, w.r.t. both arguments.
        fn matvec(a: [[f64; 3]; 2], x: [f64; 3]) -> [f64; 2] {
            let mut y = [0.0; 2];
            for i in 0..2 {
                for j in 0..3 {
                    y[i] += a[i][j] * x[j].sin();
                }
            }
            y
        }
    }
    matvec_r: [#[jacrev(argnums = (0, 1))]];
    matvec_f: [#[jacfwd(argnums = (0, 1))]];
}

variants! {
    {
        /// Early return, else-if chains, a branch inside a loop (conditions on the input and
        /// on the loop index).
        fn branch_ret(x: [f64; 2]) -> f64 {
            if x[0] * x[1] > 4.0 {
                return (x[0] - x[1]).powi(2);
            }
            let mut s = 0.0;
            for i in 0..2 {
                let t = if i == 0 { x[i].exp() } else if x[i] < 0.0 { -x[i] * 3.0 } else { x[i].sin() };
                s += t * x[1 - i];
            }
            s
        }
    }
    branch_ret_r: [#[jacrev]];
    branch_ret_f: [#[jacfwd]];
    branch_ret_h: [#[hessian]];
    branch_ret_gv: [#[grad_and_value]];
}

variants! {
    {
        /// `if` statements without `else`: ending a loop body, nested in another `if`, with
        /// conditions on the loop index and on the input.
        fn masked(x: [f64; 4]) -> f64 {
            let mut s = 0.0;
            for i in 0..4 {
                if i % 2 == 0 {
                    s += x[i] * x[i];
                }
            }
            for i in 1..4 {
                if x[i] > x[i - 1] {
                    if i > 1 {
                        s *= x[i].cos();
                    }
                }
            }
            s
        }
    }
    masked_r: [#[jacrev]];
    masked_f: [#[jacfwd]];
    masked_h: [#[hessian]];
    masked_gv: [#[grad_and_value]];
}

variants! {
    {
        /// A loop whose state is overwritten (`s = s * s * 0.5 + x`), from the smoke test.
        fn recur(x: f64) -> f64 {
            let mut s = x;
            for _ in 0..5 {
                s = s * s * 0.5 + x;
            }
            s
        }
    }
    recur_r: [#[grad]];
    recur_f: [#[jacfwd]];
    recur_h: [#[hessian]];
    recur_gv: [#[grad_and_value]];
}

// Calls: a `#[differentiable]` function in another module, one called twice, one calling
// another across modules, second order through the calls.

mod act {
    use fluxion::differentiable;

    #[differentiable]
    pub fn swish(x: f64) -> f64 {
        x / (1.0 + (-x).exp())
    }

    #[differentiable]
    pub fn sq(x: f64) -> f64 {
        x * x
    }
}

/// Calls `act::sq` from another module.
#[differentiable]
fn cube(x: f64) -> f64 {
    x * act::sq(x)
}

variants! {
    {
        /// `softplus` (from cases/shared.rs) called twice, `act::swish` from another module,
        /// `cube` calling `act::sq`.
        fn calls(x: f64, y: f64) -> f64 {
            let a = softplus(x * y);
            let b = softplus(a - y);
            act::swish(a * b) + cube(y) * x.sin()
        }
    }
    calls_r: [#[jacrev(argnums = (0, 1))]];
    calls_f: [#[jacfwd(argnums = (0, 1))]];
    calls_gv: [#[grad_and_value(argnums = (0, 1))]];
    // Second order through the calls: the four entries of the Hessian.
    calls_xx: [#[hessian]];
    calls_yy: [#[hessian(argnums = 1)]];
    calls_xy: [#[jacfwd(argnums = 1)] #[jacrev]];
    calls_yx: [#[jacfwd] #[jacrev(argnums = 1)]];
}

/// A `#[differentiable]` function of an array.
#[differentiable]
fn dot_tanh(x: [f64; 3], w: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += w[i] * x[i];
    }
    s.tanh()
}

variants! {
    {
        /// Calls with array arguments (an array literal and a whole array), in straight-line
        /// code and inside a loop (results annotated: see `engine_bug_unannotated_call_in_loop`
        /// and `engine_bug_loop_state_from_unannotated_call`).
        fn calls_arr(x: [f64; 3]) -> f64 {
            let a: f64 = dot_tanh(x, [0.5, -1.0, 2.0]);
            let b = dot_tanh([x[2], x[0], a], x);
            let mut s = a * b;
            for i in 0..3 {
                let t: f64 = softplus(x[i] * s);
                s += t;
            }
            s
        }
    }
    calls_arr_r: [#[jacrev]];
    calls_arr_f: [#[jacfwd]];
    calls_arr_h: [#[hessian]];
    calls_arr_gv: [#[grad_and_value]];
}

variants! {
    {
        /// A vector output written row by row from three elements (`sparse.rs`'s separable
        /// shape): the cyclic neighbours coincide for `N = 1, 2`.
        fn cyclic<const N: usize>(x: [f64; N]) -> [f64; N] {
            let mut y = [0.0; N];
            for i in 0..N {
                y[i] = x[i].sin() * x[(i + 1) % N] + x[(i + N - 1) % N] * x[(i + N - 1) % N];
            }
            y
        }
    }
    cyclic_r: [#[jacrev]];
    cyclic_f: [#[jacfwd]];
}

variants! {
    {
        /// A sum of terms subtracted, reads that coincide for small `N`, a shared factor.
        fn ring_energy<const N: usize>(x: [f64; N], w: f64) -> f64 {
            let mut s = 2.0;
            for i in 0..N {
                s -= (x[i] * x[(i + 1) % N] * w).sin() + x[(i + 2) % N].exp();
            }
            s
        }
    }
    ring_energy_r: [#[jacrev]];
    ring_energy_h: [#[hessian]];
}

/// The smoke test's `uses_call`: `d2/dx2 (x^3 sin y) = 6 x sin y`.
#[hessian]
fn uses_call(x: f64, y: f64) -> f64 {
    cube(x) * y.sin()
}

include!("cases/shared.rs");

// =======================================================================================
// Tests of the full set.
// =======================================================================================

#[test]
fn const_generic_sum_cubes() {
    let x = [0.7];
    check_scalar(
        "sum_cubes<1>",
        x,
        F64,
        sum_cubes,
        sum_cubes_r_jacrev,
        sum_cubes_f_jacfwd,
        sum_cubes_gv_grad_and_value,
    );
    check_hessian("sum_cubes<1>", x, F64, sum_cubes_r_jacrev, sum_cubes_h_hessian);
    let x = [1.3, -0.4, 2.0];
    check_scalar(
        "sum_cubes<3>",
        x,
        F64,
        sum_cubes,
        sum_cubes_r_jacrev,
        sum_cubes_f_jacfwd,
        sum_cubes_gv_grad_and_value,
    );
    check_hessian("sum_cubes<3>", x, F64, sum_cubes_r_jacrev, sum_cubes_h_hessian);
    // Closed form: 3 x_i^2 - i, Hessian diag(6 x).
    assert_ulps(
        "sum_cubes<3> closed form",
        &sum_cubes_r_jacrev(x),
        &[3.0 * x[0] * x[0], 3.0 * x[1] * x[1] - 1.0, 3.0 * x[2] * x[2] - 2.0],
        F64,
    );
    assert_ulps(
        "sum_cubes<3> hessian closed form",
        &sum_cubes_h_hessian(x).flat(),
        &[6.0 * x[0], 0.0, 0.0, 0.0, 6.0 * x[1], 0.0, 0.0, 0.0, 6.0 * x[2]],
        F64,
    );
    let x = [0.1, 0.2, -0.3, 0.4, 1.5];
    check_scalar(
        "sum_cubes<5>",
        x,
        F64,
        sum_cubes,
        sum_cubes_r_jacrev,
        sum_cubes_f_jacfwd,
        sum_cubes_gv_grad_and_value,
    );
    check_hessian("sum_cubes<5>", x, F64, sum_cubes_r_jacrev, sum_cubes_h_hessian);
}

/// The separable shapes (`sparse.rs`): rows of a vector output and a sum, at sizes where
/// an iteration's reads coincide and where they do not.
#[test]
fn separable_loops() {
    fn at<const N: usize>() {
        let x: [f64; N] = std::array::from_fn(|i| 0.3 + 0.45 * i as f64 - 0.2 * (i % 3) as f64);
        check_vector(
            "cyclic",
            x,
            F64,
            cyclic::<N>,
            cyclic_r_jacrev::<N>,
            cyclic_f_jacfwd::<N>,
        );
        for w in [0.7, -1.3] {
            let fd = fd_jacobian(|x| ring_energy(x, w), x, F64.step);
            assert_fd("ring_energy gradient", &ring_energy_r_jacrev(x, w).flat(), &fd, F64);
            check_hessian(
                "ring_energy",
                x,
                F64,
                |x| ring_energy_r_jacrev(x, w),
                |x| ring_energy_h_hessian(x, w),
            );
        }
    }
    at::<1>();
    at::<2>();
    at::<3>();
    at::<6>();
}

#[test]
fn const_generic_rosenbrock() {
    for x in [[1.0, 1.0, 1.0, 1.0], [-1.2, 1.0, 0.5, 0.3]] {
        check_scalar(
            "rosenbrock",
            x,
            F64,
            rosenbrock,
            rosenbrock_r_jacrev,
            rosenbrock_f_jacfwd,
            rosenbrock_gv_grad_and_value,
        );
        check_hessian("rosenbrock", x, F64, rosenbrock_r_jacrev, rosenbrock_h_hessian);
    }
    // The minimum.
    assert_eq!(rosenbrock_r_jacrev([1.0; 4]), [0.0; 4]);
    let x = [-1.2, 1.0];
    check_scalar(
        "rosenbrock<2>",
        x,
        F64,
        rosenbrock,
        rosenbrock_r_jacrev,
        rosenbrock_f_jacfwd,
        rosenbrock_gv_grad_and_value,
    );
    check_hessian("rosenbrock<2>", x, F64, rosenbrock_r_jacrev, rosenbrock_h_hessian);
    let h = rosenbrock_h_hessian(x);
    // Closed form: [[1200 x0^2 - 400 x1 + 2, -400 x0], [-400 x0, 200]].
    assert_ulps(
        "rosenbrock hessian",
        &h.flat(),
        &[1200.0 * 1.44 - 400.0 + 2.0, 480.0, 480.0, 200.0],
        F64,
    );
}

#[test]
fn reference_params() {
    for (x, w) in [([0.3, -1.2, 2.0], [1.0, 0.5, 2.0]), ([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])] {
        check_scalar(
            "weighted_norm",
            (x, w),
            F64,
            |(x, w): ([f64; 3], [f64; 3])| weighted_norm(&x, &w),
            |(x, w)| weighted_norm_r_jacrev(&x, &w),
            |(x, w)| weighted_norm_f_jacfwd(&x, &w),
            |(x, w)| weighted_norm_gv_grad_and_value(&x, &w),
        );
        // The Hessian is w.r.t. x (argnums 0).
        check_hessian(
            "weighted_norm",
            x,
            F64,
            |x| weighted_norm_r_jacrev(&x, &w).0,
            |x| weighted_norm_h_hessian(&x, &w),
        );
    }
    let (x, w) = ([0.3, -1.2, 2.0, 0.7, 0.1], [1.0, 0.5, 2.0, 0.25, 3.0]);
    check_scalar(
        "weighted_norm<5>",
        (x, w),
        F64,
        |(x, w): ([f64; 5], [f64; 5])| weighted_norm(&x, &w),
        |(x, w)| weighted_norm_r_jacrev(&x, &w),
        |(x, w)| weighted_norm_f_jacfwd(&x, &w),
        |(x, w)| weighted_norm_gv_grad_and_value(&x, &w),
    );
    check_hessian(
        "weighted_norm<5>",
        x,
        F64,
        |x| weighted_norm_r_jacrev(&x, &w).0,
        |x| weighted_norm_h_hessian(&x, &w),
    );
}

#[test]
fn integer_arguments() {
    for (k, p) in [(0usize, 2i32), (2, 3), (1, -1)] {
        let x = [0.8, -1.1, 1.7];
        check_scalar(
            &format!("int_args(k = {k}, p = {p})"),
            x,
            F64,
            |x| int_args(x, k, p),
            |x| int_args_r_jacrev(x, k, p),
            |x| int_args_f_jacfwd(x, k, p),
            |x| int_args_gv_grad_and_value(x, k, p),
        );
        check_hessian(
            "int_args",
            x,
            F64,
            |x| int_args_r_jacrev(x, k, p),
            |x| int_args_h_hessian(x, k, p),
        );
    }
}

#[test]
fn f32_functions() {
    for x in [[0.5f32, -0.3, 1.2], [2.0, 2.0, -1.0]] {
        check_scalar(
            "logsumexp32",
            x,
            F32,
            logsumexp32,
            logsumexp32_r_jacrev,
            logsumexp32_f_jacfwd,
            logsumexp32_gv_grad_and_value,
        );
        check_hessian("logsumexp32", x, F32, logsumexp32_r_jacrev, logsumexp32_h_hessian);
        check_vector("softmax32", x, F32, softmax32, softmax32_r_jacrev, softmax32_f_jacfwd);
        // The gradient of log-sum-exp is softmax.
        assert_ulps(
            "grad logsumexp = softmax",
            &logsumexp32_r_jacrev(x).flat(),
            &softmax32(x).flat(),
            F32,
        );
    }
}

#[test]
fn tuple_output_with_aux() {
    for x in [[0.2, -0.7, 1.4], [0.0, 0.0, 0.0]] {
        let f = |x| with_aux(x).0;
        let (g, aux) = with_aux_r_jacrev(x);
        assert_eq!(aux, with_aux(x).1, "aux unchanged");
        assert_fd("with_aux jacrev", &g.flat(), &fd_jacobian(f, x, F64.step), F64);
        let (gf, aux_f) = with_aux_f_jacfwd(x);
        assert_eq!(aux_f, aux);
        assert_ulps("with_aux jacrev vs jacfwd", &g, &gf, F64);
        let (g2, (v, aux2)) = with_aux_gv_grad_and_value(x);
        assert_eq!(g2, g);
        assert_eq!(v.to_bits(), f(x).to_bits());
        assert_eq!(aux2, aux);
        let (h, aux3) = with_aux_jr_jacrev_jacfwd(x);
        assert_eq!(aux3, aux);
        check_hessian("with_aux", x, F64, |x| with_aux_r_jacrev(x).0, |_| h);
    }
}

#[test]
fn nested_loops_quad_form_and_matvec() {
    let a = [[1.0, 2.0, -0.5], [0.3, -1.0, 0.7], [2.2, 0.1, 0.4]];
    let x = [0.6, -0.2, 1.3];
    check_scalar(
        "quad_form",
        (a, x),
        F64,
        |(a, x)| quad_form(a, x),
        |(a, x)| quad_form_r_jacrev(a, x),
        |(a, x)| quad_form_f_jacfwd(a, x),
        |(a, x)| quad_form_gv_grad_and_value(a, x),
    );
    check_hessian(
        "quad_form",
        x,
        F64,
        |x| quad_form_r_jacrev(a, x).1,
        |x| quad_form_h_hessian(a, x),
    );
    // Hessian in x: A + A^T, exactly.
    let h = quad_form_h_hessian(a, x);
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(h[i][j], a[i][j] + a[j][i]);
        }
    }
    // Gradient in A: x x^T.
    let (ga, _) = quad_form_r_jacrev(a, x);
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(ga[i][j], x[i] * x[j]);
        }
    }

    let a = [[1.0, 2.0, -0.5], [0.3, -1.0, 0.7]];
    // A tuple of Jacobians is laid out argument-first: check each argument on its own.
    check_vector(
        "matvec d/dA",
        a,
        F64,
        |a| matvec(a, x),
        |a| matvec_r_jacrev(a, x).0,
        |a| matvec_f_jacfwd(a, x).0,
    );
    check_vector(
        "matvec d/dx",
        x,
        F64,
        |x| matvec(a, x),
        |x| matvec_r_jacrev(a, x).1,
        |x| matvec_f_jacfwd(a, x).1,
    );
    // Shapes: d y / d A is [[[f64; 3]; 2]; 2] (d y_o / d A_ik = [o == i] sin x_k),
    // d y / d x is [[f64; 3]; 2].
    let (ja, jx): ([[[f64; 3]; 2]; 2], [[f64; 3]; 2]) = matvec_r_jacrev(a, x);
    assert_eq!(ja[0][1], [0.0; 3]);
    for i in 0..2 {
        for j in 0..3 {
            assert_eq!(jx[i][j], a[i][j] * x[j].cos());
            assert_eq!(ja[i][i][j], x[j].sin());
        }
    }
}

#[test]
fn branches_and_early_return() {
    // One point per region: early return, i = 1 negative branch, i = 1 sin branch.
    for x in [[3.0, 2.0], [0.5, -0.8], [0.4, 0.9], [-2.0, 1.5]] {
        check_scalar(
            "branch_ret",
            x,
            F64,
            branch_ret,
            branch_ret_r_jacrev,
            branch_ret_f_jacfwd,
            branch_ret_gv_grad_and_value,
        );
        check_hessian("branch_ret", x, F64, branch_ret_r_jacrev, branch_ret_h_hessian);
    }
    assert_eq!(branch_ret_r_jacrev([3.0, 2.0]), [2.0, -2.0]);
}

#[test]
fn if_statements_without_else() {
    for x in [[0.5, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.5], [0.2, -0.4, 0.9, 0.1]] {
        check_scalar(
            "masked",
            x,
            F64,
            masked,
            masked_r_jacrev,
            masked_f_jacfwd,
            masked_gv_grad_and_value,
        );
        check_hessian("masked", x, F64, masked_r_jacrev, masked_h_hessian);
    }
    // Decreasing input: only the masked squares, gradient 2 x at even indices.
    assert_eq!(masked_r_jacrev([3.0, 2.0, 1.0, 0.5]), [6.0, 0.0, 2.0, 0.0]);
}

#[test]
fn overwritten_loop_state() {
    for x in [0.3, -0.5, 0.9] {
        check_scalar(
            "recur",
            x,
            F64,
            recur,
            recur_r_grad,
            recur_f_jacfwd,
            recur_gv_grad_and_value,
        );
        check_hessian("recur", x, F64, recur_r_grad, recur_h_hessian);
    }
}

#[test]
fn calls_to_differentiable_functions() {
    for (x, y) in [(0.4, -0.3), (1.2, 0.8), (-0.6, 1.5)] {
        check_scalar(
            "calls",
            (x, y),
            F64,
            |(x, y)| calls(x, y),
            |(x, y)| calls_r_jacrev(x, y),
            |(x, y)| calls_f_jacfwd(x, y),
            |(x, y)| calls_gv_grad_and_value(x, y),
        );
        check_hessian(
            "calls",
            (x, y),
            F64,
            |(x, y)| calls_r_jacrev(x, y),
            |(x, y)| {
                [
                    [calls_xx_hessian(x, y), calls_xy_jacrev_jacfwd(x, y)],
                    [calls_yx_jacrev_jacfwd(x, y), calls_yy_hessian(x, y)],
                ]
            },
        );
        let h = uses_call_hessian(x, y);
        assert_abs_diff_eq!(h, 6.0 * x * y.sin(), epsilon = 1e-12);
    }
}

#[test]
fn calls_with_array_arguments() {
    for x in [[0.3, -0.2, 0.9], [1.1, 0.4, -0.7]] {
        check_scalar(
            "calls_arr",
            x,
            F64,
            calls_arr,
            calls_arr_r_jacrev,
            calls_arr_f_jacfwd,
            calls_arr_gv_grad_and_value,
        );
        check_hessian("calls_arr", x, F64, calls_arr_r_jacrev, calls_arr_h_hessian);
    }
}

// =======================================================================================
// Edge inputs.
// =======================================================================================

#[grad]
fn abs_f(x: f64) -> f64 {
    x.abs()
}

#[jacfwd]
fn abs_fwd(x: f64) -> f64 {
    x.abs()
}

#[grad(argnums = (0, 1))]
fn max_f(x: f64, y: f64) -> f64 {
    x.max(y)
}

#[jacfwd(argnums = (0, 1))]
fn max_fwd(x: f64, y: f64) -> f64 {
    x.max(y)
}

#[grad(argnums = (0, 1))]
fn min_f(x: f64, y: f64) -> f64 {
    x.min(y)
}

#[grad]
fn sqrt_f(x: f64) -> f64 {
    x.sqrt()
}

#[jacfwd]
fn sqrt_fwd(x: f64) -> f64 {
    x.sqrt()
}

#[grad]
fn signum_f(x: f64) -> f64 {
    x.signum() * 3.0 + x
}

#[test]
fn edge_values() {
    assert_eq!(abs_f_grad(0.0), 0.0);
    assert_eq!(abs_f_grad(-0.0), 0.0);
    assert_eq!(abs_fwd_jacfwd(0.0), 0.0);
    assert_eq!(abs_f_grad(2.0), 1.0);
    assert_eq!(abs_f_grad(-2.0), -1.0);
    assert_eq!(max_f_grad(1.5, 1.5), (0.5, 0.5));
    assert_eq!(max_fwd_jacfwd(1.5, 1.5), (0.5, 0.5));
    assert_eq!(max_f_grad(2.0, 1.0), (1.0, 0.0));
    assert_eq!(max_f_grad(1.0, 2.0), (0.0, 1.0));
    assert_eq!(min_f_grad(-0.5, -0.5), (0.5, 0.5));
    assert_eq!(min_f_grad(2.0, 1.0), (0.0, 1.0));
    assert_eq!(sqrt_f_grad(0.0), f64::INFINITY);
    assert_eq!(sqrt_fwd_jacfwd(0.0), f64::INFINITY);
    assert_eq!(sqrt_f_grad(4.0), 0.25);
    assert_eq!(signum_f_grad(0.0), 1.0);
    assert_eq!(signum_f_grad(-3.0), 1.0);
    // The kinks of cases/shared.rs at ties and 0.
    let j = kinks_jacrev([0.0, 1.0, 1.0]);
    assert_eq!(j, [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]);
    assert_eq!(
        kinks_jacrev([-1.0, 2.0, 1.0]),
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
}

// =======================================================================================
// The smoke test's cases (formerly tests/smoke_tmp.rs), with its exact assertions.
// =======================================================================================

#[grad]
fn branchy(x: f64) -> f64 {
    if x < 0.0 {
        return -x * 2.0;
    }
    let y = if x > 1.0 { x.ln() } else { x * x };
    y
}

#[jacfwd]
#[jacrev]
fn elementwise<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = x[i].sin() * x[i];
    }
    y
}

#[jacfwd(argnums = (0, 1))]
fn two(x: [f64; 3], y: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for i in 0..3 {
        out[i] = x[i] + y[i] * y[i];
    }
    out
}

#[vjp]
fn vj(x: f64, y: [f64; 2]) -> f64 {
    x * y[0] + y[1].exp()
}

#[jvp]
fn jv(x: f64, y: [f64; 2]) -> f64 {
    x * y[0] + y[1].exp()
}

#[grad_and_value(has_aux)]
fn aux(x: f64) -> (f64, f64) {
    (x * x, x + 1.0)
}

#[test]
fn smoke_cases() {
    assert_eq!(branchy_grad(-1.0), -2.0);
    assert_abs_diff_eq!(branchy_grad(2.0), 0.5, epsilon = 1e-15);
    assert_abs_diff_eq!(branchy_grad(0.5), 1.0, epsilon = 1e-15);
    let j = elementwise_jacrev([0.1, 0.2, 0.3]);
    assert_abs_diff_eq!(j[1][1], 0.2f64.cos() * 0.2 + 0.2f64.sin(), epsilon = 1e-15);
    assert_eq!(j[0][1], 0.0);
    let x = [0.1, 0.2, 0.3];
    assert_fd(
        "elementwise",
        &elementwise_jacrev(x).flat(),
        &fd_jacobian(elementwise, x, F64.step),
        F64,
    );
    assert_fd(
        "elementwise d2",
        &elementwise_jacrev_jacfwd(x).flat(),
        &fd_jacobian(elementwise_jacrev, x, F64.step),
        F64,
    );
    let (jx, jy) = two_jacfwd([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]);
    assert_eq!(jx[2][2], 1.0);
    assert_eq!(jy[1][1], 10.0);
    let (y, pb) = vj_vjp(2.0, [3.0, 0.5]);
    let (bx, by) = pb(1.0);
    assert_eq!(y, 6.0 + 0.5f64.exp());
    assert_eq!(bx, 3.0);
    assert_eq!(by, [2.0, 0.5f64.exp()]);
    let (y2, (bx2, by2)) = vj_vjp_ct(2.0, [3.0, 0.5], 2.0);
    assert_eq!((y2, bx2, by2), (y, 6.0, [4.0, 2.0 * 0.5f64.exp()]));
    let (y3, t3) = jv_jvp(2.0, [3.0, 0.5], 1.0, [0.0, 1.0]);
    assert_eq!(y3, y);
    assert_eq!(t3, 3.0 + 0.5f64.exp());
    let (g, (v, a)) = aux_grad_and_value(3.0);
    assert_eq!((g, v, a), (6.0, 9.0, 4.0));
    let eps = 1e-6;
    let fd = (recur(0.3 + eps) - recur(0.3 - eps)) / (2.0 * eps);
    assert_abs_diff_eq!(recur_r_grad(0.3), fd, epsilon = 1e-6);
}

// =======================================================================================
// cases/shared.rs: compiled vs the engine's interpreter, and vs finite differences.
// =======================================================================================

fn interp_env(rules: &RuleTable) -> (Env, HashMap<String, Func>) {
    let funcs: HashMap<String, Func> = fluxion_engine::expand::lower_file(include_str!("cases/shared.rs"))
        .expect("lower cases/shared.rs")
        .into_iter()
        .collect();
    let mut env = Env::default();
    env.consts.insert("SCALE".into(), Value::F(SCALE));
    env.consts.insert("LEN".into(), Value::I(LEN as i128));
    env.funcs = funcs.clone();
    env.rules = rules.clone();
    (env, funcs)
}

fn flat_value(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    v.flatten(&mut out);
    out
}

/// Compares, at `args` (with `wrt` the index of the differentiated argument):
/// the primal (bitwise), `f_jacrev` against the interpreter's VJP companion row by row, and
/// `f_jacrev_jacfwd` against the interpreter's forward-over-reverse companion column by
/// column. `jac` and `hess` are the compiled results, flattened.
#[track_caller]
fn check_interp(name: &str, args: &[Value], wrt: usize, primal: &[f64], jac: &[f64], hess: &[f64]) {
    check_interp_with(&RuleTable::standard(), name, args, wrt, primal, jac, hess);
}

#[track_caller]
fn check_interp_with(
    rules: &RuleTable,
    name: &str,
    args: &[Value],
    wrt: usize,
    primal: &[f64],
    jac: &[f64],
    hess: &[f64],
) {
    let (env, funcs) = interp_env(rules);
    let f = funcs.get(name).unwrap_or_else(|| panic!("`{name}` not lowered"));
    let y = env.eval(f, args).unwrap_or_else(|e| panic!("interpreting {name}: {e}"));
    let yflat = flat_value(&y);
    assert_eq!(
        yflat.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        primal.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "{name}: interpreted {yflat:?}, compiled {primal:?}"
    );
    let m = yflat.len();
    let n = flat_value(&args[wrt]).len();
    let tangent = |k: usize, of: &Value| -> Value {
        let mut i = 0;
        of.unflatten(&mut std::iter::from_fn(|| {
            i += 1;
            Some(if i - 1 == k { 1.0 } else { 0.0 })
        }))
    };
    let zero = |v: &Value| v.zero_tangent();

    // Reverse: row o of the Jacobian is the cotangent of the wrt argument for ct = e_o.
    let vjp = companion(f, &[Mode::Vjp], &env.rules).unwrap_or_else(|e| panic!("{name} vjp companion: {e}"));
    let mut rows = Vec::new();
    for o in 0..m {
        let mut a = args.to_vec();
        a.push(tangent(o, &y));
        let r = env
            .eval(&vjp, &a)
            .unwrap_or_else(|e| panic!("interpreting {name} vjp: {e}"));
        let Value::Tup(parts) = r else {
            panic!("{name} vjp result {r:?}")
        };
        let Value::Tup(bars) = &parts[1] else {
            panic!("{name} vjp cotangents {:?}", parts[1])
        };
        rows.extend(flat_value(&bars[wrt]));
    }
    assert_ulps(&format!("{name}: compiled jacrev vs interpreted vjp"), jac, &rows, F64);

    // Forward: column i of the Jacobian is the tangent output for x_dot = e_i.
    let jvp = companion(f, &[Mode::Jvp], &env.rules).unwrap_or_else(|e| panic!("{name} jvp companion: {e}"));
    let mut cols = vec![0.0; m * n];
    for i in 0..n {
        let mut a = args.to_vec();
        for (k, v) in args.iter().enumerate() {
            a.push(if k == wrt { tangent(i, v) } else { zero(v) });
        }
        let r = env
            .eval(&jvp, &a)
            .unwrap_or_else(|e| panic!("interpreting {name} jvp: {e}"));
        let Value::Tup(parts) = r else {
            panic!("{name} jvp result {r:?}")
        };
        for (o, v) in flat_value(&parts[1]).into_iter().enumerate() {
            cols[o * n + i] = v;
        }
    }
    assert_ulps(&format!("{name}: compiled jacrev vs interpreted jvp"), jac, &cols, F64);

    // Forward over reverse: (x, ct, x_dot, ct_dot) -> ((y, bars), (y_dot, bars_dot)).
    let fr =
        companion(f, &[Mode::Vjp, Mode::Jvp], &env.rules).unwrap_or_else(|e| panic!("{name} vjp_jvp companion: {e}"));
    let mut h = vec![0.0; m * n * n];
    for o in 0..m {
        let ct = tangent(o, &y);
        for i in 0..n {
            let mut a = args.to_vec();
            a.push(ct.clone());
            for (k, v) in args.iter().enumerate() {
                a.push(if k == wrt { tangent(i, v) } else { zero(v) });
            }
            a.push(zero(&ct));
            let r = env
                .eval(&fr, &a)
                .unwrap_or_else(|e| panic!("interpreting {name} vjp_jvp: {e}"));
            let Value::Tup(parts) = r else {
                panic!("{name} vjp_jvp result {r:?}")
            };
            let Value::Tup(dot) = &parts[1] else {
                panic!("{name} vjp_jvp tangent {:?}", parts[1])
            };
            let Value::Tup(bars_dot) = &dot[1] else {
                panic!("{name} vjp_jvp bars_dot {:?}", dot[1])
            };
            for (j, v) in flat_value(&bars_dot[wrt]).into_iter().enumerate() {
                h[(o * n + j) * n + i] = v;
            }
        }
    }
    assert_ulps(
        &format!("{name}: compiled jacfwd(jacrev) vs interpreted vjp_jvp"),
        hess,
        &h,
        F64,
    );
}

#[test]
fn shared_poly_acc() {
    for x in [[0.3, -0.8, 1.1, 0.5], [1.0, 2.0, -1.0, 0.0]] {
        check_interp(
            "poly_acc",
            &[x.value()],
            0,
            &[poly_acc(x)],
            &poly_acc_jacrev(x).flat(),
            &poly_acc_jacrev_jacfwd(x).flat(),
        );
        assert_fd(
            "poly_acc jacrev",
            &poly_acc_jacrev(x).flat(),
            &fd_jacobian(poly_acc, x, F64.step),
            F64,
        );
        assert_fd(
            "poly_acc hessian",
            &poly_acc_jacrev_jacfwd(x).flat(),
            &fd_jacobian(poly_acc_jacrev, x, F64.step),
            F64,
        );
        assert_symmetric("poly_acc hessian", &poly_acc_jacrev_jacfwd(x).flat(), 4, F64);
    }
}

#[test]
fn shared_prefix_rev() {
    let x = [0.3, -0.8, 1.1, 0.5];
    check_interp(
        "prefix_rev",
        &[x.value()],
        0,
        &prefix_rev(x),
        &prefix_rev_jacrev(x).flat(),
        &prefix_rev_jacrev_jacfwd(x).flat(),
    );
    assert_fd(
        "prefix_rev jacrev",
        &prefix_rev_jacrev(x).flat(),
        &fd_jacobian(prefix_rev, x, F64.step),
        F64,
    );
    assert_fd(
        "prefix_rev d2",
        &prefix_rev_jacrev_jacfwd(x).flat(),
        &fd_jacobian(prefix_rev_jacrev, x, F64.step),
        F64,
    );
    assert_symmetric("prefix_rev d2", &prefix_rev_jacrev_jacfwd(x).flat(), 4, F64);
}

#[test]
fn shared_layer() {
    let a = [[0.5, -1.0, 0.25], [1.5, 0.3, -0.7]];
    let x = [0.2, 0.4, -0.6];
    let b = [0.1, -0.2];
    check_interp(
        "layer",
        &[a.value(), x.value(), b.value()],
        1,
        &layer(a, x, b),
        &layer_jacrev(a, x, b).flat(),
        &layer_jacrev_jacfwd(a, x, b).flat(),
    );
    assert_fd(
        "layer jacrev",
        &layer_jacrev(a, x, b).flat(),
        &fd_jacobian(|x| layer(a, x, b), x, F64.step),
        F64,
    );
    assert_fd(
        "layer d2",
        &layer_jacrev_jacfwd(a, x, b).flat(),
        &fd_jacobian(|x| layer_jacrev(a, x, b), x, F64.step),
        F64,
    );
    assert_symmetric("layer d2", &layer_jacrev_jacfwd(a, x, b).flat(), 3, F64);
    // Closed form: (1 - y_i^2) A_ij.
    let y = layer(a, x, b);
    let j = layer_jacrev(a, x, b);
    for i in 0..2 {
        assert_ulps("layer closed form", &j[i], &a[i].map(|v| (1.0 - y[i] * y[i]) * v), F64);
    }
}

#[test]
fn shared_piecewise() {
    // Early return, each else-if branch.
    for x in [[3.0, 0.7], [-2.0, 0.4], [0.5, 0.8], [0.5, -0.8]] {
        check_interp(
            "piecewise",
            &[x.value()],
            0,
            &[piecewise(x)],
            &piecewise_jacrev(x).flat(),
            &piecewise_jacrev_jacfwd(x).flat(),
        );
        assert_fd(
            "piecewise jacrev",
            &piecewise_jacrev(x).flat(),
            &fd_jacobian(piecewise, x, F64.step),
            F64,
        );
        assert_fd(
            "piecewise hessian",
            &piecewise_jacrev_jacfwd(x).flat(),
            &fd_jacobian(piecewise_jacrev, x, F64.step),
            F64,
        );
    }
    assert_eq!(piecewise_jacrev([-2.0, 0.4]), [0.0, 2.0 * 0.4 * std::f64::consts::PI]);
}

#[test]
fn shared_shadowing() {
    for x in [[0.3, 0.9], [-1.2, 0.4]] {
        check_interp(
            "shadowing",
            &[x.value()],
            0,
            &[shadowing(x)],
            &shadowing_jacrev(x).flat(),
            &shadowing_jacrev_jacfwd(x).flat(),
        );
        assert_fd(
            "shadowing jacrev",
            &shadowing_jacrev(x).flat(),
            &fd_jacobian(shadowing, x, F64.step),
            F64,
        );
        assert_fd(
            "shadowing hessian",
            &shadowing_jacrev_jacfwd(x).flat(),
            &fd_jacobian(shadowing_jacrev, x, F64.step),
            F64,
        );
        assert_symmetric("shadowing hessian", &shadowing_jacrev_jacfwd(x).flat(), 2, F64);
    }
}

#[test]
fn shared_uses_softplus() {
    // Includes the callee's `x > 30` branch.
    for x in [[0.3, 0.9], [-1.2, 0.4], [8.0, 5.0]] {
        check_interp(
            "uses_softplus",
            &[x.value()],
            0,
            &[uses_softplus(x)],
            &uses_softplus_jacrev(x).flat(),
            &uses_softplus_jacrev_jacfwd(x).flat(),
        );
        assert_fd(
            "uses_softplus jacrev",
            &uses_softplus_jacrev(x).flat(),
            &fd_jacobian(uses_softplus, x, F64.step),
            F64,
        );
        assert_fd(
            "uses_softplus hessian",
            &uses_softplus_jacrev_jacfwd(x).flat(),
            &fd_jacobian(uses_softplus_jacrev, x, F64.step),
            F64,
        );
        assert_symmetric("uses_softplus hessian", &uses_softplus_jacrev_jacfwd(x).flat(), 2, F64);
    }
}

#[test]
fn shared_transcend() {
    for x in [[0.3, 0.9], [-0.45, 2.5]] {
        check_interp(
            "transcend",
            &[x.value()],
            0,
            &transcend(x),
            &transcend_jacrev(x).flat(),
            &transcend_jacrev_jacfwd(x).flat(),
        );
        assert_fd(
            "transcend jacrev",
            &transcend_jacrev(x).flat(),
            &fd_jacobian(transcend, x, F64.step),
            F64,
        );
        assert_fd(
            "transcend d2",
            &transcend_jacrev_jacfwd(x).flat(),
            &fd_jacobian(transcend_jacrev, x, F64.step),
            F64,
        );
        assert_symmetric("transcend d2", &transcend_jacrev_jacfwd(x).flat(), 2, F64);
    }
}

#[test]
fn shared_kinks() {
    for x in [[0.0, 1.0, 1.0], [-1.0, 2.0, 1.0], [0.5, -1.0, 3.0]] {
        check_interp(
            "kinks",
            &[x.value()],
            0,
            &kinks(x),
            &kinks_jacrev(x).flat(),
            &kinks_jacrev_jacfwd(x).flat(),
        );
    }
}

/// The interpreter comparison is sensitive: with one derivative rule mutated in the
/// interpreter's rule table (as a wrong rule in the engine would be), it fails.
#[test]
fn interpreter_comparison_detects_wrong_rules() {
    let x4 = [0.3, -0.8, 1.1, 0.5];
    let x2 = [0.3, 0.9];
    let (a, x3, b) = ([[0.5, -1.0, 0.25], [1.5, 0.3, -0.7]], [0.2, 0.4, -0.6], [0.1, -0.2]);
    type Run = Box<dyn Fn(&RuleTable)>;
    let cases: Vec<(&str, Prim, Mutation, Run)> = vec![
        (
            "poly_acc",
            Prim::Powi,
            Mutation::Scale(1.0 + 1e-9),
            Box::new(move |r: &RuleTable| {
                check_interp_with(
                    r,
                    "poly_acc",
                    &[x4.value()],
                    0,
                    &[poly_acc(x4)],
                    &poly_acc_jacrev(x4).flat(),
                    &poly_acc_jacrev_jacfwd(x4).flat(),
                )
            }),
        ),
        (
            "layer",
            Prim::Tanh,
            Mutation::FlipSign,
            Box::new(move |r: &RuleTable| {
                check_interp_with(
                    r,
                    "layer",
                    &[a.value(), x3.value(), b.value()],
                    1,
                    &layer(a, x3, b),
                    &layer_jacrev(a, x3, b).flat(),
                    &layer_jacrev_jacfwd(a, x3, b).flat(),
                )
            }),
        ),
        (
            "transcend",
            Prim::Atan2,
            Mutation::DropTerm(1),
            Box::new(move |r: &RuleTable| {
                check_interp_with(
                    r,
                    "transcend",
                    &[x2.value()],
                    0,
                    &transcend(x2),
                    &transcend_jacrev(x2).flat(),
                    &transcend_jacrev_jacfwd(x2).flat(),
                )
            }),
        ),
        // Through a call: the rule is used by the callee's companion.
        (
            "uses_softplus",
            Prim::Ln1p,
            Mutation::Scale(1.5),
            Box::new(move |r: &RuleTable| {
                check_interp_with(
                    r,
                    "uses_softplus",
                    &[x2.value()],
                    0,
                    &[uses_softplus(x2)],
                    &uses_softplus_jacrev(x2).flat(),
                    &uses_softplus_jacrev_jacfwd(x2).flat(),
                )
            }),
        ),
    ];
    for (name, p, how, run) in cases {
        run(&RuleTable::standard());
        let mutated = RuleTable::standard().mutated(p, how);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mutated)));
        assert!(
            caught.is_err(),
            "{name}: the comparison did not notice a mutated {p:?} rule ({how:?})"
        );
    }
}

// =======================================================================================
// Call results without a type annotation inside loops and branches (their adjoints are
// typed by rustc through `zero_like`): once engine bugs, now checked by value.
// =======================================================================================

mod unannotated_calls {
    use fluxion::{differentiable, grad, hessian};

    #[differentiable]
    fn softplus(x: f64) -> f64 {
        x.exp().ln_1p()
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[grad]
    fn in_loop(x: [f64; 3]) -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            s += softplus(x[i]);
        }
        s
    }

    #[hessian]
    fn in_loop_h(x: [f64; 3]) -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            s += softplus(x[i]);
        }
        s
    }

    #[grad]
    fn loop_state(x: [f64; 3]) -> f64 {
        let a = softplus(x[0]);
        let mut s = a;
        for i in 0..3 {
            s *= x[i];
        }
        s
    }

    #[grad]
    fn in_branch(x: f64) -> f64 {
        let mut s = x;
        if x > 0.0 {
            s = softplus(x) * x;
        }
        s
    }

    fn close(a: f64, b: f64) -> bool {
        approx::abs_diff_eq!(a, b, epsilon = 1e-14 * (1.0 + b.abs()))
    }

    #[test]
    fn call_results_in_loops_and_branches() {
        let x = [0.3, -1.2, 2.0];
        let g = in_loop_grad(x);
        let h = in_loop_h_hessian(x);
        for i in 0..3 {
            assert!(close(g[i], sigmoid(x[i])), "{g:?}");
            for j in 0..3 {
                let exact = if i == j {
                    sigmoid(x[i]) * (1.0 - sigmoid(x[i]))
                } else {
                    0.0
                };
                assert!(close(h[i][j], exact), "{h:?}");
            }
        }
        // s = softplus(x0) * x0 * x1 * x2
        let g = loop_state_grad(x);
        let sp = softplus(x[0]);
        assert!(close(g[0], sigmoid(x[0]) * x[0] * x[1] * x[2] + sp * x[1] * x[2]));
        assert!(close(g[1], sp * x[0] * x[2]));
        assert!(close(g[2], sp * x[0] * x[1]));
        // s = softplus(x) x for x > 0, else x.
        assert!(close(in_branch_grad(0.7), sigmoid(0.7) * 0.7 + softplus(0.7)));
        assert_eq!(in_branch_grad(-0.7), 1.0);
    }
}
