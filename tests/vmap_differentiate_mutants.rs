//! Tests written for the survivors of the mutation pass over differentiating through a
//! batch (`f_vmap`'s holder, DEVELOPMENT.md "Differentiating through a batch").

use fluxion::{grad, vmap};

#[vmap(in_dims = (0, 0))]
fn pair(x: f64, y: f64) -> f64 {
    x * y
}

#[grad(argnums = 0)]
fn lpair(xs: &[f64], ys: &[f64]) -> f64 {
    let e = pair_vmap(xs, ys);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

/// Two batched arguments of different lengths: the holder's check names both (each
/// batched primal after the first is checked against the first).
#[test]
#[should_panic(expected = "argument 1 of `pair_vmap` has 3 samples but argument 0 of `pair_vmap` has 4")]
fn batched_arguments_of_different_lengths_panic_naming_both() {
    let _ = lpair_grad(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]);
}
