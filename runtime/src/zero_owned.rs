//! The zero of a value whose type only rustc knows in a function with slices (a call's
//! result, its cotangent), which may hold a `Vec`: [`zero_owned`].

use alloc::vec::Vec;

use crate::Tangent;

/// The zero tangent of a value that may hold `Vec`s (a slice's cotangent inside a tuple a
/// generated gradient returns): [`crate::zero_like`] covers [`Tangent`] values and `Vec`s
/// alone, this one any nesting of floats, integers, arrays, tuples and `Vec`s.
#[diagnostic::on_unimplemented(
    message = "fluxion cannot form the zero cotangent of `{Self}` here",
    note = "reverse mode over reverse mode through slices or loops of run-time length holds cotangents of floats, arrays, tuples and `Vec`s only; with nalgebra values, differentiate the gradient in forward mode (`hessian`, `jvp` of it) or keep the matrices in a parameter struct"
)]
pub trait ZeroOwned {
    /// The type of the zero tangent.
    type Out;
    /// The zero tangent with the shape of `self`.
    fn zero_owned(&self) -> Self::Out;
}

/// [`ZeroOwned::zero_owned`] of `x`.
#[inline(always)]
pub fn zero_owned<A: ZeroOwned + ?Sized>(x: &A) -> A::Out {
    x.zero_owned()
}

macro_rules! zero_by_tangent {
    ($($t:ty),*) => {$(
        impl ZeroOwned for $t {
            type Out = <$t as Tangent>::T;
            #[inline(always)]
            fn zero_owned(&self) -> Self::Out {
                self.zero_tangent()
            }
        }
    )*};
}
zero_by_tangent!(
    f32,
    f64,
    (),
    bool,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize
);
zero_by_tangent!(crate::f64x4, crate::f32x8);

impl<A: ZeroOwned> ZeroOwned for Vec<A> {
    type Out = Vec<A::Out>;
    #[inline]
    fn zero_owned(&self) -> Self::Out {
        self.iter().map(ZeroOwned::zero_owned).collect()
    }
}

impl<A: ZeroOwned, const N: usize> ZeroOwned for [A; N] {
    type Out = [A::Out; N];
    #[inline]
    fn zero_owned(&self) -> Self::Out {
        core::array::from_fn(|k| self[k].zero_owned())
    }
}

impl<A: ZeroOwned + ?Sized> ZeroOwned for &A {
    type Out = A::Out;
    #[inline(always)]
    fn zero_owned(&self) -> Self::Out {
        (**self).zero_owned()
    }
}

impl<A: ZeroOwned> ZeroOwned for [A] {
    type Out = Vec<A::Out>;
    #[inline]
    fn zero_owned(&self) -> Self::Out {
        self.iter().map(ZeroOwned::zero_owned).collect()
    }
}

macro_rules! tuple_zero_owned {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<$($t: ZeroOwned),+> ZeroOwned for ($($t,)+) {
            type Out = ($($t::Out,)+);
            #[inline]
            fn zero_owned(&self) -> Self::Out {
                ($(self.$n.zero_owned(),)+)
            }
        }
    )*};
}
tuple_zero_owned! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}
