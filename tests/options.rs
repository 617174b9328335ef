//! The torch.func options: `argnums` (an integer, a tuple, a one-tuple), `has_aux`,
//! `name`, `show`, on each transform that takes them.

use fluxion::{grad, grad_and_value, jacfwd, jacrev, jvp, vjp};

#[grad(name = "force_magnitude")]
fn energy(r: f64) -> f64 {
    1.0 / r
}

#[grad(argnums = (1,))]
fn one_tuple(x: f64, y: f64) -> f64 {
    x * y * y
}

#[jacrev(has_aux)]
fn with_aux(x: [f64; 2]) -> ([f64; 2], f64) {
    let y = [x[0] * x[1], x[1].exp()];
    (y, x[0] + 100.0)
}

#[jacfwd(has_aux, argnums = 1)]
fn with_aux_fwd(k: usize, x: [f64; 2]) -> ([f64; 2], usize) {
    ([x[0] * x[1], x[1].exp()], k + 1)
}

#[grad_and_value(has_aux, show)]
fn gv_aux(x: f64) -> (f64, [f64; 2]) {
    (x.sin(), [x, 2.0 * x])
}

#[vjp(has_aux)]
fn vjp_aux(x: f64) -> (f64, f64) {
    (x * x, x + 1.0)
}

#[jvp(has_aux)]
fn jvp_aux(x: f64) -> (f64, f64) {
    (x * x, x + 1.0)
}

#[test]
fn name_replaces_the_generated_name() {
    assert_eq!(force_magnitude(2.0), -0.25);
}

#[test]
fn argnums_one_tuple_gives_a_one_tuple() {
    let (dy,) = one_tuple_grad(2.0, 3.0);
    assert_eq!(dy, 12.0);
}

#[test]
fn has_aux_passes_aux_through() {
    let (j, aux) = with_aux_jacrev([2.0, 0.0]);
    assert_eq!(j, [[0.0, 2.0], [0.0, 1.0]]);
    assert_eq!(aux, 102.0);
    let (j2, k) = with_aux_fwd_jacfwd(4, [2.0, 0.0]);
    assert_eq!(j2, j);
    assert_eq!(k, 5);
    let (g, (v, aux)) = gv_aux_grad_and_value(0.5);
    assert_eq!(g, 0.5f64.cos());
    assert_eq!(v.to_bits(), 0.5f64.sin().to_bits());
    assert_eq!(aux, [0.5, 1.0]);
    let (y, pullback, aux) = vjp_aux_vjp(3.0);
    assert_eq!((y, pullback(1.0), aux), (9.0, (6.0,), 4.0));
    let (y, (bar,), aux) = vjp_aux_vjp_ct(3.0, 2.0);
    assert_eq!((y, bar, aux), (9.0, 12.0, 4.0));
    assert_eq!(jvp_aux_jvp(3.0, 1.0), (9.0, 6.0, 4.0));
}
