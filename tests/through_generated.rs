//! Generated functions are themselves differentiable: a loss that calls `model_jacrev`
//! (forces) can be `#[grad]`-ed, which is reverse over reverse, as the Lennard-Jones
//! flagship trains on forces.

use approx::assert_abs_diff_eq;
use fluxion::{grad, jacrev};

/// A tiny "model": energy of a distance with two parameters.
#[jacrev(argnums = 0)]
fn model(r: f64, a: f64, b: f64) -> f64 {
    a * (b * r).tanh() + 0.5 * r * r
}

/// Force-matching loss: the model's force -dE/dr against a target, as a function of the
/// parameters; its gradient differentiates through `model_jacrev`.
#[grad(argnums = (1, 2))]
fn force_loss(r: f64, a: f64, b: f64, target: f64) -> f64 {
    let f = -model_jacrev(r, a, b);
    (f - target) * (f - target)
}

fn fd<F: Fn(f64) -> f64>(f: F, x: f64) -> f64 {
    let h = 1e-6 * x.abs().max(1.0);
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn grad_through_a_generated_jacobian() {
    let (r, a, b, t): (f64, f64, f64, f64) = (0.7, 1.3, 0.8, -0.4);
    // dE/dr = a b sech²(b r) + r, closed form.
    let s = 1.0 / (b * r).cosh();
    assert_abs_diff_eq!(model_jacrev(r, a, b), a * b * s * s + r, epsilon = 1e-14);
    let (da, db) = force_loss_grad(r, a, b, t);
    let fa = fd(|a| force_loss(r, a, b, t), a);
    let fb = fd(|b| force_loss(r, a, b, t), b);
    assert_abs_diff_eq!(da, fa, epsilon = 1e-7 * (1.0 + fa.abs()));
    assert_abs_diff_eq!(db, fb, epsilon = 1e-7 * (1.0 + fb.abs()));
}

/// Width of the small network below: a named constant, so the macro cannot see the size of
/// its tapes, and rustc stores them (`TapeStorage`).
const W: usize = 3;

/// A one-hidden-layer network whose energy and force are trained on: `net_grad_and_value`
/// returns `(dE/dr, E)`, and its split companions pass tapes sized by `W` as residuals.
/// The hidden layer starts as `[0.0; W]`: a literal array whose float type is the one of
/// the values stored into it.
#[fluxion::grad_and_value(argnums = 0)]
fn net(r: f64, w: &[f64; W], v: &[f64; W]) -> f64 {
    let mut h = [0.0; W];
    for i in 0..W {
        h[i] = (w[i] * r).tanh();
    }
    let mut e = 0.0;
    for i in 0..W {
        e += v[i] * h[i];
    }
    e
}

/// Energy and force matching over `N` points: each point's `net_grad_and_value` is run
/// again in the reverse sweep (its value is not needed otherwise).
#[grad(argnums = (1, 2))]
fn net_loss<const N: usize>(r: &[f64; N], w: &[f64; W], v: &[f64; W], e_true: &[f64; N], f_true: &[f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        let (de_dr, e) = net_grad_and_value(r[i], w, v);
        let de = e - e_true[i];
        let df = -de_dr - f_true[i];
        s += de * de + 0.1 * df * df;
    }
    s
}

/// The same, with the loss's value kept (`grad_and_value`): the calls in the forward sweep
/// stay, and the reverse sweep runs them again.
#[fluxion::grad_and_value(argnums = (1, 2))]
fn net_loss_kept<const N: usize>(r: &[f64; N], w: &[f64; W], v: &[f64; W], e_true: &[f64; N]) -> f64 {
    let mut s: f64 = 0.0;
    for i in 0..N {
        let (de_dr, e) = net_grad_and_value(r[i] * s.tanh() + r[i], w, v);
        s += (e - e_true[i]) * de_dr;
    }
    s
}

#[test]
fn training_through_grad_and_value_with_tapes_sized_by_a_constant() {
    let r = [0.5, 0.8, 1.1, 1.7];
    let (w, v) = ([0.9, -1.2, 0.4], [0.3, 0.8, -1.1]);
    let (e_true, f_true) = ([0.1, -0.2, 0.05, 0.3], [1.0, -0.5, 0.2, 0.0]);
    let (gw, gv) = net_loss_grad(&r, &w, &v, &e_true, &f_true);
    let ((kw, kv), value) = net_loss_kept_grad_and_value(&r, &w, &v, &e_true);
    assert_eq!(value.to_bits(), net_loss_kept(&r, &w, &v, &e_true).to_bits());
    for k in 0..W {
        let at = |a: [f64; W], x: f64| {
            let mut a = a;
            a[k] = x;
            a
        };
        let fw = fd(|x| net_loss(&r, &at(w, x), &v, &e_true, &f_true), w[k]);
        let fv = fd(|x| net_loss(&r, &w, &at(v, x), &e_true, &f_true), v[k]);
        assert_abs_diff_eq!(gw[k], fw, epsilon = 1e-7 * (1.0 + fw.abs()));
        assert_abs_diff_eq!(gv[k], fv, epsilon = 1e-7 * (1.0 + fv.abs()));
        let fw = fd(|x| net_loss_kept(&r, &at(w, x), &v, &e_true), w[k]);
        let fv = fd(|x| net_loss_kept(&r, &w, &at(v, x), &e_true), v[k]);
        assert_abs_diff_eq!(kw[k], fw, epsilon = 1e-7 * (1.0 + fw.abs()));
        assert_abs_diff_eq!(kv[k], fv, epsilon = 1e-7 * (1.0 + fv.abs()));
    }
}

/// Wide enough that a tape of it (20 000 `f32`, 80 KB) lives on the heap: the residuals of
/// `wide_grad_and_value`'s split companions hold `Vec`s.
const WIDE: usize = 20_000;

/// `f32` throughout, from a literal array: the residuals' types are written as `f32`.
#[fluxion::grad_and_value(argnums = 0)]
fn wide(r: f32, w: &[f32; WIDE]) -> f32 {
    let mut h = [0.0; WIDE];
    for i in 0..WIDE {
        h[i] = (w[i] * r).sin();
    }
    let mut e = 0.0;
    for i in 0..WIDE {
        e += h[i] * h[i];
    }
    e
}

#[grad(argnums = 1)]
fn wide_loss(r: &[f32; 2], w: &[f32; WIDE]) -> f32 {
    let mut s = 0.0;
    for i in 0..2 {
        let (de_dr, e) = wide_grad_and_value(r[i], w);
        s += de_dr * e;
    }
    s
}

#[test]
fn training_through_grad_and_value_with_heap_tapes_of_f32() {
    // On a 2 MiB thread: the 80 KB tapes and residuals are not stack arrays.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let r = [0.3f32, 0.7];
            let w: [f32; WIDE] = std::array::from_fn(|i| (i as f32 * 0.37).sin());
            let g = wide_loss_grad(&r, &w);
            // In f64, by hand: s = Σ_p (dE/dr)·E with E = Σ sin²(w r), dE/dr = Σ 2 sin cos w.
            for k in [0, 17, 4321, WIDE - 1] {
                let mut want = 0.0f64;
                for &rp in &r {
                    let rp = rp as f64;
                    let (mut e, mut d) = (0.0f64, 0.0f64);
                    for wi in w.iter().map(|w| *w as f64) {
                        e += (wi * rp).sin().powi(2);
                        d += 2.0 * (wi * rp).sin() * (wi * rp).cos() * wi;
                    }
                    let wk = w[k] as f64;
                    let (s, c) = ((wk * rp).sin(), (wk * rp).cos());
                    // ∂E/∂w_k = 2 s c r, ∂(dE/dr)/∂w_k = 2 (c² - s²) w_k r + 2 s c.
                    let de = 2.0 * s * c * rp;
                    let dd = 2.0 * (c * c - s * s) * wk * rp + 2.0 * s * c;
                    want += dd * e + d * de;
                }
                let got = g[k] as f64;
                assert!(
                    (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "w[{k}]: {got} against {want}"
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The in-place reverse half of a split call: `vjp_bwd_acc` adds each parameter's cotangent
/// into the caller's accumulator. From zero accumulators it gives `vjp_bwd`'s cotangents bit
/// for bit (the same additions, into the caller's buffers); from others, their sum.
#[test]
fn the_in_place_reverse_half_adds_the_cotangents_of_vjp_bwd() {
    let (r, w, v) = (0.7, [0.9, -1.2, 0.4], [0.3, 0.8, -1.1]);
    let ct = (0.6, -1.3);
    let (_, res) = <net_grad_and_value>::vjp_fwd(r, &w, &v);
    let bars = <net_grad_and_value>::vjp_bwd(r, &w, &v, res, ct);
    let (mut rb, mut wb, mut vb) = (0.0, [0.0; W], [0.0; W]);
    let (_, res) = <net_grad_and_value>::vjp_fwd(r, &w, &v);
    <net_grad_and_value>::vjp_bwd_acc(r, &w, &v, res, ct, &mut rb, &mut wb, &mut vb);
    assert_eq!(rb.to_bits(), bars.0.to_bits());
    assert_eq!(wb.map(f64::to_bits), bars.1.map(f64::to_bits));
    assert_eq!(vb.map(f64::to_bits), bars.2.map(f64::to_bits));
    assert!(wb.iter().chain(&vb).all(|x| *x != 0.0), "{wb:?} {vb:?}");
    let (mut rb, mut wb, mut vb) = (2.0, [1.0, -3.0, 0.5], [-0.25, 4.0, 1.5]);
    let start = (rb, wb, vb);
    let (_, res) = <net_grad_and_value>::vjp_fwd(r, &w, &v);
    <net_grad_and_value>::vjp_bwd_acc(r, &w, &v, res, ct, &mut rb, &mut wb, &mut vb);
    assert_abs_diff_eq!(rb, start.0 + bars.0, epsilon = 1e-14);
    for k in 0..W {
        assert_abs_diff_eq!(wb[k], start.1[k] + bars.1[k], epsilon = 1e-14);
        assert_abs_diff_eq!(vb[k], start.2[k] + bars.2[k], epsilon = 1e-14);
    }
}

/// Width of the arrays of the loss below.
const K: usize = 3;

/// A layer called in a loop: its arrays' cotangents are added into the loss's accumulators.
#[fluxion::differentiable]
fn layer(x: f64, w: &[f64; K], b: &[f64; K]) -> f64 {
    let mut s = 0.0;
    for i in 0..K {
        s += (w[i] * x + b[i]).tanh();
    }
    s
}

/// An integer array beside a float one: its cotangent slot is a `[(); 2]`.
#[fluxion::differentiable]
fn pick(w: &[f64; K], idx: &[usize; 2]) -> f64 {
    let a = w[idx[0]];
    let b = w[idx[1]];
    a * b
}

/// A custom rule over arrays: its `vjp_bwd_acc` is derived from its `vjp`.
#[fluxion::custom_rule(vjp = dot_vjp)]
fn dot(x: &[f64; K], y: &[f64; K]) -> f64 {
    x[0] * y[0] + x[1] * y[1] + x[2] * y[2]
}

fn dot_vjp(x: &[f64; K], y: &[f64; K], ct: f64) -> (f64, ([f64; K], [f64; K])) {
    (dot(x, y), (y.map(|v| v * ct), x.map(|v| v * ct)))
}

/// Arrays passed by reference, by value and twice to one call, a local array, an integer
/// array and a custom rule, in a loop and out of it: the gradient through the in-place
/// reverse halves against finite differences.
#[grad(argnums = (0, 1))]
fn mixed_loss(w: &[f64; K], u: [f64; K], idx: &[usize; 2]) -> f64 {
    let mut s = 0.0;
    for i in 0..K {
        s += layer(i as f64 * 0.5, w, &u) * layer(0.3, w, w);
    }
    let v = [u[0] * w[1], u[1], w[2] * w[2]];
    s + dot(w, &v) + pick(w, idx) * layer(s, &v, &u)
}

#[test]
fn gradients_through_in_place_reverse_halves_match_finite_differences() {
    let (w, u, idx) = ([0.4, -0.7, 0.9], [0.2, 0.5, -0.3], [2, 0]);
    let (gw, gu) = mixed_loss_grad(&w, u, &idx);
    let mut out = ([0.0; K], [0.0; K]);
    mixed_loss_grad_into(&w, u, &idx, &mut out);
    assert_eq!(
        (out.0.map(f64::to_bits), out.1.map(f64::to_bits)),
        (gw.map(f64::to_bits), gu.map(f64::to_bits))
    );
    for k in 0..K {
        let at = |a: [f64; K], x: f64| {
            let mut a = a;
            a[k] = x;
            a
        };
        let fw = fd(|x| mixed_loss(&at(w, x), u, &idx), w[k]);
        let fu = fd(|x| mixed_loss(&w, at(u, x), &idx), u[k]);
        assert_abs_diff_eq!(gw[k], fw, epsilon = 1e-7 * (1.0 + fw.abs()));
        assert_abs_diff_eq!(gu[k], fu, epsilon = 1e-7 * (1.0 + fu.abs()));
    }
}
