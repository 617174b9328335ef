//! Parsing of the attribute surface: `#[jacrev(argnums = (0, 1), has_aux, name = "..")]`.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, LitBool, LitInt, Token};

use crate::symbol::{Transform, ARGNUMS, CHUNK_SIZE, HAS_AUX, IN_DIMS, NAME, OUT_DIMS, RANDOMNESS, SHOW};

pub use crate::spec::{Argnums, InDims, Options, OutDims, Randomness};

pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, c)| c)
}

struct Raw(Vec<(Ident, Option<syn::Expr>)>);

impl Parse for Raw {
    fn parse(input: ParseStream) -> syn::Result<Raw> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse::<syn::Expr>()?)
            } else {
                None
            };
            out.push((key, value));
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(Raw(out))
    }
}

fn usize_lit(e: &syn::Expr) -> syn::Result<(usize, Span)> {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i), ..
        }) => Ok((parse_int(i)?, i.span())),
        other => Err(syn::Error::new(
            other.span(),
            "`argnums` takes an integer or a tuple of integers: `argnums = 1`, `argnums = (0, 1)`",
        )),
    }
}

/// One entry of `in_dims`: an axis (`0`, `1`; whether the argument has it is checked
/// against its type) or `None`.
fn in_dim(e: &syn::Expr) -> syn::Result<(Option<usize>, Span)> {
    match e {
        syn::Expr::Path(p) if p.path.is_ident("None") => Ok((None, p.span())),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i), ..
        }) => Ok((Some(parse_int(i)?), i.span())),
        other => Err(syn::Error::new(
            other.span(),
            "an `in_dims` entry is `0` (a slice of samples), `1` (an array's components, one slice each) or `None` (shared by the batch)",
        )),
    }
}

/// One entry of `out_dims`: an axis (`0`, `1`; checked against the output's type).
fn out_dim(e: &syn::Expr) -> syn::Result<(usize, Span)> {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i), ..
        }) => Ok((parse_int(i)?, i.span())),
        other => Err(syn::Error::new(
            other.span(),
            "an `out_dims` entry is `0` (a `Vec` of per-sample results) or `1` (an array output: one `Vec` per component)",
        )),
    }
}

/// The entries of a tuple option (`argnums = (0, 1)`), each read by `item`; each entry
/// that does not parse is an error of its own, given to `push`.
fn each_item<T>(
    t: &syn::ExprTuple,
    item: impl Fn(&syn::Expr) -> syn::Result<T>,
    push: &mut impl FnMut(syn::Error),
) -> Vec<T> {
    let mut items = Vec::new();
    for e in &t.elems {
        match item(e) {
            Ok(x) => items.push(x),
            Err(e) => push(e),
        }
    }
    items
}

fn parse_int(i: &LitInt) -> syn::Result<usize> {
    i.base10_parse::<usize>()
}

/// Parses the arguments of a transform attribute.
pub fn parse_options(transform: Transform, span: Span, args: TokenStream) -> syn::Result<Options> {
    let raw: Raw = syn::parse2(args)?;
    let mut o = Options::new(transform, span);
    let allowed = transform.options();
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(x) => x.combine(e),
        None => errors = Some(e),
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in raw.0 {
        let k = key.to_string();
        if !allowed.contains(&k.as_str()) {
            let all = [ARGNUMS, HAS_AUX, NAME, SHOW, CHUNK_SIZE, IN_DIMS, OUT_DIMS, RANDOMNESS];
            let msg = if all.contains(&k.as_str()) {
                format!("`{}` does not take `{k}`; it takes {}", transform.name(), list(allowed))
            } else {
                match closest(&k, allowed) {
                    Some(c) => format!("unknown option `{k}` for `{}`: did you mean `{c}`?", transform.name()),
                    None => format!(
                        "unknown option `{k}` for `{}`; it takes {}",
                        transform.name(),
                        list(allowed)
                    ),
                }
            };
            push(syn::Error::new(key.span(), msg));
            continue;
        }
        if seen.contains(&k) {
            push(syn::Error::new(key.span(), format!("`{k}` is given twice: keep one")));
            continue;
        }
        seen.push(k.clone());
        match k.as_str() {
            ARGNUMS => {
                let Some(v) = value else {
                    push(syn::Error::new(
                        key.span(),
                        "`argnums` needs a value: `argnums = 0` or `argnums = (0, 1)`",
                    ));
                    continue;
                };
                match &v {
                    syn::Expr::Tuple(t) => {
                        let items = each_item(t, usize_lit, &mut push);
                        if items.is_empty() {
                            push(syn::Error::new(v.span(), "`argnums = ()` selects nothing: name at least one argument"));
                        }
                        o.argnums = Some(Argnums::Many(items));
                    }
                    syn::Expr::Paren(p) => push(syn::Error::new(
                        p.span(),
                        "`argnums = (1)` is the integer 1, not a tuple: write `argnums = 1`, or `argnums = (1,)` for a one-tuple result",
                    )),
                    e => match usize_lit(e) {
                        Ok((k, s)) => o.argnums = Some(Argnums::One(k, s)),
                        Err(e) => push(e),
                    },
                }
            }
            IN_DIMS => {
                let Some(v) = value else {
                    push(syn::Error::new(
                        key.span(),
                        "`in_dims` needs a value: `in_dims = 0`, or one per argument: `in_dims = (None, 0)`",
                    ));
                    continue;
                };
                match &v {
                    syn::Expr::Tuple(t) => {
                        let mut items = Vec::new();
                        let mut bad = false;
                        for e in &t.elems {
                            match in_dim(e) {
                                Ok(x) => items.push(x),
                                Err(e) => {
                                    bad = true;
                                    push(e)
                                }
                            }
                        }
                        if !bad && items.iter().all(|(d, _)| d.is_none()) {
                            push(syn::Error::new(
                                v.span(),
                                "`in_dims` batches no argument: give `0` for at least one (`None` marks the shared ones)",
                            ));
                        }
                        o.in_dims = Some(InDims::Each(items, v.span()));
                    }
                    e => match in_dim(e) {
                        Ok((None, s)) => push(syn::Error::new(
                            s,
                            "`in_dims = None` batches no argument: write `in_dims = 0`, or one per argument: `in_dims = (None, 0)`",
                        )),
                        Ok((d, s)) => o.in_dims = Some(InDims::All(d, s)),
                        Err(e) => push(e),
                    },
                }
            }
            OUT_DIMS => {
                let Some(v) = value else {
                    push(syn::Error::new(
                        key.span(),
                        "`out_dims` needs a value: `out_dims = 1`, or one per output: `out_dims = (0, 1)`",
                    ));
                    continue;
                };
                match &v {
                    syn::Expr::Tuple(t) => {
                        let items = each_item(t, out_dim, &mut push);
                        o.out_dims = Some(OutDims::Each(items, v.span()));
                    }
                    e => match out_dim(e) {
                        Ok((d, s)) => o.out_dims = Some(OutDims::All(d, s)),
                        Err(e) => push(e),
                    },
                }
            }
            CHUNK_SIZE => match &value {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i), ..
                })) => match parse_int(i) {
                    Ok(0) if transform == Transform::Vmap => push(syn::Error::new(
                        i.span(),
                        "`chunk_size = 0` processes no samples: give a positive number (or leave it out for a size from the kernel's cost)",
                    )),
                    Ok(0) => push(syn::Error::new(
                        i.span(),
                        format!("`chunk_size = 0` computes no part of the Jacobian: give a positive number of {} per task (`1` for one sweep each), or leave it out", if transform == Transform::Jacfwd { "columns" } else { "rows" }),
                    )),
                    Ok(k) => o.chunk_size = Some((k, i.span())),
                    Err(e) => push(e),
                },
                Some(other) => push(syn::Error::new(
                    other.span(),
                    "`chunk_size` takes a positive integer: `chunk_size = 1024`",
                )),
                None => push(syn::Error::new(
                    key.span(),
                    "`chunk_size` needs a value: `chunk_size = 1024`",
                )),
            },
            RANDOMNESS => match &value {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                })) => match s.value().as_str() {
                    "error" => o.randomness = Randomness::Error,
                    "different" => o.randomness = Randomness::Different,
                    "same" => o.randomness = Randomness::Same,
                    other => push(syn::Error::new(
                        s.span(),
                        format!(
                            "unknown `randomness = \"{other}\"`{}: write \"different\" (each sample its own draws), \"same\" (one draw for the whole batch) or \"error\" (the default: a function that draws is an error)",
                            match closest(other, &["different", "same", "error"]) {
                                Some(c) => format!(" (did you mean \"{c}\"?)"),
                                None => String::new(),
                            }
                        ),
                    )),
                },
                Some(other) => push(syn::Error::new(
                    other.span(),
                    "`randomness` takes a string: `randomness = \"different\"` or `\"same\"`",
                )),
                None => push(syn::Error::new(
                    key.span(),
                    "`randomness` needs a value: `randomness = \"different\"` or `\"same\"`",
                )),
            },
            HAS_AUX => match value {
                None => o.has_aux = true,
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Bool(LitBool { value, .. }),
                    ..
                })) => o.has_aux = value,
                Some(other) => push(syn::Error::new(other.span(), "`has_aux` takes `true` or `false`")),
            },
            SHOW => match value {
                None => o.show = true,
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Bool(LitBool { value, .. }),
                    ..
                })) => o.show = value,
                Some(other) => push(syn::Error::new(other.span(), "`show` takes `true` or `false`")),
            },
            NAME => match value {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                })) => match syn::parse_str::<Ident>(&s.value()) {
                    Ok(i) => o.name = Some((syn::ext::IdentExt::unraw(&i).to_string(), s.span())),
                    Err(_) => push(syn::Error::new(
                        s.span(),
                        format!(
                            "`{}` is not a valid function name: use letters, digits and `_`, not starting with a digit",
                            s.value()
                        ),
                    )),
                },
                Some(other) => push(syn::Error::new(
                    other.span(),
                    "`name` takes a string: `name = \"energy_force\"`",
                )),
                None => push(syn::Error::new(
                    key.span(),
                    "`name` needs a value: `name = \"energy_force\"`",
                )),
            },
            _ => {}
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(o),
    }
}

fn list(xs: &[&str]) -> String {
    if xs.is_empty() {
        return "no options".into();
    }
    xs.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")
}
