//! Custom derivative rules (`#[custom_rule]`): hand-written JVP/VJP for a function the
//! engine cannot read, composed with every transform, at first and second order.

use approx::{abs_diff_eq, assert_abs_diff_eq};
use fluxion::{custom_rule, differentiable, grad, hessian, jacfwd, jacrev};

/// Newton's iteration for the square root: a `while` loop the engine does not read.
#[custom_rule(jvp = newton_sqrt_jvp, vjp = newton_sqrt_vjp, second_order)]
fn newton_sqrt(x: f64) -> f64 {
    let mut y = if x > 1.0 { x } else { 1.0 };
    let mut k = 0;
    while k < 60 {
        y = 0.5 * (y + x / y);
        k += 1;
    }
    y
}

/// Forward rule: `d sqrt(x) = dx / (2 sqrt x)`, itself differentiable (second order).
#[differentiable]
fn newton_sqrt_jvp(x: f64, dx: f64) -> (f64, f64) {
    let y = newton_sqrt(x);
    (y, dx / (2.0 * y))
}

/// Reverse rule, also differentiable.
#[differentiable]
fn newton_sqrt_vjp(x: f64, ct: f64) -> (f64, (f64,)) {
    let y = newton_sqrt(x);
    (y, (ct / (2.0 * y),))
}

#[grad]
fn x_sqrt_x(x: f64) -> f64 {
    newton_sqrt(x) * x
}

#[hessian]
fn x_sqrt_x_h(x: f64) -> f64 {
    newton_sqrt(x) * x
}

#[jacfwd]
fn x_sqrt_x_fwd(x: f64) -> f64 {
    newton_sqrt(x) * x
}

/// Only a forward rule: the reverse rule is derived (scalar signature).
#[custom_rule(jvp = cube_jvp)]
fn opaque_cube(x: f64, y: f64) -> f64 {
    x * x * x * y
}

fn cube_jvp(x: f64, y: f64, dx: f64, dy: f64) -> (f64, f64) {
    (x * x * x * y, 3.0 * x * x * y * dx + x * x * x * dy)
}

#[jacrev(argnums = (0, 1))]
fn uses_cube(x: f64, y: f64) -> f64 {
    opaque_cube(x, y) + x
}

/// Only a reverse rule: the forward rule is derived.
#[custom_rule(vjp = sq_vjp)]
fn opaque_sq(x: f64) -> f64 {
    x * x
}

fn sq_vjp(x: f64, ct: f64) -> (f64, (f64,)) {
    (x * x, (2.0 * x * ct,))
}

#[jacfwd]
fn uses_sq(x: f64) -> f64 {
    opaque_sq(x).sin()
}

#[test]
fn custom_rule_first_order_both_modes() {
    for x in [0.25f64, 1.0, 2.0, 9.0] {
        let s = x.sqrt();
        // d/dx (x sqrt x) = 1.5 sqrt x
        assert_abs_diff_eq!(x_sqrt_x_grad(x), 1.5 * s, epsilon = 1e-12 * (1.0 + s));
        assert_abs_diff_eq!(x_sqrt_x_fwd_jacfwd(x), 1.5 * s, epsilon = 1e-12 * (1.0 + s));
    }
}

#[test]
fn custom_rule_second_order_through_differentiable_rules() {
    for x in [0.25f64, 1.0, 4.0] {
        // d2/dx2 (x^1.5) = 0.75 / sqrt x
        let h = x_sqrt_x_h_hessian(x);
        assert!(abs_diff_eq!(h, 0.75 / x.sqrt(), epsilon = 1e-12), "x = {x}: {h}");
    }
}

#[test]
fn derived_rules() {
    let (dx, dy) = uses_cube_jacrev(2.0, 3.0);
    assert_eq!(dx, 3.0 * 4.0 * 3.0 + 1.0);
    assert_eq!(dy, 8.0);
    let x: f64 = 0.7;
    let expect = (x * x).cos() * 2.0 * x;
    assert_abs_diff_eq!(uses_sq_jacfwd(x), expect, epsilon = 1e-15);
}
