//! Check and lower: a `syn::ItemFn` to an IR [`Func`], reporting every unsupported
//! construct on its own span with a hint.
//!
//! This file holds the entry point and the lowerer's state (scopes, the current block,
//! errors); `types.rs` the signature, types and constant expressions, `control.rs` blocks,
//! `return`, `if` and `for`, `stmt.rs` `let`, assignments and places, `expr.rs`
//! expressions, operators, methods and calls.

use std::collections::{HashMap, HashSet};

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::error::Ctxt;
pub use crate::ir::infer_ty;
use crate::ir::*;

mod control;
mod expr;
mod stmt;
mod tensor;
mod types;

use control::*;
pub(crate) use types::{is_nalgebra_alias, nalgebra_alias_shape};

/// Lowers a function. Errors go to `cx`; `None` if any was found.
pub fn lower_fn(item: &syn::ItemFn, cx: &mut Ctxt) -> Option<Func> {
    lower_fn_with(item, cx, &NalgebraArrays::default())
}

/// Parameters that are nalgebra values passed as arrays (the leaves of a parameter
/// struct, see `crate::structs`): `vectors` are `[T; N]`, `columns` are `[[T; R]; C]`
/// (nalgebra's column-major storage, `data.0`), read `m[(i, j)]` as `m[j][i]`.
#[derive(Clone, Debug, Default)]
pub struct NalgebraArrays {
    /// Vectors as `[T; N]`.
    pub vectors: Vec<String>,
    /// Matrices as their columns.
    pub columns: Vec<String>,
}

/// [`lower_fn`], with the parameters that hold nalgebra values as arrays.
pub fn lower_fn_with(item: &syn::ItemFn, cx: &mut Ctxt, arrays: &NalgebraArrays) -> Option<Func> {
    let mut lw = Lowerer {
        cx,
        func: Func {
            name: syn::ext::IdentExt::unraw(&item.sig.ident).to_string(),
            vars: Vec::new(),
            params: Vec::new(),
            body: Block::default(),
            ret: Operand::Unit,
            ret_ty: Ty::Unit,
            const_generics: Vec::new(),
            row_tasks: Vec::new(),
            draws: Vec::new(),
        },
        scopes: vec![HashMap::new()],
        loop_vars: Vec::new(),
        blocks: vec![Vec::new()],
        ret_var: None,
        loop_depth: 0,
        failed: false,
        poisoned: HashSet::new(),
        tensors: HashSet::new(),
        columns: HashSet::new(),
        type_generics: Vec::new(),
    };
    lw.signature(&item.sig);
    for p in lw.func.params.clone() {
        let name = lw.func.vars[p.var].name.clone();
        if arrays.vectors.contains(&name) || arrays.columns.contains(&name) {
            lw.tensors.insert(p.var);
        }
        if arrays.columns.contains(&name) {
            lw.columns.insert(p.var);
        }
    }
    let mut ret_ty = Ty::Unit;
    match &item.sig.output {
        syn::ReturnType::Default => lw.err(
            &item.sig.ident,
            format!("`{}` returns nothing: a differentiated function must return f64, f32, a fixed array or a tuple of these", item.sig.ident),
        ),
        syn::ReturnType::Type(_, ty) => {
            // `Vec<T>` of floats: a vector built in the body (`vec![0.0; xs.len()]`).
            let owned_vec = matches!(&**ty, syn::Type::Path(_))
                .then(|| types::slice_elem(ty))
                .flatten()
                .map(|e| lw.value_ty(e).map(|e| (Ty::Slice(Box::new(e)), false)));
            if let Some(Some((t, _))) = &owned_vec {
                if !matches!(t, Ty::Slice(e) if matches!(**e, Ty::Float(_))) {
                    lw.err(ty, "a function can return a `Vec` of floats only (`Vec<f64>`, `Vec<f32>`): return a fixed-size array `[f64; N]` for other elements");
                }
            }
            if let Some(owned) = owned_vec {
                if let Some((t, _)) = owned {
                    ret_ty = t;
                }
            } else if let Some((t, by_ref)) = lw.ty(ty) {
                if by_ref && matches!(t, Ty::Slice(_)) {
                    lw.err(ty, "a differentiated function cannot return a slice: its length is known only at run time; return a fixed-size array `[f64; N]`, or a scalar computed from the slice");
                } else if by_ref {
                    lw.err(ty, "a differentiated function cannot return a reference: return the value");
                }
                ret_ty = t;
            }
        }
    }
    lw.func.ret_ty = ret_ty;
    if has_early_return(&item.block) {
        let ty = lw.func.ret_ty.clone();
        let v = lw.func.new_var("ret", ty, true);
        lw.push(Stmt::Mut(v, None));
        lw.ret_var = Some(v);
    }
    let end = lw.block_stmts(&item.block.stmts, true);
    match end {
        End::Value(Some(op)) => {
            // A nalgebra result computed in the body: its elements into the result's type.
            let op = lw.tensor_result(op);
            if let Some(r) = lw.ret_var {
                lw.push(Stmt::Assign(Place { var: r, idx: vec![] }, AssignOp::Set, op));
            } else {
                lw.func.ret = op;
            }
        }
        End::Value(None) => {
            // A failed tail expression also ends up here: report only the real error.
            if lw.ret_var.is_none() && !lw.failed {
                match item.block.stmts.last() {
                    Some(syn::Stmt::Expr(_, Some(semi))) => lw.err(
                        semi,
                        "the body has no final value: remove this `;` to return the expression before it",
                    ),
                    _ => lw.err_at(
                        item.block.brace_token.span.close(),
                        "the body has no final value: end it with the value to return",
                    ),
                }
            }
        }
        End::Diverges => {}
    }
    if let Some(r) = lw.ret_var {
        let ty = lw.func.ret_ty.clone();
        lw.func.ret = lw.let_named(Expr::Use(Operand::Var(r)), "out", Some(ty));
    }
    let body = lw.blocks.pop().unwrap_or_default();
    lw.func.body = Block(body);
    refine_float_kinds(&mut lw.func);
    if lw.failed {
        None
    } else {
        Some(lw.func)
    }
}

enum End {
    Value(Option<Operand>),
    Diverges,
}

struct Lowerer<'a> {
    cx: &'a mut Ctxt,
    func: Func,
    scopes: Vec<HashMap<String, VarId>>,
    /// Loop variables (for the hint on triangular loop bounds).
    loop_vars: Vec<VarId>,
    blocks: Vec<Vec<Stmt>>,
    ret_var: Option<VarId>,
    loop_depth: usize,
    failed: bool,
    /// Names whose definition already had an error: their uses are skipped silently, so
    /// that one mistake gives one error.
    poisoned: HashSet<VarId>,
    /// The function's generic type parameters (already reported).
    type_generics: Vec<String>,
    /// Arrays holding nalgebra values computed in the body (see `tensor.rs`).
    tensors: HashSet<VarId>,
    /// Parameters holding nalgebra matrices as their columns, `[[T; R]; C]`.
    columns: HashSet<VarId>,
}

/// The end of a "not differentiable" message: every method of the rule table.
fn supported_methods() -> String {
    format!(
        "supported are the float methods {} sin_cos and `.iter().sum()`",
        Prim::methods()
    )
}

const UNSUPPORTED_TYPE_HINT: &str =
    "fluxion differentiates f64, f32, fixed arrays `[f64; N]` and tuples of these; integers are passed through";

fn ir_ty_text(t: &Ty) -> String {
    t.to_string()
}

fn path_string(p: &syn::Path) -> String {
    let mut s = String::new();
    if p.leading_colon.is_some() {
        s.push_str("::");
    }
    let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
    s.push_str(&segs.join("::"));
    s
}

/// A type as the user would write it (`Vec<f64>`, not `Vec < f64 >`).
fn ty_text(t: &syn::Type) -> String {
    let s = t.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" :: ", "::")
        .replace(" ,", ",")
        .replace("& ", "&")
        .replace(" ;", ";")
}

pub(crate) fn is_complex_name(n: &str) -> bool {
    matches!(n, "Complex" | "Complex32" | "Complex64" | "c32" | "c64" | "Cplx")
}

pub(crate) const INT_TYPES: [&str; 12] = [
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
];

impl Lowerer<'_> {
    fn err<T: ToTokens>(&mut self, t: T, msg: impl std::fmt::Display) {
        self.failed = true;
        self.cx.error_spanned_by(t, msg);
    }
    fn err_at(&mut self, span: proc_macro2::Span, msg: impl std::fmt::Display) {
        self.failed = true;
        self.cx.push(syn::Error::new(span, msg));
    }
    fn push(&mut self, s: Stmt) {
        if let Some(b) = self.blocks.last_mut() {
            b.push(s);
        }
    }
    fn lookup(&self, name: &str) -> Option<VarId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }
    fn bind(&mut self, name: &str, v: VarId) {
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), v);
        }
    }
    fn let_named(&mut self, e: Expr, name: &str, ty: Option<Ty>) -> Operand {
        let ty = ty.unwrap_or_else(|| infer_ty(&self.func, &e));
        let v = self.func.new_var(name, ty, false);
        self.push(Stmt::Let(v, e));
        Operand::Var(v)
    }
    fn let_(&mut self, e: Expr) -> Operand {
        self.let_named(e, "t", None)
    }
    /// Binds `name` to a variable whose definition failed (see `poisoned`).
    fn bind_poisoned(&mut self, name: &str) {
        let v = self.func.new_var(name, Ty::Unknown, true);
        self.poisoned.insert(v);
        self.bind(name, v);
    }
    /// Binds every name of a pattern as poisoned.
    fn poison_pat(&mut self, p: &syn::Pat) {
        match p {
            syn::Pat::Ident(pi) => self.bind_poisoned(&pi.ident.to_string()),
            syn::Pat::Type(pt) => self.poison_pat(&pt.pat),
            syn::Pat::Tuple(t) => t.elems.iter().for_each(|q| self.poison_pat(q)),
            syn::Pat::TupleStruct(t) => t.elems.iter().for_each(|q| self.poison_pat(q)),
            syn::Pat::Slice(t) => t.elems.iter().for_each(|q| self.poison_pat(q)),
            syn::Pat::Reference(r) => self.poison_pat(&r.pat),
            syn::Pat::Paren(q) => self.poison_pat(&q.pat),
            _ => {}
        }
    }

    // ---- signature -------------------------------------------------------------------
}
