//! Types in signatures and `let` annotations, and constant expressions (array lengths,
//! loop bounds).

use super::*;

impl Lowerer<'_> {
    pub(super) fn signature(&mut self, sig: &syn::Signature) {
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
    pub(super) fn ty(&mut self, t: &syn::Type) -> Option<(Ty, bool)> {
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

    pub(super) fn value_ty(&mut self, t: &syn::Type) -> Option<Ty> {
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
    pub(super) fn cexpr(&mut self, e: &syn::Expr) -> Option<CExpr> {
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
}
