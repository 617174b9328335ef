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
