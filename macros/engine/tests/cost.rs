//! No expression swell: the gradient of every test function stays within the
//! cheap-gradient bound of reverse mode (4x the primal's weighted operation count plus a
//! small constant), and generated code does not grow with loop trip counts.

use fluxion_engine::attr::Options;
use fluxion_engine::cost::weighted_ops;
use fluxion_engine::expand::lower_source;
use fluxion_engine::rules::RuleTable;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad, Site};
use proc_macro2::Span;

/// Slack for the fixed cost of seeding and assembling results.
const CONSTANT: u64 = 8;

/// Scalar functions in the accepted language (examples, test functions, physics).
pub const CORPUS: &[&str] = &[
    "fn lj(r: f64) -> f64 { EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6)) }",
    "fn sum_sin<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += x[i].sin(); } s }",
    "fn poly(x: f64) -> f64 { let mut acc = 0.0; for k in 0..8 { acc = acc * x + (k as f64); } acc }",
    "fn prod<const N: usize>(x: [f64; N]) -> f64 { let mut p = 1.0; for i in 0..N { p *= x[i]; } p }",
    "fn dist(a: [f64; 3], b: [f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { let d = a[i] - b[i]; s += d * d; } s.sqrt() }",
    "fn softplus_sum<const N: usize>(x: [f64; N]) -> f64 { let mut s = 0.0; for i in 0..N { s += (1.0 + x[i].exp()).ln(); } s }",
    "fn logsumexp(x: [f64; 4]) -> f64 { let mut m = x[0]; for i in 1..4 { m = m.max(x[i]); } let mut s = 0.0; for i in 0..4 { s += (x[i] - m).exp(); } m + s.ln() }",
    "fn branch(x: f64, y: f64) -> f64 { if x > y { x.sin() * y } else { (x * y).cos() } }",
    "fn early(x: f64) -> f64 { if x < 0.0 { return x * x; } let y = x.sqrt(); y * x }",
    "fn rosen(x: [f64; 5]) -> f64 { let mut s = 0.0; for i in 0..4 { let a = x[i + 1] - x[i] * x[i]; let b = 1.0 - x[i]; s += 100.0 * a * a + b * b; } s }",
    "fn matvec_norm(w: [[f64; 4]; 3], x: [f64; 4]) -> f64 { let mut s = 0.0; for i in 0..3 { let mut y = 0.0; for j in 0..4 { y += w[i][j] * x[j]; } s += y.tanh() * y.tanh(); } s }",
    "fn mixed(x: f64, y: f64) -> f64 { let a = x.hypot(y); let b = x.atan2(y); let c = a.powf(1.5) + b.mul_add(x, y); c.abs() + x.min(y) }",
    "fn recur(x: f64) -> f64 { let mut s = x; for _ in 0..10 { s = s * s * 0.5 + x; } s }",
    "fn energy2(p: [f64; 3], q: [f64; 3]) -> f64 { let mut r2 = 0.0; for i in 0..3 { let d = p[i] - q[i]; r2 += d * d; } let s6 = (1.0 / r2).powi(3); 4.0 * (s6 * s6 - s6) }",
];

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

fn grad_of(src: &str) -> (u64, u64) {
    let f = lower_source(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let o = Options::new(Transform::Grad, Span::call_site());
    let g = grad(&f, &o, &site(), &RuleTable::standard(), false).unwrap_or_else(|e| panic!("{src}: {e}"));
    (weighted_ops(&f), weighted_ops(&g))
}

#[test]
fn gradients_stay_within_the_cheap_gradient_bound() {
    let mut report = Vec::new();
    for src in CORPUS {
        let (p, g) = grad_of(src);
        let name = src.trim_start_matches("fn ").split(['(', '<']).next().unwrap_or(src);
        report.push(format!(
            "{name:>14}: primal {p:>3}, grad {g:>4}, ratio {:.2}",
            g as f64 / p as f64
        ));
        assert!(
            g <= 4 * p + CONSTANT,
            "{name}: gradient costs {g}, primal {p}: beyond 4x + {CONSTANT}"
        );
    }
    eprintln!("weighted operation counts (loops counted once):\n{}", report.join("\n"));
}

/// The same bound over every scalar function of the quickstart example and of the shared
/// compiled test cases (read from their source files).
#[test]
fn example_and_test_functions_stay_within_the_bound() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut checked = 0;
    for file in [
        "examples/quickstart.rs",
        "tests/cases/shared.rs",
        "benches/derivatives.rs",
    ] {
        let src = std::fs::read_to_string(format!("{root}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (name, f) in fluxion_engine::expand::lower_file(&src).unwrap_or_else(|e| panic!("{file}: {e}")) {
            if !matches!(f.ret_ty, fluxion_engine::ir::Ty::Float(_)) || f.params.is_empty() {
                continue;
            }
            let o = Options::new(Transform::Grad, Span::call_site());
            let Ok(g) = grad(&f, &o, &site(), &RuleTable::standard(), false) else {
                continue;
            };
            let (p, c) = (weighted_ops(&f), weighted_ops(&g));
            assert!(c <= 4 * p + CONSTANT, "{file}: {name}: gradient costs {c}, primal {p}");
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} functions checked");
    eprintln!("cheap-gradient bound holds for {checked} example and test functions");
}

#[test]
fn generated_code_does_not_grow_with_trip_counts() {
    let small = "fn f(x: [f64; 3]) -> f64 { let mut s = 0.0; for i in 0..3 { s += x[i].sin() * x[i]; } s }";
    let large = "fn f(x: [f64; 300]) -> f64 { let mut s = 0.0; for i in 0..300 { s += x[i].sin() * x[i]; } s }";
    assert_eq!(grad_of(small).1, grad_of(large).1);
}

#[test]
fn the_bound_can_fail() {
    // The counts are real: a known gradient has a known cost.
    let (p, g) = grad_of("fn f(x: f64) -> f64 { x.sin() * x }");
    assert_eq!(p, 9);
    // x cos x + sin x: sin (8) + cos (8) + one product + one sum (the seed 1.0 folds
    // away, the value x sin x itself is dead code in a gradient).
    assert_eq!(g, 18, "the gradient of x sin x");
}
