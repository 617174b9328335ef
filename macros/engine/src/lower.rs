//! Check and lower: a `syn::ItemFn` to an IR [`Func`], reporting every unsupported
//! construct on its own span with a hint.

use std::collections::{HashMap, HashSet};

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::error::Ctxt;
pub use crate::ir::infer_ty;
use crate::ir::*;

/// Lowers a function. Errors go to `cx`; `None` if any was found.
pub fn lower_fn(item: &syn::ItemFn, cx: &mut Ctxt) -> Option<Func> {
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
        },
        scopes: vec![HashMap::new()],
        loop_vars: Vec::new(),
        blocks: vec![Vec::new()],
        ret_var: None,
        loop_depth: 0,
        failed: false,
        poisoned: HashSet::new(),
        type_generics: Vec::new(),
    };
    lw.signature(&item.sig);
    let mut ret_ty = Ty::Unit;
    match &item.sig.output {
        syn::ReturnType::Default => lw.err(
            &item.sig.ident,
            format!("`{}` returns nothing: a differentiated function must return f64, f32, a fixed array or a tuple of these", item.sig.ident),
        ),
        syn::ReturnType::Type(_, ty) => {
            if let Some((t, by_ref)) = lw.ty(ty) {
                if by_ref {
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
    if lw.failed {
        None
    } else {
        Some(lw.func)
    }
}

/// An item's keyword and name (`const SCALE`), or the whole item.
fn item_head(it: &syn::Item) -> proc_macro2::TokenStream {
    use quote::quote;
    match it {
        syn::Item::Const(i) => {
            let (k, n) = (i.const_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Static(i) => {
            let (k, n) = (i.static_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Fn(i) => {
            let (k, n) = (i.sig.fn_token, &i.sig.ident);
            quote!(#k #n)
        }
        syn::Item::Struct(i) => {
            let (k, n) = (i.struct_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Enum(i) => {
            let (k, n) = (i.enum_token, &i.ident);
            quote!(#k #n)
        }
        other => other.to_token_stream(),
    }
}

fn has_early_return(b: &syn::Block) -> bool {
    struct V(usize);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
            self.0 += 1;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(0);
    // A single `return e;` as the last statement is an ordinary tail.
    let (init, last) = match b.stmts.split_last() {
        Some((last, init)) => (init, Some(last)),
        None => (&b.stmts[..], None),
    };
    for s in init {
        v.visit_stmt(s);
    }
    if let Some(last) = last {
        match last {
            syn::Stmt::Expr(syn::Expr::Return(r), _) => {
                if let Some(e) = &r.expr {
                    v.visit_expr(e)
                }
            }
            s => v.visit_stmt(s),
        }
    }
    v.0 > 0
}

/// The first `return` token in `e` (outside closures and items).
/// Whether a block's tail expression gives a value (`if`/`for`/assignments at the end of
/// a block are statements of type `()`).
fn has_value(e: &syn::Expr) -> bool {
    fn block_has_value(b: &syn::Block) -> bool {
        matches!(b.stmts.last(), Some(syn::Stmt::Expr(e, None)) if has_value(e))
    }
    match e {
        syn::Expr::If(i) => {
            block_has_value(&i.then_branch)
                || i.else_branch.as_ref().is_some_and(|(_, e)| match &**e {
                    syn::Expr::Block(b) => block_has_value(&b.block),
                    other => has_value(other),
                })
        }
        syn::Expr::Block(b) => block_has_value(&b.block),
        syn::Expr::ForLoop(_) | syn::Expr::While(_) | syn::Expr::Assign(_) => false,
        syn::Expr::Binary(b) => !matches!(
            b.op,
            syn::BinOp::AddAssign(_)
                | syn::BinOp::SubAssign(_)
                | syn::BinOp::MulAssign(_)
                | syn::BinOp::DivAssign(_)
                | syn::BinOp::RemAssign(_)
        ),
        _ => true,
    }
}

fn first_return(e: &syn::Expr) -> Option<syn::token::Return> {
    struct V(Option<syn::token::Return>);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
            self.0.get_or_insert(r.return_token);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(None);
    v.visit_expr(e);
    v.0
}

/// Whether statements end every path with `return`.
fn stmts_diverge(stmts: &[syn::Stmt]) -> bool {
    match stmts.last() {
        Some(syn::Stmt::Expr(e, _)) => expr_diverges(e),
        _ => false,
    }
}

fn expr_diverges(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Return(_) => true,
        syn::Expr::Block(b) => stmts_diverge(&b.block.stmts),
        syn::Expr::If(i) => {
            stmts_diverge(&i.then_branch.stmts) && i.else_branch.as_ref().is_some_and(|(_, e)| expr_diverges(e))
        }
        _ => false,
    }
}

fn first_return_stmt(s: &syn::Stmt) -> Option<syn::token::Return> {
    match s {
        syn::Stmt::Expr(e, _) => first_return(e),
        syn::Stmt::Local(l) => l.init.as_ref().and_then(|i| first_return(&i.expr)),
        _ => None,
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

fn is_complex_name(n: &str) -> bool {
    matches!(n, "Complex" | "Complex32" | "Complex64" | "c32" | "c64" | "Cplx")
}

const INT_TYPES: [&str; 12] = [
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

    fn signature(&mut self, sig: &syn::Signature) {
        if let Some(t) = &sig.asyncness {
            self.err(t, "`async fn` cannot be differentiated: remove `async`");
        }
        if let Some(t) = &sig.unsafety {
            self.err(t, "`unsafe fn` cannot be differentiated: remove `unsafe`");
        }
        for g in &sig.generics.params {
            match g {
                syn::GenericParam::Const(c) => self.func.const_generics.push(c.ident.to_string()),
                syn::GenericParam::Lifetime(_) => {}
                syn::GenericParam::Type(t) => {
                    self.type_generics.push(t.ident.to_string());
                    self.err(
                        &t.ident,
                        format!("generic type parameter `{}` is not supported: write f64 or f32 (const generics such as `const N: usize` are)", t.ident),
                    )
                }
            }
        }
        for input in &sig.inputs {
            match input {
                syn::FnArg::Receiver(r) => {
                    self.err(
                        r,
                        "methods with `self` are not supported: write a free function taking the values it needs",
                    );
                    self.bind_poisoned("self");
                }
                syn::FnArg::Typed(pt) => {
                    let (name, mutable) = match &*pt.pat {
                        syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                            (pi.ident.to_string(), pi.mutability.is_some())
                        }
                        syn::Pat::Wild(_) => ("_unused".to_string(), false),
                        p => {
                            self.err(
                                p,
                                "patterns in parameters are not supported: bind the parameter to a name",
                            );
                            self.poison_pat(p);
                            continue;
                        }
                    };
                    let Some((ty, by_ref)) = self.ty(&pt.ty) else {
                        self.bind_poisoned(&name);
                        continue;
                    };
                    let v = self.func.new_var(name.clone(), ty.clone(), false);
                    self.func.params.push(Param {
                        var: v,
                        ty: ty.clone(),
                        by_ref,
                        span: SrcSpan(pt.ty.span()),
                    });
                    if mutable {
                        if by_ref {
                            self.err(&pt.pat, "`mut` on a reference parameter is not supported");
                            continue;
                        }
                        let m = self.func.new_var(name.clone(), ty, true);
                        self.push(Stmt::Mut(m, Some(Expr::Use(Operand::Var(v)))));
                        self.bind(&name, m);
                    } else {
                        self.bind(&name, v);
                    }
                }
            }
        }
    }

    /// A type, and whether it was behind a shared reference.
    fn ty(&mut self, t: &syn::Type) -> Option<(Ty, bool)> {
        match t {
            syn::Type::Reference(r) => {
                if let Some(m) = &r.mutability {
                    self.err(
                        m,
                        "`&mut` parameters are not supported: take the value and return the result",
                    );
                    return None;
                }
                if let syn::Type::Reference(_) = &*r.elem {
                    self.err(t, "references to references are not supported");
                    return None;
                }
                self.ty(&r.elem).map(|(t, _)| (t, true))
            }
            other => self.value_ty(other).map(|t| (t, false)),
        }
    }

    fn value_ty(&mut self, t: &syn::Type) -> Option<Ty> {
        match t {
            syn::Type::Path(p) if p.qself.is_none() => {
                let last = p.path.segments.last()?;
                let name = last.ident.to_string();
                if p.path.segments.len() == 1 {
                    match name.as_str() {
                        "f64" => return Some(Ty::Float(Some(FloatTy::F64))),
                        "f32" => return Some(Ty::Float(Some(FloatTy::F32))),
                        "bool" => return Some(Ty::Bool),
                        n if INT_TYPES.contains(&n) => return Some(Ty::Int(Some(name))),
                        _ => {}
                    }
                }
                if p.path.segments.len() == 1 && self.type_generics.contains(&name) {
                    // Already reported on the generic parameter itself.
                    self.failed = true;
                    return None;
                }
                if name == "Vec" {
                    self.err(t, format!("`{}` is not supported: use a fixed-size array `[f64; N]` (a const generic `N` takes any length)", ty_text(t)));
                    return None;
                }
                if is_complex_name(&name) {
                    self.err(
                        t,
                        format!("complex numbers are not supported: `{}` has no real derivative here; split it into real and imaginary parts", name),
                    );
                } else {
                    self.err(t, format!("unsupported type `{}`: {UNSUPPORTED_TYPE_HINT}", ty_text(t)));
                }
                None
            }
            syn::Type::Array(a) => {
                let elem = self.value_ty(&a.elem)?;
                let len = self.cexpr(&a.len)?;
                Some(Ty::Array(Box::new(elem), len))
            }
            syn::Type::Tuple(tt) => {
                if tt.elems.is_empty() {
                    return Some(Ty::Unit);
                }
                let mut out = Vec::new();
                for e in &tt.elems {
                    out.push(self.value_ty(e)?);
                }
                Some(Ty::Tuple(out))
            }
            syn::Type::Paren(p) => self.value_ty(&p.elem),
            syn::Type::Slice(_) => {
                self.err(t, "slices are not supported: use a fixed-size array `[f64; N]`");
                None
            }
            _ => {
                self.err(t, format!("unsupported type `{}`: {UNSUPPORTED_TYPE_HINT}", ty_text(t)));
                None
            }
        }
    }

    /// A compile-time integer expression (array length, loop bound).
    fn cexpr(&mut self, e: &syn::Expr) -> Option<CExpr> {
        match e {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i), ..
            }) => match i.base10_parse::<i128>() {
                Ok(v) => Some(CExpr::Lit(v)),
                Err(err) => {
                    self.failed = true;
                    self.cx.push(err);
                    None
                }
            },
            syn::Expr::Path(p) if p.qself.is_none() => {
                let s = path_string(&p.path);
                if p.path.segments.len() == 1 {
                    if let Some(v) = self.lookup(&s) {
                        // A bound from an outer loop's index: the triangular loops of pair
                        // potentials, written over the full range with a test.
                        let hint = if self.loop_vars.contains(&v) {
                            format!("; for a triangular loop such as `for j in {s} + 1..N`, loop over the full range and test the index: `for j in 0..N {{ if j > {s} {{ .. }} }}`")
                        } else {
                            String::new()
                        };
                        self.err(
                            e,
                            format!("`{s}` is a variable: loop bounds and array lengths must be constants (literals, `const` items or const generics){hint}"),
                        );
                        return None;
                    }
                }
                Some(CExpr::Path(s))
            }
            syn::Expr::Paren(p) => self.cexpr(&p.expr),
            syn::Expr::Group(g) => self.cexpr(&g.expr),
            // `-2`, `-K`
            syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => match self.cexpr(&u.expr)? {
                CExpr::Lit(v) => Some(CExpr::Lit(-v)),
                c => Some(CExpr::Bin('-', Box::new(CExpr::Lit(0)), Box::new(c))),
            },
            syn::Expr::Block(b) if b.block.stmts.len() == 1 => match &b.block.stmts[0] {
                syn::Stmt::Expr(e, None) => self.cexpr(e),
                st => {
                    self.err(
                        st,
                        "expected a constant: a literal, a `const` item, a const generic, or `+ - * / %` of these; for anything else define a `const` and use its name",
                    );
                    None
                }
            },
            syn::Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::Add(_) => '+',
                    syn::BinOp::Sub(_) => '-',
                    syn::BinOp::Mul(_) => '*',
                    syn::BinOp::Div(_) => '/',
                    syn::BinOp::Rem(_) => '%',
                    _ => {
                        self.err(b.op, "only `+ - * / %` are supported in constant expressions");
                        return None;
                    }
                };
                let l = self.cexpr(&b.left)?;
                let r = self.cexpr(&b.right)?;
                Some(CExpr::Bin(op, Box::new(l), Box::new(r)))
            }
            _ => {
                self.err(
                    e,
                    "expected a constant: a literal, a `const` item, a const generic, or `+ - * / %` of these",
                );
                None
            }
        }
    }

    // ---- blocks and statements ---------------------------------------------------------

    /// Lowers statements into the current IR block. `fctx`: this block's value is the
    /// function's result, so `return` is allowed.
    fn block_stmts(&mut self, stmts: &[syn::Stmt], fctx: bool) -> End {
        for (k, st) in stmts.iter().enumerate() {
            let last = k + 1 == stmts.len();
            match st {
                syn::Stmt::Local(l) => self.local(l),
                syn::Stmt::Item(it) => self.err(item_head(it), "items inside a differentiated function are not supported: move them outside"),
                syn::Stmt::Macro(m) => self.err(
                    &m.mac.path,
                    "macros are not supported inside a differentiated function: compute the value with ordinary expressions",
                ),
                syn::Stmt::Expr(e, semi) => {
                    if let syn::Expr::Return(r) = e {
                        return self.ret(r, fctx);
                    }
                    if let syn::Expr::If(i) = e {
                        if let Some(ret) = first_return(e) {
                            if !fctx || self.loop_depth > 0 {
                                self.err(ret, self.return_msg());
                                return End::Diverges;
                            }
                            return self.if_with_return(i, &stmts[k + 1..]);
                        }
                    }
                    if last && semi.is_none() && has_value(e) {
                        let v = self.expr(e);
                        return End::Value(v);
                    }
                    self.stmt_expr(e);
                }
            }
        }
        End::Value(None)
    }

    /// Why a `return` here is not supported.
    fn return_msg(&self) -> &'static str {
        if self.loop_depth > 0 {
            "`return` inside a loop is not supported: loops run over their whole range; keep the result in a `let mut` variable and return it after the loop"
        } else {
            "an early `return` is only supported as a statement of the function body or of an `if` branch there: restructure as `if`/`else`"
        }
    }

    fn ret(&mut self, r: &syn::ExprReturn, fctx: bool) -> End {
        if !fctx || self.loop_depth > 0 {
            self.err(r.return_token, self.return_msg());
            return End::Diverges;
        }
        let Some(e) = &r.expr else {
            self.err(r.return_token, "`return` needs a value here");
            return End::Diverges;
        };
        let Some(op) = self.expr(e) else { return End::Diverges };
        match self.ret_var {
            Some(rv) => {
                self.push(Stmt::Assign(Place { var: rv, idx: vec![] }, AssignOp::Set, op));
                End::Diverges
            }
            None => End::Value(Some(op)),
        }
    }

    /// `if c { ..; return a; } rest` becomes `if c { ..; ret = a } else { rest }`.
    /// An `if` statement containing `return`, followed by `rest`: a branch that ends every
    /// path with `return` assigns the result; the other branch continues with `rest`
    /// (`if c { ..; return a; } rest` becomes `if c { ..; ret = a } else { rest }`). The
    /// continuing branch's own bindings are scoped to it; its tail value, when `rest`
    /// follows, is discarded like any statement's.
    fn if_with_return(&mut self, i: &syn::ExprIf, rest: &[syn::Stmt]) -> End {
        let else_stmts: Vec<syn::Stmt> = match &i.else_branch {
            None => Vec::new(),
            Some((_, e)) => match &**e {
                syn::Expr::Block(b) => b.block.stmts.clone(),
                other => vec![syn::Stmt::Expr(other.clone(), None)],
            },
        };
        let then_div = stmts_diverge(&i.then_branch.stmts);
        let else_div = stmts_diverge(&else_stmts);
        // A branch that returns on some paths only cannot be continued: say so on its `return`.
        for (stmts, div) in [(&i.then_branch.stmts, then_div), (&else_stmts, else_div)] {
            if div {
                continue;
            }
            if let Some(r) = stmts.iter().find_map(first_return_stmt) {
                self.err(
                    r,
                    "a branch that contains `return` must end with `return` on every path: restructure as `if`/`else`",
                );
                return End::Diverges;
            }
        }
        let Some(c) = self.expr(&i.cond) else {
            return End::Diverges;
        };
        let branch = |lw: &mut Self, stmts: &[syn::Stmt], div: bool| -> (Block, bool) {
            let lowered = lw.sub_block(|lw| {
                if div || rest.is_empty() {
                    return lw.block_stmts(stmts, true);
                }
                lw.scopes.push(HashMap::new());
                lw.block_stmts(stmts, false);
                lw.scopes.pop();
                lw.block_stmts(rest, true)
            });
            lw.finish_branch(lowered)
        };
        let (then_b, t_done) = branch(self, &i.then_branch.stmts, then_div);
        let (else_b, e_done) = branch(self, &else_stmts, else_div);
        self.push(Stmt::If(c, then_b, else_b));
        if t_done && e_done {
            End::Diverges
        } else {
            End::Value(None)
        }
    }

    fn sub_block(&mut self, f: impl FnOnce(&mut Self) -> End) -> (Vec<Stmt>, End) {
        self.scopes.push(HashMap::new());
        self.blocks.push(Vec::new());
        let end = f(self);
        let b = self.blocks.pop().unwrap_or_default();
        self.scopes.pop();
        (b, end)
    }

    /// Closes a function-context branch: a fallthrough value is assigned to the result.
    fn finish_branch(&mut self, (mut b, end): (Vec<Stmt>, End)) -> (Block, bool) {
        match end {
            End::Diverges => (Block(b), true),
            End::Value(Some(op)) => match self.ret_var {
                Some(rv) => {
                    b.push(Stmt::Assign(Place { var: rv, idx: vec![] }, AssignOp::Set, op));
                    (Block(b), true)
                }
                None => (Block(b), false),
            },
            End::Value(None) => (Block(b), false),
        }
    }

    fn local(&mut self, l: &syn::Local) {
        let Some(init) = &l.init else {
            self.err(
                l,
                "`let` without a value is not supported: give the variable its value where it is declared",
            );
            self.poison_pat(&l.pat);
            return;
        };
        if let Some((else_token, _)) = &init.diverge {
            self.err(
                else_token,
                "`let ... else` is not supported: bind the value with a plain `let` and branch with `if`/`else`",
            );
            self.poison_pat(&l.pat);
            return;
        }
        let (pat, annot) = match &l.pat {
            syn::Pat::Type(pt) => (&*pt.pat, self.value_ty(&pt.ty)),
            p => (p, None),
        };
        match pat {
            syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                let name = pi.ident.to_string();
                let Some(op) = self.expr(&init.expr) else {
                    self.bind_poisoned(&name);
                    return;
                };
                let annotated = annot.as_ref().is_some_and(Ty::is_known);
                if pi.mutability.is_some() {
                    // `let mut v = <expr>;`: fold a fresh temporary into the declaration.
                    let ty = annot.unwrap_or_else(|| self.func.ty_of(&op));
                    let v = self.func.new_var(name.clone(), ty, true);
                    self.func.vars[v].annotated = annotated;
                    let init_expr = self.take_last_let(&op).unwrap_or(Expr::Use(op));
                    self.push(Stmt::Mut(v, Some(init_expr)));
                    self.bind(&name, v);
                } else {
                    match op {
                        Operand::Var(v) if self.is_fresh_temp(v) => {
                            self.func.vars[v].name = name.clone();
                            if let Some(t) = annot {
                                self.func.vars[v].ty = t;
                            }
                            self.func.vars[v].annotated = annotated;
                            self.bind(&name, v);
                        }
                        op => {
                            let o = self.let_named(Expr::Use(op), &name, annot);
                            if let Some(v) = o.var() {
                                self.func.vars[v].annotated = annotated;
                                self.bind(&name, v);
                            }
                        }
                    }
                }
            }
            syn::Pat::Tuple(pt) => {
                let Some(op) = self.expr(&init.expr) else {
                    self.poison_pat(pat);
                    return;
                };
                let ty = self.func.ty_of(&op);
                match &ty {
                    Ty::Unknown => {
                        if let Some(v) = op.var() {
                            self.func.vars[v].ty = Ty::Tuple(vec![Ty::Unknown; pt.elems.len()]);
                        }
                    }
                    Ty::Tuple(ts) if ts.len() == pt.elems.len() => {}
                    Ty::Array(..) => {
                        self.poison_pat(pat);
                        return self.err(
                            pat,
                            format!(
                                "this value is an array (`{}`), not a tuple: destructure it with `let [a, b, ..] = ..`",
                                ir_ty_text(&ty)
                            ),
                        );
                    }
                    _ => {
                        self.poison_pat(pat);
                        return self.err(
                            pat,
                            format!(
                                "this pattern has {} names but the value is `{}`",
                                pt.elems.len(),
                                ir_ty_text(&ty)
                            ),
                        );
                    }
                }
                for (k, p) in pt.elems.iter().enumerate() {
                    match p {
                        syn::Pat::Ident(pi) if pi.mutability.is_none() && pi.by_ref.is_none() => {
                            let name = pi.ident.to_string();
                            let o = self.let_named(Expr::Field(op.clone(), k), &name, None);
                            if let Some(v) = o.var() {
                                self.bind(&name, v);
                            }
                        }
                        syn::Pat::Wild(_) => {}
                        other => self.err(other, "only names and `_` are supported in tuple patterns"),
                    }
                }
            }
            // `let [a, b] = x`: one binding per element of a fixed array.
            syn::Pat::Slice(ps) => {
                let Some(op) = self.expr(&init.expr) else {
                    self.poison_pat(pat);
                    return;
                };
                let ty = self.func.ty_of(&op);
                let len = match &ty {
                    Ty::Array(_, n) => n.lit(),
                    _ => None,
                };
                if len != Some(ps.elems.len() as i128) {
                    self.poison_pat(pat);
                    return self.err(
                        pat,
                        format!("this pattern has {} names but the value is `{}`: an array pattern needs an array of that literal length", ps.elems.len(), ir_ty_text(&ty)),
                    );
                }
                let arr = match op.var() {
                    Some(v) => v,
                    None => return,
                };
                for (k, p) in ps.elems.iter().enumerate() {
                    match p {
                        syn::Pat::Ident(pi)
                            if pi.mutability.is_none() && pi.by_ref.is_none() && pi.subpat.is_none() =>
                        {
                            let name = pi.ident.to_string();
                            let o = self.let_named(Expr::Index(arr, vec![Operand::Int(k as i128)]), &name, None);
                            if let Some(v) = o.var() {
                                self.bind(&name, v);
                            }
                        }
                        syn::Pat::Wild(_) => {}
                        other => self.err(other, "only names and `_` are supported in array patterns"),
                    }
                }
            }
            syn::Pat::Wild(_) => {
                self.expr(&init.expr);
            }
            p => self.err(p, "unsupported pattern: bind the value to a name"),
        }
    }

    /// Whether `v` is an unnamed temporary just created by lowering an expression.
    fn is_fresh_temp(&self, v: VarId) -> bool {
        let info = &self.func.vars[v];
        !info.mutable
            && info.name == "t"
            && matches!(self.blocks.last().and_then(|b| b.last()), Some(Stmt::Let(w, _)) if *w == v)
    }

    fn take_last_let(&mut self, op: &Operand) -> Option<Expr> {
        let v = op.var()?;
        if !self.is_fresh_temp(v) {
            return None;
        }
        if !matches!(
            self.blocks.last().and_then(|b| b.last()),
            Some(Stmt::Let(_, Expr::Repeat(..) | Expr::Array(_)))
        ) {
            return None;
        }
        match self.blocks.last_mut().and_then(|b| b.pop()) {
            Some(Stmt::Let(_, e)) => Some(e),
            Some(other) => {
                self.push(other);
                None
            }
            None => None,
        }
    }

    /// An expression in statement position.
    fn stmt_expr(&mut self, e: &syn::Expr) {
        match e {
            syn::Expr::Assign(a) => self.assign(&a.left, AssignOp::Set, &a.right, a.eq_token.span),
            syn::Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::AddAssign(_) => Some((AssignOp::Add, None)),
                    syn::BinOp::SubAssign(_) => Some((AssignOp::Sub, None)),
                    syn::BinOp::MulAssign(_) => Some((AssignOp::Set, Some(Prim::Mul))),
                    syn::BinOp::DivAssign(_) => Some((AssignOp::Set, Some(Prim::Div))),
                    syn::BinOp::RemAssign(_) => Some((AssignOp::Set, Some(Prim::Rem))),
                    _ => None,
                };
                match op {
                    Some((aop, None)) => self.assign(&b.left, aop, &b.right, b.op.span()),
                    Some((_, Some(p))) => self.compound(&b.left, p, &b.right),
                    None => {
                        self.expr(e);
                    }
                }
            }
            syn::Expr::ForLoop(f) => self.for_loop(f),
            syn::Expr::If(i) => {
                self.if_expr(i, false);
            }
            syn::Expr::Block(b) => {
                self.sub_block_inline(&b.block.stmts);
            }
            _ => {
                self.expr(e);
            }
        }
    }

    fn sub_block_inline(&mut self, stmts: &[syn::Stmt]) -> Option<Operand> {
        self.scopes.push(HashMap::new());
        let end = self.block_stmts(stmts, false);
        self.scopes.pop();
        match end {
            End::Value(v) => v,
            End::Diverges => None,
        }
    }

    fn place(&mut self, e: &syn::Expr) -> Option<Place> {
        let mut idx_exprs = Vec::new();
        let mut cur = e;
        loop {
            match cur {
                syn::Expr::Index(ix) => {
                    idx_exprs.push(&*ix.index);
                    cur = &ix.expr;
                }
                syn::Expr::Paren(p) => cur = &p.expr,
                _ => break,
            }
        }
        let syn::Expr::Path(p) = cur else {
            self.err(e, "only a `let mut` variable or an element of one can be assigned");
            return None;
        };
        let name = path_string(&p.path);
        let Some(v) = self.lookup(&name) else {
            self.err(
                cur,
                format!("cannot assign to `{name}`: only `let mut` variables of this function can be assigned"),
            );
            return None;
        };
        if self.poisoned.contains(&v) {
            return None;
        }
        if !self.func.vars[v].mutable {
            self.err(
                cur,
                format!("cannot assign to `{name}`: it is not declared with `let mut`"),
            );
            return None;
        }
        idx_exprs.reverse();
        let mut idx = Vec::new();
        for ie in idx_exprs {
            idx.push(self.index_operand(ie)?);
        }
        Some(Place { var: v, idx })
    }

    fn assign(&mut self, left: &syn::Expr, op: AssignOp, right: &syn::Expr, _span: Span) {
        let Some(value) = self.expr(right) else { return };
        let Some(place) = self.place(left) else { return };
        self.push(Stmt::Assign(place, op, value));
    }

    /// `a op= b` for `* / %`: read, compute, write back.
    fn compound(&mut self, left: &syn::Expr, p: Prim, right: &syn::Expr) {
        let Some(value) = self.expr(right) else { return };
        let Some(place) = self.place(left) else { return };
        let cur = if place.idx.is_empty() {
            self.let_(Expr::Use(Operand::Var(place.var)))
        } else {
            self.let_(Expr::Index(place.var, place.idx.clone()))
        };
        let r = self.prim(p, vec![cur, value]);
        self.push(Stmt::Assign(place, AssignOp::Set, r));
    }

    fn for_loop(&mut self, f: &syn::ExprForLoop) {
        if let Some(l) = &f.label {
            self.err(
                l,
                "loop labels are not supported: remove the label; loops always run over their whole range",
            );
        }
        let name = match &*f.pat {
            syn::Pat::Ident(pi) if pi.mutability.is_none() => pi.ident.to_string(),
            syn::Pat::Wild(_) => "_i".to_string(),
            p => {
                self.err(p, "the loop variable must be a name: `for i in 0..N`");
                return;
            }
        };
        let (range, rev) = match &*f.expr {
            syn::Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                let mut inner = &*m.receiver;
                while let syn::Expr::Paren(p) = inner {
                    inner = &p.expr;
                }
                (inner, true)
            }
            e => (e, false),
        };
        let syn::Expr::Range(r) = range else {
            self.err(&f.expr, "`for` loops must run over a constant range: write `for i in 0..N` and index with `x[i]` (`(lo..hi).rev()` also works)");
            return;
        };
        let lo = match &r.start {
            Some(s) => self.cexpr(s),
            None => Some(CExpr::Lit(0)),
        };
        let hi = match &r.end {
            Some(e) => self.cexpr(e),
            None => {
                self.err(r, "the range needs an upper bound: `lo..hi`");
                None
            }
        };
        // Errors about the loop's bound (tape sizes) point at the upper bound.
        let bound_span = r.end.as_ref().map_or_else(|| r.span(), |e| e.span());
        let (Some(lo), Some(mut hi)) = (lo, hi) else { return };
        if let syn::RangeLimits::Closed(_) = r.limits {
            hi = match hi {
                CExpr::Lit(v) => CExpr::Lit(v + 1),
                h => CExpr::Bin('+', Box::new(h), Box::new(CExpr::Lit(1))),
            };
        }
        // From a negative literal the index is a signed integer whose type rustc infers.
        let ity = match &lo {
            CExpr::Lit(v) if *v < 0 => Ty::Int(None),
            CExpr::Bin('-', a, _) if a.lit() == Some(0) => Ty::Int(None),
            _ => Ty::Int(Some("usize".into())),
        };
        let var = self.func.new_var(name.clone(), ity, false);
        self.loop_vars.push(var);
        self.scopes.push(HashMap::new());
        self.bind(&name, var);
        self.blocks.push(Vec::new());
        self.loop_depth += 1;
        let end = self.block_stmts(&f.body.stmts, false);
        self.loop_depth -= 1;
        if let End::Value(Some(_)) = end {
            // A loop body's value is `()` in Rust; anything else was rejected by rustc.
        }
        let body = self.blocks.pop().unwrap_or_default();
        self.scopes.pop();
        self.push(Stmt::For(Loop {
            var,
            lo,
            hi,
            rev,
            body: Block(body),
            span: SrcSpan(bound_span),
        }));
    }

    /// `if c { a } else { b }`; with `want_value`, the value through a mutable temporary.
    fn if_expr(&mut self, i: &syn::ExprIf, want_value: bool) -> Option<Operand> {
        let c = self.expr(&i.cond)?;
        if !matches!(self.func.ty_of(&c), Ty::Bool | Ty::Unknown) {
            self.err(&i.cond, "the condition of `if` must be a `bool`");
            return None;
        }
        let result = if want_value {
            if i.else_branch.is_none() {
                self.err(i.if_token, "an `if` used as a value needs an `else` branch");
                return None;
            }
            Some(self.func.new_var("sel", Ty::Unknown, true))
        } else {
            None
        };
        // Whether a branch failed (then its missing value is not a second error).
        let failed_before = std::mem::replace(&mut self.failed, false);
        let (mut tb, tv) = self.sub_block(|lw| lw.block_stmts(&i.then_branch.stmts, false));
        let tv = match tv {
            End::Value(v) => v,
            End::Diverges => None,
        };
        let (mut eb, ev) = match &i.else_branch {
            None => (Vec::new(), None),
            Some((_, e)) => {
                let (b, end) = self.sub_block(|lw| match &**e {
                    syn::Expr::Block(b) => lw.block_stmts(&b.block.stmts, false),
                    syn::Expr::If(ei) => End::Value(lw.if_expr(ei, want_value)),
                    other => End::Value(lw.expr(other)),
                });
                (
                    b,
                    match end {
                        End::Value(v) => v,
                        End::Diverges => None,
                    },
                )
            }
        };
        let branch_failed = self.failed;
        self.failed |= failed_before;
        if let Some(r) = result {
            let (Some(tv), Some(ev)) = (tv, ev) else {
                if !branch_failed {
                    self.err(i.if_token, "both branches of this `if` must give a value");
                }
                return None;
            };
            let ty = merge_ty(&self.func.ty_of(&tv), &self.func.ty_of(&ev));
            self.func.vars[r].ty = ty;
            tb.push(Stmt::Assign(Place { var: r, idx: vec![] }, AssignOp::Set, tv));
            eb.push(Stmt::Assign(Place { var: r, idx: vec![] }, AssignOp::Set, ev));
            self.push(Stmt::Mut(r, None));
            self.push(Stmt::If(c, Block(tb), Block(eb)));
            let ty = self.func.vars[r].ty.clone();
            Some(self.let_named(Expr::Use(Operand::Var(r)), "t", Some(ty)))
        } else {
            self.push(Stmt::If(c, Block(tb), Block(eb)));
            None
        }
    }

    // ---- expressions ---------------------------------------------------------------------

    fn index_operand(&mut self, e: &syn::Expr) -> Option<Operand> {
        let op = self.expr(e)?;
        match self.func.ty_of(&op) {
            Ty::Int(_) | Ty::Unknown => Some(op),
            _ => {
                self.err(e, "an index must be an integer: a constant or a loop variable");
                None
            }
        }
    }

    fn expr(&mut self, e: &syn::Expr) -> Option<Operand> {
        match e {
            syn::Expr::Lit(l) => self.lit(&l.lit),
            syn::Expr::Paren(p) => self.expr(&p.expr),
            syn::Expr::Group(g) => self.expr(&g.expr),
            syn::Expr::Path(p) => {
                if p.qself.is_some() {
                    self.err(e, "qualified paths are not supported");
                    return None;
                }
                let s = path_string(&p.path);
                if p.path.segments.len() == 1 {
                    if let Some(v) = self.lookup(&s) {
                        if self.poisoned.contains(&v) {
                            return None;
                        }
                        if self.func.vars[v].mutable {
                            let ty = self.func.vars[v].ty.clone();
                            return Some(self.let_named(Expr::Use(Operand::Var(v)), "t", Some(ty)));
                        }
                        return Some(Operand::Var(v));
                    }
                }
                Some(Operand::Const(CExpr::Path(s)))
            }
            syn::Expr::Unary(u) => match u.op {
                syn::UnOp::Neg(_) => {
                    let a = self.expr(&u.expr)?;
                    match a {
                        Operand::Float(l) => Some(Operand::Float(FloatLit {
                            text: format!("-{}", l.text),
                            value: -l.value,
                        })),
                        Operand::Int(i) => Some(Operand::Int(-i)),
                        a => Some(self.let_(Expr::Prim(Prim::Neg, vec![a]))),
                    }
                }
                syn::UnOp::Not(_) => {
                    let a = self.expr(&u.expr)?;
                    Some(self.let_(Expr::Not(a)))
                }
                syn::UnOp::Deref(_) => {
                    // `*x` on a reference parameter is a copy of the value it points to.
                    let a = self.expr(&u.expr)?;
                    let by_ref = a
                        .var()
                        .is_some_and(|v| self.func.params.iter().any(|p| p.var == v && p.by_ref));
                    if by_ref {
                        Some(self.let_(Expr::Deref(a)))
                    } else {
                        Some(a)
                    }
                }
                _ => {
                    self.err(e, "unsupported operator");
                    None
                }
            },
            syn::Expr::Binary(b) => self.binary(b),
            syn::Expr::MethodCall(m) => self.method(m),
            syn::Expr::Call(c) => self.call(c),
            syn::Expr::Index(_) => {
                let mut idx_exprs = Vec::new();
                let mut cur = e;
                while let syn::Expr::Index(ix) = cur {
                    idx_exprs.push(&*ix.index);
                    cur = &ix.expr;
                }
                // An element of a `let mut` array is read in place (a snapshot of the whole
                // array per read would make loops over it quadratic).
                let mutable_base = match cur {
                    syn::Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => self
                        .lookup(&path_string(&p.path))
                        .filter(|v| self.func.vars[*v].mutable),
                    _ => None,
                };
                let base_var = match mutable_base {
                    Some(v) => v,
                    None => match self.expr(cur)? {
                        Operand::Var(v) => v,
                        other => self.let_(Expr::Use(other)).var()?,
                    },
                };
                idx_exprs.reverse();
                // Indexing what the macro knows is not an array is an error here, on the
                // indexing expression (not an internal error later).
                let mut ty = self.func.vars[base_var].ty.clone();
                for _ in &idx_exprs {
                    match ty {
                        Ty::Array(el, _) => ty = *el,
                        Ty::Unknown => break,
                        other => {
                            self.err(
                                e,
                                format!("`{}` cannot be indexed: only arrays can", ir_ty_text(&other)),
                            );
                            return None;
                        }
                    }
                }
                let mut idx = Vec::new();
                for ie in idx_exprs {
                    idx.push(self.index_operand(ie)?);
                }
                Some(self.let_(Expr::Index(base_var, idx)))
            }
            syn::Expr::Array(a) => {
                let mut ops = Vec::new();
                for x in &a.elems {
                    ops.push(self.expr(x)?);
                }
                Some(self.let_(Expr::Array(ops)))
            }
            syn::Expr::Repeat(r) => {
                let v = self.expr(&r.expr)?;
                let n = self.cexpr(&r.len)?;
                Some(self.let_(Expr::Repeat(v, n)))
            }
            syn::Expr::Tuple(t) => {
                if t.elems.is_empty() {
                    return Some(Operand::Unit);
                }
                let mut ops = Vec::new();
                for x in &t.elems {
                    ops.push(self.expr(x)?);
                }
                Some(self.let_(Expr::Tuple(ops)))
            }
            syn::Expr::Field(f) => {
                let base = self.expr(&f.base)?;
                match &f.member {
                    syn::Member::Unnamed(i) => {
                        if !matches!(self.func.ty_of(&base), Ty::Tuple(_)) {
                            // The tuple's size is not visible (a call result): its adjoint
                            // could not be formed.
                            self.err(
                                &f.base,
                                "fluxion cannot see the type of this value: destructure it with a tuple pattern, `let (a, b) = g(x);`",
                            );
                            return None;
                        }
                        Some(self.let_(Expr::Field(base, i.index as usize)))
                    }
                    syn::Member::Named(n) => {
                        self.err(
                            n,
                            "named fields are not supported yet: pass the values as separate arguments",
                        );
                        None
                    }
                }
            }
            syn::Expr::Cast(c) => {
                let a = self.expr(&c.expr)?;
                let ty = self.value_ty(&c.ty)?;
                if !matches!(ty, Ty::Float(_) | Ty::Int(_)) {
                    self.err(&c.ty, "only casts to a number type are supported");
                    return None;
                }
                Some(self.let_(Expr::Cast(a, ty)))
            }
            syn::Expr::If(i) => self.if_expr(i, true),
            syn::Expr::Block(b) => {
                if let Some(u) = &b.block.stmts.first() {
                    let _ = u;
                }
                self.sub_block_inline(&b.block.stmts)
            }
            syn::Expr::Unsafe(u) => {
                self.err(
                    u.unsafe_token,
                    "`unsafe` blocks cannot be differentiated: move the unsafe code into a function with a custom rule",
                );
                None
            }
            syn::Expr::While(w) => {
                self.err(
                    w.while_token,
                    "`while` loops are not supported: use `for i in 0..N` over a constant range",
                );
                None
            }
            syn::Expr::Loop(l) => {
                self.err(
                    l.loop_token,
                    "`loop` is not supported: use `for i in 0..N` over a constant range",
                );
                None
            }
            syn::Expr::Match(m) => {
                self.err(m.match_token, "`match` is not supported: use `if`/`else`");
                None
            }
            syn::Expr::Closure(c) => {
                let (open, close) = (c.or1_token, c.or2_token);
                self.err(
                    quote::quote!(#open #close),
                    "closures are not supported: write a function and mark it #[differentiable]",
                );
                None
            }
            syn::Expr::Macro(m) => {
                self.err(&m.mac.path, "macros are not supported inside a differentiated function: compute the value with ordinary expressions");
                None
            }
            syn::Expr::Reference(r) => {
                self.err(r.and_token, "references are only supported as call arguments: `g(&x)`");
                None
            }
            syn::Expr::Break(b) => {
                self.err(
                    b.break_token,
                    "`break` is not supported: loops run over their whole constant range",
                );
                None
            }
            syn::Expr::Continue(c) => {
                self.err(
                    c.continue_token,
                    "`continue` is not supported: use `if` inside the loop body",
                );
                None
            }
            syn::Expr::Return(r) => {
                self.err(r.return_token, self.return_msg());
                None
            }
            syn::Expr::Assign(_) | syn::Expr::ForLoop(_) => {
                self.stmt_expr(e);
                Some(Operand::Unit)
            }
            syn::Expr::Async(a) => {
                self.err(a.async_token, "`async` blocks cannot be differentiated");
                None
            }
            syn::Expr::Struct(s) => {
                self.err(
                    &s.path,
                    "struct literals are not supported yet: pass the fields as separate f64 or array values",
                );
                None
            }
            syn::Expr::Range(r) => {
                self.err(r, "ranges are only supported as `for` loop bounds");
                None
            }
            other => {
                self.err(other, "this expression is not supported in a differentiated function");
                None
            }
        }
    }

    fn lit(&mut self, l: &syn::Lit) -> Option<Operand> {
        match l {
            syn::Lit::Float(f) => match f.base10_parse::<f64>() {
                Ok(v) => Some(Operand::Float(FloatLit {
                    text: f.to_string(),
                    value: v,
                })),
                Err(e) => {
                    self.failed = true;
                    self.cx.push(e);
                    None
                }
            },
            syn::Lit::Int(i) => {
                let suffix = i.suffix();
                if suffix == "f64" || suffix == "f32" {
                    let v: f64 = i.base10_digits().parse().ok()?;
                    return Some(Operand::Float(FloatLit {
                        text: i.to_string(),
                        value: v,
                    }));
                }
                match i.base10_parse::<i128>() {
                    Ok(v) if INT_TYPES.contains(&suffix) => {
                        // Keep the literal's type: `let t: u64 = 5000000000;`.
                        let t =
                            self.let_named(Expr::Use(Operand::Int(v)), "t", Some(Ty::Int(Some(suffix.to_string()))));
                        if let Some(w) = t.var() {
                            self.func.vars[w].annotated = true;
                        }
                        Some(t)
                    }
                    Ok(v) => Some(Operand::Int(v)),
                    Err(e) => {
                        self.failed = true;
                        self.cx.push(e);
                        None
                    }
                }
            }
            syn::Lit::Bool(b) => Some(Operand::Bool(b.value)),
            other => {
                self.err(other, "only number and boolean literals are supported");
                None
            }
        }
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Operand> {
        use syn::BinOp as B;
        enum K {
            P(Prim),
            C(CmpOp),
            L(BoolOp),
        }
        let k = match b.op {
            B::Add(_) => K::P(Prim::Add),
            B::Sub(_) => K::P(Prim::Sub),
            B::Mul(_) => K::P(Prim::Mul),
            B::Div(_) => K::P(Prim::Div),
            B::Rem(_) => K::P(Prim::Rem),
            B::Lt(_) => K::C(CmpOp::Lt),
            B::Le(_) => K::C(CmpOp::Le),
            B::Gt(_) => K::C(CmpOp::Gt),
            B::Ge(_) => K::C(CmpOp::Ge),
            B::Eq(_) => K::C(CmpOp::Eq),
            B::Ne(_) => K::C(CmpOp::Ne),
            B::And(_) => K::L(BoolOp::And),
            B::Or(_) => K::L(BoolOp::Or),
            B::AddAssign(_) | B::SubAssign(_) | B::MulAssign(_) | B::DivAssign(_) | B::RemAssign(_) => {
                self.err(b.op, "compound assignment is a statement here: end it with `;`");
                return None;
            }
            _ => {
                self.err(b.op, "bitwise and shift operators are not supported: compute the integer outside the function and pass it in");
                return None;
            }
        };
        let l = self.expr(&b.left)?;
        if let K::L(o) = k {
            // `a && b` evaluates `b` only when `a` holds (it may index out of bounds
            // otherwise): `let mut sel; if a { sel = b } else { sel = false }`.
            let sel = self.func.new_var("sel", Ty::Bool, true);
            self.push(Stmt::Mut(sel, None));
            let set = |v: Operand| Stmt::Assign(Place { var: sel, idx: vec![] }, AssignOp::Set, v);
            let (rhs, r) = self.sub_block(|lw| End::Value(lw.expr(&b.right)));
            let End::Value(Some(r)) = r else { return None };
            let mut rhs = rhs;
            rhs.push(set(r));
            let short = vec![set(Operand::Bool(o == BoolOp::Or))];
            let (t, e) = if o == BoolOp::And { (rhs, short) } else { (short, rhs) };
            self.push(Stmt::If(l, Block(t), Block(e)));
            return Some(self.let_named(Expr::Use(Operand::Var(sel)), "t", Some(Ty::Bool)));
        }
        let r = self.expr(&b.right)?;
        Some(match k {
            K::P(p) => {
                // `x * 2` with `x: f64` is rustc's type error (E0277), one error with its
                // own hint: generate nothing, so that error is the only one.
                let (lt, rt) = (self.func.ty_of(&l), self.func.ty_of(&r));
                if (lt.is_float() && rt.is_int()) || (lt.is_int() && rt.is_float()) {
                    self.failed = true;
                    return None;
                }
                self.prim(p, vec![l, r])
            }
            K::C(c) => self.let_(Expr::Cmp(c, l, r)),
            K::L(o) => self.let_(Expr::Bool(o, l, r)),
        })
    }

    /// `p(ops)`, with each named constant among float operands lifted to the float type
    /// of the others (see [`CExpr::Lift`]): `SCALE * x` with `x: f64`.
    fn prim(&mut self, p: Prim, mut ops: Vec<Operand>) -> Operand {
        let float = ops.iter().find_map(|o| match self.func.ty_of(o) {
            Ty::Float(Some(k)) => Some(k),
            _ => None,
        });
        if let Some(k) = float {
            for (i, o) in ops.iter_mut().enumerate() {
                let exponent = p == Prim::Powi && i == 1;
                if let (Operand::Const(c @ CExpr::Path(_)), false) = (&*o, exponent) {
                    *o = Operand::Const(CExpr::Lift(Box::new(c.clone()), k));
                }
            }
        }
        self.let_(Expr::Prim(p, ops))
    }

    fn method(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let name = m.method.to_string();
        // `x.iter().sum()` and `x.iter().sum::<f64>()`
        if name == "sum" && m.args.is_empty() {
            if let syn::Expr::MethodCall(inner) = &*m.receiver {
                if (inner.method == "iter" || inner.method == "into_iter") && inner.args.is_empty() {
                    let a = self.expr(&inner.receiver)?;
                    return Some(self.let_(Expr::Sum(a)));
                }
            }
        }
        // The receiver first: if it already failed, that error is the one to fix.
        let recv = self.expr(&m.receiver)?;
        // `x.sin_cos()`: the pair `(x.sin(), x.cos())`, each with its own rule.
        if name == "sin_cos" && m.args.is_empty() {
            let ty = self.func.ty_of(&recv);
            let s = self.let_(Expr::Prim(Prim::Sin, vec![recv.clone()]));
            let c = self.let_(Expr::Prim(Prim::Cos, vec![recv]));
            let pair = self.let_(Expr::Tuple(vec![s, c]));
            if let Some(v) = pair.var() {
                if ty.is_float() {
                    self.func.vars[v].ty = Ty::Tuple(vec![ty.clone(), ty]);
                }
            }
            return Some(pair);
        }
        let Some(p) = Prim::from_method(&name) else {
            self.err(
                &m.method,
                format!("method `{name}` is not differentiable: {}", supported_methods()),
            );
            return None;
        };
        if m.args.len() + 1 != p.arity() {
            self.err(&m.method, format!("`{name}` takes {} argument(s)", p.arity() - 1));
            return None;
        }
        let mut ops = vec![recv];
        for a in &m.args {
            ops.push(self.expr(a)?);
        }
        if p == Prim::Powi && self.func.ty_of(&ops[1]).is_float() {
            self.err(
                &m.args[0],
                "the exponent of `powi` must be an integer: use `powf` for a float exponent",
            );
            return None;
        }
        Some(self.prim(p, ops))
    }

    fn call(&mut self, c: &syn::ExprCall) -> Option<Operand> {
        let syn::Expr::Path(fp) = &*c.func else {
            self.err(&c.func, "only calls of named functions are supported");
            return None;
        };
        let path = &fp.path;
        let last = path.segments.last()?;
        let name = syn::ext::IdentExt::unraw(&last.ident).to_string();
        let segs: Vec<String> = path
            .segments
            .iter()
            .map(|s| syn::ext::IdentExt::unraw(&s.ident).to_string())
            .collect();
        if name == "stop_gradient" {
            if c.args.len() != 1 {
                self.err(&c.func, "`stop_gradient` takes one argument");
                return None;
            }
            let a = self.expr(&c.args[0])?;
            return Some(self.let_(Expr::StopGrad(a)));
        }
        // `f64::sin(x)`, `f64::max(a, b)`
        if segs.len() == 2 && (segs[0] == "f64" || segs[0] == "f32") {
            if let Some(p) = Prim::from_method(&name) {
                if c.args.len() != p.arity() {
                    self.err(
                        &last.ident,
                        format!("`{}` takes {} argument(s)", segs.join("::"), p.arity()),
                    );
                    return None;
                }
                let mut ops = Vec::new();
                for a in &c.args {
                    ops.push(self.expr(a)?);
                }
                return Some(self.prim(p, ops));
            }
            self.err(
                &last.ident,
                format!("`{}` is not differentiable: {}", segs.join("::"), supported_methods()),
            );
            return None;
        }
        if let (Some(v), 1) = (self.lookup(&name), segs.len()) {
            if self.poisoned.contains(&v) {
                return None;
            }
            self.err(&last.ident, format!("`{name}` is a variable, not a function"));
            return None;
        }
        let mut prefix: Vec<String> = segs[..segs.len() - 1].to_vec();
        if path.leading_colon.is_some() {
            prefix.insert(0, String::new());
        }
        let turbofish = match &last.arguments {
            syn::PathArguments::None => None,
            syn::PathArguments::AngleBracketed(a) => Some(a.args.to_token_stream().to_string()),
            syn::PathArguments::Parenthesized(p) => {
                self.err(p, "unsupported call syntax");
                return None;
            }
        };
        let mut args = Vec::new();
        for a in &c.args {
            match a {
                syn::Expr::Reference(r) => {
                    if let Some(m) = &r.mutability {
                        self.err(
                            m,
                            "`&mut` arguments are not supported: pass the value and use the returned result",
                        );
                        return None;
                    }
                    let op = self.expr(&r.expr)?;
                    args.push(Arg { op, by_ref: true });
                }
                other => {
                    let op = self.expr(other)?;
                    args.push(Arg { op, by_ref: false });
                }
            }
        }
        let call = Call {
            prefix,
            name,
            turbofish,
            modes: vec![],
            args,
            span: SrcSpan(last.ident.span()),
        };
        Some(self.let_(Expr::Call(call)))
    }
}
