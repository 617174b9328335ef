//! `vmap` of functions of nalgebra's statically sized vectors and matrices, through the
//! real macros: a batched argument `SVector<T, N>` / `SMatrix<T, R, C>` takes a slice of
//! samples (`&[SVector<T, N>]`), a nalgebra result (a gradient in a vector, a vector-valued
//! function, its Jacobian) batches to a `Vec` of matrices. Each sample's result against
//! the unbatched generated function called in a loop, for batch sizes around the lane
//! counts, shared and batched matrices mixed, `f32`, the `_into` forms and chunk sizes,
//! and mismatched lengths. An `SVector` in the structure-of-arrays layout (`in_dims = 1`:
//! one slice per component; `out_dims = 1`: one `Vec` per component) against its
//! `in_dims = 0` form and single calls.
//!
//! Arithmetic is exact on lanes, so those results are compared bit for bit; results
//! through a lane transcendental (`tanh`) within the lane functions' documented bound.

use fluxion::{grad, grad_and_value, jacfwd, jacrev, vmap};
use nalgebra::{Matrix2x3, SMatrix, SVector, Vector2, Vector3};

/// Batch sizes around the lane counts (4 for `f64`, 8 for `f32`).
const SIZES: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 9, 1023];

/// Tolerance of results computed through lane transcendentals, in ulps of the result.
const ULPS: f64 = 8.0;

/// Equal within `ULPS` ulps of 1 for values below 1: a sum of `tanh`s of both signs and the
/// derivative of `tanh`, `1 - t^2`, cancel, so `t`'s few ulps are ulps of 1 in them,
/// whatever their size.
fn close_to_one(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= ULPS * f64::EPSILON * a.abs().max(b.abs()).max(1.0)
}

/// A value in `[-1, 1)` for each `k`, not evenly spaced.
fn wave(k: usize) -> f64 {
    2.0 * ((k as f64 * 0.618_033_988_75 + 0.1) % 1.0) - 1.0
}

fn vectors<const N: usize>(n: usize, seed: usize) -> Vec<SVector<f64, N>> {
    (0..n)
        .map(|s| SVector::from_fn(|i, _| wave(seed + 7 * s + i)))
        .collect()
}

fn matrices<const R: usize, const C: usize>(n: usize, seed: usize) -> Vec<SMatrix<f64, R, C>> {
    (0..n)
        .map(|s| SMatrix::from_fn(|i, j| wave(seed + 13 * s + 3 * i + 5 * j)))
        .collect()
}

fn bits<const R: usize, const C: usize>(m: &SMatrix<f64, R, C>) -> Vec<u64> {
    m.iter().map(|x| x.to_bits()).collect()
}

/// A batched vector and a shared matrix by reference; arithmetic only: exact.
#[vmap(in_dims = (0, None))]
#[grad]
fn quad(x: SVector<f64, 3>, w: &SMatrix<f64, 3, 3>) -> f64 {
    (w * x).norm_squared()
}

#[test]
fn gradient_in_a_batched_vector_bit_for_bit() {
    let w = matrices::<3, 3>(1, 5)[0];
    for n in SIZES {
        let xs = vectors::<3>(n, n);
        let g: Vec<SVector<f64, 3>> = quad_grad_vmap(&xs, &w);
        assert_eq!(g.len(), n);
        for (k, x) in xs.iter().enumerate() {
            assert_eq!(bits(&g[k]), bits(&quad_grad(*x, &w)), "n = {n}, sample {k}");
        }
    }
}

/// A batched matrix, a batched vector by reference and a shared vector, the gradient in
/// both batched arguments (a tuple of a matrix and a vector per sample), through `tanh`.
#[vmap(in_dims = (0, 0, None))]
#[grad_and_value(argnums = (0, 1))]
fn layer(w: Matrix2x3<f64>, x: &Vector3<f64>, b: Vector2<f64>) -> f64 {
    (w * x + b).map(|v| v.tanh()).sum()
}

/// One sample's gradient of `layer`: in `w`, in `x`.
type LayerGrad = (Matrix2x3<f64>, Vector3<f64>);

#[test]
fn batched_matrices_and_vectors_mixed_with_shared_ones() {
    let b = Vector2::new(0.25, -0.5);
    for n in SIZES {
        let ws = matrices::<2, 3>(n, 3 * n);
        let xs = vectors::<3>(n, n + 1);
        let (g, v): (Vec<LayerGrad>, Vec<f64>) = layer_grad_and_value_vmap(&ws, &xs, b);
        assert_eq!((g.len(), v.len()), (n, n));
        for k in 0..n {
            let ((ew, ex), ev) = layer_grad_and_value(ws[k], &xs[k], b);
            assert!(close_to_one(v[k], ev), "n = {n}, sample {k}: {} vs {ev}", v[k]);
            let (gw, gx) = &g[k];
            for (a, e) in gw.iter().zip(ew.iter()).chain(gx.iter().zip(ex.iter())) {
                assert!(close_to_one(*a, *e), "n = {n}, sample {k}: {a} vs {e}");
            }
        }
    }
}

/// A vector-valued function: a `Vec` of vectors.
#[vmap(in_dims = (0, None))]
fn rotate(x: SVector<f64, 3>, w: SMatrix<f64, 3, 3>) -> SVector<f64, 3> {
    w * x * 2.0 - x
}

/// Its Jacobians by both modes: a matrix per sample.
#[vmap(in_dims = (0, None))]
#[jacrev]
fn rotate_rev(x: SVector<f64, 3>, w: SMatrix<f64, 3, 3>) -> SVector<f64, 3> {
    (w * x).map(|v| v * v) - x
}

#[vmap(in_dims = (0, None))]
#[jacfwd]
fn rotate_fwd(x: SVector<f64, 3>, w: SMatrix<f64, 3, 3>) -> SVector<f64, 3> {
    (w * x).map(|v| v * v) - x
}

#[test]
fn vector_valued_functions_and_their_jacobians() {
    let w = matrices::<3, 3>(1, 11)[0];
    for n in SIZES {
        let xs = vectors::<3>(n, 2 * n);
        let y: Vec<SVector<f64, 3>> = rotate_vmap(&xs, w);
        let jr: Vec<SMatrix<f64, 3, 3>> = rotate_rev_jacrev_vmap(&xs, w);
        let jf: Vec<SMatrix<f64, 3, 3>> = rotate_fwd_jacfwd_vmap(&xs, w);
        assert_eq!((y.len(), jr.len(), jf.len()), (n, n, n));
        for (k, x) in xs.iter().enumerate() {
            assert_eq!(bits(&y[k]), bits(&rotate(*x, w)), "n = {n}, sample {k}");
            assert_eq!(bits(&jr[k]), bits(&rotate_rev_jacrev(*x, w)), "n = {n}, sample {k}");
            assert_eq!(bits(&jf[k]), bits(&rotate_fwd_jacfwd(*x, w)), "n = {n}, sample {k}");
        }
    }
}

/// `f32` (8 lanes).
#[vmap]
#[grad]
fn cubic(x: Vector3<f32>) -> f32 {
    x.dot(&x) * x[0] + x[2]
}

#[test]
fn f32_samples_bit_for_bit() {
    for n in SIZES {
        let xs: Vec<Vector3<f32>> = vectors::<3>(n, n).iter().map(|v| v.map(|x| x as f32)).collect();
        let g = cubic_grad_vmap(&xs);
        assert_eq!(g.len(), n);
        for (k, x) in xs.iter().enumerate() {
            let e = cubic_grad(*x);
            let same = g[k].iter().zip(e.iter()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "n = {n}, sample {k}: {:?} vs {e:?}", g[k]);
        }
    }
}

/// The caller's buffer and chunk sizes (samples per thread task): the same bits for every
/// split.
#[vmap(in_dims = (0, None), chunk_size = 3)]
#[grad]
fn quad_chunked(x: SVector<f64, 3>, w: &SMatrix<f64, 3, 3>) -> f64 {
    (w * x).norm_squared()
}

#[test]
fn into_forms_and_chunk_sizes() {
    let w = matrices::<3, 3>(1, 5)[0];
    for n in SIZES {
        let xs = vectors::<3>(n, n + 3);
        let want: Vec<_> = xs.iter().map(|x| bits(&quad_grad(*x, &w))).collect();
        let got: Vec<_> = quad_chunked_grad_vmap(&xs, &w).iter().map(bits).collect();
        assert_eq!(got, want, "n = {n}");
        for chunk in [None, Some(1), Some(3), Some(4), Some(5), Some(64)] {
            let mut out = vec![SVector::<f64, 3>::repeat(f64::NAN); n];
            quad_chunked_grad_vmap_into(&xs, &w, &mut out, chunk);
            let got: Vec<_> = out.iter().map(bits).collect();
            assert_eq!(got, want, "n = {n}, chunk {chunk:?}");
            let mut out = vec![SVector::<f64, 3>::zeros(); n];
            quad_grad_vmap_into(&xs, &w, &mut out, chunk);
            let got: Vec<_> = out.iter().map(bits).collect();
            assert_eq!(got, want, "n = {n}, chunk {chunk:?}");
        }
        let tried = try_quad_grad_vmap(&xs, &w).map(|g| g.iter().map(bits).collect::<Vec<_>>());
        assert_eq!(tried.ok(), Some(want));
    }
}

/// Two batched matrices: lengths must agree.
#[vmap]
fn pair(x: SVector<f64, 2>, y: SMatrix<f64, 2, 2>) -> f64 {
    (y * x).sum()
}

#[test]
fn pairs_of_batched_matrices() {
    let (xs, ys) = (vectors::<2>(9, 1), matrices::<2, 2>(9, 2));
    let got = pair_vmap(&xs, &ys);
    for k in 0..9 {
        assert_eq!(got[k].to_bits(), pair(xs[k], ys[k]).to_bits());
    }
    assert!(try_pair_vmap(&xs[..3], &ys).is_err());
}

#[test]
#[should_panic(expected = "vmap: `y` has 3 samples but `x` has 4")]
fn batches_of_different_lengths_panic_naming_both() {
    pair_vmap(&vectors::<2>(4, 0), &matrices::<2, 2>(3, 0));
}

#[test]
#[should_panic(expected = "vmap: `out` has 2 samples but `x` has 3")]
fn an_output_buffer_of_another_length_panics() {
    let w = SMatrix::<f64, 3, 3>::identity();
    let mut out = [SVector::<f64, 3>::zeros(); 2];
    quad_grad_vmap_into(&vectors::<3>(3, 0), &w, &mut out, None);
}

/// A `vmap` of a `vmap`: one inner batch of vectors per outer sample.
#[vmap(in_dims = (0, None))]
#[vmap(in_dims = (0, None))]
fn scaled(x: SVector<f64, 2>, s: f64) -> SVector<f64, 2> {
    x * s
}

#[test]
fn nested_batches_of_vectors() {
    let xs: Vec<Vec<SVector<f64, 2>>> = (0..5).map(|o| vectors::<2>(o, o)).collect();
    let got: Vec<Vec<SVector<f64, 2>>> = scaled_vmap_vmap(&xs, 1.5);
    for (o, inner) in xs.iter().enumerate() {
        assert_eq!(got[o].len(), inner.len());
        for (k, x) in inner.iter().enumerate() {
            assert_eq!(bits(&got[o][k]), bits(&scaled(*x, 1.5)));
        }
    }
}

/// A scalar callee: the batched reverse pass runs its split halves on lanes.
#[fluxion::differentiable]
fn soft(t: f64) -> f64 {
    t * t / (1.0 + t * t)
}

#[vmap(in_dims = (0, None))]
#[grad]
fn through_call(x: SVector<f64, 3>, w: &SMatrix<f64, 3, 3>) -> f64 {
    let y = w * x;
    soft(y[0]) + soft(y[1]) * y[2]
}

#[test]
fn calls_of_scalar_functions_on_elements() {
    let w = matrices::<3, 3>(1, 17)[0];
    for n in SIZES {
        let xs = vectors::<3>(n, n + 5);
        let g = through_call_grad_vmap(&xs, &w);
        for (k, x) in xs.iter().enumerate() {
            assert_eq!(bits(&g[k]), bits(&through_call_grad(*x, &w)), "n = {n}, sample {k}");
        }
    }
}

/// A size given by a const generic.
#[vmap]
#[grad]
fn sum_sq<const N: usize>(x: SVector<f64, N>) -> f64 {
    x.norm_squared()
}

#[test]
fn const_generic_sizes() {
    let xs = vectors::<4>(9, 2);
    let g = sum_sq_grad_vmap::<4>(&xs);
    for (k, x) in xs.iter().enumerate() {
        assert_eq!(bits(&g[k]), bits(&sum_sq_grad::<4>(*x)));
    }
}

/// Batch sizes of the structure-of-arrays layout tests.
const SOA_SIZES: [usize; 6] = [0, 1, 3, 4, 5, 9];

/// `x`'s component `j` over the samples `xs`: the slice `in_dims = 1` takes for it.
fn components_of<const N: usize>(xs: &[SVector<f64, N>]) -> [Vec<f64>; N] {
    core::array::from_fn(|j| xs.iter().map(|x| x[j]).collect())
}

fn vec_bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `in_dims = 1` on an `SVector` (one slice of samples per component), a shared matrix,
/// and `out_dims = 1` on an `SVector` result (one `Vec` per component); arithmetic only.
#[vmap(in_dims = (1, None), out_dims = 1)]
fn mix_soa(x: SVector<f64, 3>, w: &SMatrix<f64, 3, 3>) -> SVector<f64, 3> {
    w * x + x * x[0]
}

/// `mix_soa` one vector per sample.
#[vmap(in_dims = (0, None))]
fn mix_aos(x: SVector<f64, 3>, w: &SMatrix<f64, 3, 3>) -> SVector<f64, 3> {
    w * x + x * x[0]
}

#[test]
fn svector_components_in_and_out_bit_for_bit() {
    let w = matrices::<3, 3>(1, 11)[0];
    for n in SOA_SIZES {
        let xs = vectors::<3>(n, 2 * n + 1);
        let cs = components_of(&xs);
        let x = [&cs[0][..], &cs[1][..], &cs[2][..]];
        let aos: Vec<SVector<f64, 3>> = mix_aos_vmap(&xs, &w);
        let want: Vec<SVector<f64, 3>> = xs.iter().map(|x| mix_soa(*x, &w)).collect();
        let check = |y: &[Vec<f64>; 3], what: &str| {
            for j in 0..3 {
                assert_eq!(y[j].len(), n);
                let wj: Vec<f64> = want.iter().map(|v| v[j]).collect();
                let aj: Vec<f64> = aos.iter().map(|v| v[j]).collect();
                assert_eq!(vec_bits(&y[j]), vec_bits(&wj), "n = {n}, component {j}, {what}");
                assert_eq!(
                    vec_bits(&y[j]),
                    vec_bits(&aj),
                    "n = {n}, component {j}, {what} against in_dims = 0"
                );
            }
        };
        check(&mix_soa_vmap(x, &w), "allocating");
        check(&try_mix_soa_vmap(x, &w).unwrap(), "try_");
        for chunk in [None, Some(1), Some(3)] {
            let mut y = [vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]];
            let [y0, y1, y2] = &mut y;
            mix_soa_vmap_into(x, &w, [&mut y0[..], &mut y1[..], &mut y2[..]], chunk);
            check(&y, &format!("_into, chunk_size = {chunk:?}"));
        }
    }
}

/// Per-sample gradients with the sample's vector in components, by reference, and the
/// gradient (an `SVector`) back in components; a shared scale.
#[vmap(in_dims = (1, None), out_dims = 1)]
#[grad]
fn energy_soa(x: &SVector<f64, 4>, s: f64) -> f64 {
    s * x.norm_squared() + x[0] * x[3] - x[1] * x[2] * x[2]
}

/// `energy_soa`'s gradient one vector per sample.
#[vmap(in_dims = (0, None))]
#[grad]
fn energy_aos(x: &SVector<f64, 4>, s: f64) -> f64 {
    s * x.norm_squared() + x[0] * x[3] - x[1] * x[2] * x[2]
}

/// A float result from an `SVector` in components.
#[vmap(in_dims = 1)]
fn norm_soa(x: Vector2<f64>) -> f64 {
    x[0] * x[0] - 3.0 * x[1]
}

#[test]
fn svector_gradients_in_components_bit_for_bit() {
    for n in SOA_SIZES {
        let xs = vectors::<4>(n, n + 3);
        let cs = components_of(&xs);
        let x = [&cs[0][..], &cs[1][..], &cs[2][..], &cs[3][..]];
        let g = energy_soa_grad_vmap(x, 0.75);
        let aos: Vec<SVector<f64, 4>> = energy_aos_grad_vmap(&xs, 0.75);
        for j in 0..4 {
            assert_eq!(g[j].len(), n);
            for k in 0..n {
                let one = energy_soa_grad(&xs[k], 0.75);
                assert_eq!(
                    g[j][k].to_bits(),
                    one[j].to_bits(),
                    "n = {n}, component {j}, sample {k}"
                );
                assert_eq!(
                    g[j][k].to_bits(),
                    aos[k][j].to_bits(),
                    "n = {n}, component {j}, sample {k}"
                );
            }
        }
        let ys = vectors::<2>(n, n);
        let ds = components_of(&ys);
        let y = norm_soa_vmap([&ds[0][..], &ds[1][..]]);
        let want: Vec<f64> = ys.iter().map(|v| norm_soa(*v)).collect();
        assert_eq!(vec_bits(&y), vec_bits(&want), "n = {n}");
    }
}

#[test]
fn svector_components_of_different_lengths() {
    let (a, b) = (vec![1.0; 3], vec![2.0; 2]);
    let e = try_norm_soa_vmap([&a[..], &b[..]]).unwrap_err();
    assert_eq!((e.len, e.n, e.component), (2, 3, Some(1)), "{e:?}");
}

/// A `vmap` of a `vmap` whose outer level batches the inner-shared vector in components.
#[vmap(in_dims = (0, 1))]
#[vmap(in_dims = (0, None))]
fn shifted(t: f64, x: SVector<f64, 2>) -> f64 {
    t * x[0] - x[1]
}

#[test]
fn an_outer_batch_of_svector_components() {
    for n in SOA_SIZES {
        let xs = vectors::<2>(n, 5);
        let cs = components_of(&xs);
        let ts: Vec<Vec<f64>> = (0..n).map(|o| (0..o % 4).map(|k| wave(3 * o + k)).collect()).collect();
        let got = shifted_vmap_vmap(&ts, [&cs[0][..], &cs[1][..]]);
        assert_eq!(got.len(), n);
        for o in 0..n {
            let want: Vec<f64> = ts[o].iter().map(|&t| shifted(t, xs[o])).collect();
            assert_eq!(vec_bits(&got[o]), vec_bits(&want), "n = {n}, outer sample {o}");
        }
    }
}

/// `f32` vectors in components (8 lanes).
#[vmap(in_dims = 1, out_dims = 1)]
fn affine_f32(x: SVector<f32, 3>) -> SVector<f32, 3> {
    x * 0.375 - SVector::<f32, 3>::new(x[2], x[0], x[1]) * x[1]
}

#[test]
fn f32_svector_components_bit_for_bit() {
    for n in SOA_SIZES.iter().copied().chain([8, 17]) {
        let xs: Vec<SVector<f32, 3>> = (0..n)
            .map(|s| SVector::from_fn(|i, _| wave(5 * s + i) as f32))
            .collect();
        let cs: [Vec<f32>; 3] = core::array::from_fn(|j| xs.iter().map(|x| x[j]).collect());
        let y = affine_f32_vmap([&cs[0][..], &cs[1][..], &cs[2][..]]);
        for (k, x) in xs.iter().enumerate() {
            let want = affine_f32(*x);
            for j in 0..3 {
                assert_eq!(
                    y[j][k].to_bits(),
                    want[j].to_bits(),
                    "n = {n}, sample {k}, component {j}"
                );
            }
        }
    }
}
