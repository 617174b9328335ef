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
                // `&[T]` and `&Vec<T>`: one axis of run-time length.
                if let Some(e) = slice_elem(&r.elem) {
                    let e = self.value_ty(e)?;
                    return Some((Ty::Slice(Box::new(e)), true));
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
                if let Some(t) = self.nalgebra_ty(t, last) {
                    return t;
                }
                // `fluxion::Rng`: random draws, never differentiated.
                if name == "Rng" && last.arguments.is_empty() {
                    return Some(Ty::Rng);
                }
                if name == "Vec" {
                    self.err(t, format!("`{}` is supported only as a parameter passed by reference: write `&[T]` (or `&Vec<T>`) for data of run-time length, or a fixed-size array `[f64; N]` for a result", ty_text(t)));
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
            // `[T]` by value is not a Rust type of a value: rustc's error on the original.
            syn::Type::Slice(_) => {
                self.failed = true;
                None
            }
            _ => {
                self.err(t, format!("unsupported type `{}`: {UNSUPPORTED_TYPE_HINT}", ty_text(t)));
                None
            }
        }
    }

    /// A nalgebra vector or matrix type, by its alias (`SVector<f64, N>`, `SMatrix<f64, R,
    /// C>`, `Vector3<f64>`, `Matrix2x3<f64>`, `RowSVector<f64, N>`, `DVector<f64>`,
    /// `DMatrix<f64>`), with or without a path before it. `None` when the name is not one
    /// of them; `Some(None)` after an error on it.
    fn nalgebra_ty(&mut self, t: &syn::Type, last: &syn::PathSegment) -> Option<Option<Ty>> {
        let name = last.ident.to_string();
        let one = || Dim::Static(CExpr::Lit(1));
        let lit = |k: u8| Dim::Static(CExpr::Lit(i128::from(k)));
        // (rows, cols) fixed by the name, or taken from the generic arguments after `T`.
        let fixed: Option<(Dim, Dim)> = match name.as_str() {
            "DVector" => Some((Dim::Dynamic, one())),
            "DMatrix" => Some((Dim::Dynamic, Dim::Dynamic)),
            "SVector" | "SMatrix" | "RowSVector" => None,
            n => match nalgebra_alias_dims(n) {
                Some((r, c)) => Some((lit(r), lit(c))),
                None => return None,
            },
        };
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            // As for a wrong count of arguments: rustc's error on the original function.
            self.failed = true;
            return Some(None);
        };
        let args: Vec<&syn::GenericArgument> = args.args.iter().collect();
        let want = match (name.as_str(), &fixed) {
            ("SMatrix", _) => 3,
            (_, None) => 2,
            _ => 1,
        };
        if args.len() != want {
            // rustc reports the alias's arguments on the original function.
            self.failed = true;
            return Some(None);
        }
        let elem = match args[0] {
            syn::GenericArgument::Type(et) => match self.value_ty(et) {
                Some(e @ Ty::Float(_)) => e,
                Some(other) => {
                    self.err(
                        et,
                        format!(
                            "a `{name}` of `{}` cannot carry a derivative: use `f64` or `f32` elements",
                            ir_ty_text(&other)
                        ),
                    );
                    return Some(None);
                }
                None => return Some(None),
            },
            other => {
                self.err(other, "the first argument is the element type: `f64` or `f32`");
                return Some(None);
            }
        };
        let mut lens = Vec::new();
        for a in &args[1..] {
            lens.push(match a {
                syn::GenericArgument::Const(e) => Dim::Static(match self.cexpr(e) {
                    Some(c) => c,
                    None => return Some(None),
                }),
                // A const generic `N` reads as a type path.
                syn::GenericArgument::Type(syn::Type::Path(p)) if p.qself.is_none() => {
                    Dim::Static(CExpr::Path(path_string(&p.path)))
                }
                other => {
                    self.err(
                        other,
                        "a length must be a constant: a literal, a `const` item or a const generic",
                    );
                    return Some(None);
                }
            });
        }
        let (rows, cols) = match (fixed, name.as_str()) {
            (Some(rc), _) => rc,
            (None, "RowSVector") => (one(), lens.remove(0)),
            (None, "SVector") => (lens.remove(0), one()),
            (None, _) => {
                let r = lens.remove(0);
                (r, lens.remove(0))
            }
        };
        if rows == Dim::Dynamic || cols == Dim::Dynamic {
            self.err(
                t,
                format!("`{}` is dynamically sized: fluxion takes `DVector` and `DMatrix` values as arguments of an annotated function (`x: &DVector<f64>`, `m: &DMatrix<f64>`, read through their column-major storage), not here\nhint: take the value as an argument, or use `SVector<f64, N>` / `SMatrix<f64, R, C>` (a const generic takes any size)", ty_text(t)),
            );
            return Some(None);
        }
        Some(Some(Ty::Matrix {
            elem: Box::new(elem),
            rows,
            cols,
        }))
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

/// Whether `name` is one of nalgebra's fixed-size aliases (`Vector3`, `Matrix2x3`, ..).
pub(crate) fn is_nalgebra_alias(name: &str) -> bool {
    nalgebra_alias_dims(name).is_some()
}

/// The shape of one of nalgebra's fixed aliases (`Vector3` is 3 x 1).
pub(crate) fn nalgebra_alias_shape(name: &str) -> Option<(u8, u8)> {
    nalgebra_alias_dims(name)
}

/// The sizes in nalgebra's fixed aliases: `Vector3` is 3x1, `RowVector3` 1x3, `Matrix3`
/// 3x3, `Matrix2x3` 2x3 (sizes 1 to 6).
fn nalgebra_alias_dims(name: &str) -> Option<(u8, u8)> {
    let digit = |s: &str| match s.parse::<u8>() {
        Ok(k @ 1..=6) if s.len() == 1 => Some(k),
        _ => None,
    };
    if let Some(k) = name.strip_prefix("RowVector") {
        return digit(k).map(|k| (1, k));
    }
    if let Some(k) = name.strip_prefix("Vector") {
        return digit(k).map(|k| (k, 1));
    }
    let k = name.strip_prefix("Matrix")?;
    match k.split_once('x') {
        Some((r, c)) => Some((digit(r)?, digit(c)?)),
        None => digit(k).map(|k| (k, k)),
    }
}

/// The element type of `[T]` or `Vec<T>` (the referent of a slice parameter).
pub(super) fn slice_elem(t: &syn::Type) -> Option<&syn::Type> {
    match t {
        syn::Type::Slice(s) => Some(&s.elem),
        syn::Type::Paren(p) => slice_elem(&p.elem),
        syn::Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if last.ident != "Vec" {
                return None;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match &a.args[0] {
                    syn::GenericArgument::Type(e) => Some(e),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}
