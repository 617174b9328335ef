//! Per-sample values and their lanes: what a batched call (vmap of a function that calls
//! another) needs of types the macro cannot see.
//!
//! A batched kernel calls the callee's lanes companion, whose float arguments are lanes
//! ([`f64x4`], [`f32x8`]). A shared argument of a type only rustc knows (the result of
//! another call, maybe an array or a tuple) is spread into every lane by [`spread`]: floats
//! splatted, arrays and tuples element by element, integers unchanged (they are the same
//! for the whole batch). Lanes also have tangents, zeros and accumulation like floats, so
//! the derivative code around calls types the same way over lanes.

use crate::lanes::{f32x8, f64x4, Lanes, Mask};
use crate::{Accumulate, Tangent, Zero};

/// A per-sample value that can be the same in every lane of the lane vector `V`.
pub trait Spread<V> {
    /// The lanes form: `V` for a float, a structure of lanes for arrays and tuples, the
    /// value itself for integers and `()`.
    type Out;
    /// `self` in every lane.
    fn spread(self) -> Self::Out;
    /// Lane `k` of `l`: one sample's value (a `custom_rule` callee runs lane by lane).
    fn lane(l: &Self::Out, k: usize) -> Self;
    /// Sets lane `k` of `l` to `v`.
    fn set_lane(l: &mut Self::Out, k: usize, v: Self);
}

/// Lanes, or a structure of them, chosen lane by lane by a mask `M`: a value of a type
/// only rustc knows (a call's result) assigned under a condition that differs between
/// samples.
pub trait SelectLanes<M>: Sized {
    /// Lane `i` of `a` where lane `i` of `m` is set, of `b` elsewhere.
    fn select_lanes(m: M, a: Self, b: Self) -> Self;
}

/// See [`SelectLanes`].
#[inline(always)]
pub fn select_lanes<M, A: SelectLanes<M>>(m: M, a: A, b: A) -> A {
    A::select_lanes(m, a, b)
}

impl<M: Copy, A: SelectLanes<M> + Copy, const N: usize> SelectLanes<M> for [A; N] {
    #[inline(always)]
    fn select_lanes(m: M, a: Self, b: Self) -> Self {
        core::array::from_fn(|k| A::select_lanes(m, a[k], b[k]))
    }
}

impl<M> SelectLanes<M> for () {
    #[inline(always)]
    fn select_lanes(_: M, (): (), (): ()) {}
}

/// `a` in every lane of `V` (see [`Spread`]).
#[inline(always)]
pub fn spread<V, A: Spread<V>>(a: A) -> A::Out {
    a.spread()
}

macro_rules! vector_impls {
    ($($v:ident $t:ident),*) => {$(
        impl Spread<$v> for $t {
            type Out = $v;
            #[inline(always)]
            fn spread(self) -> $v {
                <$v as Lanes>::splat(self)
            }
            #[inline(always)]
            fn lane(l: &$v, k: usize) -> $t {
                Lanes::lane(*l, k)
            }
            #[inline(always)]
            fn set_lane(l: &mut $v, k: usize, v: $t) {
                let mut a = l.to_array();
                a[k] = v;
                *l = $v::new(a);
            }
        }
        impl Tangent for $v {
            type T = $v;
            #[inline(always)]
            fn zero_tangent(&self) -> $v {
                $v::ZERO
            }
        }
        impl Zero for $v {
            #[inline(always)]
            fn zero() -> $v {
                $v::ZERO
            }
        }
        impl Accumulate for $v {
            #[inline(always)]
            fn accumulate(&mut self, other: $v) {
                *self += other;
            }
        }
        impl SelectLanes<Mask<$v>> for $v {
            #[inline(always)]
            fn select_lanes(m: Mask<$v>, a: $v, b: $v) -> $v {
                <$v as Lanes>::select(m, a, b)
            }
        }
        impl Tangent for Mask<$v> {
            type T = ();
            #[inline(always)]
            fn zero_tangent(&self) {}
        }
    )*};
}
vector_impls!(f64x4 f64, f32x8 f32);

macro_rules! shared_impls {
    ($($t:ty),*) => {$(
        impl<V> Spread<V> for $t {
            type Out = $t;
            #[inline(always)]
            fn spread(self) -> $t {
                self
            }
            #[inline(always)]
            fn lane(l: &$t, _: usize) -> $t {
                *l
            }
            #[inline(always)]
            fn set_lane(_: &mut $t, _: usize, _: $t) {}
        }
    )*};
}
shared_impls!((), bool, usize, isize, u8, u16, u32, u64, i8, i16, i32, i64);

impl<V, A: Spread<V>, const N: usize> Spread<V> for [A; N] {
    type Out = [A::Out; N];
    #[inline(always)]
    fn spread(self) -> Self::Out {
        self.map(A::spread)
    }
    #[inline(always)]
    fn lane(l: &Self::Out, k: usize) -> Self {
        core::array::from_fn(|i| A::lane(&l[i], k))
    }
    #[inline(always)]
    fn set_lane(l: &mut Self::Out, k: usize, v: Self) {
        for (o, x) in l.iter_mut().zip(v) {
            A::set_lane(o, k, x);
        }
    }
}

macro_rules! tuple_spread {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<V, $($t: Spread<V>),+> Spread<V> for ($($t,)+) {
            type Out = ($($t::Out,)+);
            #[inline(always)]
            fn spread(self) -> Self::Out {
                ($(self.$n.spread(),)+)
            }
            #[inline(always)]
            fn lane(l: &Self::Out, k: usize) -> Self {
                ($($t::lane(&l.$n, k),)+)
            }
            #[inline(always)]
            fn set_lane(l: &mut Self::Out, k: usize, v: Self) {
                $($t::set_lane(&mut l.$n, k, v.$n);)+
            }
        }
        impl<M: Copy, $($t: SelectLanes<M>),+> SelectLanes<M> for ($($t,)+) {
            #[inline(always)]
            fn select_lanes(m: M, a: Self, b: Self) -> Self {
                ($($t::select_lanes(m, a.$n, b.$n),)+)
            }
        }
    )*};
}
tuple_spread! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_floats_arrays_tuples_and_keeps_integers() {
        let s: ([f64x4; 2], usize, f64x4) = spread::<f64x4, _>(([1.5, -2.0], 7usize, 3.0));
        assert_eq!(s.0[0].to_array(), [1.5; 4]);
        assert_eq!(s.0[1].to_array(), [-2.0; 4]);
        assert_eq!(s.1, 7);
        assert_eq!(s.2.to_array(), [3.0; 4]);
        let f: f32x8 = spread::<f32x8, _>(0.25f32);
        assert_eq!(f.to_array(), [0.25; 8]);
    }

    #[test]
    fn lanes_read_and_written_one_sample_at_a_time() {
        let mut l = spread::<f64x4, _>(([1.0, 2.0], 3usize));
        <([f64; 2], usize) as Spread<f64x4>>::set_lane(&mut l, 2, ([-1.0, -2.0], 9));
        assert_eq!(l.0[0].to_array(), [1.0, 1.0, -1.0, 1.0]);
        assert_eq!(l.0[1].to_array(), [2.0, 2.0, -2.0, 2.0]);
        assert_eq!(l.1, 3);
        assert_eq!(<([f64; 2], usize) as Spread<f64x4>>::lane(&l, 2), ([-1.0, -2.0], 3));
        assert_eq!(
            <f32 as Spread<f32x8>>::lane(&f32x8::new([0., 1., 2., 3., 4., 5., 6., 7.]), 7),
            7.0
        );
    }

    #[test]
    fn selects_structures_lane_by_lane() {
        let x = f64x4::new([1.0, 2.0, 3.0, 4.0]);
        let y = f64x4::new([-1.0, -2.0, -3.0, -4.0]);
        let m = Lanes::gt(x, f64x4::splat(2.5));
        let (a, b) = select_lanes(m, ([x, y], y), ([y, x], x));
        assert_eq!(a[0].to_array(), [-1.0, -2.0, 3.0, 4.0]);
        assert_eq!(a[1].to_array(), [1.0, 2.0, -3.0, -4.0]);
        assert_eq!(b.to_array(), [1.0, 2.0, -3.0, -4.0]);
    }

    #[test]
    fn lanes_are_tangents_with_zeros_and_accumulation() {
        let x = f64x4::new([1.0, 2.0, 3.0, 4.0]);
        assert_eq!(crate::zero_like(&x).to_array(), [0.0; 4]);
        let mut a: [f64x4; 2] = crate::zero();
        crate::acc(&mut a, [x, x + x]);
        crate::acc(&mut a, [x, x]);
        assert_eq!(a[0].to_array(), [2.0, 4.0, 6.0, 8.0]);
        assert_eq!(a[1].to_array(), [3.0, 6.0, 9.0, 12.0]);
    }
}
