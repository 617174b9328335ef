//! The macro never panics: every one-token deletion and some token swaps of a set of
//! annotated functions give generated code or a spanned error, under every transform.

use fluxion_engine::{expand, Transform};

const SOURCES: &[&str] = &[
    "fn lj(r: f64) -> f64 { EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6)) }",
    "fn s<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += x[i].sin(); } s }",
    "fn m(w: [[f64; 3]; 2], x: &[f64; 3]) -> [f64; 2] { let mut y = [0.0; 2]; for i in 0..2 { for j in 0..3 { y[i] += w[i][j] * x[j]; } } y }",
    "fn b(x: f64, y: f64) -> (f64, f64) { if x > y && y > 0.0 { return (x * y, x); } let z = x.hypot(y); (z.ln_1p(), stop_gradient(z)) }",
    "fn c(x: f64, n: i32) -> f64 { let a: f64 = g(x); let (p, q) = h(a, &x); p.powi(n) * q.max(1.0) }",
];

fn words(src: &str) -> Vec<String> {
    // Split into tokens coarse enough to delete one at a time; operators of two or three
    // characters (`->`, `+=`, `::`, `..=`) stay whole, so that the joined words still parse.
    const OPS: [&str; 15] = [
        "..=", "->", "+=", "-=", "*=", "/=", "%=", "::", "==", "!=", "<=", ">=", "&&", "||", "=>",
    ];
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch.is_alphanumeric() || ch == '_' || ch == '.' {
            cur.push(ch);
            i += 1;
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        let rest: String = chars[i..].iter().take(3).collect();
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            out.push(op.to_string());
            i += op.chars().count();
            continue;
        }
        if !ch.is_whitespace() {
            out.push(ch.to_string());
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn run(src: &str) -> usize {
    let Ok(item) = src.parse::<proc_macro2::TokenStream>() else {
        return 0;
    };
    let mut n = 0;
    for t in [
        Transform::Grad,
        Transform::Jacrev,
        Transform::Jacfwd,
        Transform::Hessian,
        Transform::Vjp,
        Transform::Jvp,
    ] {
        for args in ["", "argnums = (0, 1)", "has_aux"] {
            let Ok(a) = args.parse::<proc_macro2::TokenStream>() else {
                continue;
            };
            let item = item.clone();
            let r = std::panic::catch_unwind(move || expand(t, a, item).map(|_| ()));
            assert!(r.is_ok(), "expansion panicked on `{src}` with #[{}({args})]", t.name());
            n += 1;
        }
    }
    n
}

#[test]
fn mutated_inputs_never_panic() {
    let mut runs = 0;
    for src in SOURCES {
        let w = words(src);
        runs += run(src);
        for k in 0..w.len() {
            let mut v = w.clone();
            v.remove(k);
            runs += run(&v.join(" "));
            if k + 1 < w.len() {
                let mut v = w.clone();
                v.swap(k, k + 1);
                runs += run(&v.join(" "));
            }
        }
    }
    eprintln!("{runs} expansions of mutated inputs, none panicked");
    assert!(runs > 1000);
}

/// The mutated inputs reach the engine: a good share still parse as a function (a
/// mutation that breaks the syntax is rejected before the engine sees it, and tests
/// nothing: `->` split into `- >` would make almost every input such a mutation).
#[test]
fn most_mutated_inputs_are_functions() {
    let (mut total, mut functions) = (0, 0);
    for src in SOURCES {
        let w = words(src);
        assert!(
            syn::parse_str::<syn::ItemFn>(&w.join(" ")).is_ok(),
            "{src}: the words do not join into it"
        );
        for k in 0..w.len() {
            let mut v = w.clone();
            v.remove(k);
            total += 1;
            functions += usize::from(syn::parse_str::<syn::ItemFn>(&v.join(" ")).is_ok());
        }
    }
    assert!(
        functions * 8 >= total && functions >= 30,
        "{functions} of {total} mutated inputs parse as a function"
    );
}

/// `vmap`'s layouts and nesting never panic either: every one-token deletion of the
/// sources under `vmap` with `in_dims`/`out_dims` of every kind, alone and as the outer
/// `vmap` of a nested one (whose options then apply to the inner batched function).
#[test]
fn mutated_inputs_under_vmap_layouts_never_panic() {
    let mut runs = 0;
    for src in SOURCES {
        let w = words(src);
        for k in 0..=w.len() {
            let mut v = w.clone();
            if k < w.len() {
                v.remove(k);
            }
            let plain = v.join(" ");
            for item in [plain.clone(), format!("#[vmap(in_dims = (1, None))] {plain}")] {
                let Ok(item) = item.parse::<proc_macro2::TokenStream>() else {
                    continue;
                };
                for args in [
                    "",
                    "in_dims = 1, out_dims = 1",
                    "in_dims = (0, None), out_dims = (1, 0), chunk_size = 3",
                    "in_dims = (None, 1)",
                ] {
                    let Ok(a) = args.parse::<proc_macro2::TokenStream>() else {
                        continue;
                    };
                    let item = item.clone();
                    let r = std::panic::catch_unwind(move || expand(Transform::Vmap, a, item).map(|_| ()));
                    assert!(r.is_ok(), "expansion panicked on `{plain}` with #[vmap({args})]");
                    runs += 1;
                }
            }
        }
    }
    eprintln!("{runs} expansions under vmap, none panicked");
    assert!(runs > 1000);
}
