//! Regression tests for defects found in review: each reproduces the original input.

use fluxion_engine::expand::lower_source;
use fluxion_engine::interp::{companion, Env, Value};
use fluxion_engine::ir::Mode;
use fluxion_engine::rules::RuleTable;

fn eval(src: &str, args: &[Value]) -> Value {
    let f = lower_source(src).unwrap_or_else(|e| panic!("{e}"));
    Env::default().eval(&f, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `(value, gradient)` of a scalar function of one scalar through the VJP companion.
fn value_and_grad(src: &str, x: f64) -> (f64, f64) {
    let f = lower_source(src).unwrap_or_else(|e| panic!("{e}"));
    let g = companion(&f, &[Mode::Vjp], &RuleTable::standard()).unwrap_or_else(|e| panic!("{e}"));
    match Env::default().eval(&g, &[Value::F(x), Value::F(1.0)]) {
        Ok(Value::Tup(v)) => match (&v[0], &v[1]) {
            (Value::F(y), Value::Tup(b)) => (*y, b[0].f().unwrap_or(f64::NAN)),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// An `if` statement whose then-branch has a value and whose else-branch returns: the
/// value is discarded, the code after the `if` runs (it used to become the result).
#[test]
fn statement_if_value_is_not_the_result() {
    let src = "fn f(x: f64) -> f64 { if x > 0.0 { x * 2.0 } else { return x; }; x * 3.0 }";
    assert_eq!(value_and_grad(src, 1.0), (3.0, 3.0));
    assert_eq!(value_and_grad(src, -1.0), (-1.0, 1.0));
}

/// A binding inside a branch must not leak into the code after the `if`.
#[test]
fn branch_bindings_do_not_leak() {
    let src = "fn f(x: f64, y: f64) -> f64 { if y > 5.0 { return 0.0; } else { let x = 2.0 * y; let _u = x; } x * y }";
    assert_eq!(eval(src, &[Value::F(1.0), Value::F(3.0)]), Value::F(3.0));
    // A branch that returns on some paths only is rejected (it cannot be continued).
    let bad = "fn f(x: f64, y: f64) -> f64 { if y > 5.0 { return 0.0; } else { let x = 2.0 * y; if x > 100.0 { return x; } } x * y }";
    let err = lower_source(bad).err().unwrap_or_default();
    assert!(err.contains("must end with `return` on every path"), "{err}");
}

/// `&&` evaluates its right side only when the left holds (no out-of-bounds index).
#[test]
fn and_short_circuits() {
    let src = "fn f(x: [f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { if i + 1 < 3 && x[i + 1] > x[i] { s += x[i]; } } s }";
    let x = Value::Arr(vec![Value::F(1.0), Value::F(2.0), Value::F(0.5)]);
    assert_eq!(eval(src, &[x]), Value::F(1.0));
}

/// `%` on floats, on values whose type the macro cannot see, and as `%=`, is the
/// differentiable remainder (values in `tests/defects.rs`), never a silent zero derivative.
#[test]
fn remainder_of_floats_and_untyped_values_is_differentiable() {
    for src in [
        "fn w(x: f64) -> f64 { let a = angle(x) % TAU; a * a }",
        "fn w(x: f64) -> f64 { let mut y = 3.0 * x; y %= 1.0; y }",
        "fn w(x: [f64; 2]) -> f64 { let mut y = x; y[1] %= x[0]; y[1] }",
    ] {
        let f = lower_source(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let active = fluxion_engine::activity::analyze(&f, &[true]);
        assert!(
            active.contains(&f.ret.var().unwrap_or(usize::MAX)),
            "{src}: the result is not active"
        );
    }
    assert!(
        lower_source("fn w(x: [f64; 4]) -> f64 { let mut s = 0.0; for i in 0..4 { s += x[(i + 1) % 4]; } s }").is_ok()
    );
}

/// A tuple argument holding an integer, passed to a call: its cotangent's `()` field was
/// a sum of `()`s (`() + ()`, no Rust) in a reverse pass over the first, and a reverse pass
/// over that one rebuilt the tuple from the fields it read only (an arity of one). The
/// call's per-argument cotangent is typed by the argument's shape; a `()` field takes its
/// first cotangent. Checked: no addition of a `()` field, the tuples passed to `g`'s
/// companions have both fields, and the second derivative against differences.
#[test]
fn a_tuple_argument_holding_an_integer_through_a_call() {
    use fluxion_engine::ir::{walk_stmts, Expr, Operand, Prim, Stmt, Ty};
    let rules = RuleTable::standard();
    let mut env = Env::default();
    let g = lower_source("fn g(x: f64, w: (f64, usize)) -> f64 { w.0 * x * x * (w.1 as f64) }")
        .unwrap_or_else(|e| panic!("{e}"));
    env.funcs.insert("g".into(), g);
    let f =
        lower_source("fn f(x: f64, w: (f64, usize)) -> f64 { let e = g(x, w); e * e + g(x * w.0, (w.0, w.1 + 1)) }")
            .unwrap_or_else(|e| panic!("{e}"));
    let once = companion(&f, &[Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{e}"));
    let twice = companion(&f, &[Mode::Vjp, Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{e}"));
    for h in [&once, &twice] {
        walk_stmts(&h.body, &mut |s| {
            if let Stmt::Let(_, Expr::Prim(Prim::Add, ops)) = s {
                for o in ops {
                    assert!(h.ty_of(o) != Ty::Unit, "an addition of `()`: {s:?}");
                }
            }
            if let Stmt::Let(_, Expr::Call(c)) = s {
                if c.name == "g" && c.modes.len() == 2 {
                    // `g::vjp_vjp(x, w, ct, (ȳ, (x̄, (w̄₀, w̄₁))))`.
                    let ct = c.args.last().map(|a| a.op.clone()).unwrap_or(Operand::Unit);
                    let mut arity = None;
                    walk_stmts(&h.body, &mut |t| {
                        if let Stmt::Let(v, Expr::Tuple(xs)) = t {
                            if Some(*v) == ct.var() {
                                arity = xs.get(1).and_then(|b| b.var());
                            }
                        }
                    });
                    let inner = arity.and_then(|b| {
                        let mut n = None;
                        walk_stmts(&h.body, &mut |t| {
                            if let Stmt::Let(v, Expr::Tuple(xs)) = t {
                                if *v == b {
                                    n = xs.get(1).and_then(|w| w.var());
                                }
                            }
                        });
                        n
                    });
                    let mut fields = None;
                    walk_stmts(&h.body, &mut |t| {
                        if let Stmt::Let(v, Expr::Tuple(xs)) = t {
                            if Some(*v) == inner {
                                fields = Some(xs.len());
                            }
                        }
                    });
                    assert_eq!(fields, Some(2), "the cotangent of `w` passed to `g::vjp_vjp`");
                }
            }
        });
    }
    // d/dx of the gradient's `x` entry, by reverse over reverse, against differences.
    let w = Value::Tup(vec![Value::F(0.6), Value::I(2)]);
    let dx = |x: f64| {
        let r = env
            .eval(&once, &[Value::F(x), w.clone(), Value::F(1.0)])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        r.flatten(&mut out);
        out[1]
    };
    let ct = Value::Tup(vec![
        Value::F(0.0),
        Value::Tup(vec![Value::F(1.0), Value::Tup(vec![Value::F(0.0), Value::Unit])]),
    ]);
    let r = env
        .eval(&twice, &[Value::F(0.9), w.clone(), Value::F(1.0), ct])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    r.flatten(&mut out);
    // `((y, (x̄, (w̄₀,))), (x̄₂, (w̄₂₀,), c̄t))`: `x̄₂` follows the first pass's three floats.
    let got = out[3];
    let h = 1e-6;
    let want = (dx(0.9 + h) - dx(0.9 - h)) / (2.0 * h);
    assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{got} against {want}");
}
