//! Parameter structs: values holding float parameters that an optimiser updates as one
//! (torch's `make_functional` parameters, JAX's pytrees of arrays).
//!
//! [`Parameters`] is implemented for `f64`, `f32`, fixed arrays `[T; N]`, `Vec<T>` and
//! tuples (up to 8 elements) of parameters (nested to any depth), nalgebra's matrices and
//! vectors (the `nalgebra` feature) and, through `#[derive(Parameters)]`, for structs with
//! named fields.
//!
//! Every value has a *flatten order*: the order in which its scalars are visited,
//! written by [`Parameters::write_flat`] and read by [`Parameters::read_flat`]. Arrays and
//! `Vec`s visit their elements in index order, tuples theirs in order, nalgebra matrices
//! in storage order (column-major), derived structs their trainable fields in declaration
//! order. Every
//! operation over several values of one type (`zip_mut`, `dot`, `axpy`, the optimisers)
//! pairs the scalars that share a position in that order; such values must have the same
//! shape (`Vec` lengths, dynamic matrix sizes), which is checked: a mismatch panics naming
//! both sizes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub};

/// The scalar type of [`Parameters`]: `f64` or `f32`.
///
/// The arithmetic an optimiser needs, and conversions from the `f64` hyper-parameters
/// (learning rate, betas) it stores.
pub trait ParamFloat:
    Copy
    + Debug
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + MulAssign
    + 'static
{
    /// `0.0`.
    const ZERO: Self;
    /// `1.0`.
    const ONE: Self;
    /// `x as Self` (rounded to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// `self as f64` (exact).
    fn to_f64(self) -> f64;
    /// The square root (correctly rounded, as `f64::sqrt`).
    fn sqrt(self) -> Self;
}

impl ParamFloat for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    #[inline(always)]
    fn from_f64(x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn sqrt(self) -> f64 {
        libm::sqrt(self)
    }
}

impl ParamFloat for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    #[inline(always)]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn sqrt(self) -> f32 {
        libm::sqrtf(self)
    }
}

/// A value holding float parameters: a model's weights, its gradient, an optimiser's state.
///
/// Implemented for `f64` and `f32`, `[T; N]`, `Vec<T>` and tuples (up to 8) of
/// parameters, nalgebra's `SMatrix`/`SVector`/`DMatrix`/`DVector` of `f64`/`f32` (feature
/// `nalgebra`; their inherent `axpy`, `dot` and `scale` shadow the trait's in method syntax,
/// so call those as `Parameters::axpy(&mut m, a, &x)`), and derived for structs with
/// `#[derive(Parameters)]`:
///
/// ```
/// use fluxion::optim::Adam;
/// use fluxion::Parameters;
///
/// #[derive(Parameters, Clone, Debug, PartialEq)]
/// struct Layer {
///     w: [[f64; 2]; 3], // 3 outputs, 2 inputs
///     b: [f64; 3],
/// }
///
/// #[derive(Parameters, Clone, Debug, PartialEq)]
/// struct Mlp {
///     hidden: Layer,
///     out: [f64; 3],
///     #[param(buffer)] // carried, never trained (a step counter, running statistics)
///     seen: usize,
/// }
///
/// let mut mlp = Mlp {
///     hidden: Layer { w: [[0.1, -0.2], [0.3, 0.0], [-0.1, 0.2]], b: [0.0; 3] },
///     out: [1.0, -1.0, 0.5],
///     seen: 0,
/// };
/// assert_eq!(mlp.num_scalars(), 6 + 3 + 3);
///
/// // Names of the trainable tensors, as torch's `named_parameters()`.
/// let mut names = Vec::new();
/// mlp.for_each_named("", &mut |name, values| names.push((name.to_string(), values.len())));
/// assert_eq!(names, [("hidden.w".to_string(), 6), ("hidden.b".to_string(), 3), ("out".to_string(), 3)]);
///
/// // A hand-written gradient of the loss `sum(out) + sum(hidden.b)`: ones where it
/// // depends on a parameter. The gradient has the parameters' type.
/// let mut grad = mlp.zeros_like();
/// grad.out = [1.0; 3];
/// grad.hidden.b = [1.0; 3];
///
/// // One step of Adam: the first step moves every parameter with a nonzero gradient by
/// // lr (bias correction makes m̂ = g and v̂ = g²), the others not at all.
/// let mut adam = Adam::new(0.1);
/// adam.step(&mut mlp, &grad);
/// assert!((mlp.out[0] - 0.9).abs() < 1e-9);
/// assert!((mlp.hidden.b[2] + 0.1).abs() < 1e-9);
/// assert_eq!(mlp.hidden.w[0], [0.1, -0.2]);
///
/// // Flatten and unflatten (flatten order: fields in declaration order, arrays by index).
/// let flat = mlp.to_flat();
/// assert_eq!(flat.len(), 12);
/// let mut copy = mlp.zeros_like();
/// copy.read_flat(&flat);
/// assert_eq!(copy, mlp);
/// ```
///
/// # Implementing it by hand
///
/// Prefer the derive. A hand-written implementation visits the same scalars in the same
/// order in every method (the flatten order), pairs the scalars of the other arguments
/// with its own position by position, and panics (naming both sizes) where the
/// arguments' shapes differ. The required methods are the traversals; the arithmetic
/// ([`add_assign`](Parameters::add_assign), [`scale`](Parameters::scale),
/// [`axpy`](Parameters::axpy), [`dot`](Parameters::dot)) and the flat copies are provided.
pub trait Parameters: Sized {
    /// The scalar type of every parameter (`f64` or `f32`).
    type Scalar: ParamFloat;

    /// A value of the same shape with every parameter `0` (torch's `zeros_like`); buffers of
    /// derived structs are cloned.
    fn zeros_like(&self) -> Self;

    /// The number of trainable scalars (the length of [`to_flat`](Parameters::to_flat)).
    fn num_scalars(&self) -> usize;

    /// Calls `f` with the name and values of each trainable tensor, in flatten order
    /// (torch's `named_parameters()`).
    ///
    /// Names are paths joined with `.` under `prefix` (`""` at the top): a derived struct's
    /// field `w` of a field `layer1` is `layer1.w`, element `2` of an array or `Vec` of
    /// structs is `layers.2`. A value whose scalars lie contiguously in memory (a float,
    /// an array or `Vec` of floats or of arrays of floats, a nalgebra matrix) is one tensor,
    /// named by its path and given as one slice in flatten order; a scalar at the top is
    /// named `prefix` itself.
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[Self::Scalar]));

    /// All the trainable scalars as one slice in flatten order, where they lie
    /// contiguously in memory; `None` otherwise (the default; derived structs).
    ///
    /// Used to name an array of floats as one tensor in
    /// [`for_each_named`](Parameters::for_each_named). An implementation returning
    /// `Some` returns a slice of exactly [`num_scalars`](Parameters::num_scalars) values
    /// stored inside `self`.
    fn as_flat_slice(&self) -> Option<&[Self::Scalar]> {
        None
    }

    /// Calls `f` with each scalar, in flatten order.
    fn for_each(&self, f: impl FnMut(Self::Scalar));

    /// Calls `f` with each scalar by mutable reference, in flatten order.
    fn for_each_mut(&mut self, f: impl FnMut(&mut Self::Scalar));

    /// Calls `f(x, y)` with the scalars of `self` and `other` at each position.
    ///
    /// # Panics
    /// If the shapes differ (a `Vec` length, a dynamic matrix size).
    fn zip(&self, other: &Self, f: impl FnMut(Self::Scalar, Self::Scalar));

    /// Calls `f(&mut x, y)` with the scalars of `self` and `other` at each position.
    ///
    /// # Panics
    /// If the shapes differ.
    fn zip_mut(&mut self, other: &Self, f: impl FnMut(&mut Self::Scalar, Self::Scalar));

    /// Calls `f(&mut x, &mut a, g)` at each position: a parameter, one state value and a
    /// gradient (SGD with momentum).
    ///
    /// # Panics
    /// If the shapes differ.
    fn zip_mut2(&mut self, a: &mut Self, g: &Self, f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, Self::Scalar));

    /// Calls `f(&mut x, &mut a, &mut b, g)` at each position: a parameter, two state values
    /// and a gradient (Adam's parameter, first and second moments and gradient).
    ///
    /// # Panics
    /// If the shapes differ.
    fn zip_mut3(
        &mut self,
        a: &mut Self,
        b: &mut Self,
        g: &Self,
        f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, &mut Self::Scalar, Self::Scalar),
    );

    /// `self += other`, elementwise.
    ///
    /// # Panics
    /// If the shapes differ.
    fn add_assign(&mut self, other: &Self) {
        self.zip_mut(other, |x, y| *x += y);
    }

    /// Sets every scalar to `value` (`fill(0.0)`: torch's `zero_grad()` on a gradient
    /// accumulator, in place, where `scale(0.0)` would keep NaN and infinities as NaN).
    fn fill(&mut self, value: Self::Scalar) {
        self.for_each_mut(|x| *x = value);
    }

    /// `self *= k`, elementwise.
    fn scale(&mut self, k: Self::Scalar) {
        self.for_each_mut(|x| *x *= k);
    }

    /// `self += a * x`, elementwise (BLAS's axpy).
    ///
    /// # Panics
    /// If the shapes differ.
    fn axpy(&mut self, a: Self::Scalar, x: &Self) {
        self.zip_mut(x, |s, x| *s += a * x);
    }

    /// The sum of the products of the scalars at each position, in flatten order.
    ///
    /// # Panics
    /// If the shapes differ.
    fn dot(&self, other: &Self) -> Self::Scalar {
        let mut s = Self::Scalar::ZERO;
        self.zip(other, |x, y| s += x * y);
        s
    }

    /// Writes the scalars into `out` in flatten order.
    ///
    /// # Panics
    /// If `out.len()` differs from [`num_scalars`](Parameters::num_scalars) (both named).
    fn write_flat(&self, out: &mut [Self::Scalar]) {
        let n = self.num_scalars();
        assert!(
            out.len() == n,
            "write_flat: the output slice holds {} scalars, the parameters {n}",
            out.len()
        );
        let mut i = 0;
        self.for_each(|x| {
            out[i] = x;
            i += 1;
        });
    }

    /// The scalars as a new `Vec`, in flatten order.
    fn to_flat(&self) -> Vec<Self::Scalar> {
        let mut v = alloc::vec![Self::Scalar::ZERO; self.num_scalars()];
        self.write_flat(&mut v);
        v
    }

    /// Sets the scalars from `src`, in flatten order (the inverse of
    /// [`write_flat`](Parameters::write_flat)); buffers are kept.
    ///
    /// # Panics
    /// If `src.len()` differs from [`num_scalars`](Parameters::num_scalars) (both named).
    fn read_flat(&mut self, src: &[Self::Scalar]) {
        let n = self.num_scalars();
        assert!(
            src.len() == n,
            "read_flat: the source slice holds {} scalars, the parameters {n}",
            src.len()
        );
        let mut i = 0;
        self.for_each_mut(|x| {
            *x = src[i];
            i += 1;
        });
    }
}

/// The name of a field under `prefix`: `prefix.field`, or `field` if `prefix` is empty.
/// Used by `#[derive(Parameters)]` and the array and `Vec` implementations.
pub fn param_name(prefix: &str, field: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + field.len());
    if !prefix.is_empty() {
        s.push_str(prefix);
        s.push('.');
    }
    s.push_str(field);
    s
}

/// Compiles only if `P` implements [`Parameters`]: `#[derive(Parameters)]` calls it with
/// a field's type, so that a field of another type is reported at the field.
#[doc(hidden)]
#[inline(always)]
pub fn assert_parameters<P: Parameters>() {}

/// Compiles only if `B` implements [`Parameters`] with `A`'s scalar type: `#[derive(Parameters)]`
/// calls it with the first trainable field's type and another's.
#[doc(hidden)]
#[inline(always)]
pub fn assert_same_scalar<A: Parameters, B: Parameters<Scalar = A::Scalar>>() {}

/// Panics unless two lengths that are zipped together agree. Called by the implementations
/// of [`Parameters`] for values of run-time size (and by derived code through them).
#[inline]
#[track_caller]
pub fn check_same_len(what: &str, a: usize, b: usize) {
    if a != b {
        len_mismatch(what, a, b);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn len_mismatch(what: &str, a: usize, b: usize) -> ! {
    panic!("Parameters: {what} of {a} elements combined with one of {b} (the values must have the same shape)")
}

macro_rules! float_params {
    ($($t:ty),*) => {$(
        impl Parameters for $t {
            type Scalar = $t;
            #[inline(always)]
            fn zeros_like(&self) -> $t { 0.0 }
            #[inline(always)]
            fn num_scalars(&self) -> usize { 1 }
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[$t])) {
                f(prefix, core::slice::from_ref(self));
            }
            #[inline(always)]
            fn as_flat_slice(&self) -> Option<&[$t]> { Some(core::slice::from_ref(self)) }
            #[inline(always)]
            fn for_each(&self, mut f: impl FnMut($t)) { f(*self) }
            #[inline(always)]
            fn for_each_mut(&mut self, mut f: impl FnMut(&mut $t)) { f(self) }
            #[inline(always)]
            fn zip(&self, other: &$t, mut f: impl FnMut($t, $t)) { f(*self, *other) }
            #[inline(always)]
            fn zip_mut(&mut self, other: &$t, mut f: impl FnMut(&mut $t, $t)) { f(self, *other) }
            #[inline(always)]
            fn zip_mut2(&mut self, a: &mut $t, g: &$t, mut f: impl FnMut(&mut $t, &mut $t, $t)) {
                f(self, a, *g)
            }
            #[inline(always)]
            fn zip_mut3(
                &mut self,
                a: &mut $t,
                b: &mut $t,
                g: &$t,
                mut f: impl FnMut(&mut $t, &mut $t, &mut $t, $t),
            ) {
                f(self, a, b, *g)
            }
        }
    )*};
}
float_params!(f32, f64);

/// The scalars of the elements of a slice as one slice, if every element's scalars fill
/// that element's memory exactly (a slice of floats, of arrays of floats, ...).
fn contiguous<T: Parameters>(xs: &[T]) -> Option<&[T::Scalar]> {
    let mut total = 0usize;
    for x in xs {
        let s = x.as_flat_slice()?;
        // The element's own scalars cover its whole memory, starting at its address.
        if !core::ptr::eq(s.as_ptr() as *const u8, x as *const T as *const u8)
            || core::mem::size_of_val(s) != core::mem::size_of::<T>()
        {
            return None;
        }
        total += s.len();
    }
    if xs.is_empty() {
        return Some(&[]);
    }
    // SAFETY: every element `x` of `xs` was just shown to be exactly covered by a `&[S]`
    // that lives as long as `xs` (`x.as_flat_slice()`), starting at `x`'s address and spanning
    // `size_of::<T>()` bytes; the elements lie back to back in `xs`, so the `total`
    // scalars from `xs`'s start are initialised, aligned `S` values, all inside `xs`'s
    // memory, which the pointer (derived from `xs` itself) may read for `xs`'s lifetime.
    Some(unsafe { core::slice::from_raw_parts(xs.as_ptr() as *const T::Scalar, total) })
}

fn named_elements<T: Parameters>(xs: &[T], prefix: &str, f: &mut dyn FnMut(&str, &[T::Scalar])) {
    if let Some(s) = contiguous(xs) {
        if !s.is_empty() {
            f(prefix, s);
        }
        return;
    }
    for (i, x) in xs.iter().enumerate() {
        x.for_each_named(&param_name(prefix, &alloc::format!("{i}")), f);
    }
}

/// The methods arrays and `Vec`s share: element by element, after `$check` of each other
/// operand's length against `self`'s (nothing for arrays, whose length is their type's).
macro_rules! elementwise_params {
    ($check:expr) => {
        type Scalar = T::Scalar;
        fn num_scalars(&self) -> usize {
            self.iter().map(Parameters::num_scalars).sum()
        }
        fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[T::Scalar])) {
            named_elements(self, prefix, f)
        }
        fn as_flat_slice(&self) -> Option<&[T::Scalar]> {
            contiguous(self)
        }
        #[inline]
        fn for_each(&self, mut f: impl FnMut(T::Scalar)) {
            for x in self {
                x.for_each(&mut f);
            }
        }
        #[inline]
        fn for_each_mut(&mut self, mut f: impl FnMut(&mut T::Scalar)) {
            for x in self {
                x.for_each_mut(&mut f);
            }
        }
        #[inline]
        fn zip(&self, other: &Self, mut f: impl FnMut(T::Scalar, T::Scalar)) {
            $check(self.len(), other.len());
            for (x, y) in self.iter().zip(other) {
                x.zip(y, &mut f);
            }
        }
        #[inline]
        fn zip_mut(&mut self, other: &Self, mut f: impl FnMut(&mut T::Scalar, T::Scalar)) {
            $check(self.len(), other.len());
            for (x, y) in self.iter_mut().zip(other) {
                x.zip_mut(y, &mut f);
            }
        }
        #[inline]
        fn zip_mut2(&mut self, a: &mut Self, g: &Self, mut f: impl FnMut(&mut T::Scalar, &mut T::Scalar, T::Scalar)) {
            $check(self.len(), a.len());
            $check(self.len(), g.len());
            for ((x, a), g) in self.iter_mut().zip(a.iter_mut()).zip(g) {
                x.zip_mut2(a, g, &mut f);
            }
        }
        #[inline]
        fn zip_mut3(
            &mut self,
            a: &mut Self,
            b: &mut Self,
            g: &Self,
            mut f: impl FnMut(&mut T::Scalar, &mut T::Scalar, &mut T::Scalar, T::Scalar),
        ) {
            $check(self.len(), a.len());
            $check(self.len(), b.len());
            $check(self.len(), g.len());
            for (((x, a), b), g) in self.iter_mut().zip(a.iter_mut()).zip(b.iter_mut()).zip(g) {
                x.zip_mut3(a, b, g, &mut f);
            }
        }
    };
}

impl<T: Parameters, const N: usize> Parameters for [T; N] {
    elementwise_params!(|_: usize, _: usize| {});
    fn zeros_like(&self) -> Self {
        core::array::from_fn(|i| self[i].zeros_like())
    }
}

impl<T: Parameters> Parameters for Vec<T> {
    elementwise_params!(|a: usize, b: usize| check_same_len("a Vec", a, b));
    fn zeros_like(&self) -> Self {
        self.iter().map(Parameters::zeros_like).collect()
    }
}

/// Tuples of parameters with one scalar type (the gradients of several arguments, a model
/// as `(w1, b1, w2)`): the elements in order, named `prefix.0`, `prefix.1`, ..
macro_rules! tuple_params {
    ($(($first:ident $fi:tt $(, $t:ident $i:tt)*)),* $(,)?) => {$(
        impl<$first: Parameters $(, $t: Parameters<Scalar = $first::Scalar>)*> Parameters for ($first, $($t,)*) {
            type Scalar = $first::Scalar;
            fn zeros_like(&self) -> Self {
                (self.$fi.zeros_like(), $(self.$i.zeros_like(),)*)
            }
            fn num_scalars(&self) -> usize {
                self.$fi.num_scalars() $(+ self.$i.num_scalars())*
            }
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[Self::Scalar])) {
                self.$fi.for_each_named(&param_name(prefix, stringify!($fi)), f);
                $(self.$i.for_each_named(&param_name(prefix, stringify!($i)), f);)*
            }
            #[inline]
            fn for_each(&self, mut f: impl FnMut(Self::Scalar)) {
                self.$fi.for_each(&mut f);
                $(self.$i.for_each(&mut f);)*
            }
            #[inline]
            fn for_each_mut(&mut self, mut f: impl FnMut(&mut Self::Scalar)) {
                self.$fi.for_each_mut(&mut f);
                $(self.$i.for_each_mut(&mut f);)*
            }
            #[inline]
            fn zip(&self, other: &Self, mut f: impl FnMut(Self::Scalar, Self::Scalar)) {
                self.$fi.zip(&other.$fi, &mut f);
                $(self.$i.zip(&other.$i, &mut f);)*
            }
            #[inline]
            fn zip_mut(&mut self, other: &Self, mut f: impl FnMut(&mut Self::Scalar, Self::Scalar)) {
                self.$fi.zip_mut(&other.$fi, &mut f);
                $(self.$i.zip_mut(&other.$i, &mut f);)*
            }
            #[inline]
            fn zip_mut2(
                &mut self,
                a: &mut Self,
                g: &Self,
                mut f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, Self::Scalar),
            ) {
                self.$fi.zip_mut2(&mut a.$fi, &g.$fi, &mut f);
                $(self.$i.zip_mut2(&mut a.$i, &g.$i, &mut f);)*
            }
            #[inline]
            fn zip_mut3(
                &mut self,
                a: &mut Self,
                b: &mut Self,
                g: &Self,
                mut f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, &mut Self::Scalar, Self::Scalar),
            ) {
                self.$fi.zip_mut3(&mut a.$fi, &mut b.$fi, &g.$fi, &mut f);
                $(self.$i.zip_mut3(&mut a.$i, &mut b.$i, &g.$i, &mut f);)*
            }
        }
    )*};
}
tuple_params!(
    (A 0),
    (A 0, B 1),
    (A 0, B 1, C 2),
    (A 0, B 1, C 2, D 3),
    (A 0, B 1, C 2, D 3, E 4),
    (A 0, B 1, C 2, D 3, E 4, F 5),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7),
);

/// nalgebra's matrices (feature `nalgebra`), in storage order (column-major). Their
/// inherent `axpy`, `dot` and `scale` take precedence over the trait's in method syntax:
/// call those as `Parameters::axpy(&mut m, a, &x)`.
/// The scalars of `p` as a column vector, in flatten order (feature `nalgebra`): a point
/// for external optimisers (argmin) and Jacobian assembly, read back with
/// [`read_dvector`].
#[cfg(feature = "nalgebra")]
pub fn to_dvector<P: Parameters>(p: &P) -> nalgebra::DVector<P::Scalar>
where
    P::Scalar: nalgebra::Scalar,
{
    nalgebra::DVector::from_vec(p.to_flat())
}

/// Sets the scalars of `p` from `v`, in flatten order (the inverse of [`to_dvector`];
/// buffers are kept).
///
/// # Panics
/// If `v`'s length differs from `p`'s number of scalars (both named).
#[cfg(feature = "nalgebra")]
pub fn read_dvector<P: Parameters>(p: &mut P, v: &nalgebra::DVector<P::Scalar>)
where
    P::Scalar: nalgebra::Scalar,
{
    p.read_flat(v.as_slice());
}

#[cfg(feature = "nalgebra")]
mod nalgebra_impls {
    use super::Parameters;
    use nalgebra::{DMatrix, DVector, SMatrix};

    /// The scalars of two matrices in storage order, after checking their shapes.
    macro_rules! matrix_body {
        ($t:ty, $check:ident) => {
            fn num_scalars(&self) -> usize {
                self.len()
            }
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[$t])) {
                if !self.is_empty() {
                    f(prefix, self.as_slice());
                }
            }
            fn as_flat_slice(&self) -> Option<&[$t]> {
                Some(nalgebra::Matrix::as_slice(self))
            }
            #[inline]
            fn for_each(&self, mut f: impl FnMut($t)) {
                for x in self.iter() {
                    f(*x);
                }
            }
            #[inline]
            fn for_each_mut(&mut self, mut f: impl FnMut(&mut $t)) {
                for x in self.iter_mut() {
                    f(x);
                }
            }
            #[inline]
            fn zip(&self, other: &Self, mut f: impl FnMut($t, $t)) {
                $check(self.shape(), other.shape());
                for (x, y) in self.iter().zip(other.iter()) {
                    f(*x, *y);
                }
            }
            #[inline]
            fn zip_mut(&mut self, other: &Self, mut f: impl FnMut(&mut $t, $t)) {
                $check(self.shape(), other.shape());
                for (x, y) in self.iter_mut().zip(other.iter()) {
                    f(x, *y);
                }
            }
            #[inline]
            fn zip_mut2(&mut self, a: &mut Self, g: &Self, mut f: impl FnMut(&mut $t, &mut $t, $t)) {
                $check(self.shape(), a.shape());
                $check(self.shape(), g.shape());
                for ((x, a), g) in self.iter_mut().zip(a.iter_mut()).zip(g.iter()) {
                    f(x, a, *g);
                }
            }
            #[inline]
            fn zip_mut3(
                &mut self,
                a: &mut Self,
                b: &mut Self,
                g: &Self,
                mut f: impl FnMut(&mut $t, &mut $t, &mut $t, $t),
            ) {
                $check(self.shape(), a.shape());
                $check(self.shape(), b.shape());
                $check(self.shape(), g.shape());
                for (((x, a), b), g) in self.iter_mut().zip(a.iter_mut()).zip(b.iter_mut()).zip(g.iter()) {
                    f(x, a, b, *g);
                }
            }
        };
    }

    #[inline(always)]
    fn static_shape(_: (usize, usize), _: (usize, usize)) {}

    #[inline]
    #[track_caller]
    fn dynamic_shape(a: (usize, usize), b: (usize, usize)) {
        if a != b {
            shape_mismatch(a, b);
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn shape_mismatch(a: (usize, usize), b: (usize, usize)) -> ! {
        panic!(
            "Parameters: a {}x{} matrix combined with a {}x{} one (the values must have the same shape)",
            a.0, a.1, b.0, b.1
        )
    }

    macro_rules! matrix_impls {
        ($($t:ty),*) => {$(
            impl<const R: usize, const C: usize> Parameters for SMatrix<$t, R, C> {
                type Scalar = $t;
                fn zeros_like(&self) -> Self {
                    Self::zeros()
                }
                matrix_body!($t, static_shape);
            }
            impl Parameters for DMatrix<$t> {
                type Scalar = $t;
                fn zeros_like(&self) -> Self {
                    Self::zeros(self.nrows(), self.ncols())
                }
                matrix_body!($t, dynamic_shape);
            }
            impl Parameters for DVector<$t> {
                type Scalar = $t;
                fn zeros_like(&self) -> Self {
                    Self::zeros(self.nrows())
                }
                matrix_body!($t, dynamic_shape);
            }
        )*};
    }
    matrix_impls!(f32, f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn arrays_and_vecs_flatten_in_index_order() {
        let x: Vec<[[f64; 2]; 2]> = vec![[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]];
        assert_eq!(x.num_scalars(), 8);
        assert_eq!(x.to_flat(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let mut y = x.zeros_like();
        assert_eq!(y.to_flat(), [0.0; 8]);
        y.read_flat(&[8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_eq!(y[1], [[4.0, 3.0], [2.0, 1.0]]);
        assert_eq!(x.dot(&y), 8.0 + 14.0 + 18.0 + 20.0 + 20.0 + 18.0 + 14.0 + 8.0);
        let mut z = x.clone();
        z.axpy(0.5, &y);
        assert_eq!(z[0][0], [5.0, 5.5]);
        z.scale(2.0);
        assert_eq!(z[0][0], [10.0, 11.0]);
        z.add_assign(&x);
        assert_eq!(z[0][0], [11.0, 13.0]);
        z[1][1][0] = f64::NAN;
        z.fill(0.0);
        assert_eq!(z.to_flat(), [0.0; 8]);
    }

    #[test]
    fn contiguous_values_are_one_named_tensor() {
        let x: [[f32; 3]; 2] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let mut seen = Vec::new();
        x.for_each_named("w", &mut |n, v| seen.push((n.to_string(), v.to_vec())));
        assert_eq!(seen, [("w".to_string(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
        let v: Vec<f64> = vec![1.0, 2.0];
        assert_eq!(v.as_flat_slice(), Some(&[1.0, 2.0][..]));
        let e: Vec<f64> = Vec::new();
        let mut calls = 0;
        e.for_each_named("e", &mut |_, _| calls += 1);
        assert_eq!(calls, 0);
        assert_eq!(param_name("", "w"), "w");
        assert_eq!(param_name("a.b", "w"), "a.b.w");
    }

    #[test]
    fn zips_visit_every_position_once() {
        let mut p = [[1.0f64, 2.0], [3.0, 4.0]];
        let mut a = p.zeros_like();
        let mut b = p.zeros_like();
        let g = [[10.0, 20.0], [30.0, 40.0]];
        let mut k = 0.0;
        p.zip_mut3(&mut a, &mut b, &g, |p, a, b, g| {
            k += 1.0;
            *a = *p + g;
            *b = k;
            *p = -*p;
        });
        assert_eq!(p, [[-1.0, -2.0], [-3.0, -4.0]]);
        assert_eq!(a, [[11.0, 22.0], [33.0, 44.0]]);
        assert_eq!(b, [[1.0, 2.0], [3.0, 4.0]]);
        p.zip_mut2(&mut a, &g, |p, a, g| {
            *p += *a * g;
            *a = 0.0;
        });
        assert_eq!(p, [[109.0, 438.0], [987.0, 1756.0]]);
        assert_eq!(a, [[0.0; 2]; 2]);
    }

    #[test]
    fn tuples_are_their_elements_in_order() {
        let mut t = (1.0f64, [2.0, 3.0], vec![[4.0, 5.0]]);
        assert_eq!(t.num_scalars(), 5);
        assert_eq!(t.to_flat(), [1.0, 2.0, 3.0, 4.0, 5.0]);
        let g = (10.0, [20.0, 30.0], vec![[40.0, 50.0]]);
        t.axpy(0.5, &g);
        assert_eq!(t.to_flat(), [6.0, 12.0, 18.0, 24.0, 30.0]);
        assert_eq!(t.dot(&g), 60.0 + 240.0 + 540.0 + 960.0 + 1500.0);
        let mut names = Vec::new();
        t.for_each_named("p", &mut |n, v| names.push((n.to_string(), v.len())));
        assert_eq!(
            names,
            [("p.0".to_string(), 1), ("p.1".to_string(), 2), ("p.2".to_string(), 2)]
        );
        assert_eq!(t.zeros_like(), (0.0, [0.0; 2], vec![[0.0; 2]]));
    }

    #[test]
    #[should_panic(expected = "a Vec of 2 elements combined with one of 3")]
    fn zipping_vecs_of_different_lengths_panics() {
        let mut a = vec![1.0f64, 2.0];
        a.add_assign(&vec![1.0, 2.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "read_flat: the source slice holds 3 scalars, the parameters 4")]
    fn read_flat_of_the_wrong_length_panics() {
        let mut a = [[0.0f64; 2]; 2];
        a.read_flat(&[1.0, 2.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "write_flat: the output slice holds 5 scalars, the parameters 4")]
    fn write_flat_of_the_wrong_length_panics() {
        let a = [[0.0f64; 2]; 2];
        a.write_flat(&mut [0.0; 5]);
    }
}
