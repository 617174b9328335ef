//! `vmap`'s layouts through the real macros: `in_dims = 1` (an array argument as one slice
//! per component), `out_dims = 1` (an array output as one `Vec` per component), per output
//! of a tuple, and nested `vmap` (`#[vmap] #[vmap]`, outer batch first: `&[Vec<T>]` in,
//! `Vec<Vec<R>>` out), alone and over `grad`, `jacrev` and `jvp`.
//!
//! Every result is compared bit for bit with a loop of the unbatched function (the original,
//! or the generated derivative): the functions below use only arithmetic and `sqrt`, exact
//! on lanes. Each is run for batch sizes around the lane count (0, 1, 3, 4, 5, 7, 8, 9,
//! 1023) in its allocating form, its `try_` form and its `_into` form with the chunk sizes
//! `None`, 1, 3 and 4 into buffers that start as NaN.

use fluxion::{grad, grad_and_value, jacrev, jvp, vmap, BatchError};

/// Batch sizes around the lane counts.
const SIZES: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 9, 1023];

/// The chunk sizes of the `_into` forms (samples per thread task).
const CHUNKS: [Option<usize>; 4] = [None, Some(1), Some(3), Some(4)];

/// A value for sample `k`, component `j`: both signs, not evenly spaced, never zero.
fn val(k: usize, j: usize) -> f64 {
    let x = ((k * 7 + j * 13) as f64 * 0.618_033_988_75) % 1.0;
    if (k + j).is_multiple_of(3) {
        -0.5 - x
    } else {
        0.25 + 2.0 * x
    }
}

/// Component `j` of `n` samples: the slice an `in_dims = 1` argument takes for it.
fn component(n: usize, j: usize) -> Vec<f64> {
    (0..n).map(|k| val(k, j)).collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `in_dims = 1`: `x` as one slice per component (structure of arrays), `w` shared by
/// reference, `b` batched along axis 0.
#[vmap(in_dims = (1, None, 0))]
fn soa_dot(x: [f64; 3], w: &[f64; 3], b: f64) -> f64 {
    let d = x[0] * w[0] + x[1] * w[1] - x[2] / w[2];
    if d > 0.0 {
        d.sqrt() + b
    } else {
        b - d
    }
}

#[test]
fn in_dims_1_takes_one_slice_per_component_bit_for_bit() {
    let w = [0.5, -1.25, 3.0];
    for n in SIZES {
        let cs: Vec<Vec<f64>> = (0..3).map(|j| component(n, j)).collect();
        let x = [&cs[0][..], &cs[1][..], &cs[2][..]];
        let b = component(n, 7);
        let want: Vec<f64> = (0..n).map(|k| soa_dot([x[0][k], x[1][k], x[2][k]], &w, b[k])).collect();
        assert_eq!(bits(&soa_dot_vmap(x, &w, &b)), bits(&want), "n = {n}");
        assert_eq!(bits(&try_soa_dot_vmap(x, &w, &b).unwrap()), bits(&want), "n = {n}");
        for chunk in CHUNKS {
            let mut out = vec![f64::NAN; n];
            soa_dot_vmap_into(x, &w, &b, &mut out, chunk);
            assert_eq!(bits(&out), bits(&want), "n = {n}, chunk_size = {chunk:?}");
        }
    }
}

/// `out_dims = 1`: an array output as one `Vec` per component; an `in_dims = 1` argument
/// taken by reference.
#[vmap(in_dims = (0, 1), out_dims = 1)]
fn rotate(c: f64, x: &[f64; 2]) -> [f64; 2] {
    let s = (1.0 - c * c).abs().sqrt();
    [c * x[0] - s * x[1], s * x[0] + c * x[1]]
}

#[test]
fn out_dims_1_gives_one_vec_per_component_bit_for_bit() {
    for n in SIZES {
        let c: Vec<f64> = component(n, 0).iter().map(|v| v * 0.4).collect();
        let (x0, x1) = (component(n, 1), component(n, 2));
        let x = [&x0[..], &x1[..]];
        let want: Vec<[f64; 2]> = (0..n).map(|k| rotate(c[k], &[x0[k], x1[k]])).collect();
        let check = |y: &[Vec<f64>; 2], what: &str| {
            for (j, yj) in y.iter().enumerate() {
                let wj: Vec<f64> = want.iter().map(|w| w[j]).collect();
                assert_eq!(bits(yj), bits(&wj), "n = {n}, component {j}, {what}");
            }
        };
        check(&rotate_vmap(&c, x), "allocating");
        check(&try_rotate_vmap(&c, x).unwrap(), "try_");
        for chunk in CHUNKS {
            let mut y = [vec![f64::NAN; n], vec![f64::NAN; n]];
            let [y0, y1] = &mut y;
            rotate_vmap_into(&c, x, [&mut y0[..], &mut y1[..]], chunk);
            check(&y, &format!("_into, chunk_size = {chunk:?}"));
        }
    }
}

/// `out_dims = 1` on the only output of a small kernel whose arguments are all `in_dims =
/// 0`: the full chunks run in the loop over the arguments' chunks, and the output (one
/// `Vec` per component, no chunks of samples) is written component by component.
#[vmap(out_dims = 1)]
fn spread(x: f64) -> [f64; 3] {
    [x, 2.0 * x, x * x]
}

#[test]
fn out_dims_1_alone_on_a_small_kernel_bit_for_bit() {
    for n in SIZES {
        let x = component(n, 0);
        let want: Vec<[f64; 3]> = x.iter().map(|&v| spread(v)).collect();
        let check = |y: &[Vec<f64>; 3], what: &str| {
            for (j, yj) in y.iter().enumerate() {
                let wj: Vec<f64> = want.iter().map(|w| w[j]).collect();
                assert_eq!(bits(yj), bits(&wj), "n = {n}, component {j}, {what}");
            }
        };
        check(&spread_vmap(&x), "allocating");
        for chunk in CHUNKS {
            let mut y = [vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]];
            let [y0, y1, y2] = &mut y;
            spread_vmap_into(&x, [&mut y0[..], &mut y1[..], &mut y2[..]], chunk);
            check(&y, &format!("_into, chunk_size = {chunk:?}"));
        }
    }
}

/// `out_dims` per output of a tuple: the first along axis 1, the second along axis 0; the
/// attribute's `chunk_size` (3 samples per task, not a multiple of the lane count).
#[vmap(out_dims = (1, 0), chunk_size = 3)]
fn split(x: [f64; 2]) -> ([f64; 3], f64) {
    let r = (x[0] * x[0] + x[1] * x[1]).sqrt();
    ([x[0] / r, x[1] / r, r], x[0] - x[1])
}

#[test]
fn out_dims_per_output_of_a_tuple_bit_for_bit() {
    for n in SIZES {
        let x: Vec<[f64; 2]> = (0..n).map(|k| [val(k, 0), val(k, 1)]).collect();
        let want: Vec<([f64; 3], f64)> = x.iter().map(|&x| split(x)).collect();
        let check = |(a, b): &([Vec<f64>; 3], Vec<f64>), what: &str| {
            for (j, aj) in a.iter().enumerate() {
                let wj: Vec<f64> = want.iter().map(|w| w.0[j]).collect();
                assert_eq!(bits(aj), bits(&wj), "n = {n}, component {j}, {what}");
            }
            let wb: Vec<f64> = want.iter().map(|w| w.1).collect();
            assert_eq!(bits(b), bits(&wb), "n = {n}, {what}");
        };
        check(&split_vmap(&x), "allocating");
        check(&try_split_vmap(&x).unwrap(), "try_");
        for chunk in CHUNKS {
            let mut a = [vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]];
            let mut b = vec![f64::NAN; n];
            let [a0, a1, a2] = &mut a;
            split_vmap_into(&x, ([&mut a0[..], &mut a1[..], &mut a2[..]], &mut b), chunk);
            check(&(a, b), &format!("_into, chunk_size = {chunk:?}"));
        }
    }
}

/// vmap(grad) with the samples and the gradients in structure-of-arrays form.
#[vmap(in_dims = (1, None), out_dims = 1)]
#[grad]
fn bond(x: [f64; 3], k: f64) -> f64 {
    let r = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
    k * (r - 1.0) * (r - 1.0)
}

/// vmap(jacrev) of an array function, the samples in structure-of-arrays form.
#[vmap(in_dims = 1)]
#[jacrev]
fn polar(x: [f64; 2]) -> [f64; 2] {
    let r = (x[0] * x[0] + x[1] * x[1]).sqrt();
    [r, x[0] / r]
}

/// vmap(jvp): primals and tangents in structure-of-arrays form, the output value along
/// axis 0 and its tangent along axis 1.
#[vmap(in_dims = 1, out_dims = (0, 1))]
#[jvp]
fn cross(x: [f64; 2]) -> [f64; 2] {
    [x[0] * x[1], x[0] / (x[1] * x[1] + 1.0)]
}

#[test]
fn in_and_out_dims_1_over_grad_jacrev_and_jvp_bit_for_bit() {
    for n in SIZES {
        let cs: Vec<Vec<f64>> = (0..3).map(|j| component(n, j)).collect();
        let x3 = [&cs[0][..], &cs[1][..], &cs[2][..]];
        let x2 = [&cs[0][..], &cs[1][..]];
        let t2 = [&cs[2][..], &cs[1][..]];
        let sample3 = |k: usize| [cs[0][k], cs[1][k], cs[2][k]];
        let sample2 = |k: usize| [cs[0][k], cs[1][k]];

        let g = bond_grad_vmap(x3, 2.5);
        for chunk in CHUNKS {
            let mut buf = [vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]];
            let [b0, b1, b2] = &mut buf;
            bond_grad_vmap_into(x3, 2.5, [&mut b0[..], &mut b1[..], &mut b2[..]], chunk);
            assert_eq!(buf, g, "n = {n}, chunk_size = {chunk:?}");
        }
        let j = polar_jacrev_vmap(x2);
        let (y, ydot) = cross_jvp_vmap(x2, t2);
        for k in 0..n {
            let want = bond_grad(sample3(k), 2.5);
            for c in 0..3 {
                assert_eq!(g[c][k].to_bits(), want[c].to_bits(), "n = {n}, sample {k}");
            }
            let jk = polar_jacrev(sample2(k));
            assert_eq!(
                bits(j[k].as_flattened()),
                bits(jk.as_flattened()),
                "n = {n}, sample {k}"
            );
            let (yk, ydk) = cross_jvp(sample2(k), [cs[2][k], cs[1][k]]);
            assert_eq!(bits(&y[k]), bits(&yk), "n = {n}, sample {k}");
            assert_eq!(bits(&[ydot[0][k], ydot[1][k]]), bits(&ydk), "n = {n}, sample {k}");
        }
    }
}

#[test]
#[should_panic(expected = "vmap: component 2 of `x` has 2 samples but its component 0 has 3")]
fn components_of_different_lengths_panic_naming_the_argument_and_component() {
    soa_dot_vmap([&[1.0; 3], &[1.0; 3], &[1.0; 2]], &[1.0; 3], &[0.0; 3]);
}

#[test]
#[should_panic(expected = "vmap: component 1 of `out` has 4 samples but its component 0 has 3")]
fn output_components_of_different_lengths_panic() {
    let (mut a, mut b) = ([0.0; 3], [0.0; 4]);
    rotate_vmap_into(&[0.1; 3], [&[1.0; 3], &[1.0; 3]], [&mut a, &mut b], None);
}

#[test]
#[should_panic(expected = "vmap: `x` has 3 samples but `c` has 4")]
fn components_that_agree_but_not_with_the_first_argument_panic() {
    // `rotate` takes `c` first, then `x` as components: their common length is checked
    // against `c`'s.
    rotate_vmap(&[0.1; 4], [&[1.0; 3], &[1.0; 3]]);
}

#[test]
fn the_try_form_names_a_component_and_an_argument() {
    let e = try_soa_dot_vmap([&[1.0; 3], &[1.0; 4], &[1.0; 3]], &[1.0; 3], &[0.0; 3]).unwrap_err();
    assert_eq!(
        e,
        BatchError {
            what: "x",
            len: 4,
            first: "x",
            n: 3,
            component: Some(1),
            sample: None,
        }
    );
    // Components agree, but not with the other batched argument.
    let e = try_soa_dot_vmap([&[1.0; 3], &[1.0; 3], &[1.0; 3]], &[1.0; 3], &[0.0; 5]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vmap: `b` has 5 samples but `x` has 3: batched arguments must have one sample each"
    );
}

// Nested vmap: vmap(vmap(f)). The inner `vmap` batches `x` and shares `w`; the outer one
// batches both: `x` is one inner batch per outer sample (`&[Vec<f64>]`), `w` one value per
// outer sample.
#[vmap]
#[vmap(in_dims = (0, None))]
fn scaled(x: f64, w: f64) -> f64 {
    let y = x * w + 1.0;
    if y > 0.0 {
        y.sqrt()
    } else {
        -y
    }
}

/// Ragged inner batches (every size of `SIZES` but the largest, in turn) for `outer` outer
/// samples.
fn ragged(outer: usize) -> Vec<Vec<f64>> {
    (0..outer).map(|o| component(SIZES[o % 8], o)).collect()
}

#[test]
fn nested_vmap_is_outer_batch_first_bit_for_bit() {
    for outer in SIZES {
        let x = ragged(outer);
        let w = component(outer, 9);
        let want: Vec<Vec<f64>> = (0..outer)
            .map(|o| x[o].iter().map(|&xi| scaled(xi, w[o])).collect())
            .collect();
        let same = |got: &[Vec<f64>], what: &str| {
            assert_eq!(got.len(), outer);
            for o in 0..outer {
                assert_eq!(bits(&got[o]), bits(&want[o]), "outer = {outer}, sample {o}, {what}");
            }
        };
        same(&scaled_vmap_vmap(&x, &w), "allocating");
        same(&try_scaled_vmap_vmap(&x, &w).unwrap(), "try_");
        for chunk in CHUNKS {
            let mut out: Vec<Vec<f64>> = x.iter().map(|xo| vec![f64::NAN; xo.len()]).collect();
            scaled_vmap_vmap_into(&x, &w, &mut out, chunk);
            same(&out, &format!("_into, chunk_size = {chunk:?}"));
        }
    }
}

// The outer product (torch's `vmap(vmap(f, in_dims=(None, 0)), in_dims=(0, None))`): the
// outer batch over `a`, the inner over `b`, shared by every outer sample; `chunk_size` on
// both levels.
#[vmap(in_dims = (0, None), chunk_size = 3)]
#[vmap(in_dims = (None, 0), chunk_size = 4)]
fn pair(a: f64, b: f64) -> f64 {
    let d = a - b;
    d * d / (1.0 + a * a)
}

#[test]
fn nested_vmap_over_two_axes_gives_every_pair() {
    for n in SIZES {
        let (a, b) = (component(n, 0), component(n.min(9), 1));
        let m = pair_vmap_vmap(&a, &b);
        assert_eq!(m.len(), n);
        for i in 0..n {
            let want: Vec<f64> = b.iter().map(|&bj| pair(a[i], bj)).collect();
            assert_eq!(bits(&m[i]), bits(&want), "n = {n}, row {i}");
        }
        for chunk in CHUNKS {
            let mut out = vec![vec![f64::NAN; b.len()]; n];
            pair_vmap_vmap_into(&a, &b, &mut out, chunk);
            assert_eq!(out, m, "n = {n}, chunk_size = {chunk:?}");
        }
    }
}

/// vmap(vmap(grad)): per-sample gradients of every inner batch; the inner `vmap` takes
/// the samples in structure-of-arrays form and gives the gradients the same way, the outer
/// one shares the scale and batches a per-outer-sample offset.
#[vmap(in_dims = (0, None, 0))]
#[vmap(in_dims = (1, None, None), out_dims = 1)]
#[grad]
fn well(x: [f64; 2], k: f64, c: f64) -> f64 {
    let r = (x[0] * x[0] + x[1] * x[1]).sqrt() - c;
    k * r * r
}

#[test]
fn nested_vmap_of_grad_with_structure_of_arrays_inside() {
    for outer in [0, 1, 3, 5, 9] {
        let xs: Vec<[Vec<f64>; 2]> = (0..outer)
            .map(|o| [component(SIZES[o], 2 * o), component(SIZES[o], 2 * o + 1)])
            .collect();
        let c = component(outer, 5);
        let g = well_grad_vmap_vmap(&xs, 1.5, &c);
        for chunk in CHUNKS {
            let mut out: Vec<[Vec<f64>; 2]> = xs
                .iter()
                .map(|x| [vec![f64::NAN; x[0].len()], vec![f64::NAN; x[0].len()]])
                .collect();
            well_grad_vmap_vmap_into(&xs, 1.5, &c, &mut out, chunk);
            assert_eq!(out, g, "outer = {outer}, chunk_size = {chunk:?}");
        }
        for o in 0..outer {
            for k in 0..xs[o][0].len() {
                let want = well_grad([xs[o][0][k], xs[o][1][k]], 1.5, c[o]);
                for j in 0..2 {
                    assert_eq!(g[o][j][k].to_bits(), want[j].to_bits(), "outer sample {o}, sample {k}");
                }
            }
        }
    }
}

/// vmap(vmap(jacrev)) with the outer `vmap` splitting a shared array into components
/// (`in_dims = 1` on an argument the inner `vmap` shares).
#[vmap(in_dims = (None, 1))]
#[vmap(in_dims = (0, None))]
#[jacrev]
fn affine(x: [f64; 2], m: [f64; 2]) -> [f64; 2] {
    [m[0] * x[0] * x[1], m[1] * x[0] / (1.0 + x[1] * x[1])]
}

#[test]
fn nested_vmap_of_jacrev_with_an_outer_structure_of_arrays() {
    for outer in [0, 1, 4, 7] {
        let x: Vec<[f64; 2]> = (0..5).map(|k| [val(k, 0), val(k, 1)]).collect();
        let (m0, m1) = (component(outer, 3), component(outer, 4));
        let j = affine_jacrev_vmap_vmap(&x, [&m0, &m1]);
        assert_eq!(j.len(), outer);
        for o in 0..outer {
            for k in 0..x.len() {
                let want = affine_jacrev(x[k], [m0[o], m1[o]]);
                assert_eq!(
                    bits(j[o][k].as_flattened()),
                    bits(want.as_flattened()),
                    "outer sample {o}, sample {k}"
                );
            }
        }
    }
}

/// Three levels: vmap(vmap(vmap(f))), outermost batch first.
#[vmap]
#[vmap]
#[vmap]
fn cube(x: f64) -> f64 {
    x * x * x
}

#[test]
fn three_nested_vmaps() {
    let x: Vec<Vec<Vec<f64>>> = (0..4)
        .map(|a| (0..a).map(|b| component(b + a, a + b)).collect())
        .collect();
    let y = cube_vmap_vmap_vmap(&x);
    for a in 0..x.len() {
        for b in 0..x[a].len() {
            let want: Vec<f64> = x[a][b].iter().map(|&v| cube(v)).collect();
            assert_eq!(bits(&y[a][b]), bits(&want), "sample ({a}, {b})");
        }
    }
}

#[test]
#[should_panic(expected = "vmap: `w` has 2 samples but `x` has 3")]
fn nested_outer_batches_of_different_lengths_panic() {
    scaled_vmap_vmap(&[vec![1.0], vec![], vec![2.0, 3.0]], &[1.0, 2.0]);
}

#[test]
fn a_disagreement_inside_an_outer_sample_names_the_sample() {
    // The inner `vmap` of `well` takes `x` as components: sample 1's disagree.
    let xs = [[vec![1.0; 2], vec![1.0; 2]], [vec![1.0; 3], vec![1.0; 2]]];
    let e = try_well_grad_vmap_vmap(&xs, 1.0, &[0.0, 0.0]).unwrap_err();
    assert_eq!((e.sample, e.component, e.len, e.n), (Some(1), Some(1), 2, 3));
    assert_eq!(
        e.to_string(),
        "vmap: in sample 1 of the outer batch, component 1 of `x` has 2 samples but its component 0 has 3: every component holds one value per sample"
    );
}

#[test]
#[should_panic(expected = "vmap: `out` has 1 samples but `x` has 2")]
fn a_nested_output_buffer_of_another_length_panics() {
    let mut out = vec![vec![0.0; 1]];
    scaled_vmap_vmap_into(&[vec![1.0], vec![2.0]], &[1.0, 2.0], &mut out, None);
}

/// `f32`, 8 lanes: the structure-of-arrays layouts in and out, sizes around 8.
#[vmap(in_dims = (1, None), out_dims = 1)]
fn mix(x: [f32; 2], s: f32) -> [f32; 2] {
    [x[0] * s - x[1], (x[0] * x[0] + x[1] * x[1]).sqrt()]
}

#[test]
fn f32_structure_of_arrays_on_eight_lanes() {
    for n in SIZES {
        let (a, b): (Vec<f32>, Vec<f32>) = (0..n).map(|k| (val(k, 0) as f32, val(k, 1) as f32)).unzip();
        let want: Vec<[f32; 2]> = (0..n).map(|k| mix([a[k], b[k]], 1.5)).collect();
        for chunk in CHUNKS {
            let (mut y0, mut y1) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            mix_vmap_into([&a, &b], 1.5, [&mut y0, &mut y1], chunk);
            for k in 0..n {
                assert_eq!(
                    [y0[k].to_bits(), y1[k].to_bits()],
                    want[k].map(f32::to_bits),
                    "n = {n}, sample {k}"
                );
            }
        }
        let [y0, y1] = mix_vmap([&a, &b], 1.5);
        assert_eq!((y0.len(), y1.len()), (n, n));
    }
}

/// Nested `vmap` in the list attribute, nested as torch.func nests calls:
/// `vmap(vmap(grad))` beside `grad` itself.
#[fluxion::transforms(vmap(vmap(grad, in_dims = (0, None)), in_dims = (0, 0)), grad)]
fn listed(x: f64, w: f64) -> f64 {
    (x - w) * (x - w) * x
}

#[test]
fn nested_vmap_in_the_list_attribute() {
    let x = ragged(6);
    let w = component(6, 3);
    let g = listed_grad_vmap_vmap(&x, &w);
    for o in 0..6 {
        let want: Vec<f64> = x[o].iter().map(|&xi| listed_grad(xi, w[o])).collect();
        assert_eq!(bits(&g[o]), bits(&want), "outer sample {o}");
    }
}

/// An output of no components along axis 1 beside one along axis 0: the batch's size comes
/// from the output that has samples (the tuple of buffers counts the largest).
#[vmap(out_dims = (1, 0))]
fn empty_first(x: f64) -> ([f64; 0], f64) {
    ([x; 0], x * x + 1.0)
}

#[test]
fn an_output_of_no_components_does_not_shrink_the_batch() {
    for n in SIZES {
        let x = component(n, 0);
        let want: Vec<f64> = x.iter().map(|&v| empty_first(v).1).collect();
        let (none, y) = empty_first_vmap(&x);
        assert!(none.is_empty());
        assert_eq!(bits(&y), bits(&want), "n = {n}");
        for chunk in CHUNKS {
            let mut y = vec![f64::NAN; n];
            empty_first_vmap_into(&x, ([], &mut y), chunk);
            assert_eq!(bits(&y), bits(&want), "n = {n}, chunk_size = {chunk:?}");
        }
    }
}

include!("support/counting_alloc.rs");

/// The number of allocations `f` made on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    allocated(f).1
}

/// The `_into` forms of every layout allocate nothing on the calling thread, whether the
/// batch runs as one task or is split across threads.
#[test]
fn the_into_forms_allocate_nothing() {
    let n = 1023;
    let cs: Vec<Vec<f64>> = (0..3).map(|j| component(n, j)).collect();
    let x3 = [&cs[0][..], &cs[1][..], &cs[2][..]];
    let x2 = [&cs[0][..], &cs[1][..]];
    let pts: Vec<[f64; 2]> = (0..n).map(|k| [val(k, 0), val(k, 1)]).collect();
    let (mut a, mut b, mut c, mut d) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let w = [0.5, -1.25, 3.0];
    assert_eq!(allocations(|| soa_dot_vmap_into(x3, &w, &cs[2], &mut a, None)), 0);
    assert_eq!(allocations(|| rotate_vmap_into(&cs[0], x2, [&mut a, &mut b], None)), 0);
    // (`split` has `chunk_size = 3`: one task for the whole batch here.)
    let one_task = Some(n);
    assert_eq!(
        allocations(|| split_vmap_into(&pts, ([&mut a, &mut b, &mut c], &mut d), one_task)),
        0
    );
    // Split across threads: on a worker of a pool that is up (its first use allocates
    // it), the calling thread allocates nothing either. (Called from outside rayon's pools,
    // the tasks go through a shared queue that now and then allocates a new block.)
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
    pool.install(|| {
        split_vmap_into(&pts, ([&mut a, &mut b, &mut c], &mut d), None);
        assert_eq!(
            allocations(|| split_vmap_into(&pts, ([&mut a, &mut b, &mut c], &mut d), None)),
            0
        );
    });
    assert_eq!(
        allocations(|| bond_grad_vmap_into(x3, 2.5, [&mut a, &mut b, &mut c], None)),
        0
    );
    let xs = ragged(9);
    let ws = component(9, 1);
    let mut out: Vec<Vec<f64>> = xs.iter().map(|x| vec![0.0; x.len()]).collect();
    assert_eq!(allocations(|| scaled_vmap_vmap_into(&xs, &ws, &mut out, None)), 0);
    let mut m = vec![vec![0.0; 9]; 9];
    pool.install(|| {
        pair_vmap_vmap_into(&cs[0][..9], &cs[1][..9], &mut m, Some(9));
        assert_eq!(
            allocations(|| pair_vmap_vmap_into(&cs[0][..9], &cs[1][..9], &mut m, Some(9))),
            0
        );
    });
}

/// `vmap(grad_and_value(f, argnums = (0, .., 7)))`: each sample's gradient is a tuple of
/// eight (up to eight per-sample tuple elements are packed into lanes), the output a
/// `Vec` of those tuples beside the `Vec` of values; bit for bit the loop of the unbatched
/// function, in the allocating and `_into` forms.
#[vmap(in_dims = (None, None, None, None, None, None, None, None, 0))]
#[grad_and_value(argnums = (0, 1, 2, 3, 4, 5, 6, 7))]
#[allow(clippy::too_many_arguments)]
fn eight(a: f64, b: f64, c: [f64; 2], d: f64, e: f64, f: f64, g: [f64; 3], h: f64, x: [f64; 2]) -> f64 {
    let s = a * x[0] + b * x[1] + c[0] * c[1] * x[0] - d * x[1] * x[1];
    let t = e * s + f * (s * s + 1.0).sqrt() + g[0] * x[0] + g[1] * g[2] * x[1];
    h * t * t + s
}

#[test]
fn gradients_in_eight_arguments_are_tuples_per_sample() {
    type Grad = (f64, f64, [f64; 2], f64, f64, f64, [f64; 3], f64);
    let (c, g) = ([0.3, -0.7], [0.2, 0.9, -1.1]);
    for n in SIZES {
        let x: Vec<[f64; 2]> = (0..n).map(|k| [val(k, 0), val(k, 1)]).collect();
        let want: Vec<(Grad, f64)> = x
            .iter()
            .map(|x| eight_grad_and_value(0.5, -1.5, c, 0.25, 1.25, -0.75, g, 0.6, *x))
            .collect();
        let (gs, vs) = eight_grad_and_value_vmap(0.5, -1.5, c, 0.25, 1.25, -0.75, g, 0.6, &x);
        assert_eq!((gs.len(), vs.len()), (n, n));
        for k in 0..n {
            assert_eq!(
                format!("{:?}", gs[k]),
                format!("{:?}", want[k].0),
                "n = {n}, sample {k}"
            );
            assert_eq!(vs[k].to_bits(), want[k].1.to_bits(), "n = {n}, sample {k}");
        }
        for chunk in CHUNKS {
            let mut gb: Vec<Grad> = vec![
                (
                    f64::NAN,
                    f64::NAN,
                    [f64::NAN; 2],
                    f64::NAN,
                    f64::NAN,
                    f64::NAN,
                    [f64::NAN; 3],
                    f64::NAN
                );
                n
            ];
            let mut vb = vec![f64::NAN; n];
            eight_grad_and_value_vmap_into(0.5, -1.5, c, 0.25, 1.25, -0.75, g, 0.6, &x, (&mut gb, &mut vb), chunk);
            assert_eq!(format!("{gb:?}"), format!("{gs:?}"), "n = {n}, chunk_size = {chunk:?}");
            assert_eq!(format!("{vb:?}"), format!("{vs:?}"), "n = {n}, chunk_size = {chunk:?}");
        }
    }
}
