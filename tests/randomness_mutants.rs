//! Tests written for surviving mutants of the random draws' code (DEVELOPMENT.md,
//! "Mutation testing", "Random draws and the unpacking"): each fails with the mutant it
//! names.

use fluxion::{grad, vmap, Rng};

/// A `vmap` of a `vmap`: the outer batch with `randomness = "same"`, the inner with
/// `"different"`, a shared array next to the generator.
#[vmap(in_dims = (None, None, 0), randomness = "same")]
#[vmap(in_dims = (None, None, 0), randomness = "different")]
fn shifted(rng: &Rng, p: [f64; 2], x: f64) -> f64 {
    p[0] * x + p[1] * rng.normal(0)
}

/// Under an outer `randomness = "same"` every outer sample draws from `rng` itself: sample
/// `(o, k)` is `shifted(&rng.sample(k), ..)`, whatever `o`; the shared array is passed as
/// it is. (`nested_items`' guard `a.shared == Some(Ty::Rng) && o.randomness == Different`
/// with `||` gave outer sample `o` the generator `rng.sample(o)`; as `true`, the array was
/// passed as `Rng::sample(&p, o)`, a compile error.)
#[test]
fn an_outer_same_batch_gives_every_outer_sample_the_generator() {
    let rng = Rng::new(5);
    let p = [0.5, 2.0];
    let xs: Vec<Vec<f64>> = (0..4)
        .map(|o| (0..o + 2).map(|k| k as f64 - 0.5 * o as f64).collect())
        .collect();
    let ys = shifted_vmap_vmap(&rng, p, &xs);
    assert_eq!(ys.len(), xs.len());
    for (o, inner) in xs.iter().enumerate() {
        assert_eq!(ys[o].len(), inner.len());
        for (k, &x) in inner.iter().enumerate() {
            assert_eq!(
                ys[o][k].to_bits(),
                shifted(&rng.sample(k), p, x).to_bits(),
                "outer {o}, sample {k}"
            );
        }
    }
}

#[vmap(in_dims = (None, None, 0), randomness = "different")]
fn scaled_noise(rng: &Rng, w: f64, x: f64) -> f64 {
    w * x + rng.normal(0)
}

#[grad(argnums = 1)]
fn scaled_noise_loss(rng: &Rng, w: f64, xs: &[f64]) -> f64 {
    let e = scaled_noise_vmap(rng, w, xs);
    let mut s = 0.0;
    for i in 0..xs.len() {
        s += e[i];
    }
    s
}

/// The reverse half of a batch that draws runs on lanes (`bwd_kernel`, each lane's
/// generator `RngLanes`): the shared `w`'s cotangent is summed in lanes over the full
/// chunks (lane `l` holds the samples `l`, `l + 4`), `(1e16 + -1e16) + 1 = 1` exactly,
/// where the reverse half sample by sample rounds `1e16 + 1` to `1e16` and gives `0`.
/// (`bwd_kernel` returning `None` fell back to the samples.)
#[test]
fn the_reverse_half_of_a_batch_that_draws_runs_on_lanes() {
    let xs = [1e16, 1.0, 0.0, 0.0, -1e16, 0.0, 0.0, 0.0];
    assert_eq!(scaled_noise_loss_grad(&Rng::new(1), 0.5, &xs), 1.0);
}
