//! Every derivative rule of the standard table, checked against an oracle.
//!
//! For each primitive with a rule, a one-line primal is lowered from source (`x.atan2(y)`,
//! `x.powi(3)`, `x / y`, ..), transformed by the engine and evaluated by its interpreter:
//! - order 1: the partials from `jvp` (unit tangents) and `vjp` (`ct = 1`) against central
//!   finite differences of the primal;
//! - order 2: the Hessians from the companions `jvp(vjp(f))` and `vjp(vjp(f))` against
//!   central differences of the reverse-mode gradient (never differences of differences);
//! - cross-mode identities, to a few ulps: jvp and vjp partials agree, the Hessian is
//!   symmetric and the same from both companions, `<u, vjp(v)> = <jvp(u), v>`;
//! - the documented edge points of each row, exactly;
//! - the zero-derivative rows give exact zeros.
//!
//! The checks are functions returning `Result`, and the mutation tests hand them rule
//! tables with one seeded defect (`RuleTable::mutated`) to show that they can fail: every
//! `Scale(2)`, `FlipSign` and `DropTerm(k)` of every rule is caught at order 1, and a
//! defect in a rule used only by second derivatives is caught at order 2.
//!
//! Points are sampled from each row's domain by a deterministic RNG; `FLUXION_FD_POINTS`
//! (default 16) sets how many per check. Step and tolerance: see `common/mod.rs`
//! (`h = 1e-6 max(1, |x|)`, `|ad - fd| <= 1e-6 max(1, |ad|, |fd|)`).

mod common;

use common::*;

/// Cross-mode tolerances, in ulps of the larger magnitude involved (see `ulps_close`).
///
/// Order-1 partials with a unit seed are the same IR expression in both modes (`∂ · 1`),
/// so they must agree to the bit; 2 ulps leaves room for a `1 · ∂` vs `∂ · 1` reordering
/// and nothing else.
const PARTIAL_ULPS: f64 = 2.0;
/// `<u, vjp(v)>` and `<jvp(u), v>` sum the same `n ≤ 3` products in different orders and
/// with the seed multiplied in at a different place: `(n + 1)` roundings of each side, so
/// `8` ulps of `Σ |u_k ∂_k v|`.
const DOT_ULPS: f64 = 8.0;
/// The two companions and the two halves of the Hessian are different IR expressions of
/// the same second derivative (a product rule applied in another order, a quotient
/// differentiated as `v / d` or through `-(a/b)/b`): each entry is a handful of roundings
/// of terms no larger than the Hessian's largest entry, so `16` ulps of that entry.
const HESS_ULPS: f64 = 16.0;

/// Exponents the `powi` rule is checked with (literal and as an `i32` argument).
const POWI_EXPONENTS: [i128; 6] = [0, 1, 2, 3, -2, 7];

/// One primal exercising one rule.
struct Case {
    /// The primitive whose rule is under test.
    prim: Prim,
    /// A label for messages (`atan2`, `powi(x, 3)`, `powi(x, n = -2)`).
    label: String,
    /// The primal, in IR.
    func: Func,
    /// Number of float operands (the differentiated inputs).
    n_float: usize,
    /// Trailing integer arguments (the variable exponent of `powi`).
    ints: Vec<i128>,
    /// The exponent of a `powi` case, literal or argument.
    exponent: Option<i128>,
    /// Sampling range of each float operand (the row's domain).
    domain: Vec<(f64, f64)>,
    /// Points where finite differences are trustworthy (away from the rule's singular or
    /// kink points; see `sample`).
    valid: fn(&[f64]) -> bool,
}

fn anywhere(_: &[f64]) -> bool {
    true
}
/// `cbrt`, `abs` (and `powi` with a negative exponent below) are singular or kinked at 0.
fn away_from_zero(x: &[f64]) -> bool {
    x.iter().all(|v| v.abs() >= 0.05)
}
/// `x^-2` has derivatives growing like `x^-5`: keep `|x| >= 0.3` for a `1e-10` oracle.
fn away_from_zero_wide(x: &[f64]) -> bool {
    x.iter().all(|v| v.abs() >= 0.3)
}
/// `hypot` is singular at the origin only.
fn away_from_origin(x: &[f64]) -> bool {
    x[0].hypot(x[1]) >= 0.05
}
/// `min` and `max` have a kink on the diagonal.
fn away_from_tie(x: &[f64]) -> bool {
    (x[0] - x[1]).abs() >= 0.05
}
/// `fract` jumps at the integers.
fn away_from_integers(x: &[f64]) -> bool {
    (x[0] - x[0].round()).abs() >= 0.05
}
/// `clamp(x, lo, hi)` has kinks at its bounds.
fn away_from_bounds(x: &[f64]) -> bool {
    (x[0] - x[1]).abs() >= 0.05 && (x[0] - x[2]).abs() >= 0.05
}

impl Case {
    /// The harness of this case with a given rule table.
    fn harness(&self, rules: &RuleTable) -> Harness {
        let mut template = vec![Value::F(0.0); self.n_float];
        template.extend(self.ints.iter().map(|&n| Value::I(n)));
        Harness::new(&self.label, self.func.clone(), template, rules)
    }

    /// A random point in the domain where `valid` holds.
    fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        loop {
            let x: Vec<f64> = self.domain.iter().map(|&(lo, hi)| rng.uniform(lo, hi)).collect();
            if (self.valid)(&x) {
                return x;
            }
        }
    }

    /// Whether the derivative is identically zero (`powi(x, 0)`): nothing a mutation can
    /// change.
    fn zero_derivative(&self) -> bool {
        self.exponent == Some(0)
    }

    /// The float operands at which an edge of the row applies to this case, if it does
    /// (a `powi` edge `[x, n]` applies to the cases with exponent `n`).
    fn edge_point(&self, e: &Edge) -> Option<Vec<f64>> {
        match self.exponent {
            Some(n) if e.at.get(1).copied() != Some(n as f64) => None,
            _ => Some(e.at[..self.n_float].to_vec()),
        }
    }
}

/// The source of the one-line primal of a primitive.
fn source_of(p: Prim) -> String {
    let op = match p {
        Prim::Neg => return "fn f(x: f64) -> f64 { -x }".into(),
        Prim::Add => "+",
        Prim::Sub => "-",
        Prim::Mul => "*",
        Prim::Div => "/",
        Prim::Rem => "%",
        _ => {
            let m = p
                .method()
                .unwrap_or_else(|| panic!("{p:?} has a rule but no method name"));
            return match p.arity() {
                1 => format!("fn f(x: f64) -> f64 {{ x.{m}() }}"),
                2 => format!("fn f(x: f64, y: f64) -> f64 {{ x.{m}(y) }}"),
                _ => format!("fn f(x: f64, y: f64, z: f64) -> f64 {{ x.{m}(y, z) }}"),
            };
        }
    };
    format!("fn f(x: f64, y: f64) -> f64 {{ x {op} y }}")
}

/// Replaces the (only) primitive of a one-line primal by `to`, appending the extra
/// parameters as operands. Builds primals for the internal primitives user code cannot
/// write (`Sign0`, `MaxDa`, `MinDa`).
fn splice_prim(mut f: Func, to: Prim) -> Func {
    let extra: Vec<Operand> = f.params.iter().map(|p| Operand::Var(p.var)).collect();
    for s in &mut f.body.0 {
        if let Stmt::Let(_, Expr::Prim(p, ops)) = s {
            *p = to;
            for o in &extra[ops.len()..] {
                ops.push(o.clone());
            }
        }
    }
    f
}

/// One case per rule of the standard table with a non-zero derivative; `powi` gets one
/// per exponent of [`POWI_EXPONENTS`], written as a literal and passed as an argument.
fn cases() -> Vec<Case> {
    let table = RuleTable::standard();
    let mut out = Vec::new();
    for row in table.rows().filter(|r| !r.zero_derivative) {
        let p = row.prim;
        let valid: fn(&[f64]) -> bool = match p {
            Prim::Cbrt | Prim::Abs | Prim::Copysign => away_from_zero,
            Prim::Fract => away_from_integers,
            Prim::Clamp => away_from_bounds,
            Prim::Hypot => away_from_origin,
            Prim::Min | Prim::Max => away_from_tie,
            _ => anywhere,
        };
        if p == Prim::Powi {
            for n in POWI_EXPONENTS {
                let valid = if n < 0 { away_from_zero_wide } else { anywhere };
                let lit = lower(&format!("fn f(x: f64) -> f64 {{ x.powi({n}) }}")).unwrap_or_else(|e| panic!("{e}"));
                let var = lower("fn f(x: f64, n: i32) -> f64 { x.powi(n) }").unwrap_or_else(|e| panic!("{e}"));
                let case = |label: String, func: Func, ints: Vec<i128>| Case {
                    prim: p,
                    label,
                    func,
                    n_float: 1,
                    ints,
                    exponent: Some(n),
                    domain: row.domain.clone(),
                    valid,
                };
                out.push(case(format!("powi(x, {n})"), lit, vec![]));
                out.push(case(format!("powi(x, n = {n})"), var, vec![n]));
            }
            continue;
        }
        let func = lower(&source_of(p)).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let label = p.method().map_or_else(|| format!("{p:?}"), str::to_string);
        out.push(Case {
            prim: p,
            label,
            func,
            n_float: p.arity(),
            ints: vec![],
            exponent: None,
            domain: row.domain.clone(),
            valid,
        });
    }
    out
}

/// What a passing check did.
#[derive(Default, Debug)]
struct Tally {
    /// Primitive x mode x order checks (one per mode).
    checks: usize,
    /// Evaluation points.
    points: usize,
    /// Individual number comparisons.
    comparisons: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.checks += o.checks;
        self.points += o.points;
        self.comparisons += o.comparisons;
    }
}

/// Order 1: each partial from `jvp` and from `vjp` against central differences of the
/// primal, at `points` random points.
fn check_order1(case: &Case, rules: &RuleTable, points: usize) -> Result<Tally, String> {
    let h = case.harness(rules);
    let n = case.n_float;
    let mut rng = Rng::for_name(&format!("order1 {}", case.label));
    for _ in 0..points {
        let x = case.sample(&mut rng);
        let fd = h.fd_jacobian(&x)?.remove(0);
        let fwd = h.jac_fwd(&x)?.remove(0);
        let rev = h.grad(&x)?;
        for k in 0..n {
            for (mode, ad) in [("jvp", fwd[k]), ("vjp", rev[k])] {
                if !fd_close(ad, fd[k]) {
                    return Err(format!(
                        "{}: {mode} partial {k} at {x:?}: {ad:e}, finite differences {:e}",
                        case.label, fd[k]
                    ));
                }
            }
        }
    }
    Ok(Tally {
        checks: 2,
        points,
        comparisons: 2 * n * points,
    })
}

/// Order 2: the Hessians from `jvp(vjp(f))` and `vjp(vjp(f))` against central differences
/// of the reverse-mode gradient.
fn check_order2(case: &Case, rules: &RuleTable, points: usize) -> Result<Tally, String> {
    let h = case.harness(rules);
    let n = case.n_float;
    let mut rng = Rng::for_name(&format!("order2 {}", case.label));
    for _ in 0..points {
        let x = case.sample(&mut rng);
        let fd = h.fd_hessian_of_grad(&x)?;
        let at = |what: &str| format!("{}: {what} at {x:?}", case.label);
        compare(
            &at("jvp(vjp) Hessian vs differences of the gradient"),
            &h.hess_fwd_rev(&x)?,
            &fd,
            fd_close,
        )?;
        compare(
            &at("vjp(vjp) Hessian vs differences of the gradient"),
            &h.hess_rev_rev(&x)?,
            &fd,
            fd_close,
        )?;
    }
    Ok(Tally {
        checks: 2,
        points,
        comparisons: 2 * n * n * points,
    })
}

/// Cross-mode identities, to a few ulps (see the constants): the two modes' partials, the
/// dot-product test `<u, vjp(v)> = <jvp(u), v>`, Hessian symmetry, and the two companions.
fn check_identities(case: &Case, rules: &RuleTable, points: usize) -> Result<Tally, String> {
    let h = case.harness(rules);
    let n = case.n_float;
    let mut rng = Rng::for_name(&format!("identities {}", case.label));
    for _ in 0..points {
        let x = case.sample(&mut rng);
        let at = |what: &str| format!("{}: {what} at {x:?}", case.label);
        let fwd = h.jac_fwd(&x)?;
        let rev = vec![h.grad(&x)?];
        compare(&at("jvp vs vjp partials"), &fwd, &rev, |a, b| {
            ulps_close(a, b, PARTIAL_ULPS, 0.0)
        })?;

        let u: Vec<f64> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let v = rng.uniform(-1.0, 1.0);
        let (_, ju) = h.jvp(&x, &u)?;
        let (_, vj) = h.vjp(&x, &[v])?;
        let lhs: f64 = u.iter().zip(&vj).map(|(a, b)| a * b).sum();
        let rhs = ju[0] * v;
        let scale: f64 = u.iter().zip(&vj).map(|(a, b)| (a * b).abs()).sum();
        if !ulps_close(lhs, rhs, DOT_ULPS, scale) {
            return Err(at(&format!(
                "<u, vjp(v)> = {lhs:e} but <jvp(u), v> = {rhs:e} (u = {u:?}, v = {v})"
            )));
        }

        let hf = h.hess_fwd_rev(&x)?;
        let hr = h.hess_rev_rev(&x)?;
        let s = max_abs(&hf).max(max_abs(&hr));
        let close = |a: f64, b: f64| ulps_close(a, b, HESS_ULPS, s);
        compare(&at("jvp(vjp) Hessian symmetry"), &hf, &transpose(&hf), close)?;
        compare(&at("vjp(vjp) Hessian symmetry"), &hr, &transpose(&hr), close)?;
        compare(&at("jvp(vjp) vs vjp(vjp) Hessian"), &hf, &hr, close)?;
    }
    Ok(Tally {
        checks: 1,
        points,
        comparisons: (3 * n + 1 + 3 * n * n) * points,
    })
}

/// Documented edges the engine does not reproduce exactly: none. (The `hypot` overflow
/// edge is documented at `(3, 4) * 2^600`, where `f64::hypot` is exact; at `(3e200,
/// 4e200)` the platform's `hypot` is one ulp low, so no exact partial can be promised.)
const KNOWN_EDGE_BUGS: [(Prim, [f64; 2]); 0] = [];

fn is_known_edge_bug(p: Prim, e: &Edge) -> bool {
    KNOWN_EDGE_BUGS.iter().any(|(q, at)| *q == p && e.at == at)
}

/// Forward-mode partials at `x`: one `jvp` per float operand with only that operand active
/// (as `jacfwd(argnums = k)` builds them), raw or simplified. With every operand active, a
/// unit tangent's zeros would meet an infinite partial of another operand (`inf · 0 = NaN`
/// at `powf`'s `(0, -1)`), which is not the partial at all.
fn fwd_partials(case: &Case, rules: &RuleTable, x: &[f64], simplified: bool) -> Result<Vec<f64>, String> {
    let h = case.harness(rules);
    (0..case.n_float)
        .map(|k| {
            let mut active = vec![false; case.func.params.len()];
            active[k] = true;
            let spec = JvpSpec {
                active,
                all_params: false,
                seeds: vec![],
                basis: vec![],
            };
            let mut g = jvp(&case.func, &spec, rules).map_err(|d| d.msg)?;
            if simplified {
                fluxion_engine::simplify::simplify(&mut g);
            }
            let mut args = h.args(x);
            args.push(Value::F(1.0));
            match h.env.eval(&g, &args)? {
                Value::Tup(v) if v.len() == 2 => v[1].f().ok_or_else(|| format!("{}: tangent {:?}", case.label, v[1])),
                other => Err(format!("{}: jvp gave {other:?}", case.label)),
            }
        })
        .collect()
}

/// The documented edge points of the case's row selected by `pick`: the partials of both
/// modes equal the row's `edge.partials` exactly (NaN: is NaN), as built by `jvp`/`vjp`
/// and after `simplify`. Returns the number of edges checked.
fn check_edges(case: &Case, rules: &RuleTable, pick: impl Fn(&Edge) -> bool) -> Result<usize, String> {
    let row = rules
        .get(case.prim)
        .ok_or_else(|| format!("no row for {:?}", case.prim))?;
    let raw = case.harness(rules);
    let mut simplified = case.harness(rules);
    for f in [&mut simplified.fwd, &mut simplified.rev].into_iter().flatten() {
        fluxion_engine::simplify::simplify(f);
    }
    let mut checked = 0;
    for e in &row.edges {
        let Some(x) = case.edge_point(e).filter(|_| pick(e)) else {
            continue;
        };
        for (which, h) in [("", &raw), (" (simplified)", &simplified)] {
            let fwd = fwd_partials(case, rules, &x, !which.is_empty())?;
            let rev = h.grad(&x)?;
            for (mode, got) in [("jvp", &fwd), ("vjp", &rev)] {
                for (k, (&g, &want)) in got.iter().zip(&e.partials).enumerate() {
                    if !exact_eq(g, want) {
                        return Err(format!(
                            "{}: {mode}{which} partial {k} at edge {:?}: got {g:?}, documented {want:?}",
                            case.label, e.at
                        ));
                    }
                }
            }
        }
        checked += 1;
    }
    Ok(checked)
}

/// Runs a check on every case and fails with every failure listed.
fn run_all(what: &str, check: impl Fn(&Case) -> Result<Tally, String>) -> Tally {
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for case in cases() {
        match check(&case) {
            Ok(t) => total += t,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    total
}

#[test]
fn every_rule_has_a_case_and_every_primitive_a_row() {
    let table = RuleTable::standard();
    let cs = cases();
    for row in table.rows().filter(|r| !r.zero_derivative) {
        assert!(
            cs.iter().any(|c| c.prim == row.prim),
            "no case checks the rule of {:?}",
            row.prim
        );
    }
    for p in Prim::ALL {
        assert!(table.get(p).is_some(), "{p:?} has no row in the rule table");
    }
    // The rows whose derivative is identically zero are exactly the step functions and
    // the internal helpers (checked by `zero_derivative_rows_give_exact_zeros`).
    let zero: Vec<Prim> = table.rows().filter(|r| r.zero_derivative).map(|r| r.prim).collect();
    let mut want = vec![
        Prim::Signum,
        Prim::Trunc,
        Prim::Sign0,
        Prim::MaxDa,
        Prim::MinDa,
        Prim::Floor,
        Prim::Ceil,
        Prim::Round,
        Prim::RoundTiesEven,
        Prim::DivEuclid,
    ];
    want.sort();
    assert_eq!(zero, want);
}

#[test]
fn order1_jvp_and_vjp_partials_match_finite_differences() {
    let t = run_all("order 1", |c| check_order1(c, &RuleTable::standard(), fd_points()));
    assert!(t.comparisons > 0);
}

#[test]
fn order2_companion_hessians_match_differences_of_the_gradient() {
    let t = run_all("order 2", |c| check_order2(c, &RuleTable::standard(), fd_points()));
    assert!(t.comparisons > 0);
}

#[test]
fn cross_mode_identities_hold_to_a_few_ulps() {
    let t = run_all("cross-mode identities", |c| {
        check_identities(c, &RuleTable::standard(), fd_points())
    });
    assert!(t.comparisons > 0);
}

#[test]
fn documented_edge_points_are_exact() {
    let table = RuleTable::standard();
    let cs = cases();
    let mut failures = Vec::new();
    // Every edge of every row must be checked by at least one case.
    for row in table.rows() {
        for e in &row.edges {
            let users: Vec<&Case> = cs
                .iter()
                .filter(|c| c.prim == row.prim && c.edge_point(e).is_some())
                .collect();
            assert!(
                !users.is_empty(),
                "edge {:?} of {:?} applies to no case",
                e.at,
                row.prim
            );
        }
    }
    let mut checked = 0;
    for c in &cs {
        match check_edges(c, &table, |e| !is_known_edge_bug(c.prim, e)) {
            Ok(k) => checked += k,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} edge failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("edge checks: {checked} (case, edge) pairs x 2 modes x (raw, simplified)");
    assert!(checked >= table.rows().map(|r| r.edges.len()).sum::<usize>() - KNOWN_EDGE_BUGS.len());
}

/// The zero-derivative rows (the methods from source; the internal helpers `Sign0`,
/// `MaxDa` and `MinDa`, which user code cannot write, spliced into a one-line primal)
/// propagate nothing: every partial and second derivative is exactly 0.
#[test]
fn zero_derivative_rows_give_exact_zeros() {
    let table = RuleTable::standard();
    let unary = lower("fn f(x: f64) -> f64 { x.abs() }").unwrap_or_else(|e| panic!("{e}"));
    let binary = lower("fn f(x: f64, y: f64) -> f64 { x.max(y) }").unwrap_or_else(|e| panic!("{e}"));
    let funcs: Vec<(Prim, Func)> = table
        .rows()
        .filter(|r| r.zero_derivative)
        .map(|r| {
            let p = r.prim;
            let f = match (p.method(), p.arity()) {
                (Some(_), _) => lower(&source_of(p)).unwrap_or_else(|e| panic!("{e}")),
                (None, 1) => splice_prim(unary.clone(), p),
                (None, _) => splice_prim(binary.clone(), p),
            };
            (p, f)
        })
        .collect();
    assert!(funcs.len() >= 10);
    for (p, f) in funcs {
        let row = table.get(p).unwrap_or_else(|| panic!("no row for {p:?}"));
        assert!(row.zero_derivative, "{p:?}");
        let n = p.arity();
        let h = Harness::new(&format!("{p:?}"), f, vec![Value::F(0.0); n], &table);
        let mut rng = Rng::for_name(&format!("zero {p:?}"));
        for _ in 0..fd_points() {
            let x: Vec<f64> = row.domain.iter().map(|&(lo, hi)| rng.uniform(lo, hi)).collect();
            let all = [
                ("jvp", h.jac_fwd(&x)),
                ("vjp", h.jac_rev(&x)),
                ("jvp(vjp)", h.hess_fwd_rev(&x)),
                ("vjp(vjp)", h.hess_rev_rev(&x)),
            ];
            for (mode, m) in all {
                let m = m.unwrap_or_else(|e| panic!("{p:?} {mode}: {e}"));
                assert!(m.iter().flatten().all(|&v| v == 0.0), "{p:?} {mode} at {x:?}: {m:?}");
            }
        }
    }
}

/// The checker can fail: for every rule with a non-zero derivative, each seeded defect
/// (`Scale(2)`, `FlipSign`, and `DropTerm(k)` for each float operand `k`) makes the
/// order-1 check return `Err`. Dropping a structurally zero term (`powi`'s integer
/// exponent, `copysign`'s sign) changes nothing, and the check must keep passing there (so failures above
/// come from the defect, not from using a mutated table at all).
///
/// Uses at least 16 points whatever `FLUXION_FD_POINTS` says: `DropTerm(0)` of `max` is
/// only visible at points where the first operand is the larger one.
#[test]
fn every_seeded_defect_is_caught_at_order1() {
    let table = RuleTable::standard();
    let points = fd_points().max(16);
    let mut caught = 0;
    let mut missed = Vec::new();
    for c in cases() {
        if c.zero_derivative() {
            continue;
        }
        // Operands whose partial is a structural zero: `copysign`'s sign operand.
        let zero_terms: &[usize] = if c.prim == Prim::Copysign { &[1] } else { &[] };
        let mut muts = vec![Mutation::Scale(2.0), Mutation::FlipSign];
        muts.extend(
            (0..c.n_float)
                .filter(|k| !zero_terms.contains(k))
                .map(Mutation::DropTerm),
        );
        for &k in zero_terms {
            let r = check_order1(&c, &table.mutated(c.prim, Mutation::DropTerm(k)), points);
            assert!(
                r.is_ok(),
                "{}: dropping the (absent) term {k} broke the check: {r:?}",
                c.label
            );
        }
        for m in muts {
            match check_order1(&c, &table.mutated(c.prim, m), points) {
                Err(_) => caught += 1,
                Ok(_) => missed.push(format!("{} with {m:?}", c.label)),
            }
        }
        if c.prim == Prim::Powi {
            let r = check_order1(&c, &table.mutated(c.prim, Mutation::DropTerm(1)), points);
            assert!(
                r.is_ok(),
                "{}: dropping the integer exponent's (absent) term broke the check: {r:?}",
                c.label
            );
        }
    }
    eprintln!("mutations caught at order 1: {caught}");
    assert!(
        missed.is_empty(),
        "defects not caught by the order-1 check:\n{}",
        missed.join("\n")
    );
}

/// A defect in a rule that a primal's *first* derivative only evaluates (the partials of
/// `sin` call `cos`, those of `sqrt` and `atan2` divide, ..) is invisible at order 1 and
/// must be caught by the order-2 check, which differentiates those partials.
///
/// The pairs avoid primals where the defective rule is applied an even number of times on
/// every path: `tanh''` from `(1 - y·y)·ȳ` goes through the `Mul` rule twice (`y·y`, then
/// `·ȳ`), so a sign flip of `Mul` cancels and gives the *correct* second derivative there;
/// `sqrt`'s `ȳ / (2y)` applies `Mul` once.
#[test]
fn defects_in_second_derivative_rules_are_caught_at_order2() {
    let table = RuleTable::standard();
    let points = fd_points().max(16);
    let cs = cases();
    let pairs = [
        (Prim::Sin, Prim::Cos),
        (Prim::Cos, Prim::Sin),
        (Prim::Sinh, Prim::Cosh),
        (Prim::Cosh, Prim::Sinh),
        (Prim::Tanh, Prim::Sub),
        (Prim::Sqrt, Prim::Mul),
        (Prim::Sqrt, Prim::Div),
        (Prim::Atan2, Prim::Hypot),
    ];
    let mut caught = 0;
    for (checked, defective) in pairs {
        let c = cs
            .iter()
            .find(|c| c.prim == checked)
            .unwrap_or_else(|| panic!("no case for {checked:?}"));
        for m in [Mutation::Scale(2.0), Mutation::FlipSign] {
            let t = table.mutated(defective, m);
            let o1 = check_order1(c, &t, points);
            assert!(
                o1.is_ok(),
                "{}: {defective:?} {m:?} should not affect order 1: {o1:?}",
                c.label
            );
            let o2 = check_order2(c, &t, points);
            assert!(
                o2.is_err(),
                "{}: {defective:?} {m:?} not caught by the order-2 check",
                c.label
            );
            caught += 1;
        }
    }
    eprintln!("second-derivative defects caught only at order 2: {caught}");
}

/// The size of the suite: every case checked in 2 modes at 2 orders, `FLUXION_FD_POINTS`
/// points per check.
#[test]
fn rule_check_totals() {
    let table = RuleTable::standard();
    let cs = cases();
    let points = fd_points();
    let mut t = Tally::default();
    for c in &cs {
        t += check_order1(c, &table, points).unwrap_or_else(|e| panic!("{e}"));
        t += check_order2(c, &table, points).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut prims: Vec<Prim> = cs.iter().map(|c| c.prim).collect();
    prims.sort();
    prims.dedup();
    eprintln!(
        "rule checks: {} primitives ({} cases) x 2 modes x 2 orders = {} checks, {} points ({} per check), {} comparisons",
        prims.len(),
        cs.len(),
        t.checks,
        t.points,
        points,
        t.comparisons
    );
    assert_eq!(prims.len(), table.rows().filter(|r| !r.zero_derivative).count());
    assert_eq!(t.checks, cs.len() * 2 * 2);
    assert_eq!(t.points, cs.len() * 2 * points);
}

/// Every row samples a range, not a point: a degenerate domain (`(0.9, 0.9)`) would check
/// each rule at one value only.
#[test]
fn every_domain_is_a_range() {
    for row in RuleTable::standard().rows() {
        for &(lo, hi) in &row.domain {
            assert!(hi - lo >= 0.5, "{:?}: domain ({lo}, {hi})", row.prim);
        }
    }
}

/// Every rule under `vmap`'s batching rule: the primal of each case and its gradient
/// (`grad`), batched over their float operands (a `powi` exponent passed as an argument
/// stays shared, as integers must), give in each of 4 lanes bit for bit the per-sample
/// value, at random points of the row's domain and at its documented edges (NaN, infinity
/// and the sign of zero included: the interpreter applies each operation lane by lane).
#[test]
fn every_rule_batches_lane_by_lane() {
    use fluxion_engine::attr::Options;
    use fluxion_engine::batch::{batch, BatchSpec};
    use fluxion_engine::symbol::Transform;
    use fluxion_engine::transforms::{grad, Site};
    let rules = RuleTable::standard();
    let site = Site {
        name: proc_macro2::Span::call_site(),
        ret: proc_macro2::Span::call_site(),
    };
    let env = Env::default();
    let mut compared = 0;
    for case in cases() {
        let mut o = Options::new(Transform::Grad, proc_macro2::Span::call_site());
        o.argnums = Some(fluxion_engine::attr::Argnums::Many(
            (0..case.n_float).map(|k| (k, proc_macro2::Span::call_site())).collect(),
        ));
        let g = grad(&case.func, &o, &site, &rules, false).unwrap_or_else(|e| panic!("{}: {e:?}", case.label));
        let table = RuleTable::standard();
        let edges: Vec<Vec<f64>> = table
            .rows()
            .filter(|r| r.prim == case.prim)
            .flat_map(|r| r.edges.iter().filter_map(|e| case.edge_point(e)).collect::<Vec<_>>())
            .collect();
        let mut rng = Rng::for_name(&format!("batching {}", case.label));
        let mut points: Vec<Vec<f64>> = (0..12).map(|_| case.sample(&mut rng)).collect();
        points.extend(edges);
        for f in [&case.func, &g] {
            let flags: Vec<bool> = (0..f.params.len()).map(|k| k < case.n_float).collect();
            let k = batch(f, &BatchSpec { batched: flags.clone() }).unwrap_or_else(|e| panic!("{}: {e:?}", case.label));
            for chunk in points.chunks(4) {
                let args = |x: &[f64]| -> Vec<Value> {
                    x.iter()
                        .map(|v| Value::F(*v))
                        .chain(case.ints.iter().map(|n| Value::I(*n)))
                        .collect()
                };
                let per: Vec<Vec<Value>> = (0..4).map(|l| args(&chunk[l.min(chunk.len() - 1)])).collect();
                let packed: Vec<Value> = (0..f.params.len())
                    .map(|q| {
                        if flags[q] {
                            pack(&per.iter().map(|a| a[q].clone()).collect::<Vec<_>>())
                        } else {
                            per[0][q].clone()
                        }
                    })
                    .collect();
                let got = env.eval(&k, &packed).unwrap_or_else(|e| panic!("{}: {e}", case.label));
                for (l, x) in chunk.iter().enumerate() {
                    let want = env.eval(f, &per[l]).unwrap_or_else(|e| panic!("{}: {e}", case.label));
                    assert_eq!(bits(&lane(&got, l)), bits(&want), "{} at {x:?}", case.label);
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1200, "only {compared} comparisons");
}
