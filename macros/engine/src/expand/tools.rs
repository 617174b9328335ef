//! Tools and tests: expansion of source text, formatting, lowering of source text.
//!
//! Their errors are the rendered messages (`String`), what a tool prints or a test compares.

use super::*;

/// Formats tokens as Rust source (falls back to the raw tokens).
pub fn pretty(ts: &TokenStream) -> String {
    match syn::parse2::<syn::File>(ts.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        Err(_) => ts.to_string(),
    }
}

/// Expands every fluxion-annotated function of a source file (or only `only`) and returns
/// the generated code, formatted. Used by the snapshot tests and the `expand` example.
pub fn expand_item_text(src: &str, only: Option<&str>) -> Result<String, String> {
    expand_item_text_with(src, only, true)
}

/// [`expand_item_text`], optionally leaving out the hidden companions (the holder types).
pub fn expand_item_text_with(src: &str, only: Option<&str>, companions: bool) -> Result<String, String> {
    let file = syn::parse_file(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut out = String::new();
    let mut items: Vec<syn::ItemFn> = Vec::new();
    fn collect(items: &[syn::Item], out: &mut Vec<syn::ItemFn>) {
        for it in items {
            match it {
                syn::Item::Fn(f) => out.push(f.clone()),
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        collect(inner, out);
                    }
                }
                _ => {}
            }
        }
    }
    collect(&file.items, &mut items);
    for mut f in items {
        if only.is_some_and(|n| f.sig.ident != n) {
            continue;
        }
        // `#[transforms(..)]` (its last path segment) or the outermost transform of a stack.
        let is_list = |a: &syn::Attribute| a.path().segments.last().is_some_and(|s| s.ident == "transforms");
        let Some(pos) = f.attrs.iter().position(|a| is_list(a) || transform_of(a).is_some()) else {
            continue;
        };
        let attr = f.attrs.remove(pos);
        let args = match &attr.meta {
            syn::Meta::List(l) => l.tokens.clone(),
            _ => TokenStream::new(),
        };
        let ts = if is_list(&attr) {
            crate::list::expand_transforms(args, f.to_token_stream())
        } else {
            let Some(t) = transform_of(&attr) else { continue };
            expand(t, args, f.to_token_stream())
        }
        .map_err(|e| e.to_string())?;
        let ts = if companions {
            ts
        } else {
            let file: syn::File = syn::parse2(ts).map_err(|e| e.to_string())?;
            // Companion holders are braced structs named like their function.
            let fns = crate::expand::fn_names(&file.items);
            let hidden_name = |n: String| fns.contains(&n) || n.starts_with("__fluxion_missing_");
            let hidden = |it: &syn::Item| match it {
                syn::Item::Struct(s) => hidden_name(s.ident.to_string()),
                syn::Item::Impl(i) => hidden_name(i.self_ty.to_token_stream().to_string()),
                syn::Item::Const(c) => c.ident == "_",
                syn::Item::Fn(f) => f.sig.ident.to_string().starts_with("__fluxion_uses_"),
                _ => false,
            };
            let items = file.items.into_iter().filter(|it| !hidden(it));
            quote!(#(#items)*)
        };
        out.push_str(&pretty(&ts));
    }
    Ok(out)
}

/// Lowers the source text of one function to IR (for tests and tools).
pub fn lower_source(src: &str) -> Result<Func, String> {
    let item: syn::ItemFn = syn::parse_str(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut cx = Ctxt::new();
    let f = lower_fn(&item, &mut cx);
    if let Err(e) = cx.check() {
        return Err(e.to_string());
    }
    f.ok_or_else(|| "could not lower".to_string())
}

/// Lowers every function of a source file (for tests comparing compiled and interpreted
/// results): `(name, IR)` pairs, in order. Functions that do not lower are skipped.
pub fn lower_file(src: &str) -> Result<Vec<(String, Func)>, String> {
    let file = syn::parse_file(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut out = Vec::new();
    for it in &file.items {
        if let syn::Item::Fn(f) = it {
            let mut cx = Ctxt::new();
            let func = lower_fn(f, &mut cx);
            if let (Some(func), Ok(())) = (func, cx.check()) {
                out.push((f.sig.ident.to_string(), func));
            }
        }
    }
    Ok(out)
}
