//! Whole programs in the accepted language, differentiated and checked end to end.
//!
//! Each program is lowered from source, transformed by the engine and run by its
//! interpreter (const generics set through `Env::consts`), then checked at
//! `FLUXION_FD_POINTS` random points (default 16):
//! - the primal against the same computation written in plain Rust, where given (so the
//!   lowering itself is checked: loop direction, shadowing, early return, ..);
//! - the Jacobian from `vjp` (one row per unit cotangent) against central finite
//!   differences of the primal (tolerance `FD_RTOL`, see `common/mod.rs`);
//! - the Jacobian from `jvp` (one column per unit tangent) against the one from `vjp`;
//! - for scalar programs marked so, second order: the Hessians from the companions
//!   `jvp(vjp(f))` and `vjp(vjp(f))` against central differences of the reverse-mode
//!   gradient, each symmetric, and equal to each other.
//!
//! Programs whose derivative is *not* the derivative of their value (`stop_gradient`) or
//! which live where differences are useless (`hypot` at 1e200) are checked against
//! closed forms instead.

mod common;

use common::*;

/// Cross-mode tolerance for programs, in ulps of the largest entry of the matrix compared.
/// Forward and reverse mode accumulate the same products in opposite orders through the
/// loops (up to 9 steps here); the Hessians of the two companions also apply the product
/// rule in different orders. Each entry is then a few dozen roundings of terms no larger
/// than the largest entry: 64 ulps.
const PROGRAM_ULPS: f64 = 64.0;

/// Primal against its plain-Rust version: the same operations, reassociated in a few
/// places (`sqrt(d * d)` written `|d|`, folds in place of loops), so 4 ulps of
/// `max(1, |y|)`.
const NATIVE_ULPS: f64 = 4.0;

/// A plain-Rust version of a program, on flattened inputs and outputs.
type Native = fn(&[f64]) -> Vec<f64>;

/// A program under test.
struct Program {
    /// The source, in the accepted language.
    src: &'static str,
    /// Constants and const generics for the interpreter.
    consts: &'static [(&'static str, i128)],
    /// Argument template: floats are sampled, integers are fixed arguments.
    args: Vec<Value>,
    /// Sampling range of every float input.
    range: (f64, f64),
    /// Points where the program is smooth (away from branch switches).
    valid: fn(&[f64]) -> bool,
    /// The same computation in plain Rust, on the flattened inputs and outputs.
    native: Option<Native>,
    /// Scalar output: check second order as well.
    hessian: bool,
}

impl Program {
    fn new(src: &'static str, args: Vec<Value>) -> Program {
        Program {
            src,
            consts: &[],
            args,
            range: (-1.5, 1.5),
            valid: |_| true,
            native: None,
            hessian: false,
        }
    }
    fn consts(self, consts: &'static [(&'static str, i128)]) -> Program {
        Program { consts, ..self }
    }
    fn range(self, lo: f64, hi: f64) -> Program {
        Program {
            range: (lo, hi),
            ..self
        }
    }
    fn valid(self, valid: fn(&[f64]) -> bool) -> Program {
        Program { valid, ..self }
    }
    fn native(self, native: Native) -> Program {
        Program {
            native: Some(native),
            ..self
        }
    }
    fn hessian(self) -> Program {
        Program { hessian: true, ..self }
    }

    fn harness(&self, rules: &RuleTable) -> Result<Harness, String> {
        let f = lower(self.src)?;
        let mut h = Harness::new(self.src, f, self.args.clone(), rules);
        for (name, v) in self.consts {
            h = h.with_const(name, *v);
        }
        Ok(h)
    }

    fn sample(&self, h: &Harness, rng: &mut Rng) -> Vec<f64> {
        loop {
            let x: Vec<f64> = (0..h.n_in()).map(|_| rng.uniform(self.range.0, self.range.1)).collect();
            if (self.valid)(&x) {
                return x;
            }
        }
    }

    /// Every check of the module doc, with the given rule table.
    fn check_with(&self, rules: &RuleTable) -> Result<(), String> {
        check_harness(self, &self.harness(rules)?)
    }

    fn check(&self) {
        self.check_with(&RuleTable::standard())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every check of the module doc, on a harness built for `p` (and possibly given callees
/// or constants).
fn check_harness(p: &Program, h: &Harness) -> Result<(), String> {
    let mut rng = Rng::for_name(p.src);
    for _ in 0..fd_points() {
        let x = p.sample(h, &mut rng);
        let at = |what: &str| format!("`{}`: {what} at {x:?}", p.src);
        if let Some(native) = p.native {
            let (got, want) = (h.primal_flat(&x)?, native(&x));
            let ok =
                got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| ulps_close(*a, *b, NATIVE_ULPS, 1.0));
            if !ok {
                return Err(at(&format!("primal {got:?}, plain Rust {want:?}")));
            }
        }
        let fd = h.fd_jacobian(&x)?;
        let rev = h.jac_rev(&x)?;
        let fwd = h.jac_fwd(&x)?;
        compare(&at("vjp Jacobian vs finite differences"), &rev, &fd, fd_close)?;
        let s = max_abs(&rev);
        compare(&at("jvp columns vs vjp rows"), &fwd, &rev, |a, b| {
            ulps_close(a, b, PROGRAM_ULPS, s)
        })?;
        if p.hessian {
            let fd2 = h.fd_hessian_of_grad(&x)?;
            let hf = h.hess_fwd_rev(&x)?;
            let hr = h.hess_rev_rev(&x)?;
            compare(
                &at("jvp(vjp) Hessian vs differences of the gradient"),
                &hf,
                &fd2,
                fd_close,
            )?;
            compare(
                &at("vjp(vjp) Hessian vs differences of the gradient"),
                &hr,
                &fd2,
                fd_close,
            )?;
            let s = max_abs(&hf).max(max_abs(&hr));
            let close = |a: f64, b: f64| ulps_close(a, b, PROGRAM_ULPS, s);
            compare(&at("jvp(vjp) Hessian symmetry"), &hf, &transpose(&hf), close)?;
            compare(&at("jvp(vjp) vs vjp(vjp) Hessian"), &hf, &hr, close)?;
        }
    }
    Ok(())
}

fn f(x: f64) -> Value {
    Value::F(x)
}
fn arr(n: usize) -> Value {
    Value::Arr(vec![Value::F(0.0); n])
}
fn int(n: i128) -> Value {
    Value::I(n)
}
/// `|a - b|` at least `0.01`: keeps finite differences on one side of a branch.
fn apart(a: f64, b: f64) -> bool {
    (a - b).abs() >= 0.01
}

// ---------------------------------------------------------------------------------------
// Loops and accumulation

/// `s += x[i].sin()` over a const generic length `N = 5`, set through `env.consts`.
fn sum_sin_const_generic() -> Program {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += x[i].sin(); } s }",
        vec![arr(5)],
    )
    .consts(&[("N", 5)])
    .native(|x| vec![x.iter().map(|v| v.sin()).sum()])
    .hessian()
}

#[test]
fn loop_accumulation_const_generic() {
    sum_sin_const_generic().check();
}

#[test]
fn loop_accumulation_literal_bound() {
    Program::new(
        "fn f(x: [f64; 4]) -> f64 { let mut s = 0.0; for i in 0..4 { s += x[i].sin(); } s }",
        vec![arr(4)],
    )
    .native(|x| vec![x.iter().map(|v| v.sin()).sum()])
    .hessian()
    .check();
}

/// A product recurrence: `s` is read and overwritten each step, so reverse mode needs
/// every intermediate `s`.
#[test]
fn product_recurrence() {
    Program::new(
        "fn f(x: [f64; 4]) -> f64 { let mut s = 0.0; for i in 0..4 { s = s * x[i] + 1.0; } s }",
        vec![arr(4)],
    )
    .native(|x| vec![x.iter().fold(0.0, |s, v| s * v + 1.0)])
    .hessian()
    .check();
}

/// Horner's rule with the variable `t` used in every step (its cotangent accumulates).
#[test]
fn horner_recurrence_const_generic() {
    Program::new(
        "fn f<const N: usize>(c: [f64; N], t: f64) -> f64 { let mut s = 0.0; for i in 0..N { s = s * t + c[i]; } s }",
        vec![arr(4), f(0.0)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![x[..4].iter().fold(0.0, |s, c| s * x[4] + c)])
    .hessian()
    .check();
}

/// A value bound by `let` inside the loop and needed by the reverse sweep (`∂(s·t)/∂s = t`,
/// `∂ sin t`): the tape must record `t` per iteration.
#[test]
fn let_in_loop_needs_the_tape() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 { let mut s = 1.0; for i in 0..N { let t = x[i].exp(); s = s * t; } s }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![x.iter().fold(1.0, |s, v| s * v.exp())])
    .hessian()
    .check();
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 { let mut s = 1.0; for i in 0..N { let t = x[i].exp(); s = s * t + t.sin(); } s }",
        vec![arr(5)],
    )
    .consts(&[("N", 5)])
    .native(|x| vec![x.iter().fold(1.0, |s, v| s * v.exp() + v.exp().sin())])
    .hessian()
    .check();
}

/// `for i in (0..N).rev()`: order matters in `s = s * x[i] + cos x[i]`, and the plain-Rust
/// version shows the loop runs downwards.
#[test]
fn reverse_loop() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in (0..N).rev() { s = s * x[i] + x[i].cos(); } s }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![x.iter().rev().fold(0.0, |s, v| s * v + v.cos())])
    .hessian()
    .check();
}

/// Loop indices cast to floats (`i as f64`): constants, never differentiated.
#[test]
fn loop_index_cast_to_float() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += (i as f64 + 1.0) * x[i].powi(2); } s }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![x.iter().enumerate().map(|(i, v)| (i as f64 + 1.0) * v * v).sum()])
    .hessian()
    .check();
}

// ---------------------------------------------------------------------------------------
// Arrays

/// `y[i] = ..`, `y[i] += ..` (with an integer index expression), and `y[0] -= ..` reading
/// another element after it was written: a vector output.
#[test]
fn mutable_array_index_assignment() {
    Program::new(
        "fn f(x: [f64; 3]) -> [f64; 3] {
            let mut y = [0.0; 3];
            for i in 0..3 { y[i] = x[i] * x[i]; }
            for i in 0..3 { y[i] += x[(i + 1) % 3].exp(); }
            y[0] -= y[2] * 0.5;
            y
        }",
        vec![arr(3)],
    )
    .native(|x| {
        let mut y: Vec<f64> = (0..3).map(|i| x[i] * x[i] + x[(i + 1) % 3].exp()).collect();
        y[0] -= y[2] * 0.5;
        y
    })
    .check();
}

/// Nested loops: a matrix-vector product with a `[[f64; 3]; 2]` parameter.
#[test]
fn nested_loops_matrix_vector() {
    Program::new(
        "fn f(a: [[f64; 3]; 2], x: [f64; 3]) -> [f64; 2] {
            let mut y = [0.0; 2];
            for i in 0..2 { for j in 0..3 { y[i] += a[i][j] * x[j]; } }
            y
        }",
        vec![Value::Arr(vec![arr(3), arr(3)]), arr(3)],
    )
    .native(|v| (0..2).map(|i| (0..3).map(|j| v[3 * i + j] * v[6 + j]).sum()).collect())
    .check();
}

/// Nested loops with a scalar result, so the 9 x 9 Hessian is checked too.
#[test]
fn nested_loops_second_order() {
    Program::new(
        "fn f(a: [[f64; 3]; 2], x: [f64; 3]) -> f64 {
            let mut s = 0.0;
            for i in 0..2 { let mut r = 0.0; for j in 0..3 { r += a[i][j] * x[j]; } s += r.tanh(); }
            s
        }",
        vec![Value::Arr(vec![arr(3), arr(3)]), arr(3)],
    )
    .native(|v| {
        vec![(0..2)
            .map(|i| (0..3).map(|j| v[3 * i + j] * v[6 + j]).sum::<f64>().tanh())
            .sum()]
    })
    .hessian()
    .check();
}

/// `.iter().sum()` of a computed array and of a parameter.
#[test]
fn iter_sum() {
    Program::new(
        "fn f(x: [f64; 4]) -> f64 {
            let mut y = [0.0; 4];
            for i in 0..4 { y[i] = x[i] * x[i].exp(); }
            y.iter().sum::<f64>() + x.iter().sum::<f64>()
        }",
        vec![arr(4)],
    )
    .native(|x| vec![x.iter().map(|v| v * v.exp()).sum::<f64>() + x.iter().sum::<f64>()])
    .hessian()
    .check();
}

/// An array parameter passed by reference.
#[test]
fn array_param_by_reference() {
    Program::new(
        "fn f(x: &[f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += x[i] * x[i] * w; } s + x[0].exp() }",
        vec![arr(3), f(0.0)],
    )
    .native(|v| vec![(0..3).map(|i| v[i] * v[i] * v[3]).sum::<f64>() + v[0].exp()])
    .hessian()
    .check();
}

// ---------------------------------------------------------------------------------------
// Control flow and bindings

/// `if`/`else` as an expression on a float condition (sampled away from `x = 0.5`).
#[test]
fn if_else_expression() {
    Program::new(
        "fn f(x: f64, y: f64) -> f64 { let z = if x > 0.5 { x.ln() * y } else { x * x - y }; z * y }",
        vec![f(0.0), f(0.0)],
    )
    .range(-1.0, 2.0)
    .valid(|x| apart(x[0], 0.5))
    .native(|v| {
        vec![
            (if v[0] > 0.5 {
                v[0].ln() * v[1]
            } else {
                v[0] * v[0] - v[1]
            }) * v[1],
        ]
    })
    .hessian()
    .check();
}

/// `if`/`else` statements assigning a mutable variable, one without `else`.
#[test]
fn if_else_statements() {
    Program::new(
        "fn f(x: f64, y: f64) -> f64 {
            let mut s = x * y;
            if s < 0.25 { s = s.sin() * 3.0; } else { s -= y.exp(); }
            if y > x { s += y; }
            s
        }",
        vec![f(0.0), f(0.0)],
    )
    .valid(|v| apart(v[0] * v[1], 0.25) && apart(v[0], v[1]))
    .native(|v| {
        let mut s = v[0] * v[1];
        if s < 0.25 {
            s = s.sin() * 3.0;
        } else {
            s -= v[1].exp();
        }
        if v[1] > v[0] {
            s += v[1];
        }
        vec![s]
    })
    .hessian()
    .check();
}

/// An early `return` inside an `if`.
#[test]
fn early_return() {
    Program::new(
        "fn f(x: f64, y: f64) -> f64 { if x < 0.0 { return -x * y; } let z = x.sin() * y; z + x }",
        vec![f(0.0), f(0.0)],
    )
    .valid(|v| apart(v[0], 0.0))
    .native(|v| {
        vec![if v[0] < 0.0 {
            -v[0] * v[1]
        } else {
            v[0].sin() * v[1] + v[0]
        }]
    })
    .hessian()
    .check();
}

/// Shadowed bindings: each `x`/`y` is a new value with its own derivative.
#[test]
fn shadowing() {
    Program::new(
        "fn f(x: f64, y: f64) -> f64 { let x = x * 2.0; let y = x.sin() + y; let x = x * y; x * y }",
        vec![f(0.0), f(0.0)],
    )
    .native(|v| {
        let x = v[0] * 2.0;
        let y = x.sin() + v[1];
        let x = x * y;
        vec![x * y]
    })
    .hessian()
    .check();
}

/// `let mut` reassignment, `*=` and `/=`.
#[test]
fn mutable_reassignment_and_compound_ops() {
    Program::new(
        "fn f(x: f64, y: f64) -> f64 { let mut p = x; p *= y; p = p + x; p *= p; p /= y; p }",
        vec![f(0.0), f(0.0)],
    )
    .range(0.5, 2.0)
    .native(|v| {
        let mut p = v[0];
        p *= v[1];
        p += v[0];
        p *= p;
        p /= v[1];
        vec![p]
    })
    .hessian()
    .check();
}

/// Tuple results, with an array inside: a 3 x 2 Jacobian.
#[test]
fn tuple_result() {
    Program::new(
        "fn f(x: f64, y: f64) -> (f64, [f64; 2]) { (x * y, [x.sin() + y, y.exp()]) }",
        vec![f(0.0), f(0.0)],
    )
    .native(|v| vec![v[0] * v[1], v[0].sin() + v[1], v[1].exp()])
    .check();
    Program::new(
        "fn f(x: f64, y: f64) -> (f64, f64) { (x * y, x.sin() + y) }",
        vec![f(0.0), f(0.0)],
    )
    .native(|v| vec![v[0] * v[1], v[0].sin() + v[1]])
    .check();
}

// ---------------------------------------------------------------------------------------
// Integer arguments and primitives in programs

/// Integer arguments are fixed, never differentiated (no tangent, no cotangent: the
/// harness checks `vjp` returns exactly one cotangent float per float input), and usable
/// as exponent and as a cast factor.
#[test]
fn integer_arguments() {
    for k in [0, 3, -2] {
        Program::new(
            "fn f(x: f64, k: i32, y: [f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { s += y[i] * x.powi(k) * (k as f64); } s }",
            vec![f(0.0), int(k), arr(3)],
        )
        .valid(|v| v[0].abs() >= 0.3)
        .hessian()
        .check();
    }
}

/// `x.powi(n)` with an integer argument `n`, including `0` and negative exponents.
#[test]
fn powi_with_integer_argument() {
    for n in [0, 1, 2, 3, -2, 7] {
        Program::new(
            "fn f(x: f64, n: i32) -> f64 { x.powi(n) * x.sin() }",
            vec![f(0.0), int(n)],
        )
        .valid(|v| v[0].abs() >= 0.3)
        .hessian()
        .check();
    }
}

/// `mul_add` as a method and as an associated function.
#[test]
fn mul_add() {
    Program::new(
        "fn f(x: f64, y: f64, z: f64) -> f64 { x.mul_add(y, z) * x }",
        vec![f(0.0), f(0.0), f(0.0)],
    )
    .native(|v| vec![v[0].mul_add(v[1], v[2]) * v[0]])
    .hessian()
    .check();
    Program::new(
        "fn f(x: f64, y: f64, z: f64) -> f64 { f64::mul_add(x.sin(), y, z * z) }",
        vec![f(0.0), f(0.0), f(0.0)],
    )
    .native(|v| vec![v[0].sin().mul_add(v[1], v[2] * v[2])])
    .hessian()
    .check();
}

/// `stop_gradient(e)`: the value of `e`, but no derivative through it. For
/// `f = sin x · sg(x y) + y` the gradient is `(cos x · x y, 1)` (not the derivative of
/// the value, so no finite differences) and the Hessian `[[-sin x · x y, 0], [0, 0]]`.
#[test]
fn stop_gradient_is_ignored_by_derivatives() {
    let src = "fn f(x: f64, y: f64) -> f64 { x.sin() * stop_gradient(x * y) + y }";
    let h = Harness::new(
        src,
        lower(src).unwrap_or_else(|e| panic!("{e}")),
        vec![f(0.0), f(0.0)],
        &RuleTable::standard(),
    );
    let mut rng = Rng::for_name(src);
    for _ in 0..fd_points() {
        let x = [rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)];
        let (a, b) = (x[0], x[1]);
        let close = |p: f64, q: f64| ulps_close(p, q, 4.0, 1.0);
        let y = h.primal_flat(&x).unwrap_or_else(|e| panic!("{e}"));
        assert!(close(y[0], a.sin() * (a * b) + b), "primal at {x:?}: {y:?}");
        let grad = vec![vec![a.cos() * (a * b), 1.0]];
        let jr = h.jac_rev(&x).unwrap_or_else(|e| panic!("{e}"));
        let jf = h.jac_fwd(&x).unwrap_or_else(|e| panic!("{e}"));
        compare(&format!("vjp at {x:?}"), &jr, &grad, close).unwrap_or_else(|e| panic!("{e}"));
        compare(&format!("jvp at {x:?}"), &jf, &grad, close).unwrap_or_else(|e| panic!("{e}"));
        let hess = vec![vec![-a.sin() * (a * b), 0.0], vec![0.0, 0.0]];
        let hf = h.hess_fwd_rev(&x).unwrap_or_else(|e| panic!("{e}"));
        let hr = h.hess_rev_rev(&x).unwrap_or_else(|e| panic!("{e}"));
        compare(&format!("jvp(vjp) at {x:?}"), &hf, &hess, close).unwrap_or_else(|e| panic!("{e}"));
        compare(&format!("vjp(vjp) at {x:?}"), &hr, &hess, close).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// `hypot` where `x² + y²` overflows: at `(3e200, 4e200)` the gradient is `(0.6, 0.8)`
/// and the Hessian `[[y², -xy], [-xy, x²]] / h³ = [[0.64, -0.48], [-0.48, 0.36]] / h`;
/// every mode stays finite and close (4 ulps for the gradient, 64 for the Hessian) to
/// these. Also through a program (`2 hypot(x, y)`) and at `(-3e200, 4e200)`.
#[test]
fn hypot_at_large_values_stays_finite() {
    for (src, c) in [
        ("fn f(x: f64, y: f64) -> f64 { x.hypot(y) }", 1.0),
        ("fn f(x: f64, y: f64) -> f64 { let h = x.hypot(y); h * 2.0 }", 2.0),
    ] {
        let h = Harness::new(
            src,
            lower(src).unwrap_or_else(|e| panic!("{e}")),
            vec![f(0.0), f(0.0)],
            &RuleTable::standard(),
        );
        for x in [[3e200_f64, 4e200], [-3e200, 4e200], [4e200, 3e200]] {
            let r = x[0].hypot(x[1]);
            let (a, b) = (x[0] / r, x[1] / r);
            let grad = vec![vec![c * a, c * b]];
            let hess = vec![vec![c * b * b / r, -c * a * b / r], vec![-c * a * b / r, c * a * a / r]];
            let finite = |m: &[Vec<f64>]| m.iter().flatten().all(|v| v.is_finite());
            let jr = h.jac_rev(&x).unwrap_or_else(|e| panic!("{e}"));
            let jf = h.jac_fwd(&x).unwrap_or_else(|e| panic!("{e}"));
            let hf = h.hess_fwd_rev(&x).unwrap_or_else(|e| panic!("{e}"));
            let hr = h.hess_rev_rev(&x).unwrap_or_else(|e| panic!("{e}"));
            for (mode, m, want, ulps) in [
                ("vjp", &jr, &grad, 4.0),
                ("jvp", &jf, &grad, 4.0),
                ("jvp(vjp)", &hf, &hess, 64.0),
                ("vjp(vjp)", &hr, &hess, 64.0),
            ] {
                assert!(finite(m), "`{src}` {mode} at {x:?}: {m:?}");
                let s = max_abs(want);
                compare(&format!("`{src}` {mode} at {x:?}"), m, want, |p, q| {
                    ulps_close(p, q, ulps, s)
                })
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// The program checks can fail: a sign flip in `sin`'s rule is caught in a loop.
#[test]
fn program_check_catches_a_defective_rule() {
    let p = sum_sin_const_generic();
    assert!(p.check_with(&RuleTable::standard()).is_ok());
    for m in [Mutation::FlipSign, Mutation::Scale(2.0)] {
        assert!(
            p.check_with(&RuleTable::standard().mutated(Prim::Sin, m)).is_err(),
            "{m:?} not caught"
        );
    }
    // `cos` is only evaluated by the first derivative of `sin`: the Hessian check sees it.
    assert!(p
        .check_with(&RuleTable::standard().mutated(Prim::Cos, Mutation::FlipSign))
        .is_err());
}

// ---------------------------------------------------------------------------------------
// Combinations: tapes in nested and reversed loops, overwritten array elements, branches
// inside loops.

/// A branch on a float condition inside a loop, each side updating the accumulator
/// differently (the reverse sweep must replay the branch taken in each iteration). The
/// `if` is followed by another statement: see `if_statement_ending_a_block` for the form
/// where it ends the loop body.
#[test]
fn branch_inside_loop() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 1.0;
            for i in 0..N { if x[i] > 0.0 { s += x[i] * s; } else { s = s * x[i].exp(); } s *= 0.9; }
            s
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .valid(|x| x.iter().all(|v| v.abs() >= 0.01))
    .native(|x| {
        vec![x
            .iter()
            .fold(1.0, |s, v| 0.9 * if *v > 0.0 { s + v * s } else { s * v.exp() })]
    })
    .hessian()
    .check();
}

/// Engine bug. An `if` *statement* (branches ending in `;`, type `()`) that is the last
/// thing in a block (a `for` body, an `if` branch, a bare block) is valid Rust but is
/// lowered as the block's value and rejected: with an `else`, "both branches of this `if`
/// must give a value"; without one, "an `if` used as a value needs an `else` branch".
/// Followed by any statement (or by `;`) the same `if` lowers and differentiates fine
/// (`branch_inside_loop`, `if_else_statements`).
#[test]
fn if_statement_ending_a_block() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 1.0;
            for i in 0..N { if x[i] > 0.0 { s += x[i] * s; } else { s = s * x[i].exp(); } }
            s
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .valid(|x| x.iter().all(|v| v.abs() >= 0.01))
    .native(|x| {
        vec![x
            .iter()
            .fold(1.0, |s, v| if *v > 0.0 { s + v * s } else { s * v.exp() })]
    })
    .hessian()
    .check();
    Program::new(
        "fn f(x: f64) -> f64 { let mut s = 1.0; for i in 0..2 { if x > 0.0 { s += x * s; } } s }",
        vec![f(0.0)],
    )
    .valid(|x| apart(x[0], 0.0))
    .native(|x| vec![if x[0] > 0.0 { (1.0 + x[0]) * (1.0 + x[0]) } else { 1.0 }])
    .hessian()
    .check();
    Program::new(
        "fn f(x: f64) -> f64 { let mut s = x; if x > 0.0 { if x > 1.0 { s *= x; } else { s -= x * x; } } s }",
        vec![f(0.0)],
    )
    .range(-1.0, 2.0)
    .valid(|x| apart(x[0], 0.0) && apart(x[0], 1.0))
    .native(|x| {
        vec![if x[0] > 1.0 {
            x[0] * x[0]
        } else if x[0] > 0.0 {
            x[0] - x[0] * x[0]
        } else {
            x[0]
        }]
    })
    .hessian()
    .check();
}

/// A `let` in the inner loop of a nested pair, read by the reverse sweep (tape indexed by
/// both loop counters).
#[test]
fn tape_in_nested_loops() {
    Program::new(
        "fn f(a: [[f64; 3]; 2]) -> f64 {
            let mut s = 0.5;
            for i in 0..2 { for j in 0..3 { let t = a[i][j] * s; s = s + t.sin(); } }
            s
        }",
        vec![Value::Arr(vec![arr(3), arr(3)])],
    )
    .native(|a| vec![a.iter().fold(0.5, |s, v| s + (v * s).sin())])
    .hessian()
    .check();
}

/// A `let` in a reversed loop, read by the reverse sweep.
#[test]
fn tape_in_reverse_loop() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 1.0;
            for i in (0..N).rev() { let t = (x[i] * s).cos(); s = s * t + x[i]; }
            s
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![x.iter().rev().fold(1.0, |s, v| s * (v * s).cos() + v)])
    .hessian()
    .check();
}

/// Array elements overwritten in every outer iteration from their old value and a
/// neighbour's: the reverse sweep needs each overwritten value.
#[test]
fn array_overwritten_across_iterations() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut y = [1.0; N];
            for k in 0..3 { for i in 0..N { y[i] = y[i] * x[i] + y[(i + 1) % N].sin(); } }
            y.iter().sum()
        }",
        vec![arr(3)],
    )
    .consts(&[("N", 3)])
    .native(|x| {
        let mut y = [1.0; 3];
        for _ in 0..3 {
            for i in 0..3 {
                y[i] = y[i] * x[i] + y[(i + 1) % 3].sin();
            }
        }
        vec![y.iter().sum()]
    })
    .hessian()
    .check();
}

/// Loop bounds that are constant expressions (`1..N`, `0..N - 1`), and a shadowed `let`
/// inside the loop body.
#[test]
fn offset_bounds_and_shadowing_in_loop() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = x[0];
            for i in 1..N { let d = x[i] - x[i - 1]; let d = d * d; s += d.sqrt() + s * 0.5; }
            for i in 0..N - 1 { s -= x[i] * x[i + 1]; }
            s
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .valid(|x| x.windows(2).all(|w| apart(w[0], w[1])))
    .native(|x| {
        let mut s = x[0];
        for i in 1..4 {
            s += (x[i] - x[i - 1]).abs() + s * 0.5;
        }
        for i in 0..3 {
            s -= x[i] * x[i + 1];
        }
        vec![s]
    })
    .hessian()
    .check();
}

/// `stop_gradient` inside a loop, and `-=` on array elements: the derivative of
/// `y[i] -= sg(y[i]) · x[i]` treats the subtracted factor as a constant.
#[test]
fn stop_gradient_in_loop() {
    let src = "fn f(x: [f64; 3]) -> f64 {
        let mut y = [0.0; 3];
        for i in 0..3 { y[i] = x[i].exp(); y[i] -= stop_gradient(y[i]) * x[i]; }
        y.iter().sum()
    }";
    let h = Harness::new(
        src,
        lower(src).unwrap_or_else(|e| panic!("{e}")),
        vec![arr(3)],
        &RuleTable::standard(),
    );
    let mut rng = Rng::for_name(src);
    for _ in 0..fd_points() {
        let x: Vec<f64> = (0..3).map(|_| rng.uniform(-1.5, 1.5)).collect();
        // d/dx_i [e^{x_i} - sg(e^{x_i}) x_i] = e^{x_i} - e^{x_i}; second derivative e^{x_i}.
        let grad = vec![x.iter().map(|v| v.exp() - v.exp()).collect::<Vec<f64>>()];
        let hess: Vec<Vec<f64>> = (0..3)
            .map(|i| (0..3).map(|j| if i == j { x[i].exp() } else { 0.0 }).collect())
            .collect();
        let close = |p: f64, q: f64| ulps_close(p, q, 4.0, 1.0);
        for (mode, m, want) in [
            ("vjp", h.jac_rev(&x), &grad),
            ("jvp", h.jac_fwd(&x), &grad),
            ("jvp(vjp)", h.hess_fwd_rev(&x), &hess),
            ("vjp(vjp)", h.hess_rev_rev(&x), &hess),
        ] {
            let m = m.unwrap_or_else(|e| panic!("{mode}: {e}"));
            compare(&format!("{mode} at {x:?}"), &m, want, close).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Early return of an array, with the returned value computed in a loop.
#[test]
fn early_return_of_an_array() {
    Program::new(
        "fn f(x: [f64; 3], c: f64) -> [f64; 3] {
            let mut y = [0.0; 3];
            for i in 0..3 { y[i] = x[i] * c; }
            if c < 0.0 { return y; }
            for i in 0..3 { y[i] = y[i].sin() * x[i]; }
            y
        }",
        vec![arr(3), f(0.0)],
    )
    .valid(|v| apart(v[3], 0.0))
    .native(|v| {
        (0..3)
            .map(|i| {
                if v[3] < 0.0 {
                    v[i] * v[3]
                } else {
                    (v[i] * v[3]).sin() * v[i]
                }
            })
            .collect()
    })
    .check();
}

/// `min`, `max`, `abs` and `powf` in a program (sampled away from their kinks).
#[test]
fn kinked_primitives_in_a_loop() {
    Program::new(
        "fn f(x: [f64; 3], y: f64) -> f64 {
            let mut s = 0.0;
            for i in 0..3 { s += x[i].max(y) * x[i].abs() + x[i].min(y * 0.5) + x[i].abs().powf(y); }
            s
        }",
        vec![arr(3), f(0.0)],
    )
    .valid(|v| {
        v[..3]
            .iter()
            .all(|x| x.abs() >= 0.05 && apart(*x, v[3]) && apart(*x, v[3] * 0.5))
    })
    .native(|v| {
        vec![v[..3]
            .iter()
            .map(|x| x.max(v[3]) * x.abs() + x.min(v[3] * 0.5) + x.abs().powf(v[3]))
            .sum()]
    })
    .hessian()
    .check();
}

/// A `let` inside a loop whose bound is an expression of a const generic (`0..N - 1`):
/// the tape of `t` has `N - 1` slots.
#[test]
fn tape_with_expression_bound() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 1.0;
            for i in 0..N - 1 { let t = (x[i] * x[i + 1]).sin(); s = s * t + x[i]; }
            s
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| vec![(0..3).fold(1.0, |s, i| s * (x[i] * x[i + 1]).sin() + x[i])])
    .hessian()
    .check();
}

/// A `let mut` local to the loop body, mutated in place before being accumulated.
#[test]
fn loop_local_mutable() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> f64 {
            let mut s = 0.0;
            for i in 0..N { let mut t = x[i]; t *= t.cos(); t += s * 0.5; s += t; }
            s
        }",
        vec![arr(3)],
    )
    .consts(&[("N", 3)])
    .native(|x| vec![x.iter().fold(0.0, |s, v| s + (v * v.cos() + s * 0.5))])
    .hessian()
    .check();
}

/// Reverse loop writing `y[i]` from `y[i + 1]` (a backward recurrence through an array),
/// index expressions `N - 1 - i`.
#[test]
fn reverse_loop_array_recurrence() {
    Program::new(
        "fn f<const N: usize>(x: [f64; N]) -> [f64; N] {
            let mut y = [0.0; N];
            y[N - 1] = x[N - 1];
            for i in (0..N - 1).rev() { y[i] = y[i + 1] * x[i] + x[N - 1 - i].sin(); }
            y
        }",
        vec![arr(4)],
    )
    .consts(&[("N", 4)])
    .native(|x| {
        let mut y = [0.0; 4];
        y[3] = x[3];
        for i in (0..3).rev() {
            y[i] = y[i + 1] * x[i] + x[3 - i].sin();
        }
        y.to_vec()
    })
    .check();
}

/// Sums of rows of a 2-D array, `[x; n]` repeat of an active value, and an output with
/// constant entries.
#[test]
fn rows_repeat_and_constant_outputs() {
    Program::new(
        "fn f(a: [[f64; 3]; 2], x: f64) -> [f64; 3] {
            let r = [x * x; 2];
            [a[0].iter().sum::<f64>() * r[0], 2.0, a[1].iter().sum::<f64>() + r[1]]
        }",
        vec![Value::Arr(vec![arr(3), arr(3)]), f(0.0)],
    )
    .native(|v| {
        vec![
            (v[0] + v[1] + v[2]) * v[6] * v[6],
            2.0,
            v[3] + v[4] + v[5] + v[6] * v[6],
        ]
    })
    .check();
}

/// Calls between differentiable functions: the callee's companions are built on the fly
/// by the interpreter (as its macro would), up to order 2.
#[test]
fn calls_between_functions() {
    let g = lower("fn g(x: f64, y: f64) -> f64 { x.sin() * y }").unwrap_or_else(|e| panic!("{e}"));
    let p = Program::new(
        "fn f(x: f64, y: f64) -> f64 { let a = g(x, y); let b = g(y, a); a * b + g(b, x) }",
        vec![f(0.0), f(0.0)],
    )
    .native(|v| {
        let g = |x: f64, y: f64| x.sin() * y;
        let a = g(v[0], v[1]);
        let b = g(v[1], a);
        vec![a * b + g(b, v[0])]
    })
    .hessian();
    let mut h = p.harness(&RuleTable::standard()).unwrap_or_else(|e| panic!("{e}"));
    h.env.funcs.insert("g".into(), g);
    check_harness(&p, &h).unwrap_or_else(|e| panic!("{e}"));
}

/// A user constant (`const K: f64`), read through `env.consts`, never differentiated.
#[test]
fn user_float_constant() {
    let p = Program::new("fn f(x: f64) -> f64 { (x * K).sin() + K }", vec![f(0.0)])
        .native(|v| vec![(v[0] * 2.5).sin() + 2.5])
        .hessian();
    let mut h = p.harness(&RuleTable::standard()).unwrap_or_else(|e| panic!("{e}"));
    h.env.consts.insert("K".into(), Value::F(2.5));
    check_harness(&p, &h).unwrap_or_else(|e| panic!("{e}"));
}
