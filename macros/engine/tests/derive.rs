//! `#[derive(Parameters)]` expansion without rustc: what the impl holds, and that every
//! rejected input is an error (never a panic).

use fluxion_engine::derive::expand_derive_parameters;
use quote::quote;

fn expand(item: proc_macro2::TokenStream) -> Result<String, String> {
    expand_derive_parameters(item)
        .map(|t| t.to_string())
        .map_err(|e| e.to_string())
}

#[test]
fn trainable_fields_are_visited_and_buffers_cloned() {
    let out = expand(quote! {
        struct Mlp {
            l1: Layer,
            #[param(buffer)]
            steps: usize,
            out: [f64; 4],
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let file: syn::File = syn::parse_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let [syn::Item::Macro(fields), syn::Item::Impl(item)] = file.items.as_slice() else {
        panic!("the fields' macro and the impl: {out}");
    };
    assert_eq!(item.items.len(), 10, "type Scalar and the nine methods");
    // The fields, for the attributes of functions taking the struct, buffers marked.
    assert_eq!(
        fields.ident.as_ref().map(ToString::to_string).as_deref(),
        Some("Mlp_needs_derive_Parameters_above")
    );
    assert!(
        fields
            .mac
            .tokens
            .to_string()
            .contains("[Mlp { l1 : Layer , # [buffer] steps : usize , out : [f64 ; 4] ,"),
        "{out}"
    );
    assert!(
        out.contains("type Scalar = < Layer as :: fluxion :: Parameters > :: Scalar"),
        "{out}"
    );
    assert!(
        out.contains("steps : :: core :: clone :: Clone :: clone (& self . steps)"),
        "{out}"
    );
    assert!(!out.contains("self . steps ,"), "a buffer is never traversed: {out}");
    assert!(out.contains("param_name (prefix , \"out\")"), "{out}");
    // Not generic: no bounds (rustc checks the body).
    assert!(!out.contains("Layer : :: fluxion :: Parameters ,"), "{out}");
}

#[test]
fn generic_structs_bound_their_fields() {
    let out = expand(quote! {
        struct G<T, const N: usize> where T: Copy {
            w: [T; N],
            b: Vec<T>,
            #[param(buffer)]
            n: usize,
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("where T : Copy , [T ; N] : :: fluxion :: Parameters"),
        "{out}"
    );
    // A generic struct is no argument of annotated functions: no fields' macro.
    assert!(!out.contains("macro_rules"), "{out}");
    assert!(
        out.contains(
            "Vec < T > : :: fluxion :: Parameters < Scalar = < [T ; N] as :: fluxion :: Parameters > :: Scalar >"
        ),
        "{out}"
    );
    assert!(out.contains("usize : :: core :: clone :: Clone"), "{out}");
}

#[test]
fn rejected_inputs_are_errors() {
    let cases = [
        (
            quote!(
                enum E {
                    A { w: f64 },
                }
            ),
            "not enums",
        ),
        (quote!(union U { w: f64 }), "not unions"),
        (
            quote!(
                struct T(f64);
            ),
            "needs named fields",
        ),
        (
            quote!(
                struct U;
            ),
            "without fields",
        ),
        (
            quote!(
                struct B {
                    #[param(buffer)]
                    n: usize,
                }
            ),
            "all buffers",
        ),
        (
            quote!(
                struct O {
                    #[param(bufer)]
                    n: f64,
                }
            ),
            "did you mean `buffer`",
        ),
        (
            quote!(
                struct O {
                    #[param(frozen)]
                    n: f64,
                }
            ),
            "the one option is `buffer`",
        ),
        (
            quote!(
                struct O {
                    #[param]
                    n: f64,
                }
            ),
            "takes an option",
        ),
        (
            quote!(
                struct O {
                    #[param(buffer, buffer)]
                    n: f64,
                    w: f64,
                }
            ),
            "given twice",
        ),
        (
            quote!(
                #[param(buffer)]
                struct O {
                    n: f64,
                }
            ),
            "goes on a field",
        ),
    ];
    for (item, message) in cases {
        let e = expand(item.clone()).err().unwrap_or_else(|| panic!("accepted: {item}"));
        assert!(e.contains(message), "{item}: {e}");
    }
}

/// Every input with one token deleted, at the top level and inside the fields' braces and
/// the attributes' brackets: an expansion or an error, never a panic.
#[test]
fn one_token_deletions_never_panic() {
    use proc_macro2::{Group, TokenStream, TokenTree};

    fn variants(ts: &TokenStream) -> Vec<TokenStream> {
        let tokens: Vec<TokenTree> = ts.clone().into_iter().collect();
        let mut out = Vec::new();
        for i in 0..tokens.len() {
            let mut t = tokens.clone();
            t.remove(i);
            out.push(t.into_iter().collect());
            if let TokenTree::Group(g) = &tokens[i] {
                for inner in variants(&g.stream()) {
                    let mut t = tokens.clone();
                    let mut ng = Group::new(g.delimiter(), inner);
                    ng.set_span(g.span());
                    t[i] = TokenTree::Group(ng);
                    out.push(t.into_iter().collect());
                }
            }
        }
        out
    }

    let item = quote! {
        #[derive(Clone)]
        pub struct Mlp<T: Copy, const N: usize> where T: Default {
            pub l1: [T; N],
            #[param(buffer)]
            steps: usize,
            #[doc = "x"]
            out: Vec<T>,
        }
    };
    let all = variants(&item);
    assert!(all.len() > 40, "{}", all.len());
    let mut ok = 0;
    for v in all {
        if expand_derive_parameters(v).is_ok() {
            ok += 1;
        }
    }
    // Some deletions still leave a valid struct (a visibility, an attribute, a bound).
    assert!(ok > 0);
}
