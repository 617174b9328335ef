//! Values whose type only rustc knows in a function with slices (a call's result, its
//! cotangent), which may hold a `Vec`: how a caller passes such a cotangent to a
//! companion ([`ct_arg`]), and its zero ([`zero_owned`]).

use alloc::vec::Vec;

use crate::Tangent;

/// How a caller passes a cotangent it holds by value to a companion (`g::vjp`, `g::vjp_bwd`,
/// `g::vjp_bwd_acc`) when the macro cannot see its type (the cotangent of a call's result,
/// in a function with slices): a companion takes the cotangent of a slice output as `&[T]`,
/// every other one by value. So a `Vec` is lent as a slice and other values are copied
/// (a tuple holding a `Vec` cloned).
pub trait CtArg {
    /// What the companion takes.
    type Out<'a>
    where
        Self: 'a;
    /// The argument.
    fn ct_arg(&self) -> Self::Out<'_>;
}

/// [`CtArg::ct_arg`] of `x`.
#[inline(always)]
pub fn ct_arg<A: CtArg>(x: &A) -> A::Out<'_> {
    x.ct_arg()
}

impl<T> CtArg for Vec<T> {
    type Out<'a>
        = &'a [T]
    where
        T: 'a;
    #[inline(always)]
    fn ct_arg(&self) -> &[T] {
        self
    }
}

macro_rules! by_copy {
    ($($t:ty),*) => {$(
        impl CtArg for $t {
            type Out<'a> = $t;
            #[inline(always)]
            fn ct_arg(&self) -> $t {
                *self
            }
        }
    )*};
}
by_copy!(
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
by_copy!(crate::f64x4, crate::f32x8);

impl<A: Copy, const N: usize> CtArg for [A; N] {
    type Out<'a>
        = [A; N]
    where
        A: 'a;
    #[inline(always)]
    fn ct_arg(&self) -> [A; N] {
        *self
    }
}

macro_rules! tuple_ct {
    ($(($($t:ident),+))*) => {$(
        impl<$($t: Clone),+> CtArg for ($($t,)+) {
            type Out<'a> = ($($t,)+) where Self: 'a;
            #[inline(always)]
            fn ct_arg(&self) -> Self {
                self.clone()
            }
        }
    )*};
}
tuple_ct! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}

/// The zero tangent of a value that may hold `Vec`s (a slice's cotangent inside a tuple a
/// generated gradient returns): [`crate::zero_like`] covers [`Tangent`] values and `Vec`s
/// alone, this one any nesting of floats, integers, arrays, tuples and `Vec`s.
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
