//! Emit: IR to Rust tokens, as let-chains with unique, readable names.
//!
//! ```text
//! let t = SIGMA / r;            // one binding per operation, named after the source
//! let t_bar = ct * EPS;         // adjoints end in _bar, tangents in _dot, tapes start tape_
//! for i in (0..N).rev() { .. }  // loops stay loops
//! ```

use std::collections::{HashMap, HashSet};

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::ir::*;

/// The name of the hidden type that holds a function's companions. It reads as the fix
/// when rustc reports it missing at a call site.
///
/// It is the function's own name: a braced struct lives in the type namespace only, beside
/// the function in the value namespace, so whatever imports or names the function (a path,
/// `use m::g`, `use m::g as h`, a glob) brings its companions along.
pub fn holder_name(fn_name: &str) -> String {
    fn_name.to_string()
}

/// The hidden holder item: `#vis struct h { __fluxion: [(); { impl h { fns } inner 0 }] }`.
///
/// The companions' `impl`, and `inner` (markers, the item that keeps the original used),
/// live inside the struct's one field type, an anonymous constant: an annotated function
/// that is not at module scope (an associated function in an `impl`) then gives a single
/// error, rustc's "struct is not supported in `trait`s or `impl`s" at the attribute, where
/// separate items would each add theirs and a name-resolution error.
pub fn holder_item(vis: &TokenStream, h: &Ident, fns: &TokenStream, inner: &TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, non_local_definitions)]
        #vis struct #h {
            __fluxion: [(); {
                #[allow(dead_code)]
                impl #h {
                    #fns
                }
                #inner
                0
            }],
        }
    }
}

/// The holder's identifier (`r#match` for a function named `r#match`).
pub fn holder_ident(fn_name: &str, span: Span) -> Ident {
    raw_if_keyword(&holder_name(fn_name), span)
}

/// The companion method name for a list of transforms (`[Vjp, Jvp]` is `vjp_jvp`).
pub fn mode_name(modes: &[Mode]) -> String {
    modes
        .iter()
        .map(|m| match m {
            Mode::Jvp => "jvp",
            Mode::Vjp => "vjp",
            Mode::VjpFwd => "vjp_fwd",
            Mode::VjpBwd => "vjp_bwd",
            Mode::VjpBwdAcc => "vjp_bwd_acc",
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// The name of a lanes companion (a batched call's callee, see [`Call::lanes`]): `lanes`
/// for the function itself, `jvp_lanes`, `vjp_fwd_lanes`, .. for its companions.
pub fn lanes_mode_name(modes: &[Mode]) -> String {
    if modes.is_empty() {
        "lanes".to_string()
    } else {
        format!("{}_lanes", mode_name(modes))
    }
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Names of variables, made unique against each other and the paths the code mentions.
pub struct Names {
    names: Vec<String>,
}

impl Names {
    /// Assigns names to every variable of `f`.
    pub fn new(f: &Func) -> Names {
        let mut reserved: HashSet<String> = KEYWORDS.iter().map(|s| s.to_string()).collect();
        collect_paths(f, &mut reserved);
        let mut used: HashSet<String> = HashSet::new();
        let mut names = vec![String::new(); f.vars.len()];
        // Parameters first, so they keep their names.
        let mut order: Vec<VarId> = f.params.iter().map(|p| p.var).collect();
        for v in 0..f.vars.len() {
            if !order.contains(&v) {
                order.push(v);
            }
        }
        for v in order {
            let base = sanitize(&f.vars[v].name);
            let mut cand = base.clone();
            let mut k = 1;
            while used.contains(&cand) || reserved.contains(&cand) {
                cand = format!("{base}_{k}");
                k += 1;
            }
            used.insert(cand.clone());
            names[v] = cand;
        }
        Names { names }
    }
    /// The identifier of a variable.
    pub fn ident(&self, v: VarId) -> Ident {
        Ident::new(&self.names[v], Span::call_site())
    }
}

fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    if out == "_" {
        out = "_v".into();
    }
    out
}

fn collect_paths(f: &Func, out: &mut HashSet<String>) {
    let add_c = |c: &CExpr, out: &mut HashSet<String>| {
        let mut ps = Vec::new();
        c.paths(&mut ps);
        for p in ps {
            if let Some(first) = p.split("::").find(|s| !s.is_empty()) {
                out.insert(first.to_string());
            }
        }
    };
    fn ty_paths(t: &Ty, out: &mut Vec<CExpr>) {
        match t {
            Ty::Array(e, n) => {
                out.push(n.clone());
                ty_paths(e, out);
            }
            Ty::Matrix { elem, rows, cols } => {
                out.extend([rows, cols].into_iter().filter_map(|d| d.static_len().cloned()));
                ty_paths(elem, out);
            }
            Ty::Tuple(ts) => ts.iter().for_each(|t| ty_paths(t, out)),
            _ => {}
        }
    }
    let mut cs = Vec::new();
    for v in &f.vars {
        ty_paths(&v.ty, &mut cs);
    }
    for n in &f.const_generics {
        out.insert(n.clone());
    }
    walk_stmts(&f.body, &mut |s| {
        let mut ops = Vec::new();
        match s {
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => {
                ops = expr_operands(e);
                match e {
                    Expr::Call(c) => {
                        out.insert(
                            c.prefix
                                .iter()
                                .find(|s| !s.is_empty())
                                .cloned()
                                .unwrap_or_else(|| c.name.clone()),
                        );
                        out.insert(holder_name(&c.name));
                    }
                    Expr::Repeat(_, n) => cs.push(n.clone()),
                    Expr::Zeros(t) | Expr::Cast(_, t) => ty_paths(t, &mut cs),
                    _ => {}
                }
            }
            Stmt::Assign(p, _, v) => {
                ops = p.idx.clone();
                ops.push(v.clone());
            }
            Stmt::For(l) => {
                cs.extend(l.static_lo());
                cs.extend(l.static_hi());
            }
            Stmt::If(c, _, _) => ops.push(c.clone()),
            Stmt::Mut(_, None) => {}
        }
        for o in ops {
            if let Operand::Const(c) = o {
                cs.push(c);
            }
        }
    });
    if let Operand::Const(c) = &f.ret {
        cs.push(c.clone());
    }
    for c in &cs {
        add_c(c, out);
    }
}

/// How values, types and operations are spelled in emitted code: the hooks a target
/// overrides. [`Scalar`] is plain Rust on `f64`/`f32`, fixed arrays and tuples; a SIMD-lane
/// target (values of `wide::f64x4`-like types, masks for comparisons and selects) or
/// nalgebra spellings (`m[(i, j)]`) implement the same hooks, and the transforms do not
/// change.
pub trait Target {
    /// A type.
    fn ty(&self, t: &Ty) -> TokenStream;
    /// A float literal.
    fn float_lit(&self, l: &FloatLit) -> TokenStream;
    /// The zero of a type (`Expr::Zeros`).
    fn zeros(&self, t: &Ty) -> TokenStream;
    /// A primitive on its operands.
    fn prim(&self, p: Prim, ops: &[TokenStream]) -> TokenStream;
    /// A comparison.
    fn cmp(&self, op: CmpOp, a: TokenStream, b: TokenStream) -> TokenStream;
    /// A choice between two computed values.
    fn select(&self, c: TokenStream, a: TokenStream, b: TokenStream) -> TokenStream;
    /// An element `a[i][j]` (a read, or the place of a write), with the index operands
    /// grouped by level: one operand for an array or a vector (`[i]`), two for a matrix
    /// (`[(i, j)]`).
    fn index(&self, a: TokenStream, groups: Vec<Vec<TokenStream>>) -> TokenStream;
    /// `a && b`, `a || b`.
    fn bool_op(&self, op: BoolOp, a: TokenStream, b: TokenStream) -> TokenStream {
        match op {
            BoolOp::And => quote!(#a && #b),
            BoolOp::Or => quote!(#a || #b),
        }
    }
    /// `!a`
    fn not(&self, a: TokenStream) -> TokenStream {
        quote!(!#a)
    }
    /// The sum of an array's elements (`a` a reference to it).
    fn sum(&self, a: TokenStream) -> TokenStream {
        quote!(::fluxion::__private::sum(#a))
    }
    /// A value of a type only rustc knows (a call's result) in every lane: floats splatted,
    /// arrays and tuples element by element, integers unchanged.
    fn spread(&self, a: TokenStream) -> TokenStream {
        a
    }
    /// A shared scalar in every lane (only batched kernels have lanes).
    fn splat(&self, _a: TokenStream) -> TokenStream {
        quote!(::core::compile_error!("fluxion: a lane value outside a batched kernel"))
    }
    /// Lanes that are 1 in lane `l`, 0 elsewhere (only batched kernels have lanes).
    fn unit_lane(&self, _l: TokenStream) -> TokenStream {
        quote!(::core::compile_error!("fluxion: a lane value outside a batched kernel"))
    }
    /// Lane `l` of `a` (only batched kernels have lanes).
    fn lane(&self, _a: TokenStream, _l: TokenStream) -> TokenStream {
        quote!(::core::compile_error!("fluxion: a lane value outside a batched kernel"))
    }
}

/// A batched kernel's lanes (vmap): values of type [`Ty::Lanes`] are SIMD vectors of the
/// runtime (`f64x4`, `f32x8`), operated on through its `Lanes` trait; comparisons give lane
/// masks (`LaneMask`), and a select on a mask takes each lane from its side. The emitter uses
/// it for the operations on lanes and [`Scalar`] for the shared values around them.
///
/// ```text
/// let t = x * s;                                   // operators on the vectors
/// let u = ::fluxion::__private::Lanes::tanh(t);    // the trait's lane math
/// let m = ::fluxion::__private::Lanes::gt(x, z);   // a mask
/// let r = ::fluxion::__private::Lanes::select(m, u, t);
/// ```
pub struct LaneTarget {
    /// The float type of every batched value of the kernel.
    pub float: FloatTy,
}

impl LaneTarget {
    /// The number of lanes of the kernel's vector type.
    pub fn lanes(&self) -> usize {
        match self.float {
            FloatTy::F64 => 4,
            FloatTy::F32 => 8,
        }
    }
    /// The SIMD vector type of the kernel's float type.
    pub fn vector(&self) -> TokenStream {
        match self.float {
            FloatTy::F64 => quote!(::fluxion::__private::f64x4),
            FloatTy::F32 => quote!(::fluxion::__private::f32x8),
        }
    }
}

impl Target for LaneTarget {
    fn ty(&self, t: &Ty) -> TokenStream {
        match t {
            Ty::Lanes(e) if matches!(**e, Ty::Bool) => {
                let v = self.vector();
                quote!(<#v as ::fluxion::__private::Lanes>::Mask)
            }
            Ty::Lanes(e) if matches!(**e, Ty::Rng) => {
                let n = self.lanes();
                quote!(::fluxion::__private::RngLanes<#n>)
            }
            Ty::Lanes(_) => self.vector(),
            Ty::Array(e, n) => {
                let e = self.ty(e);
                let n = cexpr_tokens(n, false);
                quote!([#e; #n])
            }
            Ty::Tuple(ts) => {
                let ts: Vec<_> = ts.iter().map(|t| self.ty(t)).collect();
                quote!((#(#ts,)*))
            }
            // A tape of lanes (in the residuals of a lanes companion's signature).
            Ty::Tape(t) => match &**t {
                Ty::Array(e, len) => {
                    let et = self.ty(e);
                    let len = cexpr_tokens(len, true);
                    quote!(<::fluxion::__private::Tape<{ #len * ::core::mem::size_of::<#et>() > ::fluxion::__private::TAPE_STACK_BYTES }> as ::fluxion::__private::TapeStorage<#et, { #len }>>::Store)
                }
                t => self.ty(t),
            },
            other => ty_tokens(other),
        }
    }

    fn float_lit(&self, l: &FloatLit) -> TokenStream {
        Scalar.float_lit(l)
    }

    fn zeros(&self, t: &Ty) -> TokenStream {
        match t {
            Ty::Lanes(e) if matches!(**e, Ty::Bool) => {
                let v = self.vector();
                quote!(<<#v as ::fluxion::__private::Lanes>::Mask as ::fluxion::__private::LaneMask>::splat(false))
            }
            Ty::Lanes(_) => self.splat(quote!(0.0)),
            Ty::Array(e, n) => {
                let e = self.zeros(e);
                let n = cexpr_tokens(n, false);
                quote!([#e; #n])
            }
            Ty::Tuple(ts) => {
                let ts: Vec<_> = ts.iter().map(|t| self.zeros(t)).collect();
                quote!((#(#ts,)*))
            }
            // A tape whose storage rustc picks (the residuals' slot of a batch).
            Ty::Tape(t) => match &**t {
                Ty::Array(e, len) => {
                    let (et, z) = (self.ty(e), self.zeros(e));
                    let len = cexpr_tokens(len, true);
                    quote!(<::fluxion::__private::Tape<{ #len * ::core::mem::size_of::<#et>() > ::fluxion::__private::TAPE_STACK_BYTES }> as ::fluxion::__private::TapeStorage<#et, { #len }>>::zeroed(#z))
                }
                t => self.zeros(t),
            },
            other => zeros_tokens(other),
        }
    }

    fn prim(&self, p: Prim, o: &[TokenStream]) -> TokenStream {
        match (p.spelling(), o) {
            (Spelling::Prefix(op), [a]) => {
                let op = punct(op);
                quote!(#op #a)
            }
            (Spelling::Infix(op), [a, b]) => {
                let op = punct(op);
                quote!(#a #op #b)
            }
            (Spelling::Runtime(f) | Spelling::Method(f), _) => {
                let f = format_ident!("{}", f);
                quote!(::fluxion::__private::Lanes::#f(#(#o),*))
            }
            _ => {
                let msg = format!("fluxion: {p:?} with {} operands", o.len());
                quote!(::core::compile_error!(#msg))
            }
        }
    }

    fn cmp(&self, op: CmpOp, a: TokenStream, b: TokenStream) -> TokenStream {
        let m = format_ident!(
            "{}",
            match op {
                CmpOp::Lt => "lt",
                CmpOp::Le => "le",
                CmpOp::Gt => "gt",
                CmpOp::Ge => "ge",
                CmpOp::Eq => "eq",
                CmpOp::Ne => "ne",
            }
        );
        quote!(::fluxion::__private::Lanes::#m(#a, #b))
    }

    fn select(&self, c: TokenStream, a: TokenStream, b: TokenStream) -> TokenStream {
        quote!(::fluxion::__private::Lanes::select(#c, #a, #b))
    }

    fn index(&self, a: TokenStream, groups: Vec<Vec<TokenStream>>) -> TokenStream {
        Scalar.index(a, groups)
    }

    fn bool_op(&self, op: BoolOp, a: TokenStream, b: TokenStream) -> TokenStream {
        match op {
            BoolOp::And => quote!(::fluxion::__private::LaneMask::and(#a, #b)),
            BoolOp::Or => quote!(::fluxion::__private::LaneMask::or(#a, #b)),
        }
    }

    fn not(&self, a: TokenStream) -> TokenStream {
        quote!(::fluxion::__private::LaneMask::not(#a))
    }

    fn spread(&self, a: TokenStream) -> TokenStream {
        let v = self.vector();
        quote!(::fluxion::__private::spread::<#v, _>(#a))
    }

    fn splat(&self, a: TokenStream) -> TokenStream {
        let v = self.vector();
        quote!(<#v as ::fluxion::__private::Lanes>::splat(#a))
    }

    fn unit_lane(&self, l: TokenStream) -> TokenStream {
        let v = self.vector();
        quote!(<#v as ::fluxion::__private::Lanes>::from_fn(|q| if q == #l { 1.0 } else { 0.0 }))
    }

    fn lane(&self, a: TokenStream, l: TokenStream) -> TokenStream {
        quote!(::fluxion::__private::Lanes::lane(#a, #l))
    }
}

/// Plain Rust: `f64`/`f32` scalars, fixed arrays, tuples, `bool` conditions.
pub struct Scalar;

impl Target for Scalar {
    fn ty(&self, t: &Ty) -> TokenStream {
        ty_tokens(t)
    }

    fn float_lit(&self, l: &FloatLit) -> TokenStream {
        // Literal texts come from syn's tokens or from `FloatLit::new`: they parse.
        // Should one not, the build fails here rather than use another number.
        let t: TokenStream = l.text.parse().unwrap_or_else(|_| {
            let msg = format!("fluxion cannot write the literal `{}`", l.text);
            quote!(::core::compile_error!(#msg))
        });
        if l.text.starts_with('-') {
            quote!((#t))
        } else {
            t
        }
    }

    fn zeros(&self, t: &Ty) -> TokenStream {
        zeros_tokens(t)
    }

    fn prim(&self, p: Prim, o: &[TokenStream]) -> TokenStream {
        match (p.spelling(), o) {
            (Spelling::Prefix(op), [a]) => {
                let op = punct(op);
                quote!(#op #a)
            }
            (Spelling::Infix(op), [a, b]) => {
                let op = punct(op);
                quote!(#a #op #b)
            }
            (Spelling::Runtime(f), _) => {
                let f = format_ident!("{}", f);
                quote!(::fluxion::__private::#f(#(#o),*))
            }
            (Spelling::Method(m), [recv, rest @ ..]) => {
                let m = format_ident!("{}", m);
                quote!(#recv.#m(#(#rest),*))
            }
            _ => {
                let msg = format!("fluxion: {p:?} with {} operands", o.len());
                quote!(::core::compile_error!(#msg))
            }
        }
    }

    fn cmp(&self, op: CmpOp, a: TokenStream, b: TokenStream) -> TokenStream {
        let s = punct(op.symbol());
        quote!(#a #s #b)
    }

    fn select(&self, c: TokenStream, a: TokenStream, b: TokenStream) -> TokenStream {
        quote!(if #c { #a } else { #b })
    }

    fn index(&self, a: TokenStream, groups: Vec<Vec<TokenStream>>) -> TokenStream {
        let levels = groups.iter().map(|g| match g.as_slice() {
            [i] => quote!([#i]),
            many => quote!([(#(#many),*)]),
        });
        quote!(#a #(#levels)*)
    }
}

/// Emits IR as Rust, through a [`Target`].
pub struct Emitter<'a> {
    f: &'a Func,
    names: Names,
    by_ref: HashSet<VarId>,
    target: &'a dyn Target,
    /// The target of operations on lanes, in a batched kernel.
    lanes: Option<&'a dyn Target>,
    /// Inside the task body of a [`RowTasks`] loop: the Jacobian written through the
    /// task's rows (`__fluxion_rows[row - __fluxion_c0 * lanes]`), and the lane count.
    rows: std::cell::Cell<Option<(VarId, i128)>>,
    /// Slots of values only rustc types ([`slots`]): read and written by copy.
    slots: HashSet<VarId>,
    /// Inside the task body of a column [`RowTasks`] loop: the Jacobian, written through
    /// the task's `Columns` (`__fluxion_cols.set(row, col, v)`).
    cols: std::cell::Cell<Option<VarId>>,
    /// Arrays read out of a parameter passed by reference and only indexed: bound by
    /// reference ([`borrowed`]).
    borrowed: HashSet<VarId>,
    /// Values that are not `Copy` (`Vec`s) read more than once: cloned where read by
    /// value ([`reused_owned`]).
    reused: HashSet<VarId>,
    /// The function holds slices or loops with a run-time trip count ([`Func::has_dynamic`]).
    dynamic: bool,
}

/// Whether a value of type `t` may hold a `Vec` (not `Copy`): a slice's owned form, an
/// array or tuple of them, and in a function with slices or run-time loops a value only
/// rustc types (a companion's result holding a slice's cotangent). A clone of a `Copy`
/// value is a copy.
fn maybe_owned(t: &Ty, dynamic: bool) -> bool {
    fn unknown(t: &Ty) -> bool {
        match t {
            Ty::Unknown => true,
            Ty::Array(e, _) | Ty::Tape(e) => unknown(e),
            Ty::Tuple(ts) => ts.iter().any(unknown),
            _ => false,
        }
    }
    t.has_slice() || (dynamic && unknown(t))
}

/// The values holding a `Vec` (a slice's cotangent, a tuple of cotangents, a Jacobian's
/// rows in a slice) that a by-value read would move while something reads them again:
/// read more than once, or read inside a loop they are defined outside of. A second
/// reverse pass reads a first pass's cotangents again (the zero of their adjoints, the
/// cotangents it adds them into); the emitter clones them where it reads them by value.
fn reused_owned(f: &Func, by_ref: &HashSet<VarId>, dynamic: bool) -> HashSet<VarId> {
    let mut depth_of: HashMap<VarId, usize> = HashMap::new();
    let mut reads: HashMap<VarId, (usize, usize)> = HashMap::new();
    fn walk(b: &Block, d: usize, depth_of: &mut HashMap<VarId, usize>, reads: &mut HashMap<VarId, (usize, usize)>) {
        for s in &b.0 {
            let mut ops = Vec::new();
            match s {
                Stmt::Let(v, e) => {
                    depth_of.insert(*v, d);
                    ops = expr_operands(e);
                }
                Stmt::Mut(v, e) => {
                    depth_of.insert(*v, d);
                    ops = e.as_ref().map(expr_operands).unwrap_or_default();
                }
                Stmt::Assign(p, _, v) => {
                    ops.extend(p.idx.iter().cloned());
                    ops.push(v.clone());
                }
                Stmt::For(l) => {
                    ops.push(l.lo.clone());
                    ops.push(l.hi.clone());
                }
                Stmt::If(c, _, _) => ops.push(c.clone()),
            }
            for v in ops.iter().filter_map(Operand::var) {
                let r = reads.entry(v).or_insert((0, 0));
                r.0 += 1;
                r.1 = r.1.max(d);
            }
            match s {
                Stmt::For(l) => walk(&l.body, d + 1, depth_of, reads),
                Stmt::If(_, t, e) => {
                    walk(t, d, depth_of, reads);
                    walk(e, d, depth_of, reads);
                }
                _ => {}
            }
        }
    }
    walk(&f.body, 0, &mut depth_of, &mut reads);
    if let Some(v) = f.ret.var() {
        let r = reads.entry(v).or_insert((0, 0));
        r.0 += 1;
    }
    reads
        .into_iter()
        .filter(|(v, (n, d))| {
            let info = &f.vars[*v];
            !by_ref.contains(v)
                && maybe_owned(&info.ty, dynamic)
                && (*n > 1 || *d > depth_of.get(v).copied().unwrap_or(0))
        })
        .map(|(v, _)| v)
        .collect()
}

/// The arrays bound to a field of a parameter passed by reference (`let tape = res.0`, a
/// batch's kept residuals read by the reverse half) that are only ever indexed: bound as
/// `let tape = &res.0`, so the kilobytes of a chunk's residuals are read where they are,
/// not copied first.
fn borrowed(f: &Func, by_ref: &HashSet<VarId>) -> HashSet<VarId> {
    let mut cand = HashSet::new();
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(v, Expr::Field(Operand::Var(p), _)) | Stmt::Mut(v, Some(Expr::Field(Operand::Var(p), _))) = s {
            if by_ref.contains(p) && matches!(f.vars[*v].ty, Ty::Array(..)) && f.vars[*v].storage != Storage::Growing {
                cand.insert(*v);
            }
        }
    });
    // Every other use disqualifies: a read that is not an index's array, a write.
    let mut used = HashSet::new();
    walk_stmts(&f.body, &mut |s| {
        let mut ops = Vec::new();
        match s {
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => match e {
                Expr::Index(_, idx) => ops.extend(idx.iter().cloned()),
                e => ops = expr_operands(e),
            },
            Stmt::Assign(p, _, v) => {
                used.insert(p.var);
                ops.extend(p.idx.iter().cloned());
                ops.push(v.clone());
            }
            Stmt::If(c, _, _) => ops.push(c.clone()),
            Stmt::For(_) | Stmt::Mut(_, None) => {}
        }
        used.extend(ops.iter().filter_map(Operand::var));
        used.extend(call_writes(s));
    });
    used.extend(f.ret.var());
    cand.retain(|v| !used.contains(v));
    cand
}

/// The mutable variables of a type only rustc knows that are slots, not accumulators: set
/// whole (`slot = v`), never added into. Such a slot may hold a batch's `Vec` (a tape of
/// a loop that calls `f_vmap`), which a later sweep reads again: the emitter copies it in
/// and out. (An accumulator is added into, so its type has `Accumulate`, and is `Copy`.)
fn slots(f: &Func) -> HashSet<VarId> {
    let mut set = HashSet::new();
    let mut added = HashSet::new();
    walk_stmts(&f.body, &mut |s| {
        match s {
            Stmt::Assign(p, AssignOp::Set, _) if p.idx.is_empty() => {
                set.insert(p.var);
            }
            Stmt::Assign(p, _, _) => {
                added.insert(p.var);
            }
            _ => {}
        }
        added.extend(call_writes(s));
    });
    set.retain(|v| f.vars[*v].mutable && f.vars[*v].ty == Ty::Unknown && !added.contains(v));
    set
}

/// How to emit a function's signature and attributes.
pub struct FnHeader<'a> {
    /// Visibility tokens.
    pub vis: TokenStream,
    /// The function's name.
    pub name: Ident,
    /// The original generics (shared by all generated functions).
    pub generics: &'a syn::Generics,
    /// Attributes (docs, inline, allow).
    pub attrs: TokenStream,
}

impl<'a> Emitter<'a> {
    /// An emitter for `f`, in plain Rust.
    pub fn new(f: &'a Func) -> Emitter<'a> {
        Emitter::with_target(f, &Scalar)
    }

    /// An emitter for `f` through `target`.
    pub fn with_target(f: &'a Func, target: &'a dyn Target) -> Emitter<'a> {
        // Slices are always borrowed (`&[T]`): tangents of slice parameters too.
        let by_ref = f
            .params
            .iter()
            .filter(|p| p.by_ref || is_slice_param(f, p))
            .map(|p| p.var)
            .collect();
        let borrowed = borrowed(f, &by_ref);
        let dynamic = f.has_dynamic();
        let reused = reused_owned(f, &by_ref, dynamic);
        Emitter {
            f,
            names: Names::new(f),
            by_ref,
            target,
            lanes: None,
            rows: std::cell::Cell::new(None),
            slots: slots(f),
            borrowed,
            reused,
            dynamic,
            cols: std::cell::Cell::new(None),
        }
    }

    /// The emitter with the slice parameters `owned` taken as `Vec<T>` by value, not
    /// borrowed: a companion's cotangents of slice outputs (and their tangents), which its
    /// callers hold as values only rustc types and pass on by value, as to a batched
    /// function's companions.
    pub fn with_owned(mut self, owned: &[VarId]) -> Emitter<'a> {
        self.by_ref.retain(|v| !owned.contains(v));
        self.reused = reused_owned(self.f, &self.by_ref, self.dynamic);
        self.borrowed = borrowed(self.f, &self.by_ref);
        self
    }

    /// An emitter for a batched kernel: `target` for shared values, `lanes` for the
    /// operations on lanes.
    pub fn with_lanes(f: &'a Func, target: &'a dyn Target, lanes: &'a dyn Target) -> Emitter<'a> {
        let mut e = Emitter::with_target(f, target);
        e.lanes = Some(lanes);
        e
    }

    /// The target of a type: the lanes target where lanes are part of it.
    fn ty_target(&self, t: &Ty) -> &'a dyn Target {
        match self.lanes {
            Some(l) if t.has_lanes() => l,
            _ => self.target,
        }
    }

    /// The target of an operation on `o`: the lanes target if `o` holds lanes.
    fn op_target(&self, o: &Operand) -> &'a dyn Target {
        self.ty_target(&self.f.ty_of(o))
    }

    /// `: T` for variables declared with a type annotation.
    fn annotation(&self, v: VarId) -> TokenStream {
        let info = &self.f.vars[v];
        if info.annotated && info.ty.is_known() {
            let t = self.ty_target(&info.ty).ty(&info.ty);
            quote!(: #t)
        } else {
            quote!()
        }
    }

    /// A parameter declaration: `x: [f64; N]` or `x: &[f64; N]` (`out: &mut R` for the
    /// caller's buffer of an `_into` form, `x_bar: &mut T` for an accumulator).
    pub fn param(&self, p: &Param) -> TokenStream {
        let n = self.names.ident(p.var);
        let t = self.ty_target(&p.ty).ty(&p.ty);
        if let (Storage::OutParam | Storage::MutParam, Ty::Slice(e)) = (self.f.vars[p.var].storage, &p.ty) {
            // The caller's buffer (or accumulator) of a slice's cotangent: any `&mut [T]`
            // of its length.
            let e = self.ty_target(e).ty(e);
            quote!(#n: &mut [#e])
        } else if matches!(self.f.vars[p.var].storage, Storage::OutParam | Storage::MutParam) {
            quote!(#n: &mut #t)
        } else if let Storage::Rows(_) = self.f.vars[p.var].storage {
            // The samples of a kernel's chunk, one per lane (the type is the sample's).
            let v = self.vector();
            quote!(#n: &mut [&mut #t; <#v as ::fluxion::__private::Lanes>::LANES])
        } else if let (true, Ty::Slice(e)) = (self.by_ref.contains(&p.var), &p.ty) {
            // A slice parameter is borrowed as `&[T]` (a `&Vec<T>` argument coerces).
            let e = self.ty_target(e).ty(e);
            quote!(#n: &[#e])
        } else if p.by_ref {
            quote!(#n: &#t)
        } else {
            quote!(#n: #t)
        }
    }

    /// The whole function.
    pub fn function(&self, h: &FnHeader) -> TokenStream {
        let params = self.f.params.iter().map(|p| self.param(p));
        let ret_ty = self.ty_target(&self.f.ret_ty).ty(&self.f.ret_ty);
        let body = self.block(&self.f.body);
        let ret = self.owned(&self.f.ret);
        let FnHeader {
            vis,
            name,
            generics,
            attrs,
        } = h;
        let (gen, where_clause) = crate::emit::generic_parts(generics);
        if self.f.ret_ty == Ty::Unit {
            return quote! {
                #attrs
                #vis fn #name #gen (#(#params),*) #where_clause {
                    #body
                }
            };
        }
        quote! {
            #attrs
            #vis fn #name #gen (#(#params),*) -> #ret_ty #where_clause {
                #body
                #ret
            }
        }
    }

    /// The statements of `b[..split]` and `b[split..]` separately (for the pullback form).
    pub fn split_body(&self, split: usize) -> (TokenStream, TokenStream) {
        let a = Block(self.f.body.0[..split].to_vec());
        let b = Block(self.f.body.0[split..].to_vec());
        (self.block(&a), self.block(&b))
    }

    /// A variable's identifier.
    pub fn ident(&self, v: VarId) -> Ident {
        self.names.ident(v)
    }

    /// A variable as an expression or place: its name, or for a place in the caller's
    /// buffer `(*out)` / `(*out).k`, for an accumulator passed by `&mut` `(*x_bar)`.
    fn var(&self, v: VarId) -> TokenStream {
        if self.f.vars[v].storage == Storage::MutParam {
            let n = self.names.ident(v);
            return quote!((*#n));
        }
        if let Storage::Rows(field) = self.f.vars[v].storage {
            return self.rows_param(field);
        }
        let Storage::Out(field) = self.f.vars[v].storage else {
            let n = self.names.ident(v);
            return quote!(#n);
        };
        let out = self
            .f
            .params
            .iter()
            .find(|p| self.f.vars[p.var].storage == Storage::OutParam)
            .map(|p| self.names.ident(p.var));
        match field {
            Some(k) => {
                let k = syn::Index::from(k);
                quote!((*#out).#k)
            }
            None => quote!((*#out)),
        }
    }

    /// The parameter holding the samples of an output written lane by lane
    /// ([`Storage::Rows`] `field`).
    fn rows_param(&self, field: Option<usize>) -> TokenStream {
        match self.rows_of(field) {
            Some(p) => {
                let n = self.names.ident(p.var);
                quote!(#n)
            }
            None => quote!(::core::compile_error!(
                "fluxion: an output written by lanes without its samples"
            )),
        }
    }

    /// The parameter holding the samples of the output `field` written lane by lane.
    fn rows_of(&self, field: Option<usize>) -> Option<&Param> {
        self.f
            .params
            .iter()
            .find(|p| self.f.vars[p.var].storage == Storage::Rows(field))
    }

    /// The per-sample type of the place `p` of an output written lane by lane.
    fn rows_sample_ty(&self, p: &Place) -> Option<Ty> {
        let Storage::Rows(field) = self.f.vars[p.var].storage else {
            return None;
        };
        Some(self.rows_of(field)?.ty.indexed(p.idx.len()))
    }

    /// The SIMD vector type of a batched kernel (the plain `f64` elsewhere).
    fn vector(&self) -> TokenStream {
        let t = Ty::Lanes(Box::new(Ty::Float(None)));
        self.ty_target(&t).ty(&t)
    }

    /// An operand's tokens.
    pub fn operand(&self, o: &Operand) -> TokenStream {
        match o {
            Operand::Var(v) => self.var(*v),
            Operand::Float(l) => self.target.float_lit(l),
            Operand::Int(i) => {
                let lit = proc_macro2::Literal::i128_unsuffixed(i.abs());
                if *i < 0 {
                    quote!((-#lit))
                } else {
                    quote!(#lit)
                }
            }
            Operand::Bool(b) => quote!(#b),
            Operand::Const(c) => cexpr_tokens(c, true),
            Operand::Unit => quote!(()),
        }
    }

    /// A zero (or a tape's placeholder) of type `t`: an array of elements that may hold a
    /// `Vec` (a tape of a slice's cotangents in a second reverse pass) is built element by
    /// element, `[v; n]` needing `Copy`.
    fn zeros(&self, t: &Ty) -> TokenStream {
        match t {
            Ty::Array(e, n) if maybe_owned(e, self.dynamic) => {
                let e = self.zeros(e);
                let n = cexpr_tokens(n, false);
                quote!(::core::array::from_fn::<_, { #n }, _>(|_| #e))
            }
            Ty::Tuple(ts) if maybe_owned(t, self.dynamic) => {
                let ts: Vec<_> = ts.iter().map(|t| self.zeros(t)).collect();
                quote!((#(#ts,)*))
            }
            t => self.ty_target(t).zeros(t),
        }
    }

    /// An operand read by value: a clone of a `Vec` that is read again ([`reused_owned`]).
    fn owned(&self, o: &Operand) -> TokenStream {
        match o {
            Operand::Var(v) if self.reused.contains(v) => {
                let a = self.var(*v);
                quote!(::core::clone::Clone::clone(&#a))
            }
            o => self.operand(o),
        }
    }

    fn block(&self, b: &Block) -> TokenStream {
        let stmts = b.0.iter().map(|s| self.stmt(s));
        quote!(#(#stmts)*)
    }

    fn place(&self, p: &Place) -> TokenStream {
        if p.idx.is_empty() {
            return self.var(p.var);
        }
        let mut groups = self.index_groups(&self.f.vars[p.var].ty, &p.idx);
        if let Some((_, lanes)) = self.rows.get().filter(|(jac, _)| *jac == p.var) {
            // A row of a task's part of the Jacobian: its index from the task's first row.
            if let Some(row) = groups.first_mut().and_then(|g| g.first_mut()) {
                let lanes = proc_macro2::Literal::usize_unsuffixed(lanes as usize);
                *row = quote!((#row) - __fluxion_c0 * #lanes);
            }
            return self.target.index(quote!(__fluxion_rows), groups);
        }
        self.target.index(self.var(p.var), groups)
    }

    /// Index operands grouped by the level of `ty` they index: `[i]` per array level,
    /// `[row, col]` per matrix, and `[row]` alone for a vector's column 0 (`v[i]`, not
    /// `v[(i, 0)]`). Operands past what the macro knows of the type index one level each.
    fn index_groups(&self, ty: &Ty, idx: &[Operand]) -> Vec<Vec<TokenStream>> {
        let mut groups = Vec::new();
        let mut t = ty.clone();
        let mut rest = idx;
        while !rest.is_empty() {
            let k = t.index_arity().clamp(1, rest.len());
            let (now, later) = rest.split_at(k);
            let vector_col0 =
                matches!(&t, Ty::Matrix { cols, .. } if cols.is_one()) && now.get(1) == Some(&Operand::Int(0));
            let used = if vector_col0 { &now[..1] } else { now };
            groups.push(used.iter().map(|o| self.operand(o)).collect());
            t = t.elem();
            rest = later;
        }
        groups
    }

    /// The slice whose length the rows of the zero Jacobian `e` have: `xs` of
    /// `Repeat(Repeat(zero, ..), ..)` with `zero = zero_vec(xs)`, or of `Broadcast(xs, ..)`.
    fn slice_of_zero(&self, e: &Expr) -> Option<Operand> {
        match e {
            Expr::Broadcast(like, _) => Some(like.clone()),
            Expr::Repeat(Operand::Var(v), _) => {
                let mut found = None;
                walk_stmts(&self.f.body, &mut |s| {
                    if let Stmt::Let(w, d) = s {
                        if w == v {
                            found = match d {
                                Expr::ZeroLike(a) => Some(a.clone()),
                                d @ Expr::Repeat(..) => self.slice_of_zero(d),
                                _ => None,
                            };
                        }
                    }
                });
                found
            }
            _ => None,
        }
    }

    fn stmt(&self, s: &Stmt) -> TokenStream {
        match s {
            // An output in the chunk's samples: zeroed sample by sample, or left to its stores.
            Stmt::Mut(v, init) if matches!(self.f.vars[*v].storage, Storage::Rows(_)) => match init {
                Some(Expr::Zeros(_)) => {
                    let (rows, vector) = (self.var(*v), self.vector());
                    quote! {
                        for __fluxion_l in 0..<#vector as ::fluxion::__private::Lanes>::LANES {
                            ::fluxion::__private::fill_zero(&mut *#rows[__fluxion_l]);
                        }
                    }
                }
                _ => quote!(),
            },
            // An accumulator in the caller's buffer: set in place, no local of its size.
            Stmt::Mut(v, init) if matches!(self.f.vars[*v].storage, Storage::Out(_)) => {
                let place = self.var(*v);
                match init {
                    // The cotangent of a slice argument: the caller's buffer must have its
                    // length (a panic naming the argument and both lengths), then is zeroed.
                    Some(Expr::ZeroLike(a)) if matches!(self.f.vars[*v].ty, Ty::Slice(_)) => {
                        let name = match a.var() {
                            Some(w) => self.names.names[w].clone(),
                            None => "argument".into(),
                        };
                        let a = self.operand(a);
                        quote! {
                            ::fluxion::__private::check_len(#name, #a.len(), #place.len());
                            ::fluxion::__private::fill_zero(&mut #place[..]);
                        }
                    }
                    Some(Expr::Zeros(_)) => fill_zero_tokens(place, &self.f.vars[*v].ty),
                    // The rows of a Jacobian (`[zero_vec(xs); M]`) or Hessian (`xs.len()`
                    // rows) with respect to a slice: the caller's rows checked and zeroed.
                    Some(e @ (Expr::Repeat(..) | Expr::Broadcast(..))) if self.f.vars[*v].ty.has_slice() => {
                        let like = self.slice_of_zero(e);
                        let name = match like.as_ref().and_then(Operand::var) {
                            Some(w) => self.names.names[w].clone(),
                            None => "argument".into(),
                        };
                        let Some(a) = like.map(|l| self.operand(&l)) else {
                            let e = self.expr(e);
                            return quote!(#place = #e;);
                        };
                        let rows = if let Expr::Broadcast(..) = e {
                            quote!(::fluxion::__private::check_len(#name, #a.len(), #place.len());)
                        } else {
                            quote!()
                        };
                        quote! {
                            #rows
                            ::fluxion::__private::fill_rows(&mut #place, #name, #a.len());
                        }
                    }
                    Some(e) => {
                        let e = self.expr(e);
                        quote!(#place = #e;)
                    }
                    None => quote!(),
                }
            }
            // A call adding into accumulators returns nothing: no binding.
            Stmt::Let(v, Expr::Call(c)) if !c.writes().is_empty() && self.f.vars[*v].ty == Ty::Unit => {
                let call = self.call(c);
                quote!(#call;)
            }
            Stmt::Let(v, e) | Stmt::Mut(v, Some(e)) if self.borrowed.contains(v) => {
                let n = self.names.ident(*v);
                let e = self.expr(e);
                quote!(let #n = &#e;)
            }
            Stmt::Let(v, e) => {
                let n = self.names.ident(*v);
                let t = self.annotation(*v);
                let e = self.expr(e);
                quote!(let #n #t = #e;)
            }
            Stmt::Mut(v, Some(Expr::Zeros(Ty::Array(e, len)))) if self.f.vars[*v].storage != Storage::Stack => {
                // Expands to: `let mut tape_t = vec![0.0; N];` (`Heap`), or with sizes
                // only rustc knows, `let mut tape_t = <Tape<{ N * size_of::<E>() > LIMIT }>
                // as TapeStorage<E, { N }>>::zeroed(0.0);` (an array or a `Vec`).
                let n = self.names.ident(*v);
                let zero = self.ty_target(e).zeros(e);
                let len = cexpr_tokens(len, true);
                if self.f.vars[*v].storage == Storage::Heap {
                    quote!(let mut #n = ::fluxion::__private::heap_tape(#zero, #len);)
                } else {
                    let et = self.ty_target(e).ty(e);
                    quote!(let mut #n = <::fluxion::__private::Tape<{ #len * ::core::mem::size_of::<#et>() > ::fluxion::__private::TAPE_STACK_BYTES }> as ::fluxion::__private::TapeStorage<#et, { #len }>>::zeroed(#zero);)
                }
            }
            Stmt::Mut(v, Some(e)) => {
                let n = self.names.ident(*v);
                let t = self.annotation(*v);
                let e = self.expr(e);
                quote!(let mut #n #t = #e;)
            }
            Stmt::Mut(v, None) => {
                let n = self.names.ident(*v);
                quote!(let mut #n;)
            }
            // An element of an output in the chunk's samples: each lane to its sample.
            Stmt::Assign(p, AssignOp::Set, x) if matches!(self.f.vars[p.var].storage, Storage::Rows(_)) => {
                let groups = self.index_groups(&self.f.vars[p.var].ty, &p.idx);
                let rows = self.var(p.var);
                let target = self.target.index(quote!((*#rows[__fluxion_l])), groups);
                let vector = self.vector();
                let store = match (self.f.ty_of(x).has_lanes(), self.rows_sample_ty(p)) {
                    // A float on lanes: each sample its lane.
                    (true, Some(Ty::Float(_))) => {
                        quote!(#target = ::fluxion::__private::Lanes::lane(__fluxion_v, __fluxion_l);)
                    }
                    // An array on lanes (a row of a Jacobian): each sample its lane of
                    // every element.
                    (true, Some(t)) => {
                        let t = ty_tokens(&t);
                        quote!(<#t as ::fluxion::__private::Pack<#vector>>::write_lane(&__fluxion_v, __fluxion_l, &mut #target);)
                    }
                    // A shared value (a literal): every sample's.
                    _ => quote!(#target = __fluxion_v;),
                };
                let x = self.operand(x);
                quote! {{
                    let __fluxion_v = #x;
                    for __fluxion_l in 0..<#vector as ::fluxion::__private::Lanes>::LANES {
                        #store
                    }
                }}
            }
            // A growing tape's slot `k` is its length: the write is a push.
            Stmt::Assign(p, AssignOp::Set, v)
                if self.f.vars[p.var].storage == Storage::Growing && !p.idx.is_empty() =>
            {
                let n = self.var(p.var);
                let k = self.operand(&p.idx[0]);
                let val = self.owned(v);
                quote!(::fluxion::__private::push(&mut #n, #k, #val);)
            }
            // A slice-valued result copied into the caller's buffer, whose length must match.
            Stmt::Assign(p, AssignOp::Set, v)
                if p.idx.is_empty()
                    && matches!(self.f.vars[p.var].storage, Storage::Out(_))
                    && matches!(self.f.vars[p.var].ty, Ty::Slice(_)) =>
            {
                let target = self.place(p);
                let val = self.operand(v);
                quote! {
                    ::fluxion::__private::check_len("result", #val.len(), #target.len());
                    #target.copy_from_slice(&#val);
                }
            }
            // A column of a task's part of the Jacobian (`jacfwd`): through its `Columns`.
            Stmt::Assign(p, AssignOp::Set, v) if self.cols.get() == Some(p.var) && p.idx.len() == 2 => {
                let (r, c) = (self.operand(&p.idx[0]), self.operand(&p.idx[1]));
                let val = self.operand(v);
                quote!(__fluxion_cols.set(#r, #c, #val);)
            }
            // A value only rustc types stored whole into a slot (a tape of a batch's `Vec`s)
            // while the value is read on: a copy.
            Stmt::Assign(p, AssignOp::Set, v @ Operand::Var(w))
                if p.idx.is_empty() && self.slots.contains(&p.var) && !self.f.vars[*w].mutable =>
            {
                let target = self.place(p);
                let val = self.operand(v);
                quote!(#target = ::core::clone::Clone::clone(&#val);)
            }
            Stmt::Assign(p, op, v) => {
                let target = self.place(p);
                let ty = self.f.vars[p.var].ty.indexed(p.idx.len());
                // `acc_slice` borrows its operand.
                let val = if matches!(ty, Ty::Slice(_)) && *op == AssignOp::Add {
                    self.operand(v)
                } else {
                    self.owned(v)
                };
                match op {
                    AssignOp::Set => quote!(#target = #val;),
                    AssignOp::Add => acc_tokens(target, val, &ty),
                    AssignOp::Sub => quote!(#target -= #val;),
                }
            }
            // Chunks of rows (`jacrev`) or columns (`jacfwd`) as tasks of the runtime (on
            // rayon's threads), each writing the rows or columns it owns:
            // `jacobian_rows(&mut jac[..], L, chunk_size, weight, &|c0, rows| {
            //     for c in c0..c0 + rows.len().div_ceil(L) { .. rows[row - c0 L] = .. } })`,
            // `jacobian_cols(&mut jac[..], L, chunk_size, weight, &|c0, cols| {
            //     for c in c0..c0 + cols.len().div_ceil(L) { .. cols.set(o, col, ..) } })`.
            Stmt::For(l)
                if self.f.row_tasks.iter().any(|t| t.chunk == l.var)
                    && self.rows.get().is_none()
                    && self.cols.get().is_none() =>
            {
                let Some(t) = self.f.row_tasks.iter().find(|t| t.chunk == l.var) else {
                    return quote!();
                };
                let i = self.names.ident(l.var);
                let jac = self.var(t.out);
                let lanes = proc_macro2::Literal::usize_unsuffixed(t.lanes as usize);
                let weight = proc_macro2::Literal::usize_unsuffixed(t.weight as usize);
                let chunk = match t.chunk_size {
                    Some(k) => {
                        let k = proc_macro2::Literal::usize_unsuffixed(k);
                        quote!(::core::option::Option::Some(#k))
                    }
                    None => quote!(::core::option::Option::None),
                };
                if t.columns {
                    self.cols.set(Some(t.out));
                } else {
                    self.rows.set(Some((t.out, t.lanes)));
                }
                let body = self.block(&l.body);
                self.cols.set(None);
                self.rows.set(None);
                let (run, part, part_ty) = if t.columns {
                    (
                        quote!(jacobian_cols),
                        quote!(__fluxion_cols),
                        quote!(&mut ::fluxion::__private::Columns<'_, _>),
                    )
                } else {
                    (quote!(jacobian_rows), quote!(__fluxion_rows), quote!(&mut [_]))
                };
                quote!(::fluxion::__private::#run(&mut #jac[..], #lanes, #chunk, #weight, &|__fluxion_c0: usize, #part: #part_ty| {
                    for #i in __fluxion_c0..__fluxion_c0 + #part.len().div_ceil(#lanes) { #body }
                });)
            }
            Stmt::For(l) => {
                let i = self.names.ident(l.var);
                let bound = |o: &Operand| match o {
                    Operand::Const(c) => cexpr_tokens(c, false),
                    o => self.operand(o),
                };
                let lo = bound(&l.lo);
                let hi = bound(&l.hi);
                let body = self.block(&l.body);
                if l.rev {
                    quote!(for #i in (#lo..#hi).rev() { #body })
                } else {
                    quote!(for #i in #lo..#hi { #body })
                }
            }
            Stmt::If(c, t, e) => {
                let c = self.operand(c);
                let t = self.block(t);
                if e.0.is_empty() {
                    quote!(if #c { #t })
                } else {
                    let e = self.block(e);
                    quote!(if #c { #t } else { #e })
                }
            }
        }
    }

    fn by_ref_arg(&self, o: &Operand) -> TokenStream {
        let t = self.operand(o);
        if o.var().is_some_and(|v| self.by_ref.contains(&v)) {
            t
        } else {
            quote!(&#t)
        }
    }

    fn expr(&self, e: &Expr) -> TokenStream {
        let op = |o: &Operand| self.operand(o);
        match e {
            // A snapshot of a `Vec` (an accumulator of a slice's cotangent), or of a value
            // only rustc types (a tape's slot of a batch's `Vec`s, read once per sweep of a
            // loop), is a copy (for a `Copy` value, the copy it always was).
            Expr::Use(Operand::Var(v))
                if self.f.vars[*v].mutable && self.f.vars[*v].ty.has_slice() || self.slots.contains(v) =>
            {
                let a = self.var(*v);
                quote!(::core::clone::Clone::clone(&#a))
            }
            Expr::Use(a) | Expr::StopGrad(a) => self.owned(a),
            Expr::Len(a) => {
                let a = op(a);
                quote!(#a.len())
            }
            Expr::Residuals(a) => {
                let a = op(a);
                quote!(#a.1)
            }
            // A field that is not `Copy` of a value read again: the field's clone.
            Expr::Field(a @ Operand::Var(v), k)
                if self.reused.contains(v)
                    && match self.f.ty_of(a) {
                        Ty::Tuple(ts) => ts.get(*k).is_some_and(|t| maybe_owned(t, self.dynamic)),
                        t => maybe_owned(&t, self.dynamic),
                    } =>
            {
                let a = op(a);
                let k = syn::Index::from(*k);
                quote!(::core::clone::Clone::clone(&#a.#k))
            }
            Expr::Deref(a) => {
                let a = op(a);
                quote!(*#a)
            }
            Expr::Prim(p, xs) => self.prim(*p, xs),
            // An element that is not `Copy` (a tape of a slice's cotangents, or of a
            // companion's results, in a second reverse pass) is read by a clone.
            Expr::Index(v, idx) if maybe_owned(&self.f.vars[*v].ty.indexed(idx.len()), self.dynamic) => {
                let e = self
                    .target
                    .index(self.var(*v), self.index_groups(&self.f.vars[*v].ty, idx));
                quote!(::core::clone::Clone::clone(&#e))
            }
            Expr::Index(v, idx) => self
                .target
                .index(self.var(*v), self.index_groups(&self.f.vars[*v].ty, idx)),
            Expr::Array(xs) => {
                let xs = xs.iter().map(|x| self.owned(x));
                quote!([#(#xs),*])
            }
            // `[a; n]` of a value that is not `Copy` (rows of a slice's length): clones.
            Expr::Repeat(a, n) if self.f.ty_of(a).has_slice() => {
                let a = op(a);
                let n = cexpr_tokens(n, false);
                quote!(::core::array::from_fn::<_, { #n }, _>(|_| ::core::clone::Clone::clone(&#a)))
            }
            Expr::Repeat(a, n) => {
                let a = op(a);
                let n = cexpr_tokens(n, false);
                quote!([#a; #n])
            }
            Expr::Zeros(t) => self.zeros(t),
            // A value only rustc types (a call's result, maybe an array or a tuple) is
            // spread element by element, integers unchanged (`Spread`).
            Expr::Splat(a @ Operand::Var(_)) if self.f.ty_of(a) == Ty::Unknown => {
                self.lanes.unwrap_or(self.target).spread(op(a))
            }
            Expr::Splat(a) if self.f.ty_of(a) == Ty::Bool => {
                let t = self.lanes.unwrap_or(self.target);
                let m = t.ty(&Ty::Lanes(Box::new(Ty::Bool)));
                let a = op(a);
                quote!(<#m as ::fluxion::__private::LaneMask>::splat(#a))
            }
            Expr::Splat(a) if self.f.ty_of(a) == Ty::Rng => {
                let t = self.lanes.unwrap_or(self.target).ty(&Ty::Lanes(Box::new(Ty::Rng)));
                let a = op(a);
                quote!(<#t>::splat(#a))
            }
            Expr::Splat(a) => self.lanes.unwrap_or(self.target).splat(op(a)),
            Expr::UnitLane(l) => self.lanes.unwrap_or(self.target).unit_lane(op(l)),
            Expr::Lane(a, l) => self.op_target(a).lane(op(a), op(l)),
            Expr::ZeroLike(a) if matches!(self.f.ty_of(a), Ty::Slice(_)) => {
                let a = self.by_ref_arg(a);
                quote!(::fluxion::__private::zero_vec(#a))
            }
            // A value only rustc types in a function with slices may hold a `Vec` inside a
            // tuple (a generated gradient's result): `zero_owned` covers any nesting.
            Expr::ZeroLike(a)
                if self.dynamic
                    && !self.f.ty_of(a).is_known()
                    && !matches!(self.f.ty_of(a), Ty::Lanes(_) | Ty::Matrix { .. } | Ty::Rng) =>
            {
                let a = self.by_ref_arg(a);
                quote!(::fluxion::__private::zero_owned(#a))
            }
            Expr::ZeroLike(a) => {
                let a = self.by_ref_arg(a);
                quote!(::fluxion::__private::zero_like(#a))
            }
            Expr::Tuple(xs) => {
                let xs: Vec<_> = xs.iter().map(|x| self.owned(x)).collect();
                if xs.len() == 1 {
                    let x = &xs[0];
                    quote!((#x,))
                } else {
                    quote!((#(#xs),*))
                }
            }
            Expr::Field(a, k) => {
                let a = op(a);
                let k = syn::Index::from(*k);
                quote!(#a.#k)
            }
            Expr::Call(c) => self.call(c),
            Expr::IntAsFloat(n, like) if matches!(self.f.ty_of(like), Ty::Lanes(_)) => {
                let (n, like) = (op(n), op(like));
                quote!(::fluxion::__private::int_as_lanes(#n, #like))
            }
            Expr::IntAsFloat(n, like) => {
                let (n, like) = (op(n), op(like));
                quote!(::fluxion::__private::int_as_float(#n, #like))
            }
            Expr::CastLike(x, like) => {
                let (x, like) = (op(x), op(like));
                quote!(::fluxion::__private::cast_like(#x, #like))
            }
            // A draw on lanes of generators: each lane's own scalar draw.
            Expr::Rng(o, r, k) if matches!(self.f.ty_of(r), Ty::Lanes(_)) => {
                let (r, k) = (op(r), op(k));
                let m = format_ident!("{}", o.method());
                match o {
                    RngOp::FoldIn | RngOp::Sample => quote!(#r.#m(#k)),
                    RngOp::Uniform(f) | RngOp::Normal(f) => {
                        let v = self
                            .lanes
                            .unwrap_or(self.target)
                            .ty(&Ty::Lanes(Box::new(Ty::Float(Some(*f)))));
                        quote!(<#v as ::fluxion::__private::Lanes>::from_fn(|__fluxion_l| #r.0[__fluxion_l].#m(#k)))
                    }
                }
            }
            Expr::Rng(o, r, k) => {
                let (r, k) = (op(r), op(k));
                let m = format_ident!("{}", o.method());
                quote!(::fluxion::__private::Rng::#m(&#r, #k))
            }
            // Lanes keep their float type: a cast between lanes is the identity.
            Expr::Cast(a, Ty::Lanes(_)) => op(a),
            Expr::Cast(a, t) => {
                let a = op(a);
                let t = self.target.ty(t);
                quote!(#a as #t)
            }
            Expr::Cmp(c, a, b) => self.op_target(a).cmp(*c, op(a), op(b)),
            Expr::Bool(o, a, b) => self.op_target(a).bool_op(*o, op(a), op(b)),
            Expr::Not(a) => self.op_target(a).not(op(a)),
            Expr::Sum(a) => self.op_target(a).sum(self.by_ref_arg(a)),
            // Rows of a Hessian in a slice: a copy of the row `v` per element of `like`.
            Expr::Broadcast(like, v) if self.f.ty_of(v).has_slice() => {
                let l = self.by_ref_arg(like);
                let v = op(v);
                quote!(::fluxion::__private::broadcast_rows(#l, &#v))
            }
            Expr::Broadcast(like, v) if matches!(self.f.ty_of(like), Ty::Slice(_)) => {
                let l = self.by_ref_arg(like);
                let v = op(v);
                quote!(::fluxion::__private::broadcast_vec(#l, #v))
            }
            Expr::Broadcast(like, v) => {
                let l = self.by_ref_arg(like);
                let v = op(v);
                quote!(::fluxion::__private::broadcast(#l, #v))
            }
            // Lanes of a type only rustc knows (a call's result) under a lane mask.
            // (Also lanes of generators, which are no vector of floats.)
            Expr::Select(c, a, b)
                if matches!(self.f.ty_of(c), Ty::Lanes(_))
                    && !matches!(self.f.ty_of(a), Ty::Lanes(e) if *e != Ty::Rng) =>
            {
                let (c, a, b) = (op(c), op(a), op(b));
                quote!(::fluxion::__private::select_lanes(#c, #a, #b))
            }
            Expr::Select(c, a, b) => self.op_target(c).select(op(c), op(a), op(b)),
        }
    }

    fn prim(&self, p: Prim, xs: &[Operand]) -> TokenStream {
        let o: Vec<TokenStream> = xs.iter().map(|x| self.operand(x)).collect();
        // The sum of two adjoints of an array or tuple (a tuple parameter's array field
        // read twice): elementwise, through the runtime (`+` is not defined on arrays).
        if p == Prim::Add
            && xs
                .iter()
                .any(|x| matches!(self.f.ty_of(x), Ty::Array(..) | Ty::Tuple(_)))
        {
            let (a, b) = (self.owned(&xs[0]), self.owned(&xs[1]));
            return quote!(::fluxion::__private::add(#a, #b));
        }
        match xs.iter().find(|x| matches!(self.f.ty_of(x), Ty::Lanes(_))) {
            Some(x) => self.op_target(x).prim(p, &o),
            None => self.target.prim(p, &o),
        }
    }

    fn call(&self, c: &Call) -> TokenStream {
        let span = c.span.0;
        let prefix: Vec<TokenStream> = c
            .prefix
            .iter()
            .map(|s| {
                if s.is_empty() {
                    quote!()
                } else {
                    let i = raw_if_keyword(s, span);
                    quote_spanned!(span=> #i)
                }
            })
            .collect();
        let lead = if c.prefix.first().is_some_and(String::is_empty) {
            quote!(::)
        } else {
            quote!()
        };
        let prefix: Vec<TokenStream> = prefix.into_iter().filter(|t| !t.is_empty()).collect();
        let tf = c.turbofish.as_ref().map(|t| {
            let ts: TokenStream = t.parse().unwrap_or_default();
            quote!(::<#ts>)
        });
        let args = c.args.iter().map(|a| {
            let t = self.operand(&a.op);
            if a.by_mut {
                quote!(&mut #t)
            } else if matches!(self.f.ty_of(&a.op), Ty::Slice(_)) {
                // Slices are passed borrowed; a `Vec` (a tangent or cotangent) by `&`.
                self.by_ref_arg(&a.op)
            } else if a.by_ref {
                quote!(&#t)
            } else {
                self.owned(&a.op)
            }
        });
        if c.lanes {
            let h = holder_ident(&c.name, span);
            let m = Ident::new(&lanes_mode_name(&c.modes), span);
            quote_spanned!(span=> <#lead #(#prefix ::)* #h> :: #m #tf (#(#args),*))
        } else if c.modes.is_empty() {
            // The function itself, written raw if its name is a keyword (`r#match`).
            let n = raw_if_keyword(&c.name, span);
            quote!(#lead #(#prefix ::)* #n #tf (#(#args),*))
        } else {
            let h = holder_ident(&c.name, span);
            let m = Ident::new(&mode_name(&c.modes), span);
            // `<path::g>::mode(..)`: the holder type `g` beside the function `g`.
            quote_spanned!(span=> <#lead #(#prefix ::)* #h> :: #m #tf (#(#args),*))
        }
    }
}

/// Whether `p` is a slice passed borrowed: a `&[T]` parameter, or the tangent of one (not
/// a `&mut` accumulator or the caller's buffer).
fn is_slice_param(f: &Func, p: &Param) -> bool {
    matches!(p.ty, Ty::Slice(_)) && !matches!(f.vars[p.var].storage, Storage::OutParam | Storage::MutParam)
}

/// An identifier, written `r#name` when `name` is a keyword.
fn raw_if_keyword(name: &str, span: Span) -> Ident {
    if KEYWORDS.contains(&name) && !matches!(name, "crate" | "self" | "super" | "Self") {
        Ident::new_raw(name, span)
    } else {
        Ident::new(name, span)
    }
}

/// A function's generic parameters as `<..>` (empty without any) and its where clause.
pub fn generic_parts(generics: &syn::Generics) -> (TokenStream, Option<&syn::WhereClause>) {
    let params = &generics.params;
    let gen = if params.is_empty() { quote!() } else { quote!(<#params>) };
    (gen, generics.where_clause.as_ref())
}

/// `::<N, M>` for the generic parameters (const and type), empty without.
pub fn turbofish(generics: &syn::Generics) -> TokenStream {
    let args: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => {
                let i = &t.ident;
                Some(quote!(#i))
            }
            syn::GenericParam::Const(c) => {
                let i = &c.ident;
                Some(quote!(#i))
            }
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    if args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#args),*>)
    }
}

/// Tokens of a type.
pub fn ty_tokens(t: &Ty) -> TokenStream {
    match t {
        Ty::Float(Some(k)) => {
            let i = format_ident!("{}", k.name());
            quote!(#i)
        }
        Ty::Float(None) => quote!(f64),
        Ty::Int(Some(n)) => {
            let i = format_ident!("{}", n);
            quote!(#i)
        }
        Ty::Int(None) => quote!(usize),
        Ty::Bool => quote!(bool),
        Ty::Unit => quote!(()),
        Ty::Rng => quote!(::fluxion::__private::Rng),
        Ty::Array(e, n) => {
            let e = ty_tokens(e);
            let n = cexpr_tokens(n, false);
            quote!([#e; #n])
        }
        Ty::Slice(e) => {
            let e = ty_tokens(e);
            quote!(::fluxion::__private::Vec<#e>)
        }
        Ty::Matrix { elem, rows, cols } => {
            let e = ty_tokens(elem);
            match (rows, cols) {
                (Dim::Static(r), Dim::Static(c)) => {
                    let (r, c) = (const_arg_tokens(r), const_arg_tokens(c));
                    quote!(::nalgebra::SMatrix<#e, #r, #c>)
                }
                (Dim::Dynamic, c) if c.is_one() => quote!(::nalgebra::DVector<#e>),
                (Dim::Dynamic, Dim::Dynamic) => quote!(::nalgebra::DMatrix<#e>),
                (r, c) => {
                    let (r, c) = (nalgebra_dim(r), nalgebra_dim(c));
                    quote!(::nalgebra::OMatrix<#e, #r, #c>)
                }
            }
        }
        Ty::Tuple(ts) => {
            let ts: Vec<_> = ts.iter().map(ty_tokens).collect();
            if ts.len() == 1 {
                let t = &ts[0];
                quote!((#t,))
            } else {
                quote!((#(#ts),*))
            }
        }
        Ty::Unknown => quote!(_),
        // The lane type is the kernel's (`LaneTarget`).
        Ty::Lanes(_) => quote!(_),
        Ty::Tape(t) => match &**t {
            Ty::Array(e, len) => {
                let et = ty_tokens(e);
                let len = cexpr_tokens(len, true);
                quote!(<::fluxion::__private::Tape<{ #len * ::core::mem::size_of::<#et>() > ::fluxion::__private::TAPE_STACK_BYTES }> as ::fluxion::__private::TapeStorage<#et, { #len }>>::Store)
            }
            t => ty_tokens(t),
        },
    }
}

pub(crate) fn zeros_tokens(t: &Ty) -> TokenStream {
    match t {
        Ty::Float(_) => quote!(0.0),
        Ty::Int(_) => quote!(0),
        Ty::Bool => quote!(false),
        Ty::Unit => quote!(()),
        // A placeholder for the slots of a tape of generators, each written before it is read.
        Ty::Rng => quote!(::fluxion::__private::Rng::new(0)),
        Ty::Array(e, n) => {
            let e = zeros_tokens(e);
            let n = cexpr_tokens(n, false);
            quote!([#e; #n])
        }
        // An empty `Vec` (a growing tape); a zero of a slice's length is `zero_vec(xs)`.
        Ty::Slice(_) => quote!(::fluxion::__private::Vec::new()),
        Ty::Matrix { .. } if t.layout() == Layout::NalgebraStatic => {
            let t = ty_tokens(t);
            quote!(<#t>::zeros())
        }
        // The transforms take the zero of a dynamic matrix from a value of it
        // (`Expr::ZeroLike`): its size is known only at run time.
        Ty::Matrix { .. } => {
            let msg = format!("fluxion cannot write a zero `{t}` without a value to take its size from");
            quote!(::core::compile_error!(#msg))
        }
        Ty::Tuple(ts) => {
            let ts: Vec<_> = ts.iter().map(zeros_tokens).collect();
            if ts.len() == 1 {
                let t = &ts[0];
                quote!((#t,))
            } else {
                quote!((#(#ts),*))
            }
        }
        Ty::Unknown => quote!(::fluxion::__private::zero()),
        Ty::Tape(t) => zeros_tokens(t),
        Ty::Lanes(_) => quote!(::core::compile_error!("fluxion: lanes outside a batched kernel")),
    }
}

/// Sets the caller's buffer `place` of type `t` to zero in place: through the runtime's
/// `FillZero` for floats, arrays and tuples of them; a type holding a nalgebra matrix (which
/// the runtime does not know) is assigned its zero.
fn fill_zero_tokens(place: TokenStream, t: &Ty) -> TokenStream {
    if t.has_matrix() && t.is_known() {
        let z = zeros_tokens(t);
        quote!(#place = #z;)
    } else {
        quote!(::fluxion::__private::fill_zero(&mut #place);)
    }
}

/// `target += val` for a value of type `t`: `+=` on scalars and nalgebra matrices, the
/// runtime's `acc` on arrays and tuples of scalars, and element by element (field by
/// field) where an array or tuple holds matrices.
fn acc_tokens(target: TokenStream, val: TokenStream, t: &Ty) -> TokenStream {
    match t {
        Ty::Float(_) | Ty::Int(_) | Ty::Matrix { .. } | Ty::Lanes(_) => quote!(#target += #val;),
        Ty::Slice(_) => quote!(::fluxion::__private::acc_slice(&mut #target, &#val);),
        Ty::Array(e, _) if e.has_matrix() || e.has_lanes() => {
            let inner = acc_tokens(quote!(*__fluxion_acc), quote!(__fluxion_val), e);
            quote!(for (__fluxion_acc, __fluxion_val) in (#target).iter_mut().zip(#val) { #inner })
        }
        Ty::Tuple(ts) if t.has_matrix() || t.has_lanes() => ts
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let k = proc_macro2::Literal::usize_unsuffixed(k);
                acc_tokens(quote!((#target).#k), quote!((#val).#k), t)
            })
            .collect(),
        _ => quote!(::fluxion::__private::acc(&mut #target, #val);),
    }
}

/// A nalgebra dimension type: `::nalgebra::Const<N>` or `::nalgebra::Dyn`.
fn nalgebra_dim(d: &Dim) -> TokenStream {
    match d {
        Dim::Static(c) => {
            let c = const_arg_tokens(c);
            quote!(::nalgebra::Const<#c>)
        }
        Dim::Dynamic => quote!(::nalgebra::Dyn),
    }
}

/// A constant as a const generic argument: `N`, `3`, or `{ N + 1 }`.
fn const_arg_tokens(c: &CExpr) -> TokenStream {
    let t = cexpr_tokens(c, false);
    match c {
        CExpr::Lit(_) | CExpr::Path(_) => t,
        _ => quote!({ #t }),
    }
}

/// An operator's tokens (`+`, `-`, ..): a joint punctuation sequence.
fn punct(op: &str) -> TokenStream {
    let n = op.chars().count();
    op.chars()
        .enumerate()
        .map(|(k, c)| {
            let spacing = if k + 1 < n {
                proc_macro2::Spacing::Joint
            } else {
                proc_macro2::Spacing::Alone
            };
            proc_macro2::TokenTree::Punct(proc_macro2::Punct::new(c, spacing))
        })
        .collect()
}

/// Tokens of a constant expression (`wrap`: parenthesise compound expressions).
pub fn cexpr_tokens(c: &CExpr, wrap: bool) -> TokenStream {
    let t: TokenStream = c.to_string().parse().unwrap_or_default();
    if wrap && matches!(c, CExpr::Bin(..)) {
        quote!((#t))
    } else {
        t
    }
}

/// Reports which names the emitter gave (for debugging output).
pub fn names_of(f: &Func) -> HashMap<VarId, String> {
    let n = Names::new(f);
    (0..f.vars.len()).map(|v| (v, n.names[v].clone())).collect()
}
