//! The examples of the `torch.func` documentation (grad, grad_and_value, vjp, jvp, jacrev,
//! jacfwd, hessian), written with fluxion's attributes, each asserting the values the
//! documentation asserts (`torch.allclose`).
//!
//! Tolerance: the generated derivatives evaluate the same libm calls as the closed forms
//! (`cos x`, `-sin x`, ..), possibly in another association order, so values are compared
//! with `|a - b| <= 4 ulp * max(1, |b|)` (`TOL`), far below torch's `allclose` default
//! (`rtol = 1e-5`). Structural zeros (off-diagonal Jacobian entries) are compared exactly.

#![allow(clippy::needless_range_loop)] // differentiated bodies use index loops (the supported form)

use fluxion::{grad, grad_and_value, hessian, jacfwd, jacrev, jvp, stop_gradient, vjp};

const TOL: f64 = 4.0 * f64::EPSILON;

/// Inputs used by every example (`torch.randn(5)` in the documentation).
const X: [f64; 5] = [0.3, -1.2, 2.5, 0.0, -3.1];
const Y: [f64; 5] = [1.7, 0.4, -0.9, 2.2, -0.05];

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= TOL * b.abs().max(1.0)
}

#[track_caller]
fn assert_close(a: f64, b: f64) {
    assert!(close(a, b), "{a:e} != {b:e} (diff {:e})", a - b);
}

#[track_caller]
fn assert_vec<const N: usize>(a: [f64; N], b: [f64; N]) {
    for i in 0..N {
        assert!(
            close(a[i], b[i]),
            "element {i}: {:e} != {:e}\n  got {a:?}\n want {b:?}",
            a[i],
            b[i]
        );
    }
}

/// Asserts `m == diag(d)`: the diagonal within `TOL`, every other entry exactly zero.
#[track_caller]
fn assert_diag<const N: usize>(m: [[f64; N]; N], d: [f64; N]) {
    for i in 0..N {
        for j in 0..N {
            if i == j {
                assert!(
                    close(m[i][j], d[i]),
                    "diagonal {i}: {:e} != {:e}\n got {m:?}",
                    m[i][j],
                    d[i]
                );
            } else {
                assert_eq!(m[i][j], 0.0, "off-diagonal ({i}, {j}) of {m:?}");
            }
        }
    }
}

fn map<const N: usize>(x: [f64; N], f: impl Fn(f64) -> f64) -> [f64; N] {
    x.map(f)
}

// ---------------------------------------------------------------------------------------
// jacrev: `jacobian = jacrev(torch.sin)(x); expected = torch.diag(torch.cos(x))`
// ---------------------------------------------------------------------------------------

/// `torch.sin` over a vector, written with a loop.
#[jacrev]
fn sin_loop(x: [f64; 5]) -> [f64; 5] {
    let mut y = [0.0; 5];
    for i in 0..5 {
        y[i] = x[i].sin();
    }
    y
}

/// `torch.sin` over a vector, written as an array expression.
#[jacrev]
fn sin_array(x: [f64; 3]) -> [f64; 3] {
    [x[0].sin(), x[1].sin(), x[2].sin()]
}

/// The same with a const generic length.
#[jacrev]
fn sin_generic<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = x[i].sin();
    }
    y
}

#[test]
fn jacrev_of_sin_is_diag_cos() {
    assert_diag(sin_loop_jacrev(X), map(X, f64::cos));
    let x3 = [X[0], X[1], X[2]];
    assert_diag(sin_array_jacrev(x3), map(x3, f64::cos));
    assert_diag(sin_generic_jacrev(X), map(X, f64::cos));
    assert_diag(sin_generic_jacrev([0.7]), [0.7f64.cos()]);
    // The primal is untouched.
    assert_eq!(sin_loop(X), map(X, f64::sin));
}

// `hessian = jacrev(jacrev(f))(x)` with `f(x) = x.sin().sum()`: `diag(-sin x)`.

#[jacrev]
#[jacrev]
fn sum_sin(x: [f64; 5]) -> f64 {
    let mut s = 0.0;
    for i in 0..5 {
        s += x[i].sin();
    }
    s
}

/// `x.sin().sum()` with `.iter().sum()` over an array expression.
#[jacrev]
#[jacrev]
fn sum_sin_iter(x: [f64; 3]) -> f64 {
    let s = [x[0].sin(), x[1].sin(), x[2].sin()];
    s.iter().sum()
}

#[test]
fn jacrev_jacrev_of_sum_sin_is_diag_minus_sin() {
    // jacrev of a scalar function is gradient-shaped: cos x.
    assert_vec(sum_sin_jacrev(X), map(X, f64::cos));
    assert_diag(sum_sin_jacrev_jacrev(X), map(X, |v| -v.sin()));
    let x3 = [X[0], X[1], X[2]];
    assert_vec(sum_sin_iter_jacrev(x3), map(x3, f64::cos));
    assert_diag(sum_sin_iter_jacrev_jacrev(x3), map(x3, |v| -v.sin()));
}

// ---------------------------------------------------------------------------------------
// argnums: `def f(x, y): return x + y ** 2`; `jacrev(f, argnums=1)(x, y)` is `diag(2 y)`,
// `jacrev(f, argnums=(0, 1))(x, y)` is `(I, diag(2 y))`.
// ---------------------------------------------------------------------------------------

#[jacrev(argnums = 1)]
fn plus_sq_1(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] + y[i] * y[i];
    }
    out
}

#[jacrev(argnums = (0, 1))]
fn plus_sq_01(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] + y[i].powi(2);
    }
    out
}

#[jacfwd(argnums = 1)]
fn plus_sq_fwd_1(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] + y[i] * y[i];
    }
    out
}

#[jacfwd(argnums = (0, 1))]
fn plus_sq_fwd_01(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] + y[i].powi(2);
    }
    out
}

/// `argnums = (1,)`: a tuple of one Jacobian.
#[jacrev(argnums = (1,))]
fn plus_sq_t1(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] + y[i] * y[i];
    }
    out
}

#[test]
fn argnums_selects_arguments() {
    let two_y = map(Y, |v| 2.0 * v);
    let ones = [1.0; 5];
    assert_diag(plus_sq_1_jacrev(X, Y), two_y);
    let (jx, jy) = plus_sq_01_jacrev(X, Y);
    assert_diag(jx, ones);
    assert_diag(jy, two_y);
    assert_diag(plus_sq_fwd_1_jacfwd(X, Y), two_y);
    let (jx, jy) = plus_sq_fwd_01_jacfwd(X, Y);
    assert_diag(jx, ones);
    assert_diag(jy, two_y);
    let (jy,) = plus_sq_t1_jacrev(X, Y);
    assert_diag(jy, two_y);
}

// ---------------------------------------------------------------------------------------
// has_aux
// ---------------------------------------------------------------------------------------

/// `def f(x): x_sin = x.sin(); return x_sin, x_sin`;
/// `jacobian, aux = jacrev(f, has_aux=True)(x)`; `aux == x.sin()`.
#[jacrev(has_aux)]
fn sin_with_aux(x: [f64; 5]) -> ([f64; 5], [f64; 5]) {
    let mut s = [0.0; 5];
    for i in 0..5 {
        s[i] = x[i].sin();
    }
    (s, s)
}

/// The aux is a nonlinear function of `x`, to check it does not leak into the derivative.
#[jacfwd(has_aux)]
fn sin_with_aux_fwd(x: [f64; 5]) -> ([f64; 5], f64) {
    let mut s = [0.0; 5];
    let mut e = 0.0;
    for i in 0..5 {
        s[i] = x[i].sin();
        e += x[i].exp();
    }
    (s, e)
}

/// The documentation's loss:
/// ```python
/// def my_loss_func(y, y_pred):
///     loss_per_sample = (0.5 * y_pred - y) ** 2
///     loss = loss_per_sample.mean()
///     return loss, (y_pred, loss_per_sample)
/// fn = grad(my_loss_func, argnums=(0, 1), has_aux=True)
/// ```
#[grad(argnums = (0, 1), has_aux)]
fn my_loss_func(y: [f64; 4], y_pred: [f64; 4]) -> (f64, ([f64; 4], [f64; 4])) {
    let mut loss_per_sample = [0.0; 4];
    for i in 0..4 {
        loss_per_sample[i] = (0.5 * y_pred[i] - y[i]).powi(2);
    }
    let loss = loss_per_sample.iter().sum::<f64>() / 4.0;
    (loss, (y_pred, loss_per_sample))
}

/// `grad_and_value(f, has_aux=True)`: `(grad, (value, aux))`.
#[grad_and_value(has_aux)]
fn sq_with_aux(x: f64) -> (f64, f64) {
    let y = x * x;
    (y.sin(), y.exp())
}

#[test]
fn has_aux_returns_aux_unchanged() {
    let (j, aux) = sin_with_aux_jacrev(X);
    assert_eq!(aux, map(X, f64::sin));
    assert_diag(j, map(X, f64::cos));

    let (j, aux) = sin_with_aux_fwd_jacfwd(X);
    assert_eq!(aux.to_bits(), sin_with_aux_fwd(X).1.to_bits());
    assert_diag(j, map(X, f64::cos));

    let y = [0.1, 0.5, -0.3, 2.0];
    let y_pred = [0.4, 1.5, 0.2, 3.0];
    let ((gy, gp), (aux_pred, aux_loss)) = my_loss_func_grad(y, y_pred);
    assert_eq!(aux_pred, y_pred);
    assert_eq!((aux_pred, aux_loss), my_loss_func(y, y_pred).1);
    for i in 0..4 {
        let r = 0.5 * y_pred[i] - y[i];
        assert_close(aux_loss[i], r * r);
        // d/dy (r^2 / 4) = -2 r / 4, d/dy_pred = 0.5 * 2 r / 4
        assert_close(gy[i], -0.5 * r);
        assert_close(gp[i], 0.25 * r);
    }

    let x = 0.8;
    let (g, (v, aux)) = sq_with_aux_grad_and_value(x);
    assert_eq!(v.to_bits(), sq_with_aux(x).0.to_bits());
    assert_eq!(aux.to_bits(), sq_with_aux(x).1.to_bits());
    assert_close(g, 2.0 * x * (x * x).cos());
}

// ---------------------------------------------------------------------------------------
// grad: `grad(torch.sin)(x) == cos x`, `grad(grad(torch.sin))(x) == -sin x`, and inner
// `torch.no_grad` (fluxion's `stop_gradient`).
// ---------------------------------------------------------------------------------------

#[grad]
#[grad]
fn sin1(x: f64) -> f64 {
    x.sin()
}

/// Documentation, "Case 1: Using torch.no_grad inside a function":
/// ```python
/// def f(x):
///     with torch.no_grad():
///         c = x ** 2
///     return x - c
/// ```
/// `grad(f)(x)` respects the inner `no_grad`: the gradient is 1.
#[grad]
fn no_grad_inside(x: f64) -> f64 {
    let c = stop_gradient(x.powi(2));
    x - c
}

/// `f(x) = x * stop_gradient(x)`: gradient `x`, not `2 x`.
#[grad_and_value]
fn times_stopped(x: f64) -> f64 {
    x * stop_gradient(x)
}

/// `stop_gradient` of an array element inside a loop, in forward mode too.
#[jacfwd]
#[jacrev]
fn stopped_sum(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += x[i] * stop_gradient(x[i]).sin();
    }
    s
}

#[test]
fn grad_examples() {
    for x in X {
        assert_close(sin1_grad(x), x.cos());
        assert_close(sin1_grad_grad(x), -x.sin());
        assert_eq!(no_grad_inside_grad(x), 1.0);
        let (g, v) = times_stopped_grad_and_value(x);
        assert_eq!(g, x);
        assert_eq!(v.to_bits(), (x * x).to_bits());
    }
    let x = [0.3, -0.7, 1.9];
    assert_vec(stopped_sum_jacrev(x), map(x, f64::sin));
    // Second derivative: the stopped factor is a constant, so the Hessian is zero.
    assert_eq!(stopped_sum_jacrev_jacfwd(x), [[0.0; 3]; 3]);
}

// ---------------------------------------------------------------------------------------
// jacfwd: same examples as jacrev; `jacfwd(jacrev(f))` is the Hessian.
// ---------------------------------------------------------------------------------------

#[jacfwd]
fn sin_loop_fwd(x: [f64; 5]) -> [f64; 5] {
    let mut y = [0.0; 5];
    for i in 0..5 {
        y[i] = x[i].sin();
    }
    y
}

#[jacfwd]
fn sin_array_fwd(x: [f64; 3]) -> [f64; 3] {
    [x[0].sin(), x[1].sin(), x[2].sin()]
}

/// A dense Jacobian (every output depends on every input), both modes.
#[jacrev]
fn dense_rev(x: [f64; 3]) -> [f64; 2] {
    [x[0] * x[1].sin() + x[2].exp(), (x[0] - x[2]).tanh() * x[1]]
}

#[jacfwd]
fn dense_fwd(x: [f64; 3]) -> [f64; 2] {
    [x[0] * x[1].sin() + x[2].exp(), (x[0] - x[2]).tanh() * x[1]]
}

#[test]
fn jacfwd_equals_jacrev() {
    assert_diag(sin_loop_fwd_jacfwd(X), map(X, f64::cos));
    assert_eq!(sin_loop_fwd_jacfwd(X), sin_loop_jacrev(X));
    let x3 = [X[0], X[1], X[2]];
    assert_diag(sin_array_fwd_jacfwd(x3), map(x3, f64::cos));
    assert_eq!(sin_array_fwd_jacfwd(x3), sin_array_jacrev(x3));
    let x = [0.4, -1.1, 0.9];
    let (r, f) = (dense_rev_jacrev(x), dense_fwd_jacfwd(x));
    for i in 0..2 {
        assert_vec(r[i], f[i]);
    }
    let t = (x[0] - x[2]).tanh();
    let s = 1.0 - t * t;
    assert_vec(r[0], [x[1].sin(), x[0] * x[1].cos(), x[2].exp()]);
    assert_vec(r[1], [s * x[1], t, -s * x[1]]);
}

// ---------------------------------------------------------------------------------------
// hessian: `def f(x): return x.sin().sum()`; `hessian(f)(x)` is `diag(-sin x)` and equals
// `jacfwd(jacrev(f))(x)`.
// ---------------------------------------------------------------------------------------

#[hessian]
fn sum_sin_h(x: [f64; 5]) -> f64 {
    let mut s = 0.0;
    for i in 0..5 {
        s += x[i].sin();
    }
    s
}

#[jacfwd]
#[jacrev]
fn sum_sin_fr(x: [f64; 5]) -> f64 {
    let mut s = 0.0;
    for i in 0..5 {
        s += x[i].sin();
    }
    s
}

/// A non-diagonal Hessian: `x0 x1^2 + sin(x0 x2)`.
#[hessian]
fn mixed_h(x: [f64; 3]) -> f64 {
    x[0] * x[1] * x[1] + (x[0] * x[2]).sin()
}

#[jacfwd]
#[jacrev]
fn mixed_fr(x: [f64; 3]) -> f64 {
    x[0] * x[1] * x[1] + (x[0] * x[2]).sin()
}

#[test]
fn hessian_equals_jacfwd_of_jacrev() {
    let h = sum_sin_h_hessian(X);
    assert_diag(h, map(X, |v| -v.sin()));
    assert_eq!(h, sum_sin_fr_jacrev_jacfwd(X));
    assert_eq!(h, sum_sin_jacrev_jacrev(X));

    let x = [0.6, -1.3, 2.1];
    let h = mixed_h_hessian(x);
    assert_eq!(h, mixed_fr_jacrev_jacfwd(x));
    let (s, c) = ((x[0] * x[2]).sin(), (x[0] * x[2]).cos());
    let want = [
        [-x[2] * x[2] * s, 2.0 * x[1], c - x[0] * x[2] * s],
        [2.0 * x[1], 2.0 * x[0], 0.0],
        [c - x[0] * x[2] * s, 0.0, -x[0] * x[0] * s],
    ];
    for i in 0..3 {
        assert_vec(h[i], want[i]);
    }
}

// ---------------------------------------------------------------------------------------
// vjp
// ---------------------------------------------------------------------------------------

/// `(_, vjpfunc) = vjp(torch.sin, x); vjps = vjpfunc(torch.ones(5))`: `cos x`.
#[vjp]
fn vsin(x: [f64; 5]) -> [f64; 5] {
    let mut y = [0.0; 5];
    for i in 0..5 {
        y[i] = x[i].sin();
    }
    y
}

/// `f = lambda x, y: (x.sin() + y.cos())`; `vjps = vjpfunc(torch.ones([5]))`:
/// `vjps[0] == x.cos()`, `vjps[1] == -y.sin()`.
#[vjp]
fn vsin_plus_cos(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i].sin() + y[i].cos();
    }
    out
}

/// `f = lambda x: (torch.sin(x), torch.cos(x))`;
/// `vjps = vjpfunc((torch.ones([5]), torch.ones([5])))`: `vjps[0] == x.cos() + -x.sin()`.
#[vjp]
fn vsin_cos_pair(x: [f64; 5]) -> ([f64; 5], [f64; 5]) {
    let mut s = [0.0; 5];
    let mut c = [0.0; 5];
    for i in 0..5 {
        s[i] = x[i].sin();
        c[i] = x[i].cos();
    }
    (s, c)
}

#[test]
fn vjp_examples() {
    let (y, pullback) = vsin_vjp(X);
    assert_eq!(y, vsin(X));
    let (gx,) = pullback([1.0; 5]);
    assert_vec(gx, map(X, f64::cos));
    // A non-trivial cotangent scales each row.
    let ct = [2.0, -1.0, 0.5, 3.0, 0.0];
    let (gx,) = pullback(ct);
    assert_vec(gx, std::array::from_fn(|i| ct[i] * X[i].cos()));
    // The cotangent form.
    let (y2, (gx2,)) = vsin_vjp_ct(X, ct);
    assert_eq!(y2, y);
    assert_eq!(gx2, gx);

    let (y, pullback) = vsin_plus_cos_vjp(X, Y);
    assert_eq!(y, vsin_plus_cos(X, Y));
    let (gx, gy) = pullback([1.0; 5]);
    assert_vec(gx, map(X, f64::cos));
    assert_vec(gy, map(Y, |v| -v.sin()));
}

#[test]
fn vjp_of_tuple_output() {
    let (y, pullback) = vsin_cos_pair_vjp(X);
    assert_eq!(y, vsin_cos_pair(X));
    let (gx,) = pullback(([1.0; 5], [1.0; 5]));
    assert_vec(gx, map(X, |v| v.cos() + -v.sin()));
}

// ---------------------------------------------------------------------------------------
// jvp
// ---------------------------------------------------------------------------------------

/// `jvp(torch.sin, (x,), (torch.ones(5),))`: the tangent output is `cos x`.
#[jvp]
fn jsin(x: [f64; 5]) -> [f64; 5] {
    let mut y = [0.0; 5];
    for i in 0..5 {
        y[i] = x[i].sin();
    }
    y
}

/// `f = lambda x: x * torch.tensor([1., 2., 3])`;
/// `value, grad = jvp(f, (x,), (torch.tensor(1.),))`: `value == f(x)`, `grad == [1, 2, 3]`.
#[jvp]
fn jscale(x: f64) -> [f64; 3] {
    [x * 1.0, x * 2.0, x * 3.0]
}

/// The Jacobian of a scalar -> array function is an array (`[f64; M]`).
#[jacrev]
fn scale_rev(x: f64) -> [f64; 3] {
    [x * 1.0, x * 2.0, x * 3.0]
}

#[jacfwd]
fn scale_fwd(x: f64) -> [f64; 3] {
    [x * 1.0, x * 2.0, x * 3.0]
}

/// `f = lambda x, y: (x * y)`; `_, output = jvp(f, (x, y), (torch.ones(5), torch.ones(5)))`:
/// `output == x + y`.
#[jvp]
fn jmul(x: [f64; 5], y: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for i in 0..5 {
        out[i] = x[i] * y[i];
    }
    out
}

#[test]
fn jvp_examples() {
    let (y, t) = jsin_jvp(X, [1.0; 5]);
    assert_eq!(y, jsin(X));
    assert_vec(t, map(X, f64::cos));
    // jvp with a basis tangent is a column of the Jacobian.
    let (_, t) = jsin_jvp(X, [0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(t, [0.0, 0.0, X[2].cos(), 0.0, 0.0]);

    let x = -0.37;
    let (v, g) = jscale_jvp(x, 1.0);
    assert_eq!(v, jscale(x));
    assert_eq!(g, [1.0, 2.0, 3.0]);
    assert_eq!(scale_rev_jacrev(x), [1.0, 2.0, 3.0]);
    assert_eq!(scale_fwd_jacfwd(x), [1.0, 2.0, 3.0]);

    let (v, out) = jmul_jvp(X, Y, [1.0; 5], [1.0; 5]);
    assert_eq!(v, jmul(X, Y));
    assert_vec(out, std::array::from_fn(|i| X[i] + Y[i]));
}
