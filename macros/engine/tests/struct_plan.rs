//! How a function's parameter structs flatten (`structs::plan`): which arguments are
//! structs, and each field's leaf (its flat type, whether it is passed by reference or
//! moved, whether a batch can hold it, and nalgebra matrices as their storage arrays).
//! The compiled tests (`tests/param_structs.rs`, `tests/crates/nalgebra-params`) see
//! only values, which are the same whether a matrix travels whole or as its storage;
//! these pin the plan itself.

use fluxion_engine::structs::{plan, Arg, FieldInfo, Na, StructInfo};
use quote::ToTokens;

fn info(name: &str, fields: &[(&str, &str, bool)]) -> StructInfo {
    StructInfo {
        name: syn::Ident::new(name, proc_macro2::Span::call_site()),
        fields: fields
            .iter()
            .map(|(f, t, buffer)| FieldInfo {
                ident: syn::Ident::new(f, proc_macro2::Span::call_site()),
                ty: syn::parse_str(t).unwrap_or_else(|e| panic!("{t}: {e}")),
                buffer: *buffer,
            })
            .collect(),
    }
}

fn plan_of(sig: &str, infos: &[StructInfo]) -> Result<Option<Vec<Arg>>, String> {
    let item: syn::ItemFn = syn::parse_str(&format!("{sig} {{ 0.0 }}")).unwrap_or_else(|e| panic!("{sig}: {e}"));
    plan(&item, infos).map_err(|i| i.to_string())
}

fn text(t: &syn::Type) -> String {
    t.to_token_stream().to_string().replace(' ', "")
}

/// Only a shared reference or a value of a plain, capitalised, single-segment name that is
/// not a float, integer, `bool`, generator, `Self`, nalgebra alias, complex number or
/// generic parameter is a struct argument; an unknown one asks for its fields.
#[test]
fn which_arguments_are_structs() {
    let m = [info("Model", &[("w", "f64", false)])];
    let is_struct = |sig: &str| -> Vec<bool> {
        match plan_of(sig, &m) {
            Ok(Some(args)) => args.iter().map(|a| a.strukt.is_some()).collect(),
            Ok(None) => vec![],
            Err(e) => panic!("{sig}: asks for `{e}`"),
        }
    };
    assert_eq!(is_struct("fn f(p: &Model, x: f64) -> f64"), [true, false]);
    assert_eq!(is_struct("fn f(x: f64, p: Model) -> f64"), [false, true]);
    // No struct: no plan.
    for sig in [
        "fn f(p: &mut Model) -> f64",
        "fn f(p: Vec<Model>) -> f64",
        "fn f(p: a::Model) -> f64",
        "fn f(p: Outer::Model) -> f64",
        "fn f(p: <X as Y>::Model) -> f64",
        "fn f(p: <X>::Model) -> f64",
        "fn f(x: f64, y: &f32, b: bool) -> f64",
        "fn f(r: Rng, s: Self) -> f64",
        "fn f(i: i32, u: &usize) -> f64",
        "fn f(v: Vector3, m: Matrix2x3) -> f64",
        "fn f(z: Complex64, c: c64) -> f64",
        "fn f<T>(t: T, u: &T) -> f64",
        "fn f(m: model) -> f64",
    ] {
        assert_eq!(is_struct(sig), Vec::<bool>::new(), "{sig}");
    }
    // A struct whose fields are not known yet.
    assert_eq!(plan_of("fn f(p: &Other) -> f64", &m).err().as_deref(), Some("Other"));
}

/// A leaf as compared: flat name, type, reference, owned, buffer, batchable, nalgebra storage.
type Row<S> = (S, S, bool, bool, bool, bool, Option<Na>);

/// Each field's leaf: flat name and type, by reference or not, moved out or copied,
/// batchable, nalgebra storage.
#[test]
fn leaves_and_their_flat_types() {
    let infos = [
        info(
            "Model",
            &[
                ("s", "f64", false),
                ("i", "i32", true),
                ("a", "[f64; 3]", false),
                ("aa", "[[f32; 2]; 2]", false),
                ("v", "Vec<f64>", false),
                ("vv", "Vec<[f64; 3]>", false),
                ("d", "DVector<f64>", false),
                ("dm", "DMatrix<f32>", false),
                ("sv", "SVector<f64, 3>", false),
                ("sm", "SMatrix<f32, 2, 3>", false),
                ("col", "SMatrix<f64, 4, 1>", false),
                ("v3", "Vector3<f64>", false),
                ("m23", "Matrix2x3<f64>", false),
                ("gen", "SVector<f64, N>", false),
                ("blk", "SMatrix<f64, { 2 }, { 3 }>", false),
                ("ints", "SVector<i32, 3>", false),
                ("z", "c64", false),
                ("inner", "Inner", false),
            ],
        ),
        info("Inner", &[("b", "f64", true), ("c", "bool", false)]),
    ];
    let Ok(Some(args)) = plan_of("fn f(p: &Model) -> f64", &infos) else {
        panic!("no plan");
    };
    let Some((_, leaves)) = &args[0].strukt else {
        panic!("not a struct")
    };
    let got: Vec<Row<String>> = leaves
        .iter()
        .map(|l| {
            (
                l.flat.to_string(),
                text(&l.ty),
                l.by_ref,
                l.owned,
                l.buffer,
                l.batchable,
                l.na,
            )
        })
        .collect();
    let want: Vec<Row<&str>> = vec![
        ("p__s", "f64", false, false, false, true, None),
        ("p__i", "i32", false, false, true, false, None),
        ("p__a", "&[f64;3]", true, false, false, true, None),
        ("p__aa", "&[[f32;2];2]", true, false, false, true, None),
        ("p__v", "&[f64]", true, true, false, false, None),
        ("p__vv", "&[[f64;3]]", true, true, false, false, None),
        ("p__d", "&[f64]", true, true, false, false, Some(Na::Dyn)),
        ("p__dm", "&[f32]", true, true, false, false, Some(Na::DynMatrix)),
        ("p__sv", "&[f64;3]", true, false, false, true, Some(Na::Vector)),
        ("p__sm", "&[[f32;2];3]", true, false, false, true, Some(Na::Matrix)),
        ("p__col", "&[f64;4]", true, false, false, true, Some(Na::Vector)),
        ("p__v3", "&[f64;3]", true, false, false, true, Some(Na::Vector)),
        ("p__m23", "&[[f64;2];3]", true, false, false, true, Some(Na::Matrix)),
        ("p__gen", "&[f64;N]", true, false, false, true, Some(Na::Vector)),
        ("p__blk", "&[[f64;{2}];{3}]", true, false, false, true, Some(Na::Matrix)),
        ("p__ints", "&SVector<i32,3>", true, false, false, false, None),
        // A one-segment type that is not a number: by reference.
        ("p__z", "&c64", true, false, false, false, None),
        ("p__inner__b", "f64", false, false, true, true, None),
        ("p__inner__c", "bool", false, false, false, false, None),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2, g.3, g.4, g.5, g.6),
            *w,
            "leaf {}",
            w.0
        );
    }
    // Paths from the argument.
    let paths: Vec<String> = leaves
        .iter()
        .map(|l| l.path.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("."))
        .collect();
    assert_eq!(paths.last().map(String::as_str), Some("inner.c"));
    assert_eq!(paths[0], "s");
}

/// A `DMatrix` leaf's row and column counts: `usize` arguments after the user's, two per
/// matrix in argument and leaf order, each with its struct argument.
#[test]
fn dmatrix_leaves_take_their_counts_after_the_arguments() {
    use fluxion_engine::structs::matrix_dims;
    let infos = [
        info("A", &[("w", "DMatrix<f64>", false), ("b", "DVector<f64>", false)]),
        info("B", &[("m", "DMatrix<f64>", true), ("a", "A", false)]),
    ];
    let Ok(Some(args)) = plan_of("fn f(p: &A, x: f64, q: B) -> f64", &infos) else {
        panic!("no plan");
    };
    let dims: Vec<(String, String)> = matrix_dims(&args)
        .iter()
        .map(|(p, l)| (p.to_string(), l.flat.to_string()))
        .collect();
    let want = [("p", "p__w"), ("q", "q__m"), ("q", "q__a__w")];
    assert_eq!(dims.len(), want.len());
    for (g, w) in dims.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str()), w);
    }
    let item: syn::ItemFn = syn::parse_str(
        "fn f(p: &A, x: f64, q: B) -> f64 { p.w[(1, 2)] * q.a.w.ncols() as f64 + p.w.nrows() as f64 + p.w.as_slice()[0] * x }",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let flat = fluxion_engine::structs::flatten(&item, &args).unwrap_or_else(|e| panic!("{e}"));
    let sig = flat.sig.inputs.to_token_stream().to_string().replace(' ', "");
    assert_eq!(
        sig,
        "p__w:&[f64],p__b:&[f64],x:f64,q__m:&[f64],q__a__w:&[f64],q__a__b:&[f64],\
         p__w__nrows:usize,p__w__ncols:usize,q__m__nrows:usize,q__m__ncols:usize,\
         q__a__w__nrows:usize,q__a__w__ncols:usize"
    );
    let body = flat.block.to_token_stream().to_string().replace(' ', "");
    assert_eq!(
        body,
        "{p__w[(1)+(2)*p__w__nrows]*q__a__w__ncolsasf64+p__w__nrowsasf64+p__w[0]*x}"
    );
}
