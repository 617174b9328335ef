//! Review cases of differentiating through a batch (`f_vmap`'s companions): `f32` on 8
//! lanes, by-reference batched arrays, shared integers, const generics, parameter names
//! that the generated code also uses, tuple outputs, calls inside the per-sample
//! function, and loops (taped residuals). Each checked against the same loss over
//! per-sample calls.

use fluxion::{grad, vmap};

const SIZES: [usize; 10] = [0, 1, 3, 4, 5, 7, 8, 9, 17, 1027];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn pts(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| -1.5 + 3.0 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

// f32: 8 lanes.

#[vmap(in_dims = (None, 0))]
fn m32(p: [f32; 2], x: f32) -> f32 {
    p[0] * (p[1] * x).tanh() + x * x * p[1]
}

#[grad(argnums = 0)]
fn l32(p: [f32; 2], xs: &[f32]) -> f32 {
    let e = m32_vmap(p, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i] * e[i];
    }
    s
}

#[grad(argnums = 0)]
fn l32_ref(p: [f32; 2], xs: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..xs.len() {
        let e = m32(p, xs[i]);
        s += e * e;
    }
    s
}

#[test]
fn f32_on_eight_lanes() {
    let p = [0.7f32, -1.2];
    for n in SIZES {
        let xs: Vec<f32> = pts(n).iter().map(|&v| v as f32).collect();
        let g = l32_grad(p, &xs);
        let r = l32_ref_grad(p, &xs);
        for k in 0..2 {
            assert!(
                close(g[k] as f64, r[k] as f64, 1e-4),
                "n = {n}, k = {k}: {} vs {}",
                g[k],
                r[k]
            );
        }
    }
}

// A batched argument by reference, a shared one by value, two batched arguments.

#[vmap(in_dims = (0, None, 0))]
fn bref(x: &[f64; 2], w: [f64; 2], s: f64) -> f64 {
    (w[0] * x[0] + w[1] * x[1] * s).sin() * s
}

#[grad(argnums = (0, 1, 2))]
fn lbref(xs: &[[f64; 2]], w: [f64; 2], ss: &[f64]) -> f64 {
    let e = bref_vmap(xs, w, ss);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = (0, 1, 2))]
fn lbref_ref(xs: &[[f64; 2]], w: [f64; 2], ss: &[f64]) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = bref(&xs[i], w, ss[i]);
        t += e * e;
    }
    t
}

#[test]
fn batched_by_reference_and_two_batched() {
    for n in SIZES {
        let x = pts(n);
        let xs: Vec<[f64; 2]> = x.iter().map(|&v| [v, 0.3 - v]).collect();
        let ss: Vec<f64> = x.iter().map(|&v| 1.0 + 0.1 * v).collect();
        let w = [0.4, -0.9];
        let (gx, gw, gs) = lbref_grad(&xs, w, &ss);
        let (rx, rw, rs) = lbref_ref_grad(&xs, w, &ss);
        assert_eq!(gx.len(), n);
        assert_eq!(gs.len(), n);
        for i in 0..n {
            assert!(close(gx[i][0], rx[i][0], 1e-14) && close(gx[i][1], rx[i][1], 1e-14));
            assert!(close(gs[i], rs[i], 1e-14));
        }
        for k in 0..2 {
            assert!(close(gw[k], rw[k], 1e-12), "n = {n}: {gw:?} vs {rw:?}");
        }
    }
}

// A shared integer argument (an exponent and a loop bound).

#[vmap(in_dims = (None, None, 0))]
fn powk(p: [f64; 3], k: usize, x: f64) -> f64 {
    let mut s = 0.0;
    for j in 0..k {
        s += p[j % 3] * x.powi(j as i32);
    }
    s
}

#[grad(argnums = 0)]
fn lpowk(p: [f64; 3], k: usize, xs: &[f64]) -> f64 {
    let e = powk_vmap(p, k, xs);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = 0)]
fn lpowk_ref(p: [f64; 3], k: usize, xs: &[f64]) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = powk(p, k, xs[i]);
        t += e * e;
    }
    t
}

#[test]
fn shared_integer() {
    for n in SIZES {
        let xs = pts(n);
        let g = lpowk_grad([0.5, 1.5, -0.25], 4, &xs);
        let r = lpowk_ref_grad([0.5, 1.5, -0.25], 4, &xs);
        for k in 0..3 {
            assert!(close(g[k], r[k], 1e-12), "n = {n}: {g:?} vs {r:?}");
        }
    }
}

// Const generics.

#[vmap(in_dims = (None, 0))]
fn cg<const N: usize>(p: [f64; N], x: f64) -> f64 {
    let mut s = 0.0;
    for j in 0..N {
        s = (s + p[j] * x).tanh();
    }
    s
}

#[grad(argnums = 0)]
fn lcg<const N: usize>(p: [f64; N], xs: &[f64]) -> f64 {
    let e = cg_vmap(p, xs);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i];
    }
    t
}

#[grad(argnums = 0)]
fn lcg_ref<const N: usize>(p: [f64; N], xs: &[f64]) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += cg(p, xs[i]);
    }
    t
}

#[test]
fn const_generic_batch() {
    for n in SIZES {
        let xs = pts(n);
        let p = [0.3, -0.7, 1.1, 0.2, 0.9];
        let g = lcg_grad(p, &xs);
        let r = lcg_ref_grad(p, &xs);
        for k in 0..5 {
            assert!(close(g[k], r[k], 1e-12), "n = {n}: {g:?} vs {r:?}");
        }
    }
}

// Parameter names the generated code uses.

#[vmap(in_dims = (None, 0, None))]
fn names(ct: [f64; 2], residuals: f64, __n: f64) -> f64 {
    ct[0] * residuals * residuals + ct[1] * __n * residuals
}

#[grad(argnums = (0, 2))]
fn lnames(ct: [f64; 2], xs: &[f64], p0: f64) -> f64 {
    let e = names_vmap(ct, xs, p0);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = (0, 2))]
fn lnames_ref(ct: [f64; 2], xs: &[f64], p0: f64) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = names(ct, xs[i], p0);
        t += e * e;
    }
    t
}

#[test]
fn generated_names_as_parameters() {
    for n in SIZES {
        let xs = pts(n);
        let (g, gz) = lnames_grad([0.3, -0.7], &xs, 1.25);
        let (r, rz) = lnames_ref_grad([0.3, -0.7], &xs, 1.25);
        for k in 0..2 {
            assert!(close(g[k], r[k], 1e-12), "n = {n}: {g:?} vs {r:?}");
        }
        assert!(close(gz, rz, 1e-12), "n = {n}: {gz} vs {rz}");
    }
}

// A call inside the per-sample function.

#[fluxion::differentiable]
fn inner_act(x: f64, w: f64) -> f64 {
    (w * x).tanh() * w
}

#[vmap(in_dims = (None, 0))]
fn calls(w: [f64; 2], x: f64) -> f64 {
    inner_act(x, w[0]) + inner_act(x * x, w[1])
}

#[grad(argnums = 0)]
fn lcalls(w: [f64; 2], xs: &[f64]) -> f64 {
    let e = calls_vmap(w, xs);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = 0)]
fn lcalls_ref(w: [f64; 2], xs: &[f64]) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = calls(w, xs[i]);
        t += e * e;
    }
    t
}

#[test]
fn call_inside_the_sample() {
    for n in SIZES {
        let xs = pts(n);
        let g = lcalls_grad([0.8, -0.4], &xs);
        let r = lcalls_ref_grad([0.8, -0.4], &xs);
        for k in 0..2 {
            assert!(close(g[k], r[k], 1e-12), "n = {n}: {g:?} vs {r:?}");
        }
    }
}

// More batched arguments than the runtime's tuples of buffers (`OutSlices`, up to 6):
// `f_vmap` compiled before it had companions; its reverse half's tasks split the
// accumulators of every batched argument together.

#[vmap(in_dims = (None, 0, 0, 0, 0, 0, 0, 0))]
#[allow(clippy::too_many_arguments)]
fn seven(p: f64, a: f64, b: f64, c: f64, d: f64, e: f64, f: f64, g: f64) -> f64 {
    p * (a + b * c + d * e + f * g) * p
}

#[grad(argnums = (0, 2))]
fn lseven(p: f64, xs: &[f64], gs: &[f64]) -> f64 {
    let e = seven_vmap(p, xs, xs, xs, xs, xs, xs, gs);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = (0, 2))]
fn lseven_ref(p: f64, xs: &[f64], gs: &[f64]) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = seven(p, xs[i], xs[i], xs[i], xs[i], xs[i], xs[i], gs[i]);
        t += e * e;
    }
    t
}

#[test]
fn seven_batched_arguments() {
    for n in SIZES {
        let xs = pts(n);
        let gs: Vec<f64> = xs.iter().map(|x| 0.5 - x).collect();
        let (gp, gg) = lseven_grad(1.25, &xs, &gs);
        let (rp, rg) = lseven_ref_grad(1.25, &xs, &gs);
        assert!(close(gp, rp, 1e-12), "n = {n}: {gp} vs {rp}");
        assert_eq!(gg.len(), n);
        for i in 0..n {
            assert!(close(gg[i], rg[i], 1e-14), "n = {n}, sample {i}");
        }
        assert_eq!(seven_vmap(1.25, &xs, &xs, &xs, &xs, &xs, &xs, &gs).len(), n);
    }
}

// Shared arguments without a float cotangent (integers, `bool`) and shared tuples holding
// one: `f_vmap` compiled before it had companions. A loop bound and a flag.

#[vmap(in_dims = (0, None, None, None))]
fn counted(x: f64, k: usize, neg: bool, w: (f64, usize)) -> f64 {
    let mut s = 0.0;
    for j in 0..k {
        s += w.0 * x.powi(2) * (j + w.1) as f64;
    }
    if neg {
        -s
    } else {
        s
    }
}

#[grad(argnums = (0, 3))]
fn lcounted(xs: &[f64], k: usize, neg: bool, w: (f64, usize)) -> f64 {
    let e = counted_vmap(xs, k, neg, w);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i] * e[i];
    }
    t
}

#[grad(argnums = (0, 3))]
fn lcounted_ref(xs: &[f64], k: usize, neg: bool, w: (f64, usize)) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = counted(xs[i], k, neg, w);
        t += e * e * e;
    }
    t
}

#[vmap(in_dims = (0, None))]
fn powk32(x: f32, k: i32) -> f32 {
    x.powi(k) + x
}

/// A shared tuple of five, one of them an integer.
#[vmap(in_dims = (0, None))]
fn five_shared(x: f64, w: (f64, f64, f64, f64, usize)) -> f64 {
    w.0 * x + w.1 * x * x + w.2 + w.3 * w.4 as f64
}

#[grad(argnums = 1)]
fn lfive_shared(xs: &[f64], w: (f64, f64, f64, f64, usize)) -> f64 {
    let e = five_shared_vmap(xs, w);
    let mut t = 0.0;
    for i in 0..xs.len() {
        t += e[i] * e[i];
    }
    t
}

#[grad(argnums = 1)]
fn lfive_shared_ref(xs: &[f64], w: (f64, f64, f64, f64, usize)) -> f64 {
    let mut t = 0.0;
    for i in 0..xs.len() {
        let e = five_shared(xs[i], w);
        t += e * e;
    }
    t
}

#[test]
fn shared_integers_bools_and_tuples() {
    for n in SIZES {
        let xs = pts(n);
        for neg in [false, true] {
            let w = (0.75, 2);
            let (gx, gw) = lcounted_grad(&xs, 3, neg, w);
            let (rx, rw) = lcounted_ref_grad(&xs, 3, neg, w);
            assert!(close(gw.0, rw.0, 1e-12), "n = {n}: {gw:?} vs {rw:?}");
            assert_eq!(gx.len(), n);
            for i in 0..n {
                assert!(close(gx[i], rx[i], 1e-14), "n = {n}, sample {i}");
            }
        }
        let x32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let y = powk32_vmap(&x32, 3);
        for i in 0..n {
            assert_eq!(y[i].to_bits(), powk32(x32[i], 3).to_bits());
        }
        let w = (0.5, -0.25, 1.5, 2.0, 3);
        let g = lfive_shared_grad(&xs, w);
        let r = lfive_shared_ref_grad(&xs, w);
        assert!(
            close(g.0, r.0, 1e-12) && close(g.1, r.1, 1e-12) && close(g.2, r.2, 1e-12) && close(g.3, r.3, 1e-12),
            "n = {n}: {g:?} vs {r:?}"
        );
    }
}
