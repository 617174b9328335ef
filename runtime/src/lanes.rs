//! Lane math for batched (`vmap`) code: every float primitive of the rule table on SIMD
//! lane types.
//!
//! [`Lanes`] is implemented for [`f64x4`] (4 samples of `f64`) and [`f32x8`] (8 samples of
//! `f32`), and for plain `f64` and `f32` as 1-lane types, so generic code and tests
//! share one interface. Comparisons give a [`LaneMask`] ([`Mask`]
//! for the vectors, `bool` for the 1-lane types), and `if`/`else` on batched values
//! becomes [`Lanes::select`]. Generated code calls the methods through the trait
//! (`Lanes::sin(x)`); `wide`'s vectors, which the functions taken from `wide` convert
//! to, have inherent methods of the same names, some with other semantics (`wide`'s
//! `f32x8::recip` is an approximation).
//!
//! The vectors are this crate's: 32 bytes of lanes whose operators (`+ - * / %`, `-x`,
//! their `+=` forms), comparisons and selects are array code, lane by lane. Inlined into
//! a function compiled for AVX2 (`batch::best_simd`), LLVM vectorises them to 256-bit
//! instructions; on the SSE2 baseline to two 128-bit ones, as `wide`'s. `wide`'s
//! vectors pick their instructions when `wide` is compiled, and without `target-cpu`
//! flags stay 128-bit even there. The functions taken from `wide` (below) convert to
//! `wide`'s type and back (the same bits; free once inlined).
//!
//! Each method has the semantics of the `f64`/`f32` method of the same name lane by lane
//! (NaN, infinities and the sign of zero included), within the error bound of the table
//! below. The runtime functions [`sign0`](Lanes::sign0), [`max_da`](Lanes::max_da) and
//! [`min_da`](Lanes::min_da) match [`crate::Real`]'s lane by lane, bit for bit.
//!
//! # Functions
//!
//! How each is computed on the vector types, and its error against std's method, in ulp
//! (units in the last place of the std result; 0 means the same bits). The bounds are
//! the maxima measured by `runtime/tests/lanes.rs` over its points (ordinary ranges, near
//! 0, `-0.0`, subnormals, large values, near domain edges, NaN and ±inf) on x86_64
//! without `target-cpu` flags (SSE2: `wide` builds each vector from 128-bit halves and
//! has no fused multiply-add), against glibc's libm; that test asserts them. The 1-lane
//! types compute with the `libm` crate (or `core` where exact) and are held to the same
//! bounds.
//!
//! "wide" is the `wide` crate's SIMD function, "array" element-wise array code (the
//! IEEE operation of each lane, vectorised by LLVM), "own" a SIMD implementation in this
//! module, "lane by lane" the scalar `libm` function applied to each lane, "libm from
//! 2^27" the lanes where `|x| >= 2^27` lane by lane (computed only when a batch has
//! such a lane). "Sign of `x`": `wide`'s result with the sign of `x` (its `ceil(-0.5)`
//! is `+0.0`). "Std's formula": the expression std's method evaluates, on lanes, so
//! that overflow and NaN follow std (`asinh(f64::MAX)` is `inf` there).
//!
//! | method | f64x4 | f64 ulp | f32x8 | f32 ulp |
//! |---|---|---|---|---|
//! | `+` `-` `*` `/` | array | 0 | array | 0 |
//! | `%` (truncated remainder) | array (lane by lane `%`) | 0 | array (lane by lane `%`) | 0 |
//! | `neg` | array | 0 | array | 0 |
//! | comparisons, `select` | array (masks of all ones or zeros) | 0 | array | 0 |
//! | `sin` | wide; libm from 2^27 | 1 | wide's `f64`, rounded; libm from 2^27 | 1 |
//! | `cos` | wide; libm from 2^27 | 1 | wide's `f64`, rounded; libm from 2^27 | 1 |
//! | `tan` | wide (`sin / cos`); libm from 2^27 | 3 | wide's `f64`, rounded; libm from 2^27 | 1 |
//! | `asin` | wide | 1 | wide | 2 |
//! | `acos` | wide | 1 | wide | 1 |
//! | `atan` | wide | 1 | wide | 3 |
//! | `sinh` | wide; libm from 709 | 3 | wide; libm from 88 | 3 |
//! | `cosh` | wide; libm from 709 | 1 | wide; libm from 88 | 2 |
//! | `tanh` | own (`-t / (t + 2)`, `t = exp_m1(-2 abs(x))`) | 3 | wide (from `exp_m1`) | 3 |
//! | `exp` | own (`2^n (1 + p(r))`); libm below -708, above 709 | 1 | wide | 1 |
//! | `exp2` | own (`e^(f ln 2) 2^n`, own `exp`); libm below -1021, above 1023 | 1 | wide; libm below -126 | 1 |
//! | `exp_m1` | own (`(2^n - 1) + 2^n p(r)`); libm above 709 | 2 | wide | 2 |
//! | `ln` | own (fdlibm's, branch-free); libm off positive normals | 1 | wide; libm below the smallest normal | 1 |
//! | `log2` | own (`e + ln(m) log2 e`, `x = 2^e m`, wide's `ln`); libm off positive normals | 2 | own's `f64`, rounded; libm off positive normals | 1 |
//! | `log10` | own (`e log10 2 + ln(m) log10 e`); libm off positive normals | 2 | own's `f64`, rounded; libm off positive normals | 2 |
//! | `ln_1p` | wide | 2 | wide | 2 |
//! | `sqrt` | wide | 0 | wide | 0 |
//! | `cbrt` | wide | 2 | wide | 2 |
//! | `abs` | wide | 0 | wide | 0 |
//! | `signum` | wide | 0 | wide | 0 |
//! | `recip` | own (`1 / x`) | 0 | own (`1 / x`; wide's is an approximation) | 0 |
//! | `trunc` | wide, sign of `x` | 0 | wide, sign of `x` | 0 |
//! | `atan2` | wide | 1 | wide | 2 |
//! | `powf` | own (`e^(y ln x)`, `ln x` and the product in double-double); libm off positive normal bases, `abs(y) >= 2^64`, results off normals | 1 | own (`exp(y ln x)` in own `f64`, rounded); lane by lane off positive normal bases and normal results | 1 |
//! | `powi` | own (binary powering, as compiler-rt's `__powidf2`) | 0 | own (binary powering) | 0 |
//! | `min` | wide | 0 | wide | 0 |
//! | `max` | wide | 0 | wide | 0 |
//! | `hypot` | own (`a sqrt(1 + (b/a)²)`) | 2 | own (`a sqrt(1 + (b/a)²)`) | 2 |
//! | `asinh` | own (std's formula, from `hypot` and `ln_1p`) | 2 | own (std's formula) | 3 |
//! | `acosh` | own (std's formula, from `sqrt` and `ln`) | 1 | own (std's formula) | 1 |
//! | `atanh` | own (std's formula, from `ln_1p`) | 2 | own (std's formula) | 2 |
//! | `floor` | wide, sign of `x` | 0 | wide, sign of `x` | 0 |
//! | `ceil` | wide, sign of `x` | 0 | wide, sign of `x` | 0 |
//! | `round` | wide, sign of `x` | 0 | wide, sign of `x` | 0 |
//! | `round_ties_even` | wide, sign of `x` | 0 | wide, sign of `x` | 0 |
//! | `fract` | wide (`x - trunc(x)`, as std) | 0 | wide | 0 |
//! | `to_degrees` | own (std's constant) | 0 | own (std's constant) | 0 |
//! | `to_radians` | own (std's constant) | 0 | own (std's constant) | 0 |
//! | `copysign` | wide | 0 | wide | 0 |
//! | `clamp` | own (selects) | 0 | own (selects) | 0 |
//! | `log` | own (`ln(x) / ln(base)`, as std) | 3 | own (`ln(x) / ln(base)`) | 3 |
//! | `rem_euclid` | wide (as std) | 0 | wide (as std) | 0 |
//! | `div_euclid` | wide (as std) | 0 | wide (as std) | 0 |
//! | `mul_add` | lane by lane (no fused multiply-add in SSE2) | 0 | lane by lane | 0 |
//! | `sign0` | own (selects) | 0 | own (selects) | 0 |
//! | `max_da` | own (selects) | 0 | own (selects) | 0 |
//! | `min_da` | own (selects) | 0 | own (selects) | 0 |

use core::fmt::Debug;
use core::ops::{Add, Div, Mul, Neg, Rem, Sub};

pub use vector::{f32x8, f64x4};

mod kernels;
mod vector;

/// A lane type's `wide` vector, for the functions taken from `wide` (the operators are
/// the lane type's own).
trait ViaWide: Copy {
    /// `wide`'s vector of the same lanes.
    type W: Copy;
    /// `self` as `wide`'s vector.
    fn to_w(self) -> Self::W;
    /// `wide`'s vector as `Self`.
    fn of_w(w: Self::W) -> Self;
}

impl ViaWide for f64x4 {
    type W = wide::f64x4;
    #[inline(always)]
    fn to_w(self) -> wide::f64x4 {
        self.wide()
    }
    #[inline(always)]
    fn of_w(w: wide::f64x4) -> f64x4 {
        f64x4::from_wide(w)
    }
}

impl ViaWide for f32x8 {
    type W = wide::f32x8;
    #[inline(always)]
    fn to_w(self) -> wide::f32x8 {
        self.wide()
    }
    #[inline(always)]
    fn of_w(w: wide::f32x8) -> f32x8 {
        f32x8::from_wide(w)
    }
}

/// A lane mask: one boolean per lane, the result of a comparison of [`Lanes`].
pub trait LaneMask: Copy + Debug {
    /// The number of lanes.
    const LANES: usize;
    /// Every lane `b`.
    fn splat(b: bool) -> Self;
    /// Lane `i` (panics if `i >= LANES`).
    fn lane(self, i: usize) -> bool;
    /// Lane by lane `a && b`.
    fn and(self, other: Self) -> Self;
    /// Lane by lane `a || b`.
    fn or(self, other: Self) -> Self;
    /// Lane by lane `!a`.
    fn not(self) -> Self;
    /// Whether some lane is set.
    fn any(self) -> bool;
    /// Whether every lane is set.
    fn all(self) -> bool;
}

/// The mask of a lane vector: each lane all ones (set) or all zeros (clear).
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct Mask<V>(V);

/// A batch of floats processed together: `LANES` samples of `Elem`, with every float
/// primitive of the rule table applied lane by lane.
///
/// See the [module documentation](crate::lanes) for how each method is computed and its error.
/// Binary methods take the second operand as a batch too; `powi`'s exponent is one `i32`
/// for all lanes.
pub trait Lanes:
    Copy
    + Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + Neg<Output = Self>
{
    /// The float type of one lane.
    type Elem: Copy + Debug + PartialOrd;
    /// The result of comparisons.
    type Mask: LaneMask;
    /// The number of lanes.
    const LANES: usize;

    /// Every lane `x`.
    fn splat(x: Self::Elem) -> Self;
    /// Every lane `x as Elem` (a literal in code generic over the lane type).
    fn splat_f64(x: f64) -> Self;
    /// Lane `i` is `f(i)`.
    fn from_fn(f: impl FnMut(usize) -> Self::Elem) -> Self;
    /// Lanes from `s[0..LANES]` (panics if `s` is shorter).
    #[inline(always)]
    fn from_slice(s: &[Self::Elem]) -> Self {
        let s = &s[..Self::LANES];
        Self::from_fn(|i| s[i])
    }
    /// Lanes from `s` (`s.len() <= LANES`, else a panic), the lanes past its end `pad`:
    /// the last, partial chunk of a batch.
    #[inline(always)]
    fn from_slice_partial(s: &[Self::Elem], pad: Self::Elem) -> Self {
        assert!(
            s.len() <= Self::LANES,
            "a partial chunk of {} samples for {} lanes",
            s.len(),
            Self::LANES
        );
        Self::from_fn(|i| if i < s.len() { s[i] } else { pad })
    }
    /// Writes the lanes to `s[0..LANES]` (panics if `s` is shorter).
    #[inline(always)]
    fn write_to_slice(self, s: &mut [Self::Elem]) {
        for (i, v) in s[..Self::LANES].iter_mut().enumerate() {
            *v = self.lane(i);
        }
    }
    /// Writes the first `s.len()` lanes to `s` (`s.len() <= LANES`, else a panic): the
    /// last, partial chunk of a batch.
    #[inline(always)]
    fn write_to_slice_partial(self, s: &mut [Self::Elem]) {
        assert!(
            s.len() <= Self::LANES,
            "a partial chunk of {} samples for {} lanes",
            s.len(),
            Self::LANES
        );
        for (i, v) in s.iter_mut().enumerate() {
            *v = self.lane(i);
        }
    }
    /// Lane `i` (panics if `i >= LANES`).
    fn lane(self, i: usize) -> Self::Elem;
    /// Writes the `LANES x LANES` block `rows` transposed: `out[l][at + q]` is lane `l` of
    /// `rows[q]` (`rows.len() == out.len() == LANES`; the rows of a chunk's samples,
    /// `vmap`'s unpacking of array results). Element by element here; `f64x4` stores
    /// each sample's two pairs at once.
    #[inline(always)]
    fn store_transposed<const N: usize>(rows: &[Self], out: &mut [&mut [Self::Elem; N]], at: usize) {
        for (q, r) in rows.iter().enumerate() {
            for (l, o) in out.iter_mut().enumerate() {
                o[at + q] = r.lane(l);
            }
        }
    }
    /// `f` applied to each lane.
    #[inline(always)]
    fn map(self, f: impl Fn(Self::Elem) -> Self::Elem) -> Self {
        Self::from_fn(|i| f(self.lane(i)))
    }
    /// `f` applied to each pair of lanes.
    #[inline(always)]
    fn map2(self, other: Self, f: impl Fn(Self::Elem, Self::Elem) -> Self::Elem) -> Self {
        Self::from_fn(|i| f(self.lane(i), other.lane(i)))
    }

    /// Lane by lane `a < b` (false where either is NaN).
    fn lt(self, other: Self) -> Self::Mask;
    /// Lane by lane `a <= b`.
    fn le(self, other: Self) -> Self::Mask;
    /// Lane by lane `a > b`.
    fn gt(self, other: Self) -> Self::Mask;
    /// Lane by lane `a >= b`.
    fn ge(self, other: Self) -> Self::Mask;
    /// Lane by lane `a == b` (`-0.0 == 0.0`, NaN equal to nothing).
    fn eq(self, other: Self) -> Self::Mask;
    /// Lane by lane `a != b` (true where either is NaN).
    fn ne(self, other: Self) -> Self::Mask;
    /// Lane by lane `if m { a } else { b }`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;

    /// `f64::sin`.
    fn sin(self) -> Self;
    /// `f64::cos`.
    fn cos(self) -> Self;
    /// `f64::tan`.
    fn tan(self) -> Self;
    /// `f64::asin`.
    fn asin(self) -> Self;
    /// `f64::acos`.
    fn acos(self) -> Self;
    /// `f64::atan`.
    fn atan(self) -> Self;
    /// `f64::sinh`.
    fn sinh(self) -> Self;
    /// `f64::cosh`.
    fn cosh(self) -> Self;
    /// `f64::tanh`.
    fn tanh(self) -> Self;
    /// `f64::exp`.
    fn exp(self) -> Self;
    /// `f64::exp2`.
    fn exp2(self) -> Self;
    /// `f64::exp_m1`.
    fn exp_m1(self) -> Self;
    /// `f64::ln`.
    fn ln(self) -> Self;
    /// `f64::log2`.
    fn log2(self) -> Self;
    /// `f64::log10`.
    fn log10(self) -> Self;
    /// `f64::ln_1p`.
    fn ln_1p(self) -> Self;
    /// `f64::sqrt`.
    fn sqrt(self) -> Self;
    /// `f64::cbrt`.
    fn cbrt(self) -> Self;
    /// `f64::abs`.
    fn abs(self) -> Self;
    /// `f64::signum` (`±1` at `±0`, NaN at NaN).
    fn signum(self) -> Self;
    /// `f64::recip` (`1 / x`).
    fn recip(self) -> Self;
    /// `f64::trunc`.
    fn trunc(self) -> Self;
    /// `f64::floor`.
    fn floor(self) -> Self;
    /// `f64::ceil`.
    fn ceil(self) -> Self;
    /// `f64::round` (half-way cases away from zero).
    fn round(self) -> Self;
    /// `f64::round_ties_even`.
    fn round_ties_even(self) -> Self;
    /// `f64::fract` (`x - x.trunc()`).
    fn fract(self) -> Self;
    /// `f64::to_degrees`.
    fn to_degrees(self) -> Self;
    /// `f64::to_radians`.
    fn to_radians(self) -> Self;
    /// `f64::asinh`.
    fn asinh(self) -> Self;
    /// `f64::acosh`.
    fn acosh(self) -> Self;
    /// `f64::atanh`.
    fn atanh(self) -> Self;
    /// `self.atan2(other)`: the angle of the point `(other, self)`.
    fn atan2(self, other: Self) -> Self;
    /// `f64::powf`.
    fn powf(self, n: Self) -> Self;
    /// `f64::powi`, one exponent for every lane.
    fn powi(self, n: i32) -> Self;
    /// `f64::min` (the other operand where one is NaN).
    fn min(self, other: Self) -> Self;
    /// `f64::max` (the other operand where one is NaN).
    fn max(self, other: Self) -> Self;
    /// `f64::hypot`.
    fn hypot(self, other: Self) -> Self;
    /// `f64::copysign`: the magnitude of `self`, the sign of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// `f64::clamp`; panics, as std does, if in some lane `min > max` or either is NaN.
    fn clamp(self, min: Self, max: Self) -> Self;
    /// `f64::log`: `self.ln() / base.ln()`.
    fn log(self, base: Self) -> Self;
    /// `f64::rem_euclid`.
    fn rem_euclid(self, rhs: Self) -> Self;
    /// `f64::div_euclid`.
    fn div_euclid(self, rhs: Self) -> Self;
    /// `f64::mul_add`: `self * a + b` with one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// [`crate::sign0`] lane by lane: the sign, `0` at `±0` and NaN.
    fn sign0(self) -> Self;
    /// [`crate::max_da`] lane by lane: `∂ max(self, other) / ∂ self`.
    fn max_da(self, other: Self) -> Self;
    /// [`crate::min_da`] lane by lane: `∂ min(self, other) / ∂ self`.
    fn min_da(self, other: Self) -> Self;
}

/// `x.powi(n)` by binary powering, as compiler-rt's `__powidf2` (what `f64::powi` calls
/// when the exponent is not a constant): the same multiplications in the same order.
#[inline(always)]
fn powi_by_squaring<L: Lanes>(x: L, n: i32, one: L) -> L {
    let mut b = n.unsigned_abs();
    let (mut a, mut r) = (x, one);
    loop {
        if b & 1 != 0 {
            r = r * a;
        }
        b >>= 1;
        if b == 0 {
            break;
        }
        a = a * a;
    }
    if n < 0 {
        one / r
    } else {
        r
    }
}

/// `fast` in the lanes where `ok`, `slow(i)` in the others: a SIMD function where it is
/// accurate, the 1-lane function where it is not (large arguments of `sin`, overflow of
/// `sinh`, subnormals of `ln`, ..). The slow lanes are computed only when there are some.
#[inline(always)]
fn patch<L: Lanes>(ok: L::Mask, fast: L, slow: impl Fn(usize) -> L::Elem) -> L {
    if ok.all() {
        fast
    } else {
        L::from_fn(|i| if ok.lane(i) { fast.lane(i) } else { slow(i) })
    }
}

/// std's `asinh`: `ln_1p(|x| + |x| / (hypot(1, 1/|x|) + 1/|x|))` with the sign of `x`.
#[inline(always)]
fn asinh_std<L: Lanes>(x: L) -> L {
    let ax = Lanes::abs(x);
    let ix = L::splat_f64(1.0) / ax;
    Lanes::copysign(Lanes::ln_1p(ax + ax / (Lanes::hypot(L::splat_f64(1.0), ix) + ix)), x)
}

/// std's `acosh`: NaN below 1, else `ln(x + sqrt(x - 1) sqrt(x + 1))`.
#[inline(always)]
fn acosh_std<L: Lanes>(x: L) -> L {
    let one = L::splat_f64(1.0);
    let y = Lanes::ln(x + Lanes::sqrt(x - one) * Lanes::sqrt(x + one));
    L::select(Lanes::lt(x, one), L::splat_f64(f64::NAN), y)
}

/// std's `atanh`: `0.5 ln_1p(2x / (1 - x))`.
#[inline(always)]
fn atanh_std<L: Lanes>(x: L) -> L {
    let two = L::splat_f64(2.0);
    L::splat_f64(0.5) * Lanes::ln_1p(two * x / (L::splat_f64(1.0) - x))
}

/// `hypot` without overflow or underflow: `a sqrt(1 + (b/a)²)` with `a = max(|x|, |y|)`,
/// `b = min(|x|, |y|)`; `+inf` if either is infinite (even with a NaN), else NaN if
/// either is NaN, `0` if both are zero.
#[inline(always)]
fn hypot_simd<L: Lanes>(x: L, y: L) -> L {
    let (ax, ay) = (Lanes::abs(x), Lanes::abs(y));
    let big = Lanes::gt(ay, ax);
    let (a, b) = (L::select(big, ay, ax), L::select(big, ax, ay));
    let r = b / a;
    let one = L::splat_f64(1.0);
    let h = a * Lanes::sqrt(one + r * r);
    let inf = L::splat_f64(f64::INFINITY);
    let h = L::select(Lanes::eq(a, L::splat_f64(0.0)), L::splat_f64(0.0), h);
    let h = L::select(Lanes::ne(x, x).or(Lanes::ne(y, y)), L::splat_f64(f64::NAN), h);
    L::select(Lanes::eq(ax, inf).or(Lanes::eq(ay, inf)), inf, h)
}

/// `1` where `first`, else `0.5` where `tie`, else `0`: `max_da` and `min_da`.
#[inline(always)]
fn tie_split<L: Lanes>(first: L::Mask, tie: L::Mask) -> L {
    let rest = L::select(tie, L::splat_f64(0.5), L::splat_f64(0.0));
    L::select(first, L::splat_f64(1.0), rest)
}

/// `sign0`, `max_da`, `min_da` from comparisons and selects (`Real`'s definitions).
macro_rules! derivative_helpers {
    () => {
        #[inline(always)]
        fn sign0(self) -> Self {
            let (zero, one) = (<Self as Lanes>::splat(0.0), <Self as Lanes>::splat(1.0));
            let neg = <Self as Lanes>::select(Lanes::lt(self, zero), -one, zero);
            <Self as Lanes>::select(Lanes::gt(self, zero), one, neg)
        }
        #[inline(always)]
        fn max_da(self, other: Self) -> Self {
            let first = Lanes::gt(self, other).or(Lanes::ne(other, other));
            tie_split::<Self>(first, Lanes::eq(self, other))
        }
        #[inline(always)]
        fn min_da(self, other: Self) -> Self {
            let first = Lanes::lt(self, other).or(Lanes::ne(other, other));
            tie_split::<Self>(first, Lanes::eq(self, other))
        }
        #[inline(always)]
        fn clamp(self, min: Self, max: Self) -> Self {
            assert!(
                Lanes::le(min, max).all(),
                "clamp: min > max, or either was NaN, in some lane"
            );
            let high = <Self as Lanes>::select(Lanes::gt(self, max), max, self);
            <Self as Lanes>::select(Lanes::lt(self, min), min, high)
        }
        #[inline(always)]
        fn powi(self, n: i32) -> Self {
            powi_by_squaring(self, n, Self::splat(1.0))
        }
        #[inline(always)]
        fn log(self, base: Self) -> Self {
            Lanes::ln(self) / Lanes::ln(base)
        }
    };
}

impl LaneMask for bool {
    const LANES: usize = 1;
    #[inline(always)]
    fn splat(b: bool) -> bool {
        b
    }
    #[inline(always)]
    fn lane(self, i: usize) -> bool {
        assert!(i == 0, "lane {i} of 1");
        self
    }
    #[inline(always)]
    fn and(self, other: bool) -> bool {
        self & other
    }
    #[inline(always)]
    fn or(self, other: bool) -> bool {
        self | other
    }
    #[inline(always)]
    fn not(self) -> bool {
        !self
    }
    #[inline(always)]
    fn any(self) -> bool {
        self
    }
    #[inline(always)]
    fn all(self) -> bool {
        self
    }
}

/// `f64`/`f32` as 1-lane types: `libm`'s functions (`core` has none of them).
macro_rules! scalar_lanes {
    ($t:ident, deg: $deg:expr, rad: $rad:expr,
     unary: {$($m:ident => $f:path),* $(,)?},
     binary: {$($m2:ident => $f2:path),* $(,)?},
     fma: $fma:path, trunc: $trunc:path, fabs: $fabs:path, copysign: $cs:path) => {
        impl Lanes for $t {
            type Elem = $t;
            type Mask = bool;
            const LANES: usize = 1;
            #[inline(always)]
            fn splat(x: $t) -> $t {
                x
            }
            #[inline(always)]
            fn splat_f64(x: f64) -> $t {
                x as $t
            }
            #[inline(always)]
            fn from_fn(mut f: impl FnMut(usize) -> $t) -> $t {
                f(0)
            }
            #[inline(always)]
            fn lane(self, i: usize) -> $t {
                assert!(i == 0, "lane {i} of 1");
                self
            }
            #[inline(always)]
            fn lt(self, other: $t) -> bool {
                self < other
            }
            #[inline(always)]
            fn le(self, other: $t) -> bool {
                self <= other
            }
            #[inline(always)]
            fn gt(self, other: $t) -> bool {
                self > other
            }
            #[inline(always)]
            fn ge(self, other: $t) -> bool {
                self >= other
            }
            #[inline(always)]
            fn eq(self, other: $t) -> bool {
                self == other
            }
            #[inline(always)]
            fn ne(self, other: $t) -> bool {
                self != other
            }
            #[inline(always)]
            fn select(m: bool, a: $t, b: $t) -> $t {
                if m {
                    a
                } else {
                    b
                }
            }
            $(
                #[inline(always)]
                fn $m(self) -> $t {
                    $f(self)
                }
            )*
            $(
                #[inline(always)]
                fn $m2(self, other: $t) -> $t {
                    $f2(self, other)
                }
            )*
            #[inline(always)]
            fn asinh(self) -> $t {
                asinh_std(self)
            }
            #[inline(always)]
            fn acosh(self) -> $t {
                acosh_std(self)
            }
            #[inline(always)]
            fn atanh(self) -> $t {
                atanh_std(self)
            }
            #[inline(always)]
            fn signum(self) -> $t {
                if self.is_nan() {
                    self
                } else {
                    $cs(1.0, self)
                }
            }
            #[inline(always)]
            fn recip(self) -> $t {
                1.0 / self
            }
            #[inline(always)]
            fn fract(self) -> $t {
                self - $trunc(self)
            }
            #[inline(always)]
            fn to_degrees(self) -> $t {
                self * $deg
            }
            #[inline(always)]
            fn to_radians(self) -> $t {
                self * $rad
            }
            #[inline(always)]
            fn rem_euclid(self, rhs: $t) -> $t {
                let r = self % rhs;
                if r < 0.0 {
                    r + $fabs(rhs)
                } else {
                    r
                }
            }
            #[inline(always)]
            fn div_euclid(self, rhs: $t) -> $t {
                let q = $trunc(self / rhs);
                if self % rhs < 0.0 {
                    if rhs > 0.0 {
                        q - 1.0
                    } else {
                        q + 1.0
                    }
                } else {
                    q
                }
            }
            #[inline(always)]
            fn mul_add(self, a: $t, b: $t) -> $t {
                $fma(self, a, b)
            }
            derivative_helpers!();
        }
    };
}

scalar_lanes!(f64, deg: 180.0f64 / core::f64::consts::PI, rad: core::f64::consts::PI / 180.0,
    unary: {
        sin => libm::sin, cos => libm::cos, tan => libm::tan, asin => libm::asin,
        acos => libm::acos, atan => libm::atan, sinh => libm::sinh, cosh => libm::cosh,
        tanh => libm::tanh, exp => libm::exp, exp2 => libm::exp2, exp_m1 => libm::expm1,
        ln => libm::log, log2 => libm::log2, log10 => libm::log10, ln_1p => libm::log1p,
        sqrt => libm::sqrt, cbrt => libm::cbrt, abs => libm::fabs, trunc => libm::trunc,
        floor => libm::floor, ceil => libm::ceil, round => libm::round,
        round_ties_even => libm::roundeven,
    },
    binary: {
        atan2 => libm::atan2, powf => libm::pow, min => libm::fmin, max => libm::fmax,
        hypot => libm::hypot, copysign => libm::copysign,
    },
    fma: libm::fma, trunc: libm::trunc, fabs: libm::fabs, copysign: libm::copysign);

scalar_lanes!(f32, deg: 57.295_78_f32, rad: core::f32::consts::PI / 180.0,
    unary: {
        sin => libm::sinf, cos => libm::cosf, tan => libm::tanf, asin => libm::asinf,
        acos => libm::acosf, atan => libm::atanf, sinh => libm::sinhf, cosh => libm::coshf,
        tanh => libm::tanhf, exp => libm::expf, exp2 => libm::exp2f, exp_m1 => libm::expm1f,
        ln => libm::logf, log2 => libm::log2f, log10 => libm::log10f, ln_1p => libm::log1pf,
        sqrt => libm::sqrtf, cbrt => libm::cbrtf, abs => libm::fabsf, trunc => libm::truncf,
        floor => libm::floorf, ceil => libm::ceilf, round => libm::roundf,
        round_ties_even => libm::roundevenf,
    },
    binary: {
        atan2 => libm::atan2f, powf => libm::powf, min => libm::fminf, max => libm::fmaxf,
        hypot => libm::hypotf, copysign => libm::copysignf,
    },
    fma: libm::fmaf, trunc: libm::truncf, fabs: libm::fabsf, copysign: libm::copysignf);

/// The vectors: `wide`'s functions where they meet the table's bounds (through
/// `ViaWide`), the 1-lane function lane by lane where `wide` has none.
macro_rules! vector_lanes {
    ($v:ident, $t:ident, $n:literal, deg: $deg:expr, rad: $rad:expr,
     wide: {$($w:ident),* $(,)?}, wide2: {$($w2:ident),* $(,)?},
     rounding: {$($r:ident),* $(,)?},
     guarded: {$($g:ident if |$x:ident| $ok:expr => $fast:expr),* $(,)?},
     own: {$($own:item)*}) => {
        impl LaneMask for Mask<$v> {
            const LANES: usize = $n;
            #[inline(always)]
            fn splat(b: bool) -> Self {
                // `0 == 0` sets every bit of a lane.
                Mask(if b { $v::ZERO.simd_eq($v::ZERO) } else { $v::ZERO })
            }
            #[inline(always)]
            fn lane(self, i: usize) -> bool {
                assert!(i < $n, "lane {i} of {}", $n);
                (self.0.to_bitmask() >> i) & 1 != 0
            }
            #[inline(always)]
            fn and(self, other: Self) -> Self {
                Mask(self.0 & other.0)
            }
            #[inline(always)]
            fn or(self, other: Self) -> Self {
                Mask(self.0 | other.0)
            }
            #[inline(always)]
            fn not(self) -> Self {
                Mask(!self.0)
            }
            #[inline(always)]
            fn any(self) -> bool {
                self.0.any()
            }
            #[inline(always)]
            fn all(self) -> bool {
                self.0.all()
            }
        }

        impl Lanes for $v {
            type Elem = $t;
            type Mask = Mask<$v>;
            const LANES: usize = $n;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                $v::splat(x)
            }
            #[inline(always)]
            fn splat_f64(x: f64) -> Self {
                $v::splat(x as $t)
            }
            #[inline(always)]
            fn from_fn(f: impl FnMut(usize) -> $t) -> Self {
                $v::new(core::array::from_fn(f))
            }
            #[inline(always)]
            fn from_slice(s: &[$t]) -> Self {
                let mut a = [0.0; $n];
                a.copy_from_slice(&s[..$n]);
                $v::new(a)
            }
            #[inline(always)]
            fn write_to_slice(self, s: &mut [$t]) {
                s[..$n].copy_from_slice(self.as_array());
            }
            #[inline(always)]
            fn lane(self, i: usize) -> $t {
                self.as_array()[i]
            }
            #[inline(always)]
            fn lt(self, other: Self) -> Mask<$v> {
                Mask(self.simd_lt(other))
            }
            #[inline(always)]
            fn le(self, other: Self) -> Mask<$v> {
                Mask(self.simd_le(other))
            }
            #[inline(always)]
            fn gt(self, other: Self) -> Mask<$v> {
                Mask(self.simd_gt(other))
            }
            #[inline(always)]
            fn ge(self, other: Self) -> Mask<$v> {
                Mask(self.simd_ge(other))
            }
            #[inline(always)]
            fn eq(self, other: Self) -> Mask<$v> {
                Mask(self.simd_eq(other))
            }
            #[inline(always)]
            fn ne(self, other: Self) -> Mask<$v> {
                Mask(self.simd_ne(other))
            }
            #[inline(always)]
            fn select(m: Mask<$v>, a: Self, b: Self) -> Self {
                m.0.select(a, b)
            }
            $(
                #[inline(always)]
                fn $w(self) -> Self {
                    Self::of_w(<<$v as ViaWide>::W>::$w(self.to_w()))
                }
            )*
            $(
                #[inline(always)]
                fn $w2(self, other: Self) -> Self {
                    Self::of_w(<<$v as ViaWide>::W>::$w2(self.to_w(), other.to_w()))
                }
            )*
            // `wide` gives `+0.0` for some results that are `-0.0` (`ceil(-0.5)`): every
            // rounding of `x` has the sign of `x`.
            $(
                #[inline(always)]
                fn $r(self) -> Self {
                    type W = <$v as ViaWide>::W;
                    let x = self.to_w();
                    Self::of_w(W::copysign(W::$r(x), x))
                }
            )*
            $(
                #[inline(always)]
                fn $g(self) -> Self {
                    let $x = self;
                    patch($ok, $fast, |i| <$t as Lanes>::$g(self.lane(i)))
                }
            )*
            $($own)*
            #[inline(always)]
            fn hypot(self, other: Self) -> Self {
                hypot_simd(self, other)
            }
            #[inline(always)]
            fn asinh(self) -> Self {
                asinh_std(self)
            }
            #[inline(always)]
            fn acosh(self) -> Self {
                acosh_std(self)
            }
            #[inline(always)]
            fn atanh(self) -> Self {
                atanh_std(self)
            }
            #[inline(always)]
            fn recip(self) -> Self {
                $v::ONE / self
            }
            #[inline(always)]
            fn to_degrees(self) -> Self {
                self * $v::splat($deg)
            }
            #[inline(always)]
            fn to_radians(self) -> Self {
                self * $v::splat($rad)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                Self::from_fn(|i| <$t as Lanes>::mul_add(self.lane(i), a.lane(i), b.lane(i)))
            }
            derivative_helpers!();
        }
    };
}

/// `f` applied to each lane: a scalar kernel of `kernels`, which LLVM vectorises.
#[inline(always)]
fn map4(x: f64x4, f: impl Fn(f64) -> f64) -> f64x4 {
    let a = x.to_array();
    f64x4::new([f(a[0]), f(a[1]), f(a[2]), f(a[3])])
}

/// `fast`, with its NaN lanes (where a kernel does not apply) recomputed by `slow(i)`,
/// only when there are some.
#[inline(always)]
fn patch_nan(fast: f64x4, slow: impl Fn(usize) -> f64) -> f64x4 {
    patch(Lanes::eq(fast, fast), fast, slow)
}

/// `x` as two `f64x4` (exact).
#[inline(always)]
fn widen(x: f32x8) -> (f64x4, f64x4) {
    let a = x.to_array();
    let w = |k: usize| f64x4::new([a[k] as f64, a[k + 1] as f64, a[k + 2] as f64, a[k + 3] as f64]);
    (w(0), w(4))
}

/// Two `f64x4` rounded to one `f32x8`.
#[inline(always)]
fn narrow(lo: f64x4, hi: f64x4) -> f32x8 {
    let (l, h) = (lo.to_array(), hi.to_array());
    f32x8::new([
        l[0] as f32,
        l[1] as f32,
        l[2] as f32,
        l[3] as f32,
        h[0] as f32,
        h[1] as f32,
        h[2] as f32,
        h[3] as f32,
    ])
}

/// `f` of `f64x4` on the `f32` lanes, computed in `f64` and rounded once: `wide`'s `f32`
/// argument reduction of `sin` is off by tens of ulps near zeros of `cos` from a few
/// hundred on, and its `f32` `powf` by as many.
#[inline(always)]
fn in_f64(x: f32x8, f: impl Fn(f64x4) -> f64x4) -> f32x8 {
    let (lo, hi) = widen(x);
    narrow(f(lo), f(hi))
}

/// `x = 2^e m` with `m` in `[sqrt(1/2), sqrt(2))`, for positive normal finite `x`: `(e, m)`.
#[inline(always)]
fn split_exponent(x: f64x4) -> (f64x4, f64x4) {
    let bits = x.to_bits();
    let m = f64x4::from_bits(bits.map(|b| (b & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000));
    // The biased exponent as a float: `2^52 + k` has the bits of `2^52` with `k` below.
    let e = f64x4::from_bits(bits.map(|b| (b >> 52) | 0x4330_0000_0000_0000)) - f64x4::splat(4_503_599_627_371_519.0);
    let big = Lanes::gt(m, f64x4::splat(core::f64::consts::SQRT_2));
    (
        Lanes::select(big, e + f64x4::ONE, e),
        Lanes::select(big, m * f64x4::HALF, m),
    )
}

/// `log2 x = e + ln(m) log2(e)` (`x = 2^e m`): exact at powers of two, where `wide`'s
/// `ln(x) log2(e)` is not (`log2(8)` was `2.9999999999999996`).
#[inline(always)]
fn log2_f64(x: f64x4) -> f64x4 {
    let (e, m) = split_exponent(x);
    e + wide_ln(m) * f64x4::LOG2_E
}

/// `log10 x = e log10(2) + ln(m) log10(e)` (`x = 2^e m`), with `log10(2)` in two parts
/// (fdlibm's) so that `e log10(2)` is exact: `log10(1000)` is 3.
#[inline(always)]
fn log10_f64(x: f64x4) -> f64x4 {
    const LOG10_2_HI: f64 = f64::from_bits(0x3FD3_4413_509F_6000);
    const LOG10_2_LO: f64 = f64::from_bits(0x3D59_FEF3_11F1_2B36);
    let (e, m) = split_exponent(x);
    e * f64x4::splat(LOG10_2_HI) + (e * f64x4::splat(LOG10_2_LO) + wide_ln(m) * f64x4::LOG10_E)
}

/// `wide`'s `ln`.
#[inline(always)]
fn wide_ln(x: f64x4) -> f64x4 {
    f64x4::from_wide(x.wide().ln())
}

/// `wide`'s `sin`, `cos`, `tan` of `f64` lose accuracy from `2^29` on (measured): the
/// larger arguments go to `libm`.
const TRIG_MAX: f64 = 134_217_728.0;

vector_lanes!(f64x4, f64, 4, deg: 180.0f64 / core::f64::consts::PI, rad: core::f64::consts::PI / 180.0,
wide: { ln_1p, sqrt, cbrt, abs, signum, fract, asin, acos, atan },
wide2: { atan2, min, max, copysign, rem_euclid, div_euclid },
rounding: { trunc, floor, ceil, round, round_ties_even },
guarded: {
    sin if |x| Lanes::lt(Lanes::abs(x), f64x4::splat(TRIG_MAX)) => f64x4::from_wide(x.wide().sin()),
    cos if |x| Lanes::lt(Lanes::abs(x), f64x4::splat(TRIG_MAX)) => f64x4::from_wide(x.wide().cos()),
    tan if |x| Lanes::lt(Lanes::abs(x), f64x4::splat(TRIG_MAX)) => f64x4::from_wide(x.wide().tan()),
    sinh if |x| Lanes::lt(Lanes::abs(x), f64x4::splat(709.0)) => f64x4::from_wide(x.wide().sinh()),
    cosh if |x| Lanes::lt(Lanes::abs(x), f64x4::splat(709.0)) => f64x4::from_wide(x.wide().cosh()),
    // `wide`'s `exp2` of `f64` is off by up to 1900 ulps (at -0.5): 2^x = e^(f ln 2) 2^n
    // with `n` the nearest integer and `f = x - n` exact (`wide`'s `exp2` of an
    // integer is exact).
    exp2 if |x| Lanes::ge(x, f64x4::splat(-1021.0)).and(Lanes::le(x, f64x4::splat(1023.0)))
        => {
            let n = x.wide().round_ties_even();
            map4((x - f64x4::from_wide(n)) * f64x4::LN_2, kernels::exp) * f64x4::from_wide(n.exp2())
        },
    log2 if |x| Lanes::ge(x, f64x4::splat(f64::MIN_POSITIVE)).and(Lanes::le(x, f64x4::splat(f64::MAX)))
        => log2_f64(x),
    log10 if |x| Lanes::ge(x, f64x4::splat(f64::MIN_POSITIVE)).and(Lanes::le(x, f64x4::splat(f64::MAX)))
        => log10_f64(x),
},
own: {
    /// A 4 x 4 block as eight SSE2 unpacks and eight 16-byte stores (half the stores of
    /// element by element, which bounds the unpacking of large per-sample results).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn store_transposed<const N: usize>(rows: &[Self], out: &mut [&mut [f64; N]], at: usize) {
        use core::arch::x86_64::{__m128d, _mm_loadu_pd, _mm_storeu_pd, _mm_unpackhi_pd, _mm_unpacklo_pd};
        assert!(rows.len() == 4 && out.len() == 4 && at + 4 <= N, "a 4 x 4 block");
        // Lanes 0-1 and 2-3 of each row.
        let half = |q: usize, h: usize| -> __m128d {
            let a = rows[q].as_array();
            // SAFETY: `a` has 4 elements and `2 * h + 2 <= 4`: two readable `f64`s.
            unsafe { _mm_loadu_pd(a.as_ptr().add(2 * h)) }
        };
        for h in 0..2 {
            let (r0, r1, r2, r3) = (half(0, h), half(1, h), half(2, h), half(3, h));
            // SAFETY: SSE2 is part of the x86-64 baseline (every x86-64 CPU has it).
            let cols = unsafe {
                [
                    (_mm_unpacklo_pd(r0, r1), _mm_unpacklo_pd(r2, r3)),
                    (_mm_unpackhi_pd(r0, r1), _mm_unpackhi_pd(r2, r3)),
                ]
            };
            for (k, (lo, hi)) in cols.into_iter().enumerate() {
                let o = &mut out[2 * h + k][at..at + 4];
                // SAFETY: `o` has 4 elements: two writable pairs at 0 and 2.
                unsafe {
                    _mm_storeu_pd(o.as_mut_ptr(), lo);
                    _mm_storeu_pd(o.as_mut_ptr().add(2), hi);
                }
            }
        }
    }
    #[inline(always)]
    fn exp(self) -> Self {
        patch_nan(map4(self, kernels::exp), |i| <f64 as Lanes>::exp(self.lane(i)))
    }
    #[inline(always)]
    fn exp_m1(self) -> Self {
        patch_nan(map4(self, kernels::exp_m1), |i| <f64 as Lanes>::exp_m1(self.lane(i)))
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        map4(self, kernels::tanh)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        patch_nan(map4(self, kernels::ln), |i| <f64 as Lanes>::ln(self.lane(i)))
    }
    /// `e^(n ln x)` in double-double (`wide`'s `powf` of `f64` is off by tens to
    /// hundreds of ulps); lane by lane off positive normal bases and normal results.
    #[inline(always)]
    fn powf(self, n: Self) -> Self {
        let (x, y) = (self.to_array(), n.to_array());
        let f = kernels::powf;
        let fast = f64x4::new([f(x[0], y[0]), f(x[1], y[1]), f(x[2], y[2]), f(x[3], y[3])]);
        patch_nan(fast, |i| <f64 as Lanes>::powf(x[i], y[i]))
    }
});

vector_lanes!(f32x8, f32, 8, deg: 57.295_78_f32, rad: core::f32::consts::PI / 180.0,
wide: { exp, exp_m1, ln_1p, sqrt, cbrt, abs, signum, fract, asin, acos, atan, tanh },
wide2: { atan2, min, max, copysign, rem_euclid, div_euclid },
rounding: { trunc, floor, ceil, round, round_ties_even },
guarded: {
    sin if |x| Lanes::lt(Lanes::abs(x), f32x8::splat(TRIG_MAX as f32)) => in_f64(x, |v| f64x4::from_wide(v.wide().sin())),
    cos if |x| Lanes::lt(Lanes::abs(x), f32x8::splat(TRIG_MAX as f32)) => in_f64(x, |v| f64x4::from_wide(v.wide().cos())),
    tan if |x| Lanes::lt(Lanes::abs(x), f32x8::splat(TRIG_MAX as f32)) => in_f64(x, |v| f64x4::from_wide(v.wide().tan())),
    sinh if |x| Lanes::lt(Lanes::abs(x), f32x8::splat(88.0)) => f32x8::from_wide(x.wide().sinh()),
    cosh if |x| Lanes::lt(Lanes::abs(x), f32x8::splat(88.0)) => f32x8::from_wide(x.wide().cosh()),
    exp2 if |x| Lanes::ge(x, f32x8::splat(-126.0)) => f32x8::from_wide(x.wide().exp2()),
    ln if |x| Lanes::ge(x, f32x8::splat(f32::MIN_POSITIVE)) => f32x8::from_wide(x.wide().ln()),
    log2 if |x| Lanes::ge(x, f32x8::splat(f32::MIN_POSITIVE)).and(Lanes::le(x, f32x8::splat(f32::MAX)))
        => in_f64(x, log2_f64),
    log10 if |x| Lanes::ge(x, f32x8::splat(f32::MIN_POSITIVE)).and(Lanes::le(x, f32x8::splat(f32::MAX)))
        => in_f64(x, log10_f64),
},
own: {
    /// `exp(n ln x)` in `f64` (error below `2^-45` relative) for positive normal bases,
    /// finite exponents and normal results; the rest (negative bases, zeros,
    /// overflow, underflow, NaN) lane by lane.
    #[inline(always)]
    fn powf(self, n: Self) -> Self {
        let ((xl, xh), (nl, nh)) = (widen(self), widen(n));
        let e = |n: f64x4, x: f64x4| map4(n * map4(x, kernels::ln), kernels::exp);
        let z = narrow(e(nl, xl), e(nh, xh));
        let (min, max) = (f32x8::splat(f32::MIN_POSITIVE), f32x8::splat(f32::MAX));
        let ok = Lanes::ge(self, min).and(Lanes::le(self, max)).and(Lanes::le(Lanes::abs(n), max));
        let ok = ok.and(Lanes::ge(z, min)).and(Lanes::le(z, max));
        patch(ok, z, |i| <f32 as Lanes>::powf(self.lane(i), n.lane(i)))
    }
});
