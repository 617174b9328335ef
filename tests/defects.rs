//! Compiled regression tests for defects users hit: each test fails without its fix.

use approx::assert_relative_eq;
use fluxion::{grad, grad_and_value, jacfwd, jacrev};

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
