//! Random draws for annotated functions: [`Rng`], a counter-based generator.
//!
//! The code fluxion generates evaluates a function's operations as often as its transforms
//! need (a reverse pass recomputes, a Jacobian sweeps once per chunk of rows, a split
//! companion runs the forward part twice). So a draw cannot advance a generator's state:
//! every draw is a pure function of the generator (a seed and a stream) and a counter the
//! caller gives, and the same draw gives the same number however often, and in whatever
//! order, it is evaluated. This is JAX's explicit keys (`jax.random.fold_in`) on top of
//! ChaCha8 (`rand_chacha`), whose 2^64 streams and 2^64 blocks per stream make the
//! positioning exact.

use rand_chacha::rand_core::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A counter-based random number generator: a seed and a stream, no state.
///
/// Inside a function annotated with a fluxion transform, `rng.uniform(i)` and
/// `rng.normal(i)` (`uniform_f32`, `normal_f32`) are random draws, and `rng.fold_in(k)`,
/// `rng.sample(k)` derived generators. Draws are never differentiated (their derivative
/// is zero), and the same in the original function, in every generated derivative and in
/// every sample of a `vmap`. A draw is a pure function of the generator and its counter `i`: give each
/// draw of one function its own counter (a loop index, `2 * i + 1`), or its own generator
/// ([`Rng::fold_in`]); two draws with the same counter from the same generator are the
/// same number.
///
/// Under `#[vmap(randomness = "different")]` sample `k` of the batch draws from
/// [`rng.sample(k)`](Rng::sample); under `randomness = "same"` every sample draws from
/// `rng` itself (torch.func's `randomness` option). So a sample's numbers depend only on
/// the seed and the sample's index, never on chunking or threads.
///
/// ```
/// use fluxion::Rng;
///
/// let rng = Rng::new(42);
/// assert_eq!(rng.uniform(3), rng.uniform(3)); // a pure function of the counter
/// assert_ne!(rng.uniform(3), rng.uniform(4));
/// assert!((0.0..1.0).contains(&rng.uniform(3)));
/// assert_ne!(rng.fold_in(1).normal(0), rng.fold_in(2).normal(0));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rng {
    key: [u8; 32],
    stream: u64,
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rng")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// SplitMix64's output function: a bijection of `u64` with full avalanche.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64's increment.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
/// Domain separation of [`Rng::fold_in`] and [`Rng::sample`]: the two never give the same
/// stream from the same data by construction of their inputs to `mix`.
const FOLD_TAG: u64 = 0x6a09_e667_f3bc_c908;
const SAMPLE_TAG: u64 = 0xbb67_ae85_84ca_a73b;

impl Rng {
    /// The generator of `seed`, stream 0. The ChaCha8 key is the seed expanded by
    /// SplitMix64.
    pub const fn new(seed: u64) -> Rng {
        let mut key = [0u8; 32];
        let mut w = 0;
        while w < 4 {
            let k = mix(seed.wrapping_add(GOLDEN.wrapping_mul(w as u64 + 1))).to_le_bytes();
            let mut b = 0;
            while b < 8 {
                key[8 * w + b] = k[b];
                b += 1;
            }
            w += 1;
        }
        Rng { key, stream: 0 }
    }

    /// A new generator from this one and `data`, independent of it and of the generators
    /// of other data (JAX's `fold_in`): use it to give each call, layer or draw site of a
    /// function its own numbers. Streams are 64-bit hashes, so two derived generators
    /// share a stream with probability 2^-64.
    #[must_use]
    #[inline]
    pub fn fold_in(&self, data: u64) -> Rng {
        Rng {
            key: self.key,
            stream: mix(self.stream ^ mix(data ^ FOLD_TAG)),
        }
    }

    /// The generator sample `index` of a batch draws from under
    /// `#[vmap(randomness = "different")]`: `f_vmap(&rng, xs)[k]` is `f(&rng.sample(k),
    /// xs[k])`. Nested batches compose: sample `(o, k)` of a `vmap` of a `vmap` draws from
    /// `rng.sample(o).sample(k)`.
    #[must_use]
    #[inline]
    pub fn sample(&self, index: usize) -> Rng {
        Rng {
            key: self.key,
            stream: mix(self.stream ^ mix(index as u64 ^ SAMPLE_TAG)),
        }
    }

    /// The first 64 bits of ChaCha8 block `counter` of this generator's stream.
    #[inline]
    fn bits(&self, counter: u64, word: u128) -> (u64, u64) {
        let mut g = ChaCha8Rng::from_seed(self.key);
        g.set_stream(self.stream);
        g.set_word_pos(u128::from(counter) * 16 + word);
        (g.next_u64(), g.next_u64())
    }

    /// A draw uniform in `[0, 1)`: the 53 high bits of the first word of block `counter`,
    /// so every multiple of 2^-53 in the interval is equally likely.
    #[inline]
    pub fn uniform(&self, counter: usize) -> f64 {
        let (u, _) = self.bits(counter as u64, 0);
        (u >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (mean 0, variance 1) from block `counter`: Box-Muller on the
    /// block's first two words, with `libm`'s `log`, `sqrt` and `cos`, so the same bits on
    /// every target.
    #[inline]
    pub fn normal(&self, counter: usize) -> f64 {
        let (a, b) = self.bits(counter as u64, 0);
        // `u1` in (0, 1]: its logarithm is finite.
        let u1 = ((a >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let u2 = (b >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
    }

    /// [`Rng::uniform`] for `f32` functions: the 24 high bits of the block's first word,
    /// uniform in `[0, 1)`.
    #[inline]
    pub fn uniform_f32(&self, counter: usize) -> f32 {
        let (u, _) = self.bits(counter as u64, 0);
        (u >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// [`Rng::normal`] for `f32` functions: the `f64` draw rounded to `f32`.
    #[inline]
    pub fn normal_f32(&self, counter: usize) -> f32 {
        self.normal(counter) as f32
    }
}

/// A generator is never differentiated: its tangent and cotangent are `()`.
impl crate::Tangent for Rng {
    type T = ();
    #[inline(always)]
    fn zero_tangent(&self) {}
}

/// The placeholder the slots of a tape of generators start with (each is written before it
/// is read): `Rng::new(0)`.
impl crate::Zero for Rng {
    #[inline(always)]
    fn zero() -> Rng {
        Rng::new(0)
    }
}

/// One generator per lane of a chunk of a batch (`randomness = "different"`): lane `l` of
/// the chunk starting at sample `start` is `rng.sample(start + l)`. Lanes past the batch's
/// end (a last, partial chunk) draw numbers nobody reads. A kernel draws lane by lane with
/// the scalar draw, `Lanes::from_fn(|l| rngs.0[l].uniform(k))`: each sample's own bits.
#[derive(Clone, Copy, Debug)]
pub struct RngLanes<const L: usize>(pub [Rng; L]);

/// Generators are never differentiated: lanes of them have the tangent `()`.
impl<const L: usize> crate::Tangent for RngLanes<L> {
    type T = ();
    #[inline(always)]
    fn zero_tangent(&self) {}
}

/// The placeholder the slots of a tape of lanes of generators start with.
impl<const L: usize> crate::Zero for RngLanes<L> {
    #[inline(always)]
    fn zero() -> Self {
        RngLanes([Rng::new(0); L])
    }
}

impl<const L: usize> RngLanes<L> {
    /// The generators of samples `start..start + L` of the batch that draws from `rng`.
    #[inline]
    pub fn new(rng: &Rng, start: usize) -> Self {
        RngLanes(core::array::from_fn(|l| rng.sample(start + l)))
    }

    /// `rng` in every lane: a shared generator (`randomness = "same"`) where a batched
    /// condition chooses between generators.
    #[inline]
    pub fn splat<R: core::borrow::Borrow<Rng>>(rng: R) -> Self {
        RngLanes([*rng.borrow(); L])
    }

    /// Lane by lane [`Rng::sample`].
    #[must_use]
    #[inline]
    pub fn sample(&self, index: usize) -> Self {
        RngLanes(self.0.map(|r| r.sample(index)))
    }

    /// Lane by lane [`Rng::fold_in`].
    #[must_use]
    #[inline]
    pub fn fold_in(&self, data: u64) -> Self {
        RngLanes(self.0.map(|r| r.fold_in(data)))
    }
}

/// A generator chosen under a condition that differs between samples (`if x > 0.0 { r =
/// rng.fold_in(1); }` in a kernel): lane `l` from `a` where lane `l` of the mask is set,
/// from `b` elsewhere.
impl<M: crate::LaneMask, const L: usize> crate::SelectLanes<M> for RngLanes<L> {
    #[inline]
    fn select_lanes(m: M, a: Self, b: Self) -> Self {
        RngLanes(core::array::from_fn(|l| if m.lane(l) { a.0[l] } else { b.0[l] }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_pure_and_distinct() {
        let r = Rng::new(7);
        assert_eq!(r.uniform(5).to_bits(), r.uniform(5).to_bits());
        assert_ne!(r.uniform(5), r.uniform(6));
        assert_ne!(r.uniform(5), Rng::new(8).uniform(5));
        assert_ne!(r.fold_in(3).uniform(0), r.sample(3).uniform(0));
        assert_ne!(r.fold_in(3).uniform(0), r.fold_in(4).uniform(0));
        assert_eq!(r.sample(2).sample(1), r.sample(2).sample(1));
    }

    /// The key of `Rng::new(seed)` is the first four outputs of SplitMix64 seeded with
    /// `seed` (the published test vector of seed 1234567), little-endian.
    #[test]
    fn the_key_is_splitmix64_of_the_seed() {
        let words = |r: Rng| -> [u64; 4] {
            core::array::from_fn(|w| u64::from_le_bytes(r.key[8 * w..8 * w + 8].try_into().unwrap()))
        };
        assert_eq!(
            words(Rng::new(1234567)),
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431
            ]
        );
        assert_eq!(Rng::new(1234567).stream, 0);
    }

    /// Known answers: the streams of derived generators and the draws of ChaCha8 blocks,
    /// computed by an independent implementation of SplitMix64, ChaCha8 and Box-Muller
    /// (Python). A seed's numbers are part of the interface: a change to any of them
    /// changes every user's results.
    #[test]
    fn draws_are_the_known_answers() {
        type Row = (usize, f64, f64, f64);
        let r = Rng::new(42);
        let cases: [(Rng, u64, [Row; 3]); 5] = [
            (
                r,
                0,
                [
                    (0, 0.1917361602025135, 1.5274819065768688, 0.191736102104187),
                    (1, 0.9630025072070384, 0.16118502085899883, 0.9630025029182434),
                    (1000, 0.4437936903543962, 0.9070158021903197, 0.4437936544418335),
                ],
            ),
            (
                r.fold_in(9),
                0x0b53_3c6c_cbaa_f3cb,
                [
                    (0, 0.671984032912708, -0.28994309811006275, 0.6719840168952942),
                    (1, 0.9161103016002042, -0.4006264795449922, 0.9161102771759033),
                    (1000, 0.32768461685488137, -1.2734523041692756, 0.32768458127975464),
                ],
            ),
            (
                r.sample(5),
                0xfc14_b536_68e1_df84,
                [
                    (0, 0.8452522027409436, -0.550266290922765, 0.8452521562576294),
                    (1, 0.5458463328376261, 0.2645363931448921, 0.5458462834358215),
                    (1000, 0.4816020095171579, 1.1622417609422588, 0.4816019535064697),
                ],
            ),
            (
                r.fold_in(u64::MAX).sample(usize::MAX),
                0x5323_0aaa_5aa3_bd5d,
                [
                    (0, 0.6507202866233927, -0.20410075879412037, 0.6507202386856079),
                    (1, 0.6959545206190872, 0.34760009869235864, 0.6959545016288757),
                    (1000, 0.08368552386099826, 2.227006103964592, 0.08368551731109619),
                ],
            ),
            (
                Rng::new(7).sample(3).fold_in(12),
                0x49c9_4785_181f_56e2,
                [
                    (0, 0.193513426313346, -0.7666766083418921, 0.1935133934020996),
                    (1, 0.3106415914882259, -0.6996950592396646, 0.3106415867805481),
                    (1000, 0.8234001894377769, -0.0858163517279759, 0.8234001398086548),
                ],
            ),
        ];
        for (g, stream, rows) in cases {
            assert_eq!(g.stream, stream, "{g:?}");
            for (k, u, z, u32) in rows {
                assert_eq!(g.uniform(k), u, "uniform({k}) of {g:?}");
                assert_eq!(g.normal(k), z, "normal({k}) of {g:?}");
                assert_eq!(f64::from(g.uniform_f32(k)), u32, "uniform_f32({k}) of {g:?}");
                assert_eq!(g.normal_f32(k), z as f32, "normal_f32({k}) of {g:?}");
            }
        }
    }

    /// `Debug` shows the stream, never the key.
    #[test]
    fn debug_shows_the_stream() {
        let s = alloc::format!("{:?}", Rng::new(42).sample(5));
        assert_eq!(s, "Rng { stream: 18164342442384547716, .. }");
    }

    #[test]
    fn moments_are_those_of_the_distributions() {
        let r = Rng::new(1);
        let n = 20_000;
        let (mut su, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let u = r.uniform(i);
            assert!((0.0..1.0).contains(&u));
            let f = r.uniform_f32(i);
            assert!((0.0..1.0).contains(&f));
            su += u;
            let z = r.normal(i);
            assert!(z.is_finite());
            sn += z;
            sn2 += z * z;
        }
        let n = n as f64;
        // Standard errors: 0.002 for the uniform mean, 0.007 for the normal's moments.
        assert!((su / n - 0.5).abs() < 0.01, "uniform mean {}", su / n);
        assert!((sn / n).abs() < 0.03, "normal mean {}", sn / n);
        assert!((sn2 / n - 1.0).abs() < 0.05, "normal variance {}", sn2 / n);
    }

    #[test]
    fn lanes_hold_each_samples_generator() {
        let r = Rng::new(3);
        let rl = RngLanes::<4>::new(&r, 10);
        let folded = rl.fold_in(9);
        for l in 0..4 {
            assert_eq!(rl.0[l], r.sample(10 + l));
            assert_eq!(folded.0[l], r.sample(10 + l).fold_in(9));
        }
        assert_ne!(rl.0[0], rl.0[1]);
    }

    #[test]
    fn lanes_of_generators_select_lane_by_lane() {
        use crate::{f64x4, Lanes, SelectLanes};
        let r = Rng::new(3);
        let (a, b) = (RngLanes::<4>::new(&r, 0), RngLanes::<4>::new(&r.fold_in(1), 0));
        let x = [1.0, -1.0, 2.0, 0.0];
        let m = f64x4::from_fn(|l| x[l]).gt(f64x4::splat(0.0));
        let s = RngLanes::select_lanes(m, a, b);
        assert_eq!(s.0, [a.0[0], b.0[1], a.0[2], b.0[3]]);
    }
}
