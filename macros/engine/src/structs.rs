//! Parameter structs as arguments (JAX's pytrees, torch's `make_functional`): a function
//! taking `p: &Mlp`, where `Mlp` derives `fluxion::Parameters`, is differentiated as the
//! function of `Mlp`'s fields.
//!
//! An attribute macro cannot see a struct's fields, so they travel to it: the derive emits a
//! hidden `macro_rules! Mlp_needs_derive_Parameters_above` (named for rustc's error where
//! it is missing: "cannot find macro `Mlp_needs_derive_Parameters_above`") whose expansion calls the hidden function-like
//! macro `__with_fields!` with the fields' names and types (and which are buffers) in front
//! of the tokens it was given. An attribute that finds an argument of an unknown struct type
//! expands to that macro's call, with its own name, options and function; `__with_fields!`
//! expands the attribute again, now knowing the fields ([`crate::expand::expand_with_fields`]). Nested
//! structs ask for their own fields the same way.
//!
//! With every struct known, the function is flattened ([`flatten`]): `fn __fluxion_flat_f`
//! takes each field as an argument of its own (`p__w: &[[f64; 4]; 3]`, `p__b: f64`, a `Vec`
//! field as a slice), its body reads `p.w` as `p__w`, and a struct passed whole to another
//! function (`g(p, x)`) is passed as its fields to that function's flat form
//! (`__fluxion_flat_g(p__w, p__b, x)`). Every transform runs on the flat function; each
//! public generated function gets a wrapper of the user's name taking the struct
//! ([`wrappers`]), which regroups a gradient with respect to the struct into the struct
//! type, field by field (buffers cloned, as `Parameters::zeros_like` does).
//!
//! The derive's macro is found by its name, in textual scope: the struct is declared before
//! the functions that take it, in the same module or an enclosing one.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;

use crate::spec::{Argnums, InDims, Options};
use crate::symbol::Transform;

/// The prefix of a flattened function's name.
pub const FLAT: &str = "__fluxion_flat_";

/// The fields of a struct, as its derive listed them.
#[derive(Clone, Debug)]
pub struct StructInfo {
    /// The struct's name.
    pub name: syn::Ident,
    /// Its fields in declaration order.
    pub fields: Vec<FieldInfo>,
}

/// One field of a [`StructInfo`].
#[derive(Clone, Debug)]
pub struct FieldInfo {
    /// The field's name.
    pub ident: syn::Ident,
    /// Its type, as written in the struct.
    pub ty: syn::Type,
    /// `#[param(buffer)]`: carried, never differentiated.
    pub buffer: bool,
}

/// The input of `__with_fields!`: the structs' fields, then the attribute's name, its
/// options in parentheses, and the function.
pub fn parse_with_fields(input: TokenStream) -> syn::Result<(Vec<StructInfo>, Transform, TokenStream, TokenStream)> {
    let parser = |input: ParseStream| {
        let mut infos = Vec::new();
        while input.peek(syn::token::Bracket) {
            let content;
            syn::bracketed!(content in input);
            let name: syn::Ident = content.parse()?;
            let fields: syn::FieldsNamed = content.parse()?;
            let mut fs = Vec::new();
            for f in fields.named {
                let Some(ident) = f.ident else {
                    return Err(syn::Error::new(name.span(), "a field without a name"));
                };
                let buffer = f.attrs.iter().any(|a| a.path().is_ident("buffer"));
                fs.push(FieldInfo {
                    ident,
                    ty: f.ty,
                    buffer,
                });
            }
            infos.push(StructInfo { name, fields: fs });
        }
        let t: syn::Ident = input.parse()?;
        let args;
        syn::parenthesized!(args in input);
        let args: TokenStream = args.parse()?;
        let item: TokenStream = input.parse()?;
        let Some(t) = Transform::from_name(&t.to_string()) else {
            return Err(syn::Error::new(t.span(), "internal: not a transform"));
        };
        Ok((infos, t, args, item))
    };
    parser.parse2(input)
}

/// A struct's fields as `__with_fields!` takes them: `[Name { #[buffer] f: T, .. }]`.
pub fn info_tokens(s: &StructInfo) -> TokenStream {
    let name = &s.name;
    let fields = s.fields.iter().map(|f| {
        let (id, ty) = (&f.ident, &f.ty);
        if f.buffer {
            quote!(#[buffer] #id: #ty)
        } else {
            quote!(#id: #ty)
        }
    });
    quote!([#name { #(#fields,)* }])
}

/// The name of the derive's macro that lists `name`'s fields. Where it is missing (no
/// derive, the struct declared below, a type alias) rustc reports "cannot find macro
/// `Name_needs_derive_Parameters_above`", which says what to do.
pub fn fields_macro(name: &syn::Ident) -> syn::Ident {
    format_ident!("{}_needs_derive_Parameters_above", syn::ext::IdentExt::unraw(name))
}

/// The struct named by a type (`Mlp`, `&Mlp`): a path of one segment without generic
/// arguments that is no type fluxion knows (floats, integers, `bool`, `Rng`, nalgebra's
/// aliases) and no generic parameter of the function.
fn struct_name<'a>(ty: &'a syn::Type, generics: &[String]) -> Option<&'a syn::Ident> {
    let ty = match ty {
        syn::Type::Reference(r) if r.mutability.is_none() => &*r.elem,
        t => t,
    };
    let syn::Type::Path(p) = ty else { return None };
    if p.qself.is_some() || p.path.segments.len() != 1 {
        return None;
    }
    let seg = &p.path.segments[0];
    if !seg.arguments.is_empty() {
        return None;
    }
    let n = seg.ident.to_string();
    let known = matches!(n.as_str(), "f64" | "f32" | "bool" | "Rng" | "Self")
        || crate::lower::INT_TYPES.contains(&n.as_str())
        || crate::lower::is_nalgebra_alias(&n)
        || crate::lower::is_complex_name(&n)
        || generics.contains(&n)
        || !n.starts_with(|c: char| c.is_ascii_uppercase());
    (!known).then_some(&seg.ident)
}

/// What an argument of the function flattens to: one leaf per field (nested structs by
/// their fields), each with its flat name, the path of fields from the argument, its
/// flat type, and whether it is a buffer.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// `p__w`, `p__layer__b`.
    pub flat: syn::Ident,
    /// `[w]`, `[layer, b]`.
    pub path: Vec<syn::Ident>,
    /// The flat argument's type: `&T` for arrays and matrices, `&[E]` for a `Vec<E>`, the
    /// type itself for a number.
    pub ty: syn::Type,
    /// Whether the flat argument is a reference.
    pub by_ref: bool,
    /// Whether the field moves out of a buffer with `mem::take` (`Vec`, `DVector`,
    /// `DMatrix`) rather than by copy.
    pub owned: bool,
    /// A buffer field (or inside one).
    pub buffer: bool,
    /// A float or an array of floats: batched as a slice of samples.
    pub batchable: bool,
    /// A statically sized nalgebra value, passed as its storage (`data.0`): a vector as
    /// `[T; N]`, a matrix as its columns `[[T; R]; C]`.
    pub na: Option<Na>,
}

/// How a nalgebra leaf is passed to the flat function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Na {
    /// `v.data.0[0]`: `[T; N]`.
    Vector,
    /// `m.data.0`: `[[T; R]; C]`, column by column.
    Matrix,
    /// A `DVector<T>`: `v.as_slice()`, `&[T]`; its gradient `DVector::from_vec`.
    Dyn,
    /// A `DMatrix<T>`: `m.as_slice()`, `&[T]` (column-major), its row and column counts
    /// passed as `usize` arguments after the user's ([`matrix_dims`]); its gradient
    /// `DMatrix::from_vec` of the argument's shape.
    DynMatrix,
}

impl Leaf {
    /// The suffix reaching the flat argument's value from the field: nalgebra's storage.
    fn storage(&self) -> TokenStream {
        match self.na {
            Some(Na::Vector) => quote!(.data.0[0]),
            Some(Na::Matrix) => quote!(.data.0),
            Some(Na::Dyn | Na::DynMatrix) => quote!(.as_slice()),
            None => quote!(),
        }
    }
    /// The field's value from the flat value `v`; `owner` is the struct whose field has
    /// the shape of the result (a `DMatrix`'s row and column counts).
    fn field_value(&self, v: TokenStream, owner: &TokenStream) -> TokenStream {
        let path = &self.path;
        match self.na {
            Some(Na::Dyn) => quote!(::nalgebra::DVector::from_vec(#v)),
            Some(Na::DynMatrix) => quote!(::nalgebra::DMatrix::from_vec(
                #owner.#(#path).*.nrows(),
                #owner.#(#path).*.ncols(),
                #v
            )),
            Some(_) => quote!(::core::convert::From::from(#v)),
            None => v,
        }
    }
}

/// One argument of the function: its name, and its leaves if it is a struct.
#[derive(Clone, Debug)]
pub struct Arg {
    /// The argument's name.
    pub ident: syn::Ident,
    /// The struct's name and its leaves, or `None` for an argument of another type.
    pub strukt: Option<(syn::Ident, Vec<Leaf>)>,
}

/// The arguments of `item` with their leaves; `Err(name)` for the first struct whose
/// fields are not known yet; `Ok(None)` when no argument is a struct.
pub fn plan(item: &syn::ItemFn, infos: &[StructInfo]) -> Result<Option<Vec<Arg>>, syn::Ident> {
    let generics: Vec<String> = item.sig.generics.type_params().map(|t| t.ident.to_string()).collect();
    let by_name: HashMap<String, &StructInfo> = infos.iter().map(|s| (s.name.to_string(), s)).collect();
    let mut args = Vec::new();
    let mut any = false;
    for input in &item.sig.inputs {
        let syn::FnArg::Typed(pt) = input else { return Ok(None) };
        let syn::Pat::Ident(pi) = &*pt.pat else { return Ok(None) };
        let strukt = match struct_name(&pt.ty, &generics) {
            Some(s) => {
                any = true;
                let mut leaves = Vec::new();
                leaves_of(s, &pi.ident.to_string(), &[], false, &by_name, &generics, &mut leaves)?;
                Some((s.clone(), leaves))
            }
            None => None,
        };
        args.push(Arg {
            ident: pi.ident.clone(),
            strukt,
        });
    }
    Ok(any.then_some(args))
}

fn leaves_of(
    s: &syn::Ident,
    prefix: &str,
    path: &[syn::Ident],
    buffer: bool,
    by_name: &HashMap<String, &StructInfo>,
    generics: &[String],
    out: &mut Vec<Leaf>,
) -> Result<(), syn::Ident> {
    let Some(info) = by_name.get(&s.to_string()) else {
        return Err(s.clone());
    };
    for f in &info.fields {
        let name = format!("{prefix}__{}", syn::ext::IdentExt::unraw(&f.ident));
        let mut p = path.to_vec();
        p.push(f.ident.clone());
        let buffer = buffer || f.buffer;
        if let Some(inner) = struct_name(&f.ty, generics) {
            leaves_of(inner, &name, &p, buffer, by_name, generics, out)?;
            continue;
        }
        let flat = syn::Ident::new(&name, Span::call_site());
        let (ty, by_ref, owned, na) = match (nalgebra_storage(&f.ty), crate::dvector::dynamic_arg(&f.ty)) {
            (Some((t, na)), _) => (t, true, false, Some(na)),
            // A `DVector` field: its storage as a slice.
            (None, Some(d)) if !d.matrix => {
                let e = d.elem;
                (syn::parse_quote!(&[#e]), true, true, Some(Na::Dyn))
            }
            // A `DMatrix` field: its column-major storage as a slice, its shape beside it.
            (None, Some(d)) => {
                let e = d.elem;
                (syn::parse_quote!(&[#e]), true, true, Some(Na::DynMatrix))
            }
            _ => {
                let (t, r, o) = flat_ty(&f.ty);
                (t, r, o, None)
            }
        };
        out.push(Leaf {
            flat,
            path: p,
            ty,
            by_ref,
            owned,
            buffer,
            batchable: floats(&f.ty) || matches!(na, Some(Na::Vector | Na::Matrix)),
            na,
        });
    }
    Ok(())
}

/// The storage type of a statically sized nalgebra matrix of floats (`SMatrix<T, R, C>`,
/// `SVector<T, N>`, the aliases `Vector3<T>`, `Matrix2x3<T>`, ..): `&[T; N]` for a
/// vector, `&[[T; R]; C]` (its columns) for a matrix.
fn nalgebra_storage(t: &syn::Type) -> Option<(syn::Type, Na)> {
    let syn::Type::Path(p) = t else { return None };
    let seg = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return None;
    };
    let args: Vec<&syn::GenericArgument> = a.args.iter().collect();
    let elem = match args.first() {
        Some(syn::GenericArgument::Type(e @ syn::Type::Path(ep)))
            if ep.path.is_ident("f64") || ep.path.is_ident("f32") =>
        {
            e.clone()
        }
        _ => return None,
    };
    let dim = |g: &syn::GenericArgument| -> Option<TokenStream> {
        match g {
            syn::GenericArgument::Const(e) => Some(e.to_token_stream()),
            syn::GenericArgument::Type(t) => Some(t.to_token_stream()),
            _ => None,
        }
    };
    let name = seg.ident.to_string();
    let (rows, cols): (TokenStream, TokenStream) = match (name.as_str(), args.len()) {
        ("SVector", 2) => (dim(args[1])?, quote!(1)),
        ("SMatrix", 3) => (dim(args[1])?, dim(args[2])?),
        (n, 1) => {
            // Unsuffixed: array lengths are `usize`, and `Vector3`'s one column is `1`.
            let (r, c) = crate::lower::nalgebra_alias_shape(n)?;
            let (r, c) = (
                proc_macro2::Literal::usize_unsuffixed(usize::from(r)),
                proc_macro2::Literal::usize_unsuffixed(usize::from(c)),
            );
            (quote!(#r), quote!(#c))
        }
        _ => return None,
    };
    if cols.to_string() == "1" {
        Some((syn::parse_quote!(&[#elem; #rows]), Na::Vector))
    } else {
        Some((syn::parse_quote!(&[[#elem; #rows]; #cols]), Na::Matrix))
    }
}

/// Whether a type is a float or a (nested) array of floats.
fn floats(t: &syn::Type) -> bool {
    match t {
        syn::Type::Array(a) => floats(&a.elem),
        syn::Type::Path(p) => p.path.is_ident("f64") || p.path.is_ident("f32"),
        _ => false,
    }
}

/// A field's flat argument type: a number by value, a `Vec<E>` as `&[E]`, anything else by
/// reference; and whether its value is owned (moved out with `take`).
fn flat_ty(t: &syn::Type) -> (syn::Type, bool, bool) {
    if let syn::Type::Path(p) = t {
        if let Some(seg) = p.path.segments.last() {
            let n = seg.ident.to_string();
            if p.path.segments.len() == 1
                && seg.arguments.is_empty()
                && (matches!(n.as_str(), "f64" | "f32" | "bool") || crate::lower::INT_TYPES.contains(&n.as_str()))
            {
                return (t.clone(), false, false);
            }
            if n == "Vec" {
                if let syn::PathArguments::AngleBracketed(a) = &seg.arguments {
                    if let Some(syn::GenericArgument::Type(e)) = a.args.first() {
                        return (syn::parse_quote!(&[#e]), true, true);
                    }
                }
            }
            let owned = matches!(n.as_str(), "DVector" | "DMatrix");
            return (syn::parse_quote!(&#t), true, owned);
        }
    }
    (syn::parse_quote!(&#t), true, false)
}

/// The flat arguments that hold nalgebra values as their storage, for the lowering.
pub fn nalgebra_arrays(args: &[Arg]) -> crate::lower::NalgebraArrays {
    let mut out = crate::lower::NalgebraArrays::default();
    for (_, leaves) in args.iter().filter_map(|a| a.strukt.as_ref()) {
        for l in leaves {
            match l.na {
                Some(Na::Vector) => out.vectors.push(l.flat.to_string()),
                Some(Na::Matrix) => out.columns.push(l.flat.to_string()),
                Some(Na::Dyn | Na::DynMatrix) | None => {}
            }
        }
    }
    out
}

/// The `DMatrix` leaves of the struct arguments, in argument and leaf order, each with
/// its struct argument: the flat function takes their row and column counts as `usize`
/// arguments after the user's (`p__w__nrows`, `p__w__ncols`, two per matrix in this order),
/// as [`crate::dvector`] does for a `DMatrix` argument.
pub fn matrix_dims(args: &[Arg]) -> Vec<(&syn::Ident, &Leaf)> {
    args.iter()
        .filter_map(|a| a.strukt.as_ref().map(|(_, ls)| (&a.ident, ls)))
        .flat_map(|(p, ls)| ls.iter().filter(|l| l.na == Some(Na::DynMatrix)).map(move |l| (p, l)))
        .collect()
}

/// The flat arguments holding a `DMatrix` leaf's row and column counts.
fn dims_idents(l: &Leaf) -> [syn::Ident; 2] {
    let m = l.flat.to_string();
    [
        crate::dvector::dims_of(&m, "nrows"),
        crate::dvector::dims_of(&m, "ncols"),
    ]
}

/// The flat function: `__fluxion_flat_f`, each struct argument replaced by its leaves, and
/// the body reading leaves for fields and passing leaves for whole structs.
pub fn flatten(item: &syn::ItemFn, args: &[Arg]) -> syn::Result<syn::ItemFn> {
    let mut flat = item.clone();
    flat.sig.ident = format_ident!("{FLAT}{}", syn::ext::IdentExt::unraw(&item.sig.ident));
    let mut inputs = syn::punctuated::Punctuated::<syn::FnArg, syn::Token![,]>::new();
    let mut structs = HashMap::new();
    for (input, a) in item.sig.inputs.iter().zip(args) {
        match &a.strukt {
            None => inputs.push(input.clone()),
            Some((_, leaves)) => {
                for l in leaves {
                    let (id, ty) = (&l.flat, &l.ty);
                    inputs.push(syn::parse_quote!(#id: #ty));
                }
                structs.insert(a.ident.to_string(), leaves.clone());
            }
        }
    }
    // A `DMatrix` leaf's row and column counts, after the user's arguments.
    let matrices = matrix_dims(args);
    for (_, l) in &matrices {
        let [r, c] = dims_idents(l);
        inputs.push(syn::parse_quote!(#r: usize));
        inputs.push(syn::parse_quote!(#c: usize));
    }
    flat.sig.inputs = inputs;
    let mut rw = Rewrite {
        structs: &structs,
        err: None,
    };
    rw.visit_block_mut(&mut flat.block);
    if let Some(e) = rw.err {
        return Err(e);
    }
    // `p.w[(i, j)]`, `p.w.nrows()`, `p.w.ncols()` of a `DMatrix` leaf, now `p__w`: reads
    // of its storage and its count arguments.
    let names: Vec<String> = matrices.iter().map(|(_, l)| l.flat.to_string()).collect();
    crate::dvector::matrix_reads(&mut flat.block, &names);
    flat.attrs.retain(|a| a.path().is_ident("allow"));
    flat.attrs.push(syn::parse_quote!(#[doc(hidden)]));
    flat.attrs.push(
        syn::parse_quote!(#[allow(non_snake_case, dead_code, clippy::needless_range_loop, clippy::too_many_arguments)]),
    );
    Ok(flat)
}

/// The field path of `e` from a struct argument: `p.layer.w` is `(p, [layer, w])`.
fn field_path(e: &syn::Expr) -> Option<(String, Vec<syn::Ident>)> {
    match e {
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| (i.to_string(), Vec::new())),
        syn::Expr::Field(f) => {
            let syn::Member::Named(n) = &f.member else { return None };
            let (root, mut path) = field_path(&f.base)?;
            path.push(n.clone());
            Some((root, path))
        }
        syn::Expr::Paren(p) => field_path(&p.expr),
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => field_path(&u.expr),
        _ => None,
    }
}

struct Rewrite<'a> {
    structs: &'a HashMap<String, Vec<Leaf>>,
    err: Option<syn::Error>,
}

impl Rewrite<'_> {
    /// The leaves under `e` when `e` is a struct argument or a path of fields into one.
    fn leaves(&self, e: &syn::Expr) -> Option<Vec<&Leaf>> {
        let (root, path) = field_path(e)?;
        let leaves = self.structs.get(&root)?;
        Some(leaves.iter().filter(|l| l.path.starts_with(&path)).collect())
    }
    fn fail(&mut self, t: impl ToTokens, msg: &str) {
        if self.err.is_none() {
            self.err = Some(syn::Error::new_spanned(t, msg));
        }
    }
}

const WHOLE: &str = "a parameter struct is used through its fields (`p.w[i]`) or passed whole to another annotated function (`g(p, x)`)\nhint: read the fields you need, or pass the struct to a function marked `#[differentiable]`";

impl VisitMut for Rewrite<'_> {
    fn visit_expr_mut(&mut self, e: &mut syn::Expr) {
        // `&p.w` of a leaf passed by reference is the leaf itself.
        if let syn::Expr::Reference(r) = e {
            if let Some(ls) = self.leaves(&r.expr) {
                if let [l] = ls.as_slice() {
                    if l.path.len() == field_path(&r.expr).map_or(0, |(_, p)| p.len()) && l.by_ref {
                        let id = &l.flat;
                        *e = syn::parse_quote!(#id);
                        return;
                    }
                }
            }
        }
        if let syn::Expr::Field(_) = e {
            if let Some((_, path)) = field_path(e) {
                if let Some(ls) = self.leaves(e) {
                    match ls.as_slice() {
                        [l] if l.path == path => {
                            let id = &l.flat;
                            *e = syn::parse_quote!(#id);
                            return;
                        }
                        [] => {
                            self.fail(&*e, "no such field of the parameter struct");
                            return;
                        }
                        _ => {
                            let t = e.clone();
                            self.fail(t, WHOLE);
                            return;
                        }
                    }
                }
            }
        }
        if let syn::Expr::Call(c) = e {
            let mut any = false;
            let mut args = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::new();
            for a in &c.args {
                let inner = match a {
                    syn::Expr::Reference(r) => &*r.expr,
                    a => a,
                };
                match self.leaves(inner) {
                    Some(ls)
                        if ls.len() > 1
                            || ls
                                .first()
                                .is_some_and(|l| field_path(inner).is_some_and(|(_, p)| l.path.len() > p.len())) =>
                    {
                        any = true;
                        if let Some(l) = ls.iter().find(|l| l.na == Some(Na::DynMatrix)) {
                            // The matrix as the user reaches it: `p.layer.w`.
                            let root = field_path(inner).map_or(String::new(), |(r, _)| r);
                            let m = std::iter::once(root)
                                .chain(l.path.iter().map(|i| syn::ext::IdentExt::unraw(i).to_string()))
                                .collect::<Vec<_>>()
                                .join(".");
                            let msg = format!(
                                "a parameter struct with a `DMatrix` field is not passed whole to another function yet\nhint: read the fields here, or pass the matrix's storage and shape (`{m}.as_slice()`, `{m}.nrows()`, `{m}.ncols()`) to a function of a slice (column-major)"
                            );
                            self.fail(inner, &msg);
                            return;
                        }
                        for l in ls {
                            let id = &l.flat;
                            args.push(syn::parse_quote!(#id));
                        }
                    }
                    _ => args.push(a.clone()),
                }
            }
            if any {
                if let syn::Expr::Path(p) = &mut *c.func {
                    if let Some(last) = p.path.segments.last_mut() {
                        last.ident = format_ident!("{FLAT}{}", syn::ext::IdentExt::unraw(&last.ident));
                    }
                } else {
                    let f = c.func.clone();
                    self.fail(
                        f,
                        "a parameter struct is passed to a function named by its path (`g(p, x)`)",
                    );
                }
                c.args = args;
                for a in c.args.iter_mut() {
                    self.visit_expr_mut(a);
                }
                return;
            }
        }
        if let syn::Expr::Path(p) = e {
            if let Some(i) = p.path.get_ident() {
                if self.structs.contains_key(&i.to_string()) {
                    let t = e.clone();
                    self.fail(t, WHOLE);
                    return;
                }
            }
        }
        syn::visit_mut::visit_expr_mut(self, e);
    }
}

/// The options of each stacked transform for the flat function: `argnums` and `in_dims`
/// name the flat arguments (a struct's trainable leaves for the struct). A gradient with
/// respect to a struct is built for `grad` and `grad_and_value` on top of the stack; a
/// struct under `vmap` is shared (`None`).
pub fn map_options(stack: &[Options], args: &[Arg], ret: &syn::ReturnType) -> syn::Result<Vec<Options>> {
    // The flat indices of each argument, and of its trainable leaves.
    let mut at = 0;
    let mut flat_of: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for a in args {
        match &a.strukt {
            None => {
                flat_of.push((vec![at], vec![at]));
                at += 1;
            }
            Some((_, leaves)) => {
                let all: Vec<usize> = (at..at + leaves.len()).collect();
                let train = leaves
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.buffer)
                    .map(|(k, _)| at + k)
                    .collect();
                at += leaves.len();
                flat_of.push((all, train));
            }
        }
    }
    let is_struct = |k: usize| args.get(k).is_some_and(|a| a.strukt.is_some());
    let mut out = Vec::new();
    // `stack[0]` is the outermost attribute (applied last).
    for (level, o) in stack.iter().enumerate() {
        let mut o = o.clone();
        // A chosen name is the wrapper's; the flat function carries the prefix.
        if let Some((n, sp)) = &o.name {
            o.name = Some((format!("{FLAT}{n}"), *sp));
        }
        let takes_argnums = matches!(
            o.transform,
            Transform::Grad | Transform::GradAndValue | Transform::Jacrev | Transform::Jacfwd | Transform::Hessian
        );
        if takes_argnums {
            // Not given: the first argument, and errors point at it.
            let first = args.first().map_or(o.span, |a| a.ident.span());
            let given = o.argnums.clone().unwrap_or(Argnums::One(0, first));
            let idx = given.indices();
            if idx.iter().any(|(k, _)| is_struct(*k)) {
                let top = level == 0;
                let jac = matches!(o.transform, Transform::Jacrev | Transform::Jacfwd)
                    && (rows_of(ret).is_some() || scalar_ret(ret));
                // The Hessian: of the struct alone, whose fields are floats, arrays of floats
                // or static nalgebra matrices (one struct per scalar of it).
                if o.transform == Transform::Hessian && top {
                    let (k, sp) = idx.iter().copied().find(|(k, _)| is_struct(*k)).unwrap_or((0, o.span));
                    if idx.len() > 1 {
                        return Err(syn::Error::new(
                            sp,
                            "`hessian` with respect to a parameter struct takes the struct alone, not beside other arguments\nhint: write `argnums = 0` for the struct (its Hessian is one struct per scalar), or take the other arguments' Hessian in a second function",
                        ));
                    }
                    let fixed = args[k]
                        .strukt
                        .as_ref()
                        .is_some_and(|(_, ls)| ls.iter().filter(|l| !l.buffer).all(|l| l.batchable));
                    if !fixed {
                        return Err(syn::Error::new(
                            sp,
                            "`hessian` with respect to a parameter struct needs fields of fixed size: floats, arrays of floats and statically sized nalgebra matrices\nhint: mark a `Vec`, `DVector` or `DMatrix` field `#[param(buffer)]` if it is not trained, or hold it in a fixed-size array (`SVector` / `SMatrix` for nalgebra values)",
                        ));
                    }
                }
                let ok = matches!(
                    o.transform,
                    Transform::Grad | Transform::GradAndValue | Transform::Hessian
                ) || jac;
                if o.has_aux {
                    let (_, sp) = idx.iter().copied().find(|(k, _)| is_struct(*k)).unwrap_or((0, o.span));
                    return Err(syn::Error::new(
                        sp,
                        "`has_aux` with a gradient with respect to a parameter struct is not supported yet\nhint: return the auxiliary value from a second function",
                    ));
                }
                // Under `vmap`: one gradient per sample (per-sample gradients, an
                // ensemble's gradients).
                let under_vmap = level == 1
                    && stack[0].transform == Transform::Vmap
                    && matches!(o.transform, Transform::Grad | Transform::GradAndValue);
                // Per-sample gradients are batched part by part, as arrays: not a leaf of
                // run-time size.
                let dynamic = idx.iter().find(|(k, _)| {
                    args[*k].strukt.as_ref().is_some_and(|(_, ls)| {
                        ls.iter()
                            .any(|l| !l.buffer && matches!(l.na, Some(Na::Dyn | Na::DynMatrix)))
                    })
                });
                if let (true, Some((_, sp))) = (under_vmap, dynamic) {
                    return Err(syn::Error::new(
                        *sp,
                        "per-sample gradients of a parameter struct with a `DVector` or `DMatrix` field are not supported yet\nhint: call the struct's `grad` once per sample in a loop, or hold the weights in `SVector` / `SMatrix` fields (a const generic takes any size)",
                    ));
                }
                if !(top && ok || under_vmap) {
                    let (_, sp) = idx.iter().copied().find(|(k, _)| is_struct(*k)).unwrap_or((0, o.span));
                    return Err(syn::Error::new(
                        sp,
                        format!(
                            "`{}` with respect to a parameter struct is not supported yet here: `grad`, `grad_and_value`, `hessian`, and `jacrev` / `jacfwd` of a function returning a float or an array of floats, outermost in the stack, give the struct's derivative\nhint: differentiate with respect to the other arguments here, or take the derivative with respect to the struct in an outer transform",
                            o.transform.name()
                        ),
                    ));
                }
                let mut many = Vec::new();
                for (k, sp) in idx {
                    let Some((_, train)) = flat_of.get(k) else {
                        return Err(syn::Error::new(sp, "internal: argnums out of range"));
                    };
                    many.extend(train.iter().map(|&j| (j, sp)));
                }
                o.argnums = Some(Argnums::Many(many));
            } else {
                let map = |k: usize| flat_of.get(k).map_or(k, |(all, _)| all[0]);
                o.argnums = Some(match given {
                    Argnums::One(k, sp) => Argnums::One(map(k), sp),
                    Argnums::Many(v) => Argnums::Many(v.into_iter().map(|(k, sp)| (map(k), sp)).collect()),
                });
            }
        }
        if matches!(o.transform, Transform::Jvp | Transform::Vjp) {
            let at = args
                .iter()
                .find(|a| a.strukt.is_some())
                .map_or(o.span, |a| a.ident.span());
            return Err(syn::Error::new(
                at,
                format!(
                    "`{}` of a function of a parameter struct is not supported yet\nhint: `grad` or `grad_and_value` give the struct's gradient",
                    o.transform.name()
                ),
            ));
        }
        if o.transform == Transform::Vmap {
            let dims = match &o.in_dims {
                None => vec![(Some(0), o.span); args.len()],
                Some(d) => d.dims(args.len()).map_err(|(sp, m)| syn::Error::new(sp, m))?,
            };
            let mut each = Vec::new();
            for (k, (d, sp)) in dims.into_iter().enumerate() {
                // A batch of structs (an ensemble): each leaf batched, gathered by the
                // wrapper into one slice of samples; leaves of floats and arrays only.
                let batchable = args[k]
                    .strukt
                    .as_ref()
                    .is_some_and(|(_, ls)| ls.iter().all(|l| l.batchable));
                if is_struct(k) && d.is_some() && (d != Some(0) || !batchable) {
                    return Err(syn::Error::new(
                        sp,
                        "a batch of parameter structs (an ensemble) is supported along axis 0 for structs whose fields are floats and arrays of floats\nhint: stack the models in a slice with `in_dims` 0, or share one with `None`",
                    ));
                }
                let n = flat_of.get(k).map_or(1, |(all, _)| all.len());
                each.extend(std::iter::repeat_n((d, sp), n));
            }
            // A `DMatrix` leaf's counts: shared by every sample.
            each.extend(std::iter::repeat_n((None, o.span), 2 * matrix_dims(args).len()));
            o.in_dims = Some(InDims::Each(each, o.span));
            // Per-sample gradients with respect to one struct (the `vmap` right over
            // its `grad`): also the form writing into the caller's structs.
            let inner = stack.get(level + 1).filter(|g| g.transform == Transform::Grad);
            o.rows = inner.is_some_and(|g| {
                let given = g.argnums.clone().unwrap_or(Argnums::One(0, g.span));
                matches!(given, Argnums::One(k, _) if is_struct(k))
            }) && level == 0
                && o.out_dims.is_none();
        }
        out.push(o);
    }
    Ok(out)
}

/// The public functions of `generated` (flat names) as wrappers of the user's names taking
/// the structs; each flat function is hidden. `top` is the outermost transform's options
/// (the struct's gradient, if any, comes from it) and `top_name` its flat name.
pub fn wrappers(
    generated: TokenStream,
    infos: &[StructInfo],
    args: &[Arg],
    top: Option<(&Options, &str, Option<&str>)>,
    orig_args: &[Option<syn::Type>],
    ret: &syn::ReturnType,
) -> syn::Result<TokenStream> {
    let mut file: syn::File = syn::parse2(generated)?;
    let mut out = TokenStream::new();
    // The functions generated, to find a batch's `_rows` form.
    let names = crate::expand::fn_names(&file.items);
    for it in &mut file.items {
        let syn::Item::Fn(f) = it else { continue };
        let name = f.sig.ident.to_string();
        let Some(pos) = name.find(FLAT) else { continue };
        let hidden = doc_hidden(f);
        // Hidden helpers keep their flat names.
        if hidden {
            continue;
        }
        let user = format!("{}{}", &name[..pos], &name[pos + FLAT.len()..]);
        // The flat `_into` of a per-sample struct gradient stays hidden (its buffers are
        // one slice per leaf): the wrapper's `_into`, where there is one, fills structs
        // through the flat `_rows` form (`per_sample_rows`).
        let per_sample_into = top.is_some_and(|(o, _, v)| {
            name.ends_with("_into")
                && Some(name.trim_end_matches("_into")) == v
                && o.argnums
                    .clone()
                    .unwrap_or(Argnums::One(0, o.span))
                    .indices()
                    .iter()
                    .any(|(k, _)| args.get(*k).is_some_and(|a| a.strukt.is_some()))
        });
        // Nor has the Hessian with respect to a struct (a `Vec` of structs).
        let hessian_into = top.is_some_and(|(o, h, _)| {
            o.transform == Transform::Hessian && name.ends_with("_into") && name.trim_end_matches("_into") == h
        });
        // Nor has a function of a struct with `DVector` fields (their buffers are `Vec`s in
        // the flat form).
        let dyn_into = name.ends_with("_into")
            && args
                .iter()
                .filter_map(|a| a.strukt.as_ref())
                .any(|(_, ls)| ls.iter().any(|l| matches!(l.na, Some(Na::Dyn | Na::DynMatrix))));
        if per_sample_into || hessian_into || dyn_into {
            f.attrs.retain(|a| !a.path().is_ident("doc"));
            f.attrs.push(syn::parse_quote!(#[doc(hidden)]));
            continue;
        }
        let rows = names.contains(&format!("{}_rows", name.strip_prefix("try_").unwrap_or(&name)));
        let w = wrapper(f, &user, infos, args, top, orig_args, ret, rows)?;
        out.extend(w);
        f.attrs.retain(|a| !a.path().is_ident("doc"));
        f.attrs.push(syn::parse_quote!(#[doc(hidden)]));
    }
    Ok(quote!(#file #out))
}

#[allow(clippy::too_many_arguments)]
fn wrapper(
    f: &syn::ItemFn,
    user: &str,
    infos: &[StructInfo],
    args: &[Arg],
    top: Option<(&Options, &str, Option<&str>)>,
    orig_args: &[Option<syn::Type>],
    ret: &syn::ReturnType,
    rows: bool,
) -> syn::Result<TokenStream> {
    let flat_name = &f.sig.ident;
    let mut params: Vec<TokenStream> = Vec::new();
    let mut call: Vec<TokenStream> = Vec::new();
    let inputs: Vec<&syn::FnArg> = f.sig.inputs.iter().collect();
    let mut k = 0;
    let mut out_param: Option<(syn::Ident, syn::Type)> = None;
    // Gathered leaves of batched structs, and those structs' names.
    let mut prelude: Vec<TokenStream> = Vec::new();
    let mut batched_structs: Vec<String> = Vec::new();
    while k < inputs.len() {
        let syn::FnArg::Typed(pt) = inputs[k] else {
            return Err(syn::Error::new(Span::call_site(), "internal: a method"));
        };
        let id = match &*pt.pat {
            syn::Pat::Ident(pi) => pi.ident.clone(),
            _ => return Err(syn::Error::new(pt.span(), "internal: a pattern parameter")),
        };
        let st = args.iter().zip(orig_args).find(|(a, _)| {
            a.strukt
                .as_ref()
                .is_some_and(|(_, ls)| ls.first().is_some_and(|l| l.flat == id))
        });
        if let Some((a, Some(orig_ty))) = st {
            let Some((_, leaves)) = &a.strukt else {
                return Err(syn::Error::new(
                    Span::call_site(),
                    "internal: a struct argument without leaves",
                ));
            };
            let p = &a.ident;
            // Batched (an ensemble): the flat argument is a slice of the leaf's samples.
            let slice = |t: &syn::Type| matches!(t, syn::Type::Reference(r) if matches!(&*r.elem, syn::Type::Slice(_)));
            let batched = slice(&pt.ty) && !slice(&leaves[0].ty);
            if batched {
                let s = a.strukt.as_ref().map(|(s, _)| s.clone());
                params.push(quote!(#p: &[#s]));
                batched_structs.push(p.to_string());
                for l in leaves {
                    let path = &l.path;
                    let st = l.storage();
                    let g = format_ident!("__{}", l.flat);
                    prelude.push(quote! {
                        let #g: ::std::vec::Vec<_> = #p.iter().map(|__q| ::core::clone::Clone::clone(&__q.#(#path).* #st)).collect();
                    });
                    call.push(quote!(&#g));
                }
            } else {
                params.push(quote!(#p: #orig_ty));
                for l in leaves {
                    let path = &l.path;
                    let st = l.storage();
                    call.push(if l.by_ref {
                        quote!(&#p.#(#path).* #st)
                    } else {
                        quote!(#p.#(#path).*)
                    });
                }
            }
            k += leaves.len();
            continue;
        }
        // A `DMatrix` leaf's counts, read from the struct's field.
        if let Some((p, l, which)) = matrix_dims(args).into_iter().find_map(|(p, l)| {
            let [r, c] = dims_idents(l);
            (r == id)
                .then_some((p, l, quote!(nrows)))
                .or((c == id).then_some((p, l, quote!(ncols))))
        }) {
            let path = &l.path;
            call.push(quote!(#p.#(#path).*.#which()));
            k += 1;
            continue;
        }
        let ty = &*pt.ty;
        if id == "out" && f.sig.ident.to_string().ends_with("_into") {
            out_param = Some((id.clone(), ty.clone()));
        }
        params.push(quote!(#id: #ty));
        call.push(quote!(#id));
        k += 1;
    }
    let user_id = syn::Ident::new(user, f.sig.ident.span());
    let vis = &f.vis;
    let generics = &f.sig.generics;
    let wc = &generics.where_clause;
    let docs = user_docs(f);
    // The gradient's regrouping, where the flat function is the struct's gradient.
    let base = flat_name.to_string();
    let base = base.strip_prefix("try_").unwrap_or(&base);
    // The batch over the gradient: one struct per sample.
    let under_vmap = top.is_some_and(|(_, _, v)| v == Some(base));
    let regroup = top.filter(|(o, grad_name, _)| {
        let of_struct = matches!(
            o.transform,
            Transform::Grad | Transform::GradAndValue | Transform::Jacrev | Transform::Jacfwd
        ) && o
            .argnums
            .clone()
            .unwrap_or(Argnums::One(0, o.span))
            .indices()
            .iter()
            .any(|(k, _)| args.get(*k).is_some_and(|a| a.strukt.is_some()));
        let whole = under_vmap || base.trim_end_matches("_into") == *grad_name;
        of_struct && whole
    });
    let regroup = regroup.map(|(o, _, _)| o);
    let hessian = top.filter(|(o, h, _)| {
        o.transform == Transform::Hessian
            && base == *h
            && o.argnums
                .clone()
                .unwrap_or(Argnums::One(0, o.span))
                .indices()
                .iter()
                .any(|(k, _)| args.get(*k).is_some_and(|a| a.strukt.is_some()))
    });
    if let Some((o, _, _)) = hessian {
        return hessian_rows(f, &user_id, o, infos, args, (&params, &call, &prelude), docs);
    }
    let Some(o) = regroup else {
        let ret = &f.sig.output;
        return Ok(quote! {
            #(#docs)*
            #[allow(clippy::too_many_arguments)]
            #vis fn #user_id #generics (#(#params,)*) #ret #wc {
                #(#prelude)*
                #flat_name(#(#call,)*)
            }
        });
    };
    if under_vmap {
        return per_sample(
            f,
            &user_id,
            o,
            infos,
            args,
            orig_args,
            (&params, &call, &prelude),
            &batched_structs,
            docs,
            rows,
        );
    }
    // The gradient's parts, in the user's `argnums`: a struct's trainable leaves, or one
    // flat part for another argument.
    let given = o.argnums.clone().unwrap_or(Argnums::One(0, o.span));
    let one = matches!(given, Argnums::One(..));
    // `[T; M]` results of a Jacobian: the struct's part is `[S; M]`.
    let rows = if matches!(o.transform, Transform::Jacrev | Transform::Jacfwd) {
        rows_of(ret)
    } else {
        None
    };
    let mut parts: Vec<Part> = Vec::new();
    for (a, _) in given.indices() {
        let (Some(arg), Some(ty)) = (args.get(a), orig_args.get(a)) else {
            return Err(syn::Error::new(o.span, "internal: argnums out of range"));
        };
        match (&arg.strukt, ty) {
            (Some((s, leaves)), _) => parts.push(Part::Struct(arg.ident.clone(), s.clone(), leaves.clone())),
            (None, _) => parts.push(Part::Plain),
        }
    }
    let n_flat: usize = parts
        .iter()
        .map(|p| match p {
            Part::Plain => 1,
            Part::Struct(_, _, ls) => ls.iter().filter(|l| !l.buffer).count(),
        })
        .sum();
    let gids: Vec<syn::Ident> = (0..n_flat).map(|j| format_ident!("__g{j}")).collect();
    // The struct-shaped gradient from the flat parts `__g0, ..`.
    let mut j = 0;
    let mut built = Vec::new();
    for p in &parts {
        match p {
            Part::Plain => {
                let g = &gids[j];
                j += 1;
                built.push(quote!(#g));
            }
            Part::Struct(pid, s, leaves) => {
                let mut vals = Vec::new();
                for l in leaves {
                    if l.buffer {
                        let path = &l.path;
                        vals.push((l.path.clone(), quote!(::core::clone::Clone::clone(&#pid.#(#path).*))));
                    } else {
                        let g = &gids[j];
                        j += 1;
                        // A Jacobian: one struct per output element, leaf by leaf.
                        let v = if rows.is_some() {
                            quote!(::core::clone::Clone::clone(&#g[__m]))
                        } else {
                            quote!(#g)
                        };
                        vals.push((l.path.clone(), l.field_value(v, &quote!(#pid))));
                    }
                }
                let lit = struct_lit(s, &vals, 0, infos)?;
                built.push(if rows.is_some() {
                    quote!(::core::array::from_fn(|__m| #lit))
                } else {
                    lit
                });
            }
        }
    }
    let grad = if one && built.len() == 1 {
        built[0].clone()
    } else {
        quote!((#(#built,)*))
    };
    let with_value = o.transform == Transform::GradAndValue;
    let flat_ret: syn::Type = match (&out_param, &f.sig.output) {
        (Some((_, syn::Type::Reference(r))), _) => (*r.elem).clone(),
        (None, syn::ReturnType::Type(_, t)) => (**t).clone(),
        _ => {
            return Err(syn::Error::new(
                Span::call_site(),
                "internal: a gradient without a type",
            ))
        }
    };
    let ret_ty = gradient_type(&parts, one, &flat_ret, with_value, rows.as_ref())?;
    let pat = quote!((#(#gids,)*));
    if let Some((id, _)) = out_param {
        // `out` is the last parameter of a gradient's `_into` form.
        params.pop();
        call.pop();
        // The flat buffer: the caller's buffers moved in (`take` for owned leaves), the
        // results moved back.
        let mut places = Vec::new();
        for (pi, p) in parts.iter().enumerate() {
            let base = if with_value {
                if one && parts.len() == 1 {
                    quote!(#id.0)
                } else {
                    let i = syn::Index::from(pi);
                    quote!(#id.0.#i)
                }
            } else if one && parts.len() == 1 {
                quote!((*#id))
            } else {
                let i = syn::Index::from(pi);
                quote!(#id.#i)
            };
            match p {
                Part::Plain => places.push((base, false, false)),
                Part::Struct(_, _, leaves) => {
                    for l in leaves.iter().filter(|l| !l.buffer) {
                        let path = &l.path;
                        let st = l.storage();
                        if rows.is_some() {
                            places.push((quote!(#base[__m].#(#path).* #st), l.owned, true));
                        } else {
                            places.push((quote!(#base.#(#path).* #st), l.owned, false));
                        }
                    }
                }
            }
        }
        let takes = places.iter().map(|(pl, owned, per_row)| {
            let v = if *owned {
                quote!(::core::mem::take(&mut #pl))
            } else {
                quote!(#pl)
            };
            if *per_row {
                quote!(::core::array::from_fn(|__m| #v))
            } else {
                v
            }
        });
        let backs = places.iter().zip(&gids).map(|((pl, _, per_row), g)| {
            if *per_row {
                quote! {
                    for (__m, __v) in ::core::iter::IntoIterator::into_iter(#g).enumerate() {
                        #pl = __v;
                    }
                }
            } else {
                quote!(#pl = #g;)
            }
        });
        let (tmp, value_back) = if with_value {
            (quote!(((#(#takes,)*), #id.1)), quote!(#id.1 = __v;))
        } else {
            (quote!((#(#takes,)*)), quote!())
        };
        let unpack = if with_value { quote!((#pat, __v)) } else { quote!(#pat) };
        return Ok(quote! {
            #(#docs)*
            #[allow(clippy::too_many_arguments)]
            #vis fn #user_id #generics (#(#params,)* #id: &mut #ret_ty) #wc {
                #(#prelude)*
                let mut __t = #tmp;
                #flat_name(#(#call,)* &mut __t);
                let #unpack = __t;
                #(#backs)*
                #value_back
            }
        });
    }
    let body = if with_value {
        quote! {
            #(#prelude)*
            let (#pat, __v) = #flat_name(#(#call,)*);
            (#grad, __v)
        }
    } else {
        quote! {
            #(#prelude)*
            let #pat = #flat_name(#(#call,)*);
            #grad
        }
    };
    Ok(quote! {
        #(#docs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #user_id #generics (#(#params,)*) -> #ret_ty #wc { #body }
    })
}

/// The wrapper of a `vmap` over the struct's gradient (`try_` form included): the flat
/// batch's per-sample parts regrouped into one struct per sample, buffers cloned from
/// that sample's struct (or the shared one).
#[allow(clippy::too_many_arguments)]
fn per_sample(
    f: &syn::ItemFn,
    user_id: &syn::Ident,
    o: &Options,
    infos: &[StructInfo],
    args: &[Arg],
    orig_args: &[Option<syn::Type>],
    (params, call, prelude): (&[TokenStream], &[TokenStream], &[TokenStream]),
    batched_structs: &[String],
    docs: Vec<TokenStream>,
    rows: bool,
) -> syn::Result<TokenStream> {
    if rows && o.transform == Transform::Grad {
        if let [Some(Arg {
            ident,
            strukt: Some(st),
            ..
        })] = given_args(o, args).as_slice()
        {
            return per_sample_rows(f, user_id, ident, st, (params, call, prelude), batched_structs, docs);
        }
    }
    let flat_name = &f.sig.ident;
    let vis = &f.vis;
    let generics = &f.sig.generics;
    let wc = &generics.where_clause;
    let internal = |m: &str| syn::Error::new(o.span, format!("internal: {m}"));
    if f.sig.ident.to_string().ends_with("_into") {
        return Err(internal("a per-sample struct gradient's `_into`"));
    }
    let given = o.argnums.clone().unwrap_or(Argnums::One(0, o.span));
    let one = matches!(given, Argnums::One(..));
    let with_value = o.transform == Transform::GradAndValue;
    let mut parts = Vec::new();
    for (a, _) in given.indices() {
        let (Some(arg), Some(_)) = (args.get(a), orig_args.get(a)) else {
            return Err(internal("argnums out of range"));
        };
        parts.push(match &arg.strukt {
            Some((s, leaves)) => Part::Struct(arg.ident.clone(), s.clone(), leaves.clone()),
            None => Part::Plain,
        });
    }
    let n_flat: usize = parts
        .iter()
        .map(|p| match p {
            Part::Plain => 1,
            Part::Struct(_, _, ls) => ls.iter().filter(|l| !l.buffer).count(),
        })
        .sum();
    let gids: Vec<syn::Ident> = (0..n_flat).map(|j| format_ident!("__g{j}")).collect();
    // The result type (inside the `try_` form's `Result`).
    let syn::ReturnType::Type(_, rt) = &f.sig.output else {
        return Err(internal("a batch without a result"));
    };
    let try_form = f.sig.ident.to_string().starts_with("try_");
    let flat_ty: syn::Type = if try_form {
        generic_arg(rt, 0).ok_or_else(|| internal("a `try_` form's type"))?
    } else {
        (**rt).clone()
    };
    // The flat parts' types: a `Vec` per part (`grad`), or one `Vec` of per-sample tuples
    // beside the values (`grad_and_value`).
    let (part_tys, value_ty): (Vec<syn::Type>, Option<syn::Type>) = match (&flat_ty, with_value) {
        (syn::Type::Tuple(t), false) => (t.elems.iter().cloned().collect(), None),
        (t, false) => (vec![t.clone()], None),
        (syn::Type::Tuple(t), true) if t.elems.len() == 2 => {
            let inner = generic_arg(&t.elems[0], 0).ok_or_else(|| internal("a per-sample gradient's type"))?;
            let tys = match inner {
                syn::Type::Tuple(tt) => tt
                    .elems
                    .iter()
                    .map(|e| syn::parse_quote!(::std::vec::Vec<#e>))
                    .collect(),
                e => vec![syn::parse_quote!(::std::vec::Vec<#e>)],
            };
            (tys, Some(t.elems[1].clone()))
        }
        _ => return Err(internal("grad_and_value's batch type")),
    };
    // Per sample `__k`: the user's gradient from the flat parts `gid` (already the
    // sample's values for `grad_and_value`, `gid[__k]` for `grad`).
    let mut j = 0;
    let mut built = Vec::new();
    let mut tys = Vec::new();
    for p in &parts {
        match p {
            Part::Plain => {
                let g = &gids[j];
                built.push(if with_value {
                    quote!(#g)
                } else {
                    quote!(::core::clone::Clone::clone(&#g[__k]))
                });
                let t = part_tys.get(j).ok_or_else(|| internal("a part's type"))?;
                tys.push(if with_value {
                    generic_arg(t, 0).map(|e| e.to_token_stream()).unwrap_or_default()
                } else {
                    t.to_token_stream()
                });
                j += 1;
            }
            Part::Struct(pid, s, leaves) => {
                let owner = if batched_structs.contains(&pid.to_string()) {
                    quote!(#pid[__k])
                } else {
                    quote!(#pid)
                };
                let mut vals = Vec::new();
                for l in leaves {
                    let path = &l.path;
                    if l.buffer {
                        vals.push((l.path.clone(), quote!(::core::clone::Clone::clone(&#owner.#(#path).*))));
                    } else {
                        let g = &gids[j];
                        j += 1;
                        let v = if with_value {
                            quote!(#g)
                        } else {
                            quote!(::core::clone::Clone::clone(&#g[__k]))
                        };
                        vals.push((l.path.clone(), l.field_value(v, &owner)));
                    }
                }
                built.push(struct_lit(s, &vals, 0, infos)?);
                tys.push(quote!(#s));
            }
        }
    }
    let pat = quote!((#(#gids,)*));
    let (body, ty) = if with_value {
        let sample = if one && built.len() == 1 {
            built[0].clone()
        } else {
            quote!((#(#built,)*))
        };
        let sty = if one && tys.len() == 1 {
            tys[0].clone()
        } else {
            quote!((#(#tys,)*))
        };
        let v = value_ty.map(|v| v.to_token_stream()).unwrap_or_default();
        (
            quote! {
                let (__gs, __v) = __r;
                let __gs: ::std::vec::Vec<#sty> = ::core::iter::IntoIterator::into_iter(__gs)
                    .enumerate()
                    .map(|(__k, #pat)| #sample)
                    .collect();
                (__gs, __v)
            },
            quote!((::std::vec::Vec<#sty>, #v)),
        )
    } else {
        // Each part batched on its own (JAX's semantics for a tuple result).
        let mut outs = Vec::new();
        let mut out_tys = Vec::new();
        for (b, t) in built.iter().zip(&tys) {
            if matches!(parts[outs.len()], Part::Plain) {
                out_tys.push(t.clone());
            } else {
                out_tys.push(quote!(::std::vec::Vec<#t>));
            }
            outs.push(quote!((0..__n).map(|__k| #b).collect::<::std::vec::Vec<_>>()));
        }
        let first = &gids[0];
        let (e, t) = if one && outs.len() == 1 {
            (outs[0].clone(), out_tys[0].clone())
        } else {
            (quote!((#(#outs,)*)), quote!((#(#out_tys,)*)))
        };
        (
            quote! {
                let #pat = __r;
                let __n = #first.len();
                #e
            },
            t,
        )
    };
    let (body, ty) = if try_form {
        (
            quote! {
                match __r {
                    ::core::result::Result::Ok(__r) => ::core::result::Result::Ok({ #body }),
                    ::core::result::Result::Err(__e) => ::core::result::Result::Err(__e),
                }
            },
            quote!(::core::result::Result<#ty, ::fluxion::BatchError>),
        )
    } else {
        (body, ty)
    };
    Ok(quote! {
        #(#docs)*
        #[allow(clippy::too_many_arguments, clippy::redundant_clone)]
        #vis fn #user_id #generics (#(#params,)*) -> #ty #wc {
            #(#prelude)*
            let __r = #flat_name(#(#call,)*);
            #body
        }
    })
}

/// The arguments a gradient is taken with respect to, as `argnums` lists them.
fn given_args<'a>(o: &Options, args: &'a [Arg]) -> Vec<Option<&'a Arg>> {
    let given = o.argnums.clone().unwrap_or(Argnums::One(0, o.span));
    given.indices().iter().map(|(k, _)| args.get(*k)).collect()
}

/// The wrappers of per-sample gradients with respect to one struct (`vmap` over `grad`):
/// the batch writes each sample's gradient into that sample's struct through the flat
/// `_rows` form (`FieldRows` over the caller's structs), leaf by leaf, with no buffer per
/// leaf. `name(..) -> Vec<S>` allocates the structs (`zeros_like` of the struct the sample
/// uses, so buffers are cloned from it) and fills them; `try_name` returns the batch's
/// length error instead of panicking; `name_into(.., out: &mut [S], chunk_size)` fills the
/// caller's structs, buffers set as `name` sets them.
#[allow(clippy::too_many_arguments)]
fn per_sample_rows(
    f: &syn::ItemFn,
    user_id: &syn::Ident,
    pid: &syn::Ident,
    (s, leaves): &(syn::Ident, Vec<Leaf>),
    (params, call, prelude): (&[TokenStream], &[TokenStream], &[TokenStream]),
    batched_structs: &[String],
    docs: Vec<TokenStream>,
) -> syn::Result<TokenStream> {
    let name = f.sig.ident.to_string();
    let try_form = name.starts_with("try_");
    let base = name.strip_prefix("try_").unwrap_or(&name);
    let vis = &f.vis;
    let generics = &f.sig.generics;
    let wc = &generics.where_clause;
    let rows_fn = format_ident!("{}_rows", base);
    let check_fn = format_ident!("__fluxion_check_{}", base);
    let len_fn = format_ident!("__fluxion_len_{}", base);
    let owner = if batched_structs.contains(&pid.to_string()) {
        quote!(#pid[__k])
    } else {
        quote!(#pid)
    };
    // The places of a struct's trainable leaves, as the flat batch writes them.
    let train: Vec<&Leaf> = leaves.iter().filter(|l| !l.buffer).collect();
    let mut places = Vec::new();
    let mut tys = Vec::new();
    for l in &train {
        let path = &l.path;
        let st = l.storage();
        places.push(quote!(&mut __fluxion_s.#(#path).* #st));
        tys.push(match &l.ty {
            syn::Type::Reference(r) => {
                let e = &r.elem;
                quote!(&mut #e)
            }
            t => quote!(&mut #t),
        });
    }
    // A tuple even of one leaf (the flat gradient's `argnums` are a list).
    let (place, place_ty) = (quote!((#(#places,)*)), quote!((#(#tys,)*)));
    let rows = |out: TokenStream, chunk: TokenStream| {
        quote! {
            fn __fluxion_fields(__fluxion_s: &mut #s) -> #place_ty {
                #place
            }
            #rows_fn(#(#call,)* ::fluxion::__private::FieldRows::new(#out, __fluxion_fields), #chunk);
        }
    };
    let fill = rows(quote!(&mut __fluxion_out[..]), quote!(::core::option::Option::None));
    let alloc = quote! {
        let __fluxion_n = #len_fn(#(#call,)*);
        let mut __fluxion_out: ::std::vec::Vec<#s> = (0..__fluxion_n)
            .map(|__k| <#s as ::fluxion::Parameters>::zeros_like(&#owner))
            .collect();
        #fill
    };
    if try_form {
        return Ok(quote! {
            #(#docs)*
            #[allow(clippy::too_many_arguments)]
            #vis fn #user_id #generics (#(#params,)*) -> ::core::result::Result<::std::vec::Vec<#s>, ::fluxion::BatchError> #wc {
                #(#prelude)*
                #check_fn(#(#call,)*)?;
                #alloc
                ::core::result::Result::Ok(__fluxion_out)
            }
        });
    }
    // `out` unless an argument has that name.
    let taken = |n: &str| params.iter().any(|p| p.to_string().starts_with(&format!("{n} :")));
    let out = if taken("out") {
        format_ident!("out_buffer")
    } else {
        format_ident!("out")
    };
    let into_id = format_ident!("{}_into", user_id);
    let buffers: Vec<TokenStream> = leaves
        .iter()
        .filter(|l| l.buffer)
        .map(|l| {
            let path = &l.path;
            quote!(__fluxion_o.#(#path).* = ::core::clone::Clone::clone(&#owner.#(#path).*);)
        })
        .collect();
    let set_buffers = if buffers.is_empty() {
        quote!()
    } else {
        quote! {
            for (__k, __fluxion_o) in #out.iter_mut().enumerate() {
                #(#buffers)*
            }
        }
    };
    let fill_into = rows(quote!(&mut *#out), quote!(chunk_size));
    let doc_into = format!(
        "Writes what [`{user_id}`] returns into `{out}`: sample `k`'s gradient into `{out}[k]`, field by field, with no allocation. Buffer fields (`#[param(buffer)]`) are set as [`{user_id}`] sets them (cloned from the struct the sample uses); every trainable field is overwritten.\n\n`chunk_size`: the samples per thread task (torch.func's `chunk_size`); `None` takes the attribute's, else a size from the kernel's cost. Every sample's gradient is the same bit for bit whatever the split.\n\nPanics if the batched arguments or `{out}` have different numbers of samples (naming both), or if `chunk_size` is `Some(0)`."
    );
    Ok(quote! {
        #(#docs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #user_id #generics (#(#params,)*) -> ::std::vec::Vec<#s> #wc {
            #(#prelude)*
            ::fluxion::__private::or_panic(#check_fn(#(#call,)*));
            #alloc
            __fluxion_out
        }
        #[doc = #doc_into]
        #[allow(clippy::too_many_arguments)]
        #vis fn #into_id #generics (#(#params,)* #out: &mut [#s], chunk_size: ::core::option::Option<usize>) #wc {
            #(#prelude)*
            #fill_into
            #set_buffers
        }
    })
}

/// The wrapper of the Hessian with respect to a struct: the flat Hessian's blocks (one per
/// pair of trainable leaves, `H[i][j]` of shape `leaf i` then `leaf j`) regrouped into one
/// struct per scalar of the struct, in `Parameters`' flattening
/// order (fields in order, arrays by index, nalgebra matrices column by column): row `k` is
/// the gradient of `∂f/∂θ_k`, buffers cloned from the argument.
fn hessian_rows(
    f: &syn::ItemFn,
    user_id: &syn::Ident,
    o: &Options,
    infos: &[StructInfo],
    args: &[Arg],
    (params, call, prelude): (&[TokenStream], &[TokenStream], &[TokenStream]),
    docs: Vec<TokenStream>,
) -> syn::Result<TokenStream> {
    let internal = |m: &str| syn::Error::new(o.span, format!("internal: {m}"));
    let given = o.argnums.clone().unwrap_or(Argnums::One(0, o.span));
    let Some((pid, s, leaves)) = given.indices().iter().find_map(|(k, _)| {
        args.get(*k)
            .and_then(|a| a.strukt.as_ref().map(|(s, ls)| (&a.ident, s, ls)))
    }) else {
        return Err(internal("a struct's Hessian without the struct"));
    };
    let n = leaves.iter().filter(|l| !l.buffer).count();
    let hid = |i: usize, j: usize| format_ident!("__h{}_{}", i, j);
    let rows_pat = (0..n).map(|i| {
        let row = (0..n).map(|j| hid(i, j));
        quote!((#(#row,)*))
    });
    let pat = quote!((#(#rows_pat,)*));
    let mut pushes = Vec::new();
    for (i, li) in leaves.iter().filter(|l| !l.buffer).enumerate() {
        // The axes of leaf `i`'s flat value, outermost first.
        let mut lens = Vec::new();
        let mut t = match &li.ty {
            syn::Type::Reference(r) => &*r.elem,
            t => t,
        };
        while let syn::Type::Array(a) = t {
            lens.push(a.len.clone());
            t = &a.elem;
        }
        let idx: Vec<syn::Ident> = (0..lens.len()).map(|k| format_ident!("__a{}", k)).collect();
        let mut vals = Vec::new();
        let mut j = 0;
        for l in leaves {
            let path = &l.path;
            if l.buffer {
                vals.push((l.path.clone(), quote!(::core::clone::Clone::clone(&#pid.#(#path).*))));
            } else {
                let h = hid(i, j);
                j += 1;
                vals.push((l.path.clone(), l.field_value(quote!(#h #([#idx])*), &quote!(#pid))));
            }
        }
        let lit = struct_lit(s, &vals, 0, infos)?;
        let mut body = quote!(__rows.push(#lit););
        for (a, len) in idx.iter().zip(&lens).rev() {
            body = quote!(for #a in 0..(#len) { #body });
        }
        pushes.push(body);
    }
    let flat_name = &f.sig.ident;
    let vis = &f.vis;
    let generics = &f.sig.generics;
    let wc = &generics.where_clause;
    Ok(quote! {
        #(#docs)*
        #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
        #vis fn #user_id #generics (#(#params,)*) -> ::std::vec::Vec<#s> #wc {
            #(#prelude)*
            let #pat = #flat_name(#(#call,)*);
            let mut __rows = ::std::vec::Vec::new();
            #(#pushes)*
            __rows
        }
    })
}

/// Whether a generated function is `#[doc(hidden)]` (a helper, which keeps its flat name).
pub(crate) fn doc_hidden(f: &syn::ItemFn) -> bool {
    f.attrs
        .iter()
        .any(|a| matches!(&a.meta, syn::Meta::List(l) if l.path.is_ident("doc") && l.tokens.to_string() == "hidden"))
}

/// The flat function's documentation, in the user's names (for its wrapper).
pub(crate) fn user_docs(f: &syn::ItemFn) -> Vec<TokenStream> {
    f.attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .map(|a| match &a.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value: syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(t), ..
                }),
                ..
            }) => {
                let t = t.value().replace(FLAT, "");
                quote!(#[doc = #t])
            }
            _ => a.to_token_stream(),
        })
        .collect()
}

/// The `k`-th generic type argument of a path type (`Vec<T>`, `Result<T, E>`).
fn generic_arg(t: &syn::Type, k: usize) -> Option<syn::Type> {
    let syn::Type::Path(p) = t else { return None };
    let syn::PathArguments::AngleBracketed(a) = &p.path.segments.last()?.arguments else {
        return None;
    };
    a.args
        .iter()
        .filter_map(|g| match g {
            syn::GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
        .nth(k)
}

/// The length `M` of a function's `[T; M]` result.
fn rows_of(ret: &syn::ReturnType) -> Option<syn::Expr> {
    match ret {
        syn::ReturnType::Type(_, t) => match &**t {
            syn::Type::Array(a) => Some(a.len.clone()),
            _ => None,
        },
        syn::ReturnType::Default => None,
    }
}

/// Whether a function returns a float.
fn scalar_ret(ret: &syn::ReturnType) -> bool {
    matches!(ret, syn::ReturnType::Type(_, t) if matches!(&**t, syn::Type::Path(p) if p.path.is_ident("f64") || p.path.is_ident("f32")))
}

/// A part of a gradient: another argument's, or a struct's.
enum Part {
    Plain,
    Struct(syn::Ident, syn::Ident, Vec<Leaf>),
}

/// `S { a: .., inner: Inner { b: .. } }` from the values of the leaves (paths from `S`).
fn struct_lit(
    s: &syn::Ident,
    vals: &[(Vec<syn::Ident>, TokenStream)],
    depth: usize,
    infos: &[StructInfo],
) -> syn::Result<TokenStream> {
    let Some(info) = infos.iter().find(|i| i.name == *s) else {
        return Err(syn::Error::new(s.span(), "internal: an unknown struct"));
    };
    let mut fields = Vec::new();
    for f in &info.fields {
        let id = &f.ident;
        let mine: Vec<(Vec<syn::Ident>, TokenStream)> =
            vals.iter().filter(|(p, _)| p.get(depth) == Some(id)).cloned().collect();
        match mine.as_slice() {
            [(p, v)] if p.len() == depth + 1 => fields.push(quote!(#id: #v)),
            _ => {
                let inner = match struct_name(&f.ty, &[]) {
                    Some(i) => i.clone(),
                    None => return Err(syn::Error::new(id.span(), "internal: a leaf without a value")),
                };
                let v = struct_lit(&inner, &mine, depth + 1, infos)?;
                fields.push(quote!(#id: #v));
            }
        }
    }
    Ok(quote!(#s { #(#fields,)* }))
}

/// The user-facing gradient type: the struct type for a struct argument, the flat part's
/// type for another.
fn gradient_type(
    parts: &[Part],
    one: bool,
    rt: &syn::Type,
    with_value: bool,
    rows: Option<&syn::Expr>,
) -> syn::Result<TokenStream> {
    // The flat gradient's parts' types: the tuple's elements.
    let (grad_ty, value_ty) = if with_value {
        match rt {
            syn::Type::Tuple(t) if t.elems.len() == 2 => (t.elems[0].clone(), Some(t.elems[1].clone())),
            _ => return Err(syn::Error::new(Span::call_site(), "internal: grad_and_value's type")),
        }
    } else {
        (rt.clone(), None)
    };
    let flat_parts: Vec<syn::Type> = match &grad_ty {
        syn::Type::Tuple(t) => t.elems.iter().cloned().collect(),
        t => vec![t.clone()],
    };
    let mut j = 0;
    let mut tys = Vec::new();
    for p in parts {
        match p {
            Part::Plain => {
                tys.push(flat_parts.get(j).map(ToTokens::to_token_stream).unwrap_or_default());
                j += 1;
            }
            Part::Struct(_, s, leaves) => {
                j += leaves.iter().filter(|l| !l.buffer).count();
                tys.push(match rows {
                    Some(m) => quote!([#s; #m]),
                    None => quote!(#s),
                });
            }
        }
    }
    let g = if one && tys.len() == 1 {
        tys[0].clone()
    } else {
        quote!((#(#tys,)*))
    };
    Ok(match value_ty {
        Some(v) => quote!((#g, #v)),
        None => g,
    })
}
