//! Jacobians and Hessians of separable loops (`sparse.rs`), interpreted: where the emitted
//! `jacrev`, `jacfwd` or `hessian` is built from each iteration's small derivative, it
//! equals the sweep per row or column of the same transform (exactly where no two reads of
//! an iteration coincide and no terms are summed; within a few ulp otherwise), and
//! functions of any other shape keep the sweeps.

mod common;

use common::*;
use fluxion_engine::attr::Options;
use fluxion_engine::sparse::derivative;
use fluxion_engine::spec::Argnums;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{hessian_pass, jacfwd_pass, jacrev_pass, Site};
use proc_macro2::Span;

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

fn arr(xs: &[f64]) -> Value {
    Value::Arr(xs.iter().map(|&x| Value::F(x)).collect())
}

/// Functions of `x: [f64; N]` (and a shared `w: f64`) with a vector output written row by
/// row: reads that coincide for small `N`, shifted ranges, a reversed loop, casts of the
/// index, a constant initial value, a shared parameter.
const ROWS: &[&str] = &[
    "fn f(x: [f64; N], w: f64) -> [f64; N] { let mut y = [0.0; N]; for i in 0..N { y[i] = x[i].sin() * x[(i + 1) % N] + x[(i + N - 1) % N] * x[(i + N - 1) % N]; } y }",
    "fn f(x: [f64; N], w: f64) -> [f64; N] { let mut y = [1.5; N]; for i in 1..N { y[i] = (x[i] - x[i - 1]).exp() * w + (i as f64) * x[0]; } y }",
    "fn f(x: [f64; N], w: f64) -> [f64; N] { let mut y = [0.0; N]; for i in (0..N).rev() { y[i] = x[N - 1 - i] / (1.0 + x[i] * x[i]) - w; } y }",
    "fn f(x: [f64; N], w: f64) -> [f64; N] { let mut y = [0.0; N]; for i in 0..N { let a = x[i % 2]; let b = x[(i * 3) % N]; y[i] = a.tanh() * b - a * a * w; } y }",
];

/// Scalar functions summing a term per iteration (`+=` and `-=`).
const SUMS: &[&str] = &[
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 0.0; for i in 0..N - 1 { let a = x[i + 1] - x[i] * x[i]; let b = 1.0 - x[i]; s += 100.0 * a * a + b * b; } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 2.0; for i in 0..N { s -= (x[i] * x[(i + 1) % N] * w).sin() + x[(i + 2) % N].exp(); } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 0.0; for i in 0..N { s += x[i].powi(3) * x[0] - (i as f64) * x[i]; } s }",
];

/// Shapes the sweeps keep: the accumulator read in the loop (twice), a branch,
/// an inner loop, a product instead of a sum, an initial value from a parameter.
const OTHERS: &[&str] = &[
    "fn f(x: [f64; N], w: f64) -> [f64; N] { let mut y = [0.0; N]; for i in 0..N { y[i] = x[i] * w; if i > 0 { y[i] = y[i] + y[i - 1]; } } y }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 0.0; for i in 0..N { s = s * 0.5 + x[i] * x[i]; } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 0.0; for i in 0..N { if x[i] > 0.0 { s += x[i]; } } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 0.0; for i in 0..N { for j in 0..N { s += x[i] * x[j]; } } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = 1.0; for i in 0..N { s *= x[i]; } s }",
    "fn f(x: [f64; N], w: f64) -> f64 { let mut s = w; for i in 0..N { s += x[i] * x[i]; } s }",
];

fn with_n(src: &str, n: usize) -> String {
    src.replace("[f64; N]", &format!("[f64; {n}]"))
        .replace('N', &n.to_string())
}

fn options(t: Transform) -> Options {
    Options::new(t, Span::call_site())
}

fn points(n: usize) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(7 + n as u64);
    (0..4)
        .map(|_| (0..n).map(|_| rng.uniform(-1.2, 1.3)).collect())
        .collect()
}

type Pass =
    fn(&fluxion_engine::ir::Func, &Options, &Site, &RuleTable, bool) -> Result<fluxion_engine::ir::Func, syn::Error>;

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = 8.0 * f64::EPSILON * x.abs().max(y.abs()).max(1.0);
        assert!((x - y).abs() <= tol, "{what} [{k}]: {x} vs {y}");
    }
}

/// Every transform of every separable function, for sizes where reads coincide (`N = 1,
/// 2, 3`) and where they do not: the separable form is taken and equals the sweeps.
#[test]
fn separable_loops_give_the_sweeps_derivatives() {
    let rules = RuleTable::standard();
    let env = Env::default();
    let cases: Vec<(&str, Transform, Pass)> = ROWS
        .iter()
        .flat_map(|s| {
            [
                (*s, Transform::Jacrev, jacrev_pass as Pass),
                (*s, Transform::Jacfwd, jacfwd_pass as Pass),
            ]
        })
        .chain(SUMS.iter().map(|s| (*s, Transform::Hessian, hessian_pass as Pass)))
        .collect();
    for (src, t, pass) in cases {
        for n in [1, 2, 3, 5, 9] {
            let src = with_n(src, n);
            let f = lower(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let o = options(t);
            let sparse = derivative(&f, &o, &site(), &rules)
                .unwrap_or_else(|e| panic!("{src}: {e}"))
                .unwrap_or_else(|| panic!("{src}: not separable"));
            let emitted = pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e}"));
            let dense = pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(sparse, emitted, "{src}: the emitted form is not the separable one");
            for x in points(n) {
                for w in [0.8, -1.7] {
                    let args = [arr(&x), Value::F(w)];
                    let a = env.eval(&sparse, &args).unwrap_or_else(|e| panic!("{src}: {e}"));
                    let b = env.eval(&dense, &args).unwrap_or_else(|e| panic!("{src}: {e}"));
                    close(&flat(&a), &flat(&b), &format!("{t:?} of {src} at {x:?}, w = {w}"));
                }
            }
        }
    }
}

/// Where every read of an iteration is a different element, a row of `jacrev` and
/// `jacfwd` is the sweep's exactly (the same products, no sum over coinciding reads); only
/// a zero's sign may differ (the sweep's `0 * -a` is `-0`, an element no iteration reads
/// stays `+0`).
#[test]
fn distinct_reads_give_the_rows_bit_for_bit() {
    let rules = RuleTable::standard();
    let env = Env::default();
    let src = with_n(ROWS[0], 7);
    let f = lower(&src).unwrap();
    for (t, pass) in [
        (Transform::Jacrev, jacrev_pass as Pass),
        (Transform::Jacfwd, jacfwd_pass as Pass),
    ] {
        let o = options(t);
        let sparse = pass(&f, &o, &site(), &rules, true).unwrap();
        let dense = pass(&f, &o, &site(), &rules, false).unwrap();
        for x in points(7) {
            let args = [arr(&x), Value::F(0.5)];
            let a = flat(&env.eval(&sparse, &args).unwrap());
            let b = flat(&env.eval(&dense, &args).unwrap());
            assert_eq!(a, b, "{t:?} at {x:?}");
            assert!(a.iter().any(|v| *v != 0.0), "{t:?} at {x:?}");
        }
    }
}

/// Other shapes, other transforms of the separable ones, `has_aux`, a tuple of
/// `argnums` and a differentiated shared parameter keep the sweeps.
#[test]
fn other_shapes_are_not_separable() {
    let rules = RuleTable::standard();
    for src in OTHERS {
        let f = lower(&with_n(src, 4)).unwrap();
        for t in [Transform::Jacrev, Transform::Jacfwd, Transform::Hessian] {
            assert!(
                derivative(&f, &options(t), &site(), &rules).unwrap().is_none(),
                "{t:?} of {src}"
            );
        }
    }
    let rows = lower(&with_n(ROWS[0], 4)).unwrap();
    let sums = lower(&with_n(SUMS[0], 4)).unwrap();
    assert!(derivative(&rows, &options(Transform::Hessian), &site(), &rules)
        .unwrap()
        .is_none());
    assert!(derivative(&sums, &options(Transform::Jacrev), &site(), &rules)
        .unwrap()
        .is_none());
    assert!(derivative(&sums, &options(Transform::Jacfwd), &site(), &rules)
        .unwrap()
        .is_none());
    let mut many = options(Transform::Jacrev);
    many.argnums = Some(Argnums::Many(vec![(0, Span::call_site())]));
    assert!(derivative(&rows, &many, &site(), &rules).unwrap().is_none());
    let mut second = options(Transform::Jacrev);
    second.argnums = Some(Argnums::One(1, Span::call_site()));
    assert!(derivative(&rows, &second, &site(), &rules).unwrap().is_none());
    let aux = lower(
        "fn f(x: [f64; 3]) -> ([f64; 3], f64) { let mut y = [0.0; 3]; for i in 0..3 { y[i] = x[i] * x[i]; } (y, 1.0) }",
    )
    .unwrap();
    let mut o = options(Transform::Jacrev);
    o.has_aux = true;
    assert!(derivative(&aux, &o, &site(), &rules).unwrap().is_none());
    let first = options(Transform::Jacrev);
    assert!(derivative(&rows, &first, &site(), &rules).unwrap().is_some());
}

/// Near misses of the separable shape keep the sweeps (a row written at another index than
/// the loop's, the accumulator read in an iteration, `x` read as a whole), and an index into
/// another array parameter is no read of `x` (`x[i]` would be out of bounds): the emitted
/// Jacobians have the sweeps' values.
#[test]
fn near_misses_keep_the_sweeps_values() {
    let rules = RuleTable::standard();
    let env = Env::default();
    // (source, lengths of `x` and `w`, separable)
    let cases: &[(&str, [usize; 2], bool)] = &[
        (
            "fn f(x: [f64; 5], w: [f64; 5]) -> [f64; 5] { let mut y = [0.0; 5]; for i in 0..5 { y[(i + 1) % 5] = x[i] * x[i].sin() + w[i]; } y }",
            [5, 5],
            false,
        ),
        (
            "fn f(x: [f64; 4], w: [f64; 4]) -> [f64; 4] { let mut y = [0.0; 4]; for i in 0..4 { y[i] = x[i] * x[i] + y[0] * w[i]; } y }",
            [4, 4],
            false,
        ),
        (
            "fn f(x: [f64; 4], w: [f64; 4]) -> [f64; 4] { let mut y = [0.0; 4]; for i in 0..4 { y[i] = x[i] * x.iter().sum::<f64>() + w[i]; } y }",
            [4, 4],
            false,
        ),
        (
            "fn f(x: [f64; 2], w: [f64; 5]) -> [f64; 5] { let mut y = [0.0; 5]; for i in 0..5 { let a = w[i]; y[i] = a * x[i % 2].exp(); } y }",
            [2, 5],
            true,
        ),
    ];
    for (src, lens, separable) in cases {
        let f = lower(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        for (t, pass) in [
            (Transform::Jacrev, jacrev_pass as Pass),
            (Transform::Jacfwd, jacfwd_pass as Pass),
        ] {
            let o = options(t);
            let emitted = pass(&f, &o, &site(), &rules, true).unwrap_or_else(|e| panic!("{src}: {e}"));
            let dense = pass(&f, &o, &site(), &rules, false).unwrap_or_else(|e| panic!("{src}: {e}"));
            for (x, w) in points(lens[0]).into_iter().zip(points(lens[1]).into_iter().rev()) {
                let args = [arr(&x), arr(&w)];
                let a = flat(&env.eval(&emitted, &args).unwrap_or_else(|e| panic!("{src}: {e}")));
                let b = flat(&env.eval(&dense, &args).unwrap_or_else(|e| panic!("{src}: {e}")));
                assert!(a.iter().any(|v| *v != 0.0), "{t:?} of {src}");
                close(&a, &b, &format!("{t:?} of {src} at {x:?}, {w:?}"));
            }
            let sparse = derivative(&f, &o, &site(), &rules).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(sparse.is_some(), *separable, "{t:?} of {src}");
        }
    }
}

/// An iteration reading `MAX_READS` (8) distinct elements is separable and gives the
/// sweeps' rows; one reading 9 keeps the sweeps.
#[test]
fn eight_distinct_reads_are_separable_and_nine_are_not() {
    let rules = RuleTable::standard();
    let env = Env::default();
    let src = |k: usize| {
        let terms: Vec<String> = (0..k).map(|j| format!("x[(i + {j}) % 11] * {}.5", j + 1)).collect();
        format!(
            "fn f(x: [f64; 11], w: f64) -> [f64; 11] {{ let mut y = [0.0; 11]; for i in 0..11 {{ y[i] = ({}).sin() * w; }} y }}",
            terms.join(" + ")
        )
    };
    for (t, pass) in [
        (Transform::Jacrev, jacrev_pass as Pass),
        (Transform::Jacfwd, jacfwd_pass as Pass),
    ] {
        let o = options(t);
        let eight = lower(&src(8)).unwrap();
        let sparse = derivative(&eight, &o, &site(), &rules)
            .unwrap()
            .unwrap_or_else(|| panic!("{t:?}: 8 reads not separable"));
        let dense = pass(&eight, &o, &site(), &rules, false).unwrap();
        for x in points(11) {
            let args = [arr(&x), Value::F(0.8)];
            let a = flat(&env.eval(&sparse, &args).unwrap());
            let b = flat(&env.eval(&dense, &args).unwrap());
            // 8 nonzero entries per row.
            assert_eq!(a.iter().filter(|v| **v != 0.0).count(), 8 * 11, "{t:?} at {x:?}");
            close(&a, &b, &format!("{t:?} of 8 reads at {x:?}"));
        }
        let nine = lower(&src(9)).unwrap();
        assert!(
            derivative(&nine, &o, &site(), &rules).unwrap().is_none(),
            "{t:?}: 9 reads"
        );
    }
}
