//! `vmap` through the real macros: each sample's result against the unbatched function
//! (itself generated, for `vmap` of a derivative) called in a loop, for batch sizes around
//! the lane counts (0, 1, 3, 4, 5, 7, 8, 9, 1023), shared arguments, array samples, tuple
//! results, `f32`, branches whose untaken side is NaN or infinite, and mismatched lengths.
//!
//! Arithmetic, `sqrt` and selects are exact on lanes, so those results are compared bit for
//! bit; results through a lane transcendental are compared within the lane functions'
//! documented bound (a few ulp, `ULPS` below).

use fluxion::{grad, grad_and_value, hessian, jacfwd, jvp, vmap};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 9, 1023];

/// Tolerance of results computed through lane transcendentals, in ulps of the result.
const ULPS: f64 = 8.0;

fn close(a: f64, b: f64, ulps: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ulps * f64::EPSILON * a.abs().max(b.abs())
}

/// `n` distances in `[0.5, 1.0)`, not evenly spaced.
fn points(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 0.5 + 0.5 * ((k as f64 * 0.618_033_988_75) % 1.0))
        .collect()
}

const EPS: f64 = 4.0;
const SIGMA: f64 = 0.5;

#[vmap]
#[grad_and_value]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[test]
fn lennard_jones_forces_and_energies_per_sample() {
    for n in SIZES {
        let r = points(n);
        let (g, e) = energy_grad_and_value_vmap(&r);
        assert_eq!((g.len(), e.len()), (n, n));
        for k in 0..n {
            let (gk, ek) = energy_grad_and_value(r[k]);
            assert!(
                close(g[k], gk, ULPS) && close(e[k], ek, ULPS),
                "n = {n}, sample {k}: {:?} vs {:?}",
                (g[k], e[k]),
                (gk, ek)
            );
        }
    }
}

/// Array samples, a shared array by reference, a shared scalar; arithmetic only: exact.
#[vmap(in_dims = (0, None, None))]
fn affine(x: [f64; 3], w: &[[f64; 3]; 2], b: f64) -> [f64; 2] {
    let mut y = [b; 2];
    for i in 0..2 {
        for j in 0..3 {
            y[i] += w[i][j] * x[j];
        }
    }
    y
}

fn affine_plain(x: [f64; 3], w: &[[f64; 3]; 2], b: f64) -> [f64; 2] {
    let mut y = [b; 2];
    for i in 0..2 {
        for j in 0..3 {
            y[i] += w[i][j] * x[j];
        }
    }
    y
}

#[test]
fn array_samples_with_shared_arguments_bit_for_bit() {
    let w = [[0.5, -1.25, 2.0], [3.0, 0.125, -0.75]];
    for n in SIZES {
        let xs: Vec<[f64; 3]> = (0..n)
            .map(|k| [k as f64 * 0.3, -(k as f64), 1.0 / (k as f64 + 1.0)])
            .collect();
        let y = affine_vmap(&xs, &w, 0.25);
        assert_eq!(y.len(), n);
        for k in 0..n {
            assert_eq!(y[k], affine_plain(xs[k], &w, 0.25), "n = {n}, sample {k}");
        }
        // The caller's buffer: every slot overwritten.
        let mut out = vec![[f64::NAN; 2]; n];
        affine_vmap_into(&xs, &w, 0.25, &mut out, None);
        assert_eq!(out, y);
    }
}

/// A branch whose untaken side is NaN (`sqrt` of a negative) or infinite (`1 / 0`) for
/// some samples, and its gradient: each sample gets its own side's value exactly.
#[vmap]
#[grad]
fn safe_sqrt(x: f64) -> f64 {
    if x > 0.0 {
        x.sqrt()
    } else {
        0.0
    }
}

#[vmap]
fn safe_recip(x: f64) -> f64 {
    if x != 0.0 {
        1.0 / x
    } else {
        0.0
    }
}

#[test]
fn untaken_sides_never_reach_a_result() {
    let xs = [-1.0, 4.0, 0.0, -0.0, 2.25, -9.0, 1e-300, f64::INFINITY, -f64::INFINITY];
    let g = safe_sqrt_grad_vmap(&xs);
    for (k, &x) in xs.iter().enumerate() {
        assert_eq!(g[k].to_bits(), safe_sqrt_grad(x).to_bits(), "x = {x}");
    }
    assert_eq!(g[0], 0.0);
    assert_eq!(g[1], 0.25);
    let r = safe_recip_vmap(&xs);
    for (k, &x) in xs.iter().enumerate() {
        let want = if x != 0.0 { 1.0 / x } else { 0.0 };
        assert_eq!(r[k].to_bits(), want.to_bits(), "x = {x}");
    }
}

/// `vmap` of `hessian`, `jacfwd` and `jvp`: per-sample second derivatives, Jacobians and
/// tangents.
#[vmap]
#[hessian]
fn bowl(x: [f64; 2]) -> f64 {
    x[0] * x[0] * x[1] + (x[1] * 0.5).sin()
}

#[vmap]
#[jacfwd]
fn polar(x: [f64; 2]) -> [f64; 2] {
    [x[0] * x[1].cos(), x[0] * x[1].sin()]
}

#[vmap]
#[jvp]
fn cube(x: f64) -> f64 {
    x * x * x
}

#[test]
fn vmap_of_hessian_jacfwd_and_jvp() {
    for n in SIZES {
        let xs: Vec<[f64; 2]> = points(n).iter().map(|&p| [p, 1.0 - 2.0 * p]).collect();
        let h = bowl_hessian_vmap(&xs);
        let j = polar_jacfwd_vmap(&xs);
        for k in 0..n {
            let (hk, jk) = (bowl_hessian(xs[k]), polar_jacfwd(xs[k]));
            for a in 0..2 {
                for b in 0..2 {
                    assert!(
                        close(h[k][a][b], hk[a][b], ULPS),
                        "n = {n}, sample {k}: {:?} vs {hk:?}",
                        h[k]
                    );
                    assert!(
                        close(j[k][a][b], jk[a][b], ULPS),
                        "n = {n}, sample {k}: {:?} vs {jk:?}",
                        j[k]
                    );
                }
            }
        }
        let x = points(n);
        let t: Vec<f64> = x.iter().map(|v| 1.0 - v).collect();
        let (y, ydot) = cube_jvp_vmap(&x, &t);
        for k in 0..n {
            assert_eq!((y[k], ydot[k]), cube_jvp(x[k], t[k]), "n = {n}, sample {k}");
        }
    }
}

/// `f32`: 8 lanes.
#[vmap(in_dims = (0, None))]
fn scaled(x: f32, s: f32) -> f32 {
    if x < 0.5 {
        x * s + 1.0
    } else {
        x * x - s
    }
}

#[test]
fn f32_batches_on_eight_lanes() {
    for n in SIZES {
        let x: Vec<f32> = points(n).iter().map(|&v| v as f32 - 0.25).collect();
        let y = scaled_vmap(&x, 3.0);
        for k in 0..n {
            let want = if x[k] < 0.5 {
                x[k] * 3.0 + 1.0
            } else {
                x[k] * x[k] - 3.0
            };
            assert_eq!(y[k].to_bits(), want.to_bits(), "n = {n}, sample {k}");
        }
    }
}

/// A shared condition stays a branch, a shared accumulator stays a scalar, a batched value
/// cast to the float type stays lanes. Kills, in `batch.rs`: `Bx::stmt`'s shared-`if` guard
/// `!self.batched(c)` as `false` and `let mut`'s `self.set.contains(v)` as `true` (a shared
/// value given lanes), `lanes_expr`'s `Ty::Float(_)` cast arm deleted (an error).
// The cast to the same type is the construct under test.
#[allow(clippy::unnecessary_cast)]
#[vmap(in_dims = (0, None))]
fn shared_parts(x: f64, w: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += w * (i as f64);
    }
    let y = (x * w) as f64;
    if w > 1.0 {
        y * s
    } else {
        y - s
    }
}

fn shared_parts_plain(x: f64, w: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += w * (i as f64);
    }
    let y = x * w;
    if w > 1.0 {
        y * s
    } else {
        y - s
    }
}

#[test]
fn shared_branches_accumulators_and_casts_bit_for_bit() {
    for n in SIZES {
        let x = points(n);
        for w in [2.5, -0.75] {
            let y = shared_parts_vmap(&x, w);
            for k in 0..n {
                let want = shared_parts_plain(x[k], w);
                assert_eq!(y[k].to_bits(), want.to_bits(), "n = {n}, w = {w}, sample {k}");
            }
        }
    }
}

#[vmap]
fn weighted(x: f64, y: f64) -> f64 {
    x * y
}

#[test]
#[should_panic(expected = "vmap: `y` has 3 samples but `x` has 4")]
fn batches_of_different_lengths_panic_naming_both() {
    weighted_vmap(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]);
}

#[test]
#[should_panic(expected = "vmap: `out` has 2 samples but `x` has 3")]
fn an_output_buffer_of_another_length_panics() {
    let mut out = [0.0; 2];
    weighted_vmap_into(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], &mut out, None);
}

/// `chunk_size` (samples per thread task): every split gives each sample the same bits,
/// chunk sizes that are not multiples of the lane count included; large batches split
/// across threads.
#[vmap(chunk_size = 3)]
#[grad]
fn wiggle(x: f64) -> f64 {
    (x * 3.0).sin() * x.exp() - x.tanh()
}

#[test]
fn every_chunk_size_gives_the_same_bits() {
    for n in [0, 1, 5, 9, 1023, 20_000] {
        let x = points(n);
        let want = wiggle_grad_vmap(&x);
        for chunk in [None, Some(1), Some(3), Some(4), Some(7), Some(64), Some(100_000)] {
            let mut out = vec![f64::NAN; n];
            wiggle_grad_vmap_into(&x, &mut out, chunk);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&want), "n = {n}, chunk_size = {chunk:?}");
        }
        for k in 0..n {
            // The terms are up to 4 e^x; the derivative may cancel below them.
            let (a, b) = (want[k], wiggle_grad(x[k]));
            let scale = 4.0 * x[k].exp() + 1.0;
            assert!(
                (a - b).abs() <= ULPS * f64::EPSILON * scale,
                "n = {n}, sample {k}: {a} vs {b}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "`chunk_size` is 0")]
fn a_zero_chunk_size_panics() {
    let mut out = [0.0; 3];
    wiggle_grad_vmap_into(&[1.0, 2.0, 3.0], &mut out, Some(0));
}

/// Arrays sized by a named constant, written in a loop: the gradient's tapes (whose
/// storage rustc picks from the constant's value) hold lanes.
const K: usize = 3;

#[vmap(in_dims = (0, None))]
#[grad]
fn chain(x: f64, w: &[f64; K]) -> f64 {
    let mut h = [0.0; K];
    let mut s = x;
    for i in 0..K {
        s = (s * w[i]).tanh() + 0.5;
        h[i] = s;
    }
    h[0] * h[K - 1] + s * s
}

#[test]
fn tapes_sized_by_named_constants_hold_lanes() {
    let w = [0.7, -1.3, 2.0];
    for n in SIZES {
        let x: Vec<f64> = points(n).iter().map(|p| 2.0 * p - 1.5).collect();
        let g = chain_grad_vmap(&x, &w);
        for k in 0..n {
            let want = chain_grad(x[k], &w);
            assert!(
                (g[k] - want).abs() <= ULPS * f64::EPSILON * (want.abs() + 4.0),
                "n = {n}, sample {k}: {} vs {want}",
                g[k]
            );
        }
    }
}

/// `vmap` in the list attribute, nested as torch.func nests calls: `vmap(grad)` is
/// `vmap(grad(f))` beside `grad(f)` itself.
#[fluxion::transforms(vmap(grad, in_dims = (0, None)), grad)]
fn listed(x: f64, w: f64) -> f64 {
    (x * w).sin() + x * x
}

#[test]
fn vmap_in_the_list_attribute() {
    let x = points(7);
    let g = listed_grad_vmap(&x, 0.3);
    for k in 0..7 {
        assert!(close(g[k], listed_grad(x[k], 0.3), ULPS), "sample {k}");
    }
}

#[test]
fn the_try_form_returns_an_error_naming_both_arguments() {
    let e = try_weighted_vmap(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(
        e,
        fluxion::BatchError {
            what: "y",
            len: 3,
            first: "x",
            n: 4,
            component: None,
            sample: None,
        }
    );
    assert_eq!(
        e.to_string(),
        "vmap: `y` has 3 samples but `x` has 4: batched arguments must have one sample each"
    );
    assert_eq!(try_weighted_vmap(&[1.0, 2.0], &[3.0, 4.0]), Ok(vec![3.0, 8.0]));
}

/// The Jacobian from vmapping the pullback over the standard basis (PyTorch's vmap
/// tutorial): `vmap(vjp)` with the primal shared and the cotangents batched gives the rows
/// of `jacrev`, bit for bit (the same reverse sweep per row).
#[fluxion::transforms(vmap(vjp, in_dims = (None, 0)), jacrev)]
fn spiral(x: [f64; 3]) -> [f64; 2] {
    [x[0] * x[1].sin(), x[2].exp() * x[0] - x[1]]
}

#[test]
fn the_jacobian_from_vmapping_the_pullback_over_the_basis() {
    let x = [0.3, -1.1, 0.7];
    let basis = [[1.0, 0.0], [0.0, 1.0]];
    let (ys, rows) = spiral_vjp_ct_vmap(x, &basis);
    let jac = spiral_jacrev(x);
    for (k, (row, want)) in rows.iter().zip(&jac).enumerate() {
        assert_eq!(ys[k], [x[0] * x[1].sin(), x[2].exp() * x[0] - x[1]]);
        for (a, b) in row.0.iter().zip(want) {
            assert!(close(*a, *b, ULPS), "row {k}: {a} vs {b}");
        }
    }
}

const PART: usize = 4;

/// Weight cotangents stored element by element (`w_bar[i][j]` once each) over part of
/// the array (`0..PART - 1` rows of `w`), and added to twice (`v_bar[i][0]`), so that
/// `v_bar` must start from zeros in every chunk.
#[vmap(in_dims = (0, None, None))]
#[grad(argnums = (1, 2))]
fn partial_rows(x: [f64; 3], w: &[[f64; 3]; PART], v: &[[f64; 3]; PART]) -> f64 {
    let mut s = 0.0;
    for i in 0..PART - 1 {
        let mut a = 0.0;
        for j in 0..3 {
            a += w[i][j] * x[j];
        }
        s += a * a * a;
    }
    for i in 0..PART {
        let mut b = 0.0;
        for j in 0..3 {
            b += v[i][j] * x[j] * x[j];
        }
        s += b * b + v[i][0] * x[1];
    }
    s
}

/// The kernel fills its cotangent buffers in place, reused from chunk to chunk: an
/// element no sample's sweep stores (the last row of `w_bar`) is zero in every chunk, an
/// accumulator added to twice starts from zeros in every chunk (11 samples: three chunks,
/// the last one partial); per-sample gradients bit for bit.
#[test]
fn cotangent_buffers_reused_across_chunks_hold_no_stale_values() {
    let xs: Vec<[f64; 3]> = (0..11).map(|k| [0.3 * k as f64 - 1.0, 0.7, -0.2 * k as f64]).collect();
    let w = [[0.5, -0.25, 1.0], [0.1, 0.2, 0.3], [-1.5, 0.75, 0.05], [9.0, 9.0, 9.0]];
    let v = [[0.2, 0.1, -0.4], [1.0, -1.0, 0.5], [0.3, 0.3, 0.3], [-0.6, 0.9, 0.2]];
    let (gw, gv) = partial_rows_grad_vmap(&xs, &w, &v);
    for (k, x) in xs.iter().enumerate() {
        let (ew, ev) = partial_rows_grad(*x, &w, &v);
        assert_eq!(gw[k][PART - 1], [0.0; 3], "sample {k}");
        let bits = |m: &[[f64; 3]; PART]| m.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gw[k]), bits(&ew), "sample {k}");
        assert_eq!(bits(&gv[k]), bits(&ev), "sample {k}");
    }
}

/// Integer powers on lanes are written out as squarings that powers of one base share:
/// the same operations as `powi`, so the same bits, for every exponent here (negative ones
/// divide `1` by the power) and through the gradient (`x^(k-1)` shares them too).
#[vmap]
#[grad_and_value]
fn powers(x: f64) -> f64 {
    x.powi(1) + x.powi(2) - x.powi(3) + x.powi(5) * x.powi(6) - x.powi(7) + x.powi(12) + x.powi(13) - x.powi(-3)
        + x.powi(-1)
        + 0.5 * x.powi(31)
}

#[test]
fn integer_powers_share_squares_bit_for_bit() {
    for n in SIZES {
        let xs: Vec<f64> = points(n).iter().map(|p| 0.75 + 0.25 * p).collect();
        let (g, v) = powers_grad_and_value_vmap(&xs);
        for (k, &x) in xs.iter().enumerate() {
            let (gk, vk) = powers_grad_and_value(x);
            assert_eq!(
                (g[k].to_bits(), v[k].to_bits()),
                (gk.to_bits(), vk.to_bits()),
                "n = {n}, x = {x}"
            );
        }
    }
}
