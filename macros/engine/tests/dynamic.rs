//! Dynamic-length data, interpreted: slice parameters, `len()`, loops with run-time bounds
//! (to the length, triangular `i + 1..n` and `0..i`, reversed, inclusive, nested in static
//! loops, with branches and array state inside), at lengths 0, 1, 2 and 5.
//!
//! For each program `f(xs: &[f64], w: f64) -> f64`: the reverse gradient (`vjp`) against
//! central finite differences, the final pass (`vjp_final`, growing tapes) bit for bit the
//! unsplit one, `vjp_fwd` then `vjp_bwd` bit for bit `vjp`, forward mode (`jvp`) against
//! reverse (`<ẋ, x̄>` = `ẏ`), the Hessian-vector product of forward over reverse
//! (`jvp_vjp`) against finite differences of the gradient, and the same product by
//! reverse over reverse (`vjp_vjp`, and `vjp` of `vjp_final`) against both.

use fluxion_engine::expand::lower_source;
use fluxion_engine::interp::{companion, Env, Value};
use fluxion_engine::ir::*;
use fluxion_engine::rules::RuleTable;
use fluxion_engine::vjp::{vjp, vjp_final, VjpSpec};

const CORPUS: &[&str] = &[
    // To the length.
    "fn f(xs: &[f64], w: f64) -> f64 { let mut s = 0.0; for i in 0..xs.len() { s += (xs[i] * w).sin() * xs[i]; } s }",
    // All pairs once: `j` from `i + 1`.
    "fn f(xs: &[f64], w: f64) -> f64 { let n = xs.len(); let mut e = 0.0; for i in 0..n { for j in i + 1..n { let d = xs[i] - xs[j]; e += (d * d + w * w + 0.5).ln() * xs[j]; } } e }",
    // The lower triangle, state carried across the inner iterations.
    "fn f(xs: &[f64], w: f64) -> f64 { let n = xs.len(); let mut s = 0.0; for i in 0..n { let mut a = xs[i]; for j in 0..i { a = (a * xs[j] + w).tanh() + 0.5 * a; } s += a * a; } s }",
    // Reversed and inclusive ranges to run-time bounds.
    "fn f(xs: &[f64], w: f64) -> f64 { let m = xs.len(); let mut y = w; for i in (0..m).rev() { y = y * w + xs[i].cos(); } for k in 1..=m { y += xs[k - 1] * (k as f64) * y.sin(); } y }",
    // A branch on a value inside a run-time loop.
    "fn f(xs: &[f64], w: f64) -> f64 { let mut s = w; for i in 0..xs.len() { if xs[i] > 0.0 { s = s * xs[i] + w; } else { s = s - xs[i] * w * s; } } s }",
    // Array state changed in every iteration.
    "fn f(xs: &[f64], w: f64) -> f64 { let mut v = [w, 1.0]; for i in 0..xs.len() { let t = v[0]; v[0] = (t * xs[i]).sin() + v[1]; v[1] = t * w; } v[0] + v[1] }",
    // A run-time loop inside a static one, and a static one inside a run-time one.
    "fn f(xs: &[f64], w: f64) -> f64 { let mut s = w; for r in 0..2 { for i in 0..xs.len() { s = (s + xs[i] * w).sin() + r as f64; } } for i in 0..xs.len() { for k in 0..3 { s = s * 0.5 + (xs[i] * k as f64).cos() * w; } } s }",
    // The sum of a slice.
    "fn f(xs: &[f64], w: f64) -> f64 { let s = xs.iter().sum::<f64>(); s * w + (s * s).sin() }",
];

const LENGTHS: [usize; 4] = [0, 1, 2, 5];

fn lower(src: &str) -> Func {
    lower_source(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn points(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234_5678;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.4 - 1.2
        })
        .collect()
}

fn arr(x: &[f64]) -> Value {
    Value::Arr(x.iter().map(|v| Value::F(*v)).collect())
}

fn flat(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    v.flatten(&mut out);
    out
}

fn pair(v: Value) -> (Value, Value) {
    match v {
        Value::Tup(mut xs) if xs.len() == 2 => {
            let b = xs.pop().unwrap_or(Value::Unit);
            let a = xs.pop().unwrap_or(Value::Unit);
            (a, b)
        }
        other => panic!("not a pair: {other:?}"),
    }
}

/// `f(xs, w)` with `x = xs ++ [w]`.
fn eval(env: &Env, f: &Func, x: &[f64]) -> f64 {
    let (xs, w) = x.split_at(x.len() - 1);
    env.eval(f, &[arr(xs), Value::F(w[0])])
        .ok()
        .and_then(|v| v.f())
        .unwrap_or(f64::NAN)
}

/// The gradient of `f` at `x = xs ++ [w]` by `vjp` (or `vjp_final`), flattened.
fn gradient(env: &Env, g: &Func, x: &[f64]) -> (f64, Vec<f64>) {
    let (xs, w) = x.split_at(x.len() - 1);
    let r = env
        .eval(g, &[arr(xs), Value::F(w[0]), Value::F(1.0)])
        .unwrap_or_else(|e| panic!("{}: {e}", g.name));
    let (y, bars) = pair(r);
    (y.f().unwrap_or(f64::NAN), flat(&bars))
}

fn fd(env: &Env, f: &Func, x: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let h = 1e-6 * x[i].abs().max(1.0);
            let mut p = x.to_vec();
            let mut m = x.to_vec();
            p[i] += h;
            m[i] -= h;
            (eval(env, f, &p) - eval(env, f, &m)) / (2.0 * h)
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn slices_and_run_time_loops_in_every_mode() {
    let rules = RuleTable::standard();
    let env = Env::default();
    let spec = VjpSpec {
        active: vec![true, true],
        all_params: false,
        seed: None,
    };
    for src in CORPUS {
        let f = lower(src);
        assert!(f.has_dynamic(), "{src}");
        let plain = vjp(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let fin = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let jvp_f = companion(&f, &[Mode::Jvp], &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let fwd = companion(&f, &[Mode::VjpFwd], &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let bwd = companion(&f, &[Mode::VjpBwd], &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let hvp = companion(&f, &[Mode::Vjp, Mode::Jvp], &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        let rr = companion(&f, &[Mode::Vjp, Mode::Vjp], &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        // Reverse over the final pass (growing tapes, the counters' own tapes).
        let spec2 = VjpSpec {
            active: vec![true, true, false],
            all_params: false,
            seed: None,
        };
        let rr_final = vjp(&fin.func, &spec2, &rules).unwrap_or_else(|e| panic!("{src}: {}", e.msg));
        for (s, n) in LENGTHS.into_iter().enumerate() {
            let mut x = points(n, s as u64 + 3);
            x.push(0.8);
            let (xs, w) = x.split_at(n);
            let y0 = eval(&env, &f, &x);
            let (y, g) = gradient(&env, &plain.func, &x);
            assert_eq!(y.to_bits(), y0.to_bits(), "{src} at {n}: the value");
            let want = fd(&env, &f, &x);
            assert_eq!(g.len(), n + 1, "{src} at {n}");
            for (k, (a, b)) in g.iter().zip(&want).enumerate() {
                assert!(
                    close(*a, *b, 1e-6),
                    "{src} at {n}: entry {k}: {a} against finite differences {b}"
                );
            }
            // The final pass (split calls, growing tapes) gives the same bits.
            let (y2, g2) = gradient(&env, &fin.func, &x);
            assert_eq!(y2.to_bits(), y.to_bits());
            assert_eq!(g2, g, "{src} at {n}: vjp_final");
            // `vjp_fwd` then `vjp_bwd` is `vjp`.
            let (yf, res) = pair(
                env.eval(&fwd, &[arr(xs), Value::F(w[0])])
                    .unwrap_or_else(|e| panic!("{src}: {e}")),
            );
            assert_eq!(yf.f().map(f64::to_bits), Some(y.to_bits()));
            let bars = env
                .eval(&bwd, &[arr(xs), Value::F(w[0]), res, Value::F(1.0)])
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(flat(&bars), g, "{src} at {n}: vjp_bwd");
            // Forward against reverse: `ẏ = <ẋ, x̄>`.
            let u = points(n + 1, 40 + s as u64);
            let (us, uw) = u.split_at(n);
            let (yj, dy) = pair(
                env.eval(&jvp_f, &[arr(xs), Value::F(w[0]), arr(us), Value::F(uw[0])])
                    .unwrap_or_else(|e| panic!("{src}: {e}")),
            );
            assert_eq!(yj.f().map(f64::to_bits), Some(y.to_bits()));
            let dot: f64 = g.iter().zip(&u).map(|(a, b)| a * b).sum();
            let dy = dy.f().unwrap_or(f64::NAN);
            assert!(close(dy, dot, 1e-12), "{src} at {n}: jvp {dy} against <u, grad> {dot}");
            // Forward over reverse: `H u` against finite differences of the gradient.
            let r = env
                .eval(
                    &hvp,
                    &[
                        arr(xs),
                        Value::F(w[0]),
                        Value::F(1.0),
                        arr(us),
                        Value::F(uw[0]),
                        Value::F(0.0),
                    ],
                )
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            let (_, tangents) = pair(r);
            let (_, hu) = pair(tangents);
            let hu = flat(&hu);
            let h = 1e-6;
            let shifted = |sign: f64| {
                let p: Vec<f64> = x.iter().zip(&u).map(|(a, b)| a + sign * h * b).collect();
                gradient(&env, &plain.func, &p).1
            };
            let (gp, gm) = (shifted(1.0), shifted(-1.0));
            for k in 0..=n {
                let want = (gp[k] - gm[k]) / (2.0 * h);
                assert!(
                    close(hu[k], want, 1e-5),
                    "{src} at {n}: (H u)[{k}] = {} against {want}",
                    hu[k]
                );
            }
            // Reverse over reverse: the cotangent `(0, (u_xs, u_w))` of the gradient's
            // output `(y, (x̄s, w̄))` gives `H u` (the Hessian is symmetric).
            let ct2 = Value::Tup(vec![Value::F(0.0), Value::Tup(vec![arr(us), Value::F(uw[0])])]);
            let r = env
                .eval(&rr, &[arr(xs), Value::F(w[0]), Value::F(1.0), ct2.clone()])
                .unwrap_or_else(|e| panic!("{src}: vjp_vjp: {e}"));
            let (first, bars2) = pair(r);
            let (y1, g1) = pair(first);
            assert_eq!(y1.f().map(f64::to_bits), Some(y.to_bits()));
            assert_eq!(flat(&g1), g, "{src} at {n}: vjp_vjp's value");
            let rr_hu = flat(&bars2);
            // `(x̄s, w̄, ct̄)`: `ct̄ = <u, grad>`.
            assert_eq!(rr_hu.len(), n + 2, "{src} at {n}");
            for k in 0..=n {
                assert!(
                    close(rr_hu[k], hu[k], 1e-12),
                    "{src} at {n}: vjp_vjp (H u)[{k}] = {} against jvp_vjp {}",
                    rr_hu[k],
                    hu[k]
                );
                let want = (gp[k] - gm[k]) / (2.0 * h);
                assert!(
                    close(rr_hu[k], want, 1e-5),
                    "{src} at {n}: vjp_vjp against finite differences"
                );
            }
            assert!(
                close(rr_hu[n + 1], dot, 1e-12),
                "{src} at {n}: the cotangent's cotangent"
            );
            let r = env
                .eval(&rr_final.func, &[arr(xs), Value::F(w[0]), Value::F(1.0), ct2])
                .unwrap_or_else(|e| panic!("{src}: vjp of vjp_final: {e}"));
            let (_, bars3) = pair(r);
            let fin_hu = flat(&bars3);
            assert_eq!(fin_hu.len(), n + 1, "{src} at {n}");
            for k in 0..=n {
                assert!(
                    close(fin_hu[k], hu[k], 1e-12),
                    "{src} at {n}: vjp of vjp_final (H u)[{k}] = {} against {}",
                    fin_hu[k],
                    hu[k]
                );
            }
            if n >= 2 {
                assert!(fin_hu[..n].iter().any(|v| *v != 0.0), "{src} at {n}");
            }
        }
    }
}

#[test]
fn values_of_a_triangular_loop_are_taped_on_growing_tapes() {
    let rules = RuleTable::standard();
    let f = lower(CORPUS[2]);
    let spec = VjpSpec {
        active: vec![true, true],
        all_params: false,
        seed: None,
    };
    let g = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
    let growing: Vec<&str> = g
        .func
        .vars
        .iter()
        .filter(|v| v.storage == Storage::Growing)
        .map(|v| v.name.as_str())
        .collect();
    assert!(!growing.is_empty(), "no growing tape");
    // Static loops keep array tapes: no growing tape without a run-time bound, also for
    // bounds that are constant expressions.
    for src in [
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in 0..3 { a = (a * x[i]).tanh(); } a }",
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in 0..N - 1 { a = (a * x[i + 1]).tanh(); } a }",
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in (1..=(2)).rev() { a = (a * x[i]).tanh(); } a }",
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in 0..(N - 1) { a = (a * x[i]).tanh(); } a }",
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in -K..2 { a = (a * w).tanh() + i as f64; } for i in { 0 }..N { a = a * x[i]; } a }",
        "fn f(x: [f64; 3], w: f64) -> f64 { let mut a = w; for i in 0..m::N { a = (a * x[i]).tanh(); } a }",
    ] {
        let s = lower(src);
        assert!(!s.has_dynamic(), "{src}");
        let mut loops = 0;
        walk_stmts(&s.body, &mut |st| {
            if let Stmt::For(l) = st {
                loops += 1;
                assert!(
                    !l.is_dynamic() && l.static_lo().is_some() && l.static_hi().is_some(),
                    "{src}"
                );
            }
        });
        assert!(loops >= 1);
        let g = vjp_final(&s, &spec, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
        assert!(g.func.vars.iter().all(|v| v.storage != Storage::Growing), "{src}");
    }
}

#[test]
fn a_run_time_bound_without_slices_is_dynamic() {
    // `0..n` with `n` a parameter, `i..n` and `0..i` with `i` an index: every loop's bounds
    // are variables read at run time, and the function holds dynamic data without a slice.
    let f = lower(
        "fn f(x: f64, n: usize) -> f64 { let mut y = x; for i in 0..n { for j in i..n { y = (y * x).sin() + j as f64; } for j in 0..i { y = y * 0.5; } } y }",
    );
    assert!(f.has_dynamic());
    let mut bounds = Vec::new();
    walk_stmts(&f.body, &mut |st| {
        if let Stmt::For(l) = st {
            bounds.push((l.lo.var().is_some(), l.hi.var().is_some(), l.is_dynamic()));
        }
    });
    assert_eq!(
        bounds,
        vec![(false, true, true), (true, true, true), (false, true, true)]
    );
    let rules = RuleTable::standard();
    let env = Env::default();
    let spec = VjpSpec {
        active: vec![true, false],
        all_params: false,
        seed: None,
    };
    let g = vjp_final(&f, &spec, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
    for n in [0, 1, 3] {
        let at = |x: f64| {
            env.eval(&f, &[Value::F(x), Value::I(n)])
                .ok()
                .and_then(|v| v.f())
                .unwrap_or(f64::NAN)
        };
        let r = env
            .eval(&g.func, &[Value::F(0.7), Value::I(n), Value::F(1.0)])
            .unwrap_or_else(|e| panic!("{e}"));
        let (y, bars) = pair(r);
        assert_eq!(y.f().map(f64::to_bits), Some(at(0.7).to_bits()));
        let h = 1e-6;
        let want = (at(0.7 + h) - at(0.7 - h)) / (2.0 * h);
        let got = flat(&bars)[0];
        assert!(close(got, want, 1e-6), "n = {n}: {got} against {want}");
    }
    // Reverse over reverse through it: the second derivative against central differences
    // of the first.
    let spec2 = VjpSpec {
        active: vec![true, false, false],
        all_params: false,
        seed: None,
    };
    let g2 = vjp(&g.func, &spec2, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
    for n in [0, 1, 3, 7] {
        let d = |x: f64| {
            let r = env
                .eval(&g.func, &[Value::F(x), Value::I(n), Value::F(1.0)])
                .unwrap_or_else(|e| panic!("{e}"));
            flat(&pair(r).1)[0]
        };
        // The cotangent of `(y, (x̄,))`: `(0, (1,))` selects `x̄`.
        let ct = Value::Tup(vec![Value::F(0.0), Value::Tup(vec![Value::F(1.0)])]);
        let r = env
            .eval(&g2.func, &[Value::F(0.7), Value::I(n), Value::F(1.0), ct])
            .unwrap_or_else(|e| panic!("{e}"));
        let got = flat(&pair(r).1)[0];
        let h = 1e-6;
        let want = (d(0.7 + h) - d(0.7 - h)) / (2.0 * h);
        assert!(close(got, want, 1e-5), "n = {n}: {got} against {want}");
        if n >= 1 {
            assert!(got != 0.0);
        }
    }
}

#[test]
fn reverse_over_a_reverse_call_with_a_slice() {
    // `f`'s reverse pass calls `g::vjp(xs, w, ct)` with the slice `xs`; reverse mode over
    // that pass calls `g`'s `vjp_vjp` (a slice's cotangent in the cotangent it takes).
    // Checked against central differences of the first pass and against forward over
    // reverse (`jvp` of the same pass), at lengths 0, 1, 3, 7, with `g` a pair loop.
    let rules = RuleTable::standard();
    let mut env = Env::default();
    env.funcs
        .insert("g".into(), lower(&CORPUS[1].replacen("fn f", "fn g", 1)));
    let f = lower("fn f(xs: &[f64], w: f64) -> f64 { g(xs, w) * w }");
    for active in [vec![false, true], vec![true, true]] {
        let once = vjp(
            &f,
            &VjpSpec {
                active: active.clone(),
                all_params: false,
                seed: None,
            },
            &rules,
        )
        .unwrap_or_else(|e| panic!("{}", e.msg));
        let spec2 = VjpSpec {
            active: vec![true, true, false],
            all_params: false,
            seed: None,
        };
        let twice = vjp(&once.func, &spec2, &rules).unwrap_or_else(|e| panic!("{}", e.msg));
        let fwd = fluxion_engine::jvp::jvp(
            &once.func,
            &fluxion_engine::jvp::JvpSpec {
                active: vec![true, true, false],
                all_params: false,
                seeds: vec![],
                basis: vec![],
            },
            &rules,
        )
        .unwrap_or_else(|e| panic!("{}", e.msg));
        for (s, n) in [0, 1, 3, 7].into_iter().enumerate() {
            let xs = points(n, 90 + s as u64);
            let w = 0.6;
            let grad = |xs: &[f64], w: f64| {
                let r = env
                    .eval(&once.func, &[arr(xs), Value::F(w), Value::F(1.0)])
                    .unwrap_or_else(|e| panic!("{e}"));
                flat(&pair(r).1)
            };
            let g0 = grad(&xs, w);
            // The cotangent `u` of the gradient's entries; the output's value gets 0.
            let u = points(g0.len(), 95 + s as u64);
            let ct_bars = if active[0] {
                Value::Tup(vec![arr(&u[..n]), Value::F(u[n])])
            } else {
                Value::Tup(vec![Value::F(u[0])])
            };
            let ct = Value::Tup(vec![Value::F(0.0), ct_bars]);
            let r = env
                .eval(&twice.func, &[arr(&xs), Value::F(w), Value::F(1.0), ct])
                .unwrap_or_else(|e| panic!("{e}"));
            let (first, bars) = pair(r);
            assert_eq!(flat(&pair(first).1), g0);
            let got = flat(&bars);
            assert_eq!(got.len(), n + 1);
            // Column by column: `d<u, grad>/dz_k` by forward mode over the same pass, and
            // by central differences of the gradient.
            for k in 0..=n {
                let mut e = vec![0.0; n + 1];
                e[k] = 1.0;
                let r = env
                    .eval(
                        &fwd,
                        &[arr(&xs), Value::F(w), Value::F(1.0), arr(&e[..n]), Value::F(e[n])],
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                let col = flat(&pair(pair(r).1).1);
                let by_jvp: f64 = col.iter().zip(&u).map(|(a, b)| a * b).sum();
                assert!(
                    close(got[k], by_jvp, 1e-12),
                    "n = {n}, entry {k}: {} against jvp {by_jvp}",
                    got[k]
                );
                let h = 1e-6;
                let at = |sign: f64| {
                    let mut z = xs.clone();
                    z.push(w);
                    z[k] += sign * h;
                    let g = grad(&z[..n], z[n]);
                    g.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>()
                };
                let want = (at(1.0) - at(-1.0)) / (2.0 * h);
                assert!(
                    close(got[k], want, 1e-5),
                    "n = {n}, entry {k}: {} against {want}",
                    got[k]
                );
            }
            if n >= 2 {
                assert!(got.iter().all(|v| *v != 0.0), "n = {n}: {got:?}");
            }
        }
    }
}

#[test]
fn a_snapshot_read_after_its_array_changes_is_not_forwarded() {
    // `forward_final_snapshots` (arrays and slices' `Vec`s) forwards a snapshot's element
    // reads to the array only when nothing writes the array after the snapshot.
    let env = Env::default();
    for src in [
        "fn f(x: [f64; 2]) -> f64 { let mut v = [x[0], x[1]]; let w = v; v[0] = x[1] * 3.0; w[0] * v[0] }",
        "fn f(x: [f64; 2]) -> f64 { let mut v = [x[0], x[1]]; let w = v; for i in 0..2 { v[i] = x[1] * 3.0; } w[0] * v[0] + w[1] }",
    ] {
        let f = lower(src);
        let mut g = f.clone();
        fluxion_engine::simplify::simplify(&mut g);
        let arg = [arr(&[0.7, -1.1])];
        let (a, b) = (env.eval(&f, &arg), env.eval(&g, &arg));
        assert_eq!(a, b, "{src}");
        let v0 = -1.1 * 3.0;
        let want = if src.contains("w[1]") { 0.7 * v0 + -1.1 } else { 0.7 * v0 };
        assert_eq!(a.ok().and_then(|v| v.f()), Some(want), "{src}");
    }
}

#[test]
fn jacrev_of_a_gradient_in_a_slice() {
    // `jacrev` of a function returning a `Vec` (the gradient in `xs`): one reverse sweep
    // per entry of the gradient, `0..len`, each over the gradient's own reverse pass
    // (growing tapes read back and their adjoints reset). Rows against the Hessian of
    // forward over reverse and against central differences of the gradient.
    use fluxion_engine::attr::Options;
    use fluxion_engine::symbol::Transform;
    use fluxion_engine::transforms::{grad, hessian, jacrev, Site};
    let rules = RuleTable::standard();
    let env = Env::default();
    let site = Site {
        name: proc_macro2::Span::call_site(),
        ret: proc_macro2::Span::call_site(),
    };
    let o = |t| Options::new(t, proc_macro2::Span::call_site());
    for src in CORPUS {
        let f = lower(src);
        let g = grad(&f, &o(Transform::Grad), &site, &rules, false).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let j = jacrev(&g, &o(Transform::Jacrev), &site, &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let h = hessian(&f, &o(Transform::Hessian), &site, &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        for (s, n) in LENGTHS.into_iter().enumerate() {
            let xs = points(n, 60 + s as u64);
            let w = Value::F(0.8);
            let rows = |v: Value| match v {
                Value::Arr(rs) => rs.iter().map(flat).collect::<Vec<_>>(),
                other => panic!("{src}: not rows: {other:?}"),
            };
            let jr = rows(
                env.eval(&j, &[arr(&xs), w.clone()])
                    .unwrap_or_else(|e| panic!("{src}: jacrev: {e}")),
            );
            let hr = rows(
                env.eval(&h, &[arr(&xs), w.clone()])
                    .unwrap_or_else(|e| panic!("{src}: hessian: {e}")),
            );
            assert_eq!(jr.len(), n, "{src} at {n}");
            let grad_at = |x: &[f64]| flat(&env.eval(&g, &[arr(x), w.clone()]).unwrap_or_else(|e| panic!("{e}")));
            for r in 0..n {
                assert_eq!(jr[r].len(), n);
                for c in 0..n {
                    assert!(
                        close(jr[r][c], hr[r][c], 1e-12),
                        "{src} at {n}: [{r}][{c}] {} against hessian {}",
                        jr[r][c],
                        hr[r][c]
                    );
                    let hh = 1e-6;
                    let (mut p, mut m) = (xs.clone(), xs.clone());
                    p[c] += hh;
                    m[c] -= hh;
                    let want = (grad_at(&p)[r] - grad_at(&m)[r]) / (2.0 * hh);
                    assert!(
                        close(jr[r][c], want, 1e-5),
                        "{src} at {n}: [{r}][{c}] {} against {want}",
                        jr[r][c]
                    );
                }
            }
        }
    }
}
