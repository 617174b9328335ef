//! vmap's batching rule, interpreted: the kernel of a function over lanes gives, in each
//! lane, bit for bit what the function gives for that lane's sample, for every construct of
//! the language (loops, `if` on batched and on shared conditions, mutable arrays written
//! under a batched condition, shared arguments, literals, tuples) and for generated
//! functions (`vmap` of `grad`, `jacfwd`, `hessian`).
//!
//! The interpreter holds a chunk of samples as `Value::L` (one value per lane) and applies
//! every operation lane by lane: the per-sample function and the kernel run the same `f64`
//! operations, so the comparison is exact (NaN matching NaN).

mod common;

use common::*;
use fluxion_engine::attr::Options;
use fluxion_engine::batch::{batch, BatchSpec};
use fluxion_engine::ir::Ty;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad, hessian, jacfwd, Site};
use proc_macro2::Span;

/// Functions of one batched `x: f64`, `y: [f64; 3]` and a shared `w: f64`.
const CORPUS: &[&str] = &[
    // Lane accumulators that start from a value other than zero (their first addition is
    // no store).
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut s = 1.5; s += x * w; let mut t = [0.5; 3]; for i in 0..3 { t[i] += y[i] * x; } s + t[0] * t[2] }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { x * w + y[0] * y[1] - y[2] / (w + 2.0) }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { (x * 0.5).sin() * w.exp() + y[1].tanh() * 3.0 }",
    // `if` on a batched condition, with a side that is NaN or infinite for some lanes.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { if x > 0.0 { x.sqrt() * w } else { -x + y[0] } }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { if x >= 0.5 { x.ln() } else if x < -1.0 { 1.0 / (x + 3.0) } else { w / x } }",
    // `if` on a shared condition stays a branch.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { if w > 1.0 { x * y[2] } else { x - y[2] } }",
    // Mutable variables and arrays written under batched conditions, in loops.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { if y[i] > x { s += y[i] * w; } else { s -= x; } } s }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut v = y; for i in 0..3 { if v[i] < 0.0 { v[i] = -v[i] * x; } } v[0] + v[1] * v[2] + w }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut a = [w, w, w]; if x > 0.0 { a = y; } a[0] * 2.0 + a[2] }",
    // Nested batched conditions, a batched condition inside a shared one.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut r = w; if x > 0.0 { if y[0] > 0.0 { r = x * y[0]; } else { r = x; } } else { if w > 0.0 { r = y[1]; } } r }",
    // A mutable declared inside a batched branch, boolean operators on masks.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut r = 0.0; if x > 0.0 && y[0] < 1.0 || !(y[1] > 0.0) { let mut t = x; t *= 2.0; r = t + w; } r }",
    // Shared values only (the result is splatted), integer loops, sums.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..4 { s += w * (i as f64); } s }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let z = [x, w, y[1]]; z.iter().sum::<f64>() * x.powi(3) + x.max(w) - y[2].min(x) }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { x.atan2(w) + w.hypot(y[0]) + x.mul_add(w, y[2]) + x.abs() + x.signum() }",
    // A cast of a batched value to the float type (the lanes' own).
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { (x * w) as f64 + y[1] as f64 }",
];

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

/// One chunk: the lanes of `x` and `y` for samples `start..start + lanes` (wrapping).
fn chunk(start: usize, lanes: usize) -> (Vec<f64>, Vec<[f64; 3]>) {
    let s = |k: usize| SAMPLES[k % SAMPLES.len()];
    let xs = (0..lanes).map(|l| s(start + l)).collect();
    let ys = (0..lanes)
        .map(|l| [s(start + l + 1), -s(start + 2 * l + 3), s(start + l + 5) * 0.5])
        .collect();
    (xs, ys)
}

fn lanes_of(xs: &[f64]) -> Value {
    Value::L(xs.iter().map(|&x| Value::F(x)).collect())
}

fn arr(xs: &[f64]) -> Value {
    Value::Arr(xs.iter().map(|&x| Value::F(x)).collect())
}

/// The kernel of `f` (batched `x`, `y`; shared `w`) against `f` per sample, lane by lane,
/// for every lane count the targets use and the shared values `w`.
fn check(f: &Func, what: &str) {
    let spec = BatchSpec {
        batched: vec![true, true, false],
    };
    let k = batch(f, &spec).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert!(matches!(k.params[0].ty, Ty::Lanes(_)), "{what}: {:?}", k.params[0].ty);
    assert!(
        matches!(k.params[2].ty, Ty::Float(_)),
        "{what}: the shared `w` stays a scalar"
    );
    for lanes in [1, 4, 8] {
        let env = Env {
            lanes,
            ..Env::default()
        };
        for start in 0..SAMPLES.len() {
            for w in [1.5, -0.5, 0.0] {
                let (xs, ys) = chunk(start, lanes);
                let ylanes: Vec<Value> = (0..3)
                    .map(|j| lanes_of(&ys.iter().map(|y| y[j]).collect::<Vec<_>>()))
                    .collect();
                let got = env
                    .eval(&k, &[lanes_of(&xs), Value::Arr(ylanes), Value::F(w)])
                    .unwrap_or_else(|e| panic!("{what}: kernel: {e}"));
                for l in 0..lanes {
                    let want = env
                        .eval(f, &[Value::F(xs[l]), arr(&ys[l]), Value::F(w)])
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(
                        bits(&lane(&got, l)),
                        bits(&want),
                        "{what}: lane {l} of {lanes} (x = {}, y = {:?}, w = {w})",
                        xs[l],
                        ys[l]
                    );
                }
            }
        }
    }
}

#[test]
fn kernels_give_each_lane_its_samples_value() {
    for src in CORPUS {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        check(&f, src);
    }
}

/// `vmap(grad(f))`, `vmap(jacfwd(f))`, `vmap(hessian(f))`: the generated functions (loops,
/// tapes, selects of the reverse sweep) batch like any other.
#[test]
fn kernels_of_generated_functions() {
    let rules = RuleTable::standard();
    for src in CORPUS {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let o = |t| Options::new(t, Span::call_site());
        let g = grad(&f, &o(Transform::Grad), &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check(&g, &format!("grad of {src}"));
        let j = jacfwd(&f, &o(Transform::Jacfwd), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check(&j, &format!("jacfwd of {src}"));
        let h = hessian(&f, &o(Transform::Hessian), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check(&h, &format!("hessian of {src}"));
    }
}

/// What cannot be batched is an error naming the reason, never a wrong kernel.
#[test]
fn unbatchable_programs_are_errors() {
    for (src, needle) in [
        (
            "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let n = x as usize; y[n] }",
            "integer",
        ),
        (
            "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let n = x as i32; w.powi(n) }",
            "integer",
        ),
    ] {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let spec = BatchSpec {
            batched: vec![true, true, false],
        };
        match batch(&f, &spec) {
            Ok(k) => panic!("{src}: batched into {k:?}"),
            Err(e) => assert!(e.msg.contains(needle), "{src}: {}", e.msg),
        }
    }
}

/// `jacrev` of a vector output as emitted: the reverse sweeps batched over chunks of basis
/// cotangents (lanes) after one shared forward sweep give bit for bit the Jacobian of one
/// sweep per row, for output sizes below, at and above the lane count (the last chunk's
/// padding lanes repeat the last row).
#[test]
fn batched_jacrev_gives_the_rows_of_one_sweep_each() {
    use fluxion_engine::transforms::jacrev_pass;
    let rules = RuleTable::standard();
    let env = Env {
        lanes: 4,
        ..Env::default()
    };
    for m in [1, 3, 4, 5, 9] {
        for body in [
            // (A statement after the loop: not the separable shape of `sparse.rs`.)
            "let mut y = [0.0; M]; for i in 0..M { y[i] = x[i % 3].sin() * x[(i + 1) % 3] + (i as f64) * x[2] * x[2]; } y[0] = y[0] * x[1]; y",
            "let mut y = [0.0; M]; let mut s = x[0]; for i in 0..M { if s > 0.5 { s = s * x[1] - 0.25; } else { s = s.exp() + x[2]; } y[i] = s * s; } y",
        ] {
            let src = format!("fn f(x: [f64; 3]) -> [f64; {m}] {{ {} }}", body.replace('M', &m.to_string()));
            let f = lower(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let o = Options::new(Transform::Jacrev, Span::call_site());
            let batched = jacrev_pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            let plain = jacrev_pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert!(batched.vars.iter().any(|v| v.ty.has_lanes()), "{src}: not batched");
            assert!(!plain.vars.iter().any(|v| v.ty.has_lanes()), "{src}");
            for x in [[0.7, -1.3, 0.4], [1.9, 0.6, -0.8], [-0.45, 1.1, 1.7]] {
                let a = env.eval(&batched, &[arr(&x)]).unwrap_or_else(|e| panic!("{src}: {e}"));
                let b = env.eval(&plain, &[arr(&x)]).unwrap_or_else(|e| panic!("{src}: {e}"));
                assert_eq!(bits(&a), bits(&b), "{src} at {x:?}");
            }
        }
    }
}

/// A sample value for parameter `p` of type `t` in lane `l` of chunk `start`: the
/// corpus' samples, shifted per parameter.
fn sample(t: &Ty, p: usize, l: usize, start: usize) -> Value {
    let s = |k: usize| SAMPLES[k % SAMPLES.len()];
    match t {
        Ty::Array(e, n) => {
            let n = n.lit().unwrap_or(0) as usize;
            Value::Arr((0..n).map(|j| sample(e, p * 7 + j + 1, l, start)).collect())
        }
        _ => Value::F(s(start + l * (p + 1) + 3 * p) * if p.is_multiple_of(2) { 1.0 } else { -0.5 }),
    }
}

/// The kernel of `f` with every parameter batched but the last float one (shared), lane
/// by lane against `f` per sample, for any signature of floats and float arrays.
fn check_any(f: &Func, what: &str) {
    let n = f.params.len();
    let mut batched = vec![true; n];
    if let Some(k) = (0..n).rev().find(|&k| matches!(f.params[k].ty, Ty::Float(_))) {
        if k > 0 {
            batched[k] = false;
        }
    }
    let k = batch(
        f,
        &BatchSpec {
            batched: batched.clone(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    for lanes in [1, 4, 8] {
        let env = Env {
            lanes,
            ..Env::default()
        };
        for start in 0..SAMPLES.len() {
            let per_lane: Vec<Vec<Value>> = (0..lanes)
                .map(|l| {
                    f.params
                        .iter()
                        .enumerate()
                        .map(|(p, par)| sample(&par.ty, p, if batched[p] { l } else { 0 }, start))
                        .collect()
                })
                .collect();
            let args: Vec<Value> = (0..n)
                .map(|p| {
                    if batched[p] {
                        pack(&per_lane.iter().map(|a| a[p].clone()).collect::<Vec<_>>())
                    } else {
                        per_lane[0][p].clone()
                    }
                })
                .collect();
            let got = env.eval(&k, &args).unwrap_or_else(|e| panic!("{what}: kernel: {e}"));
            for (l, a) in per_lane.iter().enumerate() {
                let want = env.eval(f, a).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    bits(&lane(&got, l)),
                    bits(&want),
                    "{what}: lane {l} of {lanes}, start {start}"
                );
            }
        }
    }
}

/// Every composition with a plain function signature: `vmap` of `grad_and_value` (a tuple
/// result), of the user-facing `jvp` (tangent arguments) and of the cotangent form of `vjp`.
#[test]
fn kernels_of_every_composition() {
    use fluxion_engine::transforms::{jvp_user, vjp_user};
    let rules = RuleTable::standard();
    for src in CORPUS {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let o = |t| Options::new(t, Span::call_site());
        let gv =
            grad(&f, &o(Transform::GradAndValue), &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check_any(&gv, &format!("grad_and_value of {src}"));
        let j = jvp_user(&f, &o(Transform::Jvp), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check_any(&j, &format!("jvp of {src}"));
        let (v, _) = vjp_user(&f, &o(Transform::Vjp), &site(), &rules, "f_vjp".into(), false)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check_any(&v, &format!("vjp of {src}"));
    }
}

/// Whether `stmts` hold an operation of cost 4 or more (divisions, roots, transcendentals)
/// on shared floats (not lanes, not indices).
fn costly(f: &Func, stmts: &[fluxion_engine::ir::Stmt]) -> bool {
    use fluxion_engine::ir::{Expr, Stmt};
    stmts.iter().any(|s| match s {
        Stmt::Let(v, Expr::Prim(p, _)) => p.cost() >= 4 && f.vars[*v].ty.is_float(),
        Stmt::For(l) => costly(f, &l.body.0),
        Stmt::If(_, t, e) => costly(f, &t.0) || costly(f, &e.0),
        _ => false,
    })
}

/// The loop over chunks of basis directions: the loop whose body makes unit lanes.
fn chunk_loop(stmts: &[fluxion_engine::ir::Stmt]) -> Option<&fluxion_engine::ir::Loop> {
    use fluxion_engine::ir::{Expr, Stmt};
    fn units(stmts: &[Stmt]) -> bool {
        stmts.iter().any(|s| match s {
            Stmt::Let(_, Expr::UnitLane(_)) => true,
            Stmt::For(l) => units(&l.body.0),
            _ => false,
        })
    }
    stmts.iter().find_map(|s| match s {
        Stmt::For(l) if units(&l.body.0) => Some(l),
        _ => None,
    })
}

/// Jacobians built by batching compute what does not depend on the direction once: the
/// chunk loop of `jacrev`, `jacfwd` and `hessian` holds no costly operation on shared values
/// (the partials `cos`, `exp`, the shared divisions are read from tapes filled before it;
/// a division of lanes stays), and the result is bit
/// for bit the sweeps', with branches in the loop too.
#[test]
fn batched_jacobians_compute_shared_values_once() {
    use fluxion_engine::transforms::{hessian_pass, jacfwd_pass, jacrev_pass};
    let rules = RuleTable::standard();
    let env = Env {
        lanes: 4,
        ..Env::default()
    };
    let chain = "fn f(x: [f64; 9]) -> [f64; 9] { let mut y = [0.0; 9]; let mut s = 0.0; for i in 0..9 { s = s * 0.5 + x[i].sin() * x[(i + 1) % 9].exp() / (1.0 + x[i] * x[i]); y[i] = s; } y }";
    let scalar = "fn f(x: [f64; 9]) -> f64 { let mut s = 1.0; for i in 0..9 { s = s * x[i].cos() + (x[(i + 2) % 9] / (2.0 + x[i])).sqrt(); } s }";
    let branch = "fn f(x: [f64; 9]) -> [f64; 9] { let mut y = [0.0; 9]; let mut s = 0.0; for i in 0..9 { if x[i] > 0.0 { s = s + x[i].ln(); } else { s = s * x[i].exp(); } y[i] = s; } y }";
    // A shared value assigned in a branch (the literal `2.0`, `q` computed before it): what
    // reads `s` after the branch is computed in the loop, not from a copy without the branch.
    let assigned = "fn f(x: [f64; 9]) -> [f64; 9] { let mut y = [0.0; 9]; for i in 0..9 { let q = x[(i + 2) % 9] * 3.0; let mut s = x[i]; if x[i] > 0.0 { s = 2.0; } if x[i] < -0.5 { s = q; } y[i] = (s * x[(i + 1) % 9]).sin(); } y }";
    // A mutable declared in a loop of the chunk body (summed in an inner loop): its costly
    // uses are computed once too.
    let inner = "fn f(x: [f64; 9]) -> [f64; 9] { let mut y = [0.0; 9]; for i in 0..9 { let mut s = 0.0; for k in 0..3 { s = s + x[(i + k) % 9] * x[k]; } y[i] = s.exp() / (1.0 + x[i] * x[i]); } y }";
    type Pass = fn(&Func, &Options, &Site, &RuleTable, bool) -> Result<Func, syn::Error>;
    let cases: [(&str, Transform, Pass, bool); 9] = [
        (chain, Transform::Jacrev, jacrev_pass, false),
        (chain, Transform::Jacfwd, jacfwd_pass, false),
        (scalar, Transform::Hessian, hessian_pass, false),
        (branch, Transform::Jacrev, jacrev_pass, true),
        (branch, Transform::Jacfwd, jacfwd_pass, true),
        (assigned, Transform::Jacrev, jacrev_pass, true),
        (assigned, Transform::Jacfwd, jacfwd_pass, true),
        (inner, Transform::Jacrev, jacrev_pass, false),
        (inner, Transform::Jacfwd, jacfwd_pass, false),
    ];
    for (src, t, pass, branchy) in cases {
        let f = lower(src).unwrap();
        let o = Options::new(t, Span::call_site());
        let batched = pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let plain = pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let Some(l) = chunk_loop(&batched.body.0) else {
            panic!("{t:?} of {src}: not batched")
        };
        // (Under a branch a value may stay in the loop: only the results are checked.)
        if !branchy {
            assert!(!costly(&batched, &l.body.0), "{t:?} of {src}");
        }
        assert!(costly(&plain, &plain.body.0), "{t:?} of {src}");
        for x in [
            [0.7, -1.3, 0.4, 1.1, -0.2, 0.9, 2.1, -0.6, 0.3],
            [1.9, 0.6, -0.8, 0.1, 0.5, -1.5, 0.25, 1.2, -0.9],
        ] {
            let a = env.eval(&batched, &[arr(&x)]).unwrap_or_else(|e| panic!("{src}: {e}"));
            let b = env.eval(&plain, &[arr(&x)]).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(bits(&a), bits(&b), "{t:?} of {src} at {x:?}");
        }
    }
}

/// The cotangent accumulators of a batched reverse sweep: where an element's first
/// addition is its only one in the loops that reach it (`w_bar[i][j]` in `for i { for j
/// }`), it stores `0 + v` without reading the zero back; where an element is added to
/// again (`x_bar[j]` once per `i`) it stays an addition. Lane by lane the kernel gives the
/// per-sample gradient bit for bit (signed zeros included: the cotangents below are `-0.0`
/// for samples with `x[j] = 0`).
#[test]
fn first_additions_into_fresh_lane_accumulators_store() {
    use fluxion_engine::ir::{walk_stmts, AssignOp, Expr, Prim, Stmt};
    use fluxion_engine::spec::Argnums;
    let rules = RuleTable::standard();
    let src = "fn f(x: [f64; 3], w: [[f64; 3]; 2], y: f64) -> f64 { let mut s = 0.0; for i in 0..2 { let mut a = 0.0; for j in 0..3 { a += w[i][j] * x[j]; } s += (a * y).tanh() * -0.0; s += a * a; } s }";
    let f = lower(src).unwrap();
    let mut o = Options::new(Transform::Grad, Span::call_site());
    o.argnums = Some(Argnums::Many(vec![(0, Span::call_site()), (1, Span::call_site())]));
    let g = grad(&f, &o, &site(), &rules, true).unwrap();
    check_any(&g, "grad of the product");
    let k = batch(
        &g,
        &BatchSpec {
            batched: vec![true, true, false],
        },
    )
    .unwrap();
    let name = |v: usize| k.vars[v].name.clone();
    let (mut stores, mut adds) = (Vec::new(), Vec::new());
    let mut zero_sums = 0;
    walk_stmts(&k.body, &mut |s| match s {
        Stmt::Assign(p, AssignOp::Set, _) if !p.idx.is_empty() => stores.push(name(p.var)),
        Stmt::Assign(p, AssignOp::Add, _) if !p.idx.is_empty() => adds.push(name(p.var)),
        Stmt::Let(_, Expr::Prim(Prim::Add, ops))
            if ops.iter().any(|o| o.var().is_some_and(|v| k.vars[v].name == "zero")) =>
        {
            zero_sums += 1
        }
        _ => {}
    });
    assert!(stores.iter().any(|n| n.starts_with("w_bar")), "stores {stores:?}");
    assert!(adds.iter().any(|n| n.starts_with("x_bar")), "adds {adds:?}");
    assert!(!adds.iter().any(|n| n.starts_with("w_bar")), "adds {adds:?}");
    assert!(zero_sums >= 1);
}

/// Whether every array length in `t` is one stable Rust accepts in a type: a lone constant
/// or literals (`[f64; N]`, `[f64; 9 - 3]`, not `[f64; N - 1]`).
fn stable_lengths(t: &Ty) -> bool {
    use fluxion_engine::ir::CExpr;
    let lone_or_literal = |n: &CExpr| {
        let mut paths = Vec::new();
        n.paths(&mut paths);
        matches!(n, CExpr::Path(_)) || paths.is_empty()
    };
    match t {
        Ty::Array(e, n) => lone_or_literal(n) && stable_lengths(e),
        Ty::Tuple(ts) => ts.iter().all(stable_lengths),
        Ty::Lanes(e) => stable_lengths(e),
        _ => true,
    }
}

/// Tapes of shared values over loops that do not start at 0: a literal range (`3..9`: the
/// tape has the 6 iterations, indexed from 3) and const generic bounds (`0..N` has a tape of
/// `N`; `1..N` or `0..N - 1` would need `[f64; N - 1]`, which stable Rust rejects: their
/// values stay in the chunk loop). Bit for bit the sweeps' Jacobians.
#[test]
fn shared_values_of_shifted_and_generic_loops() {
    use fluxion_engine::transforms::{jacfwd_pass, jacrev_pass};
    let rules = RuleTable::standard();
    let mut env = Env {
        lanes: 4,
        ..Env::default()
    };
    env.consts.insert("N".into(), Value::I(11));
    let shifted = "fn f(x: [f64; 11]) -> [f64; 11] { let mut y = [0.0; 11]; let mut s = 0.0; for i in 3..9 { s = s * 0.5 + x[i].sin() / (1.0 + x[i - 3] * x[i - 3]); y[i] = s; } y }";
    let generic = "fn f<const N: usize>(x: [f64; N]) -> [f64; N] { let mut y = [0.0; N]; let mut s = 0.0; for i in 0..N { s = s * 0.5 + x[i].sin() * x[(i + 1) % N].exp(); y[i] = s; } y }";
    let from_one = "fn f<const N: usize>(x: [f64; N]) -> [f64; N] { let mut y = [0.0; N]; let mut s = 0.0; for i in 1..N { s = s * 0.5 + x[i].sin() * x[i - 1].exp(); y[i] = s; } y }";
    let short = "fn f<const N: usize>(x: [f64; N]) -> [f64; N] { let mut y = [0.0; N]; let mut s = 0.0; for i in 0..N - 1 { s = s * 0.5 + x[i].sin() * x[i + 1].exp(); y[i] = s; } y }";
    type Pass = fn(&Func, &Options, &Site, &RuleTable, bool) -> Result<Func, syn::Error>;
    for (src, hoisted) in [(shifted, true), (generic, true), (from_one, false), (short, false)] {
        for (t, pass) in [
            (Transform::Jacrev, jacrev_pass as Pass),
            (Transform::Jacfwd, jacfwd_pass as Pass),
        ] {
            let f = lower(src).unwrap();
            let o = Options::new(t, Span::call_site());
            let batched = pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            let plain = pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            for x in [
                [0.7, -1.3, 0.4, 1.1, -0.2, 0.9, 2.1, -0.6, 0.3, 1.4, -0.8],
                [1.9, 0.6, -0.8, 0.1, 0.5, -1.5, 0.25, 1.2, -0.9, -0.35, 0.05],
            ] {
                let a = env
                    .eval(&batched, &[arr(&x)])
                    .unwrap_or_else(|e| panic!("{t:?} of {src}: {e}"));
                let b = env
                    .eval(&plain, &[arr(&x)])
                    .unwrap_or_else(|e| panic!("{t:?} of {src}: {e}"));
                assert_eq!(bits(&a), bits(&b), "{t:?} of {src} at {x:?}");
            }
            for v in &batched.vars {
                assert!(
                    stable_lengths(&v.ty),
                    "{t:?} of {src}: {} has the type {:?}",
                    v.name,
                    v.ty
                );
            }
            let Some(l) = chunk_loop(&batched.body.0) else {
                panic!("{t:?} of {src}: not batched")
            };
            assert_eq!(!costly(&batched, &l.body.0), hoisted, "{t:?} of {src}");
        }
    }
}

/// The value of a compile-time integer with `N = n`.
fn cexpr_value(c: &fluxion_engine::ir::CExpr, n: i128) -> i128 {
    use fluxion_engine::ir::CExpr;
    match c {
        CExpr::Lit(v) => *v,
        CExpr::Path(p) if p == "N" => n,
        CExpr::Bin(op, a, b) => {
            let (a, b) = (cexpr_value(a, n), cexpr_value(b, n));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                '/' => a / b,
                _ => a % b,
            }
        }
        c => panic!("unexpected bound {c:?}"),
    }
}

/// The chunk loop of a batched Jacobian runs `ceil(n / 4)` times for `n` rows (`jacrev`) or
/// columns (`jacfwd`) of `f64`, with a literal size and a const generic one, and no more:
/// the last chunk's padding lanes repeat the last row, another chunk would redo it.
#[test]
fn batched_jacobians_run_one_chunk_per_four_rows() {
    use fluxion_engine::transforms::{jacfwd_pass, jacrev_pass};
    let rules = RuleTable::standard();
    type Pass = fn(&Func, &Options, &Site, &RuleTable, bool) -> Result<Func, syn::Error>;
    let body = "let mut y = [0.0; N]; let mut s = 0.0; for i in 0..N { s = s * 0.5 + x[i].sin() * x[(i + 1) % N]; y[i] = s; } y";
    for (t, pass) in [
        (Transform::Jacrev, jacrev_pass as Pass),
        (Transform::Jacfwd, jacfwd_pass as Pass),
    ] {
        let o = Options::new(t, Span::call_site());
        for n in [9, 12, 13, 16] {
            let src = format!(
                "fn f(x: [f64; {n}]) -> [f64; {n}] {{ {} }}",
                body.replace('N', &n.to_string())
            );
            let generic = format!("fn f<const N: usize>(x: [f64; N]) -> [f64; N] {{ {body} }}");
            for src in [src, generic] {
                let f = lower(&src).unwrap();
                let g = pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
                let Some(l) = chunk_loop(&g.body.0) else {
                    panic!("{t:?} of {src}: not batched")
                };
                let hi = l
                    .static_hi()
                    .unwrap_or_else(|| panic!("{t:?} of {src}: a run-time bound"));
                assert_eq!(cexpr_value(&hi, n), (n + 3) / 4, "{t:?} of {src}, n = {n}: {hi:?}");
            }
        }
    }
}

/// The chunk loop of a batched `jacrev` that writes only the Jacobian is emitted as tasks
/// of the runtime (`jacobian_rows`, with the transform's `chunk_size`, rows indexed from the
/// task's first chunk); `jacfwd`'s columns and a loop that writes elsewhere (the aux output
/// here, through `has_aux`) stay one loop.
#[test]
fn chunks_of_rows_are_emitted_as_tasks() {
    use fluxion_engine::expand::expand_item_text;
    let body = "let mut y = [0.0; 9]; let mut s = 0.0; for i in 0..9 { s = s * 0.5 + x[i].sin() * x[(i + 1) % 9].exp(); y[i] = s; } y";
    // (The expansion on one line: `f_jacrev` and `f_jacrev_into` each.)
    let expand = |attr: &str| {
        let src = format!("{attr} fn f(x: [f64; 9]) -> [f64; 9] {{ {body} }}");
        let text = expand_item_text(&src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let tasks = |text: &str| text.matches("jacobian_rows(").count();
    let plain = expand("#[jacrev]");
    assert_eq!(tasks(&plain), 2, "{plain}");
    assert!(
        plain.contains("jacobian_rows( &mut jac[..], 4, ::core::option::Option::None,"),
        "{plain}"
    );
    assert!(plain.contains("__fluxion_rows[(at_1) - __fluxion_c0 * 4]"), "{plain}");
    assert!(!plain.contains("jac[at"), "{plain}");
    // The loops outside the tasks (the forward sweep) stay loops.
    let jacrev = &plain[plain.find("fn f_jacrev(").unwrap()..plain.find("fn f_jacrev_into(").unwrap()];
    assert!(jacrev.contains("for i in 0..9 {"), "{jacrev}");
    let three = expand("#[jacrev(chunk_size = 3)]");
    assert_eq!(tasks(&three), 2, "{three}");
    assert_eq!(
        three.matches("4, ::core::option::Option::Some(3),").count(),
        2,
        "{three}"
    );
    let columns = expand("#[jacfwd]");
    assert_eq!(tasks(&columns), 0, "{columns}");
}

/// Which places of a kernel's `_into` form start from zeros: a cotangent every element of
/// which is stored (`0 + v`) over whole axes before anything reads it does not; one added
/// to again, stored over part of an axis, or with its indices swapped does.
#[test]
fn into_forms_zero_only_what_is_not_stored_whole() {
    use fluxion_engine::into::into_form;
    use fluxion_engine::ir::{Expr, Stmt, Storage};
    use fluxion_engine::spec::Argnums;
    let rules = RuleTable::standard();
    // (source, argnums, for each gradient in order: whether its place starts from zeros;
    // `None` would be a gradient assigned at the end, not accumulated in place)
    type Case<'a> = (&'a str, Vec<usize>, Vec<Option<bool>>);
    let cases: [Case; 8] = [
        // `w_bar[i][j]` stored once each; `x_bar[j]` added once per `i`.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 2], y: f64) -> f64 { let mut s = 0.0; for i in 0..2 { let mut a = 0.0; for j in 0..3 { a += w[i][j] * x[j]; } s += a * a * y; } s }", vec![0, 1], vec![Some(true), Some(false)]),
        // Only part of the first axis: the last row is never stored.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 3], y: f64) -> f64 { let mut s = 0.0; for i in 0..2 { let mut a = 0.0; for j in 0..3 { a += w[i][j] * x[j]; } s += a * a * y; } s }", vec![1], vec![Some(true)]),
        // The indices swapped: `w_bar[j][i]` in `for i { for j }`, stored whole all the same
        // (`into::stores_cover`: the nest's elements are all of them).
        ("fn f(x: [f64; 3], w: [[f64; 2]; 3], y: f64) -> f64 { let mut s = 0.0; for i in 0..2 { let mut a = 0.0; for j in 0..3 { a += w[j][i] * x[j]; } s += a * a * y; } s }", vec![1], vec![Some(false)]),
        // A loop peeled of its first iteration (as a matrix product is lowered): `w_bar[0][j]`
        // and `w_bar[i][j]` for `i` in `1..3` are two nests of additions to elements the
        // other does not touch (`simplify::first_additions_store` turns both into stores),
        // which together store every element.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 3], y: f64) -> f64 { let mut s = 0.0; for j in 0..3 { s += w[0][j] * x[j]; } for i in 1..3 { for j in 0..3 { s += w[i][j] * x[j] * y; } } s * s }", vec![1], vec![Some(false)]),
        // Overlapping nests: the reverse sweep's first (`w_bar[i][j]` for `i` in `0..3`)
        // stores every element, and the second (`w_bar[0][j]`) adds to it.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 3], y: f64) -> f64 { let mut s = 0.0; for j in 0..3 { s += w[0][j] * x[j]; } for i in 0..3 { for j in 0..3 { s += w[i][j] * x[j] * y; } } s * s }", vec![1], vec![Some(false)]),
        // The second nest overlapping the first and adding into what it stored, which with
        // the first covers everything (rows `1..3`, then `0..2`): row 0 is only added into,
        // so the place is zeroed.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 3], y: f64) -> f64 { let mut s = 0.0; for i in 0..2 { for j in 0..3 { s += w[i][j] * x[j]; } } for i in 1..3 { for j in 0..3 { s += w[i][j] * x[j] * y; } } s * s }", vec![1], vec![Some(true)]),
        // Two nests leaving the middle row out: zeroed.
        ("fn f(x: [f64; 3], w: [[f64; 3]; 3], y: f64) -> f64 { let mut s = 0.0; for j in 0..3 { s += w[0][j] * x[j]; } for i in 2..3 { for j in 0..3 { s += w[i][j] * x[j] * y; } } s * s }", vec![1], vec![Some(true)]),
        // A one-axis cotangent stored once per element.
        ("fn f(x: [f64; 3], w: [f64; 3], y: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += (w[i] * x[i]).sin() * y; } s }", vec![1], vec![Some(false)]),
    ];
    for (src, args, zeroed) in cases {
        let f = lower(src).unwrap();
        let mut o = Options::new(Transform::Grad, Span::call_site());
        o.argnums = Some(match args[..] {
            [k] => Argnums::One(k, Span::call_site()),
            _ => Argnums::Many(args.iter().map(|k| (*k, Span::call_site())).collect()),
        });
        let g = grad(&f, &o, &site(), &rules, false).unwrap();
        check_any(&g, src);
        let k = batch(
            &g,
            &BatchSpec {
                batched: vec![true, true, false],
            },
        )
        .unwrap();
        let h = into_form(&k, "kernel".into());
        let mut got = vec![None; zeroed.len()];
        for s in &h.body.0 {
            if let Stmt::Mut(v, init) = s {
                if let Storage::Out(field) = h.vars[*v].storage {
                    got[field.unwrap_or(0)] = Some(matches!(init, Some(Expr::Zeros(_))));
                }
            }
        }
        assert_eq!(got, zeroed, "{src}");
    }
}

/// The reverse kernel of a batch reads the residuals kept by the forward half through a
/// reference, and binds each tape array of them, only ever indexed, by reference too
/// (`let tape_t = &residuals.0;`, `emit::borrowed`): no copy of a chunk's residuals. No
/// other binding of the kernel is a reference.
#[test]
fn reverse_kernels_bind_residual_arrays_by_reference() {
    use fluxion_engine::expand::expand_item_text;
    let src = "#[vmap(in_dims = (None, 0))] fn model(p: [f64; 3], x: f64) -> f64 { \
               let mut s = x; for i in 0..3 { s = (s * p[i]).tanh(); } s }";
    let text = expand_item_text(src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let at = text
        .find("residuals: &(")
        .unwrap_or_else(|| panic!("no reverse kernel: {text}"));
    let start = text[..at].rfind("fn ").unwrap_or(0);
    let kernel = &text[start..];
    let kernel = &kernel[..kernel[3..].find("\nfn ").map_or(kernel.len(), |e| e + 3)];
    let refs: Vec<&str> = kernel
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("let ") && l.contains("= &"))
        .collect();
    assert_eq!(
        refs,
        ["let tape_t = &residuals.0;", "let tape_t_1 = &residuals.1;"],
        "{kernel}"
    );
}

/// A batch's forward kernel writes its residual tapes into the chunk's slot (`out`), with a
/// literal size and with one named by a constant (a tape whose storage rustc picks): no
/// local tape moved there at the end, no zeroing of a slot that holds zeros already
/// (`residuals_into`).
#[test]
fn forward_kernels_write_residual_tapes_in_place() {
    use fluxion_engine::expand::expand_item_text;
    for (n, decl) in [("3", ""), ("K", "const K: usize = 3;")] {
        let src = format!(
            "{decl} #[vmap(in_dims = (None, 0))] #[grad_and_value(argnums = 1)] \
             fn model(p: &[f64; {n}], x: f64) -> f64 {{ \
             let mut s = x; for i in 0..{n} {{ s = (s * p[i]).tanh(); }} s }}"
        );
        let text = expand_item_text(&src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let at = text
            .find("fn __fluxion_fwd_kernel_")
            .unwrap_or_else(|| panic!("no forward kernel: {text}"));
        let kernel = &text[at..];
        let kernel = &kernel[..kernel[3..].find("\nfn ").map_or(kernel.len(), |e| e + 3)];
        assert!(kernel.contains("out: &mut ("), "{kernel}");
        // The tapes are places in `out`, written element by element.
        assert!(kernel.contains("(*out).0["), "{kernel}");
        for l in kernel.lines().map(str::trim) {
            assert!(!l.starts_with("let mut tape_"), "a local tape: {l}\n{kernel}");
            assert!(!l.contains("fill_zero"), "a slot zeroed again: {l}\n{kernel}");
            assert!(
                !(l.starts_with("(*out).") && l.contains("= tape_")),
                "a tape moved into the slot: {l}\n{kernel}"
            );
        }
        // The chunk loop hands the kernel a slot of zeros.
        assert!(text.contains(".insert("), "{text}");
    }
}

/// A chunk loop whose kernel has lane arithmetic runs through `best_simd`, its arguments
/// in a struct (`__fluxion_chunks_*_simd`) whose every reference carries the struct's
/// lifetime; one without (`(x, x)`: no primitive on lanes) is called directly
/// (`vmap::uses_lane_kernels`, `vmap::simd_call`), and the reverse half of a batch goes
/// through it when either of its kernels has lane arithmetic.
#[test]
fn only_kernels_with_lane_arithmetic_run_through_best_simd() {
    use fluxion_engine::expand::expand_item_text;
    let text = |src: &str| expand_item_text(src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let arith = text("#[vmap] fn f(x: f64) -> f64 { x.sin() * 2.0 }");
    let plain = text("#[vmap] fn g(x: f64) -> (f64, f64) { (x, x) }");
    assert!(
        arith.contains("struct __fluxion_chunks_f_vmap_simd<'__fluxion_a>"),
        "{arith}"
    );
    assert!(!plain.contains("__fluxion_chunks_g_vmap_simd"), "{plain}");
    // Its reverse half adds into the cotangent of `x`, lane arithmetic: through `best_simd`.
    assert!(
        plain.contains("struct __fluxion_bwd_chunks_g_vmap_simd<'__fluxion_a>"),
        "{plain}"
    );
    // The fields of every such struct: each reference with the struct's lifetime.
    let mut fields = 0;
    for item in arith.split("struct __fluxion_").skip(1) {
        let body = &item[..item.find('}').unwrap_or(item.len())];
        for l in body
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('a') && l.contains('&'))
        {
            fields += 1;
            assert!(l.contains(": &'__fluxion_a "), "{l}");
        }
    }
    assert!(fields >= 6, "{fields} fields: {arith}");
}

/// The companions of a batched function beyond its first-order ones: a user function's
/// batch gets its four second-order companions (sample by sample over the per-sample
/// function's: `<model>::vjp_jvp(..)` in a loop over `__i`) and its lanes and `jvp_lanes`
/// companions (over the per-sample lanes companions, each sample spread into every lane);
/// its reverse lanes companions stay stubs. A batched derivative (`vmap` of `model_grad`)
/// and a batch with a shared slice keep the second-order stubs, the derivative also the
/// lanes ones, each naming what is missing.
#[test]
fn second_order_and_lanes_companions_of_a_batch() {
    use fluxion_engine::expand::expand_item_text;
    // Without whitespace: the formatter breaks long calls over lines.
    let text = |src: &str| {
        let t = expand_item_text(src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        t.split_whitespace().collect::<String>()
    };
    let user = text("#[vmap(in_dims = (None, 0))] fn model(p: [f64; 2], x: f64) -> f64 { p[0] * x.tanh() + p[1] }");
    for m in ["jvp_jvp", "jvp_vjp", "vjp_jvp", "vjp_vjp"] {
        assert!(user.contains(&format!("<model>::{m}(")), "{m}: {user}");
    }
    assert!(user.contains("<model>::lanes("), "{user}");
    assert!(user.contains("<model>::jvp_lanes("), "{user}");
    assert!(
        user.contains("::fluxion::__private::spread::<::fluxion::__private::f64x4,_,>(p1[__j])"),
        "{user}"
    );
    assert!(!user.contains("__fluxion_missing_model_vmap__second_order"), "{user}");
    // The reverse lanes companions: stubs.
    assert_eq!(
        user.matches("missing_rule::<__fluxion_missing_model_vmap__lanes,>")
            .count(),
        4,
        "{user}"
    );

    let derivative =
        text("#[vmap(in_dims = (None, 0))] #[grad] fn model(p: [f64; 2], x: f64) -> f64 { p[0] * x * x + p[1] }");
    assert_eq!(
        derivative
            .matches("missing_rule::<__fluxion_missing_model_grad_vmap__second_order,>")
            .count(),
        4,
        "{derivative}"
    );
    assert_eq!(
        derivative
            .matches("missing_rule::<__fluxion_missing_model_grad_vmap__lanes,>")
            .count(),
        6,
        "{derivative}"
    );

    let shared_slice = text("#[vmap(in_dims = (None, 0))] fn model(w: &[f64], x: f64) -> f64 { w[0] * x }");
    assert_eq!(
        shared_slice
            .matches("missing_rule::<__fluxion_missing_model_vmap__second_order,>")
            .count(),
        4,
        "{shared_slice}"
    );
    assert!(shared_slice.contains("<model>::lanes("), "{shared_slice}");
}

/// A nalgebra value in the interpreter (its rows, each its columns) as its storage array
/// (a vector's elements; a matrix's columns), what `vmap`'s kernel holds.
fn storage_of(v: &Value, ty: &Ty) -> Value {
    match (ty, v) {
        (Ty::Matrix { cols, .. }, Value::Arr(rows)) => {
            let at = |i: usize, j: usize| match &rows[i] {
                Value::Arr(r) => r[j].clone(),
                other => panic!("a matrix row {other:?}"),
            };
            let n_cols = match &rows[0] {
                Value::Arr(r) => r.len(),
                other => panic!("a matrix row {other:?}"),
            };
            if cols.is_one() {
                Value::Arr((0..rows.len()).map(|i| at(i, 0)).collect())
            } else {
                Value::Arr(
                    (0..n_cols)
                        .map(|j| Value::Arr((0..rows.len()).map(|i| at(i, j)).collect()))
                        .collect(),
                )
            }
        }
        (Ty::Tuple(ts), Value::Tup(vs)) => Value::Tup(vs.iter().zip(ts).map(|(v, t)| storage_of(v, t)).collect()),
        (Ty::Array(e, _), Value::Arr(vs)) => Value::Arr(vs.iter().map(|v| storage_of(v, e)).collect()),
        _ => v.clone(),
    }
}

/// `vmap`'s nalgebra arguments and results: the function with every matrix as its storage
/// array (`nalgebra_as_storage`: `(i, 0)` is `[i]`, `(i, j)` is `[j][i]`) gives, on the
/// storage of the arguments, the storage of the function's value, bit for bit, for the
/// function and its gradient; its kernel gives each lane that value.
#[test]
fn nalgebra_values_as_their_storage() {
    use fluxion_engine::batch::nalgebra_as_storage;
    let rules = RuleTable::standard();
    let o = |t| Options::new(t, Span::call_site());
    for src in [
        "fn f(x: SVector<f64, 3>, w: SMatrix<f64, 2, 3>) -> f64 { let y = w * x; y[0] * y[1].sin() + w[(1, 2)] * x[0] }",
        "fn f(x: SVector<f64, 3>, w: SMatrix<f64, 2, 3>) -> SVector<f64, 2> { (w * x).map(|v| v * v) + w.transpose().transpose() * x }",
        "fn f(x: SVector<f64, 3>, w: SMatrix<f64, 2, 3>) -> f64 { let mut m = w; m[(0, 1)] = x[2]; (m * x).norm_squared() }",
    ] {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut fs = vec![("f", f.clone())];
        if matches!(f.ret_ty, Ty::Float(_)) {
            let mut og = o(Transform::Grad);
            og.argnums = Some(fluxion_engine::spec::Argnums::Many(vec![(0, Span::call_site()), (1, Span::call_site())]));
            let g = grad(&f, &og, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            fs.push(("grad", g));
        }
        for (what, g) in fs {
            let s = nalgebra_as_storage(&g).unwrap_or_else(|e| panic!("{what} of {src}: {e:?}"));
            let env = Env::default();
            for k in 0..SAMPLES.len() {
                let v = |i: usize| Value::F(SAMPLES[(k + i) % SAMPLES.len()]);
                let x = Value::Arr((0..3).map(|i| Value::Arr(vec![v(i)])).collect());
                let w = Value::Arr((0..2).map(|i| Value::Arr((0..3).map(|j| v(3 + 3 * i + j)).collect())).collect());
                let want = env.eval(&g, &[x.clone(), w.clone()]).unwrap_or_else(|e| panic!("{what} of {src}: {e}"));
                let args = [storage_of(&x, &g.params[0].ty), storage_of(&w, &g.params[1].ty)];
                let got = env.eval(&s, &args).unwrap_or_else(|e| panic!("{what} of {src}, storage: {e}"));
                assert_eq!(bits(&got), bits(&storage_of(&want, &g.ret_ty)), "{what} of {src}, sample {k}");
            }
            let spec = BatchSpec {
                batched: vec![true, false],
            };
            batch(&s, &spec).unwrap_or_else(|e| panic!("{what} of {src}: kernel: {e:?}"));
        }
    }
}

/// Which outputs a `vmap` kernel writes straight into the samples (`vmap::writes_lane_by_lane`,
/// `into::lane_rows`): arrays of floats of at least 64 elements or of named-constant
/// lengths, element stores only; smaller literal lengths, floats and accumulated (`+=`)
/// outputs keep the lanes buffer.
#[test]
fn large_array_outputs_are_written_lane_by_lane() {
    let kernel = kernel_text;
    // (source, output types in the kernel's buffer, whether a rows parameter follows)
    let cases = [
        // 64 floats: lane by lane; the buffer keeps `()` in its place.
        ("#[vmap(in_dims = (0, 0))] #[grad(argnums = (0, 1))] fn f(x: [f64; 64], w: [f64; 8]) -> f64 { let mut s = 0.0; for i in 0..64 { s += x[i] * w[i % 8]; } s * s }", "out: &mut ((), [", true),
        // 63 floats: the buffer.
        ("#[vmap] #[grad] fn f(x: [f64; 63]) -> f64 { let mut s = 0.0; for i in 0..63 { s += x[i] * x[i]; } s }", "out: &mut [", false),
        // 8 x 8 nested: 64 floats, lane by lane.
        ("#[vmap] #[grad] fn f(x: [[f64; 8]; 8]) -> f64 { let mut s = 0.0; for i in 0..8 { for j in 0..8 { s += x[i][j] * x[i][j]; } } s }", "out: &mut ()", true),
        // Each element reached twice (`x[i][j]` and `x[j][i]`): accumulated, the buffer.
        ("#[vmap] #[grad] fn f(x: [[f64; 8]; 8]) -> f64 { let mut s = 0.0; for i in 0..8 { for j in 0..8 { s += x[i][j] * x[j][i]; } } s }", "out: &mut [", false),
        // A named-constant length: lane by lane.
        ("const N: usize = 2; #[vmap] #[grad] fn f(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += x[i] * x[i]; } s }", "out: &mut ()", true),
        // A float: the buffer.
        ("#[vmap] #[grad] fn f(x: f64) -> f64 { x * x }", "out: &mut ::fluxion::__private::f64x4", false),
        // Per-sample gradients of a layer's weights and biases (named-constant lengths): all
        // three lane by lane, the weights' two-index stores beside the others' one.
        ("const D: usize = 3; const H: usize = 2; #[vmap(in_dims = (None, None, None, 0))] #[grad(argnums = (0, 1, 2))] \
          fn f(w: &[[f64; D]; H], b: &[f64; H], v: &[f64; H], x: &[f64; D]) -> f64 { let mut o = 0.0; \
          for i in 0..H { let mut s = b[i]; for j in 0..D { s += w[i][j] * x[j]; } o += v[i] * s * s; } o }", "out: &mut ((), (), ())", true),
        // Per-sample Jacobians, each row stored whole (`Pack::write_lane`).
        ("const N: usize = 5; const M: usize = 6; #[vmap(in_dims = (0, None))] #[jacrev] \
          fn f(x: [f64; N], w: &[[f64; N]; M]) -> [f64; M] { let mut y = [0.0; M]; \
          for i in 0..M { let mut s = 0.0; for j in 0..N { s += w[i][j] * x[j] * x[j]; } y[i] = s; } y }", "out: &mut ()", true),
        // A result starting as a copy of the argument, one element stored after: the buffer
        // (the copy is not a store of each element).
        ("#[vmap] fn f(x: [f64; 64]) -> [f64; 64] { let mut y = x; y[0] = x[1] * x[2]; y }", "out: &mut [", false),
        // A branch on a shared value that does not touch the output: lane by lane.
        ("#[vmap(in_dims = (0, None))] #[grad(argnums = 0)] fn f(x: [f64; 64], w: f64) -> f64 { let mut s = 0.0; \
          for i in 0..64 { s += x[i] * x[i]; } if w > 0.0 { s = s * w; } s }", "out: &mut ()", true),
        // A branch on a shared value, one side adding twice into the same element: the buffer.
        ("#[vmap(in_dims = (0, None))] #[grad(argnums = 0)] fn f(x: [f64; 64], w: f64) -> f64 { let mut s = 0.0; \
          if w > 0.0 { for i in 0..64 { s += x[i] * x[i]; } } else { for i in 0..64 { s += x[i] * x[(i + 1) % 64]; } } s }", "out: &mut [", false),
    ];
    for (src, buffer, rows) in cases {
        let k = kernel(src);
        assert!(k.contains(buffer), "{src}: the buffer {buffer}\n{k}");
        assert_eq!(k.contains("rows: &mut [&mut "), rows, "{src}: rows\n{k}");
        if rows {
            assert!(k.contains("[__fluxion_l]"), "{src}: stores lane by lane\n{k}");
        }
    }
}

/// A result stored on its diagonal only (`m[i][i]`, one index twice) keeps its zeros: the
/// nest does not store every element (`into::stores_cover`). A Jacobian's rows stored
/// whole, over every row, are not zeroed first (`(*out)[k] = row`).
#[test]
fn partial_and_whole_row_stores_and_zeros() {
    let kernel = kernel_text;
    let diag = kernel(
        "#[vmap] fn f(x: f64) -> [[f64; 3]; 3] { let mut m = [[0.0; 3]; 3]; for i in 0..3 { m[i][i] = x * x; } m }",
    );
    assert!(diag.contains("(*out) = ["), "{diag}");
    let rows = kernel(
        "#[vmap(in_dims = (0, None))] #[jacrev] fn f(x: [f64; 2], w: &[[f64; 2]; 3]) -> [f64; 3] { \
         let mut y = [0.0; 3]; for i in 0..3 { y[i] = w[i][0] * x[0] * x[1] + w[i][1] * x[1]; } y }",
    );
    assert!(rows.contains("(*out)[") && !rows.contains("fill_zero"), "{rows}");
}

/// The `vmap` kernel of the expansion of `src`: from `fn __fluxion_kernel_` to the next
/// function.
fn kernel_text(src: &str) -> String {
    let text = fluxion_engine::expand::expand_item_text(src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let at = text
        .find("fn __fluxion_kernel_")
        .unwrap_or_else(|| panic!("no kernel: {text}"));
    let k = &text[at..];
    k[..k[3..].find("\nfn ").map_or(k.len(), |e| e + 3)].to_string()
}
