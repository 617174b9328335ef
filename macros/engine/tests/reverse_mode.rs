//! Reverse mode: split calls, tape sizes, and derivatives through casts and broadcasts.
//!
//! Split calls: a final reverse pass (`vjp_final`) calls `g::vjp_fwd` in its
//! forward sweep and `g::vjp_bwd` with the residuals in its reverse sweep, where `vjp`
//! calls `g` and then `g::vjp`, which runs `g`'s forward pass again. Both must give the same
//! numbers (bit for bit: the same operations, only not repeated), `vjp_fwd` must return the
//! primal value, and the split companions must compose to `vjp`, in the interpreter.

use std::collections::HashSet;

use fluxion_engine::attr::Options;
use fluxion_engine::expand::lower_source;
use fluxion_engine::interp::{companion, Env, Value};
use fluxion_engine::ir::*;
use fluxion_engine::rules::RuleTable;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad_pass, Site};
use fluxion_engine::vjp::{split_companions, vjp, vjp_final, VjpSpec};

fn lower(src: &str) -> Func {
    lower_source(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn env(callees: &[&str]) -> Env {
    let mut env = Env::default();
    for src in callees {
        let g = lower(src);
        env.funcs.insert(g.name.clone(), g);
    }
    env
}

/// The callees: a smooth one, one with a loop (tapes as residuals), one calling another
/// (residuals of a type the macro cannot write: `vjp_bwd` recomputes).
const CALLEES: [&str; 3] = [
    "fn g(x: f64, w: f64) -> f64 { (x * w).tanh() * x }",
    "fn h(x: f64) -> f64 { let mut s = x; for i in 0..4 { s = (s * x).sin() + i as f64; } s }",
    "fn k(x: f64, w: f64) -> f64 { g(x, w) * h(w) }",
];

/// Callers: a call outside and inside a loop and a branch, repeated calls, nested calls.
const CALLERS: [&str; 5] = [
    "fn f(x: f64, w: f64) -> f64 { g(x, w) * g(w, x) }",
    "fn f(x: f64, w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += g(x + i as f64, w) * h(s + x); } s }",
    "fn f(x: f64, w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += g(x * i as f64, w) * x; } s }",
    "fn f(x: f64, w: f64) -> f64 { if x > 0.5 { k(x, w) } else { h(w) * x } }",
    "fn f(x: f64, w: f64) -> f64 { let a = k(x, w); let b = k(a, x); a + h(b) }",
];

fn args(x: f64, w: f64, ct: f64) -> Vec<Value> {
    vec![Value::F(x), Value::F(w), Value::F(ct)]
}

#[test]
fn final_reverse_passes_give_the_values_of_the_unsplit_ones() {
    let rules = RuleTable::standard();
    let env = env(&CALLEES);
    let spec = VjpSpec {
        active: vec![true, true],
        all_params: false,
        seed: None,
    };
    let mut splits = 0;
    for src in CALLERS {
        let f = lower(src);
        let plain = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let split = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let mut modes = Vec::new();
        walk_stmts(&split.func.body, &mut |s| {
            if let Stmt::Let(_, Expr::Call(c)) = s {
                modes.push(c.modes.clone());
            }
        });
        assert!(
            modes.iter().all(|m| !m.is_empty()),
            "{src}: a primal call left in {modes:?}"
        );
        assert!(modes.contains(&vec![Mode::VjpFwd]) && modes.contains(&vec![Mode::VjpBwd]));
        splits += modes.len();
        for (x, w, ct) in [(0.7, -0.4, 1.0), (0.2, 1.3, -2.5), (1.1, 0.9, 0.5)] {
            let a = env
                .eval(&plain.func, &args(x, w, ct))
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            let b = env
                .eval(&split.func, &args(x, w, ct))
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{src} at ({x}, {w}, {ct})");
        }
    }
    assert!(splits >= 8);
}

/// A reverse pass that is differentiated again calls `g(x)` and `g::vjp(x, ȳ)`; the final
/// pass over it (a `vjp_vjp` companion) splits the plain calls only: a call of a companion
/// (`g::vjp`, already a mode) kept as it is, and the same numbers as the unsplit pass.
#[test]
fn a_final_pass_over_a_reverse_pass_splits_only_plain_calls() {
    let rules = RuleTable::standard();
    let env = env(&CALLEES);
    let spec = VjpSpec {
        active: vec![true, true],
        all_params: false,
        seed: None,
    };
    let outer = VjpSpec {
        active: vec![true, true, true],
        all_params: false,
        seed: None,
    };
    for src in CALLERS {
        let f = lower(src);
        let inner = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let plain = vjp(&inner.func, &outer, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let split = vjp_final(&inner.func, &outer, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let mut modes = Vec::new();
        walk_stmts(&split.func.body, &mut |s| {
            if let Stmt::Let(_, Expr::Call(c)) = s {
                modes.push(c.modes.clone());
            }
        });
        assert!(modes.contains(&vec![Mode::Vjp]), "{src}: {modes:?}");
        for (x, w, ct) in [(0.7, -0.4, 1.0), (0.2, 1.3, -2.5)] {
            let ct2 = Value::Tup(vec![Value::F(0.3), Value::Tup(vec![Value::F(-1.2), Value::F(0.8)])]);
            let mut a = args(x, w, ct);
            a.push(ct2);
            let p = env.eval(&plain.func, &a).unwrap_or_else(|e| panic!("{src}: {e}"));
            let q = env.eval(&split.func, &a).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(format!("{p:?}"), format!("{q:?}"), "{src} at ({x}, {w}, {ct})");
        }
    }
}

#[test]
fn split_companions_compose_to_the_vjp_companion() {
    let rules = RuleTable::standard();
    let env = env(&CALLEES);
    for src in CALLEES {
        let g = lower(src);
        let (fwd, bwd) = split_companions(&g, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let vjp = companion(&g, &[Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
        let n = g.params.len();
        for (x, w, ct) in [(0.7, -0.4, 1.0), (0.3, 1.3, -2.5)] {
            let primals: Vec<Value> = [x, w][..n].iter().map(|v| Value::F(*v)).collect();
            let Value::Tup(pair) = env.eval(&fwd, &primals).unwrap_or_else(|e| panic!("{src}: {e}")) else {
                panic!("{src}: vjp_fwd returned no pair");
            };
            let primal = env.eval(&g, &primals).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(
                format!("{:?}", pair[0]),
                format!("{primal:?}"),
                "{src}: vjp_fwd's value"
            );
            let mut bargs = primals.clone();
            bargs.push(pair[1].clone());
            bargs.push(Value::F(ct));
            let bars = env.eval(&bwd, &bargs).unwrap_or_else(|e| panic!("{src}: {e}"));
            let mut vargs = primals.clone();
            vargs.push(Value::F(ct));
            let Value::Tup(full) = env.eval(&vjp, &vargs).unwrap_or_else(|e| panic!("{src}: {e}")) else {
                panic!("{src}: vjp returned no pair");
            };
            assert_eq!(format!("{bars:?}"), format!("{:?}", full[1]), "{src}: vjp_bwd vs vjp");
        }
    }
}

/// Residuals are what the reverse sweep reads, and only that: a smooth callee keeps its
/// `tanh`, a loop keeps its tapes, a callee calling others keeps none (`()`, recomputed).
#[test]
fn residuals_are_written_where_their_types_are_known() {
    let rules = RuleTable::standard();
    let count = |src: &str| {
        let (fwd, _) = split_companions(&lower(src), &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        match &fwd.ret_ty {
            Ty::Tuple(ts) => match &ts[1] {
                Ty::Tuple(rs) => rs.len(),
                t => panic!("{src}: residuals of type {t:?}"),
            },
            t => panic!("{src}: {t:?}"),
        }
    };
    assert_eq!(count(CALLEES[0]), 1);
    assert!(count(CALLEES[1]) >= 1);
    assert_eq!(count(CALLEES[2]), 0);
}

/// A split call in a loop runs again in the reverse sweep, from its (recomputed or taped)
/// arguments: neither its result nor its residuals are taped. In a gradient that does not
/// return the value, the forward sweep's call is then dead: `g::vjp_fwd` runs once per
/// step, in the reverse loop, beside `g::vjp_bwd`. The values are the unsplit pass's.
#[test]
fn calls_in_loops_run_again_in_the_reverse_sweep_instead_of_taping_residuals() {
    let rules = RuleTable::standard();
    let env = env(&CALLEES);
    let spec = VjpSpec {
        active: vec![true, true],
        all_params: false,
        seed: None,
    };
    let site = Site {
        name: proc_macro2::Span::call_site(),
        ret: proc_macro2::Span::call_site(),
    };
    for (src, forward_dead) in [(CALLERS[1], false), (CALLERS[2], true)] {
        let f = lower(src);
        let split = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let mut split_results = HashSet::new();
        walk_stmts(&split.func.body, &mut |s| match s {
            Stmt::Let(v, Expr::Residuals(_)) => {
                split_results.insert(*v);
            }
            Stmt::Let(v, Expr::Call(c)) if c.modes == [Mode::VjpFwd] => {
                split_results.insert(*v);
            }
            _ => {}
        });
        walk_stmts(&split.func.body, &mut |s| {
            if let Stmt::Assign(p, _, Operand::Var(v)) = s {
                assert!(
                    !split_results.contains(v),
                    "{src}: `{}` taped into `{}`",
                    split.func.vars[*v].name,
                    split.func.vars[p.var].name
                );
            }
        });
        let o = Options::new(Transform::Grad, proc_macro2::Span::call_site());
        let g = grad_pass(&f, &o, &site, &rules, false, true).unwrap_or_else(|e| panic!("{src}: {e}"));
        // `vjp_fwd` calls: in reverse loops only when the forward sweep's call is dead.
        fn calls(b: &Block, rev: bool, out: &mut Vec<bool>) {
            for s in &b.0 {
                match s {
                    Stmt::Let(_, Expr::Call(c)) if c.modes == [Mode::VjpFwd] => out.push(rev),
                    Stmt::For(l) => calls(&l.body, l.rev, out),
                    Stmt::If(_, t, e) => {
                        calls(t, rev, out);
                        calls(e, rev, out);
                    }
                    _ => {}
                }
            }
        }
        let mut fwd_calls = Vec::new();
        calls(&g.body, false, &mut fwd_calls);
        let in_forward = fwd_calls.iter().filter(|rev| !**rev).count();
        assert!(fwd_calls.iter().any(|rev| *rev), "{src}: {fwd_calls:?}");
        assert_eq!(in_forward == 0, forward_dead, "{src}: {fwd_calls:?}");
        let plain = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        for (x, w) in [(0.7, -0.4), (0.2, 1.3)] {
            let Value::Tup(pair) = env
                .eval(&plain.func, &args(x, w, 1.0))
                .unwrap_or_else(|e| panic!("{src}: {e}"))
            else {
                panic!("{src}: no pair");
            };
            let Value::Tup(bars) = &pair[1] else {
                panic!("{src}: no cotangents");
            };
            // `grad` differentiates with respect to `x` (argnums 0).
            let q = env
                .eval(&g, &[Value::F(x), Value::F(w)])
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(format!("{:?}", bars[0]), format!("{q:?}"), "{src} at ({x}, {w})");
        }
    }
}

/// Tapes whose size only rustc knows (loops to a named constant) are residuals too, written
/// as the storage rustc picks (`Ty::Tape`): `vjp_bwd` does not run the forward pass again,
/// and the split companions compose to `vjp`. The hidden array starts from a literal
/// (`[0.0; K]`): its type is the one of what is stored into it, exact.
#[test]
fn tapes_sized_by_named_constants_are_residuals() {
    let rules = RuleTable::standard();
    let src = "fn h(x: &[f64; K], y: f64) -> f64 { let mut a = [0.0; K]; let mut s = y; for i in 0..K { a[i] = (x[i] * s).sin(); s += a[i] * a[i]; } s }";
    let g = lower(src);
    let (fwd, bwd) = split_companions(&g, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
    let Ty::Tuple(pair) = &fwd.ret_ty else {
        panic!("{src}: {:?}", fwd.ret_ty);
    };
    let Ty::Tuple(res) = &pair[1] else {
        panic!("{src}: residuals of type {:?}", pair[1]);
    };
    assert!(res.iter().any(|t| matches!(t, Ty::Tape(_))), "{src}: {res:?}");
    assert!(res.iter().all(Ty::is_exact), "{src}: {res:?}");
    let mut bwd_calls = 0;
    walk_stmts(&bwd.body, &mut |s| {
        if let Stmt::Let(_, Expr::Prim(Prim::Sin, _)) = s {
            bwd_calls += 1;
        }
    });
    assert_eq!(bwd_calls, 0, "{src}: vjp_bwd runs the forward pass again");
    let mut env = Env::default();
    env.consts.insert("K".into(), Value::I(3));
    let vjp = companion(&g, &[Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
    let x = Value::Arr(vec![Value::F(0.3), Value::F(-1.1), Value::F(0.8)]);
    for (y, ct) in [(0.4, 1.0), (-0.9, 2.5)] {
        let primals = vec![x.clone(), Value::F(y)];
        let Value::Tup(out) = env.eval(&fwd, &primals).unwrap_or_else(|e| panic!("{src}: {e}")) else {
            panic!("{src}: vjp_fwd returned no pair");
        };
        let mut bargs = primals.clone();
        bargs.push(out[1].clone());
        bargs.push(Value::F(ct));
        let bars = env.eval(&bwd, &bargs).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut vargs = primals.clone();
        vargs.push(Value::F(ct));
        let Value::Tup(full) = env.eval(&vjp, &vargs).unwrap_or_else(|e| panic!("{src}: {e}")) else {
            panic!("{src}: vjp returned no pair");
        };
        assert_eq!(format!("{:?}", out[0]), format!("{:?}", full[0]), "{src}: value");
        assert_eq!(format!("{bars:?}"), format!("{:?}", full[1]), "{src}: vjp_bwd vs vjp");
    }
}

/// The floats a reverse pass of `src` (one array argument) tapes, and its gradient at `x`
/// checked against central differences of the primal.
fn tapes_and_check(src: &str, x: &[f64]) -> i128 {
    let rules = RuleTable::standard();
    let f = lower(src);
    let spec = VjpSpec {
        active: vec![true],
        all_params: false,
        seed: Some(Operand::float(1.0)),
    };
    let out = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
    fn floats(t: &Ty) -> i128 {
        match t {
            Ty::Array(e, CExpr::Lit(n)) => n * floats(e),
            Ty::Tuple(ts) => ts.iter().map(floats).sum(),
            _ => 1,
        }
    }
    let taped: i128 = out
        .func
        .body
        .0
        .iter()
        .filter_map(|s| match s {
            Stmt::Mut(v, Some(Expr::Zeros(t))) if out.func.vars[*v].name.starts_with("tape") => Some(floats(t)),
            _ => None,
        })
        .sum();
    let env = Env::default();
    let arr = |x: &[f64]| Value::Arr(x.iter().map(|v| Value::F(*v)).collect());
    let Value::Tup(r) = env.eval(&out.func, &[arr(x)]).unwrap_or_else(|e| panic!("{e}")) else {
        panic!("no pair")
    };
    let Value::Tup(bars) = &r[1] else {
        panic!("no cotangents")
    };
    let Value::Arr(g) = &bars[0] else {
        panic!("no array cotangent")
    };
    let eval = |x: &[f64]| match env.eval(&f, &[arr(x)]) {
        Ok(Value::F(v)) => v,
        other => panic!("{other:?}"),
    };
    for k in 0..x.len() {
        let h = 1e-6;
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[k] += h;
        b[k] -= h;
        let fd = (eval(&a) - eval(&b)) / (2.0 * h);
        let Value::F(gk) = g[k] else { panic!("{:?}", g[k]) };
        assert!(
            (gk - fd).abs() <= 1e-6 * fd.abs().max(1.0),
            "{src}: d/dx{k}: {gk} vs {fd}"
        );
    }
    taped
}

/// A mutable accumulator assigned in the body of an outer loop and read inside an inner
/// loop is the same for every inner iteration: its snapshot is taped once per outer
/// iteration (`[f64; 4]`), not per step (`[[f64; 8]; 4]`), and the gradient is unchanged.
#[test]
fn a_mutable_read_is_taped_per_iteration_of_the_loops_that_change_it() {
    let src = "fn f(x: [f64; 8]) -> f64 { let mut s = 1.0; let mut acc = 0.0; \
               for i in 0..4 { for j in 0..8 { acc += (s * x[j]).sin(); } s = s * 0.5 + x[i] * acc.tanh(); } acc + s }";
    let x: Vec<f64> = (0..8).map(|k| 0.1 + 0.13 * k as f64).collect();
    let taped = tapes_and_check(src, &x);
    // `s` once per `i` (4), the argument of `sin` per step (32), `acc` and `x[i]` per `i`.
    assert!(taped <= 4 + 32 + 4 + 4 + 4, "{taped} floats taped");
}

/// A value that depends on the inner loop's index only (`h[j]`, `h` a mutable array set
/// by an earlier loop) is taped once per inner index (`[f64; 8]`), not per `(i, j)`.
#[test]
fn a_value_of_the_inner_index_only_is_taped_per_inner_index() {
    let src = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; for k in 0..8 { h[k] = x[k].sin(); } \
               let mut s = 0.0; for i in 0..4 { for j in 0..8 { s += (h[j] * x[i]).tanh(); } } s }";
    let x: Vec<f64> = (0..8).map(|k| 0.2 - 0.07 * k as f64).collect();
    let taped = tapes_and_check(src, &x);
    // `x[k]` per `k` (8), `h[j]` per `j` (8), `x[i]` per `i` (4), the product per step (32).
    assert!(taped <= 8 + 8 + 4 + 32, "{taped} floats taped");
}

/// The simplifier reads a field of a tuple it built from the field's operand: the
/// second-order companions take apart the pairs of the first-order ones without
/// `let p = (a, b); let u = p.0;` left in the code. (Their values are checked against
/// finite differences by the rule checks, `tests/rules.rs`.)
#[test]
fn fields_of_built_tuples_are_read_directly() {
    let rules = RuleTable::standard();
    let g = lower("fn g(x: f64, w: f64) -> f64 { (x * w).tanh() * x }");
    for modes in [[Mode::Jvp, Mode::Vjp], [Mode::Vjp, Mode::Jvp], [Mode::Vjp, Mode::Vjp]] {
        let c = companion(&g, &modes, &rules).unwrap_or_else(|e| panic!("{e}"));
        let mut tuples = Vec::new();
        walk_stmts(&c.body, &mut |s| {
            if let Stmt::Let(t, Expr::Tuple(_)) = s {
                tuples.push(*t);
            }
        });
        walk_stmts(&c.body, &mut |s| {
            if let Stmt::Let(_, Expr::Field(Operand::Var(t), _)) = s {
                assert!(!tuples.contains(t), "{modes:?}: a field of a built tuple is read");
            }
        });
    }
}

/// Reverse over reverse through a sum: the adjoint of `x.iter().sum()` is a broadcast of
/// `s̄`, which depends on `x` (`s̄ = 2 s`), so the second pass differentiates through it:
/// `H v = 2 (Σ v) 1` for `(Σ x)²`.
#[test]
fn reverse_over_reverse_differentiates_through_a_broadcast() {
    let rules = RuleTable::standard();
    let f = lower("fn f(x: [f64; 3]) -> f64 { let s = x.iter().sum::<f64>(); s * s }");
    let vv = companion(&f, &[Mode::Vjp, Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{e}"));
    let arr = |x: &[f64]| Value::Arr(x.iter().map(|v| Value::F(*v)).collect());
    let v = [1.0, 2.0, 3.0];
    let ct2 = Value::Tup(vec![Value::F(0.0), Value::Tup(vec![arr(&v)])]);
    let out = Env::default()
        .eval(&vv, &[arr(&[0.5, -0.25, 2.0]), Value::F(1.0), ct2])
        .unwrap_or_else(|e| panic!("{e}"));
    let Value::Tup(pair) = out else { panic!("{out:?}") };
    // `(x̄̄, c̄t)`: `H v`, and `x̄ · v` with `x̄ = 2 (Σ x) 1 = 4.5`.
    let hv = 2.0 * v.iter().sum::<f64>();
    let want = Value::Tup(vec![arr(&[hv; 3]), Value::F(4.5 * 6.0)]);
    assert_eq!(format!("{:?}", pair[1]), format!("{want:?}"));
}

/// A cast of a float to a float carries its derivative (`x as f32`, `y as f64`), in both
/// modes: `d/dx sin(x as f32 as f64) = cos x` (up to the `f32` rounding of `x`).
#[test]
fn a_cast_between_floats_carries_the_derivative() {
    let rules = RuleTable::standard();
    let f = lower("fn f(x: f64) -> f64 { let y = x as f32; (y as f64).sin() }");
    let x = 0.75;
    let want = (x as f32 as f64).cos();
    let vjp = companion(&f, &[Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{e}"));
    let out = Env::default()
        .eval(&vjp, &[Value::F(x), Value::F(1.0)])
        .unwrap_or_else(|e| panic!("{e}"));
    let Value::Tup(pair) = &out else { panic!("{out:?}") };
    let Value::Tup(bars) = &pair[1] else { panic!("{out:?}") };
    let Value::F(xbar) = bars[0] else { panic!("{out:?}") };
    // (`x̄` rounded to `f32` on its way back through `y`.)
    assert!((xbar - want).abs() < 1e-6, "reverse: {xbar} vs {want}");
    let jvp = companion(&f, &[Mode::Jvp], &rules).unwrap_or_else(|e| panic!("{e}"));
    let out = Env::default()
        .eval(&jvp, &[Value::F(x), Value::F(1.0)])
        .unwrap_or_else(|e| panic!("{e}"));
    let Value::Tup(pair) = &out else { panic!("{out:?}") };
    let Value::F(ydot) = pair[1] else { panic!("{out:?}") };
    assert!((ydot - want).abs() < 1e-6, "forward: {ydot} vs {want}");
}

/// The same inside loops and branches, with the values unchanged.
#[test]
fn fields_of_built_tuples_are_read_directly_in_nested_blocks() {
    let src = "fn f(x: f64, y: f64) -> f64 { let mut s = 0.0; for i in 0..3 { let p = (x * s, y); s = p.0 + p.1; } \
               if x > 0.0 { let q = (s, x); s = q.0 * q.1; } s }";
    let f = lower(src);
    let mut g = f.clone();
    fluxion_engine::simplify::simplify(&mut g);
    let mut tuples = Vec::new();
    walk_stmts(&g.body, &mut |s| {
        if let Stmt::Let(t, Expr::Tuple(_)) = s {
            tuples.push(*t);
        }
    });
    let mut fields = 0;
    walk_stmts(&g.body, &mut |s| {
        if let Stmt::Let(_, Expr::Field(Operand::Var(t), _)) = s {
            fields += usize::from(tuples.contains(t));
        }
    });
    assert_eq!(fields, 0, "a field of a built tuple is read in\n{g:?}");
    let env = Env::default();
    for (x, y) in [(0.7, -0.4), (-0.3, 1.3)] {
        let a = env
            .eval(&f, &[Value::F(x), Value::F(y)])
            .unwrap_or_else(|e| panic!("{e}"));
        let b = env
            .eval(&g, &[Value::F(x), Value::F(y)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// In-place reverse halves: `vjp_bwd_acc` adds each cotangent into the caller's accumulator.
// ---------------------------------------------------------------------------------------

/// Callees with arrays: by reference in a loop, two-dimensional, one calling another with
/// the same arrays (its accumulators passed on to the inner call), an integer array.
const ARRAY_CALLEES: [&str; 4] = [
    "fn m(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { s += (w[i] * x + b[i]).tanh(); } s }",
    "fn q(x: &[f64; 2], w: [[f64; 2]; 2]) -> f64 { let mut s = 0.0; for i in 0..2 { for j in 0..2 { s += w[i][j] * x[j] * x[i]; } } s.sin() }",
    "fn p(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { let mut s = 0.0; for i in 0..2 { s += m(x + i as f64, w, b) * m(w[0], b, w); } s }",
    "fn z(x: &[f64; 2], k: &[usize; 2]) -> f64 { let a = x[k[0]]; let c = x[k[1]]; a * c + x[0] }",
];

/// Callers of them: one call (one contribution per accumulator), calls in a loop and a
/// branch, the same array twice in one call, a local array, an integer array.
const ARRAY_CALLERS: [&str; 6] = [
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { m(x, w, b) }",
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { s += m(x * i as f64, w, b) * x; } s }",
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { m(x, w, w) * m(x, b, w) }",
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { if x > 0.5 { p(x, w, b) } else { m(x, b, w) * x } }",
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { let v = [w[0] * x, b[1], x]; let u = [v[2], w[1]]; m(x, &v, b) + q(&u, [[x, w[2]], [b[0], x]]) }",
    "fn f(x: f64, w: &[f64; 3], b: &[f64; 3]) -> f64 { let u = [w[0], b[2] * x]; z(&u, &[1, 0]) * m(x, w, b) }",
];

fn array_env() -> Env {
    let mut callees: Vec<&str> = CALLEES.to_vec();
    callees.extend(ARRAY_CALLEES);
    env(&callees)
}

fn floats(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    v.flatten(&mut out);
    out
}

/// Sample primals of a function's parameters (floats, arrays of floats, index arrays).
fn primals_of(g: &Func, seed: f64) -> Vec<Value> {
    fn of(t: &Ty, s: &mut f64) -> Value {
        match t {
            Ty::Array(e, n) => Value::Arr(
                (0..n.lit().unwrap_or(0))
                    .map(|i| match **e {
                        Ty::Int(_) => Value::I(1 - i),
                        _ => of(e, s),
                    })
                    .collect(),
            ),
            Ty::Int(_) => Value::I(1),
            _ => {
                *s = (*s * 1.7 + 0.31).sin();
                Value::F(*s)
            }
        }
    }
    let mut s = seed;
    g.params.iter().map(|p| of(&p.ty, &mut s)).collect()
}

/// `vjp_bwd_acc` from zero accumulators gives `vjp_bwd`'s cotangents bit for bit, from
/// other values their sums; it returns nothing, and the arrays' cotangents are added in the
/// loops that compute them (no accumulator of the callee's own).
#[test]
fn in_place_reverse_halves_give_the_bits_of_the_by_value_ones() {
    let rules = RuleTable::standard();
    let env = array_env();
    for src in CALLEES.iter().chain(&ARRAY_CALLEES) {
        let g = lower(src);
        let fwd = companion(&g, &[Mode::VjpFwd], &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
        let bwd = companion(&g, &[Mode::VjpBwd], &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
        let acc = companion(&g, &[Mode::VjpBwdAcc], &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
        let n = g.params.len();
        assert_eq!(acc.params.len(), bwd.params.len() + n, "{src}");
        assert_eq!(acc.ret_ty, Ty::Unit, "{src}");
        // Array cotangents are added element by element where they are computed, into the
        // `&mut` parameters (not summed in an array of the callee's own and added at the end).
        let mut in_place = 0;
        walk_stmts(&acc.body, &mut |s| {
            if let Stmt::Assign(p, AssignOp::Add, _) = s {
                in_place += usize::from(acc.vars[p.var].storage == Storage::MutParam && !p.idx.is_empty());
            }
        });
        let arrays = g.params.iter().any(|p| matches!(p.ty, Ty::Array(..)));
        assert_eq!(in_place > 0, arrays, "{src}: additions in place\n{acc:?}");
        for seed in [0.3, -1.2, 2.1] {
            let primals = primals_of(&g, seed);
            let Value::Tup(out) = env.eval(&fwd, &primals).unwrap_or_else(|e| panic!("{src}: {e}")) else {
                panic!("{src}: vjp_fwd returned no pair");
            };
            let ct = Value::F(seed * 0.7 - 0.2);
            let mut bargs = primals.clone();
            bargs.extend([out[1].clone(), ct.clone()]);
            let Value::Tup(bars) = env.eval(&bwd, &bargs).unwrap_or_else(|e| panic!("{src}: {e}")) else {
                panic!("{src}: vjp_bwd returned no tuple");
            };
            // From zero accumulators: the same bits.
            let mut aargs = bargs.clone();
            aargs.extend(primals.iter().map(Value::zero_tangent));
            let (r, after) = env.eval_in_place(&acc, &aargs).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(r, Value::Unit, "{src}");
            for k in 0..n {
                let (got, want) = (floats(&after[bargs.len() + k]), floats(&bars[k]));
                assert_eq!(
                    format!("{got:?}"),
                    format!("{want:?}"),
                    "{src}: cotangent {k} at {seed}"
                );
            }
            // From other values: their sums.
            let starts: Vec<Value> = primals
                .iter()
                .map(|p| {
                    let mut it = (0..).map(|i| 0.25 * f64::from(i) - 1.5);
                    p.zero_tangent().unflatten(&mut it)
                })
                .collect();
            let mut aargs = bargs.clone();
            aargs.extend(starts.iter().cloned());
            let (_, after) = env.eval_in_place(&acc, &aargs).unwrap_or_else(|e| panic!("{src}: {e}"));
            for k in 0..n {
                let got = floats(&after[bargs.len() + k]);
                let want: Vec<f64> = floats(&starts[k])
                    .iter()
                    .zip(floats(&bars[k]))
                    .map(|(a, b)| a + b)
                    .collect();
                assert_eq!(got.len(), want.len(), "{src}");
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-13 * (1.0 + b.abs()), "{src}: {got:?} vs {want:?}");
                }
            }
        }
    }
}

/// A final pass whose calls take arrays calls `vjp_bwd_acc` with its own accumulators, and
/// gives the unsplit pass's values: bit for bit where each accumulator gets one call's
/// cotangent, up to rounding where calls add into it one after another (the unsplit pass
/// adds each call's sum).
#[test]
fn final_passes_add_array_cotangents_in_place() {
    let rules = RuleTable::standard();
    let env = array_env();
    let spec = VjpSpec {
        active: vec![true, true, true],
        all_params: false,
        seed: None,
    };
    for (c, src) in ARRAY_CALLERS.iter().enumerate() {
        let f = lower(src);
        let plain = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let split = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let mut g = split.func.clone();
        fluxion_engine::simplify::simplify(&mut g);
        let mut modes = Vec::new();
        walk_stmts(&g.body, &mut |s| {
            if let Stmt::Let(_, Expr::Call(c)) = s {
                modes.push((c.modes.clone(), c.args.iter().filter(|a| a.by_mut).count()));
            }
        });
        assert!(
            modes.iter().any(|(m, k)| *m == [Mode::VjpBwdAcc] && *k > 0),
            "{src}: {modes:?}"
        );
        assert!(!modes.iter().any(|(m, _)| *m == [Mode::VjpBwd]), "{src}: {modes:?}");
        for seed in [0.4, -0.8, 1.9] {
            let mut a = primals_of(&f, seed);
            a.push(Value::F(1.0 - seed));
            let p = env.eval(&plain.func, &a).unwrap_or_else(|e| panic!("{src}: {e}"));
            for q in [&split.func, &g] {
                let q = env.eval(q, &a).unwrap_or_else(|e| panic!("{src}: {e}"));
                if c == 0 {
                    assert_eq!(format!("{p:?}"), format!("{q:?}"), "{src} at {seed}");
                }
                let (p, q) = (floats(&p), floats(&q));
                assert_eq!(p.len(), q.len(), "{src}");
                for (x, y) in p.iter().zip(&q) {
                    assert!(
                        (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                        "{src} at {seed}: {p:?} vs {q:?}"
                    );
                }
            }
        }
    }
}

/// An array no later statement writes is frozen: the reverse sweep reads it again (`h[i]`
/// in the second loop is not taped), and where a later statement overwrites it, it is
/// taped (reading it again would give the new values: the differences would disagree).
#[test]
fn frozen_arrays_are_read_again_and_overwritten_ones_taped() {
    let x: Vec<f64> = (0..8).map(|k| 0.3 - 0.11 * k as f64).collect();
    let frozen = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; for k in 0..8 { h[k] = x[k].sin(); } \
                  let mut s = 0.5; for i in 0..8 { s = (h[i] * s).tanh() + s; } s }";
    let over = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; for k in 0..8 { h[k] = x[k].sin(); } \
                let mut s = 0.5; for i in 0..8 { s = (h[i] * s).tanh() + s; } \
                for k in 0..8 { h[k] = h[k] * s; } s + h[3] }";
    let (a, b) = (tapes_and_check(frozen, &x), tapes_and_check(over, &x));
    // Frozen: `s` and the product per `i` (8 + 8; `h[i]` read again); overwritten: `h[i]`
    // too, and the last loop's reads.
    assert!(a <= 8 + 8 + 8, "{a} floats taped");
    assert!(b > a, "{b} floats taped with `h` overwritten, {a} frozen");
}

/// A value stored as it is into an array written nowhere else, one slot per iteration of
/// the loops it depends on, is read again from the array; a value that depends on a loop
/// its slot does not cover (overwritten by later iterations), or stored into an array
/// written twice, is taped.
#[test]
fn values_stored_once_per_iteration_are_read_again() {
    let x: Vec<f64> = (0..8).map(|k| 0.2 + 0.09 * k as f64).collect();
    let once = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; let mut s = 0.1; \
                for k in 0..8 { let t = (x[k] * s).sin(); h[k] = t; s += t * t; } s + h[2] }";
    let uncovered = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; let mut s = 0.1; \
                     for i in 0..2 { for j in 0..8 { let t = (x[j] * s).sin(); h[j] = t; s += t * t; } } s + h[2] }";
    let twice = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; let mut s = 0.1; \
                 for k in 0..8 { let t = (x[k] * s).sin(); h[k] = t; s += t * t; } h[2] = s; s + h[2] }";
    let (a, b, c) = (
        tapes_and_check(once, &x),
        tapes_and_check(uncovered, &x),
        tapes_and_check(twice, &x),
    );
    // `s` per `k` (8; the product `x[k] * s` is recomputed from it, `t` read again from
    // `h`); `t` taped per step or per `k` where the store does not qualify.
    assert!(a <= 8, "{a} floats taped");
    assert!(
        b >= 2 * 16,
        "{b} floats taped with a slot per `j` of a value of `(i, j)`"
    );
    assert!(c > a, "{c} floats taped with `h` written twice, {a} once");
}

/// Short chains of float arithmetic on values the reverse sweep has anyway are recomputed
/// there, up to three operations deep (`CHEAP_DEPTH`); a longer chain is taped where it
/// ends. Here `c = ((h[i] * h[i]) * h[i] + 1)^2` is four deep: taped, with the snapshot of
/// `s` (8 + 8 floats); the product `s * c` beside them is recomputed. With
/// `b = h[i] * h[i] + 1`, `s * b` is three deep: recomputed, only `s` taped. The gradient is
/// checked against differences either way.
#[test]
fn cheap_chains_are_recomputed_up_to_three_deep() {
    let x: Vec<f64> = (0..8).map(|k| 0.15 + 0.07 * k as f64).collect();
    let src = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; for k in 0..8 { h[k] = x[k].sin(); } \
               let mut s = 0.5; for i in 0..8 { let a = h[i] * h[i]; let b = a * h[i] + 1.0; \
               let c = b * b; s = (s * c).sin() + s; } s }";
    let shallow = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; for k in 0..8 { h[k] = x[k].sin(); } \
                   let mut s = 0.5; for i in 0..8 { let a = h[i] * h[i]; let b = a + 1.0; \
                   s = (s * b).sin() + s; } s }";
    assert_eq!(tapes_and_check(src, &x), 16, "{src}");
    // `s * b` three deep: recomputed, only `s` taped.
    assert_eq!(tapes_and_check(shallow, &x), 8, "{shallow}");
}

/// A reverse sweep's snapshot of an adjoint accumulator (`let c = s_bar;`) that an inner
/// loop reads and does not write is taken once, before that loop, not once per inner
/// iteration; the gradient is unchanged (checked against differences). Differentiated
/// again, the snapshot is then kept once per outer iteration.
#[test]
fn snapshots_read_by_an_inner_loop_are_taken_before_it() {
    let src = "fn f(x: [f64; 4]) -> f64 { let mut h = [0.0; 4]; for i in 0..4 { let mut s = x[i]; \
               for j in 0..4 { s += 0.3 * x[j] * x[i]; } h[i] = s.tanh(); } h[0] * h[1] + h[2] * h[3] }";
    let x = [0.3, -0.4, 0.8, 0.1];
    tapes_and_check(src, &x);
    let rules = RuleTable::standard();
    let f = lower(src);
    let g = companion(&f, &[Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{e}"));
    fn inner_snapshots(b: &Block, f: &Func, depth: usize, out: &mut usize) {
        for s in &b.0 {
            match s {
                Stmt::Let(_, Expr::Use(Operand::Var(m))) if depth >= 2 && f.vars[*m].mutable => *out += 1,
                Stmt::For(l) => inner_snapshots(&l.body, f, depth + 1, out),
                Stmt::If(_, t, e) => {
                    inner_snapshots(t, f, depth, out);
                    inner_snapshots(e, f, depth, out);
                }
                _ => {}
            }
        }
    }
    let mut n = 0;
    inner_snapshots(&g.body, &g, 0, &mut n);
    assert_eq!(n, 0, "snapshots inside the inner loops of\n{g:#?}");
}

/// The slot of a stored value may be indexed by a cast of the loop's index (`h[k as
/// usize]`, `k` an `i32`): still one slot per iteration, read again from the array rather
/// than taped (`close_block`'s `loop_of` sees through the cast). The cast is defined after
/// the value, beside the store: the read of the array comes after it in the reverse block
/// (in the block's order it would read the index before it is set).
#[test]
fn values_stored_at_a_cast_loop_index_are_read_again() {
    let x: Vec<f64> = (0..8).map(|k| 0.2 + 0.09 * k as f64).collect();
    let cast = "fn f(x: [f64; 8]) -> f64 { let mut h = [0.0; 8]; let mut s = 0.1; \
                for k in 0..8i32 { let t = (x[k as usize] * s).sin(); h[k as usize] = t; s += t * t; } s + h[2] }";
    let taped = tapes_and_check(cast, &x);
    // `s` and the product per `k` (16; `t` read again from `h`).
    assert!(taped <= 16, "{taped} floats taped");
}
