#![doc = include_str!("../README.md")]
//!
//! ## Conventions
//!
//! - **Names**: the generated function is the original's name plus `_` and the
//!   transform's name (`f_grad`, `f_jacrev`); stacking appends suffixes innermost first:
//!   `#[jacfwd] #[jacrev] fn f` generates `f_jacrev` and `f_jacrev_jacfwd`. `name = "g"`
//!   replaces the whole name. [`vjp`] also generates `<name>_ct`.
//! - **Layout** (JAX's): the derivative of an output of shape `O` with respect to an
//!   argument of shape `I` has shape `O ++ I`. A gradient has its argument's type; the
//!   Jacobian of `[f64; N] -> [f64; M]` is `[[f64; N]; M]`, element `[i][j]` is
//!   `∂yᵢ/∂xⱼ`; the Hessian of `[f64; N] -> f64` is `[[f64; N]; N]`, element `[i][j]` is
//!   `∂²f/∂xᵢ∂xⱼ`.
//! - **Order of results**: [`grad_and_value`] returns `(grad, value)`, as
//!   `torch.func.grad_and_value` does; JAX's `jax.value_and_grad` returns
//!   `(value, grad)`. With `has_aux`, `aux` comes last.
//! - **What is differentiated**: `f64`, `f32`, fixed arrays of them (`[f64; N]` with `N` a
//!   literal, a `const` or a const generic), nalgebra's statically sized vectors and
//!   matrices as arguments (below), shared references to these, tuples of these as
//!   results. Integer arguments are passed through, never differentiated.
//! - **nalgebra arguments**: `SVector<T, N>`, `SMatrix<T, R, C>` and their fixed aliases
//!   (`Vector3<T>`, `Matrix2x3<T>`, `RowVector4<T>`, ...), by value or by reference, with
//!   `T` `f64` or `f32` and sizes as for arrays. The body reads their elements, `v[i]` and
//!   `m[(i, j)]`, and computes with nalgebra's operations: `W * x` (matrix products), `+`
//!   and `-` between equal shapes, `*` and `/` by a float, negation, `transpose()`,
//!   `dot`, `cross`, `norm`, `norm_squared`, `normalize`, `sum`, `component_mul`,
//!   `component_div`, `add_scalar`, `map(|x| ..)` with a closure in the scalar language,
//!   `len()`, `nrows()`, `ncols()`, and indexing of the results; a function may return such a result. `norm` at the zero vector has
//!   gradient 0 (a subgradient; JAX's `norm` gives NaN there), elsewhere `v / |v|`. Each operation is differentiated
//!   as the loops over its elements that compute it (the reverse of `W * x` is the loops
//!   of `Wᵀ ȳ` and `ȳ xᵀ`), and batched on lanes like any array code; shapes that do not
//!   fit are a compile error at the operator. The original function keeps nalgebra's own
//!   arithmetic, so its values may differ from the generated ones by rounding where
//!   nalgebra sums in another order. The body builds nalgebra values with `zeros()`,
//!   `new(..)`, `from_element(x)` and `from_fn(|i, j| ..)`, the shape in the path
//!   (`SVector::<f64, 3>::zeros()`, `SMatrix::<f64, 2, 3>::from_fn(..)`, `Vector3::new(a,
//!   b, c)`), and writes their elements (`v[i] = ..` on a `let mut` one). A gradient has the argument's type; in JAX's layout a vector counts one
//!   axis, so the Hessian in an `SVector<f64, N>` is an `SMatrix<f64, N, N>` and the
//!   Jacobian of an `[f64; M]` result in a `Matrix2<f64>` is `[Matrix2<f64>; M]`. The
//!   generated code names the types `::nalgebra::SMatrix<..>`: the crate using them depends
//!   on `nalgebra` under that name.
//! - **Dynamically sized nalgebra arguments**: `x: &DVector<T>` / `m: &DMatrix<T>` (or by
//!   value, `T` `f64` or `f32`) are read through their column-major storage, as slices: in
//!   the body `x[i]`, `x.len()`, `x.nrows()`, `m[(i, j)]`, `m.nrows()`, `m.ncols()` and
//!   loops over `0..x.len()`. Under `grad`, `grad_and_value`, `hessian`, `jacrev` and
//!   `jacfwd` (one transform per function), the gradient with respect to a `DVector` is a
//!   `DVector` and to a `DMatrix` a `DMatrix` of its shape; the Hessian of a scalar
//!   function of a `DVector` is an `n x n` `DMatrix` (of a `DMatrix`, `rc x rc` over its
//!   storage); the Jacobian of an `[T; M]` result with respect to a `DVector` is an
//!   `M x n` `DMatrix` (row `i` the gradient of output `i`), with respect to a `DMatrix`
//!   `[DMatrix<T>; M]`. A function of `DVector`s may return a `DVector<T>` it builds with
//!   `let mut y = DVector::zeros(n);` (`n` a `DVector` argument's length), written
//!   `y[i] = ..` and returned: its `jacrev` / `jacfwd` is an `n_out x n_in` `DMatrix` (row
//!   `i` the derivatives of output `i`; a `DVector` with respect to a float argument);
//!   `grad` of it and `chunk_size` above 1 are compile errors. A `DMatrix` result, a
//!   `DVector` result built otherwise, other transforms (`vmap`, `jvp`,
//!   `vjp`, stacks, `has_aux`) and these types anywhere but in arguments are compile
//!   errors for now; `x.as_slice()` passed to a function of `&[T]` gives every transform.
//! - **Data of run-time length**: `xs: &[T]` and `xs: &Vec<T>` parameters, `T` a float, a
//!   fixed array of floats (`&[[f64; 3]]`: points) or an integer; see "Slices and loops
//!   of run-time length" below.
//! - **Where**: the attributes go on free functions (at module level or inside a function
//!   body). On an associated function in an `impl` block rustc reports one error, "struct is
//!   not supported in `trait`s or `impl`s", at the attribute: the companions of a function
//!   live in a hidden struct named like it. Write a free function and call it from the
//!   method.
//! - **Generated functions** carry the original's visibility and generics, a doc comment
//!   and `#[inline]`, and are differentiable themselves (a loss calling `model_jacrev` can
//!   be `#[grad]`-ed: reverse over reverse).
//! - **Non-differentiable points** follow documented conventions: `abs'(0) = 0`; `max`/`min`
//!   ties split the derivative `0.5`/`0.5`, and a NaN operand gets `0` and the other `1`
//!   (the operand `f64::max`/`f64::min` return); `sqrt'(±0) = +inf` and
//!   `ln'(±0) = log2'(±0) = log10'(±0) = +inf`, also at `-0.0` (where JAX gives `-inf`, a
//!   slope of the wrong sign); `hypot'(0, 0) = (0, 0)`; `∂/∂y x^y = 0` at `x = 0` for every
//!   `y`, as `y ↦ 0^y` is constant on each side of `0` (JAX gives NaN for `y < 0`).
//!
//! ## The language inside an annotated function
//!
//! `let` (with shadowing), `let mut` with reassignment, `+=`, `-=`, `*=`, `/=`, `%=`;
//! arithmetic, including `%` on floats (differentiable like JAX's `rem`: `∂x = 1`,
//! `∂y = -trunc(x / y)`);
//! float literals and constants (user `const` items, `std::f64::consts`; the generated
//! code writes a constant met in a float operation as `(C as f64)`, the identity for a
//! constant of that type, so an `f32` constant in an `f64` function is only rustc's error on
//! the original); casts of integer constants and loop indices, and of values between `f32`
//! and `f64` (also of a call's result, whose type the macro cannot see); array literals and `[0.0; N]`; indexing and index
//! assignment with constant or loop indices; `let (a, b) = pair` and `let [a, b] = array`;
//! `for i in lo..hi` and `(lo..hi).rev()` over constant ranges (negative bounds too:
//! `for k in -2..=2`) and over ranges whose bounds are integers known at run time
//! (`0..xs.len()`, `0..n`, `i + 1..n`); slice parameters read as `xs[i]`, `xs[i][k]` and
//! `xs.len()`; `if`/`else` on conditions that are not differentiated; early `return`
//! in an `if` outside loops; the float methods `sin cos tan asin acos atan atan2 sinh cosh
//! tanh asinh acosh atanh exp exp2 exp_m1 ln log log2 log10 ln_1p sqrt cbrt powi powf abs
//! signum copysign trunc floor ceil round round_ties_even fract rem_euclid div_euclid min
//! max clamp hypot recip mul_add to_degrees to_radians sin_cos` (steps such as `floor` have
//! derivative 0; `fract` and `rem_euclid` have the one-sided derivative at their jumps, as
//! `%`; `clamp` the derivative of the operand it returns, `x` itself at the bounds); `.iter().sum()`; [`stop_gradient`]; calls of [`differentiable`] and
//! [`custom_rule`] functions. Anything else is a compile error on the offending token
//! with a hint, for example:
//!
//! ```compile_fail
//! #[fluxion::grad]
//! fn f(x: f64) -> f64 {
//!     let mut y = x;
//!     while y > 1.0 { y = y / 2.0; } // `while` loops are not supported: use `for i in 0..N`
//!     y
//! }
//! ```
//!
//! ## Slices and loops of run-time length
//!
//! A parameter `xs: &[T]` (or `&Vec<T>`, read as a slice) holds data whose length is known
//! only at run time: the number of points of a potential, the samples of a loss. The body
//! reads it as `xs[i]` (`xs[i][k]` for `&[[f64; 3]]`) and `xs.len()` (a `usize`), and loops
//! over ranges whose bounds are integers computed at run time: `0..xs.len()`, `0..n` with
//! `n: usize` a parameter or a `let`, and bounds that depend on an enclosing loop's index
//! (`for j in i + 1..n`, `for j in 0..i`: the pair loops of particle potentials), reversed
//! with `.rev()` and inclusive with `..=`.
//!
//! ```
//! /// The Lennard-Jones energy of points in 3-d, every pair once.
//! #[fluxion::grad]
//! fn energy(xs: &[[f64; 3]]) -> f64 {
//!     let n = xs.len();
//!     let mut e = 0.0;
//!     for i in 0..n {
//!         for j in i + 1..n {
//!             let mut r2 = 0.0;
//!             for k in 0..3 {
//!                 let d = xs[i][k] - xs[j][k];
//!                 r2 += d * d;
//!             }
//!             let s6 = (1.0 / r2).powi(3);
//!             e += 4.0 * (s6 * s6 - s6);
//!         }
//!     }
//!     e
//! }
//! let points = [[0.0, 0.0, 0.0], [1.2, 0.0, 0.0], [0.0, 1.1, 0.3]];
//! let forces: Vec<[f64; 3]> = energy_grad(&points).iter().map(|g| g.map(|v| -v)).collect();
//! assert_eq!(forces.len(), 3);
//! let total: f64 = forces.iter().map(|f| f[0]).sum();
//! assert!(total.abs() < 1e-12); // Newton's third law
//! ```
//!
//! - The cotangent of a slice is a `Vec<T>` of its length: `grad` with respect to
//!   `xs: &[[f64; 3]]` returns `Vec<[f64; 3]>`; a tangent of a slice (the `jvp` forms) is
//!   passed as `&[T]`. The `_into` form writes a slice's gradient into any `&mut [T]` and
//!   panics, naming the argument and both lengths, if the lengths differ; inside a tuple
//!   result (`grad_and_value`, `argnums` tuples) the buffer's field is a `Vec<T>` of the
//!   slice's length.
//! - Slices are read-only and cannot be returned (a result has a fixed size); a loop bound
//!   must be an integer; `len()` is for slices and arrays. Each is a compile error.
//! - `jacrev` and `jacfwd` also work *with respect to* a slice: the output's shape first,
//!   then one row of the slice's length per output element, `[Vec<T>; M]` for
//!   `f(xs: &[T]) -> [f64; M]` (`jacrev` sweeps once per output element, `jacfwd` runs
//!   one forward pass per element of the slice). `hessian` with respect to one slice of
//!   floats, of a scalar function, is a `Vec<Vec<T>>` (`h[i][j] = ∂²f/∂xᵢ∂xⱼ`); in one
//!   slice of arrays (particle positions `&[[f64; 3]]`), `Vec<[Vec<[f64; 3]>; 3]>`
//!   (`h[i][a][j][b] = ∂²f/∂xᵢ[a]∂xⱼ[b]`, JAX's `(n, 3, n, 3)`); in several slices
//!   (`argnums = (0, 1)`), the blocks `((h_xx, h_xz), (h_zx, h_zz))`, each a row per
//!   scalar of the first slice and a column per scalar of the second. Hessians in slices
//!   beside other arguments, and of non-scalar functions, are a compile error. Their `_into` forms take rows of the slice's
//!   length (`&mut [Vec<T>; M]`, `&mut [Vec<T>]`), checked (a panic naming the argument
//!   and both lengths) and zeroed.
//!
//! ```
//! use fluxion::{hessian, jacrev};
//!
//! #[jacrev]
//! fn moments(xs: &[f64]) -> [f64; 2] {
//!     let (mut s, mut q) = (0.0, 0.0);
//!     for i in 0..xs.len() {
//!         s += xs[i];
//!         q += xs[i] * xs[i];
//!     }
//!     [s, q]
//! }
//!
//! #[hessian]
//! fn rosenbrock(xs: &[f64]) -> f64 {
//!     let mut s = 0.0;
//!     for i in 0..xs.len() - 1 {
//!         s += 100.0 * (xs[i + 1] - xs[i] * xs[i]).powi(2) + (1.0 - xs[i]).powi(2);
//!     }
//!     s
//! }
//!
//! let xs = [1.0, 2.0, 3.0];
//! assert_eq!(moments_jacrev(&xs), [vec![1.0; 3], vec![2.0, 4.0, 6.0]]);
//! let h = rosenbrock_hessian(&[1.0, 1.0, 1.0]);
//! assert_eq!(h[0], vec![802.0, -400.0, 0.0]);
//! ```
//! - A function of slices may return a `Vec<T>` of floats it builds: declared
//!   `let mut y = vec![0.0; xs.len()];` (zeros, as long as a slice argument `xs`; `n` bound
//!   to `xs.len()` works too), written `y[i] = ..` or `y[i] += ..`, read back, and
//!   returned. `jacrev` and `jacfwd` of it are `Vec<Vec<T>>`: row `i` holds the
//!   derivatives of output `i`, one per element of the differentiated slice
//!   (`jac[i][j] = ∂yᵢ/∂xⱼ`), computed by one reverse sweep per output element or one
//!   forward pass per input element; their `_into` forms take `&mut [Vec<T>]`. `jvp` and
//!   `vjp` work as usual; `grad` needs a scalar and `chunk_size` above 1 has no chunked
//!   form at run-time lengths: both are compile errors. A `DVector` result built with
//!   `DVector::zeros(n)` is the same, its Jacobian an `n_out x n_in` `DMatrix`.
//!
//! ```
//! use fluxion::transforms;
//!
//! #[transforms(jacrev, jacfwd)]
//! fn cyclic(x: &[f64]) -> Vec<f64> {
//!     let n = x.len();
//!     let mut y = vec![0.0; n];
//!     for i in 0..n {
//!         y[i] = x[i] * x[(i + 1) % n];
//!     }
//!     y
//! }
//!
//! let x = [1.0, 2.0, 3.0];
//! assert_eq!(cyclic(&x), vec![2.0, 6.0, 3.0]);
//! let j = cyclic_jacrev(&x);
//! assert_eq!(j, vec![vec![2.0, 1.0, 0.0], vec![0.0, 3.0, 2.0], vec![3.0, 0.0, 1.0]]);
//! assert_eq!(cyclic_jacfwd(&x), j);
//! ```
//! - Calls between annotated functions pass slices through, in every mode and at second
//!   order: forward over reverse (`hessian`) and reverse over reverse (a `grad` of a
//!   function that calls `g_grad`, `jacrev` or `vjp` stacked on `grad`); the second
//!   reverse pass allocates like the first (its tapes' adjoints are `Vec`s of their
//!   length) and copies the slices' cotangents it reads again.
//! - Under `vmap`, a slice and the loops over it are shared (`in_dims = None`); a batched
//!   slice, or a per-sample cotangent of a shared slice, is a compile error.
//! - Reverse mode allocates here: each value a loop of run-time trip count tapes goes into
//!   a `Vec` that grows by one element per iteration (amortised doubling), and the reverse
//!   sweep reads it back counting down. The pullback of `vjp` copies slice arguments it
//!   reads into the closure. Static shapes keep their code and allocate nothing.
//!
//! ## Results in the caller's buffer: `_into`
//!
//! Every generated function `f_X(args..) -> R` comes with `f_X_into(args.., out: &mut R)`,
//! which writes the same value into `out` (every element is overwritten) and holds no
//! local of `R`'s size: its accumulators *are* `out`. The by-value forms keep their result
//! on the stack: a Jacobian `[[f64; N]; M]` costs `8·M·N` bytes there (twice in debug
//! builds, where the return is copied), so the Jacobian of `[f64; 1000] -> [f64; 1000]`
//! or the Hessian of `[f64; 1000] -> f64` (8 MB each) overflows a 2 MiB thread by value
//! and runs on it through `_into` with a heap buffer:
//!
//! ```
//! #[fluxion::hessian]
//! fn energy(x: [f64; 1000]) -> f64 {
//!     let mut s = 0.0;
//!     for i in 0..1000 {
//!         s += x[i] * x[i] * x[i];
//!     }
//!     s
//! }
//! let h = std::thread::Builder::new()
//!     .stack_size(2 << 20)
//!     .spawn(|| {
//!         let mut h: Box<[[f64; 1000]; 1000]> =
//!             vec![[0.0; 1000]; 1000].into_boxed_slice().try_into().unwrap();
//!         energy_hessian_into([1.0; 1000], &mut h);
//!         h
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! assert_eq!((h[3][3], h[3][4]), (6.0, 0.0));
//! ```
//!
//! A tuple result (`argnums = (0, 1)`, `grad_and_value`, `has_aux`) is written as the
//! tuple, `out.0`, `out.1`, ... The `_into` forms are plain functions (not differentiable
//! again); they are generated for every transform and never warn when unused.
//!
//! ## Memory of reverse mode
//!
//! Reverse mode (`grad`, `vjp`, `jacrev`, `hessian`) keeps loops as loops: the forward
//! sweep stores in a *tape* each value that the backward sweep needs and cannot recompute
//! cheaply, one slot per iteration of the loops the value depends on (`h[j]` inside
//! `for i { for j { .. } }` takes one slot per `j`). A loop-invariant value takes one
//! slot, index arithmetic and reads of immutable arrays are recomputed, not stored. A call
//! `g(x)` in a gradient keeps its residuals (what `g`'s reverse sweep reads) for `g`'s
//! reverse pass; inside a loop they are not taped: the backward sweep runs `g`'s forward
//! pass again from the taped arguments (in a gradient that does not return the value,
//! instead of running it in the forward sweep). A loop of `n` steps that tapes `k` values of type `f64` needs `8·k·n` bytes
//! (an explicit-Euler step `x = x - dt * k * x.sin()` tapes `x` and `x.sin()`: 16 MB for
//! 10⁶ steps); second order (`hessian`, and reverse over reverse) doubles it for the
//! tapes' tangents or adjoints.
//!
//! Where tapes live:
//! - up to 64 KiB (`TAPE_STACK_BYTES`): an array on the stack, no allocation;
//! - larger, when the loop bounds are literals: a `Vec` on the heap, so a long loop runs
//!   on a 2 MiB thread (rayon workers, test threads). This is the one deliberate heap
//!   allocation of generated code with static sizes;
//! - bounds that are named constants (`for i in 0..STEPS`): rustc chooses between the two
//!   from the constant's value (`fluxion::__private::TapeStorage`);
//! - bounds that are const generics (`for i in 0..N` in `fn f<const N: usize>`): always
//!   on the stack, since stable Rust cannot choose a type from a generic size; for large
//!   `N`, run on a thread with a large enough stack;
//! - bounds known only at run time (`0..xs.len()`, `i + 1..n`), and loops inside such
//!   loops: a `Vec` that grows by one slot each time the value is computed (a triangular
//!   loop over `n` points stores `n (n - 1) / 2` slots), read back in reverse order.
//!
//! ## Parameter structs, optimisers, initialisation
//!
//! A model's weights can live in one struct: `#[derive(Parameters)]` implements
//! [`Parameters`] for it (fields of floats, arrays, `Vec`s, nalgebra matrices with the
//! `nalgebra` feature, other derived structs; `#[param(buffer)]` for fields carried but
//! not trained), giving `zeros_like`, flat copies, `axpy`, `dot`, named tensors
//! (`layer1.w`) and the elementwise updates that [`optim::Sgd`] and [`optim::Adam`]
//! (torch.optim's rules and defaults) run without allocating after their first step.
//! [`init::linear`] fills one from a counter-based [`Rng`] as torch's `nn.Linear` does.
//! Annotated functions take such a struct as an argument (JAX's pytrees): `grad` with
//! respect to it has the struct's type, ensembles are slices of structs under `vmap`;
//! see the derive's documentation ([`Parameters`](derive@Parameters)).
//!
//! ## Reading the generated code
//!
//! Add `show` to an attribute (`#[grad(show)]`) and the generated code appears in the
//! generated function's rustdoc, or run `cargo expand`, or
//! `cargo run -p fluxion-engine --example expand -- path/to/file.rs [fn_name]`.
#![warn(missing_docs)]

// The macros and `stop_gradient` are documented (with their examples) where they are
// defined, in `fluxion-macros` and `fluxion-runtime`; inlining shows those pages here.
#[doc(hidden)]
pub use fluxion_macros::__with_fields;
#[doc(inline)]
pub use fluxion_macros::Parameters;
#[doc(inline)]
pub use fluxion_macros::{
    custom_rule, differentiable, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, transforms, vjp, vmap,
};
#[doc(inline)]
pub use fluxion_runtime::stop_gradient;
/// What a `try_` form of a `vmap`ped function returns when its batched arguments have
/// different numbers of samples (or the components of an `in_dims = 1` argument different
/// lengths, or an inner batch of a nested `vmap` disagrees).
pub use fluxion_runtime::BatchError;
/// The generator of random draws inside annotated functions (`rng.uniform(i)`,
/// `rng.normal(i)`); see `vmap`'s `randomness` for batches.
#[doc(inline)]
pub use fluxion_runtime::Rng;
#[doc(inline)]
pub use fluxion_runtime::{init, optim, ParamFloat, Parameters};

#[doc(hidden)]
pub mod __private {
    pub use fluxion_runtime::*;
}
