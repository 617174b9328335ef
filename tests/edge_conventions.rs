//! The documented conventions at non-differentiable points ("Non-differentiable points" in
//! the crate docs, the `edge`s of the rule table), checked exactly in compiled code, in
//! both modes and in `f32` and `f64`: `∂/∂y x^y = 0` at `x = 0` for every `y`,
//! `sqrt'(±0) = ln'(±0) = log2'(±0) = log10'(±0) = +inf`. (`min`/`max` at ties and NaN:
//! `tests/mutant_regressions.rs`.)

include!("support/both.rs");

/// Central-difference step and tolerance (as in `tests/mutant_regressions.rs`).
const STEP: f64 = 6e-6;
const FD_TOL: f64 = 1e-6;

/// A derivative of a scalar function of one scalar against central differences and against
/// the other mode.
#[track_caller]
fn check_1d(what: &str, x: f64, f: impl Fn(f64) -> f64, rev: f64, fwd: f64) {
    let h = STEP * x.abs().max(1.0);
    let d = (f(x + h) - f(x - h)) / ((x + h) - (x - h));
    assert!(
        (rev - d).abs() <= FD_TOL * d.abs().max(1.0),
        "{what} at {x}: {rev} vs finite differences {d}"
    );
    assert_eq!(rev, fwd, "{what} at {x}: reverse vs forward mode");
}

both!(
    pow_xy_r,
    pow_xy_f,
    (argnums = (0, 1)),
    fn pow_xy(x: f64, y: f64) -> f64 {
        x.powf(y)
    }
);

both!(
    pow_xy32_r,
    pow_xy32_f,
    (argnums = (0, 1)),
    fn pow_xy32(x: f32, y: f32) -> f32 {
        x.powf(y)
    }
);

/// `∂/∂y x^y = 0` at `x = 0` for every `y` (`y ↦ 0^y` is constant on each side of 0), also
/// where `0^y = +inf` (`y < 0`), where JAX gives `ln(1) · inf = NaN`. `∂/∂x` is the limit
/// `y · 0^(y-1)`: `0` for `y > 1` and `y = 0`, `-inf` for `y < 0`.
#[test]
fn powf_at_zero_base() {
    let inf = f64::INFINITY;
    for (y, dx) in [
        (2.0, 0.0),
        (3.5, 0.0),
        (0.0, 0.0),
        (-1.0, -inf),
        (-0.5, -inf),
        (-2.0, -inf),
    ] {
        for x in [0.0, -0.0] {
            for (mode, (gx, gy)) in [("grad", pow_xy_r_grad(x, y)), ("jacfwd", pow_xy_f_jacfwd(x, y))] {
                assert_eq!(gy, 0.0, "{mode}: d/dy x^y at ({x:?}, {y})");
                // At -0.0, `∂/∂x` follows `powf` of a negative zero (odd powers are odd).
                if x.is_sign_positive() {
                    assert_eq!(gx, dx, "{mode}: d/dx x^y at ({x:?}, {y})");
                }
            }
            for (mode, (gx, gy)) in [
                ("f32 grad", pow_xy32_r_grad(x as f32, y as f32)),
                ("f32 jacfwd", pow_xy32_f_jacfwd(x as f32, y as f32)),
            ] {
                assert_eq!(gy, 0.0, "{mode}: d/dy x^y at ({x:?}, {y})");
                if x.is_sign_positive() {
                    assert_eq!(f64::from(gx), dx, "{mode}: d/dx x^y at ({x:?}, {y})");
                }
            }
        }
    }
    // Away from zero: x^y ln x.
    for [x, y] in [[0.5, -1.0], [2.0, 0.5], [1.5, -2.5]] {
        let (r, f) = (pow_xy_r_grad(x, y), pow_xy_f_jacfwd(x, y));
        check_1d("d/dx x^y", x, |a| pow_xy(a, y), r.0, f.0);
        check_1d("d/dy x^y", y, |b| pow_xy(x, b), r.1, f.1);
        assert_eq!(r.1, x.powf(y) * x.ln(), "d/dy at ({x}, {y})");
    }
}

both!(
    sqrt_r,
    sqrt_f,
    (),
    fn sqrt_(x: f64) -> f64 {
        x.sqrt()
    }
);
both!(
    ln_r,
    ln_f,
    (),
    fn ln_(x: f64) -> f64 {
        x.ln()
    }
);
both!(
    log2_r,
    log2_f,
    (),
    fn log2_(x: f64) -> f64 {
        x.log2()
    }
);
both!(
    log10_r,
    log10_f,
    (),
    fn log10_(x: f64) -> f64 {
        x.log10()
    }
);
both!(
    sqrt32_r,
    sqrt32_f,
    (),
    fn sqrt32(x: f32) -> f32 {
        x.sqrt()
    }
);
both!(
    ln32_r,
    ln32_f,
    (),
    fn ln32(x: f32) -> f32 {
        x.ln()
    }
);

/// `sqrt'(±0) = ln'(±0) = log2'(±0) = log10'(±0) = +inf`: `-0.0 == 0.0`, and both functions
/// increase (JAX gives `-inf` at `-0.0`, from `0.5 / -0.0` and `1 / -0.0`).
#[test]
fn sqrt_and_logs_at_signed_zero() {
    let inf = f64::INFINITY;
    type D = fn(f64) -> f64;
    let fs: [(&str, D, D); 4] = [
        ("sqrt", sqrt_r_grad, sqrt_f_jacfwd),
        ("ln", ln_r_grad, ln_f_jacfwd),
        ("log2", log2_r_grad, log2_f_jacfwd),
        ("log10", log10_r_grad, log10_f_jacfwd),
    ];
    for (name, r, f) in fs {
        for x in [0.0, -0.0] {
            assert_eq!(r(x).to_bits(), inf.to_bits(), "{name} grad at {x:?}: {}", r(x));
            assert_eq!(f(x).to_bits(), inf.to_bits(), "{name} jacfwd at {x:?}: {}", f(x));
        }
    }
    for x in [0.0f32, -0.0] {
        for (name, g) in [
            ("sqrt32 grad", sqrt32_r_grad(x)),
            ("sqrt32 jacfwd", sqrt32_f_jacfwd(x)),
            ("ln32 grad", ln32_r_grad(x)),
            ("ln32 jacfwd", ln32_f_jacfwd(x)),
        ] {
            assert_eq!(g.to_bits(), f32::INFINITY.to_bits(), "{name} at {x:?}: {g}");
        }
    }
    // Ordinary points: unchanged, and the same bits as the textbook formulas.
    for x in [0.3f64, 1.0, 2.7] {
        assert_eq!(sqrt_r_grad(x), 1.0 / (2.0 * x.sqrt()));
        assert_eq!(sqrt_f_jacfwd(x), 1.0 / (2.0 * x.sqrt()));
        assert_eq!(ln_r_grad(x), 1.0 / x);
        assert_eq!(ln_f_jacfwd(x), 1.0 / x);
        check_1d("sqrt", x, sqrt_, sqrt_r_grad(x), sqrt_f_jacfwd(x));
        check_1d("ln", x, ln_, ln_r_grad(x), ln_f_jacfwd(x));
        check_1d("log2", x, log2_, log2_r_grad(x), log2_f_jacfwd(x));
        check_1d("log10", x, log10_, log10_r_grad(x), log10_f_jacfwd(x));
    }
}
