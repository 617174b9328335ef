//! The typed intermediate representation every transform reads and writes.
//!
//! Structured and imperative, in A-normal form:
//! - immutable values are `Let` bindings of one operation each, to variables that are
//!   bound once per execution of their block (SSA within the block);
//! - mutable variables (`let mut`) are only read through `Let t = Use(v)` / `Index(v, ..)`
//!   snapshots and written by `Assign`, so derivative rules only ever refer to immutable
//!   values, whatever the user's code mutates;
//! - loops (`For`) and branches (`If`) stay structured, so generated code keeps the user's
//!   loops and its size does not grow with trip counts.
//!
//! Every operation a derivative rule emits is itself an IR operation with a rule, so
//! every transform's output can be transformed again (the IR is closed under `jvp`/`vjp`).

use std::collections::HashMap;
use std::fmt;

/// Index of a variable in [`Func::vars`].
pub type VarId = usize;

/// Float element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatTy {
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl FloatTy {
    /// The Rust spelling.
    pub fn name(self) -> &'static str {
        match self {
            FloatTy::F32 => "f32",
            FloatTy::F64 => "f64",
        }
    }
}

/// The length of one axis of a shaped type.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    /// Known at compile time: a literal, a `const` item or a const generic (`3`, `N`).
    Static(CExpr),
    /// Known only at run time (`DVector`, `DMatrix`): read from a value of the type.
    Dynamic,
}

impl Dim {
    /// The static length, if there is one.
    pub fn static_len(&self) -> Option<&CExpr> {
        match self {
            Dim::Static(c) => Some(c),
            Dim::Dynamic => None,
        }
    }
    /// Whether this is the static length 1 (the column count of a vector).
    pub fn is_one(&self) -> bool {
        matches!(self, Dim::Static(CExpr::Lit(1)))
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Static(c) => write!(f, "{c}"),
            Dim::Dynamic => write!(f, "Dyn"),
        }
    }
}

/// How a shaped value is stored, indexed and spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Not shaped: a scalar, a tuple, or a type only rustc knows.
    Scalar,
    /// A Rust array `[T; N]`, indexed `a[i]`; nested arrays index `a[i][j]`.
    Array,
    /// A statically sized nalgebra matrix (`SMatrix`, `SVector`, `Vector3`): on the stack,
    /// indexed `m[(i, j)]` (`v[i]` for a vector).
    NalgebraStatic,
    /// A nalgebra matrix with a dynamic axis (`DMatrix`, `DVector`): on the heap.
    NalgebraDynamic,
}

/// Types as far as the macro can know them. `Unknown` values (call results, user
/// constants) are typed by rustc through the runtime traits.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// A float; `None` when only rustc can tell `f32` from `f64` (literals).
    Float(Option<FloatTy>),
    /// An integer, with its Rust name when known.
    Int(Option<String>),
    /// `bool`
    Bool,
    /// `()`, the tangent of integers and booleans.
    Unit,
    /// `[T; N]`: a Rust array, one axis of static length (nested arrays nest).
    Array(Box<Ty>, CExpr),
    /// One axis of run-time length ([`Dim::Dynamic`]) over elements `T`: a `&[T]` (or
    /// `&Vec<T>`) parameter, read as `xs[i]` and `xs.len()`; owned values of the type
    /// (gradients, accumulators, reverse-mode tapes of loops with run-time trip counts) are
    /// `Vec<T>`. Indexed like an array: one operand.
    Slice(Box<Ty>),
    /// A nalgebra matrix of `elem`, `rows x cols` (a vector has one column): `SMatrix<T, R,
    /// C>`, `SVector<T, R>`, `Vector3<T>` when both axes are static, `DMatrix<T>` /
    /// `DVector<T>` when they are dynamic. Indexed by `(row, col)`: two index operands.
    Matrix {
        /// The element type (a float).
        elem: Box<Ty>,
        /// The number of rows.
        rows: Dim,
        /// The number of columns (`Static(1)` for a vector).
        cols: Dim,
    },
    /// `(A, B, ..)`
    Tuple(Vec<Ty>),
    /// vmap's batch axis inside a batched kernel: one value of the scalar type (a float or
    /// `bool`) per sample of a chunk of the batch. The target spells it as its lane type
    /// (`f64x4`; a lane mask for `bool`). Arrays and tuples of batched values are arrays
    /// and tuples of lanes (structure of arrays).
    Lanes(Box<Ty>),
    /// Not visible to the macro.
    Unknown,
    /// A tape of type `[T; N]` whose storage rustc picks from its size
    /// ([`Storage::BySize`]): written `<Tape<..> as TapeStorage<T, N>>::Store`, an array
    /// or a `Vec`. Only the residuals of split companions have this type.
    Tape(Box<Ty>),
    /// `fluxion::Rng`, a counter-based random generator (a parameter, or `rng.fold_in(k)`);
    /// [`Expr::Rng`] draws from it. Never differentiated (its tangent is `()`). Inside a
    /// batched kernel with `randomness = "different"`, `Lanes(Rng)` is one generator per
    /// sample of the chunk (`RngLanes`).
    Rng,
}

impl Ty {
    /// Whether values of this type can carry a derivative.
    pub fn is_differentiable(&self) -> bool {
        match self {
            Ty::Float(_) | Ty::Unknown => true,
            Ty::Int(_) | Ty::Bool | Ty::Unit | Ty::Tape(_) | Ty::Rng => false,
            Ty::Array(e, _) | Ty::Slice(e) | Ty::Matrix { elem: e, .. } | Ty::Lanes(e) => e.is_differentiable(),
            Ty::Tuple(ts) => ts.iter().any(Ty::is_differentiable),
        }
    }
    /// Whether a dynamic axis ([`Ty::Slice`]) is part of this type.
    pub fn has_slice(&self) -> bool {
        match self {
            Ty::Slice(_) => true,
            Ty::Array(e, _) | Ty::Tape(e) => e.has_slice(),
            Ty::Tuple(ts) => ts.iter().any(Ty::has_slice),
            _ => false,
        }
    }
    /// Whether lanes (a batched kernel's values) are part of this type.
    pub fn has_lanes(&self) -> bool {
        match self {
            Ty::Lanes(_) => true,
            Ty::Array(e, _) | Ty::Tape(e) => e.has_lanes(),
            Ty::Tuple(ts) => ts.iter().any(Ty::has_lanes),
            _ => false,
        }
    }
    /// Whether a nalgebra matrix is part of this type.
    pub fn has_matrix(&self) -> bool {
        match self {
            Ty::Matrix { .. } => true,
            Ty::Array(e, _) => e.has_matrix(),
            Ty::Tuple(ts) => ts.iter().any(Ty::has_matrix),
            _ => false,
        }
    }
    /// How values of this type are stored and indexed.
    pub fn layout(&self) -> Layout {
        match self {
            Ty::Array(..) => Layout::Array,
            Ty::Matrix { rows, cols, .. } => match (rows, cols) {
                (Dim::Static(_), Dim::Static(_)) => Layout::NalgebraStatic,
                _ => Layout::NalgebraDynamic,
            },
            _ => Layout::Scalar,
        }
    }
    /// The logical axes down to the scalar element, as JAX counts them: `[[f64; 3]; 2]` and
    /// `SMatrix<f64, 2, 3>` are `[2, 3]`, a column vector `SVector<f64, 3>` is `[3]`, a
    /// float `[]`; `None` for tuples, `()` and what only rustc knows.
    pub fn shape(&self) -> Option<Vec<Dim>> {
        let (mut d, e) = match self {
            Ty::Float(_) | Ty::Int(_) | Ty::Bool => return Some(vec![]),
            Ty::Array(e, n) => (vec![Dim::Static(n.clone())], e),
            Ty::Slice(e) => (vec![Dim::Dynamic], e),
            Ty::Matrix { elem, rows, cols } if cols.is_one() => (vec![rows.clone()], elem),
            Ty::Matrix { elem, rows, cols } => (vec![rows.clone(), cols.clone()], elem),
            _ => return None,
        };
        d.extend(e.shape()?);
        Some(d)
    }
    /// The index operands of the element at logical index `ops` (one per axis of
    /// [`Ty::shape`]): a column vector's row gets its column `0`.
    pub fn place_index(&self, ops: &[Operand]) -> Vec<Operand> {
        let mut out = Vec::new();
        let mut t = self;
        let mut rest = ops;
        while let Some((first, more)) = rest.split_first() {
            match t {
                Ty::Matrix { elem, cols, .. } if cols.is_one() => {
                    out.extend([first.clone(), Operand::Int(0)]);
                    rest = more;
                    t = elem;
                }
                Ty::Matrix { elem, .. } if !more.is_empty() => {
                    out.extend([first.clone(), more[0].clone()]);
                    rest = &more[1..];
                    t = elem;
                }
                Ty::Array(elem, _) | Ty::Slice(elem) => {
                    out.push(first.clone());
                    rest = more;
                    t = elem;
                }
                _ => {
                    out.extend(rest.iter().cloned());
                    break;
                }
            }
        }
        out
    }
    /// How many index operands one level of this type takes: 1 for an array, 2 (row,
    /// column) for a matrix, 0 for what cannot be indexed.
    pub fn index_arity(&self) -> usize {
        match self {
            Ty::Array(..) | Ty::Slice(_) => 1,
            Ty::Matrix { .. } => 2,
            _ => 0,
        }
    }
    /// The type of `a[idx..]` for `a` of this type and `n` index operands (`Unknown` where
    /// the operands do not fit the type).
    pub fn indexed(&self, n: usize) -> Ty {
        let mut t = self.clone();
        let mut left = n;
        while left > 0 {
            let k = t.index_arity();
            if k == 0 || k > left {
                return Ty::Unknown;
            }
            left -= k;
            t = t.elem();
        }
        t
    }
    /// Whether this is an integer type.
    pub fn is_int(&self) -> bool {
        matches!(self, Ty::Int(_))
    }
    /// Whether this is a float scalar.
    pub fn is_float(&self) -> bool {
        matches!(self, Ty::Float(_))
    }
    /// The type of tangents and cotangents of this type.
    pub fn tangent(&self) -> Ty {
        match self {
            Ty::Float(_) | Ty::Unknown => self.clone(),
            Ty::Int(_) | Ty::Bool | Ty::Unit | Ty::Tape(_) | Ty::Rng => Ty::Unit,
            Ty::Lanes(e) => match e.tangent() {
                Ty::Unit => Ty::Unit,
                t => Ty::Lanes(Box::new(t)),
            },
            Ty::Array(e, n) => Ty::Array(Box::new(e.tangent()), n.clone()),
            Ty::Slice(e) => Ty::Slice(Box::new(e.tangent())),
            Ty::Matrix { elem, rows, cols } => Ty::Matrix {
                elem: Box::new(elem.tangent()),
                rows: rows.clone(),
                cols: cols.clone(),
            },
            Ty::Tuple(ts) => Ty::Tuple(ts.iter().map(Ty::tangent).collect()),
        }
    }
    /// The element type of an array or matrix (or `Unknown`).
    pub fn elem(&self) -> Ty {
        match self {
            Ty::Array(e, _) | Ty::Slice(e) | Ty::Matrix { elem: e, .. } => (**e).clone(),
            _ => Ty::Unknown,
        }
    }
    /// The float element type at the bottom of arrays and tuples, if all agree.
    pub fn float_ty(&self) -> Option<FloatTy> {
        match self {
            Ty::Float(f) => *f,
            Ty::Array(e, _) | Ty::Slice(e) | Ty::Matrix { elem: e, .. } => e.float_ty(),
            Ty::Tuple(ts) => ts.iter().find_map(Ty::float_ty),
            _ => None,
        }
    }
    /// Whether the type can be written exactly (float and integer widths known), as in a
    /// signature.
    pub fn is_exact(&self) -> bool {
        match self {
            Ty::Float(k) => k.is_some(),
            Ty::Int(n) => n.is_some(),
            Ty::Bool | Ty::Unit | Ty::Rng => true,
            Ty::Array(e, _) | Ty::Slice(e) | Ty::Matrix { elem: e, .. } | Ty::Lanes(e) => e.is_exact(),
            Ty::Tuple(ts) => ts.iter().all(Ty::is_exact),
            Ty::Tape(t) => t.is_exact(),
            Ty::Unknown => false,
        }
    }
    /// Whether the type is fully known, so that a literal zero of it can be written.
    pub fn is_known(&self) -> bool {
        match self {
            Ty::Float(_) | Ty::Int(_) | Ty::Bool | Ty::Unit => true,
            Ty::Array(e, _) | Ty::Lanes(e) => e.is_known(),
            // A dynamic axis has no zero without a value to read its length from.
            Ty::Matrix { elem, .. } => self.layout() == Layout::NalgebraStatic && elem.is_known(),
            Ty::Tuple(ts) => ts.iter().all(Ty::is_known),
            // Like a dynamic matrix: a zero needs a value to read the length from.
            Ty::Unknown | Ty::Tape(_) | Ty::Slice(_) => false,
            // A generator has no zero.
            Ty::Rng => false,
        }
    }
}

/// A compile-time integer expression: array lengths and loop bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CExpr {
    /// An integer literal.
    Lit(i128),
    /// A path to a constant or const generic parameter, as written (`N`, `crate::LEN`).
    Path(String),
    /// `a op b` with `op` one of `+ - * / %`.
    Bin(char, Box<CExpr>, Box<CExpr>),
    /// `(a as usize)`: a tape length from a bound whose integer type only rustc knows.
    AsUsize(Box<CExpr>),
    /// A named constant operand of a float operation, cast to that operation's float type:
    /// `(SCALE as f64)`. In a program that compiles the constant has that type already and
    /// the cast is the identity; an `f32` or integer constant in an `f64` function is then
    /// rustc's error on the original function only, not again in each generated function.
    Lift(Box<CExpr>, FloatTy),
}

impl CExpr {
    /// The literal value, if this is a literal.
    pub fn lit(&self) -> Option<i128> {
        match self {
            CExpr::Lit(v) => Some(*v),
            _ => None,
        }
    }
    /// Every path mentioned.
    pub fn paths(&self, out: &mut Vec<String>) {
        match self {
            CExpr::Lit(_) => {}
            CExpr::Path(p) => out.push(p.clone()),
            CExpr::Bin(_, a, b) => {
                a.paths(out);
                b.paths(out);
            }
            CExpr::AsUsize(a) | CExpr::Lift(a, _) => a.paths(out),
        }
    }
}

impl fmt::Display for CExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CExpr::Lit(v) => write!(f, "{v}"),
            CExpr::Path(p) => write!(f, "{p}"),
            // `(K + 1) as usize`, not `K + (1 as usize)`.
            CExpr::AsUsize(a) if matches!(**a, CExpr::Bin(..)) => write!(f, "(({a}) as usize)"),
            CExpr::AsUsize(a) => write!(f, "({a} as usize)"),
            CExpr::Lift(a, t) => write!(f, "({a} as {})", t.name()),
            CExpr::Bin(op, a, b) => {
                let wrap = |e: &CExpr| matches!(e, CExpr::Bin(..));
                if wrap(a) {
                    write!(f, "({a})")?;
                } else {
                    write!(f, "{a}")?;
                }
                write!(f, " {op} ")?;
                if wrap(b) {
                    write!(f, "({b})")
                } else {
                    write!(f, "{b}")
                }
            }
        }
    }
}

/// A float literal: the text to emit and its value for the interpreter.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLit {
    /// As written (`1e-3`, `2.0_f64`), or `{:?}` of the value for generated literals.
    pub text: String,
    /// The value (as `f64`).
    pub value: f64,
}

impl FloatLit {
    /// A generated literal; the text round-trips exactly.
    pub fn new(value: f64) -> FloatLit {
        // Non-finite values as expressions valid for either float type.
        let text = if value.is_nan() {
            "(0.0 / 0.0)".to_string()
        } else if value.is_infinite() {
            format!("({}1.0 / 0.0)", if value < 0.0 { "-" } else { "" })
        } else {
            let mut text = format!("{value:?}");
            if !text.contains('.') && !text.contains('e') {
                text.push_str(".0");
            }
            text
        };
        FloatLit { text, value }
    }
}

/// An operand: a variable or a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A variable.
    Var(VarId),
    /// A float literal.
    Float(FloatLit),
    /// An integer literal.
    Int(i128),
    /// A boolean literal.
    Bool(bool),
    /// A named constant (user `const`, const generic, `std::f64::consts::PI`), never
    /// differentiated; `Unknown` type.
    Const(CExpr),
    /// `()`.
    Unit,
}

impl Operand {
    /// The variable, if any.
    pub fn var(&self) -> Option<VarId> {
        match self {
            Operand::Var(v) => Some(*v),
            _ => None,
        }
    }
    /// A float literal operand.
    pub fn float(v: f64) -> Operand {
        Operand::Float(FloatLit::new(v))
    }
    /// The value if this is a float literal.
    pub fn float_value(&self) -> Option<f64> {
        match self {
            Operand::Float(l) => Some(l.value),
            _ => None,
        }
    }
}

/// The primitives: declared, with everything the engine knows about each, by the one
/// table of `rules.rs` (`prims!`).
pub use crate::rules::{Prim, Spelling};

/// Comparison operators (results are `bool`, never differentiated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    /// The Rust operator.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

/// Boolean connectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BoolOp {
    And,
    Or,
}

/// A transform applied to a called function (selects the companion to call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forward mode: `(primals.., tangents..) -> (out, tangent_out)`.
    Jvp,
    /// Reverse mode: `(primals.., cotangent) -> (out, (cotangents..))`.
    Vjp,
    /// The forward half of reverse mode, for a caller's final reverse pass:
    /// `(primals..) -> (out, residuals)`, the residuals being what the reverse sweep reads.
    VjpFwd,
    /// The reverse half: `(primals.., residuals, cotangent) -> (cotangents..)`. With
    /// [`Mode::VjpFwd`], one forward pass per call instead of two.
    VjpBwd,
    /// The reverse half accumulating in place: `(primals.., residuals, cotangent, &mut
    /// x̄..)` adds each parameter's cotangent into the caller's accumulator `x̄` (one per
    /// parameter, of the parameter's tangent type) and returns nothing. A caller whose
    /// accumulators are arrays calls it instead of [`Mode::VjpBwd`]: no cotangent is
    /// returned by value and added again.
    VjpBwdAcc,
}

/// A call to another differentiable function (or one of its companions).
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Path segments before the name (`["crate", "physics"]`), with a leading `""` for `::`.
    pub prefix: Vec<String>,
    /// The function's name.
    pub name: String,
    /// Turbofish generic arguments as written, if any.
    pub turbofish: Option<String>,
    /// Transforms applied, innermost first: `[Vjp, Jvp]` is `jvp(vjp(f))`.
    pub modes: Vec<Mode>,
    /// Arguments (for companions: primals, then tangents or the cotangent).
    pub args: Vec<Arg>,
    /// Where the call was written (errors about the callee point here).
    pub span: SrcSpan,
    /// A batched call (vmap): the callee's lanes companion, whose float arguments and
    /// results are lanes ([`crate::batch`]).
    pub lanes: bool,
}

/// A source span that compares equal to every other (so IR equality ignores spans).
#[derive(Clone, Copy, Debug)]
pub struct SrcSpan(pub proc_macro2::Span);

impl PartialEq for SrcSpan {
    fn eq(&self, _: &SrcSpan) -> bool {
        true
    }
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The value.
    pub op: Operand,
    /// Passed as `&op`.
    pub by_ref: bool,
    /// Passed as `&mut op`: `op` is a mutable variable the callee reads and writes (an
    /// accumulator of [`Mode::VjpBwdAcc`]). Every pass treats the call as a write of it.
    pub by_mut: bool,
}

impl Call {
    /// `::core::clone::Clone::clone(&x)`: a copy of a value a repeated sweep reads again
    /// after passing it by value (a batched callee's residuals, a `Vec`).
    pub fn clone_of(x: Operand) -> Call {
        Call {
            prefix: vec![String::new(), "core".into(), "clone".into(), "Clone".into()],
            name: "clone".into(),
            turbofish: None,
            modes: Vec::new(),
            args: vec![Arg {
                op: x,
                by_ref: true,
                by_mut: false,
            }],
            span: SrcSpan(proc_macro2::Span::call_site()),
            lanes: false,
        }
    }
    /// Whether this is [`Call::clone_of`].
    pub fn is_clone(&self) -> bool {
        self.name == "clone" && self.prefix == ["", "core", "clone", "Clone"] && self.modes.is_empty()
    }
    /// The variables the call writes through `&mut` arguments.
    pub fn writes(&self) -> Vec<VarId> {
        self.args
            .iter()
            .filter(|a| a.by_mut)
            .filter_map(|a| a.op.var())
            .collect()
    }
}

/// The variables a statement's call writes through `&mut` arguments (not recursively).
pub fn call_writes(s: &Stmt) -> Vec<VarId> {
    match s {
        Stmt::Let(_, Expr::Call(c)) | Stmt::Mut(_, Some(Expr::Call(c))) => c.writes(),
        _ => Vec::new(),
    }
}

/// Right-hand sides of `Let`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A copy of an operand (reads a mutable variable's current value).
    Use(Operand),
    /// A primitive with a derivative rule.
    Prim(Prim, Vec<Operand>),
    /// `a[i][j]..` on an array variable.
    Index(VarId, Vec<Operand>),
    /// `[a, b, ..]`
    Array(Vec<Operand>),
    /// `[a; n]`
    Repeat(Operand, CExpr),
    /// The zero of a type (tapes, accumulators); `Unknown` is inferred by rustc.
    Zeros(Ty),
    /// The zero tangent shaped like the operand.
    ZeroLike(Operand),
    /// `(a, b, ..)`
    Tuple(Vec<Operand>),
    /// `t.k`
    Field(Operand, usize),
    /// A call to a differentiable function or its companion.
    Call(Call),
    /// `a as T` for a scalar type `T`.
    Cast(Operand, Ty),
    /// A comparison.
    Cmp(CmpOp, Operand, Operand),
    /// `a && b`, `a || b` (both sides evaluated: they are pure).
    Bool(BoolOp, Operand, Operand),
    /// `!a`
    Not(Operand),
    /// `a.iter().sum()`
    Sum(Operand),
    /// `a.len()` of a slice or array: a `usize`, never differentiated.
    Len(Operand),
    /// `[v; len(like)]`: the adjoint of a sum.
    Broadcast(Operand, Operand),
    /// `if c { a } else { b }` on values (both already computed; used by rules).
    Select(Operand, Operand, Operand),
    /// `stop_gradient(a)`: the value, with no derivative.
    StopGrad(Operand),
    /// The residuals of a split call's result `a` (`a.1` of `g::vjp_fwd(..)`): read by the
    /// reverse half of the call, never differentiated.
    Residuals(Operand),
    /// `*a` for a parameter passed by reference: the value (a copy).
    Deref(Operand),
    /// The shared (unbatched) scalar `a` in every lane of a batched kernel.
    Splat(Operand),
    /// Lanes that are `1` in lane `l` (an integer operand) and `0` in the others: a chunk of
    /// standard basis vectors, one per lane (Jacobians built by batching).
    UnitLane(Operand),
    /// Lane `l` (an integer operand) of the lanes `a`: one sample's value.
    Lane(Operand, Operand),
    /// `n as T` with `T` the float type of the second operand (which only rustc may know).
    IntAsFloat(Operand, Operand),
    /// `a` as the float type of the second operand, which only rustc may know (the
    /// adjoint of a cast whose source is a call's result): linear in `a`.
    CastLike(Operand, Operand),
    /// `rng.uniform(k)`, `rng.normal(k)`, `rng.fold_in(k)`, `rng.sample(k)`: a random draw from the
    /// generator `rng` (a [`Ty::Rng`]) at the integer counter `k`, a pure function of both,
    /// never differentiated; or a derived generator. On lanes of generators (a batch with
    /// `randomness = "different"`) each lane draws from its own.
    Rng(RngOp, Operand, Operand),
}

/// What [`Expr::Rng`] does with its generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RngOp {
    /// `rng.uniform(k)` (`uniform_f32` in `f32` functions): uniform in `[0, 1)`.
    Uniform(FloatTy),
    /// `rng.normal(k)` (`normal_f32`): standard normal.
    Normal(FloatTy),
    /// `rng.fold_in(k)`: a derived generator.
    FoldIn,
    /// `rng.sample(k)`: the generator of sample `k` of a batch under `randomness =
    /// "different"`.
    Sample,
}

impl RngOp {
    /// The method's name in Rust.
    pub fn method(self) -> &'static str {
        match self {
            RngOp::Uniform(FloatTy::F64) => "uniform",
            RngOp::Uniform(FloatTy::F32) => "uniform_f32",
            RngOp::Normal(FloatTy::F64) => "normal",
            RngOp::Normal(FloatTy::F32) => "normal_f32",
            RngOp::FoldIn => "fold_in",
            RngOp::Sample => "sample",
        }
    }
    /// The operation a method name stands for.
    pub fn from_method(name: &str) -> Option<RngOp> {
        Some(match name {
            "uniform" => RngOp::Uniform(FloatTy::F64),
            "uniform_f32" => RngOp::Uniform(FloatTy::F32),
            "normal" => RngOp::Normal(FloatTy::F64),
            "normal_f32" => RngOp::Normal(FloatTy::F32),
            "fold_in" => RngOp::FoldIn,
            "sample" => RngOp::Sample,
            _ => return None,
        })
    }
    /// The type of its result.
    pub fn ty(self) -> Ty {
        match self {
            RngOp::Uniform(f) | RngOp::Normal(f) => Ty::Float(Some(f)),
            RngOp::FoldIn | RngOp::Sample => Ty::Rng,
        }
    }
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
}

/// The target of an assignment: `v` or `v[i][j]..`.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    /// A mutable variable.
    pub var: VarId,
    /// Indices (integers).
    pub idx: Vec<Operand>,
}

/// A `for var in lo..hi` loop (or `(lo..hi).rev()`).
///
/// A bound is an operand: a constant ([`Operand::Const`] or [`Operand::Int`]: the trip
/// count is known at compile time) or an immutable integer variable computed before the
/// loop (`0..n`, `0..xs.len()`, `i + 1..n`: a run-time trip count, which may change from
/// one iteration of an enclosing loop to the next). Passes that read or rename operands
/// see the bounds as reads of the loop statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    /// The index variable (an integer, bound once per iteration).
    pub var: VarId,
    /// Inclusive lower bound.
    pub lo: Operand,
    /// Exclusive upper bound.
    pub hi: Operand,
    /// Iterates downwards.
    pub rev: bool,
    /// The body.
    pub body: Block,
    /// Where the range was written (errors about the loop point here).
    pub span: SrcSpan,
}

impl Loop {
    /// A loop over the constant range `lo..hi`.
    pub fn constant(var: VarId, lo: CExpr, hi: CExpr, body: Block, span: SrcSpan) -> Loop {
        Loop {
            var,
            lo: Operand::Const(lo),
            hi: Operand::Const(hi),
            rev: false,
            body,
            span,
        }
    }
    /// The constant lower bound, if it is one.
    pub fn static_lo(&self) -> Option<CExpr> {
        bound_cexpr(&self.lo)
    }
    /// The constant upper bound, if it is one.
    pub fn static_hi(&self) -> Option<CExpr> {
        bound_cexpr(&self.hi)
    }
    /// Both bounds, if both are integer literals.
    pub fn literal_bounds(&self) -> Option<(i128, i128)> {
        self.static_lo()
            .and_then(|lo| lo.lit())
            .zip(self.static_hi().and_then(|hi| hi.lit()))
    }
    /// Whether the trip count is known only at run time (a bound is a variable).
    pub fn is_dynamic(&self) -> bool {
        self.lo.var().is_some() || self.hi.var().is_some()
    }
    /// The variables the bounds read.
    pub fn bound_vars(&self) -> Vec<VarId> {
        self.lo.var().into_iter().chain(self.hi.var()).collect()
    }
}

/// A loop bound as a constant expression, if it is constant.
pub fn bound_cexpr(o: &Operand) -> Option<CExpr> {
    match o {
        Operand::Int(v) => Some(CExpr::Lit(*v)),
        Operand::Const(c) => Some(c.clone()),
        _ => None,
    }
}

/// Statements.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let v = e;`
    Let(VarId, Expr),
    /// `let mut v = e;` or `let mut v;`
    Mut(VarId, Option<Expr>),
    /// `place op= value;`
    Assign(Place, AssignOp, Operand),
    /// A loop.
    For(Loop),
    /// `if c { .. } else { .. }` with a boolean operand.
    If(Operand, Block, Block),
}

/// A sequence of statements (a scope).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block(pub Vec<Stmt>);

/// What the IR knows of a variable.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    /// The name to emit (made unique by the emitter).
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Declared with `let mut`.
    pub mutable: bool,
    /// Declared with a type annotation that the emitted `let` must keep (`let m: f64 = 1.0;`
    /// types a literal that rustc could not type otherwise).
    pub annotated: bool,
    /// Where a reverse-mode tape (or its tangent) lives; `Stack` for every other variable.
    pub storage: Storage,
}

/// Where a variable lives. Tapes up to [`TAPE_STACK_BYTES`] are arrays on the stack; larger
/// ones are `Vec`s, so a long loop cannot overflow a thread's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    /// An array local (`[0.0; N]`): its size is known to be small, or it is sized by a
    /// const generic (stable Rust cannot choose a type from a generic size).
    #[default]
    Stack,
    /// A `Vec` (`heap_tape(0.0, N)`): its size is known to exceed the limit, or it is sized
    /// by named constants and holds values of a type the macro cannot see.
    Heap,
    /// Sized by named constants: rustc picks the array or the `Vec` from the size
    /// (`::fluxion::__private::TapeStorage`).
    BySize,
    /// The caller's buffer of an `_into` form: the parameter `out: &mut R`.
    OutParam,
    /// A place in the caller's buffer: `(*out)`, or its field `(*out).k`.
    Out(Option<usize>),
    /// A `&mut T` parameter, read and written in place as `(*x)`: the caller's accumulator
    /// of a [`Mode::VjpBwdAcc`] companion.
    MutParam,
    /// An output of a `vmap` kernel written straight into the chunk's samples: the
    /// kernel's parameter `__fluxion_rows` (`__fluxion_rows{k}` for field `k` of a tuple
    /// result), `&mut [&mut T; LANES]` with `T` the per-sample type, one sample per lane.
    /// Only element stores touch it (`v[i][j] = x` is `rows[l][i][j] = x.lane(l)` for
    /// each lane `l`) and its zeros (each sample zeroed), so no lanes buffer of the
    /// output's size is written and then transposed into the samples.
    Rows(Option<usize>),
    /// A reverse-mode tape of a loop with a run-time trip count: a `Vec` ([`Ty::Slice`])
    /// that starts empty and grows by one element per write. Writes are
    /// `Assign(tape[k], Set, v)` with `k` a running counter equal to the tape's length
    /// (emitted `tape.push(v)`); the reverse sweep reads the slots back in reverse order,
    /// counting down.
    Growing,
}

/// The largest tape kept on the stack, in bytes (64 KiB).
pub const TAPE_STACK_BYTES: u64 = 64 * 1024;

impl Ty {
    /// The size in bytes, if the macro knows it (literal lengths). A type only rustc knows
    /// (a call's result) counts as 8 bytes: such values are nearly always scalars.
    pub fn known_bytes(&self) -> Option<u64> {
        match self {
            Ty::Float(Some(k)) if k.name() == "f32" => Some(4),
            Ty::Float(_) => Some(8),
            // At most 8 lanes of at most 8 bytes (a 512-bit vector).
            Ty::Lanes(_) => Some(64),
            Ty::Int(Some(n)) => match n.as_str() {
                "i8" | "u8" => Some(1),
                "i16" | "u16" => Some(2),
                "i32" | "u32" => Some(4),
                "i64" | "u64" | "isize" | "usize" => Some(8),
                "i128" | "u128" => Some(16),
                _ => None,
            },
            Ty::Int(None) => Some(8),
            // A ChaCha key and a stream.
            Ty::Rng => Some(40),
            Ty::Bool => Some(1),
            Ty::Unit => Some(0),
            Ty::Array(e, n) => u64::try_from(n.lit()?).ok()?.checked_mul(e.known_bytes()?),
            Ty::Matrix { elem, rows, cols } => match (rows, cols) {
                (Dim::Static(r), Dim::Static(c)) => u64::try_from(r.lit()?)
                    .ok()?
                    .checked_mul(u64::try_from(c.lit()?).ok()?)?
                    .checked_mul(elem.known_bytes()?),
                // `DMatrix` is a pointer and two lengths; its elements are on the heap.
                _ => Some(24),
            },
            // Fields are laid out by rustc, padded to the largest alignment: `(f64, u8)` is 16.
            Ty::Tuple(ts) => {
                let sum: u64 = ts.iter().map(Ty::known_bytes).sum::<Option<u64>>()?;
                let align = ts.iter().map(Ty::known_align).max().unwrap_or(1).max(1);
                Some(sum.div_ceil(align) * align)
            }
            Ty::Unknown => Some(8),
            // A `Vec`: a pointer, a capacity and a length; its elements are on the heap.
            Ty::Slice(_) => Some(24),
            Ty::Tape(_) => None,
        }
    }
    /// The alignment of the type, as `known_bytes` counts it (primitives: their size).
    fn known_align(&self) -> u64 {
        match self {
            Ty::Array(e, _) => e.known_align(),
            Ty::Matrix { elem, .. } if self.layout() == Layout::NalgebraStatic => elem.known_align(),
            Ty::Matrix { .. } | Ty::Slice(_) => 8,
            Ty::Tuple(ts) => ts.iter().map(Ty::known_align).max().unwrap_or(1),
            t => t.known_bytes().unwrap_or(8).clamp(1, 16),
        }
    }
    /// Whether the type names no `Unknown` part (rustc can be asked its size).
    pub fn is_named(&self) -> bool {
        match self {
            Ty::Array(e, _) | Ty::Slice(e) | Ty::Matrix { elem: e, .. } => e.is_named(),
            Ty::Tuple(ts) => ts.iter().all(Ty::is_named),
            Ty::Tape(t) => t.is_named(),
            Ty::Unknown => false,
            _ => true,
        }
    }
}

/// A parameter of a function.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The variable bound to it.
    pub var: VarId,
    /// Its type (the referent for `&T`).
    pub ty: Ty,
    /// Passed as `&T`.
    pub by_ref: bool,
    /// Where its type is written (generated parameters: the call site).
    pub span: SrcSpan,
}

/// A function in IR form.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    /// Its name.
    pub name: String,
    /// The variable arena.
    pub vars: Vec<VarInfo>,
    /// Parameters.
    pub params: Vec<Param>,
    /// The body.
    pub body: Block,
    /// The value returned after the body.
    pub ret: Operand,
    /// The result type.
    pub ret_ty: Ty,
    /// Names of const generic parameters (tapes cannot be sized by expressions of them).
    pub const_generics: Vec<String>,
    /// Loops over chunks of a Jacobian's rows that the emitted code runs as tasks of the
    /// runtime (`jacobian_rows`, on rayon's threads); everything else sees plain loops.
    pub row_tasks: Vec<RowTasks>,
    /// Where the source draws random numbers (`rng.uniform(k)`, `rng.normal(k)`): `vmap`'s
    /// default `randomness = "error"` reports the first.
    pub draws: Vec<SrcSpan>,
}

/// A loop `for c in 0..chunks` whose iteration `c` writes rows `c L .. c L + L` of the
/// Jacobian `out` (the last chunk's padding lanes repeat the last row) and nothing else
/// declared outside the loop: the emitter hands it to the runtime's `jacobian_rows`,
/// which runs tasks of whole chunks with the rows they own.
#[derive(Clone, Debug, PartialEq)]
pub struct RowTasks {
    /// The loop's index (the chunk).
    pub chunk: VarId,
    /// The Jacobian: an array whose first index is the row.
    pub out: VarId,
    /// Rows per chunk (the lane count).
    pub lanes: i128,
    /// Rows per task (the transform's `chunk_size`), or `None` for a size from `weight`.
    pub chunk_size: Option<usize>,
    /// The loop body's weighted cost per row (`cost::run_weight` over the lanes).
    pub weight: u64,
    /// Chunks of columns (`jacfwd`: `jac[o][col]` with `col` in the chunk), run through the
    /// runtime's `jacobian_cols`, each task writing its own columns; else rows.
    pub columns: bool,
}

impl Func {
    /// A new variable.
    pub fn new_var(&mut self, name: impl Into<String>, ty: Ty, mutable: bool) -> VarId {
        self.vars.push(VarInfo {
            name: name.into(),
            ty,
            mutable,
            annotated: false,
            storage: Storage::Stack,
        });
        self.vars.len() - 1
    }
    /// Whether the function holds data of run-time length: a slice (a parameter, a
    /// cotangent, a growing tape) or a loop with a run-time bound.
    pub fn has_dynamic(&self) -> bool {
        let mut dynamic = self.vars.iter().any(|v| v.ty.has_slice());
        walk_stmts(&self.body, &mut |s| {
            if let Stmt::For(l) = s {
                dynamic |= l.is_dynamic();
            }
        });
        dynamic
    }
    /// The type of an operand.
    pub fn ty_of(&self, op: &Operand) -> Ty {
        match op {
            Operand::Var(v) => self.vars[*v].ty.clone(),
            Operand::Float(_) => Ty::Float(None),
            Operand::Int(_) => Ty::Int(None),
            Operand::Bool(_) => Ty::Bool,
            Operand::Const(_) => Ty::Unknown,
            Operand::Unit => Ty::Unit,
        }
    }
}

/// Visits every statement of a block, depth first, in order.
pub fn walk_stmts<'a>(b: &'a Block, f: &mut dyn FnMut(&'a Stmt)) {
    for s in &b.0 {
        f(s);
        match s {
            Stmt::For(l) => walk_stmts(&l.body, f),
            Stmt::If(_, t, e) => {
                walk_stmts(t, f);
                walk_stmts(e, f);
            }
            _ => {}
        }
    }
}

/// Applies `f` to every operand an expression reads, in place. The array variable of
/// `Index` is passed as `Operand::Var`; replacing it by a non-variable leaves it unchanged.
pub fn expr_operands_mut(e: &mut Expr, f: &mut dyn FnMut(&mut Operand)) {
    match e {
        Expr::Use(a)
        | Expr::Splat(a)
        | Expr::UnitLane(a)
        | Expr::ZeroLike(a)
        | Expr::Field(a, _)
        | Expr::Cast(a, _)
        | Expr::Not(a)
        | Expr::Sum(a)
        | Expr::Len(a)
        | Expr::StopGrad(a)
        | Expr::Residuals(a)
        | Expr::Deref(a)
        | Expr::Repeat(a, _) => f(a),
        Expr::Prim(_, xs) | Expr::Array(xs) | Expr::Tuple(xs) => xs.iter_mut().for_each(f),
        Expr::Lane(a, l) => {
            f(a);
            f(l);
        }
        Expr::Index(v, idx) => {
            let mut o = Operand::Var(*v);
            f(&mut o);
            if let Operand::Var(w) = o {
                *v = w;
            }
            idx.iter_mut().for_each(f);
        }
        Expr::Zeros(_) => {}
        Expr::Call(c) => c.args.iter_mut().for_each(|a| f(&mut a.op)),
        Expr::Cmp(_, a, b)
        | Expr::Bool(_, a, b)
        | Expr::Broadcast(a, b)
        | Expr::IntAsFloat(a, b)
        | Expr::CastLike(a, b)
        | Expr::Rng(_, a, b) => {
            f(a);
            f(b);
        }
        Expr::Select(c, a, b) => {
            f(c);
            f(a);
            f(b);
        }
    }
}

/// The operands an expression reads (including the array variable of `Index`).
pub fn expr_operands(e: &Expr) -> Vec<Operand> {
    let mut out = Vec::new();
    let mut e = e.clone();
    expr_operands_mut(&mut e, &mut |o| out.push(o.clone()));
    out
}

/// Every variable a statement reads (not the ones it defines), recursively.
pub fn stmt_reads(s: &Stmt, out: &mut Vec<VarId>) {
    let ops = |ops: Vec<Operand>, out: &mut Vec<VarId>| out.extend(ops.iter().filter_map(Operand::var));
    match s {
        Stmt::Let(_, e) => ops(expr_operands(e), out),
        Stmt::Mut(_, e) => {
            if let Some(e) = e {
                ops(expr_operands(e), out)
            }
        }
        Stmt::Assign(p, op, v) => {
            if *op != AssignOp::Set {
                out.push(p.var);
            }
            ops(p.idx.clone(), out);
            ops(vec![v.clone()], out);
        }
        Stmt::For(l) => {
            out.extend(l.bound_vars());
            for s in &l.body.0 {
                stmt_reads(s, out);
            }
        }
        Stmt::If(c, t, e) => {
            ops(vec![c.clone()], out);
            for s in t.0.iter().chain(&e.0) {
                stmt_reads(s, out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Typing: what the macro can tell of each value's type (rustc types the rest).
// ---------------------------------------------------------------------------------------

/// The type of a value that is one of two values (the branches of an `if`).
pub fn merge_ty(a: &Ty, b: &Ty) -> Ty {
    match (a, b) {
        (Ty::Float(x), Ty::Float(y)) => Ty::Float(x.or(*y)),
        (Ty::Unknown, t) | (t, Ty::Unknown) => t.clone(),
        (t, _) => t.clone(),
    }
}

/// Gives a float whose kind the macro could not see (`let mut h = [0.0; N]`: a literal's)
/// the kind of the values assigned to it or it is bound to, as rustc infers it. More types
/// are then exact, and can be written where rustc needs them (the residuals of split
/// companions). Only `Float(None)` is ever refined.
pub fn refine_float_kinds(f: &mut Func) {
    for _ in 0..8 {
        let mut updates: Vec<(VarId, usize, Ty)> = Vec::new();
        walk_stmts(&f.body, &mut |s| match s {
            Stmt::Let(v, e) | Stmt::Mut(v, Some(e)) => updates.push((*v, 0, infer_ty(f, e))),
            Stmt::Assign(p, _, o) => updates.push((p.var, p.idx.len(), f.ty_of(o))),
            _ => {}
        });
        let mut changed = false;
        for (v, depth, t) in updates {
            changed |= refine_at(&mut f.vars[v].ty, depth, &t);
        }
        if !changed {
            break;
        }
    }
}

/// Refines the `Float(None)` leaves of `t`, `depth` array levels down, from `from`.
fn refine_at(t: &mut Ty, depth: usize, from: &Ty) -> bool {
    if depth > 0 {
        return match t {
            Ty::Array(e, _) => refine_at(e, depth - 1, from),
            _ => false,
        };
    }
    match (t, from) {
        (Ty::Float(k @ None), Ty::Float(Some(j))) => {
            *k = Some(*j);
            true
        }
        (Ty::Array(a, _), Ty::Array(b, _)) => refine_at(a, 0, b),
        (Ty::Tuple(xs), Ty::Tuple(ys)) if xs.len() == ys.len() => {
            let mut changed = false;
            for (x, y) in xs.iter_mut().zip(ys) {
                changed |= refine_at(x, 0, y);
            }
            changed
        }
        _ => false,
    }
}

/// The type of an expression's value, as far as the macro can tell.
pub fn infer_ty(f: &Func, e: &Expr) -> Ty {
    match e {
        Expr::Use(a) | Expr::StopGrad(a) | Expr::Deref(a) => f.ty_of(a),
        Expr::Splat(a) => Ty::Lanes(Box::new(f.ty_of(a))),
        Expr::UnitLane(_) => Ty::Lanes(Box::new(Ty::Float(None))),
        Expr::Lane(a, _) => match f.ty_of(a) {
            Ty::Lanes(e) => *e,
            _ => Ty::Unknown,
        },
        Expr::IntAsFloat(_, like) | Expr::CastLike(_, like) => f.ty_of(like),
        // On lanes of generators, lanes of draws.
        Expr::Rng(op, r, _) => match f.ty_of(r) {
            Ty::Lanes(_) => Ty::Lanes(Box::new(op.ty())),
            _ => op.ty(),
        },
        Expr::Prim(p, ops) => {
            let tys: Vec<Ty> = ops.iter().map(|o| f.ty_of(o)).collect();
            match p {
                Prim::Add | Prim::Sub | Prim::Mul | Prim::Div | Prim::Rem | Prim::Neg | Prim::Min | Prim::Max => {
                    if tys.iter().any(Ty::is_float) {
                        let k = tys
                            .iter()
                            .find_map(|t| if let Ty::Float(Some(k)) = t { Some(*k) } else { None });
                        Ty::Float(k)
                    } else if tys.iter().any(|t| t.is_int()) {
                        tys.iter()
                            .find(|t| matches!(t, Ty::Int(Some(_))))
                            .cloned()
                            .unwrap_or(Ty::Int(None))
                    } else {
                        Ty::Unknown
                    }
                }
                _ => match &tys[0] {
                    Ty::Float(k) => Ty::Float(*k),
                    _ => {
                        let k = tys
                            .iter()
                            .find_map(|t| if let Ty::Float(k) = t { Some(*k) } else { None });
                        match k {
                            Some(k) => Ty::Float(k),
                            None => Ty::Unknown,
                        }
                    }
                },
            }
        }
        Expr::Index(v, idx) => f.vars[*v].ty.indexed(idx.len()),
        Expr::Array(ops) => {
            let mut t = Ty::Unknown;
            for o in ops {
                t = merge_ty(&t, &f.ty_of(o));
            }
            Ty::Array(Box::new(t), CExpr::Lit(ops.len() as i128))
        }
        Expr::Repeat(a, n) => Ty::Array(Box::new(f.ty_of(a)), n.clone()),
        Expr::Zeros(t) => t.clone(),
        Expr::ZeroLike(a) => f.ty_of(a).tangent(),
        Expr::Tuple(ops) => Ty::Tuple(ops.iter().map(|o| f.ty_of(o)).collect()),
        Expr::Field(a, k) => match f.ty_of(a) {
            Ty::Tuple(ts) => ts.get(*k).cloned().unwrap_or(Ty::Unknown),
            _ => Ty::Unknown,
        },
        Expr::Call(_) | Expr::Residuals(_) => Ty::Unknown,
        Expr::Cast(_, t) => t.clone(),
        Expr::Cmp(..) | Expr::Bool(..) | Expr::Not(_) => Ty::Bool,
        Expr::Sum(a) => f.ty_of(a).elem(),
        Expr::Len(_) => Ty::Int(Some("usize".into())),
        Expr::Broadcast(like, _) => f.ty_of(like),
        Expr::Select(_, a, b) => merge_ty(&f.ty_of(a), &f.ty_of(b)),
    }
}

/// Replaces variables (reads, definitions and assignment targets) by `map`.
pub fn rename_block(b: &mut Block, map: &HashMap<VarId, VarId>) {
    if map.is_empty() {
        return;
    }
    let r = |v: &mut VarId| {
        if let Some(n) = map.get(v) {
            *v = *n;
        }
    };
    let ro = |o: &mut Operand| {
        if let Operand::Var(v) = o {
            if let Some(n) = map.get(v) {
                *v = *n;
            }
        }
    };
    fn expr(e: &mut Expr, ro: &dyn Fn(&mut Operand)) {
        expr_operands_mut(e, &mut |o| ro(o));
    }
    fn block(b: &mut Block, r: &dyn Fn(&mut VarId), ro: &dyn Fn(&mut Operand)) {
        for s in &mut b.0 {
            match s {
                Stmt::Let(v, e) => {
                    r(v);
                    expr(e, ro);
                }
                Stmt::Mut(v, e) => {
                    r(v);
                    if let Some(e) = e {
                        expr(e, ro);
                    }
                }
                Stmt::Assign(p, _, v) => {
                    r(&mut p.var);
                    p.idx.iter_mut().for_each(ro);
                    ro(v);
                }
                Stmt::For(l) => {
                    r(&mut l.var);
                    ro(&mut l.lo);
                    ro(&mut l.hi);
                    block(&mut l.body, r, ro);
                }
                Stmt::If(c, t, e) => {
                    ro(c);
                    block(t, r, ro);
                    block(e, r, ro);
                }
            }
        }
    }
    block(b, &r, &ro);
}

/// The Rust spelling of a type, for messages (`[f64; 3]`, `(f64, f64)`; what the macro does
/// not know is `_`).
impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Float(Some(k)) => write!(f, "{}", k.name()),
            Ty::Float(None) => write!(f, "f64"),
            Ty::Lanes(e) => write!(f, "Lanes<{e}>"),
            Ty::Int(Some(n)) => write!(f, "{n}"),
            Ty::Int(None) => write!(f, "usize"),
            Ty::Bool => write!(f, "bool"),
            Ty::Unit => write!(f, "()"),
            Ty::Rng => write!(f, "Rng"),
            Ty::Array(e, n) => write!(f, "[{e}; {n}]"),
            // A slice's values other than the parameter itself (cotangents) are `Vec`s.
            Ty::Slice(e) => write!(f, "Vec<{e}>"),
            Ty::Matrix { elem, rows, cols } => match (rows, cols) {
                (Dim::Dynamic, c) if c.is_one() => write!(f, "DVector<{elem}>"),
                (Dim::Dynamic, Dim::Dynamic) => write!(f, "DMatrix<{elem}>"),
                (Dim::Static(r), c) if c.is_one() => write!(f, "SVector<{elem}, {r}>"),
                (Dim::Static(r), Dim::Static(c)) => write!(f, "SMatrix<{elem}, {r}, {c}>"),
                (r, c) => write!(f, "OMatrix<{elem}, {}, {}>", dim_text(r), dim_text(c)),
            },
            Ty::Tuple(ts) if ts.len() == 1 => write!(f, "({},)", ts[0]),
            Ty::Tuple(ts) => {
                let parts: Vec<String> = ts.iter().map(Ty::to_string).collect();
                write!(f, "({})", parts.join(", "))
            }
            Ty::Unknown => write!(f, "_"),
            Ty::Tape(t) => write!(f, "tape {t}"),
        }
    }
}

/// A nalgebra dimension type for messages: `Dyn` or `Const<N>`.
fn dim_text(d: &Dim) -> String {
    match d {
        Dim::Static(c) => format!("Const<{c}>"),
        Dim::Dynamic => "Dyn".into(),
    }
}

/// The elements a place indexed by `idx` runs over inside a nest of loops (`loops`: each
/// loop's index and its literal bounds, if it has them): per axis, the half-open range of a
/// loop index or the one element of an integer literal; `None` where an index is neither
/// or a bound is not a literal.
pub fn index_region(idx: &[Operand], loops: &[(VarId, Option<(i128, i128)>)]) -> Option<Vec<(i128, i128)>> {
    idx.iter()
        .map(|o| match o {
            Operand::Int(c) => Some((*c, *c + 1)),
            Operand::Var(v) => loops.iter().find(|l| l.0 == *v).and_then(|l| l.1),
            _ => None,
        })
        .collect()
}
