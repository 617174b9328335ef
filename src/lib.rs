//! # fluxion: torch.func transforms for Rust, at compile time
//!
//! Attribute macros read the body of an ordinary Rust function, differentiate it
//! symbolically and emit plain Rust beside it: no tape, no graph, no heap allocation for
//! static sizes. The generated code is what you would write by hand, so LLVM optimises it
//! like hand-written code.
//!
//! ```
//! use fluxion::{grad, jacfwd, jacrev};
//!
//! const EPS: f64 = 1.0;
//! const SIGMA: f64 = 1.0;
//!
//! /// Lennard-Jones energy; `#[jacrev]` generates `energy_jacrev(r) = dE/dr`.
//! #[jacrev]
//! fn energy(r: f64) -> f64 {
//!     EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
//! }
//!
//! /// Stacked attributes compose like nested calls: jacfwd(jacrev(f)) is a Hessian.
//! #[jacfwd]
//! #[jacrev]
//! fn rosenbrock(x: [f64; 2]) -> f64 {
//!     let a = 1.0 - x[0];
//!     let b = x[1] - x[0] * x[0];
//!     a * a + 100.0 * b * b
//! }
//!
//! let r = 1.5_f64;
//! let exact = EPS * (-12.0 * SIGMA.powi(12) / r.powi(13) + 6.0 * SIGMA.powi(6) / r.powi(7));
//! assert!((energy_jacrev(r) - exact).abs() < 1e-14);
//! assert_eq!(rosenbrock_jacrev_jacfwd([1.0, 1.0]), [[802.0, -400.0], [-400.0, 200.0]]);
//! ```
//!
//! ## The transforms
//!
//! | attribute | generates | mirrors |
//! |---|---|---|
//! | [`grad`] | `f_grad(args) -> gradient` | `torch.func.grad`, `jax.grad` |
//! | [`grad_and_value`] | `f_grad_and_value(args) -> (gradient, value)` | `torch.func.grad_and_value`, `jax.value_and_grad` |
//! | [`jacrev`] | `f_jacrev(args) -> jacobian` (reverse mode) | `torch.func.jacrev`, `jax.jacrev` |
//! | [`jacfwd`] | `f_jacfwd(args) -> jacobian` (forward mode) | `torch.func.jacfwd`, `jax.jacfwd` |
//! | [`hessian`] | `f_hessian(args) -> hessian` (forward over reverse) | `torch.func.hessian`, `jax.hessian` |
//! | [`vjp`] | `f_vjp(args) -> (y, pullback)` and `f_vjp_ct(args, ct) -> (y, cotangents)` | `torch.func.vjp`, `jax.vjp` |
//! | [`jvp`] | `f_jvp(args, tangents) -> (y, tangent_out)` | `torch.func.jvp`, `jax.jvp` |
//! | [`differentiable`] | nothing public: lets annotated functions call `f` | |
//! | [`custom_rule`] | your own JVP/VJP for a function the engine cannot read | `jax.custom_jvp`/`custom_vjp`, `torch.autograd.Function` |
//!
//! Options (torch.func's): `argnums = k` or `argnums = (j, k)` (which arguments; a tuple
//! gives a tuple of results, even of length one), `has_aux` (the function returns
//! `(output, aux)`; `aux` is passed through, never differentiated), `name = "..."` (the
//! generated function's name), `show` (the generated code is attached to the generated
//! function's documentation).
//!
//! ## Conventions
//!
//! - **Names**: the generated function is the original's name plus `_` and the
//!   transform's name (`f_grad`, `f_jacrev`); stacking appends suffixes innermost first:
//!   `#[jacfwd] #[jacrev] fn f` generates `f_jacrev` and `f_jacrev_jacfwd`. `name = "g"`
//!   replaces the whole name. `vjp` also generates `<name>_ct`.
//! - **Layout** (JAX's): the derivative of an output of shape `O` with respect to an
//!   argument of shape `I` has shape `O ++ I`. A gradient has its argument's type; the
//!   Jacobian of `[f64; N] -> [f64; M]` is `[[f64; N]; M]`, element `[i][j]` is
//!   `∂yᵢ/∂xⱼ`.
//! - **What is differentiated**: `f64`, `f32`, fixed arrays of them (`[f64; N]` with `N` a
//!   literal, a `const` or a const generic), shared references to these, tuples of these
//!   as results. Integer arguments are passed through, never differentiated.
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
//! `let` (with shadowing), `let mut` with reassignment, `+=`, `-=`, `*=`, `/=`; arithmetic;
//! float literals and constants (user `const` items, `std::f64::consts`); casts of integer
//! constants and loop indices; array literals and `[0.0; N]`; indexing and index
//! assignment with constant or loop indices; `for i in lo..hi` and `(lo..hi).rev()` over
//! constant ranges; `if`/`else` on conditions that are not differentiated; early `return`
//! in an `if` outside loops; the float methods `sin cos tan asin acos atan atan2 sinh cosh
//! tanh exp exp2 exp_m1 ln log2 log10 ln_1p sqrt cbrt powi powf abs signum min max hypot
//! recip mul_add`; `.iter().sum()`; [`stop_gradient`]; calls of [`differentiable`] and
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
//! ## Reading the generated code
//!
//! Add `show` to an attribute (`#[grad(show)]`) and the generated code appears in the
//! generated function's rustdoc, or run `cargo expand`, or
//! `cargo run -p fluxion-engine --example expand -- path/to/file.rs [fn_name]`.
#![warn(missing_docs)]

/// Marks a function that annotated functions can call and differentiate through, in
/// forward and reverse mode and at second order (also across modules and crates).
///
/// It generates no public function, only hidden companions (`jvp`, `vjp` and their
/// second-order compositions) that the callers' generated code uses. A call of a function
/// without this attribute fails to compile at the call, naming the missing item
/// `__mark_<name>_with_fluxion_differentiable`.
///
/// ```
/// use fluxion::{differentiable, hessian};
///
/// #[differentiable]
/// fn softplus(x: f64) -> f64 {
///     (1.0 + x.exp()).ln()
/// }
///
/// #[hessian]
/// fn loss(w: f64) -> f64 {
///     softplus(2.0 * w)
/// }
///
/// let s = 1.0 / (1.0 + (-1.0f64).exp()); // sigmoid(2w) at w = 0.5
/// assert!((loss_hessian(0.5) - 4.0 * s * (1.0 - s)).abs() < 1e-15);
/// ```
pub use fluxion_macros::differentiable;

/// `torch.func.grad` / `jax.grad`: `#[grad] fn f` generates `f_grad`, the gradient of a
/// scalar-valued `f` with respect to `argnums` (default `0`).
///
/// Options: `argnums`, `has_aux` (returns `(grad, aux)`), `name`, `show`.
///
/// ```
/// use fluxion::grad;
///
/// #[grad(argnums = (0, 1))]
/// fn f(x: f64, y: [f64; 2]) -> f64 {
///     x * y[0] + y[1].sin()
/// }
///
/// let (dx, dy) = f_grad(2.0, [3.0, 0.0]);
/// assert_eq!(dx, 3.0);
/// assert_eq!(dy, [2.0, 1.0]);
/// ```
pub use fluxion_macros::grad;

/// `torch.func.grad_and_value` / `jax.value_and_grad`: `f_grad_and_value(args) ->
/// (grad, value)`; with `has_aux`, `(grad, (value, aux))`. The value is bitwise the value
/// of `f`.
///
/// ```
/// use fluxion::grad_and_value;
///
/// #[grad_and_value]
/// fn f(x: f64) -> f64 {
///     x * x
/// }
///
/// assert_eq!(f_grad_and_value(3.0), (6.0, 9.0));
/// ```
pub use fluxion_macros::grad_and_value;

/// `torch.func.jacrev` / `jax.jacrev`: the Jacobian by reverse mode, one forward pass and
/// one reverse pass per output element. Layout: output shape, then input shape.
///
/// ```
/// use fluxion::jacrev;
///
/// #[jacrev]
/// fn f(x: [f64; 3]) -> [f64; 2] {
///     [x[0] * x[1], x[2].exp()]
/// }
///
/// let j = f_jacrev([2.0, 3.0, 0.0]);
/// assert_eq!(j, [[3.0, 2.0, 0.0], [0.0, 0.0, 1.0]]);
/// ```
pub use fluxion_macros::jacrev;

/// `torch.func.jacfwd` / `jax.jacfwd`: the Jacobian by forward mode, one pass per input
/// element. Same layout as [`jacrev`].
///
/// ```
/// use fluxion::jacfwd;
///
/// #[jacfwd]
/// fn f(x: f64) -> [f64; 2] {
///     [x * x, x.sin()]
/// }
///
/// assert_eq!(f_jacfwd(0.0), [0.0, 1.0]);
/// ```
pub use fluxion_macros::jacfwd;

/// `torch.func.hessian` / `jax.hessian`: `jacfwd(jacrev(f))` (forward over reverse).
///
/// ```
/// use fluxion::hessian;
///
/// #[hessian]
/// fn f(x: [f64; 2]) -> f64 {
///     x[0] * x[0] * x[1]
/// }
///
/// assert_eq!(f_hessian([1.0, 2.0]), [[4.0, 2.0], [2.0, 0.0]]);
/// ```
pub use fluxion_macros::hessian;

/// `torch.func.vjp` / `jax.vjp`: `f_vjp(args) -> (y, pullback)` where `pullback(ct)`
/// returns one cotangent per float argument (a tuple, even of one), and the cotangent
/// form `f_vjp_ct(args, ct) -> (y, (cotangents..))`, which is the one other transforms
/// differentiate. With `has_aux`: `(y, pullback, aux)` and `(y, cotangents, aux)`.
///
/// ```
/// use fluxion::vjp;
///
/// #[vjp]
/// fn f(x: [f64; 2]) -> [f64; 2] {
///     [x[0] * x[1], x[1]]
/// }
///
/// let (y, pullback) = f_vjp([2.0, 3.0]);
/// assert_eq!(y, [6.0, 3.0]);
/// let (x_bar,) = pullback([1.0, 0.0]);
/// assert_eq!(x_bar, [3.0, 2.0]);
/// ```
pub use fluxion_macros::vjp;

/// `torch.func.jvp` / `jax.jvp`: `f_jvp(primals.., tangents..) -> (y, tangent_out)`, one
/// tangent per float argument, in order. With `has_aux`: `(y, tangent_out, aux)`.
///
/// ```
/// use fluxion::jvp;
///
/// #[jvp]
/// fn f(x: f64, y: f64) -> f64 {
///     x * y
/// }
///
/// assert_eq!(f_jvp(2.0, 3.0, 1.0, 0.0), (6.0, 3.0));
/// ```
pub use fluxion_macros::jvp;

/// Hand-written derivative rules for a function the engine cannot read (another crate's
/// function, an iterative solver): `#[custom_rule(jvp = f_jvp, vjp = f_vjp)]`, like JAX's
/// `custom_jvp`/`custom_vjp` and torch's `autograd.Function`.
///
/// The rules follow the companion protocol: `f_jvp(primals.., tangents..) -> (y, ẏ)` with
/// one tangent per parameter (`()` for integers) and `f_vjp(primals.., ct) -> (y,
/// (cotangent per parameter,..))`. Give either or both: for all-scalar signatures the
/// missing one is derived. Add `second_order` when the rule functions are themselves
/// `#[differentiable]`: then Hessians and reverse-over-reverse go through them. A
/// derivative that needs a rule you did not supply fails to build, naming the function
/// and the missing rule (when the calling code is compiled, so `cargo build`, not
/// `cargo check`, reports it).
///
/// ```
/// use fluxion::{custom_rule, grad};
///
/// /// Newton's iteration for the square root: the engine does not read `while`.
/// #[custom_rule(jvp = newton_sqrt_jvp)]
/// fn newton_sqrt(x: f64) -> f64 {
///     let mut y = x.max(1.0);
///     let mut k = 0;
///     while k < 60 {
///         y = 0.5 * (y + x / y);
///         k += 1;
///     }
///     y
/// }
///
/// fn newton_sqrt_jvp(x: f64, dx: f64) -> (f64, f64) {
///     let y = newton_sqrt(x);
///     (y, dx / (2.0 * y))
/// }
///
/// #[grad]
/// fn f(x: f64) -> f64 {
///     newton_sqrt(x) * 3.0
/// }
///
/// assert!((f_grad(4.0) - 0.75).abs() < 1e-15);
/// ```
///
/// A derivative that needs a rule the function does not have fails to build, with the
/// message "`scale` has a custom rule but no `vjp` companion: add `vjp = ..` to its
/// #[custom_rule] (it is only derived for scalar signatures)":
///
/// ```compile_fail
/// use fluxion::{custom_rule, jacrev};
///
/// #[custom_rule(jvp = scale_jvp)]
/// fn scale(x: [f64; 2]) -> f64 {
///     x[0] * 2.0 + x[1]
/// }
///
/// fn scale_jvp(x: [f64; 2], dx: [f64; 2]) -> (f64, f64) {
///     (scale(x), dx[0] * 2.0 + dx[1])
/// }
///
/// #[jacrev] // reverse mode needs `scale`'s vjp
/// fn f(x: [f64; 2]) -> f64 {
///     scale(x) * 3.0
/// }
///
/// f_jacrev([1.0, 2.0]);
/// ```
pub use fluxion_macros::custom_rule;

/// Passes a value with a zero derivative: JAX's `stop_gradient`, the inside of a
/// `torch.no_grad()` block. Outside an annotated function it is the identity.
///
/// ```
/// use fluxion::{grad, stop_gradient};
///
/// #[grad]
/// fn f(x: f64) -> f64 {
///     x * stop_gradient(x)
/// }
/// // d/dx (x * c) with c = x held constant is c, not 2x.
/// assert_eq!(f_grad(3.0), 3.0);
/// ```
pub use fluxion_runtime::stop_gradient;

#[doc(hidden)]
pub mod __private {
    pub use fluxion_runtime::*;
}
