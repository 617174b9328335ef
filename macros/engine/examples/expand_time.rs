//! Times the macro expansion of a file's annotated functions (what the proc macro runs,
//! without formatting; median of repeated runs) and reports the generated code's size.
//!
//! `cargo run --release -p fluxion-engine --example expand_time -- benches/mlp5.rs.txt`

use std::time::Instant;

use fluxion_engine::expand::{expand_item_text, expand_item_text_with};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "benches/mlp5.rs.txt".into());
    let src = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let file = match syn::parse_file(&src) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot parse {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut times = Vec::new();
    let mut tokens = 0;
    for _ in 0..9 {
        let t0 = Instant::now();
        tokens = 0;
        for item in &file.items {
            let syn::Item::Fn(f) = item else { continue };
            let mut f = f.clone();
            let Some(pos) = f.attrs.iter().position(|a| {
                let n = a
                    .path()
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                fluxion_engine::Transform::from_name(&n).is_some()
            }) else {
                continue;
            };
            let attr = f.attrs.remove(pos);
            let name = attr
                .path()
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let Some(t) = fluxion_engine::Transform::from_name(&name) else {
                continue;
            };
            let args = match &attr.meta {
                syn::Meta::List(l) => l.tokens.clone(),
                _ => proc_macro2::TokenStream::new(),
            };
            match fluxion_engine::expand(t, args, quote::ToTokens::to_token_stream(&f)) {
                Ok(ts) => tokens += ts.into_iter().count(),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let all = expand_item_text(&src, None).unwrap_or_default();
    let public = expand_item_text_with(&src, None, false).unwrap_or_default();
    println!(
        "{path}: expansion {:.1} ms (median of 9), {tokens} top-level token trees; formatted: {} lines with hidden companions, {} without; source {} lines",
        times[4] * 1e3,
        all.lines().count(),
        public.lines().count(),
        src.lines().count()
    );
}
