// Functions checked twice by tests/compiled.rs: compiled by rustc through the macros
// (`include!("cases/shared.rs")`), and lowered from the same text by the engine and run by
// its IR interpreter (`fluxion_engine::expand::lower_file(include_str!("cases/shared.rs"))`).
//
// Every function carries `#[jacfwd] #[jacrev]`, giving `f_jacrev` and `f_jacrev_jacfwd`
// (second derivatives). Only top-level functions are lowered for the interpreter, and the
// interpreter needs the values of `SCALE` and `LEN` (tests/compiled.rs passes them).

const SCALE: f64 = 1.5;
const LEN: usize = 4;

/// Accumulation with a cast loop index, `powi`, `mul_add` and a user const.
#[jacfwd]
#[jacrev]
fn poly_acc(x: [f64; LEN]) -> f64 {
    let mut s = 0.0;
    for i in 0..LEN {
        let w = (i as f64) + SCALE;
        s += w * x[i].powi(3);
        s = x[i].mul_add(s, 0.25);
    }
    s / SCALE
}

/// A mutable array filled in a forward loop, then read by a reversed loop.
#[jacfwd]
#[jacrev]
fn prefix_rev(x: [f64; 4]) -> [f64; 4] {
    let mut p = [0.0; 4];
    let mut acc = 1.0;
    for i in 0..4 {
        acc *= x[i].cos() + 2.0;
        p[i] = acc;
    }
    let mut y = [0.0; 4];
    let mut tail = 0.0;
    for i in (0..4).rev() {
        tail += p[i].sqrt();
        y[i] = tail * x[i];
    }
    y
}

/// A dense layer `tanh(A x + b)` over `[[f64; 3]; 2]`: nested loops, w.r.t. `x`.
#[jacfwd(argnums = 1)]
#[jacrev(argnums = 1)]
fn layer(a: [[f64; 3]; 2], x: [f64; 3], b: [f64; 2]) -> [f64; 2] {
    let mut y = [0.0; 2];
    for i in 0..2 {
        let mut s = b[i];
        for j in 0..3 {
            s += a[i][j] * x[j];
        }
        y[i] = s.tanh();
    }
    y
}

/// Branches on the input, an early return, `std::f64::consts`.
#[jacfwd]
#[jacrev]
fn piecewise(x: [f64; 2]) -> f64 {
    if x[0] > 2.0 {
        return x[0].ln() * x[1];
    }
    let r = if x[0] < -1.0 {
        x[1] * std::f64::consts::PI
    } else if x[1] > 0.0 {
        (x[0] * x[1]).sin() + std::f64::consts::E
    } else {
        x[0] * x[0] - x[1]
    };
    r * x[1]
}

/// Shadowing and every compound assignment.
#[jacfwd]
#[jacrev]
fn shadowing(x: [f64; 2]) -> f64 {
    let y = x[0] * 2.0;
    let y = y.sin() + x[1];
    let mut z = y;
    z *= x[0];
    z -= x[1] / 3.0;
    z /= 1.0 + x[1] * x[1];
    z += y.exp();
    let y = z * y;
    y
}

#[differentiable]
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Calls a `#[differentiable]` function twice (straight-line code).
#[jacfwd]
#[jacrev]
fn uses_softplus(x: [f64; 2]) -> f64 {
    let a = softplus(x[0] * x[1]);
    let b = softplus(a - x[1]);
    a * b
}

/// The float methods, one output each.
#[jacfwd]
#[jacrev]
fn transcend(x: [f64; 2]) -> [f64; 12] {
    let u = x[0];
    let v = x[1];
    [
        u.tan() + v.sinh(),
        u.asin() * v.cosh(),
        u.acos() + v.tanh(),
        u.atan2(v) + u.atan(),
        u.exp2() * v.exp_m1(),
        v.log2() + v.log10() * u,
        u.ln_1p() * v.cbrt(),
        v.powf(u) + u.hypot(v),
        v.recip() * u.abs(),
        u.mul_add(v, u * u) + u.signum(),
        u.max(v) * v.min(u),
        (u * v).cos().sin() - (u * u / v).sqrt(),
    ]
}

/// abs, max and min at their kinks (evaluated at ties and at 0 by the tests).
#[jacfwd]
#[jacrev]
fn kinks(x: [f64; 3]) -> [f64; 3] {
    [x[0].abs(), x[1].max(x[2]), x[2].min(x[1])]
}
