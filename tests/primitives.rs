//! The primitives declared after the core set (`asinh acosh atanh floor ceil round
//! round_ties_even fract to_degrees to_radians copysign clamp log rem_euclid div_euclid`),
//! through the real macros: reverse mode (`grad`), forward mode (`jacfwd`) and second
//! order (`hessian`), against central finite differences at ordinary points and against
//! the documented values at their edges. (The interpreter checks every row the same way in
//! `macros/engine/tests/rules.rs`.)

use fluxion::transforms;

/// One body with its `grad`, `jacfwd` and `hessian` (all arguments): `f_grad`,
/// `f_jacfwd`, `f_hessian`.
macro_rules! all_modes {
    ($args:tt, fn $name:ident $($rest:tt)*) => {
        #[transforms(grad(argnums = $args), jacfwd(argnums = $args), hessian(argnums = $args))]
        fn $name $($rest)*
    };
}

all_modes!(
    (0,),
    fn asinh_(x: f64) -> f64 {
        x.asinh()
    }
);
all_modes!(
    (0,),
    fn acosh_(x: f64) -> f64 {
        x.acosh()
    }
);
all_modes!(
    (0,),
    fn atanh_(x: f64) -> f64 {
        x.atanh()
    }
);
all_modes!(
    (0,),
    fn steps(x: f64) -> f64 {
        x.floor() + x.ceil() * x.round() - x.round_ties_even() + x * x
    }
);
all_modes!(
    (0,),
    fn fract_(x: f64) -> f64 {
        x.fract() * x
    }
);
all_modes!(
    (0,),
    fn degrees(x: f64) -> f64 {
        x.to_degrees() * x.to_radians()
    }
);
all_modes!(
    (0, 1),
    fn copysign_(x: f64, s: f64) -> f64 {
        x.copysign(s) * x
    }
);
all_modes!(
    (0, 1, 2),
    fn clamp_(x: f64, lo: f64, hi: f64) -> f64 {
        x.clamp(lo, hi) * x
    }
);
all_modes!(
    (0, 1),
    fn log_(x: f64, b: f64) -> f64 {
        x.log(b)
    }
);
all_modes!(
    (0, 1),
    fn rem_euclid_(x: f64, y: f64) -> f64 {
        x.rem_euclid(y) + x.div_euclid(y)
    }
);

/// A central difference of `f` along coordinate `k`.
fn central(f: impl Fn(&[f64]) -> f64, x: &[f64], k: usize) -> f64 {
    let h = 6e-6 * x[k].abs().max(1.0);
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    a[k] += h;
    b[k] -= h;
    (f(&a) - f(&b)) / (a[k] - b[k])
}

#[track_caller]
fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

/// Gradient in both modes against finite differences, and forward against reverse.
#[track_caller]
fn check(what: &str, f: impl Fn(&[f64]) -> f64, x: &[f64], rev: &[f64], fwd: &[f64]) {
    for k in 0..x.len() {
        close(&format!("{what} d/dx{k} at {x:?}"), rev[k], central(&f, x, k), 1e-6);
        close(&format!("{what} jacfwd vs grad, {k}"), fwd[k], rev[k], 1e-14);
    }
}

#[test]
fn inverse_hyperbolic_functions() {
    for x in [-2.0, -0.3, 0.5, 3.0] {
        check(
            "asinh",
            |v| asinh_(v[0]),
            &[x],
            &[asinh__grad(x).0],
            &[asinh__jacfwd(x).0],
        );
        close("asinh''", asinh__hessian(x).0 .0, -x / (x * x + 1.0).powf(1.5), 1e-12);
    }
    for x in [1.2, 2.0, 3.7] {
        check(
            "acosh",
            |v| acosh_(v[0]),
            &[x],
            &[acosh__grad(x).0],
            &[acosh__jacfwd(x).0],
        );
        close("acosh''", acosh__hessian(x).0 .0, -x / (x * x - 1.0).powf(1.5), 1e-12);
    }
    for x in [-0.8, 0.1, 0.6] {
        check(
            "atanh",
            |v| atanh_(v[0]),
            &[x],
            &[atanh__grad(x).0],
            &[atanh__jacfwd(x).0],
        );
        close(
            "atanh''",
            atanh__hessian(x).0 .0,
            2.0 * x / (1.0 - x * x).powi(2),
            1e-12,
        );
    }
    // Edges: finite where `x*x + 1` overflows; +inf at the ends of the domains.
    assert_eq!(asinh__grad(1e200).0, 1.0 / 1e200);
    assert_eq!(acosh__grad(1.0).0, f64::INFINITY);
    assert_eq!(acosh__jacfwd(1.0).0, f64::INFINITY);
    for x in [1.0, -1.0] {
        assert_eq!(atanh__grad(x).0, f64::INFINITY);
        assert_eq!(atanh__jacfwd(x).0, f64::INFINITY);
    }
}

#[test]
fn steps_fract_and_angle_conversions() {
    for x in [-2.3, 0.4, 1.7] {
        // The steps contribute nothing: d/dx (steps + x²) = 2x.
        check("steps", |v| steps(v[0]), &[x], &[steps_grad(x).0], &[steps_jacfwd(x).0]);
        assert_eq!(steps_grad(x).0, 2.0 * x);
        assert_eq!(steps_hessian(x).0 .0, 2.0);
        check(
            "fract",
            |v| fract_(v[0]),
            &[x],
            &[fract__grad(x).0],
            &[fract__jacfwd(x).0],
        );
        check(
            "degrees",
            |v| degrees(v[0]),
            &[x],
            &[degrees_grad(x).0],
            &[degrees_jacfwd(x).0],
        );
        assert_eq!(
            degrees_hessian(x).0 .0,
            2.0 * (180.0 / std::f64::consts::PI) * (std::f64::consts::PI / 180.0)
        );
    }
    // At a jump of `fract`, the one-sided derivative: d/dx (fract(x) x) = x + fract(x).
    assert_eq!(fract__grad(2.0).0, 2.0);
}

#[test]
fn copysign_clamp_log_and_euclidean_remainder() {
    for [x, s] in [[1.5, -2.0], [-0.7, 0.4], [2.2, 3.0]] {
        let (r, f) = (copysign__grad(x, s), copysign__jacfwd(x, s));
        check("copysign", |v| copysign_(v[0], v[1]), &[x, s], &[r.0, r.1], &[f.0, f.1]);
    }
    // `copysign` at `x = 0`: `abs`'s convention, ∂ = 0 (here d/dx (copysign(x, s) x) = 0).
    assert_eq!(copysign__grad(0.0, 1.0).0, 0.0);
    for [x, lo, hi] in [[-3.0, -1.5, 1.2], [0.3, -1.5, 1.2], [2.0, -1.5, 1.2]] {
        let (r, f) = (clamp__grad(x, lo, hi), clamp__jacfwd(x, lo, hi));
        check(
            "clamp",
            |v| clamp_(v[0], v[1], v[2]),
            &[x, lo, hi],
            &[r.0, r.1, r.2],
            &[f.0, f.1, f.2],
        );
    }
    // At a bound `x` itself is returned: ∂x = 1 (d/dx (x x) = 2x), ∂lo = 0.
    let r = clamp__grad(-1.5, -1.5, 1.2);
    assert_eq!((r.0, r.1, r.2), (-3.0, 0.0, 0.0));
    for [x, b] in [[0.5, 2.0], [3.0, 10.0], [7.5, 1.7]] {
        let (r, f) = (log__grad(x, b), log__jacfwd(x, b));
        check("log", |v| log_(v[0], v[1]), &[x, b], &[r.0, r.1], &[f.0, f.1]);
    }
    assert_eq!(log__grad(0.0, 2.0), (f64::INFINITY, f64::INFINITY));
    for [x, y] in [[5.3, 2.0], [-4.1, 1.5], [0.7, 3.0]] {
        let (r, f) = (rem_euclid__grad(x, y), rem_euclid__jacfwd(x, y));
        check(
            "rem_euclid",
            |v| rem_euclid_(v[0], v[1]),
            &[x, y],
            &[r.0, r.1],
            &[f.0, f.1],
        );
    }
    // At a jump: ∂y = -div_euclid(x, y) (`-5 = -3 * 2 + 1`).
    assert_eq!(rem_euclid__grad(-5.0, 2.0), (1.0, 3.0));
}
