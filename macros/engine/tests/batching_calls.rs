//! vmap through calls, interpreted: a batched kernel calls its callees' lanes companions
//! (`lanes`, `jvp_lanes`, `vjp_lanes`, `vjp_fwd_lanes`, `vjp_bwd_acc_lanes`, ..), which the
//! interpreter builds from the callee's companion with `batch::lanes_companion` exactly as
//! the callee's macro does, and runs. Every sample of a batch (sizes around the lane
//! counts, chunks padded with the last sample as the runtime's `pack` does) is checked bit
//! for bit against the unbatched program run per sample: the interpreter's lane arithmetic
//! is the scalar one, so any difference is a batching defect (of the caller's kernel or of
//! a callee's lanes companion), never rounding.
//!
//! The callers call callees with scalar, array and tuple results, integer arguments,
//! shared and batched arguments (a shared call's array or tuple result spread into the
//! lanes of a batched call), calls inside callees, in loops and under batched conditions
//! (a call's result assigned under a lane mask), and are batched as they are (`vmap(f)`)
//! and through `grad` (the form the macro batches, calling `g` and `g::vjp`, and the final
//! reverse pass, whose `vjp_bwd_acc` calls add into lane accumulators through `&mut`),
//! `grad_and_value`, `jvp` and `vjp`.

mod common;

use common::*;
use fluxion_engine::attr::Options;
use fluxion_engine::batch::{batch, BatchSpec};
use fluxion_engine::ir::Ty;
use fluxion_engine::spec::Argnums;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad_pass, jvp_user, vjp_user, Site};
use proc_macro2::Span;

/// Batch sizes around the lane counts (4 and 8).
const SIZES: [usize; 8] = [0, 1, 3, 4, 5, 7, 8, 9];

/// A larger batch, run on four lanes only.
const LARGE: usize = 1023;

/// The callees: a scalar result (shared and batched arguments), an integer argument, an
/// array result, a tuple result holding an array, array and tuple parameters, a callee
/// calling two others, a loop over calls, transcendentals.
const CALLEES: &[&str] = &[
    "fn sq(x: f64, w: f64) -> f64 { x * x * w + (x * x + 1.0).sqrt() }",
    "fn pick(x: [f64; 3], k: usize) -> f64 { x[k] * 2.0 - x[k] * x[2] + x[0] }",
    "fn arr(x: f64, y: [f64; 3]) -> [f64; 3] { [x * y[0], y[1] - x, y[2] * y[2] + x] }",
    "fn tup(x: f64, w: f64) -> (f64, [f64; 2]) { (x * w, [x - w, x * x * 0.5]) }",
    "fn dot(a: [f64; 3], x: f64) -> f64 { a[0] * x + a[1] * x * x + a[2] }",
    "fn tdot(t: (f64, [f64; 2]), x: f64) -> f64 { t.0 * x + t.1[1] * x * x }",
    "fn nest(x: f64, y: [f64; 3]) -> f64 { let a = arr(x, y); sq(a[1], x) + pick(a, 2) * dot(y, a[0]) }",
    "fn looped(x: f64, y: [f64; 3]) -> f64 { let mut s = x; for i in 0..3 { s = sq(s * 0.5, y[i]) - pick(y, i); } s }",
    "fn trig(x: f64, w: f64) -> f64 { (x * w).sin() * x.exp() + (x * x + w).tanh() }",
    "fn branchy(x: f64, w: f64) -> f64 { if x > w { (x - w).sqrt() * x } else { w - x * x } }",
];

/// Callers of one batched `x: f64`, `y: [f64; 3]` and a shared `w: f64`.
const CALLERS: &[&str] = &[
    // Batched and shared arguments, a call with only shared ones (stays scalar, its result
    // splatted).
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { sq(x, w) + sq(w, x) * y[0] + sq(w, w) * x }",
    // An integer argument, an array result indexed and passed on.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let a = arr(x, y); a[0] * a[2] + pick(a, 1) + pick(y, 0) * w }",
    // A tuple result holding an array.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let (p, q) = tup(x, w); let (r, s) = tup(w, y[1]); p * q[1] + q[0] * r - s[1] }",
    // Shared calls' array and tuple results spread into batched calls' lanes.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let c = arr(w, [w, 1.0, 2.0]); let (t0, t1) = tup(w, 0.5); dot(c, x) + dot([t0, x, t1[1]], y[2]) + pick(c, 2) + tdot(tup(w, y[0]), x) * tdot(tup(w, 1.5), y[1]) }",
    // Nested calls, a loop of calls inside the callee, and in the caller.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { nest(x, y) * w + nest(w, y) - looped(y[1], y) }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += sq(y[i], w) * pick(y, i) + trig(s, x); } s }",
    // Calls under a batched condition (a side NaN for some lanes), their results assigned
    // under the mask: a scalar, an array, a tuple.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut r = w; if x > 0.0 { r = sq(x.sqrt(), w); } else { r = pick(y, 2) * x; } r }",
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { let mut a = arr(x, y); if y[0] > x { a = arr(w, y); } let (p, q) = tup(x, w); let mut r = p; let mut t = q; if x < 0.5 { let (p2, q2) = tup(y[2], x); r = p2; t = q2; } a[0] * a[2] + a[1] + r * t[0] - t[1] }",
    // A callee with a batched branch inside, transcendentals.
    "fn f(x: f64, y: [f64; 3], w: f64) -> f64 { branchy(x, w) + branchy(w, y[0]) * trig(x, y[2]) }",
];

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

fn env() -> Env {
    let mut env = Env::default();
    for src in CALLEES {
        let g = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        env.funcs.insert(g.name.clone(), g);
    }
    env
}

/// Sample `i`'s value of parameter `p` of type `t`: the samples above, shifted per
/// parameter and per element, slowly drifting over a large batch.
fn sample(t: &Ty, p: usize, i: usize) -> Value {
    match t {
        Ty::Array(e, n) => {
            let n = n.lit().unwrap_or(0) as usize;
            Value::Arr((0..n).map(|j| sample(e, p * 7 + j + 1, i)).collect())
        }
        Ty::Tuple(ts) => Value::Tup(
            ts.iter()
                .enumerate()
                .map(|(j, t)| sample(t, p * 5 + j + 2, i))
                .collect(),
        ),
        Ty::Unit => Value::Unit,
        _ => {
            let k = i * (p + 1) + 3 * p;
            let s = SAMPLES[k % SAMPLES.len()] + (k / SAMPLES.len()) as f64 * 0.0625;
            Value::F(if p.is_multiple_of(2) { s } else { -0.5 * s })
        }
    }
}

/// `f` batched over every parameter but those in `shared`, run over batches of each size
/// (chunks of `lanes` samples, the last one padded with its last sample), against `f` per
/// sample, bit for bit. Gives how many batched calls the kernel holds.
fn check(env: &Env, f: &Func, shared: &[usize], what: &str) -> usize {
    let batched: Vec<bool> = (0..f.params.len()).map(|p| !shared.contains(&p)).collect();
    let k = batch(
        f,
        &BatchSpec {
            batched: batched.clone(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let mut calls = 0;
    fluxion_engine::ir::walk_stmts(&k.body, &mut |s| {
        if let Stmt::Let(_, Expr::Call(c)) | Stmt::Mut(_, Some(Expr::Call(c))) = s {
            calls += usize::from(c.lanes);
        }
    });
    for lanes in [4, 8] {
        let env = Env { lanes, ..env.clone() };
        let sizes = SIZES.iter().copied().chain((lanes == 4).then_some(LARGE));
        for n in sizes {
            let args = |i: usize| -> Vec<Value> {
                f.params
                    .iter()
                    .enumerate()
                    .map(|(p, par)| sample(&par.ty, p, if batched[p] { i } else { 0 }))
                    .collect()
            };
            let want: Vec<Value> = (0..n)
                .map(|i| {
                    env.eval(f, &args(i))
                        .unwrap_or_else(|e| panic!("{what}: sample {i}: {e}"))
                })
                .collect();
            for start in (0..n).step_by(lanes) {
                let m = lanes.min(n - start);
                let per_lane: Vec<Vec<Value>> = (0..lanes).map(|l| args(start + l.min(m - 1))).collect();
                let packed: Vec<Value> = (0..f.params.len())
                    .map(|p| {
                        if batched[p] {
                            pack(&per_lane.iter().map(|a| a[p].clone()).collect::<Vec<_>>())
                        } else {
                            per_lane[0][p].clone()
                        }
                    })
                    .collect();
                let got = env
                    .eval(&k, &packed)
                    .unwrap_or_else(|e| panic!("{what}: kernel, {lanes} lanes: {e}"));
                for l in 0..m {
                    assert_eq!(
                        bits(&lane(&got, l)),
                        bits(&want[start + l]),
                        "{what}: batch of {n}, sample {} ({lanes} lanes), args {:?}",
                        start + l,
                        per_lane[l]
                    );
                }
            }
        }
    }
    calls
}

fn lowered(src: &str) -> Func {
    lower(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// `vmap(f)`: the kernel calls the callees' `lanes` companions.
#[test]
fn batched_calls_give_each_sample_its_value() {
    let env = env();
    for src in CALLERS {
        let calls = check(&env, &lowered(src), &[2], src);
        assert!(calls > 0, "{src}: no batched call");
    }
}

/// `vmap(grad(f))` in `x`, `y` and the shared `w` (its cotangent differs per sample), in
/// the form the macro batches (`g` and `g::vjp` called: `vjp_lanes`, whose reverse sweep
/// calls the inner callees' `vjp_fwd_lanes` and `vjp_bwd_acc_lanes`) and as the final
/// reverse pass (the caller's own `vjp_bwd_acc_lanes` calls, adding into its lane
/// accumulators through `&mut`); `vmap(grad_and_value(f))`.
#[test]
fn batched_gradients_through_calls() {
    let env = env();
    let mut o = Options::new(Transform::Grad, Span::call_site());
    let s = Span::call_site();
    o.argnums = Some(Argnums::Many(vec![(0, s), (1, s), (2, s)]));
    let rules = RuleTable::standard();
    for src in CALLERS {
        let f = lowered(src);
        for final_pass in [false, true] {
            let g = grad_pass(&f, &o, &site(), &rules, false, final_pass).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            let what = format!("grad (final pass: {final_pass}) of {src}");
            assert!(check(&env, &g, &[2], &what) > 0, "{what}: no batched call");
        }
        let gv = grad_pass(&f, &o, &site(), &rules, true, true).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        check(&env, &gv, &[2], &format!("grad_and_value of {src}"));
    }
}

/// `vmap(jvp(f))` (tangents batched, the shared `w`'s tangent shared) and `vmap(vjp(f))`
/// (the cotangent batched), through `jvp_lanes` and the reverse companions' lanes.
#[test]
fn batched_jvp_and_vjp_through_calls() {
    let env = env();
    let rules = RuleTable::standard();
    let o = |t| Options::new(t, Span::call_site());
    for src in CALLERS {
        let f = lowered(src);
        let j = jvp_user(&f, &o(Transform::Jvp), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        assert!(check(&env, &j, &[2, 5], &format!("jvp of {src}")) > 0);
        for final_pass in [false, true] {
            let (v, _) = vjp_user(&f, &o(Transform::Vjp), &site(), &rules, "f_vjp".into(), final_pass)
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert!(check(&env, &v, &[2], &format!("vjp (final pass: {final_pass}) of {src}")) > 0);
        }
    }
}

/// `jacrev` as emitted, of a caller whose reverse sweep calls a callee's split reverse
/// half: one sweep per row, each taking a copy of the callee's residuals (`Call::clone_of`,
/// which the interpreter runs as the copy it is); the rows equal the unsplit `jacrev`'s.
#[test]
fn row_sweeps_copy_the_callees_residuals() {
    use fluxion_engine::transforms::jacrev_pass;
    let env = env();
    let rules = fluxion_engine::rules::RuleTable::standard();
    let src =
        "fn f(x: [f64; 3]) -> [f64; 2] { let a = sq(x[0], x[1]); let b = pick(x, 1); [a * x[2] + b, a - b * x[0]] }";
    let f = lowered(src);
    let o = Options::new(Transform::Jacrev, Span::call_site());
    let emitted = jacrev_pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{e:?}"));
    let plain = jacrev_pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{e:?}"));
    let clones = emitted
        .body
        .0
        .iter()
        .flat_map(|s| match s {
            fluxion_engine::ir::Stmt::For(l) => l.body.0.clone(),
            _ => Vec::new(),
        })
        .filter(|s| matches!(s, fluxion_engine::ir::Stmt::Let(_, fluxion_engine::ir::Expr::Call(c)) if c.is_clone()))
        .count();
    assert!(clones >= 1, "no residual copy in the row sweep");
    for x in [[0.7, -1.3, 0.4], [1.9, 0.6, -0.8]] {
        let a = env
            .eval(&emitted, &[Value::Arr(x.iter().map(|&v| Value::F(v)).collect())])
            .unwrap_or_else(|e| panic!("{e}"));
        let b = env
            .eval(&plain, &[Value::Arr(x.iter().map(|&v| Value::F(v)).collect())])
            .unwrap_or_else(|e| panic!("{e}"));
        for (p, q) in flat(&a).iter().zip(flat(&b)) {
            assert!(ulps_close(*p, q, 8.0, 1.0), "{p} vs {q} at {x:?}");
        }
        assert_eq!(flat(&a).len(), 6);
    }
}

/// A user's function named `clone` is called, not taken for the interpreter's residual
/// copy (`Call::is_clone` needs the `core::clone::Clone` path too).
#[test]
fn a_function_named_clone_is_a_call() {
    let mut env = env();
    let g = lowered("fn clone(x: f64) -> f64 { 2.0 * x + 1.0 }");
    env.funcs.insert(g.name.clone(), g);
    let f = lowered("fn f(x: f64) -> f64 { clone(x) * x }");
    let y = env.eval(&f, &[Value::F(1.5)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flat(&y), vec![4.0 * 1.5]);
}
