//! Compiled regression tests for defects users hit: each test fails without its fix.

use approx::assert_relative_eq;
use fluxion::{differentiable, grad, grad_and_value, hessian, jacfwd, jacrev};

// --- `argnums` tuples give results in the listed order (torch.func's), not parameter order.

#[grad(argnums = (1, 0))]
fn swapped(x: f64, y: f64) -> f64 {
    x * y + y * y * y
}

#[grad_and_value(argnums = (1, 0), name = "swapped_gv")]
fn swapped2(x: f64, y: f64) -> f64 {
    x * y + y * y * y
}

#[jacrev(argnums = (1, 0), name = "swapped_jacrev")]
fn swapped3(x: f64, y: f64) -> f64 {
    x * y + y * y * y
}

#[jacfwd(argnums = (1, 0), name = "swapped_jacfwd")]
fn swapped4(x: f64, y: f64) -> f64 {
    x * y + y * y * y
}

/// Arguments of different types: the listed order decides the result's type.
#[grad(argnums = (1, 0))]
fn mixed(x: [f64; 2], y: f64) -> f64 {
    x[0] * y + x[1] * y * y
}

#[jacrev(argnums = (2, 0))]
fn mixed_jac(x: [f64; 2], k: usize, y: f64) -> [f64; 2] {
    let s = k as f64;
    [x[0] * y * s, x[1] * y * y]
}

#[jacfwd(argnums = (2, 0), name = "mixed_jacfwd")]
fn mixed_jac2(x: [f64; 2], k: usize, y: f64) -> [f64; 2] {
    let s = k as f64;
    [x[0] * y * s, x[1] * y * y]
}

#[test]
fn argnums_tuples_keep_the_listed_order() {
    // ∂/∂y = x + 3y² = 29, ∂/∂x = y = 3 at (2, 3).
    assert_eq!(swapped_grad(2.0, 3.0), (29.0, 3.0));
    assert_eq!(swapped_gv(2.0, 3.0), ((29.0, 3.0), 33.0));
    assert_eq!(swapped_jacrev(2.0, 3.0), (29.0, 3.0));
    assert_eq!(swapped_jacfwd(2.0, 3.0), (29.0, 3.0));
    let (gy, gx): (f64, [f64; 2]) = mixed_grad([2.0, 5.0], 3.0);
    assert_eq!(gy, 2.0 + 2.0 * 5.0 * 3.0);
    assert_eq!(gx, [3.0, 9.0]);
    let (jy, jx): ([f64; 2], [[f64; 2]; 2]) = mixed_jac_jacrev([2.0, 5.0], 4, 3.0);
    assert_relative_eq!(jy[0], 8.0);
    assert_relative_eq!(jy[1], 30.0);
    assert_eq!(jx, [[12.0, 0.0], [0.0, 9.0]]);
    assert_eq!(mixed_jacfwd([2.0, 5.0], 4, 3.0), (jy, jx));
}

// --- Float `%` and `%=` are differentiable like JAX's `rem`: ∂x = 1, ∂y = -trunc(x / y).

#[grad]
fn rem_assign(x: f64) -> f64 {
    let mut y = 3.0 * x;
    y %= 1.0;
    y
}

#[grad]
fn rem_assign_element(x: [f64; 2]) -> f64 {
    let mut y = [2.0 * x[0], x[1]];
    y[0] %= x[1];
    y[0] * y[1]
}

#[grad(argnums = (0, 1))]
fn rem_both(x: f64, y: f64) -> f64 {
    (x * x) % y
}

#[jacfwd(argnums = (0, 1), name = "rem_both_fwd")]
fn rem_both2(x: f64, y: f64) -> f64 {
    (x * x) % y
}

fn central(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-6;
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn float_remainder_is_differentiable() {
    // 3x % 1 has slope 3 between the jumps.
    assert_eq!(rem_assign_grad(0.1), 3.0);
    assert_eq!(rem_assign_grad(-0.7), 3.0);
    // y0 = (2 x0) % x1: ∂/∂x0 (y0 x1) = 2 x1, ∂/∂x1 = -trunc(2 x0 / x1) x1 + y0.
    let (x0, x1) = (1.7, 0.9);
    let y0 = (2.0 * x0) % x1;
    let g = rem_assign_element_grad([x0, x1]);
    assert_relative_eq!(g[0], 2.0 * x1);
    assert_relative_eq!(g[1], -((2.0 * x0 / x1).trunc()) * x1 + y0, max_relative = 1e-15);
    assert_relative_eq!(g[1], central(|t| rem_assign_element([x0, t]), x1), max_relative = 1e-7);
    for (x, y) in [(1.3, 0.7), (-2.1, 0.5), (0.3, 2.0), (2.5, -0.8)] {
        let (gx, gy) = rem_both_grad(x, y);
        assert_eq!(gx, 2.0 * x);
        assert_eq!(gy, -(x * x / y).trunc());
        assert_relative_eq!(gx, central(|t| rem_both(t, y), x), max_relative = 1e-7);
        assert_relative_eq!(gy, central(|t| rem_both(x, t), y), epsilon = 1e-7);
        assert_eq!(rem_both_fwd(x, y), (gx, gy));
    }
}

// --- Reverse mode over long loops: loop-invariant values are taped once, tapes above
// 64 KiB live on the heap, so a 10^6-step loop runs on a 2 MiB thread.

const STEPS: usize = 1_000_000;

/// Explicit Euler for `x' = -k sin x` over unit time, with a literal bound.
#[grad(argnums = (0, 1))]
fn euler(x0: f64, k: f64) -> f64 {
    let dt = 1e-6;
    let mut x = x0;
    for _i in 0..1_000_000 {
        x = x - dt * k * x.sin();
    }
    x
}

/// The same with the bound a named constant: rustc picks the tape's storage.
#[differentiable]
fn euler_const(x0: f64, k: f64) -> f64 {
    let dt = 1.0 / (STEPS as f64);
    let mut x = x0;
    for _i in 0..STEPS {
        x = x - dt * k * x.sin();
    }
    x
}

/// Through a call: the callee's reverse companion has the tapes.
#[grad(argnums = (0, 1))]
fn euler_call(x0: f64, k: f64) -> f64 {
    euler_const(x0, k)
}

/// Second order through the loop: the tangent tapes are on the heap too.
#[hessian(argnums = 1)]
fn euler_k(x0: f64, k: f64) -> f64 {
    euler_const(x0, k)
}

/// A small loop keeps its tape on the stack.
#[grad]
fn small_loop(x: [f64; 8]) -> f64 {
    let mut s = 0.0;
    for i in 0..8 {
        s = s * x[i].sin() + 1.0;
    }
    s
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("the thread ran to the end")
}

#[test]
fn a_million_step_reverse_loop_runs_on_a_2_mib_thread() {
    let (x0, k) = (1.0, 0.7);
    let (gx, gk) = on_small_stack(move || euler_grad(x0, k));
    let (cx, ck) = on_small_stack(move || euler_call_grad(x0, k));
    assert_eq!((gx, gk), (cx, ck));
    let fx = central(|t| euler(t, k), x0);
    let fk = central(|t| euler(x0, t), k);
    assert_relative_eq!(gx, fx, max_relative = 1e-6);
    assert_relative_eq!(gk, fk, max_relative = 1e-6);
    // The continuous solution's sensitivities are close (Euler's error is O(dt)).
    assert!(gx > 0.0 && gk < 0.0);
    let h = on_small_stack(move || euler_k_hessian(x0, k));
    let fkk = central(|t| euler_call_grad(x0, t).1, k);
    assert_relative_eq!(h, fkk, max_relative = 1e-5);
}

#[test]
fn a_small_loop_is_unchanged() {
    let x = [0.3, -1.2, 0.5, 2.0, 1.1, -0.4, 0.9, 0.2];
    let g = small_loop_grad(x);
    for i in 0..8 {
        let fd = central(
            |t| {
                let mut y = x;
                y[i] = t;
                small_loop(y)
            },
            x[i],
        );
        assert_relative_eq!(g[i], fd, max_relative = 1e-7, epsilon = 1e-9);
    }
}

// --- Large results: every generated function has an `_into` form writing into the
// caller's buffer, with no local of the result's size.

const BIG: usize = 1000;

#[jacrev]
fn wide(x: [f64; BIG]) -> [f64; BIG] {
    let mut y = [0.0; BIG];
    for i in 0..BIG {
        y[i] = x[i].sin() * x[(i + 1) % BIG];
    }
    y
}

#[jacfwd(name = "wide_jacfwd")]
fn wide2(x: [f64; BIG]) -> [f64; BIG] {
    let mut y = [0.0; BIG];
    for i in 0..BIG {
        y[i] = x[i].sin() * x[(i + 1) % BIG];
    }
    y
}

#[hessian]
fn big_sum(x: [f64; BIG]) -> f64 {
    let mut s = 0.0;
    for i in 0..BIG {
        s += x[i] * x[(i + 1) % BIG].sin();
    }
    s
}

/// Small functions with tuple results: the `_into` form writes what the by-value form
/// returns, bit for bit, whatever `out` held before.
#[grad_and_value(argnums = (1, 0), has_aux)]
fn small_aux(x: [f64; 3], y: f64) -> (f64, usize) {
    (x[0] * y.sin() + x[1] * x[2], 7)
}

#[jacrev(argnums = (1, 0), name = "small_jac")]
fn small_jac0(x: [f64; 3], y: f64) -> [f64; 2] {
    [x[0] * y, x[1] * x[2] * y]
}

fn boxed<T: Clone, const N: usize>(zero: T) -> Box<[T; N]> {
    vec![zero; N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

/// `∂y_i/∂x_k` of `wide`: `y_i = sin(x_i) x_{i+1}`.
fn wide_entry(x: &[f64; BIG], i: usize, k: usize) -> f64 {
    let j = (i + 1) % BIG;
    if k == i {
        x[i].cos() * x[j]
    } else if k == j {
        x[i].sin()
    } else {
        0.0
    }
}

fn ramp() -> [f64; BIG] {
    std::array::from_fn(|i| 0.5 + (i as f64) * 1e-3)
}

#[test]
fn into_forms_write_large_jacobians_and_hessians_on_a_2_mib_thread() {
    let (jr, jf, h) = on_small_stack(|| {
        let x = ramp();
        let mut jr: Box<[[f64; BIG]; BIG]> = boxed([f64::NAN; BIG]);
        let mut jf: Box<[[f64; BIG]; BIG]> = boxed([f64::NAN; BIG]);
        let mut h: Box<[[f64; BIG]; BIG]> = boxed([f64::NAN; BIG]);
        wide_jacrev_into(x, &mut jr);
        wide_jacfwd_into(x, &mut jf);
        big_sum_hessian_into(x, &mut h);
        (jr, jf, h)
    });
    let x = ramp();
    for i in 0..BIG {
        let j = (i + 1) % BIG;
        for k in 0..BIG {
            let want = wide_entry(&x, i, k);
            assert_eq!(jr[i][k], want, "jacrev [{i}][{k}]");
            assert_eq!(jf[i][k], want, "jacfwd [{i}][{k}]");
        }
        // s = Σ x_i sin(x_{i+1}): H[j][j] = -x_i sin(x_j), H[i][j] = H[j][i] = cos(x_j).
        assert_relative_eq!(h[j][j], -x[i] * x[j].sin(), max_relative = 1e-14);
        assert_relative_eq!(h[i][j], x[j].cos(), max_relative = 1e-14);
        assert_eq!(h[i][j], h[j][i]);
    }
    let nonzero = h.iter().flatten().filter(|v| **v != 0.0).count();
    assert_eq!(nonzero, 3 * BIG);
}

#[test]
fn into_forms_equal_the_by_value_forms() {
    let (x, y) = ([0.3, -1.1, 2.0], 0.7);
    let mut gv = ((f64::NAN, [f64::NAN; 3]), (f64::NAN, 0));
    small_aux_grad_and_value_into(x, y, &mut gv);
    assert_eq!(gv, small_aux_grad_and_value(x, y));
    let mut j = ([f64::NAN; 2], [[f64::NAN; 3]; 2]);
    small_jac_into(x, y, &mut j);
    assert_eq!(j, small_jac(x, y));
    let mut g = (f64::NAN, f64::NAN);
    swapped_grad_into(2.0, 3.0, &mut g);
    assert_eq!(g, (29.0, 3.0));
}

// --- A marked function works however it is imported or named.

mod helpers {
    use fluxion::differentiable;

    #[differentiable]
    pub fn sq(x: f64) -> f64 {
        x * x
    }

    #[differentiable]
    pub fn cube(x: f64) -> f64 {
        x * x * x
    }

    pub mod inner {
        #[fluxion::differentiable]
        pub fn twice(x: f64) -> f64 {
            2.0 * x
        }
    }
}

mod imports {
    use super::helpers::cube as c3;
    use super::helpers::inner::*;
    use super::helpers::sq;

    #[fluxion::transforms(grad, hessian)]
    pub fn imported(x: f64) -> f64 {
        sq(x) + c3(x) + twice(x) + super::helpers::sq(x)
    }
}

#[test]
fn marked_functions_work_however_they_are_imported() {
    // f = 2x² + x³ + 2x: f' = 4x + 3x² + 2, f'' = 4 + 6x.
    assert_eq!(imports::imported_grad(2.0), 8.0 + 12.0 + 2.0);
    assert_eq!(imports::imported_hessian(2.0), 4.0 + 12.0);
}

// --- Independent transforms of one function: `#[transforms(..)]`.

#[fluxion::transforms(grad, hessian, jacfwd(argnums = 1), jacfwd(jacrev), grad_and_value(argnums = (1, 0)))]
fn objective(x: f64, y: f64) -> f64 {
    x * x * y + y.sin()
}

#[fluxion::transforms(jacrev, jacfwd(jacrev), differentiable)]
fn field(x: [f64; 2]) -> [f64; 2] {
    [x[0] * x[1], x[1].exp()]
}

#[grad]
fn calls_field(x: [f64; 2]) -> f64 {
    let y = field(x);
    y[0] + y[1]
}

#[test]
fn transforms_lists_independent_transforms() {
    let (x, y) = (1.5, 0.25);
    assert_eq!(objective_grad(x, y), 2.0 * x * y);
    assert_eq!(objective_hessian(x, y), 2.0 * y);
    assert_eq!(objective_jacfwd(x, y), x * x + y.cos());
    assert_eq!(objective_jacrev_jacfwd(x, y), 2.0 * y);
    assert_eq!(objective_jacrev(x, y), 2.0 * x * y);
    assert_eq!(
        objective_grad_and_value(x, y),
        ((x * x + y.cos(), 2.0 * x * y), objective(x, y))
    );
    let j = field_jacrev([2.0, 3.0]);
    assert_eq!(j, [[3.0, 2.0], [0.0, 3.0f64.exp()]]);
    let h = field_jacrev_jacfwd([2.0, 3.0]);
    assert_eq!(h[0], [[0.0, 1.0], [1.0, 0.0]]);
    assert_eq!(calls_field_grad([2.0, 3.0]), [3.0, 2.0 + 3.0f64.exp()]);
}

// --- `hessian` with several `argnums` and `has_aux`; Jacobians of tuple outputs.

#[fluxion::transforms(
    hessian(argnums = (0, 1)),
    hessian(argnums = (1,), name = "two_args_h1"),
    grad(argnums = (0, 1))
)]
fn two_args(x: f64, y: [f64; 2]) -> f64 {
    x * x * y[0] + (x * y[1]).sin() + y[0] * y[1]
}

#[hessian(has_aux)]
fn hess_aux(x: [f64; 2]) -> (f64, usize) {
    (x[0] * x[0] * x[1], 42)
}

#[fluxion::transforms(jacrev, jacfwd, jacrev(argnums = (1, 0), name = "pair_out_jr2"), jacfwd(argnums = (1, 0), name = "pair_out_jf2"))]
fn pair_out(x: [f64; 2], s: f64) -> (f64, [f64; 2]) {
    (x[0] * x[1] * s, [x[0].sin(), x[1] * s])
}

#[jacrev(has_aux, name = "pair_aux_jacrev")]
fn pair_aux(x: f64) -> ((f64, [f64; 2]), f64) {
    ((x * x, [x.exp(), 3.0 * x]), x + 1.0)
}

#[test]
fn hessian_blocks_for_several_argnums() {
    let (x, y) = (0.7, [1.3, -0.4]);
    let ((h00, h01), (h10, h11)) = two_args_hessian(x, y);
    // Each block against central differences of the generated gradient.
    let g = |x: f64, y: [f64; 2]| two_args_grad(x, y);
    let d = 1e-6;
    let fd = |f: &dyn Fn(f64) -> f64| (f(d) - f(-d)) / (2.0 * d);
    assert_relative_eq!(h00, fd(&|e| g(x + e, y).0), max_relative = 1e-7);
    for j in 0..2 {
        let mut e = [0.0; 2];
        e[j] = 1.0;
        let at = |t: f64| [y[0] + t * e[0], y[1] + t * e[1]];
        assert_relative_eq!(h01[j], fd(&|t| g(x, at(t)).0), max_relative = 1e-7, epsilon = 1e-9);
        assert_relative_eq!(h10[j], fd(&|t| g(x + t, y).1[j]), max_relative = 1e-7, epsilon = 1e-9);
        for (i, row) in h11.iter().enumerate() {
            assert_relative_eq!(row[j], fd(&|t| g(x, at(t)).1[i]), max_relative = 1e-7, epsilon = 1e-9);
        }
        assert_eq!(h01[j], h10[j]);
    }
    assert_eq!(two_args_h1(x, y), ((h11,),));
    let (h, aux) = hess_aux_hessian([1.0, 2.0]);
    assert_eq!((h, aux), ([[4.0, 2.0], [2.0, 0.0]], 42));
}

#[test]
fn jacobians_of_tuple_outputs_have_one_block_per_output() {
    let (x, s) = ([0.4, -1.2], 2.5);
    let (j0, j1) = pair_out_jacrev(x, s);
    assert_eq!(j0, [x[1] * s, x[0] * s]);
    assert_eq!(j1, [[x[0].cos(), 0.0], [0.0, s]]);
    assert_eq!(pair_out_jacfwd(x, s), (j0, j1));
    // argnums tuple: per output, a tuple per argument in the listed order.
    let ((d0s, d0x), (d1s, d1x)) = pair_out_jr2(x, s);
    assert_eq!((d0s, d0x), (x[0] * x[1], j0));
    assert_eq!((d1s, d1x), ([0.0, x[1]], j1));
    assert_eq!(pair_out_jf2(x, s), pair_out_jr2(x, s));
    let ((a, b), aux) = pair_aux_jacrev(0.5);
    assert_eq!((a, b, aux), (1.0, [0.5f64.exp(), 3.0], 1.5));
}

// --- `sin_cos` and array patterns.

#[fluxion::transforms(grad, hessian)]
fn kinematics(q: [f64; 2]) -> f64 {
    let [a, b] = q;
    let (s, c) = a.sin_cos();
    let (s2, _) = (a + b).sin_cos();
    s * b + c + s2
}

#[test]
fn sin_cos_and_array_patterns_differentiate() {
    let q = [0.4, 1.1];
    let g = kinematics_grad(q);
    let (a, b) = (q[0], q[1]);
    assert_relative_eq!(g[0], a.cos() * b - a.sin() + (a + b).cos(), max_relative = 1e-15);
    assert_relative_eq!(g[1], a.sin() + (a + b).cos(), max_relative = 1e-15);
    let h = kinematics_hessian(q);
    assert_relative_eq!(h[0][1], a.cos() - (a + b).sin(), max_relative = 1e-14);
    assert_eq!(h[0][1], h[1][0]);
}

// --- Loops from a negative literal: the reverse sweep tapes at `k - lo`.

const HALF: i32 = 3;

#[fluxion::transforms(grad, hessian)]
fn stencil(x: f64) -> f64 {
    let mut s = 0.0;
    for k in -2..3 {
        s += (x + k as f64).sin() * (k as f64);
    }
    for k in -HALF..=HALF {
        s += (x * k as f64).cos();
    }
    s
}

#[test]
fn loops_from_negative_literals() {
    let x = 0.3;
    let g: f64 = (-2..3).map(|k| (x + k as f64).cos() * k as f64).sum::<f64>()
        + (-3..=3).map(|k| -(x * k as f64).sin() * k as f64).sum::<f64>();
    assert_relative_eq!(stencil_grad(x), g, max_relative = 1e-14);
    let h: f64 = (-2..3).map(|k| -(x + k as f64).sin() * k as f64).sum::<f64>()
        + (-3..=3).map(|k| -(x * k as f64).cos() * (k * k) as f64).sum::<f64>();
    assert_relative_eq!(stencil_hessian(x), h, max_relative = 1e-13);
}

// --- Every transform in a list, each with its `_into` form.

#[fluxion::transforms(vjp, jvp, grad_and_value, jacfwd, differentiable)]
fn everything(x: [f64; 2]) -> f64 {
    x[0].sin() * x[1]
}

#[test]
fn every_transform_in_a_list_and_its_into_form() {
    let x = [0.5, 2.0];
    let (y, pullback) = everything_vjp(x);
    let (gx,) = pullback(1.0);
    assert_eq!(everything_vjp_ct(x, 1.0), (y, (gx,)));
    let mut ct = (0.0, ([0.0; 2],));
    everything_vjp_ct_into(x, 1.0, &mut ct);
    assert_eq!(ct, (y, (gx,)));
    let (y2, dy) = everything_jvp(x, [1.0, 0.0]);
    let mut j = (f64::NAN, f64::NAN);
    everything_jvp_into(x, [1.0, 0.0], &mut j);
    assert_eq!(j, (y2, dy));
    assert_eq!(dy, gx[0]);
    assert_eq!(everything_grad_and_value(x), (gx, y));
    let mut jf = [f64::NAN; 2];
    everything_jacfwd_into(x, &mut jf);
    assert_eq!(jf, gx);
}

// --- `_into` forms of tuple results: each component's accumulator lives in its field of
// `out`, so a large Jacobian next to an aux value or a second block needs no stack.

#[jacrev(has_aux, name = "wide_aux_jacrev")]
fn wide_aux(x: [f64; BIG]) -> ([f64; BIG], f64) {
    let mut y = [0.0; BIG];
    for i in 0..BIG {
        y[i] = x[i].sin() * x[(i + 1) % BIG];
    }
    (y, x[0])
}

#[jacrev(argnums = (0, 1), name = "wide_two_jacrev")]
fn wide_two(x: [f64; BIG], s: f64) -> [f64; BIG] {
    let mut y = [0.0; BIG];
    for i in 0..BIG {
        y[i] = x[i].sin() * x[(i + 1) % BIG] * s;
    }
    y
}

/// A boxed Jacobian and its second component, every float NaN, built on the heap.
fn nan_filled<B>() -> Box<([[f64; BIG]; BIG], B)>
where
    ([[f64; BIG]; BIG], B): NanFill,
{
    // SAFETY: all-zero bits are valid `f64`s and arrays of them.
    let mut b: Box<([[f64; BIG]; BIG], B)> = unsafe { Box::new_zeroed().assume_init() };
    b.nan_fill();
    b
}

trait NanFill {
    fn nan_fill(&mut self);
}

impl NanFill for ([[f64; BIG]; BIG], f64) {
    fn nan_fill(&mut self) {
        self.0.iter_mut().flatten().for_each(|v| *v = f64::NAN);
        self.1 = f64::NAN;
    }
}

impl NanFill for ([[f64; BIG]; BIG], [f64; BIG]) {
    fn nan_fill(&mut self) {
        self.0.iter_mut().flatten().for_each(|v| *v = f64::NAN);
        self.1 = [f64::NAN; BIG];
    }
}

#[test]
fn into_forms_of_tuple_results_write_large_jacobians_on_a_2_mib_thread() {
    let (a, t) = on_small_stack(|| {
        let x = ramp();
        let mut a: Box<([[f64; BIG]; BIG], f64)> = nan_filled();
        wide_aux_jacrev_into(x, &mut a);
        let mut t: Box<([[f64; BIG]; BIG], [f64; BIG])> = nan_filled();
        wide_two_jacrev_into(x, 2.0, &mut t);
        (a, t)
    });
    let (ja, aux, jx, js) = (&a.0, a.1, &t.0, &t.1);
    let x = ramp();
    assert_eq!(aux, x[0]);
    for i in 0..BIG {
        let j = (i + 1) % BIG;
        for k in 0..BIG {
            let want = wide_entry(&x, i, k);
            assert_eq!(ja[i][k], want, "has_aux [{i}][{k}]");
            assert_eq!(jx[i][k], want * 2.0, "argnums [{i}][{k}]");
        }
        assert_eq!(js[i], x[i].sin() * x[j]);
    }
}

// A value returned as a copy of a variable written afterwards (directly, in a loop, in a
// branch) keeps the copy's value in the `_into` form: the variable does not live in `out`.

#[grad_and_value(name = "copy_then_write_gv")]
#[allow(unused_assignments)] // the write after the copy is the point
fn copy_then_write(x: f64) -> f64 {
    let mut s = x * x;
    let y = s;
    s = 7.0;
    y
}

#[grad_and_value(name = "copy_then_loop_gv")]
#[allow(unused_assignments)]
fn copy_then_loop(x: f64) -> f64 {
    let mut s = x * x;
    let y = s;
    for i in 0..2 {
        s = i as f64;
    }
    y
}

#[grad_and_value(name = "copy_then_branch_gv")]
#[allow(unused_assignments)]
fn copy_then_branch(x: f64) -> f64 {
    let mut s = x * x;
    let y = s;
    if x > 0.0 {
        s = 7.0;
    }
    y
}

#[test]
fn into_forms_keep_a_copy_made_before_a_write() {
    let want = (1.0, 0.25);
    let mut out = (f64::NAN, f64::NAN);
    copy_then_write_gv_into(0.5, &mut out);
    assert_eq!((out, copy_then_write_gv(0.5)), (want, want));
    out = (f64::NAN, f64::NAN);
    copy_then_loop_gv_into(0.5, &mut out);
    assert_eq!((out, copy_then_loop_gv(0.5)), (want, want));
    out = (f64::NAN, f64::NAN);
    copy_then_branch_gv_into(0.5, &mut out);
    assert_eq!((out, copy_then_branch_gv(0.5)), (want, want));
}

// --- Reverse over reverse through a long loop: the inner gradient's tapes are on the heap
// and their adjoints are tapes on the heap too.

#[fluxion::differentiable]
fn damp(x: f64, k: f64) -> f64 {
    x - 1e-4 * k * x.sin()
}

#[fluxion::grad]
#[fluxion::grad]
fn damped(k: f64) -> f64 {
    let mut x = 1.0;
    for _i in 0..20_000 {
        x = damp(x, k);
    }
    x
}

#[test]
fn reverse_over_reverse_through_a_heap_tape() {
    let f = |k: f64| {
        let mut x = 1.0f64;
        for _ in 0..20_000 {
            x = x - 1e-4 * k * x.sin();
        }
        x
    };
    let (k, h) = (0.7, 1e-3);
    let fd = (f(k + h) - 2.0 * f(k) + f(k - h)) / (h * h);
    assert_relative_eq!(damped_grad_grad(k), fd, max_relative = 1e-4);
}

const LONG: usize = 20_000;

/// The same loop to a named constant: the tape of the call's results (a type only rustc
/// knows) is on the heap.
#[fluxion::grad]
fn damped_named(k: f64) -> f64 {
    let mut x = 1.0;
    for _i in 0..LONG {
        x = damp(x, k);
    }
    x
}

#[test]
fn a_tape_of_call_results_to_a_named_bound() {
    let f = |k: f64| {
        let mut x = 1.0f64;
        for _ in 0..LONG {
            x = x - 1e-4 * k * x.sin();
        }
        x
    };
    let (k, h) = (0.7, 1e-6);
    let fd = (f(k + h) - f(k - h)) / (2.0 * h);
    assert_relative_eq!(damped_named_grad(k), fd, max_relative = 1e-6);
}

/// A value read at a literal index of a mutable array that the loop then overwrites is
/// taped, not recomputed from the array in the reverse sweep.
#[grad]
fn overwrite_first(x: [f64; 2]) -> f64 {
    let mut a = x;
    let mut s = 0.0;
    for _i in 0..3 {
        let t = a[0];
        s += t * t;
        a[0] = t * x[1];
    }
    s
}

#[test]
fn a_read_at_a_literal_index_before_an_overwrite_is_taped() {
    let x: [f64; 2] = [0.7, 1.3];
    // s = x0^2 (1 + x1^2 + x1^4)
    let want = [
        2.0 * x[0] * (1.0 + x[1].powi(2) + x[1].powi(4)),
        x[0].powi(2) * (2.0 * x[1] + 4.0 * x[1].powi(3)),
    ];
    let g = overwrite_first_grad(x);
    assert_relative_eq!(g[0], want[0], max_relative = 1e-14);
    assert_relative_eq!(g[1], want[1], max_relative = 1e-14);
}

/// A cast whose source is a call's result (a type only rustc sees) is differentiated in
/// both modes and to second order: its adjoint goes back through `cast_like`.
#[differentiable]
fn cast_square(x: f64) -> f64 {
    x * x
}

#[fluxion::transforms(grad, hessian, jacfwd)]
fn cast_of_call(x: f64) -> f64 {
    let y = cast_square(x) as f32;
    (y * y + 3.0 * y) as f64
}

#[test]
fn a_cast_of_a_call_result_is_differentiated() {
    for x in [0.3f64, -1.7, 2.5] {
        // y = x² in f32: d/dx (y² + 3y) = (2y + 3) 2x; d²/dx² = 12x² + 6.
        let y = (x * x) as f32 as f64;
        let want = (2.0 * y + 3.0) * 2.0 * x;
        assert_relative_eq!(cast_of_call_grad(x), want, max_relative = 1e-6);
        assert_relative_eq!(cast_of_call_jacfwd(x), want, max_relative = 1e-6);
        assert_relative_eq!(cast_of_call_hessian(x), 12.0 * y + 6.0, max_relative = 1e-6);
    }
}

/// A named constant meets a float operation as that operation's type (`(C as f64)`, the
/// identity here), in operands, compound assignments and method arguments.
const C_HALF: f64 = 0.5;
const C_TWO: f64 = 2.0;

#[fluxion::transforms(grad, hessian)]
fn with_constants(x: f64) -> f64 {
    let mut y = C_HALF * x;
    y *= C_TWO;
    y += x.powf(C_TWO) - std::f64::consts::PI;
    y.max(C_HALF) + C_TWO.powf(x)
}

#[test]
fn named_constants_in_float_operations() {
    for x in [1.5f64, 2.0] {
        // y = x + x² - π (> 0.5 here); f = y + 2^x.
        let g = 1.0 + 2.0 * x + 2f64.ln() * 2f64.powf(x);
        let h = 2.0 + 2f64.ln().powi(2) * 2f64.powf(x);
        assert_relative_eq!(with_constants_grad(x), g, max_relative = 1e-13);
        assert_relative_eq!(with_constants_hessian(x), h, max_relative = 1e-13);
    }
}

// --- `let (mut a, mut b) = ..`: mutable names in a tuple pattern.

#[fluxion::grad_and_value]
fn tuple_of_muts(x: f64) -> f64 {
    let (mut a, mut b, c) = (x, 2.0 * x, x * x);
    for _ in 0..3 {
        a += b * c;
        b *= 0.5;
    }
    a * b + c
}

#[test]
fn mutable_names_in_a_tuple_pattern() {
    for x in [-1.3, 0.0, 0.4, 2.0] {
        let plain = |x: f64| {
            let (mut a, mut b, c) = (x, 2.0 * x, x * x);
            for _ in 0..3 {
                a += b * c;
                b *= 0.5;
            }
            a * b + c
        };
        let (g, v) = tuple_of_muts_grad_and_value(x);
        assert_eq!(v, plain(x));
        let h = 1e-6;
        let fd = (plain(x + h) - plain(x - h)) / (2.0 * h);
        assert!((g - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "{g} vs {fd} at {x}");
    }
}
