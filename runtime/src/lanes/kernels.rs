//! Branch-free scalar kernels of the own SIMD functions of `f64x4`.
//!
//! Each kernel is straight-line code on one `f64` (selects, no branches, no table
//! lookups, no fused multiply-add), applied to the four lanes of an array: LLVM
//! vectorises the four copies to the vector width of the function they are inlined
//! into (two 128-bit halves on the baseline target, one 256-bit vector where AVX is
//! enabled), and the results are the same bits on every target. A kernel gives NaN
//! where it does not apply (arguments out of its range, NaN): the caller recomputes
//! those lanes with `libm` (`patch_nan`).

// Range checks are `(a <= x) & (x <= b)`: no short circuit, so no branch in the lanes.
#![allow(clippy::manual_range_contains)]

/// `1.5 * 2^52`: `x + SHIFT - SHIFT` is `x` rounded to an integer (ties to even) for
/// `|x| < 2^51`, and the low bits of `x + SHIFT` hold that integer.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `ln 2` in two parts (fdlibm's): `LN2_HI` has 32 significant bits, so `n * LN2_HI` is
/// exact for `|n| < 2^21`.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const LOG2_E: f64 = core::f64::consts::LOG2_E;

/// `if c { a } else { b }`, a select.
#[inline(always)]
fn sel(c: bool, a: f64, b: f64) -> f64 {
    if c {
        a
    } else {
        b
    }
}

/// `2^n` from `kd = n + SHIFT` (`n` an integer in `[-1022, 1023]`): `n + 1023` in the
/// exponent field.
#[inline(always)]
fn pow2_of_shifted(kd: f64) -> f64 {
    f64::from_bits(kd.to_bits().wrapping_add(1023) << 52)
}

/// `x = n ln 2 + r` with `n` the integer nearest `x log2 e` and `|r| <= 0.3466..`
/// (`|x| < 2^20`): `(n + SHIFT, n, r)`; `x - n LN2_HI` is exact.
#[inline(always)]
fn reduce_ln2(x: f64) -> (f64, f64, f64) {
    let kd = x * LOG2_E + SHIFT;
    let n = kd - SHIFT;
    (kd, n, (x - n * LN2_HI) - n * LN2_LO)
}

/// `e^r - 1` for `|r| <= 0.347`: Taylor to `r^13` (the first term left out is below
/// `2^-57` of the result), the tail by Estrin's scheme; the error is below 0.6 ulp.
#[inline(always)]
fn expm1_poly(r: f64) -> f64 {
    const C: [f64; 12] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let a0 = C[0] + C[1] * r;
    let a1 = C[2] + C[3] * r;
    let a2 = C[4] + C[5] * r;
    let a3 = C[6] + C[7] * r;
    let a4 = C[8] + C[9] * r;
    let a5 = C[10] + C[11] * r;
    let b0 = a0 + a1 * r2;
    let b1 = a2 + a3 * r2;
    let b2 = a4 + a5 * r2;
    let q = (b0 + b1 * r4) + b2 * r8;
    r + r2 * q
}

/// `e^x` for `x` in `[-708, 709]` (normal results), NaN elsewhere.
#[inline(always)]
pub(super) fn exp(x: f64) -> f64 {
    let ok = (x >= -708.0) & (x <= 709.0);
    let xc = sel(ok, x, 0.0);
    let (kd, _, r) = reduce_ln2(xc);
    let y = pow2_of_shifted(kd) * (1.0 + expm1_poly(r));
    sel(ok, y, f64::NAN)
}

/// `e^x - 1` for `x <= 709` (and `-inf`): `2^n (1 + p) - 1` as `(2^n - 1) + 2^n p`; below
/// `-40` the result rounds to `-1` and `x` is taken as `-40`. NaN at NaN and above 709.
#[inline(always)]
pub(super) fn exp_m1(x: f64) -> f64 {
    let xc = sel(x < -40.0, -40.0, x);
    let ok = xc <= 709.0;
    let xc = sel(ok, xc, f64::NAN);
    let (kd, _, r) = reduce_ln2(xc);
    let s = pow2_of_shifted(kd);
    // `e^-0 - 1` is `-0`, and every other result has the sign of `x`.
    ((s - 1.0) + s * expm1_poly(r)).copysign(x)
}

/// `tanh x = -t / (t + 2)` with `t = e^(-2|x|) - 1` (no overflow, no cancellation), the
/// sign of `x`. Every argument (NaN gives NaN, `±inf` gives `±1`).
#[inline(always)]
pub(super) fn tanh(x: f64) -> f64 {
    let t = exp_m1(-2.0 * x.abs());
    (-t / (t + 2.0)).copysign(x)
}

/// fdlibm's `log` coefficients: `R(z) ≈ (ln((1+s)/(1-s)) - 2s) / s`, `z = s²`.
const LG: [f64; 7] = [
    f64::from_bits(0x3FE5_5555_5555_5593),
    f64::from_bits(0x3FD9_9999_9997_FA04),
    f64::from_bits(0x3FD2_4924_9422_9359),
    f64::from_bits(0x3FCC_71C5_1D8E_78AF),
    f64::from_bits(0x3FC7_4664_96CB_03DE),
    f64::from_bits(0x3FC3_9A09_D078_C69F),
    f64::from_bits(0x3FC2_F112_DF3E_5244),
];

/// `x = 2^k m`, `m` in `[0.7071, 1.4142)`, for positive normal finite `x`: `(k, m)`
/// (fdlibm's split, on 64 bits).
#[inline(always)]
fn split_exponent(x: f64) -> (f64, f64) {
    let u = x.to_bits().wrapping_add(0x3FF0_0000_0000_0000 - 0x3FE6_A09E_0000_0000);
    let m = f64::from_bits((u & 0x000F_FFFF_FFFF_FFFF).wrapping_add(0x3FE6_A09E_0000_0000));
    // The biased exponent as a float: `2^52 + e` has the bits of `2^52` with `e` below.
    let k = f64::from_bits((u >> 52) | 0x4330_0000_0000_0000) - (4_503_599_627_370_496.0 + 1023.0);
    (k, m)
}

/// `ln x` for positive normal finite `x` (fdlibm's `log` without its branches: below
/// 1 ulp), NaN elsewhere.
#[inline(always)]
pub(super) fn ln(x: f64) -> f64 {
    let ok = (x >= f64::MIN_POSITIVE) & (x <= f64::MAX);
    let (k, m) = split_exponent(sel(ok, x, 1.0));
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let y = s * (hfsq + (t2 + t1)) + k * LN2_LO - hfsq + f + k * LN2_HI;
    sel(ok, y, f64::NAN)
}

/// `a + b = s + e` exactly (`|a| >= |b|` or `a` zero).
#[inline(always)]
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// `a + b = s + e` exactly (any order).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Dekker's split: `a = hi + lo`, each with at most 26 significant bits (`|a| < 2^995`).
#[inline(always)]
fn split(a: f64) -> (f64, f64) {
    let t = 134_217_729.0 * a;
    let hi = t - (t - a);
    (hi, a - hi)
}

/// `a b = p + e` exactly, without a fused multiply-add (Dekker).
#[inline(always)]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

/// `ln x` as `hi + lo` with a relative error near `2^-68`, for positive normal finite `x`:
/// `x = 2^k m`, `s = f / (2 + f)` with `f = m - 1`, `ln m = 2s + 2s³/3 + s^5 P(s²)`, the
/// first two terms in double-double.
#[inline(always)]
fn ln_dd(x: f64) -> (f64, f64) {
    let (k, m) = split_exponent(x);
    let f = m - 1.0;
    // u = 2s = 2f / d, d = 2 + f = d_hi + d_lo.
    let d_hi = 2.0 + f;
    let d_lo = (2.0 - d_hi) + f;
    let u_hi = (2.0 * f) / d_hi;
    let (p, pe) = two_prod(u_hi, d_hi);
    let u_lo = (((2.0 * f - p) - pe) - u_hi * d_lo) / d_hi;
    let (s_hi, s_lo) = (0.5 * u_hi, 0.5 * u_lo);
    // s³ (the first order of s_lo is enough: s_lo < 2^-53 s).
    let (a, ae) = two_prod(s_hi, s_hi);
    let (b, be) = two_prod(a, s_hi);
    let be = be + ae * s_hi + 3.0 * a * s_lo;
    // 2/3 s³ = (2/3)_hi s³ + (2/3)_lo s³.
    const TWO_THIRDS_HI: f64 = 2.0 / 3.0;
    const TWO_THIRDS_LO: f64 = 3.700_743_415_417_188e-17;
    let (g, ge) = two_prod(TWO_THIRDS_HI, b);
    let ge = ge + TWO_THIRDS_HI * be + TWO_THIRDS_LO * b;
    // s^5 P(z), P(z) = sum 2/(2j+5) z^j: ten terms, the truncation below 2^-51 of it.
    let z = s_hi * s_hi;
    let z2 = z * z;
    let z4 = z2 * z2;
    let z8 = z4 * z4;
    let c = |j: u32| 2.0 / (2 * j + 5) as f64;
    let q01 = c(0) + c(1) * z;
    let q23 = c(2) + c(3) * z;
    let q45 = c(4) + c(5) * z;
    let q67 = c(6) + c(7) * z;
    let q89 = c(8) + c(9) * z;
    let pz = (q01 + q23 * z2) + (q45 + q67 * z2) * z4 + q89 * z8;
    let tail = b * z * pz;
    // k ln 2 + u + g, in double-double.
    let (h, e1) = two_sum(k * LN2_HI, u_hi);
    let (h, e2) = two_sum(h, g);
    let lo = e1 + e2 + (k * LN2_LO + (u_lo + (ge + tail)));
    fast_two_sum(h, lo)
}

/// `x^y` for positive normal finite `x`, `|y| < 2^64` and normal results: `e^(y ln x)`
/// with `ln x` and the product in double-double. NaN elsewhere.
#[inline(always)]
pub(super) fn powf(x: f64, y: f64) -> f64 {
    let ok = (x >= f64::MIN_POSITIVE) & (x <= f64::MAX) & (y.abs() < 18_446_744_073_709_551_616.0);
    let (x, y) = (sel(ok, x, 1.0), sel(ok, y, 0.0));
    let (lh, ll) = ln_dd(x);
    let (zh, ze) = two_prod(y, lh);
    let ze = ze + y * ll;
    let ok = ok & (zh >= -708.0) & (zh <= 709.0);
    let zh = sel(ok, zh, 0.0);
    let (kd, n, _) = reduce_ln2(zh);
    let r = ((zh - n * LN2_HI) + ze) - n * LN2_LO;
    let v = pow2_of_shifted(kd) * (1.0 + expm1_poly(r));
    sel(ok, v, f64::NAN)
}
