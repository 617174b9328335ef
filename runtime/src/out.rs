//! Filling a caller's buffer (the `_into` forms of generated functions) in place.

/// Sets every float of a value to zero in place, without building a zero value of its
/// size on the stack (a Jacobian of 1000 x 1000 `f64` is 8 MB).
pub trait FillZero {
    /// Every float of `self` becomes `0.0`.
    fn fill_zero(&mut self);
}

impl FillZero for f64 {
    #[inline(always)]
    fn fill_zero(&mut self) {
        *self = 0.0;
    }
}

impl FillZero for f32 {
    #[inline(always)]
    fn fill_zero(&mut self) {
        *self = 0.0;
    }
}

/// The lanes of a batched kernel's accumulators (`vmap`): every lane `0.0`.
impl FillZero for crate::f64x4 {
    #[inline(always)]
    fn fill_zero(&mut self) {
        *self = <crate::f64x4 as crate::Lanes>::splat(0.0);
    }
}

/// The lanes of a batched kernel's accumulators (`vmap`): every lane `0.0`.
impl FillZero for crate::f32x8 {
    #[inline(always)]
    fn fill_zero(&mut self) {
        *self = <crate::f32x8 as crate::Lanes>::splat(0.0);
    }
}

impl FillZero for () {
    #[inline(always)]
    fn fill_zero(&mut self) {}
}

impl<T: FillZero, const N: usize> FillZero for [T; N] {
    #[inline]
    fn fill_zero(&mut self) {
        for x in self.iter_mut() {
            x.fill_zero();
        }
    }
}

/// A tape on the heap (`TapeStorage`'s `Vec`), written in place in a batch's residuals.
impl<T: FillZero> FillZero for alloc::vec::Vec<T> {
    #[inline]
    fn fill_zero(&mut self) {
        self.as_mut_slice().fill_zero();
    }
}

impl<T: FillZero> FillZero for [T] {
    #[inline]
    fn fill_zero(&mut self) {
        for x in self.iter_mut() {
            x.fill_zero();
        }
    }
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: FillZero),+> FillZero for ($($t,)+) {
            #[inline]
            fn fill_zero(&mut self) {
                $(self.$i.fill_zero();)+
            }
        }
    )*};
}
tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

/// The rows of a Jacobian or Hessian with respect to a slice in the caller's buffer
/// (`[Vec<T>; M]`, `[Vec<T>]`): each row must have the slice's length (else a panic
/// naming the argument and both lengths), and is zeroed in place.
pub trait FillRows {
    /// Checks every row's length against `len` (the slice `arg`'s) and zeroes it.
    fn fill_rows(&mut self, arg: &str, len: usize);
}

impl<T: FillZero> FillRows for alloc::vec::Vec<T> {
    #[inline]
    fn fill_rows(&mut self, arg: &str, len: usize) {
        assert!(
            self.len() == len,
            "fluxion: a row of the buffer for the derivative in `{arg}` has length {}, but `{arg}` has length {len}",
            self.len()
        );
        self[..].fill_zero();
    }
}

impl<R: FillRows, const M: usize> FillRows for [R; M] {
    #[inline]
    fn fill_rows(&mut self, arg: &str, len: usize) {
        for r in self.iter_mut() {
            r.fill_rows(arg, len);
        }
    }
}

impl<R: FillRows> FillRows for [R] {
    #[inline]
    fn fill_rows(&mut self, arg: &str, len: usize) {
        for r in self.iter_mut() {
            r.fill_rows(arg, len);
        }
    }
}

/// [`FillRows::fill_rows`].
#[inline(always)]
pub fn fill_rows<T: FillRows + ?Sized>(x: &mut T, arg: &str, len: usize) {
    x.fill_rows(arg, len);
}

/// Sets every float of `x` to zero in place (see [`FillZero`]).
#[inline(always)]
pub fn fill_zero<T: FillZero + ?Sized>(x: &mut T) {
    x.fill_zero();
}
