//! A parameter struct with a `DVector` field: `grad` with respect to the struct gives the
//! field's gradient as a `DVector`, against central differences and bit for bit against
//! the function of the field's slice; `jacrev` of an `[f64; 2]` result, one struct per
//! output.

#![allow(clippy::needless_range_loop)]

mod common;

use fluxion::{grad, jacrev, Parameters};
use nalgebra::DVector;

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Poly {
    c: DVector<f64>,
    s: f64,
}

#[grad]
fn loss(p: &Poly, x: f64) -> f64 {
    let mut y = 0.0;
    let mut xp = 1.0;
    for k in 0..p.c.len() {
        y += p.c[k] * xp;
        xp *= x;
    }
    (p.s * y).sin()
}

#[grad(argnums = (0, 1))]
fn loss_flat(c: &[f64], s: f64, x: f64) -> f64 {
    let mut y = 0.0;
    let mut xp = 1.0;
    for k in 0..c.len() {
        y += c[k] * xp;
        xp *= x;
    }
    (s * y).sin()
}

#[jacrev]
fn both(p: &Poly) -> [f64; 2] {
    let mut a = 0.0;
    let mut b = 0.0;
    for k in 0..p.c.len() {
        a += p.c[k] * p.c[k];
        b += (p.c[k] * p.s).cos();
    }
    [a, b]
}

#[test]
fn gradient_of_a_struct_with_a_dvector_field() {
    for n in [0, 1, 3, 7] {
        let p = Poly {
            c: DVector::from_fn(n, |i, _| 0.4 - 0.1 * i as f64),
            s: 0.8,
        };
        let g: Poly = loss_grad(&p, 0.6);
        let (gc, gs) = loss_flat_grad(p.c.as_slice(), p.s, 0.6);
        assert_eq!(g.c.as_slice(), gc.as_slice());
        assert_eq!(g.s.to_bits(), gs.to_bits());
        let flat = p.to_flat();
        let got = g.to_flat();
        let want = common::fd(&p, |q| loss(q, 0.6));
        for k in 0..flat.len() {
            assert!(
                (got[k] - want[k]).abs() <= 1e-6 * want[k].abs().max(1.0),
                "n = {n}, scalar {k}: {} against {}",
                got[k],
                want[k]
            );
        }
        let j: [Poly; 2] = both_jacrev(&p);
        for k in 0..n {
            assert_eq!(j[0].c[k], 2.0 * p.c[k]);
            assert_eq!(j[1].c[k], -(p.c[k] * p.s).sin() * p.s);
        }
    }
}
