//! The attribute macros of fluxion. Each is a three-line shim over `fluxion-engine`.
//!
//! Use them through the `fluxion` crate, which re-exports them together with the runtime
//! their generated code calls (`::fluxion::__private`); the crate documentation of
//! `fluxion` describes the conventions and the language the macros accept.
#![warn(missing_docs)]

// Links between the macros' pages are relative URLs (`attr.grad.html`): `fluxion` inlines
// these pages, and rustdoc does not resolve a proc-macro crate's intra-doc links there.

use fluxion_engine::{expand, Transform};
use proc_macro::TokenStream;

macro_rules! transform {
    ($(#[$doc:meta])* $name:ident => $t:expr) => {
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(args: TokenStream, item: TokenStream) -> TokenStream {
            expand($t, args.into(), item.into()).unwrap_or_else(syn_error_to_tokens).into()
        }
    };
}

fn syn_error_to_tokens(e: fluxion_engine::Error) -> proc_macro2::TokenStream {
    e.to_compile_error()
}

transform!(
    /// Marks a function that annotated functions can call and differentiate through, in
    /// forward and reverse mode and at second order (also across modules and crates).
    ///
    /// It generates no public function, only hidden companions (`jvp`, `vjp`, the two
    /// halves of `vjp` that let a caller's gradient run `g`'s forward pass once, and the
    /// second-order compositions) that the callers' generated code uses. They live on a
    /// hidden type with the function's own name (`struct g`, in the type namespace
    /// beside `fn g`), so a marked function works however it is named or imported:
    /// `m::g(x)`, `use m::g;`, `use m::g as h;`, `use m::*;`.
    ///
    /// A call of a function without this attribute fails to compile at the call with
    /// "expected type, found function `g`": add `#[differentiable]` to `g`, or, for a
    /// function of another crate, give a local wrapper a rule with `custom_rule`. Every
    /// transform attribute also
    /// makes its function callable this way, and so are the functions it generates (a loss
    /// calling `model_jacrev` can be differentiated again).
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
    differentiable => Transform::Differentiable
);
transform!(
    /// The gradient, by reverse mode: `#[grad] fn f` generates `f_grad`. Mirrors
    /// `torch.func.grad` and `jax.grad`.
    ///
    /// ```text
    /// #[grad]                    fn f(x: X, ..) -> f64   generates   fn f_grad(x: X, ..) -> X
    /// #[grad(argnums = (0, 1))]  fn f(x: X, y: Y) -> f64 generates   fn f_grad(x: X, y: Y) -> (X, Y)
    /// #[grad(has_aux)]           fn f(x: X) -> (f64, A)  generates   fn f_grad(x: X) -> (X, A)
    /// ```
    ///
    /// `f` returns a scalar (`f64` or `f32`); the gradient has the type of the argument it
    /// is taken with respect to (`f64`, `[f64; N]`, `[[f64; N]; M]`). A slice `&[f64]` gives a
    /// `Vec<f64>`; a `&DVector<f64>` (read as its storage: `x[i]`, `x.len()`) a `DVector<f64>`,
    /// a `&DMatrix<f64>` (`m[(i, j)]`, `m.nrows()`, `m.ncols()`) a `DMatrix<f64>` of its shape;
    /// under `hessian` and `jacrev` / `jacfwd` of an `[f64; M]` result, a `DVector`'s
    /// derivative is an `n x n` and an `M x n` `DMatrix`.
    ///
    /// Options:
    /// - `argnums = k` or `argnums = (j, k, ..)`: the arguments to differentiate with
    ///   respect to (default `0`); a tuple gives a tuple of gradients, even of length one;
    /// - `has_aux`: `f` returns `(output, aux)`; `aux` is passed through, never
    ///   differentiated;
    /// - `name = "g"`: the generated function's name (default `f_grad`);
    /// - `show`: the generated code in the generated function's documentation.
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
    grad => Transform::Grad
);
transform!(
    /// The gradient and the value, from one forward and one reverse pass:
    /// `#[grad_and_value] fn f` generates `f_grad_and_value`, returning `(grad, value)`.
    ///
    /// Mirrors `torch.func.grad_and_value`, including its order `(grad, value)`. JAX's
    /// `jax.value_and_grad` computes the same but returns the opposite order,
    /// `(value, grad)`.
    ///
    /// ```text
    /// #[grad_and_value]          fn f(x: X) -> f64       generates   fn f_grad_and_value(x: X) -> (X, f64)
    /// #[grad_and_value(has_aux)] fn f(x: X) -> (f64, A)  generates   fn f_grad_and_value(x: X) -> (X, (f64, A))
    /// ```
    ///
    /// The value is bitwise the value of `f` (the simplifier never rewrites the primal
    /// computation). Options as for [`grad`](attr.grad.html): `argnums`, `has_aux` (the result is
    /// `(grad, (value, aux))`, as in torch.func), `name`, `show`.
    ///
    /// ```
    /// use fluxion::grad_and_value;
    ///
    /// #[grad_and_value]
    /// fn f(x: f64) -> f64 {
    ///     x * x
    /// }
    ///
    /// let (grad, value) = f_grad_and_value(3.0);
    /// assert_eq!((grad, value), (6.0, 9.0));
    /// ```
    grad_and_value => Transform::GradAndValue
);
transform!(
    /// The vector-Jacobian product: `#[vjp] fn f` generates a pullback form `f_vjp` and a
    /// cotangent form `f_vjp_ct`. Mirrors `torch.func.vjp` and `jax.vjp`.
    ///
    /// ```text
    /// #[vjp] fn f(x: X, y: Y) -> Out   generates
    ///     fn f_vjp(x: X, y: Y) -> (Out, impl Fn(Out) -> (X, Y))
    ///     fn f_vjp_ct(x: X, y: Y, ct: Out) -> (Out, (X, Y))
    /// ```
    ///
    /// `f_vjp` runs the forward pass and returns the output with a pullback; `pullback(ct)`
    /// runs the reverse pass for the output cotangent `ct` and returns one cotangent per
    /// float argument, in order (a tuple, even of one; integer arguments have none).
    /// `f_vjp_ct` takes the cotangent directly and returns `(output, cotangents)`: it is the
    /// form other transforms call and differentiate.
    ///
    /// Options:
    /// - `has_aux`: `f` returns `(output, aux)`; the results become `(y, pullback, aux)`
    ///   and `(y, cotangents, aux)`;
    /// - `name = "g"`: the pullback form's name (the cotangent form is `g_ct`);
    /// - `show`: the generated code in the generated functions' documentation.
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
    ///
    /// assert_eq!(f_vjp_ct([2.0, 3.0], [1.0, 0.0]), ([6.0, 3.0], ([3.0, 2.0],)));
    /// ```
    vjp => Transform::Vjp
);
transform!(
    /// The Jacobian-vector product, by forward mode: `#[jvp] fn f` generates `f_jvp`.
    /// Mirrors `torch.func.jvp` and `jax.jvp`.
    ///
    /// ```text
    /// #[jvp] fn f(x: X, y: Y) -> Out   generates   fn f_jvp(x: X, y: Y, x_dot: X, y_dot: Y) -> (Out, Out)
    /// ```
    ///
    /// `f_jvp` takes the primals, then one tangent per float argument in the same order
    /// (integer arguments take none), and returns `(output, tangent_out)`: the output and
    /// its directional derivative along the tangents, from one forward pass.
    ///
    /// Options:
    /// - `has_aux`: `f` returns `(output, aux)`; the result becomes
    ///   `(output, tangent_out, aux)`;
    /// - `name = "g"`: the generated function's name (default `f_jvp`);
    /// - `show`: the generated code in the generated function's documentation.
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
    jvp => Transform::Jvp
);
transform!(
    /// The Jacobian by reverse mode: `#[jacrev] fn f` generates `f_jacrev`, one forward
    /// sweep, then reverse sweeps over the output elements (on SIMD lanes: `chunk_size`
    /// below). Mirrors `torch.func.jacrev` and
    /// `jax.jacrev`.
    ///
    /// The layout is JAX's: output shape, then input shape.
    ///
    /// ```text
    /// fn f(x: f64) -> f64             f_jacrev(x) -> f64
    /// fn f(x: [f64; N]) -> f64        f_jacrev(x) -> [f64; N]         (the gradient)
    /// fn f(x: f64) -> [f64; M]        f_jacrev(x) -> [f64; M]
    /// fn f(x: [f64; N]) -> [f64; M]   f_jacrev(x) -> [[f64; N]; M]    element [i][j] = ∂yᵢ/∂xⱼ
    /// fn f(x: X) -> (A, B)            f_jacrev(x) -> (JA, JB)         one Jacobian per output
    /// ```
    ///
    /// With a tuple of outputs and a tuple of `argnums`, the result is per output, then
    /// per argument: `((∂A/∂x, ∂A/∂y), (∂B/∂x, ∂B/∂y))`, as torch.func nests it.
    ///
    /// Options:
    /// - `argnums = k` or `argnums = (j, k, ..)`: the arguments to differentiate with
    ///   respect to (default `0`); a tuple gives a tuple of Jacobians, even of length one;
    /// - `has_aux`: `f` returns `(output, aux)`; the result is `(jacobian, aux)`;
    /// - `chunk_size = k`: torch.func's option. The rows of a vector output's Jacobian are
    ///   computed 4 (`f64`) or 8 (`f32`) at a time, one reverse sweep over that many basis
    ///   cotangents on SIMD lanes, after one shared forward sweep; chunks of rows run as
    ///   tasks on rayon's threads (feature `parallel`), `k` rows per task (rounded up to
    ///   whole lane chunks; by default a size from the sweep's cost, so a small Jacobian
    ///   is one task). `chunk_size = 1` is one scalar sweep per row, torch.func's
    ///   for-loop. The Jacobian is the same bit for bit for every chunk size and thread
    ///   count. Where the body is one loop writing row `i` from a few elements of `x`
    ///   (`y[i] = g(x[i], x[i + 1])`), the rows come from each iteration's small gradient
    ///   instead, and `chunk_size` has nothing to split;
    /// - `name = "g"`: the generated function's name (default `f_jacrev`);
    /// - `show`: the generated code in the generated function's documentation.
    ///
    /// Stacked with [`jacfwd`](attr.jacfwd.html) it gives second derivatives:
    /// `#[jacfwd] #[jacrev] fn f` also generates `f_jacrev_jacfwd`, `jacfwd(jacrev(f))`.
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
    jacrev => Transform::Jacrev
);
transform!(
    /// The Jacobian by forward mode: `#[jacfwd] fn f` generates `f_jacfwd`, one forward
    /// pass per input element. Mirrors `torch.func.jacfwd` and `jax.jacfwd`.
    ///
    /// Same signature, layout and options as [`jacrev`](attr.jacrev.html) (output shape, then input shape;
    /// `argnums`, `has_aux`, `chunk_size`, `name`, `show`). Forward mode is the cheaper one when the
    /// input has fewer elements than the output. The columns of a vector input with more
    /// than 8 elements are computed on SIMD lanes of basis tangents; for a vector output,
    /// chunks of columns run as tasks on rayon's threads (feature `parallel`), `chunk_size`
    /// columns per task, each task writing its own columns. `chunk_size = 1` is one
    /// forward sweep per column. The Jacobian is the same bit for bit for every chunk
    /// size and thread count. A slice input (`&[T]`) gives rows of its length
    /// (`[Vec<T>; M]`), one forward pass per element.
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
    jacfwd => Transform::Jacfwd
);
transform!(
    /// The Hessian of a scalar function, forward over reverse (`jacfwd(jacrev(f))`):
    /// `#[hessian] fn f` generates `f_hessian`. Mirrors `torch.func.hessian` and
    /// `jax.hessian`.
    ///
    /// ```text
    /// fn f(x: f64) -> f64                        f_hessian(x) -> f64
    /// fn f(x: [f64; N]) -> f64                   f_hessian(x) -> [[f64; N]; N]   element [i][j] = ∂²f/∂xᵢ∂xⱼ
    /// #[hessian(argnums = 1)] fn f(x, y: Y)      f_hessian(x, y) -> H            the Hessian in y
    /// #[hessian(argnums = (1,))] fn f(x, y: Y)   f_hessian(x, y) -> ((H,),)      as torch.func nests it
    /// #[hessian(argnums = (0, 1))] fn f(x, y)    f_hessian(x, y) -> ((Hxx, Hxy), (Hyx, Hyy))
    /// ```
    ///
    /// Options: `argnums` (an integer or a tuple; with several arguments the blocks are
    /// nested as torch.func nests them, `Hxy[i][j] = ∂²f/∂xᵢ∂yⱼ`), `has_aux` (`f` returns
    /// `(output, aux)`; the result is `(hessian, aux)`), `name = "g"` (default
    /// `f_hessian`), `show`.
    ///
    /// ```
    /// use fluxion::hessian;
    ///
    /// #[hessian]
    /// fn f(x: [f64; 2]) -> f64 {
    ///     x[0] * x[0] * x[1]
    /// }
    ///
    /// // [[∂²f/∂x₀², ∂²f/∂x₀∂x₁], [∂²f/∂x₁∂x₀, ∂²f/∂x₁²]] = [[2x₁, 2x₀], [2x₀, 0]]
    /// assert_eq!(f_hessian([1.0, 2.0]), [[4.0, 2.0], [2.0, 0.0]]);
    /// ```
    hessian => Transform::Hessian
);
transform!(
    /// The function over a batch, on SIMD lanes: torch.func's `vmap` (and `jax.vmap`) as
    /// generated Rust. `#[vmap] fn f` generates `f_vmap`, `try_f_vmap` and `f_vmap_into`.
    ///
    /// The body is batched at compile time: every operation runs on 4 samples at once
    /// (`f64`; 8 for `f32`), values that do not depend on a batched argument are computed
    /// once per chunk, loops stay loops, and an `if` on a batched value runs both sides and
    /// takes each lane from its own side (the other side's NaN or infinity, `x.sqrt()` at
    /// `x < 0`, never reaches a result). There is no per-sample loop over the function.
    ///
    /// The generated signatures, for `#[vmap(in_dims = (0, None))] fn f(x: T, w: W) -> R`:
    ///
    /// ```text
    /// fn f_vmap(x: &[T], w: W) -> Vec<R>
    /// fn try_f_vmap(x: &[T], w: W) -> Result<Vec<R>, BatchError>
    /// fn f_vmap_into(x: &[T], w: W, out: &mut [R], chunk_size: Option<usize>)
    /// ```
    ///
    /// Layouts. `in_dims` gives each argument's batch axis (torch.func's): `0` a slice of
    /// samples, `1` an array sample split into one slice per component (structure of
    /// arrays), `None` shared by the whole batch; a single value applies to every argument,
    /// a tuple gives one per argument. `out_dims` does the same for each output (`0` or
    /// `1`; each output of a tuple is batched on its own, as in JAX). `T` is a float or a
    /// fixed array of them (`f64`, `[f32; 3]`, `[[f64; 2]; 3]`), `T` and `&T` alike:
    ///
    /// | in `f` | option | in `f_vmap` and `try_f_vmap` | in `f_vmap_into` |
    /// |---|---|---|---|
    /// | `x: T` or `x: &T` | `in_dims = 0` (default) | `x: &[T]`, one `T` per sample | the same |
    /// | `x: [T; N]` or `x: &[T; N]` | `in_dims = 1` | `x: [&[T]; N]`: component `j` of sample `k` is `x[j][k]`; all `N` slices of one length | the same |
    /// | `x: SVector<T, N>`, `x: SMatrix<T, R, C>` (or an alias, `Vector3<T>`, `Matrix2x3<T>`; or `&` of one) | `in_dims = 0` (default) | `x: &[SVector<T, N>]`, one matrix per sample | the same |
    /// | `x: SVector<T, N>` (or an alias, `Vector3<T>`; or `&` of one) | `in_dims = 1` | `x: [&[T]; N]`, as for `[T; N]` | the same |
    /// | `w: W` (any type) | `in_dims = None` | `w: W`, as in `f` | the same |
    /// | `-> R` | `out_dims = 0` (default) | `Vec<R>`, one `R` per sample | `out: &mut [R]` |
    /// | `-> SVector<T, N>`, `-> SMatrix<T, R, C>` (a vector-valued function; the gradient in an `SVector`, the Jacobian `SMatrix` of `jacrev`/`jacfwd`) | `out_dims = 0` (default) | `Vec<SVector<T, N>>`, one matrix per sample (a tuple of matrices: `Vec<(A, B)>`) | `out: &mut [SVector<T, N>]` |
    /// | `-> [T; N]` | `out_dims = 1` | `[Vec<T>; N]`: component `j` of sample `k` is `y[j][k]` | `out: [&mut [T]; N]` |
    /// | `-> SVector<T, N>` (a vector-valued function, the gradient in an `SVector`) | `out_dims = 1` | `[Vec<T>; N]`, as for `[T; N]` | `out: [&mut [T]; N]` |
    /// | `-> (A, [T; N])` | `out_dims = (0, 1)` (or one value for all outputs) | `(Vec<A>, [Vec<T>; N])` | `out: (&mut [A], [&mut [T]; N])` |
    /// | nested, `#[vmap] #[vmap] fn f(x: T)`: `x` batched by both | inner `0`, outer `0` | `x: &[Vec<T>]`, one inner batch per outer sample, of any length | the same |
    /// | nested: `x` batched by the inner `vmap` only | inner `0`, outer `None` | `x: &[T]`, the same inner batch for every outer sample | the same |
    /// | nested: `w` batched by the outer `vmap` only | inner `None`, outer `0` (or `1` for an array or an `SVector`: `[&[T]; N]`) | `w: &[W]`, one `W` per outer sample | the same |
    /// | nested: `-> R` | outer `out_dims = 0` | `Vec<Vec<R>>`, outer batch first: `y[o][k]` is inner sample `k` of outer sample `o` | `out: &mut [Vec<R>]`, each `Vec` as long as its inner batch |
    ///
    /// nalgebra's statically sized matrices batch one per sample (`in_dims = 0`,
    /// `out_dims = 0`): the kernel holds each as its column-major storage array on lanes
    /// and reads each sample's elements from it (`data.0`), so the results are those of
    /// the unbatched generated function, bit for bit where the body is arithmetic. A
    /// vector (`SVector<T, N>`, one column) also batches component by component
    /// (`in_dims = 1`, `out_dims = 1`), as an array `[T; N]` does, with the same results.
    /// `in_dims = 1` / `out_dims = 1` on a matrix of several columns, a matrix inside a
    /// batched array or tuple argument, a batched matrix passed whole to a call, and
    /// differentiating through such a batch (calling `f_vmap` from an annotated function)
    /// are not supported yet; the first three are compile errors saying so.
    ///
    /// A `vmap` stacked on a `vmap` maps the inner batched function over an outer batch:
    /// `#[vmap] #[vmap] fn f` generates `f_vmap` and `f_vmap_vmap`, vmap(vmap(f)). Its
    /// options refer to the inner function's arguments, and it takes, per outer sample, one
    /// owned value of what the inner function takes (`Vec<T>` for `&[T]`, `[Vec<T>; N]` for
    /// `[&[T]; N]`): nested slices rather than one flat buffer, so that each outer sample may
    /// have its own inner batch size (pairs of particles within each of several systems)
    /// and no size is passed on the side. Inner layouts nest too (`in_dims = 1` inside gives
    /// `&[[Vec<T>; N]]` outside, `out_dims = 1` inside gives `Vec<[Vec<T>; N]>`), and so do
    /// more levels (`#[vmap] #[vmap] #[vmap]`). Each inner batch runs on SIMD lanes through
    /// the inner function's `_into` form, the outer batch is split across threads.
    /// `#[vmap(in_dims = (0, None))] #[vmap(in_dims = (None, 0))] fn f(a, b)` is torch's
    /// `vmap(vmap(f, in_dims=(None, 0)), in_dims=(0, None))`: `f(a[i], b[j])` for every pair.
    ///
    /// Every form checks the batch before computing: arguments batched together with
    /// different numbers of samples (at either level of a nested `vmap`), the components of
    /// an `in_dims = 1` argument of different lengths, or an `out` of another length panic
    /// with a message naming the argument (and the component, and the outer sample) and
    /// both sizes; `try_f_vmap(..)` returns that as a [`BatchError`] instead.
    ///
    /// [`BatchError`]: ../fluxion/struct.BatchError.html
    ///
    /// Large batches are split across threads (rayon, with the default `parallel` feature)
    /// in tasks of `chunk_size` samples: the attribute's `chunk_size = k`, or the
    /// `_into` form's argument, or by default a size from the kernel's cost (about 65 000
    /// weighted operations per task); for a nested `vmap`, the outer samples per task. The
    /// `_into` forms allocate nothing. Each sample's result is the same bit for bit
    /// whatever the chunk size and thread count: samples never interact. `vmap` computes
    /// no reduction over the batch (every output is per sample), so nothing it returns
    /// depends on the chunk size or the thread count; a sum over the batch (of per-sample
    /// gradients in shared weights, say) is yours, in the order you write it, or that of
    /// a caller differentiating through the batch (below), in a fixed order.
    ///
    /// A batched function may call other [`differentiable`] functions: the call runs on
    /// lanes too, through the callee's batched companions, which its own attribute
    /// generates (shared arguments are repeated in every lane). That holds for `vmap` of
    /// the function and of its first derivatives (`grad`, `grad_and_value`, `jvp`,
    /// `jacrev`, `jacfwd`, the `_ct` form of `vjp`); `vmap` of a second derivative
    /// (`hessian`) through a call, and a call of a generated derivative (`g_grad`) inside a
    /// batched function, are compile errors saying what to write instead. A
    /// [`custom_rule`] callee runs lane by lane (its rules are scalar code).
    ///
    /// ```
    /// use fluxion::{differentiable, grad, vmap};
    ///
    /// #[differentiable]
    /// fn pair_energy(r: f64, sigma: f64) -> f64 {
    ///     let s6 = (sigma / r).powi(6);
    ///     4.0 * (s6 * s6 - s6)
    /// }
    ///
    /// #[vmap(in_dims = (0, None))]
    /// #[grad]
    /// fn energy(r: f64, sigma: f64) -> f64 {
    ///     pair_energy(r, sigma) + 0.5 * pair_energy(2.0 * r, sigma)
    /// }
    ///
    /// let r = [0.9, 1.0, 1.1, 1.2, 1.3];
    /// let dedr = energy_grad_vmap(&r, 1.0);
    /// for (k, &rk) in r.iter().enumerate() {
    ///     assert_eq!(dedr[k], energy_grad(rk, 1.0));
    /// }
    /// ```
    ///
    /// A batched function is itself callable and differentiable from other annotated
    /// functions (with `in_dims` of `0` and `None` and `out_dims = 0`): a training loss
    /// over `model_vmap(p, xs)` is `grad`-able with respect to the shared `p`, whose
    /// cotangent is the sum over the batch of the samples' cotangents, in a fixed order
    /// (each lane's samples, then the lanes: the same for every chunk size and thread
    /// count); a batched argument's cotangent is
    /// per sample. Second derivatives through a batch (`hessian` of such a loss, `jacfwd`
    /// or `jacrev` of its `grad`) run sample by sample through the per-sample function's
    /// second-order companions (a shared argument's terms summed in sample order), where
    /// the batch is of a function of your own without shared slices or nalgebra
    /// arguments; for a batch of a generated derivative they are a compile error. A
    /// batched function may call a batch (`vmap` of a function that calls `model_vmap`,
    /// an ensemble of models over the same samples): each lane's batch runs sample by
    /// sample, every lane at once, through the per-sample function's batched companions,
    /// for the function and its `jvp`; a batched reverse pass through it, and `vmap`
    /// through the batch of a generated derivative, are compile errors.
    ///
    /// ```
    /// use fluxion::{grad, vmap};
    ///
    /// #[vmap(in_dims = (None, 0))]
    /// fn model(p: [f64; 2], x: f64) -> f64 {
    ///     p[0] * x.tanh() + p[1]
    /// }
    ///
    /// #[grad(argnums = 0)]
    /// fn loss(p: [f64; 2], xs: &[f64], ys: &[f64]) -> f64 {
    ///     let e = model_vmap(p, xs);
    ///     let mut s = 0.0;
    ///     for i in 0..xs.len() {
    ///         s += (e[i] - ys[i]).powi(2);
    ///     }
    ///     s / xs.len() as f64
    /// }
    ///
    /// let (xs, ys) = ([0.5, 1.0, 2.0], [0.4, 0.9, 1.1]);
    /// let g = loss_grad([1.0, 0.0], &xs, &ys);
    /// let h = 1e-6;
    /// let fd = (loss([1.0, h], &xs, &ys) - loss([1.0, -h], &xs, &ys)) / (2.0 * h);
    /// assert!((g[1] - fd).abs() < 1e-8);
    /// ```
    ///
    /// Random draws. A function may draw from a generator argument, `rng: &fluxion::Rng`
    /// (or `Rng`): `rng.uniform(k)`, `rng.normal(k)` (`uniform_f32`, `normal_f32`), each a
    /// pure function of the generator and the integer counter `k`, and `rng.fold_in(k)`,
    /// `rng.sample(k)` for derived generators. Draws are never differentiated, and the original function,
    /// its derivatives and every batched form see the same numbers. The generator is never
    /// batched (`in_dims` skips it; `None` is the only entry a tuple may give it), and
    /// `randomness` says what the samples draw, as in torch.func:
    ///
    /// | `randomness` | sample `k` draws from | so |
    /// |---|---|---|
    /// | `"error"` (default) | | a function that draws (or passes a generator on) is a compile error at the draw |
    /// | `"different"` | `rng.sample(k)` | each sample its own numbers: `f_vmap(&rng, xs)[k] == f(&rng.sample(k), xs[k])` |
    /// | `"same"` | `rng` | one draw shared by the batch, computed once per chunk: `f_vmap(&rng, xs)[k] == f(&rng, xs[k])` |
    ///
    /// Either way a sample's numbers depend only on the seed and the sample's index, never
    /// on the chunk size or the thread count. Nested, sample `(o, k)` draws from
    /// `rng.sample(o).sample(k)` when both levels say `"different"`. Either way the
    /// batched function is differentiable from other annotated functions (a loss over
    /// `model_vmap(&rng, p, xs)` with dropout-like noise per sample), and generators pass
    /// on to [`differentiable`] callees that draw (each lane its sample's generator, or
    /// the shared one).
    ///
    /// ```
    /// use fluxion::{vmap, Rng};
    ///
    /// #[vmap(in_dims = (None, 0), randomness = "different")]
    /// fn jitter(rng: &Rng, x: f64) -> f64 {
    ///     x + 0.1 * rng.normal(0)
    /// }
    ///
    /// let rng = Rng::new(42);
    /// let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
    /// let ys = jitter_vmap(&rng, &xs);
    /// for k in 0..xs.len() {
    ///     assert_eq!(ys[k], jitter(&rng.sample(k), xs[k]));
    /// }
    /// assert_ne!(ys[0] - xs[0], ys[1] - xs[1]);
    /// ```
    ///
    /// Stacked on a derivative it batches the generated function: `#[vmap] #[grad] fn f`
    /// gives `f_grad_vmap`, per-sample gradients (`vmap(grad(f))`). Only `vmap` is stacked
    /// on top of `vmap`. Options: `in_dims`, `out_dims`, `chunk_size = k`, `randomness`,
    /// `name = "g"` (default `f_vmap`), `show`.
    ///
    /// ```
    /// use fluxion::{grad, vmap};
    ///
    /// const EPS: f64 = 4.0;
    /// const SIGMA: f64 = 0.5;
    ///
    /// #[vmap]
    /// #[grad]
    /// fn energy(r: f64) -> f64 {
    ///     EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
    /// }
    ///
    /// let r = [0.6, 0.7, 0.8, 0.9, 1.0];
    /// let dedr = energy_grad_vmap(&r);
    /// for (k, &ri) in r.iter().enumerate() {
    ///     assert!((dedr[k] - energy_grad(ri)).abs() <= 1e-12 * energy_grad(ri).abs());
    /// }
    ///
    /// #[vmap(in_dims = (0, None))]
    /// fn dot(x: [f64; 3], w: &[f64; 3]) -> f64 {
    ///     x[0] * w[0] + x[1] * w[1] + x[2] * w[2]
    /// }
    ///
    /// let xs = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]];
    /// assert_eq!(dot_vmap(&xs, &[3.0, 4.0, 5.0]), vec![3.0, 8.0, 12.0]);
    /// ```
    ///
    /// The other layouts: structure of arrays in and out, and a nested `vmap`.
    ///
    /// ```
    /// use fluxion::vmap;
    ///
    /// // Points as one slice per coordinate, the result as one `Vec` per coordinate.
    /// #[vmap(in_dims = (1, None), out_dims = 1)]
    /// fn scale(p: [f64; 2], s: f64) -> [f64; 2] {
    ///     [p[0] * s, p[1] * s]
    /// }
    ///
    /// let (xs, ys) = ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]);
    /// let [sx, sy] = scale_vmap([&xs, &ys], 2.0);
    /// assert_eq!((sx, sy), (vec![2.0, 4.0, 6.0], vec![8.0, 10.0, 12.0]));
    ///
    /// // Into the caller's buffers: no allocation.
    /// let (mut bx, mut by) = ([0.0; 3], [0.0; 3]);
    /// scale_vmap_into([&xs, &ys], 0.5, [&mut bx, &mut by], None);
    /// assert_eq!(bx, [0.5, 1.0, 1.5]);
    ///
    /// // vmap(vmap(f)): every pair of an `a` (outer batch) and a `b` (inner batch).
    /// #[vmap(in_dims = (0, None))]
    /// #[vmap(in_dims = (None, 0))]
    /// fn gap(a: f64, b: f64) -> f64 {
    ///     (a - b).abs()
    /// }
    ///
    /// let table = gap_vmap_vmap(&[0.0, 10.0], &[1.0, 2.0, 3.0]);
    /// assert_eq!(table, vec![vec![1.0, 2.0, 3.0], vec![9.0, 8.0, 7.0]]);
    ///
    /// // Both batched by both: one inner batch per outer sample, of any length.
    /// #[vmap]
    /// #[vmap]
    /// fn sq(x: f64) -> f64 {
    ///     x * x
    /// }
    ///
    /// assert_eq!(sq_vmap_vmap(&[vec![1.0, 2.0], vec![], vec![3.0]]), vec![vec![1.0, 4.0], vec![], vec![9.0]]);
    /// ```
    ///
    /// PyTorch's vmap tutorial, the rest of it: a model written for one feature vector,
    /// applied to a batch without rewriting it; a Jacobian from vmapping the pullback over
    /// the standard basis, checked against `jacrev`; per-sample gradients of a loss with
    /// the weights shared.
    ///
    /// ```
    /// use fluxion::{grad, transforms, vmap};
    ///
    /// // One feature vector in, one prediction out; the weights are shared.
    /// #[vmap(in_dims = (0, None, None))]
    /// fn model(x: [f64; 3], w: &[[f64; 3]; 2], v: &[f64; 2]) -> f64 {
    ///     let mut out = 0.0;
    ///     for i in 0..2 {
    ///         let mut s = 0.0;
    ///         for j in 0..3 {
    ///             s += w[i][j] * x[j];
    ///         }
    ///         out += v[i] * s.tanh();
    ///     }
    ///     out
    /// }
    ///
    /// let (w, v) = ([[0.5, -1.0, 0.25], [1.5, 0.5, -0.5]], [1.0, -2.0]);
    /// let batch = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0], [0.0, 0.0, 0.0]];
    /// let preds = model_vmap(&batch, &w, &v);
    /// assert_eq!(preds.len(), 3);
    /// assert_eq!(preds[2], 0.0);
    ///
    /// // vmap(vjp) over the rows of the identity: the Jacobian, row by row.
    /// #[transforms(vmap(vjp, in_dims = (None, 0)), jacrev)]
    /// fn f(x: [f64; 2]) -> [f64; 2] {
    ///     [x[0] * x[1], x[0].sin()]
    /// }
    ///
    /// let x = [0.5, -2.0];
    /// let (_, rows) = f_vjp_ct_vmap(x, &[[1.0, 0.0], [0.0, 1.0]]);
    /// let jac = f_jacrev(x);
    /// for k in 0..2 {
    ///     assert_eq!(rows[k].0, jac[k]);
    /// }
    ///
    /// // Per-sample gradients: the gradient of each sample's loss in the shared weights.
    /// #[vmap(in_dims = (None, 0, 0))]
    /// #[grad]
    /// fn loss(w: &[f64; 2], x: [f64; 2], y: f64) -> f64 {
    ///     let e = w[0] * x[0] + w[1] * x[1] - y;
    ///     e * e
    /// }
    ///
    /// let g = loss_grad_vmap(&[1.0, -1.0], &[[1.0, 0.0], [0.0, 2.0]], &[0.0, 1.0]);
    /// assert_eq!(g, vec![[2.0, 0.0], [0.0, -12.0]]);
    /// ```
    vmap => Transform::Vmap
);

/// Hand-written derivative rules for a function the engine cannot read (another crate's
/// function, an iterative solver): `#[custom_rule(jvp = f_jvp, vjp = f_vjp)]`. Mirrors
/// JAX's `custom_jvp`/`custom_vjp` and torch's `autograd.Function`.
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
#[proc_macro_attribute]
pub fn custom_rule(args: TokenStream, item: TokenStream) -> TokenStream {
    fluxion_engine::custom::expand_custom(args.into(), item.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}

/// Several independent transforms of one function, as `grad(f)` and `hessian(f)` in
/// torch.func: `#[transforms(grad, hessian, jacfwd(argnums = 1), jacfwd(jacrev))]`.
///
/// Each entry is written as torch.func nests calls, options after the inner transform:
/// `jacfwd(jacrev, argnums = 1)` is `jacfwd(jacrev(f), argnums=1)` and generates
/// `f_jacrev` and `f_jacrev_jacfwd`, exactly as the stack `#[jacfwd(argnums = 1)]
/// #[jacrev] fn f` does. Stacked attributes compose (`#[grad] #[hessian] fn f` is
/// `grad(hessian(f))`); this list is how to ask for transforms of the original function
/// side by side. What two entries share is generated once; two entries generating the same
/// name differently are an error (give one `name = ".."`).
///
/// ```
/// use fluxion::transforms;
///
/// #[transforms(grad, hessian, jacfwd(jacrev))]
/// fn f(x: [f64; 2]) -> f64 {
///     x[0] * x[0] * x[1]
/// }
///
/// assert_eq!(f_grad([1.0, 2.0]), [4.0, 1.0]);
/// assert_eq!(f_hessian([1.0, 2.0]), [[4.0, 2.0], [2.0, 0.0]]);
/// assert_eq!(f_jacrev_jacfwd([1.0, 2.0]), f_hessian([1.0, 2.0]));
/// ```
#[proc_macro_attribute]
pub fn transforms(args: TokenStream, item: TokenStream) -> TokenStream {
    fluxion_engine::list::expand_transforms(args.into(), item.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}

/// The attribute macros again, with the fields of the parameter structs their function
/// takes (called by the macro that `#[derive(Parameters)]` emits; not for direct use).
#[doc(hidden)]
#[proc_macro]
pub fn __with_fields(input: TokenStream) -> TokenStream {
    fluxion_engine::expand_with_fields(input.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}

/// Implements `fluxion::Parameters` for a struct with named fields, field by field in
/// declaration order: a model's weights as one value that gradients, optimisers
/// (`fluxion::optim`) and initialisers (`fluxion::init`) take whole, as torch's
/// `make_functional` parameters and JAX's pytrees.
///
/// Every field's type implements `Parameters` with one scalar type (`f64` or `f32`):
/// floats, fixed arrays and `Vec`s of parameters, nalgebra matrices (feature
/// `nalgebra`), other derived structs. The flatten order is the fields' declaration order,
/// and names are field paths (`layer1.w`).
///
/// A field marked `#[param(buffer)]` is carried but never trained (torch's buffers, as
/// `make_functional_with_buffers` separates them): it is excluded from `num_scalars`, the
/// flat copies, `dot`, `axpy`, every zip and so from the optimisers' updates, and
/// `zeros_like` clones it. Its type needs only `Clone` (a step counter, running statistics,
/// a configuration value).
///
/// ```
/// use fluxion::Parameters;
///
/// #[derive(Parameters, Clone)]
/// struct Norm {
///     gain: Vec<f64>,
///     #[param(buffer)]
///     running_mean: Vec<f64>,
/// }
///
/// let n = Norm { gain: vec![1.0, 2.0], running_mean: vec![0.5, 0.5] };
/// assert_eq!(n.num_scalars(), 2);
/// assert_eq!(n.to_flat(), [1.0, 2.0]);
/// let z = n.zeros_like();
/// assert_eq!((z.gain, z.running_mean), (vec![0.0, 0.0], vec![0.5, 0.5]));
/// ```
///
/// `Scalar` is the first trainable field's scalar type; a field with another one, or of a
/// type without `Parameters`, is a compile error at the field. A generic struct gets an
/// impl bounded by what its fields need (each trainable field's type implements
/// `Parameters` with that scalar type, each buffer's type `Clone`).
///
/// Enums, unions, tuple structs, structs without a trainable field and unknown `#[param]`
/// options are compile errors.
///
/// # As an argument of annotated functions
///
/// A function marked with a transform may take the struct (by reference or by value),
/// as JAX's functions take pytrees: the body reads its fields (`p.w[i]`, `p.layer.b`,
/// `p.v.len()` for a `Vec` field) and may pass the struct, or a nested struct, whole to
/// another annotated function (`g(p, x)`, `layer(&p.hidden, x)`). `grad` and
/// `grad_and_value` with respect to it (outermost in a stack) return the struct type:
/// each trainable field holds its gradient, each buffer a clone of the argument's (as
/// `zeros_like` does), so the result goes straight to an optimiser. `jacrev` and `jacfwd`
/// (outermost) of a function returning `[T; M]` give one struct per output element,
/// `[P; M]` (a float result gives the struct, as `grad`). Under `vmap` the struct is
/// shared by the batch (`None` in `in_dims`) or, for structs whose fields are floats and
/// arrays of floats, batched along axis 0: an ensemble, several models' structs in a
/// slice `&[P]` (functorch's `combine_state_for_ensemble` and `vmap`; each call gathers
/// the models' fields into one `Vec` each). `vmap` of a `grad` with respect to a struct
/// gives one struct per sample, `Vec<P>` (per-sample gradients of shared parameters, or
/// every ensemble member's gradient at once), each sample's gradient written straight into
/// its struct; with respect to the struct alone, its `_into` form
/// `f_grad_vmap_into(.., out: &mut [P], chunk_size)` writes sample `k`'s gradient into
/// `out[k]` (every trainable field overwritten, buffers set as the allocating form sets
/// them; it panics naming both sizes if `out` is not one struct per sample), and
/// `vmap` of `grad_and_value` with respect to a struct has no `_into`. `hessian` with
/// respect to the struct alone (outermost, fields of fixed size: floats, arrays of floats,
/// static nalgebra matrices) is one struct per trainable scalar, `Vec<P>` in the order of
/// `Parameters::to_flat` (fields in order, arrays by index,
/// matrices column by column): row `k` holds the derivatives of `∂f/∂θ_k` with respect
/// to every scalar, buffers cloned; that form has no `_into` either.
///
/// ```
/// use fluxion::{grad, Parameters};
///
/// #[derive(Parameters, Clone)]
/// struct Line {
///     slope: f64,
///     intercept: f64,
/// }
///
/// #[grad]
/// fn squared_error(p: &Line, x: f64, y: f64) -> f64 {
///     let e = p.slope * x + p.intercept - y;
///     e * e
/// }
///
/// let g: Line = squared_error_grad(&Line { slope: 2.0, intercept: 1.0 }, 3.0, 6.0);
/// assert_eq!((g.slope, g.intercept), (6.0, 2.0));
/// ```
///
/// The function is differentiated as the function of the struct's fields: the derive
/// emits a hidden macro listing them, which the attribute calls, so the struct (without
/// generic parameters) is declared before the functions that take it, in the same
/// module or an enclosing one. Not supported yet: `jvp`, `vjp`, Hessians of structs with
/// `Vec` fields or beside other arguments, Jacobians of other results with respect to a
/// struct, `has_aux` beside a struct's gradient, a batch
/// of structs with `Vec` or matrix fields, `#[transforms]` on a function taking one; each
/// is a compile error naming what works.
#[proc_macro_derive(Parameters, attributes(param))]
pub fn derive_parameters(item: TokenStream) -> TokenStream {
    fluxion_engine::derive::expand_derive_parameters(item.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}
