// A failed expansion: the stand-ins have the promised types of parenthesized and tuple
// results, reference parameters, `argnums` tuples and `has_aux` pairs, so the calls that
// use their results add no error and no warning.
// The parentheses of `paren`'s result are the point.
#![allow(unused_parens)]
use fluxion::{grad, jacrev};

#[jacrev]
fn paren(x: [f64; 2]) -> ([f64; 2]) {
    while x[0] > 0.0 {}
    x
}

#[jacrev]
fn pair(x: [f64; 2]) -> (f64, [f64; 2]) {
    while x[0] > 0.0 {}
    (x[0], x)
}

#[grad]
fn by_ref(x: &[f64; 2]) -> f64 {
    while x[0] > 0.0 {}
    x[1]
}

#[grad(argnums = (0, 1))]
fn two(x: [f64; 2], k: f64) -> f64 {
    while k > 0.0 {}
    x[0] * k
}

#[grad(has_aux)]
fn aux(x: f64) -> (f64, usize) {
    while x > 0.0 {}
    (x, 1)
}

fn main() {
    let j: [[f64; 2]; 2] = paren_jacrev([1.0, 2.0]);
    println!("{}", j[0][1]);
    let (d, jx): ([f64; 2], [[f64; 2]; 2]) = pair_jacrev([1.0, 2.0]);
    println!("{} {}", d[1], jx[1][0]);
    let g: [f64; 2] = by_ref_grad(&[1.0, 2.0]);
    println!("{}", g[1]);
    let (gx, gk): ([f64; 2], f64) = two_grad([1.0, 2.0], 3.0);
    println!("{} {}", gx[1], gk);
    let (ga, n): (f64, usize) = aux_grad(1.0);
    println!("{} {}", ga, n);
}
