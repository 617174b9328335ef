//! [`f64x4`] and [`f32x8`]: lanes whose arithmetic is element-wise array code.
//!
//! `wide` picks its implementation when it is compiled: without `target-cpu` flags its
//! `f64x4` and `f32x8` are two SSE2 halves, and their operators stay 128-bit even inside
//! a function compiled with `#[target_feature(enable = "avx2")]` (`batch::best_simd`).
//! The operators here are array code, inlined into the caller, which LLVM vectorises to
//! two 128-bit instructions on the SSE2 baseline and to one 256-bit instruction where
//! the caller has AVX. Each lane is the IEEE operation of that lane (no fused
//! multiply-add, no reassociation): the same bits as `wide`'s.
//!
//! On x86-64 the lanes are stored as a `__m256d` or `__m256` (a vector of 4 `f64` or 8
//! `f32` to LLVM, whatever the target features; only the instructions that operate on
//! it need them): values, arrays and loops of lanes are then vectors to the optimiser,
//! so the loop vectoriser leaves loops over arrays of lanes alone (as plain arrays they
//! were vectorised across the loop, with shuffles and scalar lanes, 40% slower), and
//! each operator's scalar operations between its unpacking and repacking become one
//! vector operation. The functions of `wide` that the lane math uses go through
//! `wide()` and `from_wide()`.

use core::fmt;
use core::ops::{
    Add, AddAssign, BitAnd, BitAndAssign, BitOr, BitOrAssign, BitXor, BitXorAssign, Div, DivAssign, Mul, MulAssign,
    Neg, Not, Rem, RemAssign, Sub, SubAssign,
};

/// One lane vector type: `$v` of `$n` lanes of `$t` (bits `$u`), stored as `$repr` on
/// x86-64, converting to `wide`'s `$w`.
macro_rules! lane_vector {
    ($v:ident, $t:ident, $u:ident, $n:literal, $repr:ident, $w:ty, $mod:ident, [$($i:literal)*], $doc:literal) => {
        mod $mod {
            use super::*;

            #[doc = $doc]
            /// The arithmetic operators work lane by lane, with the bits of the scalar
            /// operators; the bitwise operators work on the bits of the lanes (masks).
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy)]
            #[repr(C, align(32))]
            pub struct $v(Repr);

            /// The storage: LLVM's vector on x86-64 (see the module documentation), else
            /// the array.
            #[cfg(target_arch = "x86_64")]
            type Repr = core::arch::x86_64::$repr;
            #[cfg(not(target_arch = "x86_64"))]
            type Repr = [$t; $n];

            /// `a` as the storage (the same 32 bytes).
            #[inline(always)]
            #[cfg_attr(not(target_arch = "x86_64"), allow(clippy::useless_transmute))]
            const fn repr(a: [$t; $n]) -> Repr {
                // SAFETY: `Repr` is the 32 bytes of the lanes (the vector type or the
                // array itself), and every bit pattern is valid for both.
                unsafe { core::mem::transmute::<[$t; $n], Repr>(a) }
            }

            /// The storage as the array (the same 32 bytes).
            #[inline(always)]
            #[cfg_attr(not(target_arch = "x86_64"), allow(clippy::useless_transmute))]
            const fn array(r: Repr) -> [$t; $n] {
                // SAFETY: as in `repr`.
                unsafe { core::mem::transmute::<Repr, [$t; $n]>(r) }
            }

            /// Lane `i` is `f(a[i], b[i])`, written out so that it inlines as independent
            /// operations for the vectoriser.
            #[inline(always)]
            fn zip(a: [$t; $n], b: [$t; $n], f: impl Fn($t, $t) -> $t) -> [$t; $n] {
                [$(f(a[$i], b[$i])),*]
            }

            /// Lane `i` is `f(a[i], b[i])` on the bits of the lanes.
            #[inline(always)]
            fn zip_bits(a: [$t; $n], b: [$t; $n], f: impl Fn($u, $u) -> $u) -> [$t; $n] {
                zip(a, b, |x, y| $t::from_bits(f(x.to_bits(), y.to_bits())))
            }

            /// A mask lane: all ones if `b`, else all zeros.
            #[inline(always)]
            fn mask_bits(b: bool) -> $t {
                $t::from_bits(if b { $u::MAX } else { 0 })
            }

            impl $v {
                /// Every lane `0.0`.
                pub const ZERO: $v = $v::splat(0.0);
                /// Every lane `1.0`.
                pub const ONE: $v = $v::splat(1.0);
                /// Every lane `0.5`.
                pub const HALF: $v = $v::splat(0.5);
                /// Every lane `ln 2`.
                pub const LN_2: $v = $v::splat(core::$t::consts::LN_2);
                /// Every lane `log2 e`.
                pub const LOG2_E: $v = $v::splat(core::$t::consts::LOG2_E);
                /// Every lane `log10 e`.
                pub const LOG10_E: $v = $v::splat(core::$t::consts::LOG10_E);

                /// The lanes `a`.
                #[inline(always)]
                #[must_use]
                pub const fn new(a: [$t; $n]) -> $v {
                    $v(repr(a))
                }
                /// Every lane `x`.
                #[inline(always)]
                #[must_use]
                pub const fn splat(x: $t) -> $v {
                    $v::new([x; $n])
                }
                /// The lanes as an array.
                #[inline(always)]
                #[must_use]
                pub const fn to_array(self) -> [$t; $n] {
                    array(self.0)
                }
                /// The lanes as an array, by reference.
                #[inline(always)]
                #[must_use]
                pub fn as_array(&self) -> &[$t; $n] {
                    // SAFETY: the type is the 32 bytes of the lanes (`Repr`), aligned for
                    // the array.
                    unsafe { &*(self as *const $v).cast::<[$t; $n]>() }
                }
                /// The bits of each lane.
                #[inline(always)]
                #[must_use]
                pub fn to_bits(self) -> [$u; $n] {
                    self.to_array().map($t::to_bits)
                }
                /// The lanes with the bits `b`.
                #[inline(always)]
                #[must_use]
                pub fn from_bits(b: [$u; $n]) -> $v {
                    $v::new(b.map($t::from_bits))
                }
                /// The same lanes as `wide`'s vector, for its functions.
                #[inline(always)]
                #[must_use]
                pub fn wide(self) -> $w {
                    <$w>::new(self.to_array())
                }
                /// The lanes of `wide`'s vector.
                #[inline(always)]
                #[must_use]
                pub fn from_wide(w: $w) -> $v {
                    $v::new(w.to_array())
                }

                /// Lane by lane `a == b`, as a mask (each lane all ones or all zeros).
                #[inline(always)]
                pub(crate) fn simd_eq(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a == b)))
                }
                /// Lane by lane `a != b`, as a mask.
                #[inline(always)]
                pub(crate) fn simd_ne(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a != b)))
                }
                /// Lane by lane `a < b`, as a mask.
                #[inline(always)]
                pub(crate) fn simd_lt(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a < b)))
                }
                /// Lane by lane `a <= b`, as a mask.
                #[inline(always)]
                pub(crate) fn simd_le(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a <= b)))
                }
                /// Lane by lane `a > b`, as a mask.
                #[inline(always)]
                pub(crate) fn simd_gt(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a > b)))
                }
                /// Lane by lane `a >= b`, as a mask.
                #[inline(always)]
                pub(crate) fn simd_ge(self, other: $v) -> $v {
                    $v::new(zip(self.to_array(), other.to_array(), |a, b| mask_bits(a >= b)))
                }
                /// `self` a mask: lane by lane `if set { a } else { b }`.
                #[inline(always)]
                pub(crate) fn select(self, a: $v, b: $v) -> $v {
                    (self & a) | (!self & b)
                }
                /// Bit `i` is the sign bit of lane `i`.
                #[inline(always)]
                pub(crate) fn to_bitmask(self) -> u32 {
                    let s = self.to_bits().map(|b| (b >> ($u::BITS - 1)) as u32);
                    0 $(| (s[$i] << $i))*
                }
                /// Whether some lane of a mask is set.
                #[inline(always)]
                pub(crate) fn any(self) -> bool {
                    self.to_bitmask() != 0
                }
                /// Whether every lane of a mask is set.
                #[inline(always)]
                pub(crate) fn all(self) -> bool {
                    self.to_bitmask() == (1 << $n) - 1
                }
            }

            impl fmt::Debug for $v {
                /// `(a, b, ..)`, as `wide` prints its vectors.
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "(")?;
                    for (i, x) in self.to_array().iter().enumerate() {
                        if i > 0 {
                            write!(f, ", ")?;
                        }
                        fmt::Debug::fmt(x, f)?;
                    }
                    write!(f, ")")
                }
            }

            impl Default for $v {
                /// Every lane `0.0`.
                #[inline(always)]
                fn default() -> $v {
                    $v::ZERO
                }
            }

            impl PartialEq for $v {
                /// Every lane `==` (so NaN lanes are unequal, `-0.0 == 0.0`).
                #[inline(always)]
                fn eq(&self, other: &$v) -> bool {
                    self.to_array() == other.to_array()
                }
            }

            impl From<[$t; $n]> for $v {
                #[inline(always)]
                fn from(a: [$t; $n]) -> $v {
                    $v::new(a)
                }
            }

            impl From<$v> for [$t; $n] {
                #[inline(always)]
                fn from(v: $v) -> [$t; $n] {
                    v.to_array()
                }
            }

            impl Neg for $v {
                type Output = $v;
                #[inline(always)]
                fn neg(self) -> $v {
                    $v::new(self.to_array().map(|x| -x))
                }
            }

            impl Neg for &$v {
                type Output = $v;
                #[inline(always)]
                fn neg(self) -> $v {
                    -*self
                }
            }

            impl Not for $v {
                type Output = $v;
                #[inline(always)]
                fn not(self) -> $v {
                    $v::new(self.to_array().map(|x| $t::from_bits(!x.to_bits())))
                }
            }

            binary_ops! { $v $t $n
                Add add AddAssign add_assign |a, b| zip(a, b, |x, y| x + y);
                Sub sub SubAssign sub_assign |a, b| zip(a, b, |x, y| x - y);
                Mul mul MulAssign mul_assign |a, b| zip(a, b, |x, y| x * y);
                Div div DivAssign div_assign |a, b| zip(a, b, |x, y| x / y);
                Rem rem RemAssign rem_assign |a, b| zip(a, b, |x, y| x % y);
                BitAnd bitand BitAndAssign bitand_assign |a, b| zip_bits(a, b, |x, y| x & y);
                BitOr bitor BitOrAssign bitor_assign |a, b| zip_bits(a, b, |x, y| x | y);
                BitXor bitxor BitXorAssign bitxor_assign |a, b| zip_bits(a, b, |x, y| x ^ y);
            }
        }
        pub use $mod::$v;
    };
}

/// An operator lane by lane: between vectors, with a scalar on either side (splatted),
/// by value or by reference, and its assigning form.
macro_rules! binary_ops {
    ($v:ident $t:ident $n:literal $($Op:ident $op:ident $OpAssign:ident $op_assign:ident |$a:ident, $b:ident| $body:expr;)*) => {$(
        impl $Op for $v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $v) -> $v {
                let f = |$a: [$t; $n], $b: [$t; $n]| -> [$t; $n] { $body };
                $v::new(f(self.to_array(), rhs.to_array()))
            }
        }
        impl $Op<$t> for $v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $t) -> $v {
                self.$op($v::splat(rhs))
            }
        }
        impl $Op<$v> for $t {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $v) -> $v {
                $v::splat(self).$op(rhs)
            }
        }
        impl $Op<&$v> for $v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$v) -> $v {
                self.$op(*rhs)
            }
        }
        impl $Op<&$t> for $v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$t) -> $v {
                self.$op($v::splat(*rhs))
            }
        }
        impl $Op<&$v> for $t {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$v) -> $v {
                $v::splat(self).$op(*rhs)
            }
        }
        impl $Op<$v> for &$v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $v) -> $v {
                (*self).$op(rhs)
            }
        }
        impl $Op<$t> for &$v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $t) -> $v {
                (*self).$op($v::splat(rhs))
            }
        }
        impl $Op<$v> for &$t {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: $v) -> $v {
                $v::splat(*self).$op(rhs)
            }
        }
        impl $Op<&$v> for &$v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$v) -> $v {
                (*self).$op(*rhs)
            }
        }
        impl $Op<&$t> for &$v {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$t) -> $v {
                (*self).$op($v::splat(*rhs))
            }
        }
        impl $Op<&$v> for &$t {
            type Output = $v;
            #[inline(always)]
            fn $op(self, rhs: &$v) -> $v {
                $v::splat(*self).$op(*rhs)
            }
        }
        impl $OpAssign for $v {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: $v) {
                *self = (*self).$op(rhs);
            }
        }
        impl $OpAssign<$t> for $v {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: $t) {
                *self = (*self).$op($v::splat(rhs));
            }
        }
        impl $OpAssign<&$v> for $v {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: &$v) {
                *self = (*self).$op(*rhs);
            }
        }
        impl $OpAssign<&$t> for $v {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: &$t) {
                *self = (*self).$op($v::splat(*rhs));
            }
        }
    )*};
}

lane_vector!(f64x4, f64, u64, 4, __m256d, wide::f64x4, f64x4_, [0 1 2 3],
    "Four `f64` lanes (`vmap`'s batch of four samples), 32 bytes, 32-byte aligned.");
lane_vector!(f32x8, f32, u32, 8, __m256, wide::f32x8, f32x8_, [0 1 2 3 4 5 6 7],
    "Eight `f32` lanes (`vmap`'s batch of eight samples), 32 bytes, 32-byte aligned.");
