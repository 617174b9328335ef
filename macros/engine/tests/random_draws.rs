//! Random draws (`rng.uniform(k)`, `rng.normal(k)`, `rng.fold_in(k)` on a `fluxion::Rng`),
//! interpreted with the runtime's own generator (`Env::draw`, rebuilt from each
//! [`RngPath`]):
//!
//! - the interpreted function draws exactly the runtime's numbers;
//! - every transform treats a draw as a constant: the interpreted `grad`, `jvp`, `vjp`,
//!   `jacfwd`, `jacrev`, `hessian` (and the companions `jvp(vjp)`, `vjp(vjp)`) agree with
//!   central differences of the interpreted function drawing from the same generator, and
//!   forward and reverse modes agree with each other;
//! - `vmap` with `randomness = "different"` (the generator parameter batched: lane `l` of
//!   the chunk starting at sample `start` holds `rng.sample(start + l)`) gives in each lane
//!   bit for bit the per-sample function run with `rng.sample(start + l)`, and with
//!   `randomness = "same"` (the generator shared) the per-sample function run with `rng`;
//! - draws at different counters stay different numbers, and a draw has no derivative.
//!
//! Tolerances as in `common/mod.rs`: `fd_close` against central differences; 16 ulps of the
//! largest entry between forward and reverse mode; bit for bit between a kernel's lane and
//! its sample.

mod common;

use common::*;
use fluxion_engine::attr::{Argnums, Options};
use fluxion_engine::batch::{batch, BatchSpec};
use fluxion_engine::interp::RngPath;
use fluxion_engine::ir::{FloatTy, RngOp, Ty};
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{
    grad, grad_pass, hessian, hessian_pass, jacfwd, jacfwd_pass, jacrev, jacrev_pass, jvp_user, vjp_user, Site,
};
// (Shadows the test points' generator of `common`.)
use fluxion_runtime::Rng;
use proc_macro2::Span;

/// Scalar functions of a generator, a batched `x: [f64; 3]` and a shared `w: f64`: draws in
/// loops at counters computed from the loop index, derived generators (`fold_in`, also in a
/// loop), draws under a condition on `x` (batched under `vmap`), a condition on a draw, draws
/// stored in an array, draws feeding a recurrence over a mutable array.
const SCALAR: &[&str] = &[
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { let u = rng.uniform(2 * i); let z = rng.normal(2 * i + 1); s += (x[i] + 0.3 * z) * (x[(i + 1) % 3] - u) + (u * x[i] * w).sin(); } s }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let r = rng.fold_in(7); let q = r.fold_in(2); let mut s = 1.0; for i in 0..3 { s = s * (1.0 + r.uniform(i) * x[i]) + rng.normal(i) * x[i] * x[i] * w; } s + q.normal(0) * x[0] * x[2] }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut s = w; for i in 0..3 { let r = rng.fold_in(i as u64); s = s * x[i] + r.normal(0) - r.uniform(1) * x[(i + 2) % 3] * w; } s }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { if x[i] > 0.0 { s += rng.normal(i) * x[i].sqrt() * w; } else { s -= rng.uniform(i + 3) * x[i] * x[i]; } } s }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut s = x[0] * w; for i in 0..3 { let u = rng.uniform(10 + i); if u < 0.5 { s = s * x[i] + u; } else { s = s - x[i] * x[i] * rng.normal(20 + i); } } if w > 0.0 { s = s * (1.0 + rng.fold_in(3).normal(0)); } s }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut z = [0.0; 3]; for i in 0..3 { z[i] = rng.normal(3 * i + 2); } let mut s = 0.0; for i in 0..3 { s += z[i] * x[i] * x[(i + 2) % 3] + z[(i + 1) % 3].exp() * x[i] * w; } s + z[0] * z[1] }",
    "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut v = x; for k in 0..2 { for i in 0..3 { v[i] = (v[i] + 0.1 * rng.normal(3 * k + i)).tanh() * w + v[(i + 1) % 3]; } } v[0] * v[1] - v[2] }",
    // `f32` draws.
    "fn f(rng: &Rng, x: [f32; 3], w: f32) -> f32 { let mut s = 0.0; for i in 0..3 { s += x[i] * (1.0 + rng.uniform_f32(2 * i + 1)) * w + 0.5 * rng.normal_f32(i) * x[i] * x[i]; } s }",
    "fn f(rng: &Rng, x: [f32; 3], w: f32) -> f32 { let r = rng.fold_in(5); let mut s = w; for i in 0..3 { if x[i] > r.uniform_f32(i) { s = s * x[i] + r.normal_f32(i); } else { s = s - (x[i] * w).exp() * rng.uniform_f32(i); } } s }",
];

/// Vector functions (a generator by value): Jacobians.
const VECTOR: &[&str] = &[
    "fn f(rng: Rng, x: [f64; 3], w: f64) -> [f64; 2] { let mut y = [0.0; 2]; for i in 0..3 { let a = rng.uniform(2 * i); let b = rng.uniform(2 * i + 1); y[0] += a * x[i] * x[i] * w; y[1] += b * x[i] - a * b; } y }",
    "fn f(rng: Rng, x: [f64; 3], w: f64) -> [f64; 2] { let r = rng.fold_in(11); let mut y = [x[0], x[1] * w]; for i in 0..3 { if x[i] > r.uniform(i) { y[0] = y[0] * x[i] + r.normal(i); } else { y[1] = y[1] - x[i].exp() * rng.normal(i); } } y }",
    "fn f(rng: Rng, x: [f64; 3], w: f64) -> [f64; 3] { let mut y = [0.0; 3]; let mut s = w; for i in 0..3 { s = s * 0.5 + x[i].sin() * rng.normal(4 * i + 3); y[i] = s * x[(i + 1) % 3]; } y }",
];

/// Generators the functions draw from: plain seeds, and generators derived from one by
/// `sample` and `fold_in` (a sample of an outer batch, a folded generator).
fn generators() -> Vec<RngPath> {
    let path = |seed: u64, steps: &[(bool, u64)]| RngPath {
        seed,
        steps: steps.to_vec(),
    };
    vec![
        path(0, &[]),
        path(42, &[]),
        path(u64::MAX, &[]),
        path(7, &[(true, 3)]),
        path(9, &[(false, 12), (true, 0)]),
    ]
}

/// The runtime's generator a path describes: `Rng::new(seed)`, then each step.
fn runtime_rng(p: &RngPath) -> Rng {
    p.steps.iter().fold(Rng::new(p.seed), |r, &(sample, data)| {
        if sample {
            r.sample(usize::try_from(data).expect("a sample index"))
        } else {
            r.fold_in(data)
        }
    })
}

/// [`fluxion_engine::interp::DrawFn`] with the runtime's generator.
fn draw(p: &RngPath, op: RngOp, counter: u64) -> f64 {
    let r = runtime_rng(p);
    let k = usize::try_from(counter).expect("a counter");
    match op {
        RngOp::Uniform(FloatTy::F64) => r.uniform(k),
        RngOp::Uniform(FloatTy::F32) => f64::from(r.uniform_f32(k)),
        RngOp::Normal(FloatTy::F64) => r.normal(k),
        RngOp::Normal(FloatTy::F32) => f64::from(r.normal_f32(k)),
        RngOp::FoldIn | RngOp::Sample => panic!("{} is no draw", op.method()),
    }
}

fn env() -> Env {
    Env {
        draw: Some(draw),
        ..Env::default()
    }
}

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

fn lowered(src: &str) -> Func {
    lower(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn arr(xs: &[f64]) -> Value {
    Value::Arr(xs.iter().map(|&x| Value::F(x)).collect())
}

fn rng_value(p: &RngPath) -> Value {
    Value::Rng(p.clone())
}

/// `p.sample(k)`.
fn sampled(p: &RngPath, k: usize) -> RngPath {
    let mut q = p.clone();
    q.steps.push((true, k as u64));
    q
}

fn eval(env: &Env, f: &Func, args: &[Value]) -> Value {
    env.eval(f, args).unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

fn options(t: Transform, argnums: &[usize]) -> Options {
    let s = Span::call_site();
    let mut o = Options::new(t, s);
    o.argnums = Some(match argnums {
        [k] => Argnums::One(*k, s),
        ks => Argnums::Many(ks.iter().map(|k| (*k, s)).collect()),
    });
    o
}

// ---------------------------------------------------------------------------------------
// 1. The interpreted draws are the runtime's.
// ---------------------------------------------------------------------------------------

/// A function returning draws gives exactly the runtime's numbers for each kind of draw, for
/// derived generators, for counters computed from loop indices, and in `f32`.
#[test]
fn interpreted_draws_are_the_runtimes() {
    let env = env();
    let one = lowered("fn f(rng: &Rng) -> f64 { rng.normal(3) }");
    let several = lowered(
        "fn f(rng: &Rng) -> [f64; 5] { [rng.uniform(0), rng.normal(1), rng.fold_in(5).uniform(2), rng.fold_in(5).fold_in(9).normal(2), rng.uniform(1)] }",
    );
    let looped = lowered(
        "fn f(rng: Rng) -> [f64; 8] { let mut y = [0.0; 8]; for i in 0..4 { y[2 * i] = rng.uniform(2 * i + 1); y[2 * i + 1] = rng.fold_in(i as u64).normal(3 * i); } y }",
    );
    let single = lowered(
        "fn f(rng: &Rng, x: f32) -> [f32; 3] { [rng.uniform_f32(4), rng.normal_f32(5), x * rng.normal_f32(4)] }",
    );
    for p in generators() {
        let r = runtime_rng(&p);
        let got = eval(&env, &one, &[rng_value(&p)]);
        assert_eq!(got.f().map(f64::to_bits), Some(r.normal(3).to_bits()), "{p:?}");
        assert_eq!(
            bits(&eval(&env, &several, &[rng_value(&p)])),
            [
                r.uniform(0),
                r.normal(1),
                r.fold_in(5).uniform(2),
                r.fold_in(5).fold_in(9).normal(2),
                r.uniform(1)
            ]
            .map(f64::to_bits),
            "{p:?}"
        );
        let want: Vec<u64> = (0..4)
            .flat_map(|i| [r.uniform(2 * i + 1), r.fold_in(i as u64).normal(3 * i)])
            .map(f64::to_bits)
            .collect();
        assert_eq!(bits(&eval(&env, &looped, &[rng_value(&p)])), want, "{p:?}");
        let want: Vec<u64> = [
            f64::from(r.uniform_f32(4)),
            f64::from(r.normal_f32(5)),
            f64::from(r.normal_f32(4)) * 1.5,
        ]
        .map(f64::to_bits)
        .to_vec();
        assert_eq!(
            bits(&eval(&env, &single, &[rng_value(&p), Value::F(1.5)])),
            want,
            "{p:?}"
        );
    }
}

/// Without the runtime's generator (`Env::draw`) a draw is an error of the evaluation (not a
/// panic, not a number); a `fold_in` alone needs no generator.
#[test]
fn a_draw_without_a_generator_is_an_error() {
    let p = RngPath { seed: 1, steps: vec![] };
    let f = lowered("fn f(rng: &Rng, x: f64) -> f64 { rng.uniform(0) * x }");
    let e = Env::default().eval(&f, &[rng_value(&p), Value::F(1.0)]).unwrap_err();
    assert!(e.contains("generator"), "{e}");
    let g = lowered("fn f(rng: &Rng, x: f64) -> f64 { let r = rng.fold_in(3); x * 2.0 }");
    let y = Env::default().eval(&g, &[rng_value(&p), Value::F(1.5)]).unwrap();
    assert_eq!(y, Value::F(3.0));
}

// ---------------------------------------------------------------------------------------
// 2. Transforms treat draws as constants.
// ---------------------------------------------------------------------------------------

/// Points of ordinary behaviour (no ties, nothing near a condition's threshold of 0).
const POINTS: [([f64; 3], f64); 3] = [
    ([0.7, -1.3, 0.4], 0.8),
    ([1.9, 0.6, -0.8], -1.2),
    ([-0.45, 1.1, 1.7], 0.35),
];

/// Cross-mode tolerance in ulps of the largest entry.
const ULPS: f64 = 16.0;

/// The harness (`jvp`, `vjp`, `jvp(vjp)`, `vjp(vjp)` under the companion protocol) of `f` at
/// the generator `p`: the differentiated inputs are `x` and `w`.
fn harness(src: &str, f: &Func, p: &RngPath) -> Harness {
    let template = vec![rng_value(p), arr(&[0.0; 3]), Value::F(0.0)];
    let mut h = Harness::new(src, f.clone(), template, &RuleTable::standard());
    h.env.draw = Some(draw);
    h
}

fn ok<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn cmp(what: &str, a: &[Vec<f64>], b: &[Vec<f64>], close: impl Fn(f64, f64) -> bool) {
    compare(what, a, b, close).unwrap_or_else(|e| panic!("{e}"));
}

/// Columns `0..n` of a matrix.
fn left(m: &[Vec<f64>], n: usize) -> Vec<Vec<f64>> {
    m.iter().map(|r| r[..n].to_vec()).collect()
}

/// `jvp`, `vjp`, the Jacobians both ways and the Hessians of the companions `jvp(vjp)` and
/// `vjp(vjp)` of functions that draw, against central differences of the function with the
/// same generator, and forward against reverse mode.
#[test]
fn companions_treat_draws_as_constants() {
    for src in SCALAR.iter().chain(VECTOR) {
        let f = lowered(src);
        let scalar = f.ret_ty.is_float();
        for p in generators() {
            let h = harness(src, &f, &p);
            for (x, w) in POINTS {
                let xw = [x[0], x[1], x[2], w];
                let at = |what: &str| format!("`{src}` at {xw:?}, {p:?}: {what}");
                let fd = ok(h.fd_jacobian(&xw));
                let fwd = ok(h.jac_fwd(&xw));
                let rev = ok(h.jac_rev(&xw));
                cmp(&at("jvp vs finite differences"), &fwd, &fd, fd_close);
                cmp(&at("vjp vs finite differences"), &rev, &fd, fd_close);
                let s = max_abs(&fwd);
                cmp(&at("jvp vs vjp"), &fwd, &rev, |a, b| ulps_close(a, b, ULPS, s));
                // The primal value of `jvp` and `vjp` is the function's, draws included.
                let y = ok(h.primal_flat(&xw));
                let (y_fwd, _) = ok(h.jvp(&xw, &unit(4, 0)));
                let (y_rev, _) = ok(h.vjp(&xw, &vec![1.0; y.len()]));
                assert_eq!(y_fwd, y, "{}", at("jvp's value"));
                assert_eq!(y_rev, y, "{}", at("vjp's value"));
                if scalar {
                    let fd2 = ok(h.fd_hessian_of_grad(&xw));
                    let fr = ok(h.hess_fwd_rev(&xw));
                    let rr = ok(h.hess_rev_rev(&xw));
                    cmp(&at("jvp(vjp) vs finite differences"), &fr, &fd2, fd_close);
                    cmp(&at("vjp(vjp) vs finite differences"), &rr, &fd2, fd_close);
                    let s = max_abs(&fr);
                    cmp(&at("jvp(vjp) vs vjp(vjp)"), &fr, &rr, |a, b| ulps_close(a, b, ULPS, s));
                }
            }
        }
    }
}

/// The generated functions as the macros build them (`grad`, `jacfwd`, `jacrev`,
/// `hessian`, the user-facing `jvp` and `vjp`; also in their emitted forms, batched over
/// basis directions), evaluated with draws, against central differences of the function.
#[test]
fn generated_derivatives_treat_draws_as_constants() {
    let rules = RuleTable::standard();
    let env = env();
    for src in SCALAR.iter().chain(VECTOR) {
        let f = lowered(src);
        let scalar = f.ret_ty.is_float();
        let fail = |what: &'static str| move |e: syn::Error| -> Func { panic!("{what} of `{src}`: {e:?}") };
        let jf = jacfwd(&f, &options(Transform::Jacfwd, &[1]), &site(), &rules).unwrap_or_else(fail("jacfwd"));
        let jr = jacrev(&f, &options(Transform::Jacrev, &[1]), &site(), &rules).unwrap_or_else(fail("jacrev"));
        let jf_emitted = jacfwd_pass(&f, &options(Transform::Jacfwd, &[1]), &site(), &rules, true)
            .unwrap_or_else(fail("emitted jacfwd"));
        let jr_emitted = jacrev_pass(&f, &options(Transform::Jacrev, &[1]), &site(), &rules, true)
            .unwrap_or_else(fail("emitted jacrev"));
        let jv =
            jvp_user(&f, &Options::new(Transform::Jvp, Span::call_site()), &site(), &rules).unwrap_or_else(fail("jvp"));
        let (vj, _) = vjp_user(
            &f,
            &Options::new(Transform::Vjp, Span::call_site()),
            &site(),
            &rules,
            "f_vjp".into(),
            true,
        )
        .unwrap_or_else(|e| panic!("vjp of `{src}`: {e:?}"));
        let scalar_only = scalar.then(|| {
            (
                grad(&f, &options(Transform::Grad, &[1, 2]), &site(), &rules, false).unwrap_or_else(fail("grad")),
                grad_pass(&f, &options(Transform::Grad, &[1, 2]), &site(), &rules, true, true)
                    .unwrap_or_else(fail("grad_and_value")),
                hessian(&f, &options(Transform::Hessian, &[1]), &site(), &rules).unwrap_or_else(fail("hessian")),
                hessian_pass(&f, &options(Transform::Hessian, &[1]), &site(), &rules, true)
                    .unwrap_or_else(fail("emitted hessian")),
            )
        });
        for p in generators() {
            let h = harness(src, &f, &p);
            for (x, w) in POINTS {
                let xw = [x[0], x[1], x[2], w];
                let at = |what: &str| format!("`{src}` at {xw:?}, {p:?}: {what}");
                let args = [rng_value(&p), arr(&x), Value::F(w)];
                let y = ok(h.primal_flat(&xw));
                let fd = ok(h.fd_jacobian(&xw));
                // Jacobians in `x`: `[[f64; 3]; m]` (`[f64; 3]` for a scalar output).
                let fd_x = left(&fd, 3);
                let rows = |v: Vec<f64>| -> Vec<Vec<f64>> { v.chunks(3).map(<[f64]>::to_vec).collect() };
                let jf_v = rows(flat(&eval(&env, &jf, &args)));
                let jr_v = rows(flat(&eval(&env, &jr, &args)));
                cmp(&at("jacfwd vs finite differences"), &jf_v, &fd_x, fd_close);
                cmp(&at("jacrev vs finite differences"), &jr_v, &fd_x, fd_close);
                let s = max_abs(&jr_v);
                cmp(&at("jacfwd vs jacrev"), &jf_v, &jr_v, |a, b| ulps_close(a, b, ULPS, s));
                for (what, g, plain) in [("jacfwd", &jf_emitted, &jf_v), ("jacrev", &jr_emitted, &jr_v)] {
                    let v = rows(flat(&eval(&env, g, &args)));
                    cmp(&at(&format!("emitted {what} vs {what}")), &v, plain, |a, b| {
                        ulps_close(a, b, ULPS, s)
                    });
                }
                // `jvp` along each input direction of (x, w): a column of the Jacobian.
                for j in 0..4 {
                    let u = unit(4, j);
                    let mut a = args.to_vec();
                    a.extend([arr(&u[..3]), Value::F(u[3])]);
                    let out = eval(&env, &jv, &a);
                    let Value::Tup(parts) = out else { panic!("{out:?}") };
                    assert_eq!(flat(&parts[0]), y, "{}", at("jvp's value"));
                    let col: Vec<Vec<f64>> = flat(&parts[1]).into_iter().map(|t| vec![t]).collect();
                    let want: Vec<Vec<f64>> = fd.iter().map(|r| vec![r[j]]).collect();
                    cmp(&at(&format!("jvp along {j}")), &col, &want, fd_close);
                }
                // `vjp` with each unit cotangent: a row of the Jacobian.
                for (i, row) in fd.iter().enumerate() {
                    let ct = if scalar { Value::F(1.0) } else { arr(&unit(y.len(), i)) };
                    let mut a = args.to_vec();
                    a.push(ct);
                    let out = eval(&env, &vj, &a);
                    let Value::Tup(parts) = out else { panic!("{out:?}") };
                    assert_eq!(flat(&parts[0]), y, "{}", at("vjp's value"));
                    cmp(
                        &at(&format!("vjp row {i}")),
                        &[flat(&parts[1])],
                        std::slice::from_ref(row),
                        fd_close,
                    );
                }
                if let Some((g, gv, hs, hs_emitted)) = &scalar_only {
                    let gr = flat(&eval(&env, g, &args));
                    cmp(
                        &at("grad vs finite differences"),
                        std::slice::from_ref(&gr),
                        &fd,
                        fd_close,
                    );
                    let gv_v = flat(&eval(&env, gv, &args));
                    assert_eq!(gv_v[4], y[0], "{}", at("grad_and_value's value"));
                    let s = gr.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    for (a, b) in gv_v[..4].iter().zip(&gr) {
                        assert!(
                            ulps_close(*a, *b, ULPS, s),
                            "{}: {gv_v:?} vs {gr:?}",
                            at("grad_and_value")
                        );
                    }
                    let fd2 = left(&ok(h.fd_hessian_of_grad(&xw))[..3], 3);
                    let hv = rows(flat(&eval(&env, hs, &args)));
                    cmp(&at("hessian vs finite differences of grad"), &hv, &fd2, fd_close);
                    let he = rows(flat(&eval(&env, hs_emitted, &args)));
                    let s = max_abs(&hv);
                    cmp(&at("emitted hessian vs hessian"), &he, &hv, |a, b| {
                        ulps_close(a, b, ULPS, s)
                    });
                }
            }
        }
    }
}

/// Loops whose iteration reads a few elements of `x` and draws (the separable shape whose
/// emitted `jacrev`, `jacfwd` and `hessian` differentiate one iteration as a function of
/// the elements it reads, with the generator among the iteration's other parameters): the
/// same Jacobians and Hessians as the dense transforms, and as central differences.
#[test]
fn separable_loops_with_draws() {
    use fluxion_engine::sparse::derivative;
    let rules = RuleTable::standard();
    let env = env();
    let rows = "fn f(rng: &Rng, x: [f64; 4], w: f64) -> [f64; 4] { let mut y = [0.0; 4]; for i in 0..4 { let z = rng.normal(2 * i + 1); let u = rng.fold_in(i as u64).uniform(0); y[i] = x[i] * x[(i + 1) % 4] * z + w * u * x[i]; } y }";
    let sum = "fn f(rng: &Rng, x: [f64; 4], w: f64) -> f64 { let mut s = 0.0; for i in 0..4 { let z = rng.normal(2 * i + 1); s += x[i] * x[(i + 1) % 4] * x[i] * z * w + rng.uniform(i) * x[i]; } s }";
    let x = [0.7, -1.3, 0.4, 1.1];
    for (src, t) in [
        (rows, Transform::Jacrev),
        (rows, Transform::Jacfwd),
        (sum, Transform::Hessian),
    ] {
        let f = lowered(src);
        let o = options(t, &[1]);
        let sparse = derivative(&f, &o, &site(), &rules)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"))
            .unwrap_or_else(|| panic!("{t:?} of {src}: not separable"));
        let dense = match t {
            Transform::Jacrev => jacrev(&f, &o, &site(), &rules),
            Transform::Jacfwd => jacfwd(&f, &o, &site(), &rules),
            _ => hessian(&f, &o, &site(), &rules),
        }
        .unwrap_or_else(|e| panic!("{src}: {e:?}"));
        for p in generators() {
            let args = [rng_value(&p), arr(&x), Value::F(0.8)];
            let a = flat(&eval(&env, &sparse, &args));
            let b = flat(&eval(&env, &dense, &args));
            let s = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_eq!(a.len(), 16, "{t:?} of {src}");
            for (p_, q) in a.iter().zip(&b) {
                assert!(ulps_close(*p_, *q, ULPS, s), "{t:?} of {src}, {p:?}: {a:?} vs {b:?}");
            }
            // Against central differences: of the function (Jacobians) or of its dense
            // Jacobian, itself checked above against the dense `jacrev` (Hessian).
            let g = if t == Transform::Hessian {
                jacrev(&f, &o, &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"))
            } else {
                f.clone()
            };
            for j in 0..4 {
                let h = fd_step(x[j]);
                let (mut xp, mut xm) = (x, x);
                xp[j] += h;
                xm[j] -= h;
                let yp = flat(&eval(&env, &g, &[rng_value(&p), arr(&xp), Value::F(0.8)]));
                let ym = flat(&eval(&env, &g, &[rng_value(&p), arr(&xm), Value::F(0.8)]));
                for i in 0..4 {
                    let fd = (yp[i] - ym[i]) / (xp[j] - xm[j]);
                    assert!(
                        fd_close(a[4 * i + j], fd),
                        "{t:?} of {src}, {p:?}: ({i}, {j}): {} vs {fd}",
                        a[4 * i + j]
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3, 4. Batching: `randomness = "different"` and `"same"`.
// ---------------------------------------------------------------------------------------

/// Batch sizes around the lane counts (4 and 8).
const SIZES: [usize; 8] = [0, 1, 3, 4, 5, 7, 8, 9];

/// A larger batch, run on four lanes only.
const LARGE: usize = 1023;

/// Sample `i`'s value of parameter `p` of type `t` (floats and arrays of them): the corpus'
/// samples (zeros, both signs, values on each side of the conditions), shifted per
/// parameter and element, drifting slowly over a large batch.
fn sample(t: &Ty, p: usize, i: usize) -> Value {
    match t {
        Ty::Array(e, n) => {
            let n = n.lit().unwrap_or(0) as usize;
            Value::Arr((0..n).map(|j| sample(e, p * 7 + j + 1, i)).collect())
        }
        _ => {
            let k = i * (p + 1) + 3 * p;
            let s = SAMPLES[k % SAMPLES.len()] + (k / SAMPLES.len()) as f64 * 0.0625;
            Value::F(if p.is_multiple_of(2) { s } else { -0.5 * s })
        }
    }
}

/// `f` (whose parameter 0 is the generator) batched over the parameters `batched` says,
/// the generator batched (`randomness = "different"`) or shared (`"same"`), run over
/// batches of each size in chunks of `lanes` samples (the last chunk padded with its last
/// sample, its generators `rng.sample(start + l)` past the batch's end as the runtime's
/// `RngLanes`), against `f` per sample, bit for bit: sample `i` draws from `rng.sample(i)`
/// (`"different"`) or from `rng` (`"same"`), for each generator `rng` of `gens`. The batch of
/// [`LARGE`] samples only with `large`. Gives the values of the batch of 9 samples, per
/// generator.
fn check_batch(f: &Func, batched: &[bool], gens: &[RngPath], large: bool, what: &str) -> Vec<Vec<Value>> {
    assert_eq!(f.params[0].ty, Ty::Rng, "{what}");
    let different = batched[0];
    let k = batch(
        f,
        &BatchSpec {
            batched: batched.to_vec(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let want_ty = if different {
        Ty::Lanes(Box::new(Ty::Rng))
    } else {
        Ty::Rng
    };
    assert_eq!(k.params[0].ty, want_ty, "{what}");
    let mut all = Vec::new();
    for p in gens {
        let gen_of = |i: usize| if different { sampled(p, i) } else { p.clone() };
        let args = |i: usize| -> Vec<Value> {
            f.params
                .iter()
                .enumerate()
                .map(|(q, par)| match q {
                    0 => rng_value(&gen_of(i)),
                    _ => sample(&par.ty, q, if batched[q] { i } else { 0 }),
                })
                .collect()
        };
        for lanes in [4, 8] {
            let env = Env { lanes, ..env() };
            let sizes = SIZES.iter().copied().chain((large && lanes == 4).then_some(LARGE));
            for n in sizes {
                let want: Vec<Value> = (0..n).map(|i| eval(&env, f, &args(i))).collect();
                for start in (0..n).step_by(lanes) {
                    let m = lanes.min(n - start);
                    let per_lane: Vec<Vec<Value>> = (0..lanes).map(|l| args(start + l.min(m - 1))).collect();
                    let packed: Vec<Value> = (0..f.params.len())
                        .map(|q| match q {
                            0 if different => Value::L((0..lanes).map(|l| rng_value(&sampled(p, start + l))).collect()),
                            0 => rng_value(p),
                            _ if batched[q] => pack(&per_lane.iter().map(|a| a[q].clone()).collect::<Vec<_>>()),
                            _ => per_lane[0][q].clone(),
                        })
                        .collect();
                    let got = env
                        .eval(&k, &packed)
                        .unwrap_or_else(|e| panic!("{what}: kernel, {lanes} lanes: {e}"));
                    for l in 0..m {
                        assert_eq!(
                            bits(&lane(&got, l)),
                            bits(&want[start + l]),
                            "{what}: batch of {n}, sample {} ({lanes} lanes), {p:?}, args {:?}",
                            start + l,
                            per_lane[l]
                        );
                    }
                }
                if lanes == 4 && n == 9 {
                    all.push(want);
                }
            }
        }
    }
    all
}

/// Whether the samples' values differ between samples (the draws of `"different"`), for
/// the given generators' values.
fn varies(values: &[Vec<Value>]) -> bool {
    values.iter().all(|v| v.windows(2).any(|w| bits(&w[0]) != bits(&w[1])))
}

/// The batch flags of `f`: the generator (`different`), then every float parameter batched
/// but `w` (the last scalar one of `(rng, x, w)`), and every tangent and cotangent batched.
fn flags(f: &Func, different: bool) -> Vec<bool> {
    (0..f.params.len())
        .map(|q| if q == 0 { different } else { q != 2 })
        .collect()
}

/// `vmap(f)` with `randomness = "different"`: each lane draws from its sample's generator.
/// The draws make the samples' values differ from those of `"same"` (where every sample
/// draws the same numbers): a kernel that shared one generator, or took lane 0's, fails.
#[test]
fn different_randomness_gives_each_sample_its_generators_draws() {
    for src in SCALAR.iter().chain(VECTOR) {
        let f = lowered(src);
        let gens = &generators()[1..4];
        let different = check_batch(&f, &flags(&f, true), gens, true, src);
        let same = check_batch(&f, &flags(&f, false), gens, true, &format!("same: {src}"));
        assert_ne!(
            different.iter().flatten().map(bits).collect::<Vec<_>>(),
            same.iter().flatten().map(bits).collect::<Vec<_>>(),
            "{src}"
        );
    }
}

/// `vmap(f)` with only the generator batched: the samples differ by their draws alone.
#[test]
fn different_randomness_alone_makes_samples_differ() {
    let src = "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut s = 0.0; for i in 0..3 { s += rng.normal(2 * i + 1) * x[i] + rng.fold_in(4).uniform(i) * w; } s }";
    let f = lowered(src);
    let gens = generators();
    let values = check_batch(&f, &[true, false, false], &gens, false, src);
    assert!(varies(&values), "{src}");
    let values = check_batch(&f, &[false, false, false], &gens, false, &format!("same: {src}"));
    assert!(
        values.iter().all(|v| v.windows(2).all(|w| bits(&w[0]) == bits(&w[1]))),
        "same: {src}"
    );
}

/// `vmap` of generated functions with `randomness = "different"` and `"same"`: `grad`
/// (and in its emitted final form), `grad_and_value`, `hessian`, `jacfwd`, `jacrev` and the
/// user-facing `jvp` and `vjp` (tangents and cotangents batched): each sample's forward and
/// reverse passes draw their sample's numbers.
#[test]
fn batched_generated_functions_draw_each_samples_numbers() {
    let rules = RuleTable::standard();
    for src in SCALAR.iter().chain(VECTOR) {
        let f = lowered(src);
        let mut gs = Vec::new();
        if f.ret_ty.is_float() {
            for final_pass in [false, true] {
                let g = grad_pass(
                    &f,
                    &options(Transform::Grad, &[1, 2]),
                    &site(),
                    &rules,
                    false,
                    final_pass,
                )
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
                gs.push((format!("grad (final pass: {final_pass})"), g));
            }
            let gv = grad_pass(&f, &options(Transform::GradAndValue, &[1]), &site(), &rules, true, true)
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
            gs.push(("grad_and_value".into(), gv));
            let h = hessian(&f, &options(Transform::Hessian, &[1]), &site(), &rules)
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
            gs.push(("hessian".into(), h));
        } else {
            let j = jacfwd(&f, &options(Transform::Jacfwd, &[1]), &site(), &rules)
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
            gs.push(("jacfwd".into(), j));
            let j = jacrev(&f, &options(Transform::Jacrev, &[1]), &site(), &rules)
                .unwrap_or_else(|e| panic!("{src}: {e:?}"));
            gs.push(("jacrev".into(), j));
        }
        let o = |t| Options::new(t, Span::call_site());
        let j = jvp_user(&f, &o(Transform::Jvp), &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        gs.push(("jvp".into(), j));
        let (v, _) = vjp_user(&f, &o(Transform::Vjp), &site(), &rules, "f_vjp".into(), false)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"));
        gs.push(("vjp".into(), v));
        // (One generator, derived by `fold_in` and `sample`; the large batch for the
        // gradient as emitted.)
        let gens = &generators()[4..];
        for (what, g) in gs {
            let large = what == "grad (final pass: true)";
            let different = check_batch(&g, &flags(&g, true), gens, large, &format!("{what} of {src}"));
            assert!(varies(&different), "{what} of {src}: the samples' draws are the same");
            check_batch(&g, &flags(&g, false), gens, large, &format!("same: {what} of {src}"));
        }
    }
}

/// A generator chosen under a condition that differs between samples (`r` reassigned in a
/// batched `if`): with `randomness = "different"` each lane selects its own sample's
/// generator, and the kernel and its `grad` give each sample's value; with `"same"` the
/// shared generator would have to become lanes, which batching reports as an error rather
/// than a wrong kernel.
#[test]
fn generators_chosen_under_a_batched_condition() {
    let rules = RuleTable::standard();
    let src = "fn f(rng: &Rng, x: [f64; 3], w: f64) -> f64 { let mut r = rng.fold_in(1); let mut s = w; for i in 0..3 { if x[i] > 0.0 { r = r.fold_in(i as u64); } s = s * x[i] + r.normal(i); } s * r.uniform(9) }";
    let f = lowered(src);
    let g = grad_pass(&f, &options(Transform::Grad, &[1]), &site(), &rules, false, true)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let gens = &generators()[1..3];
    for (what, f) in [("", &f), ("grad of ", &g)] {
        let values = check_batch(f, &flags(f, true), gens, true, &format!("{what}{src}"));
        assert!(varies(&values), "{what}{src}");
        // `"same"`: the shared generator splatted where the batched condition selects.
        let values = check_batch(f, &flags(f, false), gens, false, &format!("{what}{src}"));
        assert!(varies(&values), "{what}{src}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Draws are distinct constants.
// ---------------------------------------------------------------------------------------

/// Draws at different counters, kinds and generators are different numbers, in the function
/// and in its derivatives (two draws merged, or one taken for another, give other values),
/// and a draw contributes no derivative of its own: each value below is the closed form
/// computed from the runtime's draws.
#[test]
fn draws_are_distinct_constants_without_derivatives() {
    let rules = RuleTable::standard();
    let env = env();
    let src = "fn f(rng: &Rng, x: f64) -> f64 { let a = rng.uniform(0); let b = rng.uniform(1); let c = rng.normal(0); let d = rng.fold_in(1).uniform(0); let e = rng.fold_in(2).uniform(0); a * x + b * x * x + c * x * x * x + d + e * (x * x).sin() }";
    let f = lowered(src);
    let g = grad(&f, &options(Transform::Grad, &[1]), &site(), &rules, false).unwrap_or_else(|e| panic!("{e:?}"));
    let h = hessian(&f, &options(Transform::Hessian, &[1]), &site(), &rules).unwrap_or_else(|e| panic!("{e:?}"));
    let jv = jvp_user(&f, &Options::new(Transform::Jvp, Span::call_site()), &site(), &rules)
        .unwrap_or_else(|e| panic!("{e:?}"));
    for p in generators() {
        let r = runtime_rng(&p);
        let (a, b, c, d, e) = (
            r.uniform(0),
            r.uniform(1),
            r.normal(0),
            r.fold_in(1).uniform(0),
            r.fold_in(2).uniform(0),
        );
        let draws = [a, b, c, d, e];
        for (i, u) in draws.iter().enumerate() {
            for v in &draws[i + 1..] {
                assert_ne!(u, v, "{p:?}: two draws are equal");
            }
        }
        for x in [0.7, -1.3, 2.0] {
            let y = a * x + b * x * x + c * x * x * x + d + e * (x * x).sin();
            let dy = a + 2.0 * b * x + 3.0 * c * x * x + e * (x * x).cos() * 2.0 * x;
            let d2y = 2.0 * b + 6.0 * c * x + e * (2.0 * (x * x).cos() - 4.0 * x * x * (x * x).sin());
            let args = [rng_value(&p), Value::F(x)];
            let close = |got: f64, want: f64| ulps_close(got, want, ULPS, 1.0);
            let got = eval(&env, &f, &args).f().unwrap();
            assert!(close(got, y), "{p:?}, x = {x}: value {got} vs {y}");
            let got = flat(&eval(&env, &g, &args));
            assert!(
                got.len() == 1 && close(got[0], dy),
                "{p:?}, x = {x}: grad {got:?} vs {dy}"
            );
            let got = flat(&eval(&env, &h, &args));
            assert!(
                got.len() == 1 && close(got[0], d2y),
                "{p:?}, x = {x}: hessian {got:?} vs {d2y}"
            );
            let got = flat(&eval(&env, &jv, &[rng_value(&p), Value::F(x), Value::F(-2.0)]));
            assert!(
                got.len() == 2 && close(got[0], y) && close(got[1], -2.0 * dy),
                "{p:?}, x = {x}: jvp {got:?} vs ({y}, {})",
                -2.0 * dy
            );
        }
    }
}

/// A function of draws alone has a zero derivative, exactly; a draw added to `x` leaves the
/// derivative 1 and scales nothing.
#[test]
fn draws_alone_have_zero_derivatives() {
    let rules = RuleTable::standard();
    let env = env();
    for (src, want) in [
        ("fn f(rng: &Rng, x: f64) -> f64 { rng.normal(0) * rng.uniform(1) + x * 0.0 }", 0.0),
        ("fn f(rng: &Rng, x: f64) -> f64 { x + rng.normal(0) }", 1.0),
        ("fn f(rng: &Rng, x: f64) -> f64 { let mut s = x; for i in 0..4 { s += rng.fold_in(i as u64).normal(2 * i + 1); } s }", 1.0),
    ] {
        let f = lowered(src);
        let g = grad(&f, &options(Transform::Grad, &[1]), &site(), &rules, false)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let h = hessian(&f, &options(Transform::Hessian, &[1]), &site(), &rules)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"));
        for p in generators() {
            for x in [0.5, -3.0] {
                let args = [rng_value(&p), Value::F(x)];
                assert_eq!(flat(&eval(&env, &g, &args)), [want], "{src}, {p:?}");
                assert_eq!(flat(&eval(&env, &h, &args)), [0.0], "{src}, {p:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. What `vmap`'s `randomness` reports (the expansion's errors, checked without rustc).
// ---------------------------------------------------------------------------------------

/// The sites `vmap`'s default `randomness = "error"` reports are the draws (`uniform`,
/// `normal`, ..), not the derived generators (`fold_in`, `sample`).
#[test]
fn only_draws_are_recorded_as_draw_sites() {
    let f = lowered("fn f(rng: &Rng, x: f64) -> f64 { x * rng.fold_in(1).uniform(0) + rng.sample(2).normal(1) }");
    assert_eq!(f.draws.len(), 2);
    let g = lowered("fn f(rng: &Rng, x: f64) -> f64 { let r = rng.fold_in(1).sample(3); x * 2.0 }");
    assert!(g.draws.is_empty());
}

/// Under `vmap` without `randomness` (or with `"error"`) a function that draws, or that only
/// takes a generator, is an error naming the generator (the expansion's `compile_error!`);
/// `"different"` and `"same"` expand.
#[test]
fn vmap_without_randomness_refuses_generators() {
    use fluxion_engine::expand::expand_item_text;
    let draws = "fn f(rng: &Rng, x: f64) -> f64 { x * rng.uniform(0) }";
    let takes = "fn f(rng: &Rng, x: f64) -> f64 { 2.0 * x }";
    for body in [draws, takes] {
        for attr in [
            "#[vmap(in_dims = (None, 0))]",
            "#[vmap(in_dims = (None, 0), randomness = \"error\")]",
        ] {
            let src = format!("{attr} {body}");
            let e = expand_item_text(&src, None).unwrap_or_else(|e| e);
            assert!(
                e.contains("compile_error! {\n    \"`f` draws random numbers from `rng`"),
                "{src}: {e}"
            );
        }
        for r in ["different", "same"] {
            let src = format!("#[vmap(in_dims = (None, 0), randomness = \"{r}\")] {body}");
            let text = expand_item_text(&src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert!(!text.contains("compile_error!"), "{src}: {text}");
        }
    }
}

/// Only `Rng` itself (no generic arguments) is a generator: another type the macro does not
/// know, with or without generic arguments, is an error, not a generator.
#[test]
fn only_rng_is_a_generator() {
    for (src, what) in [
        ("fn f(p: Params, x: f64) -> f64 { x }", "unsupported type `Params`"),
        ("fn f(p: Rng<u8>, x: f64) -> f64 { x }", "unsupported type `Rng<u8>`"),
        (
            "fn f(z: Complex64, x: f64) -> f64 { x }",
            "complex numbers are not supported",
        ),
    ] {
        let e = lower(src).expect_err(src);
        assert!(e.contains(what), "{src}: {e}");
    }
}

/// A draw's counter is an integer: a float or a generator as the counter is an error naming
/// its type (`Ty`'s `Display`).
#[test]
fn a_counter_of_another_type_is_an_error_naming_it() {
    for (src, what) in [
        (
            "fn f(rng: &Rng, x: f64) -> f64 { x * rng.normal(x) }",
            "the counter of `normal` is an integer (a loop index, `2 * i + 1`), not `f64`",
        ),
        (
            "fn f(rng: &Rng, r: Rng, x: f64) -> f64 { x * rng.uniform(r) }",
            "not `Rng`",
        ),
        (
            "fn f(rng: &Rng, x: [f32; 2]) -> f32 { rng.fold_in(x) * x[0] }",
            "not `[f32; 2]`",
        ),
    ] {
        let e = lower(src).expect_err(src);
        assert!(e.contains(what), "{src}: {e}");
    }
}
