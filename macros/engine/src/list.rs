//! `#[transforms(grad, hessian, jacfwd(argnums = 1), jacfwd(jacrev))]`: independent
//! transforms of one function, each entry nested as torch.func nests calls.
//!
//! Each entry is a stack of its own: `jacfwd(jacrev, argnums = 1)` is
//! `#[jacfwd(argnums = 1)] #[jacrev] fn f`, which generates `f_jacrev` and
//! `f_jacrev_jacfwd`. The entries are expanded one by one through [`expand_with`] and
//! what two entries both generate (the original, its companions, a shared inner
//! transform) is emitted once.

use std::collections::HashSet;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};

use crate::expand::expand_with;
use crate::rules::RuleTable;
use crate::symbol::Transform;

/// One transform of an entry, outermost first, with its option tokens.
struct Link {
    t: Transform,
    opts: TokenStream,
}

/// Splits tokens at top-level commas.
fn split_commas(ts: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut out = vec![Vec::new()];
    for tt in ts {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => out.push(Vec::new()),
            _ => out.last_mut().map_or((), |v| v.push(tt)),
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

const HINT: &str = "write a transform such as `grad`, `hessian`, `jacfwd(argnums = 1)` or `jacfwd(jacrev)`";

/// A transform name at the head of `part` (`jacrev` or `jacrev(..)`), if it is one.
fn as_transform(part: &[TokenTree]) -> Option<(Transform, Option<TokenStream>)> {
    let TokenTree::Ident(i) = part.first()? else {
        return None;
    };
    let t = Transform::from_name(&i.to_string())?;
    match &part[1..] {
        [] => Some((t, None)),
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::Parenthesis => Some((t, Some(g.stream()))),
        _ => None,
    }
}

/// Parses one entry into its chain of transforms, outermost first.
fn entry(part: &[TokenTree]) -> syn::Result<Vec<Link>> {
    let Some((t, inner)) = as_transform(part) else {
        let span = part.first().map_or(Span::call_site(), TokenTree::span);
        let word = part.first().map(ToString::to_string).unwrap_or_default();
        let names: Vec<&str> = Transform::ALL.iter().map(|t| t.name()).collect();
        let msg = match crate::attr::closest(&word, &names) {
            Some(c) if matches!(part.first(), Some(TokenTree::Ident(_))) => {
                format!("unknown transform `{word}`: did you mean `{c}`?")
            }
            _ => format!("expected a transform: {HINT}"),
        };
        return Err(syn::Error::new(span, msg));
    };
    let mut chain = vec![Link {
        t,
        opts: TokenStream::new(),
    }];
    let Some(inner) = inner else { return Ok(chain) };
    let mut opts = Vec::new();
    let mut nested: Option<Vec<Link>> = None;
    for p in split_commas(inner) {
        let is_option = matches!(p.get(1), Some(TokenTree::Punct(q)) if q.as_char() == '=');
        match as_transform(&p) {
            Some(_) if !is_option => {
                if nested.is_some() {
                    return Err(syn::Error::new(
                        p[0].span(),
                        format!("`{}` takes one inner transform: nest them, as in `jacfwd(jacrev(grad))`, or list them separately", t.name()),
                    ));
                }
                nested = Some(entry(&p)?);
            }
            _ => opts.push(p.into_iter().collect::<TokenStream>()),
        }
    }
    chain[0].opts = quote!(#(#opts),*);
    chain.extend(nested.unwrap_or_default());
    Ok(chain)
}

/// Expands `#[transforms(..)]` on `item`.
pub fn expand_transforms(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand_transforms_with(args, item, &RuleTable::standard())
}

/// [`expand_transforms`] with a given rule table.
pub fn expand_transforms_with(args: TokenStream, item: TokenStream, rules: &RuleTable) -> syn::Result<TokenStream> {
    let parts = split_commas(args);
    if parts.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("`transforms` needs at least one entry: {HINT}"),
        ));
    }
    let chains = parts.iter().map(|p| entry(p)).collect::<syn::Result<Vec<_>>>()?;
    let Ok(fn_item) = syn::parse2::<syn::ItemFn>(item.clone()) else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[transforms] goes on a function: `fn f(x: f64) -> f64 { .. }`",
        ));
    };
    if let Err(s) = crate::structs::plan(&fn_item, &[]) {
        return Err(syn::Error::new(
            s.span(),
            format!("`#[transforms]` on a function of the parameter struct `{s}` is not supported yet\nhint: write the transforms as stacked attributes, `#[vmap(..)] #[grad(..)]`, one chain per function"),
        ));
    }
    let mut out = TokenStream::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut fns: HashSet<String> = HashSet::new();
    for (chain, part) in chains.into_iter().zip(&parts) {
        let mut it = fn_item.clone();
        // The inner links become stacked attributes, as if written one above the other.
        let inner: Vec<syn::Attribute> = chain[1..]
            .iter()
            .map(|l| {
                let path = syn::Ident::new(l.t.name(), Span::call_site());
                let opts = &l.opts;
                syn::parse_quote!(#[::fluxion::#path(#opts)])
            })
            .collect();
        it.attrs.splice(0..0, inner);
        let ts = expand_with(chain[0].t, chain[0].opts.clone(), it.into_token_stream(), rules)?;
        // What two entries share (the original, its companions, a common inner
        // transform) comes out identical: keep the first.
        match syn::parse2::<syn::File>(ts.clone()) {
            Ok(file) => {
                for item in file.items {
                    let ts = item.to_token_stream();
                    // A holder is the same for every entry but for the inert uses of
                    // the entry's inner attributes it carries: one per name.
                    let key = match &item {
                        syn::Item::Struct(s) => format!("struct {}", s.ident),
                        _ => ts.to_string(),
                    };
                    if !seen.insert(key) {
                        continue;
                    }
                    if let syn::Item::Fn(f) = &item {
                        let name = f.sig.ident.to_string();
                        if !fns.insert(name.clone()) {
                            // The original differs only when an entry failed (its stand-in,
                            // beside that entry's error): keep the first.
                            if f.sig.ident == fn_item.sig.ident {
                                continue;
                            }
                            let span = part.first().map_or(Span::call_site(), TokenTree::span);
                            return Err(syn::Error::new(
                                span,
                                format!("`{name}` is generated twice, with different options: give one of them `name = \"..\"`"),
                            ));
                        }
                    }
                    out.extend(ts);
                }
            }
            Err(_) => out.extend(ts),
        }
    }
    Ok(out)
}
