//! Shared machinery of the derivative checks (`rules.rs`, `programs.rs`).
//!
//! Everything runs in-process: a function is lowered from source text, transformed by the
//! engine (`jvp`, `vjp`, companions) and evaluated by the engine's IR interpreter, so that
//! derivatives can be compared with finite differences at many points without rustc.
//!
//! Numbers used by every check (the rationale is in the comments on each constant):
//! - finite-difference step `h = 1e-6 * max(1, |x|)` (central differences);
//! - oracle tolerance `|ad - fd| <= 1e-6 * max(1, |ad|, |fd|)`;
//! - points per check: `FLUXION_FD_POINTS` (default 16).
#![allow(dead_code, unused_imports)] // each test crate uses a part of this module

pub use fluxion_engine::error::Diag;
pub use fluxion_engine::interp::{companion, Env, Value};
pub use fluxion_engine::ir::{Expr, Func, Mode, Operand, Prim, Stmt};
pub use fluxion_engine::jvp::{jvp, JvpSpec};
pub use fluxion_engine::rules::{Edge, Mutation, RuleTable};
pub use fluxion_engine::vjp::{vjp, VjpSpec};

/// Number of random evaluation points per check: `FLUXION_FD_POINTS`, default 16.
pub fn fd_points() -> usize {
    std::env::var("FLUXION_FD_POINTS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(16)
}

/// Relative finite-difference step. Central differences have truncation error
/// `h² |f'''| / 6` and rounding error about `ε |f| / h`; with `h = 1e-6 · max(1, |x|)`
/// both are around `1e-10` relative on the domains sampled here (the rules' domains stay
/// away from singular points), four orders of magnitude below the tolerance.
pub const FD_REL_STEP: f64 = 1e-6;

/// Relative tolerance of a derivative against its finite-difference oracle. Far above the
/// `~1e-10` error of the oracle, far below the `O(1)` relative error of any wrong rule
/// (a factor 2, a sign, a dropped term), so the check passes on correct rules and fails on
/// defective ones (the mutation tests of `rules.rs` show the second part).
pub const FD_RTOL: f64 = 1e-6;

/// The central-difference step at `x`.
pub fn fd_step(x: f64) -> f64 {
    FD_REL_STEP * x.abs().max(1.0)
}

/// `ad` agrees with the finite-difference estimate `fd` (false on NaN).
pub fn fd_close(ad: f64, fd: f64) -> bool {
    (ad - fd).abs() <= FD_RTOL * 1f64.max(ad.abs()).max(fd.abs())
}

/// `a` and `b` differ by at most `ulps` units in the last place of `max(|a|, |b|, scale)`.
/// `scale` is the size of the quantities the two results were computed from (a matrix
/// norm, a sum of absolute terms), below which rounding differences are meaningless.
pub fn ulps_close(a: f64, b: f64, ulps: f64, scale: f64) -> bool {
    a == b || (a - b).abs() <= ulps * f64::EPSILON * a.abs().max(b.abs()).max(scale)
}

/// NaN-aware exact equality: NaN matches NaN, infinities and zeros compare with `==`.
pub fn exact_eq(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// A small deterministic RNG (xorshift64*), so that every run samples the same points.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }
    /// A seed derived from a name, so each case gets its own stream of points.
    pub fn for_name(name: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
        Rng::new(h)
    }
}

/// Lowers a function written in the accepted language, or gives the compile errors.
pub fn lower(src: &str) -> Result<Func, String> {
    let item: syn::ItemFn = syn::parse_str(src).map_err(|e| format!("parse error: {e}"))?;
    let mut cx = fluxion_engine::error::Ctxt::new();
    let f = fluxion_engine::lower::lower_fn(&item, &mut cx);
    cx.check().map_err(|e| format!("lowering error: {e}"))?;
    f.ok_or_else(|| "lowering failed without an error".to_string())
}

/// Every float of a value, in index order.
/// Lane values of the batching tests: ordinary values, both signs, a zero, values on each
/// side of their conditions, and values that make an untaken side NaN or infinite (`sqrt`
/// and `ln` of negatives, division by zero).
pub const SAMPLES: [f64; 9] = [0.7, -1.3, 0.0, 2.5, -0.25, 1.0, -3.0, 0.125, 4.0];

/// Samples of one parameter packed into lanes (a structure of lanes: arrays and tuples
/// element by element).
pub fn pack(samples: &[Value]) -> Value {
    let part = |j: usize| -> Vec<Value> {
        samples
            .iter()
            .map(|v| match v {
                Value::Arr(xs) | Value::Tup(xs) => xs[j].clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    match &samples[0] {
        Value::Arr(xs) => Value::Arr((0..xs.len()).map(|j| pack(&part(j))).collect()),
        Value::Tup(xs) => Value::Tup((0..xs.len()).map(|j| pack(&part(j))).collect()),
        Value::Unit => Value::Unit,
        _ => Value::L(samples.to_vec()),
    }
}

/// Lane `k` of a batched kernel's value: the per-sample value.
pub fn lane(v: &Value, k: usize) -> Value {
    match v {
        Value::L(xs) => xs[k].clone(),
        Value::Arr(xs) => Value::Arr(xs.iter().map(|x| lane(x, k)).collect()),
        Value::Tup(xs) => Value::Tup(xs.iter().map(|x| lane(x, k)).collect()),
        other => panic!("a kernel result that is not lanes: {other:?}"),
    }
}

/// The bits of every float of `v` (every NaN as one NaN).
pub fn bits(v: &Value) -> Vec<u64> {
    flat(v)
        .iter()
        .map(|x| if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() })
        .collect()
}

pub fn flat(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    v.flatten(&mut out);
    out
}

/// A tangent (or cotangent) shaped like `v` under the companion protocol: floats taken
/// from `it`, `()` in place of every integer or boolean.
pub fn fill_tangent(v: &Value, it: &mut dyn Iterator<Item = f64>) -> Value {
    match v {
        Value::F(_) => Value::F(it.next().unwrap_or(0.0)),
        Value::Arr(xs) => Value::Arr(xs.iter().map(|x| fill_tangent(x, it)).collect()),
        Value::Tup(xs) => Value::Tup(xs.iter().map(|x| fill_tangent(x, it)).collect()),
        _ => Value::Unit,
    }
}

/// Whether a value holds any float (a parameter with a tangent in plain `jvp`/`vjp`).
pub fn has_float(v: &Value) -> bool {
    !flat(v).is_empty()
}

/// The unit vector `e_k` of length `n`.
pub fn unit(n: usize, k: usize) -> Vec<f64> {
    (0..n).map(|i| if i == k { 1.0 } else { 0.0 }).collect()
}

fn pair(v: Value, what: &str) -> Result<(Value, Value), String> {
    match v {
        Value::Tup(mut xs) if xs.len() == 2 => {
            let b = xs.pop().unwrap_or(Value::Unit);
            let a = xs.pop().unwrap_or(Value::Unit);
            Ok((a, b))
        }
        other => Err(format!("{what}: expected a pair, got {other:?}")),
    }
}

/// A function under test with its transforms, all built with one rule table.
///
/// The inputs are described by a template of argument values: its floats (in flattened
/// order) are the differentiated inputs `x`, its integers are fixed arguments that are
/// never differentiated. Outputs are flattened the same way.
pub struct Harness {
    /// A label for messages.
    pub name: String,
    /// The primal.
    pub f: Func,
    /// The interpreter environment (rules, constants).
    pub env: Env,
    /// Argument template.
    pub template: Vec<Value>,
    /// `jvp(f)` with every float parameter active: `(params.., tangents..) -> (y, ẏ)`.
    pub fwd: Result<Func, Diag>,
    /// `vjp(f)` with every float parameter active: `(params.., ct) -> (y, (bars..))`.
    pub rev: Result<Func, Diag>,
    /// Companion `jvp(vjp(f))`: `(x.., ct, dx.., dct) -> ((y, bars), (dy, dbars))`.
    pub fwd_rev: Result<Func, Diag>,
    /// Companion `vjp(vjp(f))`: `(x.., ct, ct2) -> ((y, bars), (xbars.., ctbar))`.
    pub rev_rev: Result<Func, Diag>,
}

impl Harness {
    /// Builds every transform of `f` with `rules`. Transform failures are kept and
    /// reported by the evaluations that need them.
    pub fn new(name: &str, f: Func, template: Vec<Value>, rules: &RuleTable) -> Harness {
        let n = f.params.len();
        let fwd = jvp(
            &f,
            &JvpSpec {
                active: vec![true; n],
                all_params: false,
                seeds: vec![],
                basis: vec![],
            },
            rules,
        );
        let rev = vjp(
            &f,
            &VjpSpec {
                active: vec![true; n],
                all_params: false,
                seed: None,
            },
            rules,
        )
        .map(|o| o.func);
        let fwd_rev = companion(&f, &[Mode::Vjp, Mode::Jvp], rules);
        let rev_rev = companion(&f, &[Mode::Vjp, Mode::Vjp], rules);
        let env = Env {
            rules: rules.clone(),
            ..Default::default()
        };
        Harness {
            name: name.to_string(),
            f,
            env,
            template,
            fwd,
            rev,
            fwd_rev,
            rev_rev,
        }
    }

    /// Sets a constant or const generic for the interpreter.
    pub fn with_const(mut self, name: &str, v: i128) -> Harness {
        self.env.consts.insert(name.to_string(), Value::I(v));
        self
    }

    /// Number of differentiated inputs.
    pub fn n_in(&self) -> usize {
        self.template.iter().map(|v| flat(v).len()).sum()
    }

    /// The arguments for the flattened inputs `x`.
    pub fn args(&self, x: &[f64]) -> Vec<Value> {
        let mut it = x.iter().copied();
        self.template.iter().map(|v| v.unflatten(&mut it)).collect()
    }

    fn eval(&self, which: &str, f: &Result<Func, Diag>, args: &[Value]) -> Result<Value, String> {
        let f = f
            .as_ref()
            .map_err(|e| format!("{}: building {which} failed: {e}", self.name))?;
        self.env
            .eval(f, args)
            .map_err(|e| format!("{}: evaluating {which} failed: {e}", self.name))
    }

    /// The primal's value.
    pub fn primal(&self, x: &[f64]) -> Result<Value, String> {
        self.env
            .eval(&self.f, &self.args(x))
            .map_err(|e| format!("{}: evaluating the primal failed: {e}", self.name))
    }

    /// The primal's value, flattened.
    pub fn primal_flat(&self, x: &[f64]) -> Result<Vec<f64>, String> {
        Ok(flat(&self.primal(x)?))
    }

    /// Forward mode: `(y, J u)`, flattened.
    pub fn jvp(&self, x: &[f64], u: &[f64]) -> Result<(Vec<f64>, Vec<f64>), String> {
        let mut args = self.args(x);
        let mut it = u.iter().copied();
        for p in &self.template {
            if has_float(p) {
                args.push(p.unflatten(&mut it));
            }
        }
        let (y, ydot) = pair(self.eval("jvp", &self.fwd, &args)?, "jvp")?;
        Ok((flat(&y), flat(&ydot)))
    }

    /// Reverse mode: `(y, wᵀ J)`, flattened; `w` has one entry per output float.
    pub fn vjp(&self, x: &[f64], w: &[f64]) -> Result<(Vec<f64>, Vec<f64>), String> {
        let y0 = self.primal(x)?;
        let mut args = self.args(x);
        args.push(y0.unflatten(&mut w.iter().copied()));
        let (y, bars) = pair(self.eval("vjp", &self.rev, &args)?, "vjp")?;
        let bars = flat(&bars);
        if bars.len() != self.n_in() {
            return Err(format!(
                "{}: vjp gave {} cotangent floats for {} inputs",
                self.name,
                bars.len(),
                self.n_in()
            ));
        }
        Ok((flat(&y), bars))
    }

    /// The gradient of a scalar-output function by reverse mode (`ct = 1`).
    pub fn grad(&self, x: &[f64]) -> Result<Vec<f64>, String> {
        Ok(self.vjp(x, &[1.0])?.1)
    }

    /// `H u` for a scalar-output function, by the companion `jvp(vjp(f))` with `ct = 1`,
    /// `dx = u`, `dct = 0`: the tangent of the gradient in direction `u`.
    pub fn hvp_fwd_rev(&self, x: &[f64], u: &[f64]) -> Result<Vec<f64>, String> {
        let y0 = self.primal(x)?;
        let mut args = self.args(x);
        args.push(Value::F(1.0));
        let mut it = u.iter().copied();
        for p in &self.template {
            args.push(fill_tangent(p, &mut it));
        }
        args.push(y0.zero_tangent());
        let (_, tangent) = pair(self.eval("jvp(vjp)", &self.fwd_rev, &args)?, "jvp(vjp)")?;
        let (_, dbars) = pair(tangent, "jvp(vjp) tangent")?;
        let h = flat(&dbars);
        if h.len() != self.n_in() {
            return Err(format!(
                "{}: jvp(vjp) gave {} tangent floats for {} inputs",
                self.name,
                h.len(),
                self.n_in()
            ));
        }
        Ok(h)
    }

    /// `uᵀ H` for a scalar-output function, by the companion `vjp(vjp(f))` with `ct = 1`
    /// and the cotangent `(0, u)` of its output `(y, bars)`: the gradient of `<bars, u>`.
    pub fn hvp_rev_rev(&self, x: &[f64], u: &[f64]) -> Result<Vec<f64>, String> {
        let y0 = self.primal(x)?;
        let mut args = self.args(x);
        args.push(Value::F(1.0));
        let mut it = u.iter().copied();
        let bars_ct: Vec<Value> = self.template.iter().map(|p| fill_tangent(p, &mut it)).collect();
        args.push(Value::Tup(vec![y0.zero_tangent(), Value::Tup(bars_ct)]));
        let (_, xbars) = pair(self.eval("vjp(vjp)", &self.rev_rev, &args)?, "vjp(vjp)")?;
        // `(x bars.., ct bar)`: the inputs' cotangents come first.
        let h = flat(&xbars);
        if h.len() < self.n_in() {
            return Err(format!(
                "{}: vjp(vjp) gave {} cotangent floats for {} inputs",
                self.name,
                h.len(),
                self.n_in()
            ));
        }
        Ok(h[..self.n_in()].to_vec())
    }

    /// Jacobian by central differences of the primal: `jac[i][j] = ∂y_i/∂x_j`.
    pub fn fd_jacobian(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let m = self.primal_flat(x)?.len();
        let mut jac = vec![vec![0.0; x.len()]; m];
        for j in 0..x.len() {
            let h = fd_step(x[j]);
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += h;
            xm[j] -= h;
            let (yp, ym) = (self.primal_flat(&xp)?, self.primal_flat(&xm)?);
            for i in 0..m {
                jac[i][j] = (yp[i] - ym[i]) / (xp[j] - xm[j]);
            }
        }
        Ok(jac)
    }

    /// Hessian of a scalar-output function by central differences of the *reverse-mode
    /// gradient* (never differences of differences): `hess[i][j] ≈ ∂g_i/∂x_j`.
    pub fn fd_hessian_of_grad(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let n = x.len();
        let mut hess = vec![vec![0.0; n]; n];
        for j in 0..n {
            let h = fd_step(x[j]);
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += h;
            xm[j] -= h;
            let (gp, gm) = (self.grad(&xp)?, self.grad(&xm)?);
            for i in 0..n {
                hess[i][j] = (gp[i] - gm[i]) / (xp[j] - xm[j]);
            }
        }
        Ok(hess)
    }

    /// Jacobian from forward mode, one column per unit tangent.
    pub fn jac_fwd(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let n = x.len();
        let m = self.primal_flat(x)?.len();
        let mut cols = Vec::new();
        for j in 0..n {
            let (_, col) = self.jvp(x, &unit(n, j))?;
            if col.len() != m {
                return Err(format!(
                    "{}: jvp gave {} tangent floats for {m} outputs",
                    self.name,
                    col.len()
                ));
            }
            cols.push(col);
        }
        Ok(transpose(&cols))
    }

    /// Jacobian from reverse mode, one row per unit cotangent.
    pub fn jac_rev(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let m = self.primal_flat(x)?.len();
        (0..m).map(|i| Ok(self.vjp(x, &unit(m, i))?.1)).collect()
    }

    /// Hessian from `jvp(vjp)`: `hess[i][j] = (H e_j)_i`.
    pub fn hess_fwd_rev(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let n = x.len();
        let cols: Vec<Vec<f64>> = (0..n)
            .map(|j| self.hvp_fwd_rev(x, &unit(n, j)))
            .collect::<Result<_, _>>()?;
        Ok((0..n).map(|i| (0..n).map(|j| cols[j][i]).collect()).collect())
    }

    /// Hessian from `vjp(vjp)`: `hess[i][j] = (e_iᵀ H)_j`.
    pub fn hess_rev_rev(&self, x: &[f64]) -> Result<Vec<Vec<f64>>, String> {
        let n = x.len();
        (0..n).map(|i| self.hvp_rev_rev(x, &unit(n, i))).collect()
    }
}

/// Largest absolute entry of a matrix (the scale of cross-mode comparisons).
pub fn max_abs(m: &[Vec<f64>]) -> f64 {
    m.iter().flatten().fold(0.0, |a: f64, &b| a.max(b.abs()))
}

/// Compares two matrices entry by entry with `close`, reporting the first mismatch.
pub fn compare(what: &str, a: &[Vec<f64>], b: &[Vec<f64>], close: impl Fn(f64, f64) -> bool) -> Result<(), String> {
    if a.len() != b.len() || a.iter().zip(b).any(|(r, s)| r.len() != s.len()) {
        return Err(format!("{what}: shapes differ: {a:?} vs {b:?}"));
    }
    for (i, (r, s)) in a.iter().zip(b).enumerate() {
        for (j, (&p, &q)) in r.iter().zip(s).enumerate() {
            if !close(p, q) {
                return Err(format!(
                    "{what}: entry ({i}, {j}): {p:e} vs {q:e} (diff {:e})",
                    (p - q).abs()
                ));
            }
        }
    }
    Ok(())
}

/// The transpose of a matrix.
pub fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let cols = m.first().map_or(0, Vec::len);
    (0..cols).map(|j| m.iter().map(|r| r[j]).collect()).collect()
}
