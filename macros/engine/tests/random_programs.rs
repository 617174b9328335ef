//! Randomized differential tests: random well-typed programs in the accepted language,
//! lowered from source text and checked through the IR interpreter.
//!
//! A seeded generator (`Gen`, no external crate) builds each program as a small AST,
//! printed as Rust source, lowered with `expand::lower_source` and transformed by the
//! engine. The AST is also run by a reference evaluator in this file (`Ref`: plain `f64`
//! arithmetic in Rust's evaluation order, lazy `&&`/`||`), which gives the expected primal
//! bit for bit, every intermediate magnitude, and the trace of branch decisions and
//! `min`/`max` sides that keeps finite differences on one smooth piece.
//!
//! Checks, at `FLUXION_RANDOM_POINTS` points per program (default 2):
//! 1. the interpreted primal equals the reference evaluation bitwise (the lowering keeps
//!    the operations, their order and Rust's semantics);
//! 2. reverse mode (`vjp`, one unit cotangent per output) against central differences of
//!    the interpreted primal (`FD_RTOL` of `common`), at points where the trace at every
//!    `x ± h e_j` and `x ± 2h e_j` equals the one at `x` (else the point is counted as
//!    skipped); where they disagree, Richardson extrapolation gets a second say
//!    (`fd_second_opinion`);
//! 3. forward mode (`jvp`, unit tangents) equal to reverse mode within `CROSS_ULPS`;
//! 4. for scalar programs, the Hessians of the companions `jvp(vjp(f))` and `vjp(vjp(f))`:
//!    each symmetric and both equal within `HESS_ULPS`, and the first against central
//!    differences of the reverse-mode gradient (`FD_RTOL`, same second opinion);
//! 5. simplification changes no bit: `jvp` and `vjp` before and after
//!    `simplify::simplify` give bitwise the same outputs (primal and derivatives, at
//!    random tangents and cotangents), as do the primal, and `jvp`/`vjp` of the simplified
//!    `vjp(f)` before and after their own simplification (the companions); the primal part
//!    of every transform equals the interpreted primal bitwise; and the second-order
//!    compositions built with no simplification at all agree with the companions within
//!    `UNSIMPLIFIED_RTOL` (they accumulate merged values' adjoints in another order).
//!
//! Programs: scalar `f64` and `[f64; N]` parameters (`N` in 2..=5), `let` and shadowing
//! (of parameters, `let`s and `let mut`s, also inside loops and branches), `let mut`
//! scalars and arrays (`[c; N]`, a copy of another array, an array literal, an
//! array-valued `if`), `=`, `+=`, `-=`, `*=`, `/=` on scalars and elements, whole-array
//! `=`, `for` loops over literal ranges (`0..N`, `1..N`, `0..=N - 1`, `.rev()`, nested two
//! deep) with index expressions (`i`, `i + 1`, `i - 1`, `(i + j) % N`, `N - 1 - i`),
//! recurrences carrying state across iterations (`s = s * f + g`, `s.mul_add(f, g)`),
//! `if`/`else` statements and expressions on comparisons of values or of loop indices
//! (with `&&`, `||`), block expressions whose statements assign outer variables
//! (`a * { s += 1.0; s }`), early `return` from a top-level `if` (with or without
//! `else`), `i as f64`, `x.iter().sum::<f64>()`, and the primitives `sin cos tanh atan
//! exp` (of bounded arguments), `ln sqrt` (of `1 + e * e`), `powi` (literal exponents
//! 0..=4, and -1..=-3 on bases `1 + e * e`), `hypot`, `min`, `max`, `mul_add`, `/` (by
//! literals or by `1 + e * e`). Growth is kept bounded (`tanh`/`sin`/`atan` wrap what could
//! grow) and points whose intermediates exceed `MAX_MAGNITUDE` are resampled. Values that
//! nothing reads are folded into an outer accumulator or the result (`Gen::sinks`), so
//! most of what a program computes reaches its output.
//!
//! Environment: `FLUXION_RANDOM_CASES` (programs, default 120), `FLUXION_RANDOM_POINTS`
//! (points per program, default 2), `FLUXION_RANDOM_SEED` (first seed, default 0),
//! `FLUXION_RANDOM_VERBOSE=1` prints every program. The test prints how many programs it
//! checked, how many points, which constructs they used, and the largest cross-mode
//! differences seen. A failure prints the seed, the source, and a program minimized
//! automatically (`shrink`: statements dropped, loops shortened, branches inlined,
//! expressions replaced by their parts) that fails the same check.
//!
//! A second, smaller generator (`tensor_program`, test `random_tensor_programs`, half of
//! `FLUXION_RANDOM_CASES`) writes programs of nalgebra operations on matrix arguments of
//! random shapes (`lower/tensor.rs`), checked against their own reference evaluator
//! (`t_ref`, `s_ref`), finite differences, across modes and to second order.
//!
//! Engine bugs found by this generator are kept at the end of the file as regression
//! tests with their minimal programs (`#[ignore]`d while the bug is open).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use common::*;
use fluxion_engine::expand::lower_source;
use fluxion_engine::simplify::simplify;

/// Forward mode against reverse mode, in ulps of `max(|a|, |b|, 1, largest entry)`. Both
/// sum the same products in different orders (forward mode along the program, reverse mode
/// backwards through the loops), a few dozen roundings of terms no larger than the largest
/// entry: 64 ulps. Observed over 14,000 programs: at most 27.
const CROSS_ULPS: f64 = 64.0;

/// Hessians of `jvp(vjp)` and `vjp(vjp)` against each other and their own transposes, in
/// ulps of the largest entry (or 1). The two apply the product rule in different orders
/// and accumulate second-order terms in different orders through the loops, where terms
/// larger than the entries cancel (`hypot(a, b)` with `b` equal or close to `a`: its
/// Hessian `[[b², -ab], [-ab, a²]] / h³` cancels along `(1, 1)`, leaving rounding of the
/// size of `a'² / h`): 4096 ulps (`1e-12` relative, far below the `O(1)` error of a wrong
/// transform). Observed over 14,000 programs: at most 944 ulps (seed 103088, its
/// `a3.hypot(if .. { 0.5 } else { a3 })`), at most 170 in programs without that.
const HESS_ULPS: f64 = 4096.0;

/// Second-order compositions built with no simplification against the companions, relative
/// to the largest output (or 1). The two are different programs: `vjp` of a simplified
/// function sums the adjoints of values CSE merged in one place, the unsimplified one in
/// several, so intermediate terms much larger than the outputs (`hypot(x, x)` near 0 has
/// second derivatives `~1/|x|`) cancel in different orders (observed: 300 ulps of the
/// output). `1e-9` is far above that rounding and far below any `O(1)` transform error.
const UNSIMPLIFIED_RTOL: f64 = 1e-9;

/// Points whose intermediates (any float the reference evaluator computes) exceed this in
/// magnitude are resampled: the rounding error of central differences is about
/// `ε |f| / h = 2e-10 |f|`, so `|f| <= 1e3` keeps it far below `FD_RTOL = 1e-6`.
const MAX_MAGNITUDE: f64 = 1e3;

/// Attempts at finding a point where finite differences apply, per point.
const SAMPLE_TRIES: usize = 20;

// ---------------------------------------------------------------------------------------
// The program AST

/// An integer index expression (`usize` in Rust).
#[derive(Clone, Debug, PartialEq)]
enum Ix {
    Lit(i128),
    Var(String),
    /// `a op b` with `op` one of `+ - %`.
    Bin(char, Box<Ix>, Box<Ix>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum F1 {
    Sin,
    Cos,
    Tanh,
    Atan,
    Exp,
    Sqrt,
    Ln,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum F2 {
    Min,
    Max,
    Hypot,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bop {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Lt,
    Gt,
    Le,
    Ge,
}

/// A scalar `f64` expression.
#[derive(Clone, Debug, PartialEq)]
enum E {
    Lit(f64),
    Var(String),
    Elem(String, Ix),
    /// `(ix as f64)`
    IdxF(Ix),
    Neg(Box<E>),
    Bin(Bop, Box<E>, Box<E>),
    F1(F1, Box<E>),
    Powi(Box<E>, i32),
    F2(F2, Box<E>, Box<E>),
    MulAdd(Box<E>, Box<E>, Box<E>),
    /// `a.iter().sum::<f64>()`
    Sum(String),
    If(Box<Cond>, Box<E>, Box<E>),
    /// `{ stmts; e }`: statements inside an expression (they may assign outer variables).
    Block(Vec<S>, Box<E>),
}

#[derive(Clone, Debug, PartialEq)]
enum Cond {
    Cmp(Cmp, E, E),
    /// A comparison of an index with a literal (`i < 2`).
    Idx(Cmp, Ix, i128),
    /// `a && b`, `a || b`: Rust evaluates `b` only when needed.
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum AOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Debug, PartialEq)]
enum ArrInit {
    /// `[c; n]`
    Repeat(f64, usize),
    /// a copy of an array variable
    Copy(String),
    /// `[e, ..]`
    Elems(Vec<E>),
    /// `if c { a } else { b }` (an array-valued `if`)
    If(Box<Cond>, Box<ArrInit>, Box<ArrInit>),
}

#[derive(Clone, Debug, PartialEq)]
enum Ret {
    Scalar(E),
    Arr(Vec<E>),
    ArrVar(String),
}

#[derive(Clone, Debug, PartialEq)]
enum S {
    /// `let name = e;` (`let name: f64 = e;` with `annot`)
    Let { name: String, annot: bool, e: E },
    /// `let name = init;`
    LetArr { name: String, init: ArrInit },
    /// `let mut name = e;`
    Mut { name: String, annot: bool, e: E },
    /// `let mut name = init;`
    MutArr { name: String, n: usize, init: ArrInit },
    /// `name[idx] op= e;`
    Assign {
        name: String,
        idx: Option<Ix>,
        op: AOp,
        e: E,
    },
    /// `name = init;` on a whole array.
    SetArr { name: String, init: ArrInit },
    /// `for var in lo..hi { body }`, `(lo..hi).rev()`, or with `incl` `lo..=hi - 1`
    For {
        var: String,
        lo: i128,
        hi: i128,
        rev: bool,
        incl: bool,
        body: Vec<S>,
    },
    /// `if cond { then } else { els }`
    If {
        cond: Cond,
        then: Vec<S>,
        els: Option<Vec<S>>,
    },
    /// `if cond { body; return ret; } else { els }` (top level only)
    Return {
        cond: Cond,
        body: Vec<S>,
        ret: Ret,
        els: Option<Vec<S>>,
    },
}

/// A whole program: `fn f(params) -> ret_ty { body ret }`.
#[derive(Clone, Debug, PartialEq)]
struct Prog {
    /// Names and array lengths (`None`: a scalar).
    params: Vec<(String, Option<usize>)>,
    body: Vec<S>,
    ret: Ret,
    /// `None`: returns `f64`; `Some(n)`: returns `[f64; n]`.
    ret_len: Option<usize>,
}

// ---------------------------------------------------------------------------------------
// Printing

fn lit_str(v: f64) -> String {
    let s = format!("{v:?}");
    if v < 0.0 || (v == 0.0 && v.is_sign_negative()) {
        format!("({s})")
    } else {
        s
    }
}

fn ix_str(ix: &Ix, top: bool) -> String {
    match ix {
        Ix::Lit(v) => v.to_string(),
        Ix::Var(n) => n.clone(),
        Ix::Bin(op, a, b) => {
            let s = format!("{} {op} {}", ix_str(a, false), ix_str(b, false));
            if top {
                s
            } else {
                format!("({s})")
            }
        }
    }
}

impl F1 {
    fn name(self) -> &'static str {
        match self {
            F1::Sin => "sin",
            F1::Cos => "cos",
            F1::Tanh => "tanh",
            F1::Atan => "atan",
            F1::Exp => "exp",
            F1::Sqrt => "sqrt",
            F1::Ln => "ln",
        }
    }
}

impl F2 {
    fn name(self) -> &'static str {
        match self {
            F2::Min => "min",
            F2::Max => "max",
            F2::Hypot => "hypot",
        }
    }
}

impl Cmp {
    fn sym(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Gt => ">",
            Cmp::Le => "<=",
            Cmp::Ge => ">=",
        }
    }
}

/// Every expression prints as an operand that is safe in any position (binary operations
/// and negations in parentheses); `top` drops the outer parentheses.
fn e_str(e: &E, top: bool) -> String {
    let paren = |s: String| if top { s } else { format!("({s})") };
    match e {
        E::Lit(v) => {
            if top {
                format!("{v:?}")
            } else {
                lit_str(*v)
            }
        }
        E::Var(n) => n.clone(),
        E::Elem(n, ix) => format!("{n}[{}]", ix_str(ix, true)),
        E::IdxF(ix) => paren(format!("{} as f64", ix_str(ix, false))),
        E::Neg(a) => paren(format!("-{}", e_str(a, false))),
        E::Bin(op, a, b) => {
            let o = match op {
                Bop::Add => "+",
                Bop::Sub => "-",
                Bop::Mul => "*",
                Bop::Div => "/",
            };
            paren(format!("{} {o} {}", e_str(a, false), e_str(b, false)))
        }
        E::F1(f, a) => format!("{}.{}()", e_str(a, false), f.name()),
        E::Powi(a, n) => format!("{}.powi({n})", e_str(a, false)),
        E::F2(f, a, b) => format!("{}.{}({})", e_str(a, false), f.name(), e_str(b, true)),
        E::MulAdd(a, b, c) => format!("{}.mul_add({}, {})", e_str(a, false), e_str(b, true), e_str(c, true)),
        E::Sum(n) => format!("{n}.iter().sum::<f64>()"),
        E::If(c, a, b) => paren(format!("if {} {{ {} }} else {{ {} }}", cond_str(c), inner(a), inner(b))),
        E::Block(..) => paren(format!("{{ {} }}", inner(e))),
    }
}

/// The inside of a block whose value is `e`: the statements of a block expression on one
/// line, then its value.
fn inner(e: &E) -> String {
    match e {
        E::Block(stmts, v) => {
            let mut out = String::new();
            block_str(&mut out, stmts, 0);
            let mut s: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
            s.push(e_str(v, true));
            s.join(" ")
        }
        e => e_str(e, true),
    }
}

fn cond_str(c: &Cond) -> String {
    match c {
        Cond::Cmp(op, a, b) => format!("{} {} {}", e_str(a, false), op.sym(), e_str(b, false)),
        Cond::Idx(op, ix, k) => format!("{} {} {k}", ix_str(ix, false), op.sym()),
        Cond::And(a, b) => format!("({}) && ({})", cond_str(a), cond_str(b)),
        Cond::Or(a, b) => format!("({}) || ({})", cond_str(a), cond_str(b)),
    }
}

/// The type annotation (when the value has literals only) and the text of an array value.
fn arr_str(init: &ArrInit) -> (String, String) {
    match init {
        ArrInit::Repeat(c, n) => (format!(": [f64; {n}]"), format!("[{c:?}; {n}]")),
        ArrInit::Copy(a) => (String::new(), a.clone()),
        ArrInit::Elems(es) => {
            let t = if es.iter().all(is_const) {
                format!(": [f64; {}]", es.len())
            } else {
                String::new()
            };
            let v: Vec<String> = es.iter().map(|e| e_str(e, true)).collect();
            (t, format!("[{}]", v.join(", ")))
        }
        ArrInit::If(c, a, b) => {
            let ((ta, va), (tb, vb)) = (arr_str(a), arr_str(b));
            let t = if tb.is_empty() { tb } else { ta };
            (t, format!("if {} {{ {va} }} else {{ {vb} }}", cond_str(c)))
        }
    }
}

fn ret_str(r: &Ret) -> String {
    match r {
        Ret::Scalar(e) => e_str(e, true),
        Ret::Arr(es) => format!("[{}]", es.iter().map(|e| e_str(e, true)).collect::<Vec<_>>().join(", ")),
        Ret::ArrVar(n) => n.clone(),
    }
}

fn block_str(out: &mut String, b: &[S], ind: usize) {
    for s in b {
        stmt_str(out, s, ind);
    }
}

fn stmt_str(out: &mut String, s: &S, ind: usize) {
    let pad = "    ".repeat(ind);
    match s {
        S::Let { name, annot, e } => {
            let t = if *annot { ": f64" } else { "" };
            let _ = writeln!(out, "{pad}let {name}{t} = {};", e_str(e, true));
        }
        S::LetArr { name, init } => {
            let (t, v) = arr_str(init);
            let _ = writeln!(out, "{pad}let {name}{t} = {v};");
        }
        S::Mut { name, annot, e } => {
            let t = if *annot { ": f64" } else { "" };
            let _ = writeln!(out, "{pad}let mut {name}{t} = {};", e_str(e, true));
        }
        S::MutArr { name, init, .. } => {
            let (t, v) = arr_str(init);
            let _ = writeln!(out, "{pad}let mut {name}{t} = {v};");
        }
        S::SetArr { name, init } => {
            let _ = writeln!(out, "{pad}{name} = {};", arr_str(init).1);
        }
        S::Assign { name, idx, op, e } => {
            let place = match idx {
                Some(ix) => format!("{name}[{}]", ix_str(ix, true)),
                None => name.clone(),
            };
            let o = match op {
                AOp::Set => "=",
                AOp::Add => "+=",
                AOp::Sub => "-=",
                AOp::Mul => "*=",
                AOp::Div => "/=",
            };
            let _ = writeln!(out, "{pad}{place} {o} {};", e_str(e, true));
        }
        S::For {
            var,
            lo,
            hi,
            rev,
            incl,
            body,
        } => {
            let range = if *incl {
                format!("{lo}..={}", hi - 1)
            } else {
                format!("{lo}..{hi}")
            };
            let range = if *rev { format!("({range}).rev()") } else { range };
            let _ = writeln!(out, "{pad}for {var} in {range} {{");
            block_str(out, body, ind + 1);
            let _ = writeln!(out, "{pad}}}");
        }
        S::If { cond, then, els } => {
            let _ = writeln!(out, "{pad}if {} {{", cond_str(cond));
            block_str(out, then, ind + 1);
            if let Some(els) = els {
                let _ = writeln!(out, "{pad}}} else {{");
                block_str(out, els, ind + 1);
            }
            let _ = writeln!(out, "{pad}}}");
        }
        S::Return { cond, body, ret, els } => {
            let _ = writeln!(out, "{pad}if {} {{", cond_str(cond));
            block_str(out, body, ind + 1);
            let _ = writeln!(out, "{pad}    return {};", ret_str(ret));
            if let Some(els) = els {
                let _ = writeln!(out, "{pad}}} else {{");
                block_str(out, els, ind + 1);
            }
            let _ = writeln!(out, "{pad}}}");
        }
    }
}

impl Prog {
    fn source(&self) -> String {
        let ps: Vec<String> = self
            .params
            .iter()
            .map(|(n, len)| match len {
                Some(k) => format!("{n}: [f64; {k}]"),
                None => format!("{n}: f64"),
            })
            .collect();
        let rt = match self.ret_len {
            Some(k) => format!("[f64; {k}]"),
            None => "f64".to_string(),
        };
        let mut out = format!("fn f({}) -> {rt} {{\n", ps.join(", "));
        block_str(&mut out, &self.body, 1);
        let _ = writeln!(out, "    {}", ret_str(&self.ret));
        out.push('}');
        out
    }

    /// The interpreter's argument template: floats are the differentiated inputs.
    fn template(&self) -> Vec<Value> {
        self.params
            .iter()
            .map(|(_, len)| match len {
                Some(k) => Value::Arr(vec![Value::F(0.0); *k]),
                None => Value::F(0.0),
            })
            .collect()
    }

    fn n_in(&self) -> usize {
        self.params.iter().map(|(_, len)| len.unwrap_or(1)).sum()
    }
}

/// No variable in the expression: a literal-only expression (rustc cannot call methods on
/// it without a type annotation).
fn is_const(e: &E) -> bool {
    match e {
        E::Lit(_) => true,
        E::Var(_) | E::Elem(..) | E::Sum(_) | E::IdxF(_) => false,
        E::Neg(a) | E::F1(_, a) | E::Powi(a, _) => is_const(a),
        E::Bin(_, a, b) | E::F2(_, a, b) => is_const(a) && is_const(b),
        E::MulAdd(a, b, c) => is_const(a) && is_const(b) && is_const(c),
        E::If(_, a, b) => is_const(a) && is_const(b),
        E::Block(_, a) => is_const(a),
    }
}

// ---------------------------------------------------------------------------------------
// The reference evaluator

#[derive(Clone, Debug)]
enum RV {
    F(f64),
    A(Vec<f64>),
    I(i128),
}

struct Slot {
    name: String,
    v: RV,
    mutable: bool,
}

/// What the reference evaluation gives besides the result.
#[derive(Clone, Debug)]
struct RefOut {
    y: Vec<f64>,
    /// Largest magnitude of any float computed (infinite after a NaN).
    max_mag: f64,
    /// Every branch decision and `min`/`max` choice, in evaluation order.
    trace: Vec<bool>,
}

struct Ref {
    scopes: Vec<Vec<Slot>>,
    max_mag: f64,
    trace: Vec<bool>,
}

enum Flow {
    Next,
    Ret(Vec<f64>),
}

impl Ref {
    fn slot(&self, n: &str) -> Result<&Slot, String> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|s| s.name == n)
            .ok_or_else(|| format!("`{n}` is not defined"))
    }

    fn slot_mut(&mut self, n: &str) -> Result<&mut Slot, String> {
        self.scopes
            .iter_mut()
            .rev()
            .flat_map(|s| s.iter_mut().rev())
            .find(|s| s.name == n)
            .ok_or_else(|| format!("`{n}` is not defined"))
    }

    fn bind(&mut self, name: &str, v: RV, mutable: bool) {
        if let Some(s) = self.scopes.last_mut() {
            s.push(Slot {
                name: name.to_string(),
                v,
                mutable,
            });
        }
    }

    fn note(&mut self, v: f64) -> f64 {
        let m = if v.is_nan() { f64::INFINITY } else { v.abs() };
        self.max_mag = self.max_mag.max(m);
        v
    }

    fn ix(&self, ix: &Ix) -> Result<i128, String> {
        let v = match ix {
            Ix::Lit(v) => *v,
            Ix::Var(n) => match self.slot(n)?.v {
                RV::I(i) => i,
                _ => return Err(format!("`{n}` is not an index")),
            },
            Ix::Bin(op, a, b) => {
                let (a, b) = (self.ix(a)?, self.ix(b)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    _ => a.checked_rem(b).ok_or("remainder by zero")?,
                }
            }
        };
        if v < 0 {
            return Err("usize underflow".into());
        }
        Ok(v)
    }

    fn arr(&self, n: &str) -> Result<&Vec<f64>, String> {
        match &self.slot(n)?.v {
            RV::A(a) => Ok(a),
            _ => Err(format!("`{n}` is not an array")),
        }
    }

    fn elem(&self, n: &str, ix: &Ix) -> Result<f64, String> {
        let i = self.ix(ix)?;
        let a = self.arr(n)?;
        usize::try_from(i)
            .ok()
            .and_then(|i| a.get(i).copied())
            .ok_or_else(|| format!("index {i} out of bounds of `{n}`"))
    }

    fn e(&mut self, e: &E) -> Result<f64, String> {
        let v = match e {
            E::Lit(v) => *v,
            E::Var(n) => match self.slot(n)?.v {
                RV::F(v) => v,
                _ => return Err(format!("`{n}` is not a scalar")),
            },
            E::Elem(n, ix) => self.elem(n, ix)?,
            E::IdxF(ix) => self.ix(ix)? as f64,
            E::Neg(a) => -self.e(a)?,
            E::Bin(op, a, b) => {
                let (a, b) = (self.e(a)?, self.e(b)?);
                match op {
                    Bop::Add => a + b,
                    Bop::Sub => a - b,
                    Bop::Mul => a * b,
                    Bop::Div => a / b,
                }
            }
            E::F1(f, a) => {
                let a = self.e(a)?;
                match f {
                    F1::Sin => a.sin(),
                    F1::Cos => a.cos(),
                    F1::Tanh => a.tanh(),
                    F1::Atan => a.atan(),
                    F1::Exp => a.exp(),
                    F1::Sqrt => a.sqrt(),
                    F1::Ln => a.ln(),
                }
            }
            E::Powi(a, n) => self.e(a)?.powi(*n),
            E::F2(f, a, b) => {
                let (a, b) = (self.e(a)?, self.e(b)?);
                match f {
                    F2::Min | F2::Max => {
                        self.trace.push(a < b);
                        if *f == F2::Min {
                            a.min(b)
                        } else {
                            a.max(b)
                        }
                    }
                    F2::Hypot => a.hypot(b),
                }
            }
            E::MulAdd(a, b, c) => {
                let (a, b, c) = (self.e(a)?, self.e(b)?, self.e(c)?);
                a.mul_add(b, c)
            }
            // `impl Sum for f64` folds from -0.0.
            E::Sum(n) => self.arr(n)?.iter().fold(-0.0, |s, v| s + v),
            E::If(c, a, b) => {
                if self.cond(c)? {
                    self.e(a)?
                } else {
                    self.e(b)?
                }
            }
            E::Block(stmts, a) => {
                self.scopes.push(Vec::new());
                let r = self.stmts(stmts).and_then(|flow| match flow {
                    Flow::Next => self.e(a),
                    Flow::Ret(_) => Err("`return` inside an expression".into()),
                });
                self.scopes.pop();
                r?
            }
        };
        Ok(self.note(v))
    }

    fn cond(&mut self, c: &Cond) -> Result<bool, String> {
        match c {
            Cond::Cmp(op, a, b) => {
                let (a, b) = (self.e(a)?, self.e(b)?);
                let r = match op {
                    Cmp::Lt => a < b,
                    Cmp::Gt => a > b,
                    Cmp::Le => a <= b,
                    Cmp::Ge => a >= b,
                };
                self.trace.push(r);
                Ok(r)
            }
            Cond::Idx(op, ix, k) => {
                let (a, b) = (self.ix(ix)?, *k);
                Ok(match op {
                    Cmp::Lt => a < b,
                    Cmp::Gt => a > b,
                    Cmp::Le => a <= b,
                    Cmp::Ge => a >= b,
                })
            }
            // Rust's lazy `&&` and `||` (only observable when the right side assigns).
            Cond::And(a, b) => Ok(self.cond(a)? && self.cond(b)?),
            Cond::Or(a, b) => Ok(self.cond(a)? || self.cond(b)?),
        }
    }

    fn ret(&mut self, r: &Ret) -> Result<Vec<f64>, String> {
        match r {
            Ret::Scalar(e) => Ok(vec![self.e(e)?]),
            Ret::Arr(es) => es.iter().map(|e| self.e(e)).collect(),
            Ret::ArrVar(n) => Ok(self.arr(n)?.clone()),
        }
    }

    fn block(&mut self, b: &[S]) -> Result<Flow, String> {
        self.scopes.push(Vec::new());
        let r = self.stmts(b);
        self.scopes.pop();
        r
    }

    fn stmts(&mut self, b: &[S]) -> Result<Flow, String> {
        for s in b {
            if let Flow::Ret(y) = self.stmt(s)? {
                return Ok(Flow::Ret(y));
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, s: &S) -> Result<Flow, String> {
        match s {
            S::Let { name, e, .. } => {
                let v = self.e(e)?;
                self.bind(name, RV::F(v), false);
            }
            S::LetArr { name, init } => {
                let v = self.arr_init(init)?;
                self.bind(name, RV::A(v), false);
            }
            S::Mut { name, e, .. } => {
                let v = self.e(e)?;
                self.bind(name, RV::F(v), true);
            }
            S::MutArr { name, n, init } => {
                let v = self.arr_init(init)?;
                if v.len() != *n {
                    return Err(format!("`{name}`: {} elements for length {n}", v.len()));
                }
                self.bind(name, RV::A(v), true);
            }
            S::SetArr { name, init } => {
                let v = self.arr_init(init)?;
                let slot = self.slot_mut(name)?;
                match &mut slot.v {
                    RV::A(a) if slot.mutable && a.len() == v.len() => *a = v,
                    _ => return Err(format!("bad assignment to `{name}`")),
                }
            }
            S::Assign { name, idx, op, e } => {
                let v = self.e(e)?;
                let i = idx.as_ref().map(|ix| self.ix(ix)).transpose()?;
                let slot = self.slot_mut(name)?;
                if !slot.mutable {
                    return Err(format!("`{name}` is not mutable"));
                }
                let cur = match (&mut slot.v, i) {
                    (RV::F(x), None) => x,
                    (RV::A(a), Some(i)) => {
                        let len = a.len();
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| a.get_mut(i))
                            .ok_or_else(|| format!("index {i} out of bounds of `{name}` ({len})"))?
                    }
                    _ => return Err(format!("bad assignment to `{name}`")),
                };
                *cur = match op {
                    AOp::Set => v,
                    AOp::Add => *cur + v,
                    AOp::Sub => *cur - v,
                    AOp::Mul => *cur * v,
                    AOp::Div => *cur / v,
                };
                let c = *cur;
                self.note(c);
            }
            S::For {
                var, lo, hi, rev, body, ..
            } => {
                let idx: Vec<i128> = if *rev {
                    (*lo..*hi).rev().collect()
                } else {
                    (*lo..*hi).collect()
                };
                for i in idx {
                    self.scopes.push(vec![Slot {
                        name: var.clone(),
                        v: RV::I(i),
                        mutable: false,
                    }]);
                    let r = self.stmts(body);
                    self.scopes.pop();
                    if let Flow::Ret(_) = r? {
                        return Err("`return` inside a loop".into());
                    }
                }
            }
            S::If { cond, then, els } => {
                let flow = if self.cond(cond)? {
                    self.block(then)?
                } else if let Some(els) = els {
                    self.block(els)?
                } else {
                    Flow::Next
                };
                if let Flow::Ret(_) = flow {
                    return Err("`return` inside a nested `if`".into());
                }
            }
            S::Return { cond, body, ret, els } => {
                if self.cond(cond)? {
                    self.scopes.push(Vec::new());
                    let r = match self.stmts(body)? {
                        Flow::Next => self.ret(ret),
                        Flow::Ret(_) => Err("nested `return`".into()),
                    };
                    self.scopes.pop();
                    return Ok(Flow::Ret(r?));
                }
                if let Some(els) = els {
                    if let Flow::Ret(_) = self.block(els)? {
                        return Err("nested `return`".into());
                    }
                }
            }
        }
        Ok(Flow::Next)
    }

    fn arr_init(&mut self, init: &ArrInit) -> Result<Vec<f64>, String> {
        match init {
            ArrInit::Repeat(c, k) => Ok(vec![*c; *k]),
            ArrInit::Copy(a) => Ok(self.arr(a)?.clone()),
            ArrInit::Elems(es) => es.iter().map(|e| self.e(e)).collect(),
            ArrInit::If(c, a, b) => {
                if self.cond(c)? {
                    self.arr_init(a)
                } else {
                    self.arr_init(b)
                }
            }
        }
    }
}

/// Evaluates a program at the flattened inputs `x`.
fn run_ref(p: &Prog, x: &[f64]) -> Result<RefOut, String> {
    let mut r = Ref {
        scopes: vec![Vec::new()],
        max_mag: 0.0,
        trace: Vec::new(),
    };
    let mut it = x.iter().copied();
    for (n, len) in &p.params {
        let v = match len {
            Some(k) => RV::A(it.by_ref().take(*k).collect()),
            None => RV::F(it.next().ok_or("too few inputs")?),
        };
        r.bind(n, v, false);
    }
    let y = match r.stmts(&p.body)? {
        Flow::Ret(y) => y,
        Flow::Next => r.ret(&p.ret)?,
    };
    if y.len() != p.ret_len.unwrap_or(1) {
        return Err(format!("{} outputs for the return type", y.len()));
    }
    Ok(RefOut {
        y,
        max_mag: r.max_mag,
        trace: r.trace,
    })
}

// ---------------------------------------------------------------------------------------
// The generator

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Scalar,
    Arr(usize),
    /// A loop index over `lo..hi`.
    Idx(i128, i128),
}

#[derive(Clone, Debug)]
struct GVar {
    name: String,
    kind: Kind,
    mutable: bool,
    /// A rough bound of the magnitude (steers wrapping; not a guarantee).
    bound: f64,
    /// Number of enclosing loops where it was declared.
    level: usize,
}

/// Literals the generator picks from (`1.0` exercises the builder's exact folding).
const LITS: [f64; 12] = [0.5, 0.25, 0.75, 1.5, 2.0, 1.0, 0.1, 3.0, 0.3, -0.5, -1.0, -0.25];

/// Largest bound a value may reach before the generator wraps it in a bounded function.
const WRAP_BOUND: f64 = 20.0;

struct Gen {
    rng: Rng,
    scopes: Vec<Vec<GVar>>,
    /// Enclosing loops: (index variable, lo, hi).
    loops: Vec<(String, i128, i128)>,
    /// Enclosing `if` statements.
    ifs: usize,
    /// Enclosing block expressions.
    expr_blocks: usize,
    counter: usize,
    ret_len: Option<usize>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed.wrapping_add(0x5EED)),
            scopes: vec![Vec::new()],
            loops: Vec::new(),
            ifs: 0,
            expr_blocks: 0,
            counter: 0,
            ret_len: None,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.uniform(0.0, 1.0) < p
    }

    /// An index below `n` biased to small values (`visible()` lists recent bindings first,
    /// so programs read what they just computed).
    fn recent(&mut self, n: usize) -> usize {
        let (a, b) = (self.below(n), self.below(n));
        a.min(b)
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    fn lit(&mut self) -> f64 {
        self.pick(&LITS)
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    /// Visible variables, innermost first (shadowed ones left out).
    fn visible(&self) -> Vec<GVar> {
        let mut out: Vec<GVar> = Vec::new();
        for s in self.scopes.iter().rev() {
            for v in s.iter().rev() {
                if !out.iter().any(|w| w.name == v.name) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    fn lookup(&self, n: &str) -> Option<GVar> {
        self.visible().into_iter().find(|v| v.name == n)
    }

    fn declare(&mut self, name: &str, kind: Kind, mutable: bool, bound: f64) {
        let level = self.loops.len();
        if let Some(s) = self.scopes.last_mut() {
            s.push(GVar {
                name: name.to_string(),
                kind,
                mutable,
                bound,
                level,
            });
        }
    }

    fn set_bound(&mut self, name: &str, b: f64) {
        for s in self.scopes.iter_mut().rev() {
            if let Some(v) = s.iter_mut().rev().find(|v| v.name == name) {
                v.bound = v.bound.max(b);
                return;
            }
        }
    }

    /// Total trip count of the loops entered since `level`.
    fn trips(&self, level: usize) -> f64 {
        self.loops[level.min(self.loops.len())..]
            .iter()
            .map(|(_, lo, hi)| (hi - lo) as f64)
            .product()
    }

    fn bound(&self, e: &E) -> f64 {
        let var = |n: &str| self.lookup(n).map_or(1.5, |v| v.bound);
        match e {
            E::Lit(v) => v.abs(),
            E::Var(n) | E::Elem(n, _) => var(n),
            E::IdxF(_) => 5.0,
            E::Neg(a) => self.bound(a),
            E::Bin(op, a, b) => {
                let (a, b) = (self.bound(a), self.bound(b));
                match op {
                    Bop::Add | Bop::Sub => a + b,
                    Bop::Mul => a * b,
                    // Denominators are literals (>= 0.5 here) or `1 + e * e`.
                    Bop::Div => 2.0 * a,
                }
            }
            E::F1(f, a) => {
                let a = self.bound(a);
                match f {
                    F1::Sin | F1::Cos | F1::Tanh => 1.0,
                    F1::Atan => 1.6,
                    F1::Exp => a.min(700.0).exp(),
                    F1::Sqrt => a.sqrt(),
                    F1::Ln => a.max(1.0).ln() + 1.0,
                }
            }
            E::Powi(a, n) => {
                if *n >= 0 {
                    self.bound(a).powi(*n)
                } else {
                    1.0
                }
            }
            E::F2(F2::Hypot, a, b) => self.bound(a) + self.bound(b),
            E::F2(_, a, b) => self.bound(a).max(self.bound(b)),
            E::MulAdd(a, b, c) => self.bound(a) * self.bound(b) + self.bound(c),
            E::Sum(n) => match self.lookup(n) {
                Some(GVar {
                    kind: Kind::Arr(k),
                    bound,
                    ..
                }) => k as f64 * bound,
                _ => 10.0,
            },
            E::If(_, a, b) => self.bound(a).max(self.bound(b)),
            // The tail is squashed to 3 where it is generated (its variables are out of
            // scope here).
            E::Block(..) => 3.0,
        }
    }

    /// `e` itself if its bound is at most `limit`, else `e` through a bounded function.
    fn squash(&mut self, e: E, limit: f64) -> E {
        if self.bound(&e) <= limit {
            return e;
        }
        if is_const(&e) {
            // `3.0.tanh()` does not compile: a smaller literal instead.
            return E::Lit(0.5);
        }
        let f = self.pick(&[F1::Tanh, F1::Sin, F1::Atan, F1::Tanh]);
        E::F1(f, Box::new(e))
    }

    /// A valid index into an array of length `n` (all intermediate values >= 0 for every
    /// value of the enclosing loops' indices).
    fn index(&mut self, n: usize) -> Ix {
        let n = n as i128;
        let loops = self.loops.clone();
        for _ in 0..8 {
            if loops.is_empty() || self.chance(0.15) {
                break;
            }
            let (i, _, _) = self.pick(&loops);
            let var = Ix::Var(i.clone());
            let c = self.below(3) as i128 + 1;
            let cand = match self.below(7) {
                0 | 1 => var,
                2 => Ix::Bin('+', Box::new(var), Box::new(Ix::Lit(c))),
                3 => Ix::Bin('-', Box::new(var), Box::new(Ix::Lit(c))),
                4 => Ix::Bin(
                    '%',
                    Box::new(Ix::Bin('+', Box::new(var), Box::new(Ix::Lit(c - 1)))),
                    Box::new(Ix::Lit(n)),
                ),
                5 => Ix::Bin('-', Box::new(Ix::Lit(n - 1)), Box::new(var)),
                _ => {
                    let (j, _, _) = self.pick(&loops);
                    Ix::Bin(
                        '%',
                        Box::new(Ix::Bin('+', Box::new(var), Box::new(Ix::Var(j)))),
                        Box::new(Ix::Lit(n)),
                    )
                }
            };
            if index_valid(&cand, &loops, n) {
                return cand;
            }
        }
        Ix::Lit(self.below(n as usize) as i128)
    }

    /// A variable read: a scalar or an array element.
    fn var_leaf(&mut self) -> E {
        let vis = self.visible();
        let scalars: Vec<&GVar> = vis.iter().filter(|v| v.kind == Kind::Scalar).collect();
        let arrays: Vec<&GVar> = vis.iter().filter(|v| matches!(v.kind, Kind::Arr(_))).collect();
        let want_arr =
            !arrays.is_empty() && (scalars.is_empty() || self.chance(if self.loops.is_empty() { 0.4 } else { 0.65 }));
        if want_arr {
            let a = (*arrays[self.recent(arrays.len())]).clone();
            let Kind::Arr(n) = a.kind else { unreachable!() };
            let ix = self.index(n);
            E::Elem(a.name, ix)
        } else if let Some(s) = scalars.get(self.recent(scalars.len())) {
            E::Var(s.name.clone())
        } else {
            E::Lit(self.lit())
        }
    }

    fn leaf(&mut self) -> E {
        match self.below(12) {
            0 | 1 => E::Lit(self.lit()),
            2 if !self.loops.is_empty() => {
                let (i, _, _) = self.pick(&self.loops.clone());
                E::IdxF(Ix::Var(i))
            }
            3 => {
                let arrays: Vec<GVar> = self
                    .visible()
                    .into_iter()
                    .filter(|v| matches!(v.kind, Kind::Arr(_)))
                    .collect();
                if arrays.is_empty() {
                    self.var_leaf()
                } else {
                    E::Sum(self.pick(&arrays).name)
                }
            }
            _ => self.var_leaf(),
        }
    }

    /// An expression that is not literal-only (a method receiver).
    fn recv(&mut self, d: u32) -> E {
        let e = self.expr(d);
        if is_const(&e) {
            let v = self.var_leaf();
            if is_const(&v) {
                // No variable visible at all (cannot happen: parameters are always there).
                return E::Bin(Bop::Add, Box::new(e), Box::new(E::Var("x".into())));
            }
            return E::Bin(Bop::Mul, Box::new(e), Box::new(v));
        }
        e
    }

    /// `b`, or a literal if `b` is `a` (a comparison or `min`/`max` of a value with itself
    /// is a tie everywhere: it tests nothing; `hypot(a, a)` cancels, see `HESS_ULPS`).
    fn distinct(&mut self, a: &E, b: E) -> E {
        if *a == b {
            E::Lit(self.lit())
        } else {
            b
        }
    }

    fn cmp(&mut self, d: u32) -> Cond {
        let op = self.pick(&[Cmp::Lt, Cmp::Gt, Cmp::Le, Cmp::Ge]);
        let c = if !self.loops.is_empty() && self.chance(0.25) {
            let (i, lo, hi) = self.pick(&self.loops.clone());
            // `i >= 0` is a rustc warning: compare with `lo + 1..=hi`.
            let k = lo + 1 + self.below((hi - lo) as usize) as i128;
            Cond::Idx(op, Ix::Var(i), k)
        } else {
            let a = self.recv(d);
            let b = if self.chance(0.4) {
                E::Lit(self.lit())
            } else {
                self.expr(d)
            };
            let b = self.distinct(&a, b);
            Cond::Cmp(op, a, b)
        };
        if self.chance(0.15) {
            let c2 = self.cmp(d.saturating_sub(1));
            if self.chance(0.5) {
                Cond::And(Box::new(c), Box::new(c2))
            } else {
                Cond::Or(Box::new(c), Box::new(c2))
            }
        } else {
            c
        }
    }

    fn expr(&mut self, d: u32) -> E {
        if d == 0 || self.chance(0.25) {
            return self.leaf();
        }
        let b = |e: E| Box::new(e);
        match self.below(21) {
            0..=2 => {
                let op = self.pick(&[Bop::Add, Bop::Sub]);
                E::Bin(op, b(self.expr(d - 1)), b(self.expr(d - 1)))
            }
            3..=5 => {
                let x = self.expr(d - 1);
                let y = self.expr(d - 1);
                let y = if self.bound(&x) * self.bound(&y) > WRAP_BOUND {
                    self.squash(y, 1.0)
                } else {
                    y
                };
                E::Bin(Bop::Mul, b(x), b(y))
            }
            6 => {
                let num = self.expr(d - 1);
                if self.chance(0.5) {
                    let den = self.pick(&[2.0, 0.5, 3.0, 1.5, -2.0]);
                    E::Bin(Bop::Div, b(num), b(E::Lit(den)))
                } else {
                    let a = self.expr(d - 1);
                    let a = self.squash(a, 10.0);
                    let sq = E::Bin(Bop::Mul, b(a.clone()), b(a));
                    E::Bin(Bop::Div, b(num), b(E::Bin(Bop::Add, b(E::Lit(1.0)), b(sq))))
                }
            }
            7 => E::Neg(b(self.expr(d - 1))),
            8..=9 => {
                let f = self.pick(&[F1::Sin, F1::Cos, F1::Tanh, F1::Atan]);
                let a = self.recv(d - 1);
                let a = self.squash(a, 8.0);
                E::F1(f, b(a))
            }
            10 => {
                let a = self.recv(d - 1);
                let a = self.squash(a, 2.5);
                E::F1(F1::Exp, b(a))
            }
            11 => {
                let f = self.pick(&[F1::Sqrt, F1::Ln]);
                let a = self.recv(d - 1);
                let a = self.squash(a, 10.0);
                let arg = E::Bin(Bop::Add, b(E::Lit(1.0)), b(E::Bin(Bop::Mul, b(a.clone()), b(a))));
                E::F1(f, b(arg))
            }
            12 => {
                let a = self.recv(d - 1);
                let a = self.squash(a, 3.0);
                if self.chance(0.3) {
                    let n = self.pick(&[-1, -2, -3]);
                    let base = E::Bin(Bop::Add, b(E::Lit(1.0)), b(E::Bin(Bop::Mul, b(a.clone()), b(a))));
                    E::Powi(b(base), n)
                } else {
                    let n = self.pick(&[2, 2, 3, 3, 4, 1, 0]);
                    E::Powi(b(a), n)
                }
            }
            13 => {
                let a = self.recv(d - 1);
                let c = if self.chance(0.3) {
                    E::Lit(self.lit())
                } else {
                    self.expr(d - 1)
                };
                let c = self.distinct(&a, c);
                E::F2(F2::Hypot, b(a), b(c))
            }
            14..=15 => {
                let f = self.pick(&[F2::Min, F2::Max]);
                let a = self.recv(d - 1);
                let c = if self.chance(0.3) {
                    E::Lit(self.lit())
                } else {
                    self.expr(d - 1)
                };
                let c = self.distinct(&a, c);
                E::F2(f, b(a), b(c))
            }
            16 => {
                let a = self.recv(d - 1);
                let x = self.expr(d - 1);
                let y = self.expr(d - 1);
                let x = if self.bound(&a) * self.bound(&x) > WRAP_BOUND {
                    self.squash(x, 1.0)
                } else {
                    x
                };
                E::MulAdd(b(a), b(x), b(y))
            }
            17 => {
                let c = self.cmp(d - 1);
                E::If(Box::new(c), b(self.expr(d - 1)), b(self.expr(d - 1)))
            }
            // A block with statements (which may assign outer mutable variables) inside an
            // expression: lowering must keep Rust's evaluation order.
            18 if self.expr_blocks == 0 => {
                self.expr_blocks += 1;
                self.scopes.push(Vec::new());
                let n = 1 + self.below(2);
                let stmts = self.stmts(n, false);
                let tail = self.expr(d - 1);
                let tail = self.squash(tail, 3.0);
                self.scopes.pop();
                self.expr_blocks -= 1;
                E::Block(stmts, b(tail))
            }
            _ => self.var_leaf(),
        }
    }

    /// A scalar expression for a statement, kept under `WRAP_BOUND`.
    fn value(&mut self) -> E {
        let d = 1 + self.below(3) as u32;
        let e = self.expr(d);
        self.squash(e, WRAP_BOUND)
    }

    fn block(&mut self, n: usize, top: bool) -> Vec<S> {
        self.scopes.push(Vec::new());
        let out = self.stmts(n, top);
        self.scopes.pop();
        out
    }

    /// `n` statements in the current scope; unless at the top level of the function,
    /// followed by sinks for values nothing reads.
    fn stmts(&mut self, n: usize, top: bool) -> Vec<S> {
        let mut out = Vec::new();
        for k in 0..n {
            let s = self.stmt(top && k + 1 < n);
            out.push(s);
        }
        if !top {
            let sinks = self.sinks(&out);
            out.extend(sinks);
        }
        out
    }

    /// Statements that fold the loose ends of `out` (the statements of the current scope:
    /// see `loose_ends`) into a variable of an enclosing scope, so that they reach the
    /// result: `t += v.tanh()`, `m[i] += v.iter().sum::<f64>().tanh()`. Without them most
    /// of what loop bodies and branches compute is dead.
    fn sinks(&mut self, out: &[S]) -> Vec<S> {
        let here: Vec<String> = self
            .scopes
            .last()
            .map_or(Vec::new(), |s| s.iter().map(|v| v.name.clone()).collect());
        let targets: Vec<GVar> = self
            .visible()
            .into_iter()
            .filter(|v| v.mutable && !here.contains(&v.name) && !matches!(v.kind, Kind::Idx(..)))
            .collect();
        let mut sinks = Vec::new();
        for v in loose_ends(out) {
            if targets.is_empty() || sinks.len() == 3 {
                break;
            }
            let Some(var) = self.lookup(&v) else { continue };
            let val = match var.kind {
                Kind::Scalar => E::F1(F1::Tanh, Box::new(E::Var(v))),
                Kind::Arr(_) => E::F1(F1::Tanh, Box::new(E::Sum(v))),
                Kind::Idx(..) => continue,
            };
            let t = self.pick(&targets);
            let idx = match t.kind {
                Kind::Arr(n) => Some(self.index(n)),
                _ => None,
            };
            let op = self.pick(&[AOp::Add, AOp::Sub]);
            self.set_bound(&t.name, t.bound + self.trips(t.level));
            sinks.push(S::Assign {
                name: t.name,
                idx,
                op,
                e: val,
            });
        }
        sinks
    }

    /// A name for a new binding: fresh, or (shadowing) a visible one.
    fn binding_name(&mut self, prefix: &str, shadow: f64) -> String {
        let vis: Vec<GVar> = self
            .visible()
            .into_iter()
            .filter(|v| !matches!(v.kind, Kind::Idx(..)))
            .collect();
        if !vis.is_empty() && self.chance(shadow) {
            self.pick(&vis).name
        } else {
            self.fresh(prefix)
        }
    }

    fn stmt(&mut self, allow_return: bool) -> S {
        let vis = self.visible();
        let mut_scalars: Vec<GVar> = vis
            .iter()
            .filter(|v| v.mutable && v.kind == Kind::Scalar)
            .cloned()
            .collect();
        let mut_arrays: Vec<GVar> = vis
            .iter()
            .filter(|v| v.mutable && matches!(v.kind, Kind::Arr(_)))
            .cloned()
            .collect();
        let lens: Vec<usize> = vis
            .iter()
            .filter_map(|v| match v.kind {
                Kind::Arr(n) => Some(n),
                _ => None,
            })
            .collect();
        let nest = self.loops.len() + self.ifs;
        loop {
            match self.below(100) {
                0..=13 => {
                    let e = self.value();
                    let bound = self.bound(&e);
                    let name = self.binding_name("a", 0.25);
                    let annot = is_const(&e) || self.chance(0.15);
                    self.declare(&name, Kind::Scalar, false, bound);
                    return S::Let { name, annot, e };
                }
                14..=16 => {
                    let n = if !lens.is_empty() && self.chance(0.5) {
                        self.pick(&lens)
                    } else {
                        2 + self.below(4)
                    };
                    let (init, bound) = self.arr_init(n, &vis, false);
                    let name = self.binding_name("r", 0.1);
                    self.declare(&name, Kind::Arr(n), false, bound);
                    return S::LetArr { name, init };
                }
                17..=25 => {
                    let (e, annot) = if self.chance(0.4) {
                        // Not 0: `*=` and `/=` would keep it 0.
                        (E::Lit(self.pick(&[0.25, 1.0, 0.5, -0.5])), true)
                    } else {
                        let e = self.value();
                        let c = is_const(&e);
                        (e, c || self.chance(0.15))
                    };
                    let bound = self.bound(&e).max(1.0);
                    let name = self.binding_name("s", 0.1);
                    self.declare(&name, Kind::Scalar, true, bound);
                    return S::Mut { name, annot, e };
                }
                26..=31 => {
                    let n = if !lens.is_empty() && self.chance(0.7) {
                        self.pick(&lens)
                    } else {
                        2 + self.below(4)
                    };
                    let (init, bound) = self.arr_init(n, &vis, true);
                    let name = self.binding_name("m", 0.05);
                    self.declare(&name, Kind::Arr(n), true, bound);
                    return S::MutArr { name, n, init };
                }
                32..=50 if !mut_scalars.is_empty() => {
                    let v = self.pick(&mut_scalars);
                    let (op, e, b) = self.update(&E::Var(v.name.clone()), &v);
                    self.set_bound(&v.name, b);
                    return S::Assign {
                        name: v.name,
                        idx: None,
                        op,
                        e,
                    };
                }
                51..=64 if !mut_arrays.is_empty() => {
                    let v = self.pick(&mut_arrays);
                    let Kind::Arr(n) = v.kind else { continue };
                    let ix = self.index(n);
                    let (op, e, b) = self.update(&E::Elem(v.name.clone(), ix.clone()), &v);
                    self.set_bound(&v.name, b);
                    return S::Assign {
                        name: v.name,
                        idx: Some(ix),
                        op,
                        e,
                    };
                }
                65..=66 if !mut_arrays.is_empty() => {
                    let v = self.pick(&mut_arrays);
                    let Kind::Arr(n) = v.kind else { continue };
                    let (init, bound) = self.arr_init(n, &vis, false);
                    self.set_bound(&v.name, bound);
                    return S::SetArr { name: v.name, init };
                }
                67..=80 if self.loops.len() < 2 && nest < 3 => {
                    let hi = if !lens.is_empty() && self.chance(0.8) {
                        self.pick(&lens) as i128
                    } else {
                        2 + self.below(4) as i128
                    };
                    let lo = if self.chance(0.2) { 1 } else { 0 };
                    let rev = self.chance(0.3);
                    let incl = self.chance(0.1);
                    let var = self.fresh("i");
                    self.loops.push((var.clone(), lo, hi));
                    self.scopes.push(Vec::new());
                    self.declare(&var, Kind::Idx(lo, hi), false, hi as f64);
                    let n = 1 + self.below(3);
                    let body = self.stmts(n, false);
                    self.scopes.pop();
                    self.loops.pop();
                    return S::For {
                        var,
                        lo,
                        hi,
                        rev,
                        incl,
                        body,
                    };
                }
                81..=91 if nest < 3 => {
                    let cond = self.cmp(2);
                    self.ifs += 1;
                    let n = 1 + self.below(2);
                    let then = self.block(n, false);
                    let els = if self.chance(0.6) {
                        let n = 1 + self.below(2);
                        Some(self.block(n, false))
                    } else {
                        None
                    };
                    self.ifs -= 1;
                    return S::If { cond, then, els };
                }
                92..=99 if allow_return && self.loops.is_empty() && self.ifs == 0 => {
                    let cond = self.cmp(2);
                    self.ifs += 1;
                    self.scopes.push(Vec::new());
                    let n = self.below(3);
                    let body = self.stmts(n, false);
                    let ret = self.ret();
                    self.scopes.pop();
                    let els = if self.chance(0.25) {
                        let n = 1 + self.below(2);
                        Some(self.block(n, false))
                    } else {
                        None
                    };
                    self.ifs -= 1;
                    return S::Return { cond, body, ret, els };
                }
                _ => {}
            }
        }
    }

    /// The value of a new array of length `n` (a copy of an array of that length, a
    /// literal, `[c; n]`, or an `if` choosing between two of these) and its bound.
    fn arr_init(&mut self, n: usize, vis: &[GVar], repeat: bool) -> (ArrInit, f64) {
        let same: Vec<GVar> = vis.iter().filter(|v| v.kind == Kind::Arr(n)).cloned().collect();
        if self.chance(0.12) {
            let c = self.cmp(1);
            let (a, ba) = self.arr_init(n, vis, true);
            let (b, bb) = self.arr_init(n, vis, true);
            if let (ArrInit::If(..), _) | (_, ArrInit::If(..)) = (&a, &b) {
                return (a, ba);
            }
            return (ArrInit::If(Box::new(c), Box::new(a), Box::new(b)), ba.max(bb));
        }
        match self.below(if repeat { 3 } else { 5 }) {
            0 if !same.is_empty() => {
                let a = self.pick(&same);
                (ArrInit::Copy(a.name), a.bound)
            }
            2 => {
                let c = self.pick(&[0.0, 1.0, 0.5, 0.25]);
                (ArrInit::Repeat(c, n), 1.0)
            }
            _ => {
                let es: Vec<E> = (0..n).map(|_| self.value()).collect();
                let b = es.iter().map(|e| self.bound(e)).fold(1.0, f64::max);
                (ArrInit::Elems(es), b)
            }
        }
    }

    /// An update of the place `cur` (a mutable scalar or an element of `v`): the operator,
    /// the right-hand side, and the place's new bound.
    fn update(&mut self, cur: &E, v: &GVar) -> (AOp, E, f64) {
        let t = self.trips(v.level);
        let b0 = v.bound;
        let bx = |e: &E| Box::new(e.clone());
        match self.below(11) {
            // A recurrence: `s = s * f + g`, possibly wrapped.
            0..=2 => {
                let d = 1 + self.below(2) as u32;
                let f = self.expr(d);
                let f = if t > 1.0 { self.squash(f, 1.2) } else { f };
                let d = 1 + self.below(2) as u32;
                let g = self.expr(d);
                let g = self.squash(g, 3.0);
                let rhs = if self.chance(0.5) {
                    E::Bin(Bop::Add, Box::new(E::Bin(Bop::Mul, bx(cur), Box::new(f))), Box::new(g))
                } else {
                    E::MulAdd(bx(cur), Box::new(f), Box::new(g))
                };
                let mut b = b0;
                let (bf, bg) = (self.bound_of(&rhs, 1), self.bound_of(&rhs, 2));
                for _ in 0..(t as usize).min(30) {
                    b = b * bf + bg;
                }
                if b > WRAP_BOUND {
                    let f = self.pick(&[F1::Tanh, F1::Sin, F1::Atan]);
                    (AOp::Set, E::F1(f, Box::new(rhs)), b0.max(1.6))
                } else {
                    (AOp::Set, rhs, b.max(b0))
                }
            }
            // `s = e` (which may read `s`).
            3..=4 => {
                let mut e = self.value();
                // Read in a loop, the place can grow geometrically: keep it at its bound.
                if t > 1.0 && mentions(&e, cur) && self.bound(&e) > b0.max(1.0) {
                    let f = self.pick(&[F1::Tanh, F1::Sin, F1::Atan]);
                    e = E::F1(f, Box::new(e));
                }
                let b = self.bound(&e);
                (AOp::Set, e, b.max(b0))
            }
            // `s += e`, `s -= e`
            5..=7 => {
                let op = self.pick(&[AOp::Add, AOp::Sub]);
                let mut e = self.value();
                if b0 + t * self.bound(&e) > 4.0 * WRAP_BOUND {
                    e = self.squash(e, 1.0);
                }
                let b = b0 + t * self.bound(&e);
                (op, e, b)
            }
            // `s /= e`, by a literal or by `1 + a * a` (at least 1 in magnitude)
            9 => {
                let e = if self.chance(0.5) {
                    E::Lit(self.pick(&[2.0, 1.5, -2.0, 1.25]))
                } else {
                    let a = self.expr(1);
                    let a = self.squash(a, 3.0);
                    E::Bin(
                        Bop::Add,
                        Box::new(E::Lit(1.0)),
                        Box::new(E::Bin(Bop::Mul, Box::new(a.clone()), Box::new(a))),
                    )
                };
                (AOp::Div, e, b0)
            }
            // `s *= e`
            _ => {
                let e = self.value();
                let e = if t > 1.0 || b0 * self.bound(&e) > WRAP_BOUND {
                    let f = self.pick(&[F1::Tanh, F1::Sin, F1::Cos]);
                    E::F1(f, Box::new(self.recv_of(e)))
                } else {
                    e
                };
                let b = b0 * self.bound(&e).max(1.0);
                (AOp::Mul, e, b)
            }
        }
    }

    /// The bound of the factor (`k = 1`) or the addend (`k = 2`) of a recurrence.
    fn bound_of(&self, rhs: &E, k: usize) -> f64 {
        match rhs {
            E::Bin(_, m, g) => match (&**m, k) {
                (E::Bin(_, _, f), 1) => self.bound(f),
                _ => self.bound(g),
            },
            E::MulAdd(_, f, g) => self.bound(if k == 1 { f } else { g }),
            _ => 1.0,
        }
    }

    fn recv_of(&mut self, e: E) -> E {
        if is_const(&e) {
            let v = self.var_leaf();
            E::Bin(Bop::Mul, Box::new(e), Box::new(v))
        } else {
            e
        }
    }

    /// A value of the return type.
    fn ret(&mut self) -> Ret {
        match self.ret_len {
            None => Ret::Scalar(self.value()),
            Some(n) => {
                let arrays: Vec<GVar> = self.visible().into_iter().filter(|v| v.kind == Kind::Arr(n)).collect();
                if !arrays.is_empty() && self.chance(0.6) {
                    Ret::ArrVar(self.pick(&arrays).name)
                } else {
                    Ret::Arr((0..n).map(|_| self.value()).collect())
                }
            }
        }
    }

    fn program(&mut self) -> Prog {
        let np = 1 + self.below(3);
        let names = ["x", "y", "z"];
        let mut params = Vec::new();
        for name in names.iter().take(np) {
            let len = if self.chance(0.55) {
                Some(2 + self.below(4))
            } else {
                None
            };
            params.push((name.to_string(), len));
            self.declare(name, len.map_or(Kind::Scalar, Kind::Arr), false, 1.5);
        }
        let lens: Vec<usize> = params.iter().filter_map(|p| p.1).collect();
        if !lens.is_empty() && self.chance(0.2) {
            self.ret_len = Some(self.pick(&lens));
        }
        // An accumulator that the sinks of inner blocks can reach.
        let mut body = Vec::new();
        if self.chance(0.9) {
            self.declare("acc", Kind::Scalar, true, 1.0);
            let e = E::Lit(self.pick(&[0.5, 1.0, 0.25]));
            body.push(S::Mut {
                name: "acc".into(),
                annot: true,
                e,
            });
        }
        let n = 2 + self.below(5);
        body.extend(self.stmts(n, true));
        let mut ret = self.ret();
        // The loose ends of the top level go into the result.
        let dead: Vec<E> = loose_ends(&body)
            .into_iter()
            .filter_map(|v| match self.lookup(&v)?.kind {
                Kind::Scalar => Some(E::F1(F1::Tanh, Box::new(E::Var(v)))),
                Kind::Arr(_) => Some(E::F1(F1::Tanh, Box::new(E::Sum(v)))),
                Kind::Idx(..) => None,
            })
            .take(5)
            .collect();
        let add = |e: &mut E| {
            for d in &dead {
                *e = E::Bin(Bop::Add, Box::new(e.clone()), Box::new(d.clone()));
            }
        };
        if let (Ret::ArrVar(a), Some(n), false) = (&ret, self.ret_len, dead.is_empty()) {
            ret = Ret::Arr((0..n).map(|i| E::Elem(a.clone(), Ix::Lit(i as i128))).collect());
        }
        match &mut ret {
            Ret::Scalar(e) => add(e),
            Ret::Arr(es) => add(&mut es[0]),
            Ret::ArrVar(_) => {}
        }
        Prog {
            params,
            body,
            ret,
            ret_len: self.ret_len,
        }
    }
}

/// Names bound by statements of `b` whose final value may not reach the result, in order:
/// every `let mut` (its last update may follow its last read), and every `let` that no
/// later statement of `b` reads (reads by updates of the variable itself, `s = s * 2.0`,
/// do not count).
fn loose_ends(b: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, s) in b.iter().enumerate() {
        let (name, mutable) = match s {
            S::Let { name, .. } | S::LetArr { name, .. } => (name, false),
            S::Mut { name, .. } | S::MutArr { name, .. } => (name, true),
            _ => continue,
        };
        let mut reads = Vec::new();
        b[k + 1..].iter().for_each(|s| s_reads(s, name, &mut reads));
        if (mutable || !reads.contains(name)) && !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// Every name a statement reads (in expressions, array copies and results), leaving out
/// the right sides of assignments to `skip`.
fn s_reads(s: &S, skip: &str, out: &mut Vec<String>) {
    let block = |b: &[S], out: &mut Vec<String>| b.iter().for_each(|s| s_reads(s, skip, out));
    fn init(i: &ArrInit, skip: &str, out: &mut Vec<String>) {
        match i {
            ArrInit::Copy(a) => out.push(a.clone()),
            ArrInit::Elems(es) => es.iter().for_each(|e| e_reads(e, skip, out)),
            ArrInit::Repeat(..) => {}
            ArrInit::If(c, a, b) => {
                c_reads(c, skip, out);
                init(a, skip, out);
                init(b, skip, out);
            }
        }
    }
    match s {
        S::Assign { name, .. } if name == skip => {}
        S::Let { e, .. } | S::Mut { e, .. } | S::Assign { e, .. } => e_reads(e, skip, out),
        S::LetArr { init: i, .. } | S::MutArr { init: i, .. } | S::SetArr { init: i, .. } => init(i, skip, out),
        S::For { body, .. } => block(body, out),
        S::If { cond, then, els } => {
            c_reads(cond, skip, out);
            block(then, out);
            block(els.as_deref().unwrap_or(&[]), out);
        }
        S::Return { cond, body, ret, els } => {
            c_reads(cond, skip, out);
            block(body, out);
            match ret {
                Ret::Scalar(e) => e_reads(e, skip, out),
                Ret::Arr(es) => es.iter().for_each(|e| e_reads(e, skip, out)),
                Ret::ArrVar(a) => out.push(a.clone()),
            }
            block(els.as_deref().unwrap_or(&[]), out);
        }
    }
}

fn e_reads(e: &E, skip: &str, out: &mut Vec<String>) {
    match e {
        E::Var(n) | E::Elem(n, _) | E::Sum(n) => out.push(n.clone()),
        E::Lit(_) | E::IdxF(_) => {}
        E::Neg(a) | E::F1(_, a) | E::Powi(a, _) => e_reads(a, skip, out),
        E::Bin(_, a, b) | E::F2(_, a, b) => {
            e_reads(a, skip, out);
            e_reads(b, skip, out);
        }
        E::MulAdd(a, b, c) => {
            e_reads(a, skip, out);
            e_reads(b, skip, out);
            e_reads(c, skip, out);
        }
        E::If(c, a, b) => {
            c_reads(c, skip, out);
            e_reads(a, skip, out);
            e_reads(b, skip, out);
        }
        E::Block(stmts, a) => {
            stmts.iter().for_each(|s| s_reads(s, skip, out));
            e_reads(a, skip, out);
        }
    }
}

fn c_reads(c: &Cond, skip: &str, out: &mut Vec<String>) {
    match c {
        Cond::Cmp(_, a, b) => {
            e_reads(a, skip, out);
            e_reads(b, skip, out);
        }
        Cond::Idx(..) => {}
        Cond::And(a, b) | Cond::Or(a, b) => {
            c_reads(a, skip, out);
            c_reads(b, skip, out);
        }
    }
}

/// Whether `e` reads the variable (or an element of the array) of the place `cur`.
fn mentions(e: &E, cur: &E) -> bool {
    let name = match cur {
        E::Var(n) | E::Elem(n, _) => n,
        _ => return false,
    };
    match e {
        E::Var(n) | E::Elem(n, _) | E::Sum(n) => n == name,
        E::Lit(_) | E::IdxF(_) => false,
        E::Neg(a) | E::F1(_, a) | E::Powi(a, _) => mentions(a, cur),
        E::Bin(_, a, b) | E::F2(_, a, b) => mentions(a, cur) || mentions(b, cur),
        E::MulAdd(a, b, c) => mentions(a, cur) || mentions(b, cur) || mentions(c, cur),
        E::If(c, a, b) => cond_mentions(c, cur) || mentions(a, cur) || mentions(b, cur),
        // Conservatively: the statements may read it.
        E::Block(..) => true,
    }
}

fn cond_mentions(c: &Cond, cur: &E) -> bool {
    match c {
        Cond::Cmp(_, a, b) => mentions(a, cur) || mentions(b, cur),
        Cond::Idx(..) => false,
        Cond::And(a, b) | Cond::Or(a, b) => cond_mentions(a, cur) || cond_mentions(b, cur),
    }
}

/// Whether `ix` stays within `0..n` (and never below 0 on the way) for every value of
/// the loop indices.
fn index_valid(ix: &Ix, loops: &[(String, i128, i128)], n: i128) -> bool {
    fn go(ix: &Ix, env: &[(String, i128)]) -> Option<i128> {
        let v = match ix {
            Ix::Lit(v) => *v,
            Ix::Var(x) => env.iter().rev().find(|(y, _)| y == x)?.1,
            Ix::Bin(op, a, b) => {
                let (a, b) = (go(a, env)?, go(b, env)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    _ => a.checked_rem(b)?,
                }
            }
        };
        (v >= 0).then_some(v)
    }
    fn all(ix: &Ix, loops: &[(String, i128, i128)], env: &mut Vec<(String, i128)>, n: i128) -> bool {
        match loops.split_first() {
            None => go(ix, env).is_some_and(|v| v < n),
            Some(((x, lo, hi), rest)) => (*lo..*hi).all(|i| {
                env.push((x.clone(), i));
                let ok = all(ix, rest, env, n);
                env.pop();
                ok
            }),
        }
    }
    all(ix, loops, &mut Vec::new(), n)
}

// ---------------------------------------------------------------------------------------
// The checks

/// A failed check: which one (failures of the same check are the same kind when
/// shrinking) and the details.
#[derive(Clone, Debug)]
struct Failure {
    tag: &'static str,
    msg: String,
}

fn fail(tag: &'static str, msg: impl Into<String>) -> Failure {
    Failure { tag, msg: msg.into() }
}

/// Per-program results.
#[derive(Default, Clone, Debug)]
struct Stats {
    /// Points checked.
    points: usize,
    /// Points where the finite-difference checks ran.
    fd_points: usize,
    /// Points where they were skipped (a branch flips within `x ± 2h`).
    fd_skipped: usize,
    /// Finite-difference comparisons that were inconclusive (noisy estimates).
    fd_noisy: usize,
    /// Hessians checked.
    hessians: usize,
    /// No point with bounded intermediates was found: nothing checked.
    discarded: bool,
    /// Largest cross-mode differences seen, in ulps of the comparison's scale.
    max_ulps_jvp_vjp: f64,
    max_ulps_hess: f64,
}

fn ulps(a: f64, b: f64, scale: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / (f64::EPSILON * a.abs().max(b.abs()).max(scale))
    }
}

fn max_ulps(a: &[Vec<f64>], b: &[Vec<f64>], scale: f64) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(&p, &q)| ulps(p, q, scale))
        .fold(0.0, f64::max)
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
}

fn rules() -> &'static RuleTable {
    static RULES: std::sync::OnceLock<RuleTable> = std::sync::OnceLock::new();
    RULES.get_or_init(RuleTable::standard)
}

/// The transforms of one program, with and without simplification.
struct Built {
    h: Harness,
    /// The primal, simplified.
    f_s: Func,
    /// `jvp(f)` and `vjp(f)` simplified (the harness keeps them unsimplified).
    fwd_s: Func,
    rev_s: Func,
    /// `jvp` and `vjp` of the simplified `vjp(f)`, not simplified: the harness's companions
    /// are these, simplified.
    fwd_rev_1: Func,
    rev_rev_1: Func,
    /// `jvp(vjp(f))` and `vjp(vjp(f))` with no simplification at all: a different program
    /// from the companions' (`vjp` of a simplified function accumulates merged values'
    /// adjoints in another order), so equal only up to rounding, and bitwise in the primal.
    fwd_rev_u: Func,
    rev_rev_u: Func,
}

fn build(p: &Prog, rules: &RuleTable) -> Result<Built, Failure> {
    let src = p.source();
    let f = lower_source(&src).map_err(|e| fail("lower", e))?;
    let n = f.params.len();
    let h = Harness::new("random", f.clone(), p.template(), rules);
    let tr = |what: &str, r: &Result<Func, Diag>| -> Result<Func, Failure> {
        r.clone().map_err(|e| fail("transform", format!("{what}: {e}")))
    };
    let mut fwd_s = tr("jvp", &h.fwd)?;
    let mut rev_s = tr("vjp", &h.rev)?;
    tr("jvp(vjp)", &h.fwd_rev)?;
    tr("vjp(vjp)", &h.rev_rev)?;
    simplify(&mut fwd_s);
    simplify(&mut rev_s);
    let mut f_s = f.clone();
    simplify(&mut f_s);
    let all = |n: usize| vec![true; n];
    let rev_all = vjp(
        &f,
        &VjpSpec {
            active: all(n),
            all_params: true,
            seed: None,
        },
        rules,
    )
    .map_err(|e| fail("transform", format!("vjp (companion protocol): {e}")))?
    .func;
    let mut rev_all_s = rev_all.clone();
    simplify(&mut rev_all_s);
    let m = rev_all.params.len();
    let second = |g: &Func, what: &str| -> Result<(Func, Func), Failure> {
        let fr = jvp(
            g,
            &JvpSpec {
                active: all(m),
                all_params: true,
                seeds: vec![],
                basis: vec![],
            },
            rules,
        )
        .map_err(|e| fail("transform", format!("{what} jvp(vjp): {e}")))?;
        let rr = vjp(
            g,
            &VjpSpec {
                active: all(m),
                all_params: true,
                seed: None,
            },
            rules,
        )
        .map_err(|e| fail("transform", format!("{what} vjp(vjp): {e}")))?
        .func;
        Ok((fr, rr))
    };
    let (fwd_rev_1, rev_rev_1) = second(&rev_all_s, "half-simplified")?;
    let (fwd_rev_u, rev_rev_u) = second(&rev_all, "unsimplified")?;
    Ok(Built {
        h,
        f_s,
        fwd_s,
        rev_s,
        fwd_rev_1,
        rev_rev_1,
        fwd_rev_u,
        rev_rev_u,
    })
}

/// Whether central differences at `x` stay on the smooth piece of `x`: the reference
/// evaluation at every `x ± h e_j` and `x ± 2h e_j` (the farthest points of `fd_jacobian`
/// and `fd_richardson`) takes the same branches (and the same sides of every `min`/`max`)
/// as at `x`, and stays bounded. Ties that hold identically (`min(a, b)` with `b` an alias
/// of `a`) are harmless: the split derivative `0.5 a' + 0.5 b'` is the derivative.
fn fd_valid(p: &Prog, x: &[f64], base: &RefOut) -> bool {
    for j in 0..x.len() {
        let h = fd_step(x[j]);
        for s in [1.0, -1.0, 2.0, -2.0] {
            let mut xs = x.to_vec();
            xs[j] += s * h;
            match run_ref(p, &xs) {
                Ok(r) if r.trace == base.trace && r.max_mag <= MAX_MAGNITUDE => {}
                _ => return false,
            }
        }
    }
    true
}

/// A function of the flattened inputs with flattened outputs (the primal, the gradient).
type FlatFn<'a> = dyn Fn(&[f64]) -> Result<Vec<f64>, String> + 'a;

/// The Jacobian of `g` at `x` (`jac[i][j] = ∂g_i/∂x_j`) by Richardson extrapolation of
/// central differences with steps `h` and `2h`, `h = scale · fd_step(x_j)`
/// (`(4 D(h) - D(2h)) / 3`, error `O(h⁴)`).
fn fd_richardson(x: &[f64], scale: f64, g: &FlatFn) -> Result<Vec<Vec<f64>>, String> {
    let mut cols = Vec::new();
    for j in 0..x.len() {
        let h = scale * fd_step(x[j]);
        let d = |k: f64| -> Result<Vec<f64>, String> {
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += k * h;
            xm[j] -= k * h;
            let (gp, gm) = (g(&xp)?, g(&xm)?);
            Ok(gp.iter().zip(&gm).map(|(p, m)| (p - m) / (xp[j] - xm[j])).collect())
        };
        let (d1, d2) = (d(1.0)?, d(2.0)?);
        cols.push(
            d1.iter()
                .zip(&d2)
                .map(|(a, b)| (4.0 * a - b) / 3.0)
                .collect::<Vec<f64>>(),
        );
    }
    Ok(transpose(&cols))
}

/// How far a finite-difference estimate must be from AD, in units of the spread of the
/// estimates, to count as a failure when no estimate agrees within `FD_RTOL`.
const FD_NOISE_FACTOR: f64 = 10.0;

/// What the second opinion concluded.
enum FdVerdict {
    /// An extrapolated estimate agrees with AD.
    Agrees,
    /// No estimate agrees, but they disagree among themselves as much: rounding noise.
    Noisy,
}

/// The second opinion when plain central differences (`fd`, error `h² |g'''| / 6`)
/// disagree with AD (`ad`). Programs can be strongly curved (first derivatives of `1e4`,
/// second of `1e5` occur), where truncation error passes `FD_RTOL`: Richardson
/// extrapolation with the usual step, then with a step 16 times smaller, gets a say, and
/// `ad` passes if either agrees with it. Programs can also evaluate periodic functions at
/// large arguments (`sin(400 + ..)`), where rounding makes every estimate noisy: then the
/// estimates disagree among themselves too, and AD passes (as `Noisy`) unless it is
/// farther than `FD_NOISE_FACTOR` times their spread from all of them. A wrong derivative
/// is off by `O(1)` relatively while the estimates agree to many digits: it fails.
fn fd_second_opinion(what: &str, ad: &[Vec<f64>], fd: &[Vec<f64>], x: &[f64], g: &FlatFn) -> Result<FdVerdict, String> {
    let mut ests = vec![fd.to_vec()];
    let mut errs = Vec::new();
    for scale in [1.0, 1.0 / 16.0] {
        let r = fd_richardson(x, scale, g)?;
        match compare(&format!("{what} (extrapolated, step x {scale})"), ad, &r, fd_close) {
            Ok(()) => return Ok(FdVerdict::Agrees),
            Err(e) => errs.push(e),
        }
        ests.push(r);
    }
    for (i, row) in ad.iter().enumerate() {
        for (j, &a) in row.iter().enumerate() {
            let e: Vec<f64> = ests.iter().map(|m| m[i][j]).collect();
            let lo = e.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let dist = e.iter().map(|v| (a - v).abs()).fold(f64::INFINITY, f64::min);
            // NaN anywhere: not noisy, a failure.
            let noisy = dist <= FD_NOISE_FACTOR * (hi - lo);
            if !e.iter().any(|&v| fd_close(a, v)) && !noisy {
                errs.push(format!(
                    "entry ({i}, {j}): AD {a:e}, estimates {e:?} (spread {:e})",
                    hi - lo
                ));
                return Err(errs.join("\n"));
            }
        }
    }
    Ok(FdVerdict::Noisy)
}

/// A point to check at: bounded intermediates, and (if one is found) where finite
/// differences apply. `None`: no point with bounded intermediates.
fn sample(p: &Prog, rng: &mut Rng) -> Result<Option<(Vec<f64>, RefOut, bool)>, Failure> {
    let mut fallback = None;
    for _ in 0..SAMPLE_TRIES {
        let x: Vec<f64> = (0..p.n_in()).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let r = run_ref(p, &x).map_err(|e| fail("reference", e))?;
        if r.max_mag > MAX_MAGNITUDE {
            continue;
        }
        if fd_valid(p, &x, &r) {
            return Ok(Some((x, r, true)));
        }
        if fallback.is_none() {
            fallback = Some((x, r, false));
        }
    }
    Ok(fallback)
}

fn eval_flat(env: &Env, f: &Func, args: &[Value], what: &str) -> Result<Vec<f64>, Failure> {
    env.eval(f, args)
        .map(|v| flat(&v))
        .map_err(|e| fail("eval", format!("{what}: {e}")))
}

/// A value shaped like `v` with uniform random floats.
fn random_like(v: &Value, rng: &mut Rng) -> Value {
    let k = flat(v).len();
    let xs: Vec<f64> = (0..k).map(|_| rng.uniform(-1.0, 1.0)).collect();
    v.unflatten(&mut xs.into_iter())
}

/// Check 5 of the module doc at `x`.
fn check_simplify(b: &Built, p: &Prog, x: &[f64], y: &[f64], rng: &mut Rng) -> Result<(), Failure> {
    let h = &b.h;
    let env = &h.env;
    let at = |what: &str, a: &[f64], c: &[f64]| format!("{what} at {x:?}:\n  {a:?}\n  {c:?}");
    let args = h.args(x);
    let ys = eval_flat(env, &b.f_s, &args, "simplified primal")?;
    if !same_bits(&ys, y) {
        return Err(fail("simplify-primal", at("simplified primal vs primal", &ys, y)));
    }
    let tmpl = p.template();
    // jvp: (x.., ẋ..) -> (y, ẏ)
    let mut a = args.clone();
    a.extend(tmpl.iter().map(|t| random_like(t, rng)));
    let (u, s) = (
        eval_flat(env, unwrap_ok(&h.fwd), &a, "jvp")?,
        eval_flat(env, &b.fwd_s, &a, "simplified jvp")?,
    );
    if !same_bits(&u, &s) {
        return Err(fail("simplify-jvp", at("jvp unsimplified vs simplified", &u, &s)));
    }
    if !same_bits(&u[..y.len()], y) {
        return Err(fail("jvp-primal", at("jvp's primal vs primal", &u[..y.len()], y)));
    }
    // vjp: (x.., ct) -> (y, (bars..))
    let y_shape = match p.ret_len {
        Some(k) => Value::Arr(vec![Value::F(0.0); k]),
        None => Value::F(0.0),
    };
    let mut a = args.clone();
    a.push(random_like(&y_shape, rng));
    let (u, s) = (
        eval_flat(env, unwrap_ok(&h.rev), &a, "vjp")?,
        eval_flat(env, &b.rev_s, &a, "simplified vjp")?,
    );
    if !same_bits(&u, &s) {
        return Err(fail("simplify-vjp", at("vjp unsimplified vs simplified", &u, &s)));
    }
    if !same_bits(&u[..y.len()], y) {
        return Err(fail("vjp-primal", at("vjp's primal vs primal", &u[..y.len()], y)));
    }
    // jvp(vjp): (x.., ct, ẋ.., ċt) -> ((y, bars), (ẏ, ḃars))
    let ct = random_like(&y_shape, rng);
    let mut a = args.clone();
    a.push(ct.clone());
    a.extend(tmpl.iter().map(|t| random_like(t, rng)));
    a.push(random_like(&y_shape, rng));
    second_order(
        b,
        &b.fwd_rev_1,
        &b.fwd_rev_u,
        unwrap_ok(&h.fwd_rev),
        &a,
        y,
        "jvp(vjp)",
        x,
    )?;
    // vjp(vjp): (x.., ct, (ȳ, (x̄..))) -> ((y, bars), (x bars.., ct bar))
    let mut a = args;
    a.push(ct);
    let bars = Value::Tup(tmpl.iter().map(|t| random_like(t, rng)).collect());
    a.push(Value::Tup(vec![random_like(&y_shape, rng), bars]));
    second_order(
        b,
        &b.rev_rev_1,
        &b.rev_rev_u,
        unwrap_ok(&h.rev_rev),
        &a,
        y,
        "vjp(vjp)",
        x,
    )?;
    Ok(())
}

/// A second-order companion (`comp`) against the same composition before its last
/// simplification (`one`, bitwise) and with no simplification at all (`none`: bitwise in
/// the primal, within `UNSIMPLIFIED_RTOL` in the rest).
#[allow(clippy::too_many_arguments)]
fn second_order(
    b: &Built,
    one: &Func,
    none: &Func,
    comp: &Func,
    args: &[Value],
    y: &[f64],
    what: &'static str,
    x: &[f64],
) -> Result<(), Failure> {
    let env = &b.h.env;
    let at = |d: &str, a: &[f64], c: &[f64]| format!("{what}: {d} at {x:?}:\n  {a:?}\n  {c:?}");
    let c = eval_flat(env, comp, args, what)?;
    let o = eval_flat(env, one, args, what)?;
    let u = eval_flat(env, none, args, what)?;
    if !same_bits(&o, &c) {
        return Err(fail(
            "simplify-2nd",
            at("before vs after the last simplification", &o, &c),
        ));
    }
    if !same_bits(&c[..y.len()], y) || !same_bits(&u[..y.len()], y) {
        return Err(fail("2nd-primal", at("primal part vs primal", &c[..y.len()], y)));
    }
    let scale = c.iter().chain(&u).fold(1.0, |m: f64, v| m.max(v.abs()));
    if u.len() != c.len() || u.iter().zip(&c).any(|(p, q)| (p - q).abs() > UNSIMPLIFIED_RTOL * scale) {
        return Err(fail("2nd-unsimplified", at("never simplified vs companion", &u, &c)));
    }
    Ok(())
}

/// `build` checked that every transform exists.
fn unwrap_ok(r: &Result<Func, Diag>) -> &Func {
    match r {
        Ok(f) => f,
        Err(e) => panic!("transform failed after build checked it: {e}"),
    }
}

fn h_err(tag: &'static str) -> impl Fn(String) -> Failure {
    move |e| fail(tag, e)
}

/// Every check of the module doc on one program.
fn check_program(p: &Prog, seed: u64, points: usize, rules: &RuleTable) -> Result<Stats, Failure> {
    let b = build(p, rules)?;
    let h = &b.h;
    let mut rng = Rng::new(seed ^ 0xC0FF_EE00_D00D);
    let mut st = Stats::default();
    for _ in 0..points {
        let Some((x, r, fd_ok)) = sample(p, &mut rng)? else {
            st.discarded = true;
            return Ok(st);
        };
        st.points += 1;
        let at = |what: &str| format!("{what} at x = {x:?}");
        let y = h.primal_flat(&x).map_err(h_err("eval"))?;
        if !same_bits(&y, &r.y) {
            return Err(fail(
                "primal",
                format!("{}: interpreter {y:?}, reference {:?}", at("primal"), r.y),
            ));
        }
        let rev = h.jac_rev(&x).map_err(h_err("eval"))?;
        if fd_ok {
            st.fd_points += 1;
            let fd = h.fd_jacobian(&x).map_err(h_err("eval"))?;
            let what = at("vjp Jacobian vs finite differences");
            if let Err(e) = compare(&what, &rev, &fd, fd_close) {
                let v = fd_second_opinion(&what, &rev, &fd, &x, &|x| h.primal_flat(x))
                    .map_err(|e2| fail("vjp-fd", format!("{e}\n{e2}")))?;
                st.fd_noisy += usize::from(matches!(v, FdVerdict::Noisy));
            }
        } else {
            st.fd_skipped += 1;
        }
        let fwd = h.jac_fwd(&x).map_err(h_err("eval"))?;
        let s = max_abs(&rev).max(1.0);
        st.max_ulps_jvp_vjp = st.max_ulps_jvp_vjp.max(max_ulps(&fwd, &rev, s));
        compare(&at("jvp columns vs vjp rows"), &fwd, &rev, |a, c| {
            ulps_close(a, c, CROSS_ULPS, s)
        })
        .map_err(h_err("jvp-vjp"))?;
        if p.ret_len.is_none() {
            st.hessians += 1;
            let hf = h.hess_fwd_rev(&x).map_err(h_err("eval"))?;
            let hr = h.hess_rev_rev(&x).map_err(h_err("eval"))?;
            let s = max_abs(&hf).max(max_abs(&hr)).max(1.0);
            let close = |a: f64, c: f64| ulps_close(a, c, HESS_ULPS, s);
            st.max_ulps_hess = st
                .max_ulps_hess
                .max(max_ulps(&hf, &hr, s))
                .max(max_ulps(&hf, &transpose(&hf), s))
                .max(max_ulps(&hr, &transpose(&hr), s));
            compare(&at("jvp(vjp) Hessian symmetry"), &hf, &transpose(&hf), close).map_err(h_err("hess-sym"))?;
            compare(&at("vjp(vjp) Hessian symmetry"), &hr, &transpose(&hr), close).map_err(h_err("hess-sym"))?;
            compare(&at("jvp(vjp) vs vjp(vjp) Hessian"), &hf, &hr, close).map_err(h_err("hess-modes"))?;
            if fd_ok {
                let fd2 = h.fd_hessian_of_grad(&x).map_err(h_err("eval"))?;
                let what = at("jvp(vjp) Hessian vs differences of the gradient");
                if let Err(e) = compare(&what, &hf, &fd2, fd_close) {
                    let v = fd_second_opinion(&what, &hf, &fd2, &x, &|x| h.grad(x))
                        .map_err(|e2| fail("hess-fd", format!("{e}\n{e2}")))?;
                    st.fd_noisy += usize::from(matches!(v, FdVerdict::Noisy));
                }
            }
        }
        check_simplify(&b, p, &x, &y, &mut rng)?;
    }
    Ok(st)
}

// ---------------------------------------------------------------------------------------
// Shrinking

/// Calls `f` on every expression of a block, in pre-order (into nested blocks, conditions
/// and the statements of block expressions); `f` returns false to stop.
fn visit_block(b: &mut [S], f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    b.iter_mut().all(|s| visit_stmt(s, f))
}

fn visit_stmt(s: &mut S, f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    match s {
        S::Let { e, .. } | S::Mut { e, .. } | S::Assign { e, .. } => visit_expr(e, f),
        S::LetArr { init, .. } | S::MutArr { init, .. } | S::SetArr { init, .. } => visit_init(init, f),
        S::For { body, .. } => visit_block(body, f),
        S::If { cond, then, els } => {
            visit_cond(cond, f) && visit_block(then, f) && els.as_mut().is_none_or(|e| visit_block(e, f))
        }
        S::Return { cond, body, ret, els } => {
            visit_cond(cond, f)
                && visit_block(body, f)
                && visit_ret(ret, f)
                && els.as_mut().is_none_or(|e| visit_block(e, f))
        }
    }
}

fn visit_init(i: &mut ArrInit, f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    match i {
        ArrInit::Elems(es) => es.iter_mut().all(|e| visit_expr(e, f)),
        ArrInit::If(c, a, b) => visit_cond(c, f) && visit_init(a, f) && visit_init(b, f),
        ArrInit::Repeat(..) | ArrInit::Copy(_) => true,
    }
}

fn visit_ret(r: &mut Ret, f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    match r {
        Ret::Scalar(e) => visit_expr(e, f),
        Ret::Arr(es) => es.iter_mut().all(|e| visit_expr(e, f)),
        Ret::ArrVar(_) => true,
    }
}

fn visit_cond(c: &mut Cond, f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    match c {
        Cond::Cmp(_, a, b) => visit_expr(a, f) && visit_expr(b, f),
        Cond::Idx(..) => true,
        Cond::And(a, b) | Cond::Or(a, b) => visit_cond(a, f) && visit_cond(b, f),
    }
}

fn visit_expr(e: &mut E, f: &mut dyn FnMut(&mut E) -> bool) -> bool {
    if !f(e) {
        return false;
    }
    match e {
        E::Neg(a) | E::F1(_, a) | E::Powi(a, _) => visit_expr(a, f),
        E::Bin(_, a, b) | E::F2(_, a, b) => visit_expr(a, f) && visit_expr(b, f),
        E::MulAdd(a, b, c) => visit_expr(a, f) && visit_expr(b, f) && visit_expr(c, f),
        E::If(c, a, b) => visit_cond(c, f) && visit_expr(a, f) && visit_expr(b, f),
        E::Block(stmts, a) => visit_block(stmts, f) && visit_expr(a, f),
        _ => true,
    }
}

/// Rewrites the `k`-th expression of a program (pre-order) with `f`.
fn rewrite_expr(p: &mut Prog, k: usize, f: &mut dyn FnMut(&E) -> Option<E>) {
    let mut n = 0;
    let mut visit = |e: &mut E| {
        if n == k {
            if let Some(new) = f(e) {
                *e = new;
            }
            return false;
        }
        n += 1;
        true
    };
    if visit_block(&mut p.body, &mut visit) {
        visit_ret(&mut p.ret, &mut visit);
    }
}

fn count_exprs(p: &Prog) -> usize {
    let mut q = p.clone();
    let mut n = 0;
    let mut count = |_: &mut E| {
        n += 1;
        true
    };
    visit_block(&mut q.body, &mut count);
    visit_ret(&mut q.ret, &mut count);
    n
}

/// Smaller versions of a condition.
fn cond_candidates(c: &Cond) -> Vec<Cond> {
    match c {
        Cond::And(a, b) | Cond::Or(a, b) => vec![(**a).clone(), (**b).clone()],
        _ => vec![],
    }
}

/// Smaller versions of a block: each statement removed or reduced (loops shortened or
/// made forward, branches inlined or dropped, compound assignments made plain).
fn block_candidates(b: &[S]) -> Vec<Vec<S>> {
    let mut out = Vec::new();
    for k in 0..b.len() {
        let mut c = b.to_vec();
        c.remove(k);
        out.push(c);
        for s in stmt_candidates(&b[k]) {
            let mut c = b.to_vec();
            c.splice(k..=k, s);
            out.push(c);
        }
    }
    out
}

/// Replacements (zero or more statements) of one statement.
fn stmt_candidates(s: &S) -> Vec<Vec<S>> {
    let mut out = Vec::new();
    match s {
        S::For {
            var,
            lo,
            hi,
            rev,
            incl,
            body,
        } => {
            let f = |lo: i128, hi: i128, rev: bool, incl: bool, body: Vec<S>| {
                vec![S::For {
                    var: var.clone(),
                    lo,
                    hi,
                    rev,
                    incl,
                    body,
                }]
            };
            if hi - lo > 1 {
                out.push(f(*lo, hi - 1, *rev, *incl, body.clone()));
            }
            if *rev {
                out.push(f(*lo, *hi, false, *incl, body.clone()));
            }
            if *incl {
                out.push(f(*lo, *hi, *rev, false, body.clone()));
            }
            if *lo > 0 {
                out.push(f(0, *hi, *rev, *incl, body.clone()));
            }
            for nb in block_candidates(body) {
                out.push(f(*lo, *hi, *rev, *incl, nb));
            }
        }
        S::If { cond, then, els } => {
            let f = |cond: &Cond, then: Vec<S>, els: Option<Vec<S>>| {
                vec![S::If {
                    cond: cond.clone(),
                    then,
                    els,
                }]
            };
            out.push(then.clone());
            if let Some(e) = els {
                out.push(e.clone());
                out.push(f(cond, then.clone(), None));
                for ne in block_candidates(e) {
                    out.push(f(cond, then.clone(), Some(ne)));
                }
            }
            for nt in block_candidates(then) {
                out.push(f(cond, nt, els.clone()));
            }
            for c in cond_candidates(cond) {
                out.push(f(&c, then.clone(), els.clone()));
            }
        }
        S::Return { cond, body, ret, els } => {
            let f = |cond: &Cond, body: Vec<S>, els: Option<Vec<S>>| {
                vec![S::Return {
                    cond: cond.clone(),
                    body,
                    ret: ret.clone(),
                    els,
                }]
            };
            for nb in block_candidates(body) {
                out.push(f(cond, nb, els.clone()));
            }
            if let Some(e) = els {
                out.push(f(cond, body.clone(), None));
                for ne in block_candidates(e) {
                    out.push(f(cond, body.clone(), Some(ne)));
                }
            }
            for c in cond_candidates(cond) {
                out.push(f(&c, body.clone(), els.clone()));
            }
        }
        S::MutArr {
            name,
            n,
            init: init @ (ArrInit::Elems(_) | ArrInit::Copy(_) | ArrInit::If(..)),
        } => {
            out.push(vec![S::MutArr {
                name: name.clone(),
                n: *n,
                init: ArrInit::Repeat(0.5, *n),
            }]);
            if let ArrInit::If(_, a, b) = init {
                for side in [a, b] {
                    out.push(vec![S::MutArr {
                        name: name.clone(),
                        n: *n,
                        init: (**side).clone(),
                    }]);
                }
            }
        }
        S::LetArr {
            name,
            init: ArrInit::If(_, a, b),
        } => {
            for side in [a, b] {
                out.push(vec![S::LetArr {
                    name: name.clone(),
                    init: (**side).clone(),
                }]);
            }
        }
        S::Assign { name, idx, op, e } if *op != AOp::Set => {
            out.push(vec![S::Assign {
                name: name.clone(),
                idx: idx.clone(),
                op: AOp::Set,
                e: e.clone(),
            }]);
        }
        _ => {}
    }
    out
}

/// Smaller versions of an expression: its children, simpler forms, a literal.
fn expr_candidates(e: &E) -> Vec<E> {
    let mut out = Vec::new();
    match e {
        E::Neg(a) | E::F1(_, a) | E::Powi(a, _) => out.push((**a).clone()),
        E::Bin(_, a, b) | E::F2(_, a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
        }
        E::MulAdd(a, b, c) => {
            out.push((**a).clone());
            out.push((**b).clone());
            out.push((**c).clone());
            out.push(E::Bin(
                Bop::Add,
                Box::new(E::Bin(Bop::Mul, a.clone(), b.clone())),
                c.clone(),
            ));
        }
        E::If(c, a, b) => {
            out.push((**a).clone());
            out.push((**b).clone());
            for c in cond_candidates(c) {
                out.push(E::If(Box::new(c), a.clone(), b.clone()));
            }
        }
        E::Block(stmts, a) => {
            out.push((**a).clone());
            for nb in block_candidates(stmts) {
                out.push(E::Block(nb, a.clone()));
            }
        }
        E::Elem(n, ix) if *ix != Ix::Lit(0) => out.push(E::Elem(n.clone(), Ix::Lit(0))),
        _ => {}
    }
    // `(1.0 + a * a).ln()` to `a`
    if let E::F1(_, a) | E::Powi(a, _) = e {
        if let E::Bin(Bop::Add, one, sq) = &**a {
            if let (E::Lit(_), E::Bin(Bop::Mul, x, _)) = (&**one, &**sq) {
                out.push((**x).clone());
            }
        }
    }
    if !matches!(e, E::Lit(_)) {
        out.push(E::Lit(0.5));
    }
    out
}

/// All one-step reductions of a program.
fn candidates(p: &Prog) -> Vec<Prog> {
    let mut out = Vec::new();
    for body in block_candidates(&p.body) {
        out.push(Prog { body, ..p.clone() });
    }
    // Drop a parameter, or shorten an array parameter.
    for k in 0..p.params.len() {
        if p.params.len() > 1 {
            let mut q = p.clone();
            q.params.remove(k);
            out.push(q);
        }
        if let Some(n) = p.params[k].1 {
            if n > 1 && p.ret_len != Some(n) {
                let mut q = p.clone();
                q.params[k].1 = Some(n - 1);
                out.push(q);
            }
            let mut q = p.clone();
            q.params[k].1 = None;
            out.push(q);
        }
    }
    for k in 0..count_exprs(p) {
        let mut cands = Vec::new();
        let mut q = p.clone();
        rewrite_expr(&mut q, k, &mut |e| {
            cands = expr_candidates(e);
            None
        });
        for c in cands {
            let mut q = p.clone();
            let mut c = Some(c);
            rewrite_expr(&mut q, k, &mut |_| c.take());
            out.push(q);
        }
    }
    out
}

/// Whether `p` is a valid program failing check `tag`.
fn fails_with(p: &Prog, tag: &str, seed: u64, points: usize, rules: &RuleTable) -> bool {
    // Invalid candidates (undefined names, bad indices) fail the reference evaluation.
    let x = vec![0.3; p.n_in()];
    if run_ref(p, &x).is_err() {
        return false;
    }
    matches!(check_program(p, seed, points, rules), Err(f) if f.tag == tag)
}

/// Greedy minimization: apply the first reduction that still fails the same check, until
/// none does. Also tries more points, so a smaller program failing less often still counts.
fn shrink(p: &Prog, tag: &str, seed: u64, points: usize, rules: &RuleTable) -> Prog {
    let points = points.max(4);
    let mut cur = p.clone();
    let mut steps = 0;
    'outer: while steps < 2000 {
        for c in candidates(&cur) {
            steps += 1;
            if c.source().len() <= cur.source().len() && c != cur && fails_with(&c, tag, seed, points, rules) {
                cur = c;
                continue 'outer;
            }
        }
        break;
    }
    cur
}

// ---------------------------------------------------------------------------------------
// The driver

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// Which constructs a program uses (for the coverage summary).
fn features(p: &Prog) -> Vec<&'static str> {
    let mut f = Vec::new();
    let src = p.source();
    let has = |s: &str| src.contains(s);
    for (k, pat) in [
        ("array param", ": [f64;"),
        ("let mut array", "let mut m"),
        ("index assignment", "] = "),
        ("+=", " += "),
        ("-=", " -= "),
        ("*=", " *= "),
        ("/=", " /= "),
        ("rev loop", ".rev()"),
        ("inclusive range", "..="),
        ("early return", "return "),
        ("else", "} else {"),
        ("i as f64", " as f64"),
        ("iter().sum", ".iter().sum"),
        ("sin", ".sin()"),
        ("cos", ".cos()"),
        ("tanh", ".tanh()"),
        ("atan", ".atan()"),
        ("exp", ".exp()"),
        ("ln", ".ln()"),
        ("sqrt", ".sqrt()"),
        ("powi", ".powi("),
        ("hypot", ".hypot("),
        ("min", ".min("),
        ("max", ".max("),
        ("mul_add", ".mul_add("),
        ("&&", " && "),
        ("||", " || "),
        ("block expression", "{ let "),
    ] {
        if has(pat) {
            f.push(k);
        }
    }
    fn walk(b: &[S], depth: usize, f: &mut Vec<&'static str>, seen: &mut Vec<String>) {
        for s in b {
            match s {
                S::Let { name, .. } | S::Mut { name, .. } | S::LetArr { name, .. } | S::MutArr { name, .. } => {
                    if seen.contains(name) {
                        f.push("shadowing");
                    }
                    seen.push(name.clone());
                }
                S::For { body, .. } => {
                    f.push(if depth > 0 { "nested loop" } else { "loop" });
                    walk(body, depth + 1, f, seen);
                }
                S::If { then, els, .. } => {
                    f.push("if statement");
                    walk(then, depth, f, seen);
                    if let Some(e) = els {
                        walk(e, depth, f, seen);
                    }
                }
                S::Return { body, els, .. } => {
                    walk(body, depth, f, seen);
                    if let Some(e) = els {
                        f.push("early return with else");
                        walk(e, depth, f, seen);
                    }
                }
                S::SetArr { .. } => f.push("whole-array assignment"),
                S::Assign { .. } => {}
            }
            if let S::LetArr { init, .. } | S::MutArr { init, .. } | S::SetArr { init, .. } = s {
                if matches!(init, ArrInit::If(..)) {
                    f.push("array-valued if");
                }
            }
            if let S::If { cond, .. } | S::Return { cond, .. } = s {
                if index_cond(cond) {
                    f.push("condition on a loop index");
                }
            }
        }
    }
    fn index_cond(c: &Cond) -> bool {
        match c {
            Cond::Idx(..) => true,
            Cond::Cmp(..) => false,
            Cond::And(a, b) | Cond::Or(a, b) => index_cond(a) || index_cond(b),
        }
    }
    let mut seen: Vec<String> = p.params.iter().map(|(n, _)| n.clone()).collect();
    walk(&p.body, 0, &mut f, &mut seen);
    if src.contains("(if ") || src.contains("= if ") {
        f.push("if expression");
    }
    if p.ret_len.is_some() {
        f.push("array result");
    }
    f.sort_unstable();
    f.dedup();
    f
}

/// The generated program for a seed.
fn program(seed: u64) -> Prog {
    Gen::new(seed).program()
}

#[test]
fn random_programs() {
    let cases = env_usize("FLUXION_RANDOM_CASES", 120);
    let points = env_usize("FLUXION_RANDOM_POINTS", 2).max(1);
    let first = env_usize("FLUXION_RANDOM_SEED", 0) as u64;
    let verbose = std::env::var("FLUXION_RANDOM_VERBOSE").is_ok_and(|v| v == "1");
    let start = Instant::now();
    let mut total = Stats::default();
    let (mut checked, mut discarded) = (0, 0);
    // Seeds of the largest cross-mode differences.
    let mut worst = (first, first);
    let mut coverage: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failures: Vec<(u64, Prog, Failure)> = Vec::new();
    for seed in first..first + cases as u64 {
        let p = program(seed);
        if verbose {
            // With the reference value at a fixed point, to compare with the compiled program.
            let x: Vec<f64> = (0..p.n_in()).map(|k| (k as f64 + 1.0).sin()).collect();
            let y = run_ref(&p, &x).map(|r| r.y);
            println!("seed {seed}:\n{}\nreference at {x:?}: {y:?}\n", p.source());
        }
        match check_program(&p, seed, points, rules()) {
            Ok(st) if st.discarded && st.points == 0 => discarded += 1,
            Ok(st) => {
                checked += 1;
                for k in features(&p) {
                    *coverage.entry(k).or_default() += 1;
                }
                total.points += st.points;
                total.fd_points += st.fd_points;
                total.fd_skipped += st.fd_skipped;
                total.fd_noisy += st.fd_noisy;
                total.hessians += st.hessians;
                if st.max_ulps_jvp_vjp > total.max_ulps_jvp_vjp {
                    total.max_ulps_jvp_vjp = st.max_ulps_jvp_vjp;
                    worst.0 = seed;
                }
                if st.max_ulps_hess > total.max_ulps_hess {
                    total.max_ulps_hess = st.max_ulps_hess;
                    worst.1 = seed;
                }
            }
            Err(f) => failures.push((seed, p, f)),
        }
    }
    println!(
        "random programs: {checked} checked, {} failed, {discarded} discarded (unbounded intermediates) of {cases} \
         (seeds {first}..{}), {} points ({} with finite differences, {} skipped near a branch switch, \
         {} comparisons inconclusive: noisy), {} Hessians; max jvp-vs-vjp difference {:.1} ulps (seed {}), max Hessian difference {:.1} ulps (seed {}); {:.1} s",
        failures.len(),
        first + cases as u64,
        total.points,
        total.fd_points,
        total.fd_skipped,
        total.fd_noisy,
        total.hessians,
        total.max_ulps_jvp_vjp,
        worst.0,
        total.max_ulps_hess,
        worst.1,
        start.elapsed().as_secs_f64()
    );
    let cov: Vec<String> = coverage.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("programs using each construct: {}", cov.join(", "));
    if failures.is_empty() {
        return;
    }
    let mut report = String::new();
    let mut shrunk_tags: Vec<&'static str> = Vec::new();
    for (seed, p, f) in &failures {
        let _ = writeln!(report, "seed {seed}: [{}] {}\n{}\n", f.tag, f.msg, p.source());
        // One minimization per kind of failure (they are slow).
        if !shrunk_tags.contains(&f.tag) {
            shrunk_tags.push(f.tag);
            let m = shrink(p, f.tag, *seed, points, rules());
            let why = check_program(&m, *seed, points.max(4), rules())
                .err()
                .map(|f| f.msg)
                .unwrap_or_default();
            let _ = writeln!(report, "minimized (same check fails):\n{}\n{why}\n", m.source());
        }
    }
    panic!("{} of {cases} random programs failed:\n\n{report}", failures.len());
}

/// The generator only writes programs the engine accepts and the reference evaluator can
/// run, and it is deterministic.
#[test]
fn generator_is_deterministic_and_valid() {
    for seed in 0..50 {
        let p = program(seed);
        assert_eq!(p, program(seed));
        let src = p.source();
        lower_source(&src).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{src}"));
        run_ref(&p, &vec![0.25; p.n_in()]).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{src}"));
    }
}

/// The checks can fail, and failures shrink: with a sign flipped in `sin`'s rule, many of
/// the generated programs that use `sin` (and pass with the standard rules) fail, and the
/// shrinker reduces the first of them to a smaller program that still fails the same check
/// and still calls `sin`.
#[test]
fn checks_catch_a_defective_rule_and_shrink() {
    let bad = RuleTable::standard().mutated(Prim::Sin, Mutation::FlipSign);
    let mut caught = Vec::new();
    let mut with_sin = 0;
    for seed in 0..40 {
        let p = program(seed);
        if !p.source().contains(".sin()") {
            continue;
        }
        with_sin += 1;
        check_program(&p, seed, 1, rules()).unwrap_or_else(|f| panic!("[{}] {}\n{}", f.tag, f.msg, p.source()));
        if let Err(f) = check_program(&p, seed, 1, &bad) {
            caught.push((seed, p, f));
        }
    }
    println!(
        "a sign flip in sin's rule caught in {} of {with_sin} programs",
        caught.len()
    );
    // Not all: `sin` may be in a condition, on a path not taken at the point, or overwritten.
    assert!(
        3 * caught.len() > with_sin,
        "a sign flip in sin's rule caught in {} of {with_sin} programs",
        caught.len()
    );
    let (seed, p, f) = &caught[0];
    let m = shrink(p, f.tag, *seed, 1, &bad);
    assert!(fails_with(&m, f.tag, *seed, 4, &bad), "{}", m.source());
    assert!(m.source().contains(".sin()"), "{}", m.source());
    assert!(m.source().len() < p.source().len(), "{}", m.source());
    println!("shrunk from\n{}\nto\n{}", p.source(), m.source());
}

// ---------------------------------------------------------------------------------------
// Engine bugs found by the generator, as minimal programs. Until an engine fix lands, the
// test is `#[ignore = "engine bug: .."]` and the generator avoids the construct.

/// Lowers `src`, checks that its interpreted primal equals `native` (Rust's own evaluation
/// of the same source) at `x`, and that its `vjp` gradient equals `grad`.
fn check_against_rust(src: &str, template: Vec<Value>, x: &[f64], native: f64, grad: &[f64]) {
    let f = lower_source(src).unwrap_or_else(|e| panic!("{e}"));
    let h = Harness::new("regression", f, template, rules());
    let y = h.primal_flat(x).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(y, vec![native], "primal of `{src}` at {x:?}: interpreter vs Rust");
    let g = h.grad(x).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g, grad, "gradient of `{src}` at {x:?}");
}

/// Found by `random_programs` as a primal mismatch (interpreter vs reference evaluator):
/// `a && b` and `a || b` were lowered with both sides evaluated, but the right side can
/// assign a variable through a block expression, which Rust skips when the left side
/// decides. At `x = 0.5` Rust returns `0` (the assignment `s = x` never runs, derivative
/// `0`); the lowering returned `0.5` (derivative `1`). Fixed in the engine meanwhile
/// (commit 7436449, "&& and || short-circuit").
#[test]
fn lazy_boolean_right_side_with_assignment() {
    fn and(x: f64) -> f64 {
        let mut s: f64 = 0.0;
        if (x > 1.0)
            && ({
                s = x;
                x
            } > 0.0)
        {
            s += 1.0;
        }
        s
    }
    fn or(x: f64) -> f64 {
        let mut s: f64 = 0.0;
        if (x < 1.0)
            || ({
                s = x;
                x
            } > 0.0)
        {
            s += 1.0;
        }
        s
    }
    check_against_rust(
        "fn f(x: f64) -> f64 { let mut s: f64 = 0.0; if (x > 1.0) && ({ s = x; x } > 0.0) { s += 1.0; } s }",
        vec![Value::F(0.0)],
        &[0.5],
        and(0.5),
        &[0.0],
    );
    check_against_rust(
        "fn f(x: f64) -> f64 { let mut s: f64 = 0.0; if (x < 1.0) || ({ s = x; x } > 0.0) { s += 1.0; } s }",
        vec![Value::F(0.0)],
        &[0.5],
        or(0.5),
        &[0.0],
    );
}

/// Every random program again with dynamic-length data: its array parameters as slices
/// (`x: &[f64]`) and every loop bound a run-time value (`lo + zz_offset..hi + zz_offset` with a parameter
/// `zz_offset: usize` passed as 0: the same iterations, but no bound is a constant, so reverse mode
/// tapes on growing tapes and the interpreter reads the bounds at run time). The primal,
/// the reverse gradient (`vjp` and the final pass) and forward mode (`jvp`) give the same
/// bits as the static program's: the same operations in the same order.
#[test]
fn random_programs_over_slices_and_run_time_bounds() {
    let cases = env_usize("FLUXION_RANDOM_CASES", 120) as u64;
    let rules = rules();
    let env = Env::default();
    let (mut compared, mut dynamic_loops, mut skipped) = (0, 0, 0);
    for seed in 0..cases {
        let p = program(seed);
        let src = p.source();
        let dyn_src = to_dynamic(&src);
        let f = lower_source(&src).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // A whole array chosen by an `if` or copied into a `let mut` is an error for a
        // slice (slices are read-only and never copied): such programs are skipped.
        let Ok(g) = lower_source(&dyn_src) else {
            skipped += 1;
            continue;
        };
        let n_float = f.params.len();
        let mut active = vec![true; n_float];
        active.push(false);
        let spec = |active: Vec<bool>| VjpSpec {
            active,
            all_params: false,
            seed: None,
        };
        let x: Vec<f64> = (0..p.n_in())
            .map(|k| 0.3 + 0.7 * ((k as f64 + 1.0) * 1.3).sin())
            .collect();
        let mut it = x.iter().copied();
        let args: Vec<Value> = p.template().iter().map(|t| t.unflatten(&mut it)).collect();
        let mut dyn_args = args.clone();
        dyn_args.push(Value::I(0));
        let Ok(y) = env.eval(&f, &args) else { continue };
        let y2 = env
            .eval(&g, &dyn_args)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{dyn_src}"));
        assert_eq!(
            flat(&y).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            flat(&y2).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "seed {seed}: primal\n{dyn_src}"
        );
        let mut k = 0.0;
        let ct = y.unflatten(&mut std::iter::from_fn(|| {
            k += 1.0;
            Some(0.5 + 0.25 * k)
        }));
        for final_pass in [false, true] {
            let build = |h: &Func, active: Vec<bool>| {
                let r = if final_pass {
                    fluxion_engine::vjp::vjp_final(h, &spec(active), rules)
                } else {
                    vjp(h, &spec(active), rules)
                };
                r.unwrap_or_else(|e| panic!("seed {seed}: {}", e.msg)).func
            };
            let a = build(&f, vec![true; n_float]);
            let b = build(&g, active.clone());
            let mut a_args = args.clone();
            a_args.push(ct.clone());
            let mut b_args = dyn_args.clone();
            b_args.push(ct.clone());
            let (Ok(ra), rb) = (env.eval(&a, &a_args), env.eval(&b, &b_args)) else {
                continue;
            };
            let rb = rb.unwrap_or_else(|e| panic!("seed {seed}: {e}\n{dyn_src}"));
            let bits = |v: &Value| flat(v).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&ra),
                bits(&rb),
                "seed {seed}: vjp (final: {final_pass})\n{dyn_src}"
            );
            let growing = b.vars.iter().any(|v| v.storage == fluxion_engine::ir::Storage::Growing);
            dynamic_loops += usize::from(growing && final_pass);
        }
        let jspec = |active: Vec<bool>| JvpSpec {
            active,
            all_params: false,
            seeds: Vec::new(),
            basis: Vec::new(),
        };
        let ja = jvp(&f, &jspec(vec![true; n_float]), rules);
        let jb = jvp(&g, &jspec(active.clone()), rules);
        if let (Ok(ja), Ok(jb)) = (ja, jb) {
            let mut t = x.iter().map(|v| v.cos());
            let tangents: Vec<Value> = p.template().iter().map(|v| v.unflatten(&mut t)).collect();
            let mut a_args = args.clone();
            a_args.extend(tangents.iter().cloned());
            let mut b_args = dyn_args.clone();
            b_args.extend(tangents);
            if let Ok(ra) = env.eval(&ja, &a_args) {
                let rb = env
                    .eval(&jb, &b_args)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{dyn_src}"));
                assert_eq!(flat(&ra), flat(&rb), "seed {seed}: jvp\n{dyn_src}");
            }
        }
        compared += 1;
    }
    println!("{compared} programs compared over slices, {dynamic_loops} with growing tapes, {skipped} skipped (slices copied)");
    assert!(compared as u64 > cases / 2, "only {compared} of {cases} compared");
    assert!(
        dynamic_loops > compared / 4,
        "only {dynamic_loops} of {compared} with growing tapes"
    );
}

/// `fn f(x: [f64; 3], ..)` with `for i in lo..hi` as `fn f(x: &[f64], .., zz_offset: usize)` with
/// `for i in lo + zz_offset..hi + zz_offset` (inclusive and reversed ranges alike).
fn to_dynamic(src: &str) -> String {
    let mut out = String::new();
    for (k, line) in src.lines().enumerate() {
        let mut l = line.to_string();
        if k == 0 {
            // The signature: array parameters as slices, and the offset `z`.
            let (params, ret) = l.split_at(l.find(") ->").unwrap_or(l.len()));
            let mut ps = String::new();
            let mut rest = params;
            while let Some(at) = rest.find(": [f64; ") {
                ps.push_str(&rest[..at]);
                ps.push_str(": &[f64]");
                let after = &rest[at + ": [f64; ".len()..];
                rest = &after[after.find(']').map_or(0, |c| c + 1)..];
            }
            ps.push_str(rest);
            let sep = if ps.ends_with('(') { "" } else { ", " };
            l = format!("{ps}{sep}zz_offset: usize{ret}");
        } else if let Some(at) = l.find(" in ") {
            if l.trim_start().starts_with("for ") {
                let (head, range) = l.split_at(at + 4);
                let range = range.trim_end_matches(" {");
                let (inner, rev) = match range.strip_prefix('(').and_then(|r| r.strip_suffix(").rev()")) {
                    Some(r) => (r, true),
                    None => (range, false),
                };
                let (lo, hi, op) = match inner.split_once("..=") {
                    Some((a, b)) => (a, b, "..="),
                    None => inner.split_once("..").map_or((inner, "", ".."), |(a, b)| (a, b, "..")),
                };
                let r = format!("{lo} + zz_offset{op}{hi} + zz_offset");
                let r = if rev { format!("({r}).rev()") } else { r };
                l = format!("{head}{r} {{");
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Every random program batched (`vmap`'s batching rule, `batch::batch`): with every
/// parameter batched, and with the first one shared (its values the same in every lane,
/// computed once), the kernel's lane `l` gives bit for bit what the per-sample program
/// gives for sample `l` (the interpreter applies each operation lane by lane, so the lane
/// functions are the scalar ones), at 4 and 8 lanes, batch sizes 1, 3, 4, 5 and 9 (the last
/// chunk padded with its last sample); and the same for the program's reverse pass
/// (`vmap(vjp)`, the cotangent batched too). Programs whose integers would differ between
/// samples (an index computed from a float) are refused by the batching rule, and skipped.
#[test]
fn random_programs_batched() {
    use fluxion_engine::batch::{batch, BatchSpec};
    let cases = env_usize("FLUXION_RANDOM_CASES", 120) as u64;
    let rules = rules();
    let (mut compared, mut refused, mut shared_runs) = (0, 0, 0);
    for seed in 0..cases {
        let p = program(seed);
        let f = lower_source(&p.source()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let n = f.params.len();
        let rev = vjp(
            &f,
            &VjpSpec {
                active: vec![true; n],
                all_params: false,
                seed: None,
            },
            rules,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {}", e.msg))
        .func;
        // Per-sample arguments: the primal's, then (for the reverse pass) a cotangent.
        let sample_args = |k: usize| -> Vec<Value> {
            let x: Vec<f64> = (0..p.n_in())
                .map(|j| 0.3 + 0.7 * ((j as f64 + 1.0) * 1.3 + k as f64 * 0.77).sin())
                .collect();
            let mut it = x.iter().copied();
            p.template().iter().map(|t| t.unflatten(&mut it)).collect()
        };
        let env = Env::default();
        let Ok(y0) = env.eval(&f, &sample_args(0)) else {
            continue;
        };
        let ct_of = |k: usize| {
            let mut c = 0.0;
            y0.unflatten(&mut std::iter::from_fn(|| {
                c += 1.0;
                Some(0.5 + 0.25 * c + 0.1 * k as f64)
            }))
        };
        let mut any = false;
        for share_first in [false, true] {
            if share_first && n < 2 {
                continue;
            }
            for (g, with_ct) in [(&f, false), (&rev, true)] {
                let mut flags = vec![true; g.params.len()];
                if share_first {
                    flags[0] = false;
                }
                let Ok(k) = batch(g, &BatchSpec { batched: flags.clone() }) else {
                    refused += 1;
                    continue;
                };
                let args = |s: usize| -> Vec<Value> {
                    // A shared parameter takes sample 0's value in every sample.
                    let mut a = sample_args(s);
                    if share_first {
                        a[0] = sample_args(0)[0].clone();
                    }
                    if with_ct {
                        a.push(ct_of(s));
                    }
                    a
                };
                for lanes in [4, 8] {
                    let env = Env {
                        lanes,
                        ..Env::default()
                    };
                    for size in [1, 3, 4, 5, 9] {
                        let want: Vec<Option<Value>> = (0..size).map(|s| env.eval(g, &args(s)).ok()).collect();
                        let mut start = 0;
                        while start < size {
                            let m = lanes.min(size - start);
                            let per_lane: Vec<Vec<Value>> = (0..lanes).map(|l| args(start + l.min(m - 1))).collect();
                            let packed: Vec<Value> = (0..g.params.len())
                                .map(|q| {
                                    if flags[q] {
                                        pack(&per_lane.iter().map(|a| a[q].clone()).collect::<Vec<_>>())
                                    } else {
                                        per_lane[0][q].clone()
                                    }
                                })
                                .collect();
                            // A sample the program itself cannot evaluate (an index out of
                            // range) is not compared.
                            if want[start..start + m].iter().any(Option::is_none) {
                                start += m;
                                continue;
                            }
                            let got = env.eval(&k, &packed).unwrap_or_else(|e| {
                                panic!("seed {seed}: the kernel ({lanes} lanes, shared first: {share_first}, reverse: {with_ct}): {e}\n{}", p.source())
                            });
                            for l in 0..m {
                                let w = want[start + l].as_ref().map(bits);
                                assert_eq!(
                                    Some(bits(&lane(&got, l))),
                                    w,
                                    "seed {seed}: sample {} of {size} ({lanes} lanes, shared first: {share_first}, reverse: {with_ct})\n{}",
                                    start + l,
                                    p.source()
                                );
                            }
                            start += m;
                        }
                    }
                }
                any = true;
                shared_runs += usize::from(share_first);
            }
        }
        compared += usize::from(any);
    }
    println!("{compared} programs batched ({shared_runs} runs with a shared parameter), {refused} batchings refused");
    assert!(compared as u64 > cases * 3 / 4, "only {compared} of {cases} batched");
    assert!(shared_runs > 0, "no run with a shared parameter");
}

// ---------------------------------------------------------------------------------------
// Random programs over nalgebra arguments (`lower/tensor.rs`)

/// A matrix of the tensor reference evaluator: rows of columns.
type Mat = Vec<Vec<f64>>;

/// A tensor expression of a random program over nalgebra arguments, with its shape
/// `rows x cols` implied by the generator.
#[derive(Clone, Debug)]
enum TE {
    /// Matrix argument `m{k}`.
    Arg(usize),
    Mul(Box<TE>, Box<TE>),
    Add(Box<TE>, Box<TE>),
    Sub(Box<TE>, Box<TE>),
    /// `s * a` with a float expression `s`.
    Scale(Box<SE>, Box<TE>),
    /// `a / (1.0 + s * s)`.
    Div(Box<TE>, Box<SE>),
    Neg(Box<TE>),
    Transpose(Box<TE>),
    CMul(Box<TE>, Box<TE>),
    /// `a.component_div(&b.map(|x| 1.0 + x * x))`.
    CDiv(Box<TE>, Box<TE>),
    AddScalar(Box<TE>, Box<SE>),
    /// `a.map(|x| f(x))`.
    Map(Box<TE>, F1),
    /// `let mut z = a; z[(0, 0)] = z[(0, 0)] * 0.5;`, then `z`.
    Halve00(Box<TE>),
    /// `from_fn(|i, j| a[(i, j)] * (1.0 + i as f64) - j as f64 * 0.25)`, a `let`.
    FromFn(Box<TE>),
}

/// A float expression of a random tensor program.
#[derive(Clone, Debug)]
enum SE {
    /// The float argument `s`.
    S,
    Lit(f64),
    Dot(Box<TE>, Box<TE>),
    Sum(Box<TE>),
    NormSq(Box<TE>),
    Mul(Box<SE>, Box<SE>),
    Sin(Box<SE>),
}

/// A random program `fn f(s: f64, m0: SMatrix<..>, ..) -> f64 { lets..; result }`.
struct TProg {
    /// The shapes of the matrix arguments.
    args: Vec<(usize, usize)>,
    body: SE,
}

struct TGen {
    rng: Rng,
    args: Vec<(usize, usize)>,
}

impl TGen {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }
    fn dim(&mut self) -> usize {
        1 + self.below(4) as usize
    }
    /// An argument of shape `r x c`: an existing one half of the time, else a new one.
    fn arg(&mut self, r: usize, c: usize) -> TE {
        let same: Vec<usize> = (0..self.args.len()).filter(|&k| self.args[k] == (r, c)).collect();
        if !same.is_empty() && (self.below(2) == 0 || self.args.len() >= 5) {
            return TE::Arg(same[self.below(same.len() as u64) as usize]);
        }
        self.args.push((r, c));
        TE::Arg(self.args.len() - 1)
    }
    fn tensor(&mut self, r: usize, c: usize, depth: u32) -> TE {
        if depth == 0 || (depth < 3 && self.below(5) == 0) {
            return self.arg(r, c);
        }
        let d = depth - 1;
        let b = Box::new;
        let bs = Box::new;
        match self.below(14) {
            0 | 1 => {
                let k = self.dim();
                TE::Mul(b(self.tensor(r, k, d)), b(self.tensor(k, c, d)))
            }
            2 => TE::Add(b(self.tensor(r, c, d)), b(self.tensor(r, c, d))),
            3 => TE::Sub(b(self.tensor(r, c, d)), b(self.tensor(r, c, d))),
            4 => TE::Scale(bs(self.scalar(d)), b(self.tensor(r, c, d))),
            5 => TE::Div(b(self.tensor(r, c, d)), bs(self.scalar(d))),
            6 => TE::Neg(b(self.tensor(r, c, d))),
            7 => TE::Transpose(b(self.tensor(c, r, d))),
            8 => TE::CMul(b(self.tensor(r, c, d)), b(self.tensor(r, c, d))),
            9 => TE::CDiv(b(self.tensor(r, c, d)), b(self.tensor(r, c, d))),
            10 => TE::AddScalar(b(self.tensor(r, c, d)), bs(self.scalar(d))),
            11 => {
                let f = [F1::Sin, F1::Cos, F1::Tanh, F1::Atan][self.below(4) as usize];
                TE::Map(b(self.tensor(r, c, d)), f)
            }
            12 => TE::Halve00(b(self.tensor(r, c, d))),
            _ => TE::FromFn(b(self.tensor(r, c, d))),
        }
    }
    fn scalar(&mut self, depth: u32) -> SE {
        if depth == 0 {
            return if self.below(2) == 0 {
                SE::S
            } else {
                SE::Lit(LITS[self.below(12) as usize])
            };
        }
        let d = depth - 1;
        let (r, c) = (self.dim(), self.dim());
        match self.below(7) {
            0 => SE::S,
            1 | 2 => SE::Dot(Box::new(self.tensor(r, c, d)), Box::new(self.tensor(r, c, d))),
            3 => SE::Sum(Box::new(self.tensor(r, c, d))),
            4 => SE::NormSq(Box::new(self.tensor(r, c, d))),
            5 => SE::Mul(Box::new(self.scalar(d)), Box::new(self.scalar(d))),
            _ => SE::Sin(Box::new(self.scalar(d))),
        }
    }
}

/// A random tensor program: a reduction of a tensor expression at the root, so that the
/// result depends on the matrices; at most 40 inputs.
fn tensor_program(seed: u64) -> TProg {
    let mut rng = Rng::new(seed ^ 0x7e45_0a11);
    loop {
        let mut g = TGen {
            rng: Rng::new(rng.next_u64()),
            args: Vec::new(),
        };
        let (r, c) = (g.dim(), g.dim());
        let t = g.tensor(r, c, 3);
        let body = match g.below(3) {
            0 => SE::Sin(Box::new(SE::Sum(Box::new(TE::Map(Box::new(t), F1::Sin))))),
            1 => SE::Mul(Box::new(SE::NormSq(Box::new(t))), Box::new(SE::S)),
            _ => {
                let u = g.tensor(r, c, 2);
                SE::Sin(Box::new(SE::Dot(Box::new(t), Box::new(u))))
            }
        };
        let n: usize = 1 + g.args.iter().map(|(r, c)| r * c).sum::<usize>();
        if n <= 40 {
            return TProg { args: g.args, body };
        }
    }
}

/// The source text of tensor programs: `let` statements for products, maps, element
/// writes and constructors (so tensors are carried through `let` and `let mut`), the rest
/// inline.
struct TPrinter {
    stmts: String,
    next: usize,
    /// The shapes of the arguments.
    args: Vec<(usize, usize)>,
}

fn nalgebra_ty(r: usize, c: usize) -> String {
    if c == 1 {
        format!("SVector<f64, {r}>")
    } else {
        format!("SMatrix<f64, {r}, {c}>")
    }
}

impl TPrinter {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("t{}", self.next)
    }
    /// The text of `t` and its shape.
    fn tensor(&mut self, t: &TE) -> (String, (usize, usize)) {
        match t {
            TE::Arg(k) => (format!("m{k}"), self.args[*k]),
            TE::Mul(a, b) => {
                let ((a, (r, _)), (b, (_, c))) = (self.tensor(a), self.tensor(b));
                let v = self.fresh();
                let _ = write!(self.stmts, "let {v} = {a} * {b}; ");
                (v, (r, c))
            }
            TE::Add(a, b) | TE::Sub(a, b) | TE::CMul(a, b) | TE::CDiv(a, b) => {
                let ((a, s), (b, _)) = (self.tensor(a), self.tensor(b));
                let e = match t {
                    TE::Add(..) => format!("({a} + {b})"),
                    TE::Sub(..) => format!("({a} - {b})"),
                    TE::CMul(..) => format!("{a}.component_mul(&{b})"),
                    _ => format!("{a}.component_div(&{b}.map(|x| 1.0 + x * x))"),
                };
                (e, s)
            }
            TE::Scale(s, a) => {
                let s = self.scalar(s);
                let (a, sh) = self.tensor(a);
                (format!("({s} * {a})"), sh)
            }
            TE::Div(a, s) => {
                let (a, sh) = self.tensor(a);
                let s = self.scalar(s);
                (format!("({a} / (1.0 + {s} * {s}))"), sh)
            }
            TE::Neg(a) => {
                let (a, sh) = self.tensor(a);
                (format!("(-{a})"), sh)
            }
            TE::Transpose(a) => {
                let (a, (r, c)) = self.tensor(a);
                (format!("{a}.transpose()"), (c, r))
            }
            TE::AddScalar(a, s) => {
                let (a, sh) = self.tensor(a);
                let s = self.scalar(s);
                (format!("{a}.add_scalar({s})"), sh)
            }
            TE::Map(a, f) => {
                let (a, sh) = self.tensor(a);
                let v = self.fresh();
                let _ = write!(self.stmts, "let {v} = {a}.map(|x| x.{}()); ", f.name());
                (v, sh)
            }
            TE::Halve00(a) => {
                let (a, (r, c)) = self.tensor(a);
                let v = self.fresh();
                let at = if c == 1 {
                    format!("{v}[0]")
                } else {
                    format!("{v}[(0, 0)]")
                };
                let _ = write!(self.stmts, "let mut {v} = {a}; {at} = {at} * 0.5; ");
                (v, (r, c))
            }
            TE::FromFn(a) => {
                let (a, (r, c)) = self.tensor(a);
                let v = self.fresh();
                let at = if c == 1 {
                    format!("{v}a[i]")
                } else {
                    format!("{v}a[(i, j)]")
                };
                let ty = if c == 1 {
                    format!("SVector::<f64, {r}>")
                } else {
                    format!("SMatrix::<f64, {r}, {c}>")
                };
                let _ = write!(
                    self.stmts,
                    "let {v}a = {a}; let {v} = {ty}::from_fn(|i, j| {at} * (1.0 + i as f64) - j as f64 * 0.25); "
                );
                (v, (r, c))
            }
        }
    }
    fn scalar(&mut self, s: &SE) -> String {
        match s {
            SE::S => "s".into(),
            SE::Lit(v) => format!("({})", lit_str(*v)),
            SE::Dot(a, b) => {
                let ((a, _), (b, _)) = (self.tensor(a), self.tensor(b));
                format!("{a}.dot(&{b})")
            }
            SE::Sum(a) => format!("{}.sum()", self.tensor(a).0),
            SE::NormSq(a) => format!("{}.norm_squared()", self.tensor(a).0),
            SE::Mul(a, b) => {
                let (a, b) = (self.scalar(a), self.scalar(b));
                format!("({a} * {b})")
            }
            SE::Sin(a) => format!("({}).sin()", self.scalar(a)),
        }
    }
}

impl TProg {
    fn source(&self) -> String {
        let mut p = TPrinter {
            stmts: String::new(),
            next: 0,
            args: self.args.clone(),
        };
        let y = p.scalar(&self.body);
        let params: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(k, (r, c))| format!("m{k}: {}", nalgebra_ty(*r, *c)))
            .collect();
        format!("fn f(s: f64, {}) -> f64 {{ {}{y} }}", params.join(", "), p.stmts)
    }
    fn template(&self) -> Vec<Value> {
        let mut t = vec![Value::F(0.0)];
        t.extend(
            self.args
                .iter()
                .map(|(r, c)| Value::Arr(vec![Value::Arr(vec![Value::F(0.0); *c]); *r])),
        );
        t
    }
    /// The reference value at the flattened inputs (`s`, then each matrix row by row).
    fn reference(&self, x: &[f64]) -> f64 {
        let mut it = x[1..].iter().copied();
        let args: Vec<Mat> = self
            .args
            .iter()
            .map(|(r, c)| {
                (0..*r)
                    .map(|_| (0..*c).map(|_| it.next().unwrap_or(f64::NAN)).collect())
                    .collect()
            })
            .collect();
        s_ref(&self.body, x[0], &args)
    }
}

/// The maps of tensor programs (bounded ones).
fn f1_eval(f: F1, x: f64) -> f64 {
    match f {
        F1::Sin => x.sin(),
        F1::Cos => x.cos(),
        F1::Tanh => x.tanh(),
        F1::Atan => x.atan(),
        F1::Exp => x.exp(),
        F1::Sqrt => x.sqrt(),
        F1::Ln => x.ln(),
    }
}

fn m_each(a: &Mat, f: impl Fn(f64) -> f64) -> Mat {
    a.iter().map(|r| r.iter().map(|x| f(*x)).collect()).collect()
}

fn m_zip(a: &Mat, b: &Mat, f: impl Fn(f64, f64) -> f64) -> Mat {
    a.iter()
        .zip(b)
        .map(|(r, q)| r.iter().zip(q).map(|(x, y)| f(*x, *y)).collect())
        .collect()
}

/// `Σ x` row by row (the lowering's order).
fn m_total(a: &Mat) -> f64 {
    let mut s = 0.0;
    for r in a {
        for x in r {
            s += x;
        }
    }
    s
}

fn t_ref(t: &TE, s: f64, args: &[Mat]) -> Mat {
    match t {
        TE::Arg(k) => args[*k].clone(),
        TE::Mul(a, b) => {
            let (a, b) = (t_ref(a, s, args), t_ref(b, s, args));
            (0..a.len())
                .map(|i| {
                    (0..b[0].len())
                        .map(|j| {
                            let mut acc = a[i][0] * b[0][j];
                            for k in 1..b.len() {
                                acc += a[i][k] * b[k][j];
                            }
                            acc
                        })
                        .collect()
                })
                .collect()
        }
        TE::Add(a, b) => m_zip(&t_ref(a, s, args), &t_ref(b, s, args), |x, y| x + y),
        TE::Sub(a, b) => m_zip(&t_ref(a, s, args), &t_ref(b, s, args), |x, y| x - y),
        TE::CMul(a, b) => m_zip(&t_ref(a, s, args), &t_ref(b, s, args), |x, y| x * y),
        TE::CDiv(a, b) => m_zip(&t_ref(a, s, args), &t_ref(b, s, args), |x, y| x / (1.0 + y * y)),
        TE::Scale(k, a) => {
            let k = s_ref(k, s, args);
            m_each(&t_ref(a, s, args), |x| k * x)
        }
        TE::Div(a, k) => {
            let a = t_ref(a, s, args);
            let k = s_ref(k, s, args);
            m_each(&a, |x| x / (1.0 + k * k))
        }
        TE::Neg(a) => m_each(&t_ref(a, s, args), |x| -x),
        TE::Transpose(a) => {
            let a = t_ref(a, s, args);
            (0..a[0].len()).map(|j| a.iter().map(|r| r[j]).collect()).collect()
        }
        TE::AddScalar(a, k) => {
            let a = t_ref(a, s, args);
            let k = s_ref(k, s, args);
            m_each(&a, |x| x + k)
        }
        TE::Map(a, f) => m_each(&t_ref(a, s, args), |x| f1_eval(*f, x)),
        TE::Halve00(a) => {
            let mut a = t_ref(a, s, args);
            a[0][0] *= 0.5;
            a
        }
        TE::FromFn(a) => t_ref(a, s, args)
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.iter()
                    .enumerate()
                    .map(|(j, x)| x * (1.0 + i as f64) - j as f64 * 0.25)
                    .collect()
            })
            .collect(),
    }
}

fn s_ref(e: &SE, s: f64, args: &[Mat]) -> f64 {
    match e {
        SE::S => s,
        SE::Lit(v) => *v,
        SE::Dot(a, b) => m_total(&m_zip(&t_ref(a, s, args), &t_ref(b, s, args), |x, y| x * y)),
        SE::Sum(a) => m_total(&t_ref(a, s, args)),
        SE::NormSq(a) => m_total(&m_each(&t_ref(a, s, args), |x| x * x)),
        SE::Mul(a, b) => s_ref(a, s, args) * s_ref(b, s, args),
        SE::Sin(a) => s_ref(a, s, args).sin(),
    }
}

/// Random programs of nalgebra operations on matrix arguments of random shapes (products,
/// sums, scalar multiples, transposes, elementwise operations, `map`, element writes into
/// `let mut` copies, `from_fn`, reductions): the interpreted primal against the reference
/// evaluator (the same sums in the same order: 4 ulps), the gradient from `vjp` against
/// central differences, `jvp` against `vjp`, the Hessians of `jvp(vjp)` and `vjp(vjp)`
/// against central differences of the gradient and against each other. Every operation
/// here is smooth (no branches), so every point is checked.
#[test]
fn random_tensor_programs() {
    let cases = env_usize("FLUXION_RANDOM_CASES", 120) as u64 / 2;
    let points = env_usize("FLUXION_RANDOM_POINTS", 2).max(1);
    let first = env_usize("FLUXION_RANDOM_SEED", 0) as u64;
    let verbose = std::env::var("FLUXION_RANDOM_VERBOSE").is_ok_and(|v| v == "1");
    let rules = rules();
    let mut failures = Vec::new();
    let mut inputs = 0;
    for seed in first..first + cases {
        let p = tensor_program(seed);
        let src = p.source();
        if verbose {
            println!("seed {seed}:\n{src}\n");
        }
        let mut check = || -> Result<(), String> {
            let f = lower_source(&src)?;
            let h = Harness::new(&src, f, p.template(), rules);
            let mut rng = Rng::new(seed);
            for _ in 0..points {
                let x: Vec<f64> = (0..h.n_in()).map(|_| rng.uniform(-1.0, 1.0)).collect();
                let (got, want) = (h.primal_flat(&x)?, p.reference(&x));
                if got.len() != 1 || !ulps_close(got[0], want, 4.0, 1.0) {
                    return Err(format!("primal {got:?}, reference {want:e} at {x:?}"));
                }
                let fd = h.fd_jacobian(&x)?;
                let rev = h.jac_rev(&x)?;
                let fwd = h.jac_fwd(&x)?;
                compare(&format!("vjp vs finite differences at {x:?}"), &rev, &fd, fd_close)?;
                let sc = max_abs(&rev);
                compare(&format!("jvp vs vjp at {x:?}"), &fwd, &rev, |a, b| {
                    ulps_close(a, b, CROSS_ULPS, sc)
                })?;
                let fd2 = h.fd_hessian_of_grad(&x)?;
                let hf = h.hess_fwd_rev(&x)?;
                let hr = h.hess_rev_rev(&x)?;
                compare(
                    &format!("jvp(vjp) Hessian vs differences of the gradient at {x:?}"),
                    &hf,
                    &fd2,
                    fd_close,
                )?;
                let sc = max_abs(&hf).max(max_abs(&hr));
                compare(&format!("jvp(vjp) vs vjp(vjp) Hessian at {x:?}"), &hf, &hr, |a, b| {
                    ulps_close(a, b, HESS_ULPS, sc)
                })?;
            }
            inputs += h.n_in();
            Ok(())
        };
        if let Err(e) = check() {
            failures.push(format!("seed {seed}: {e}\n{src}\n"));
        }
    }
    println!(
        "random tensor programs: {cases} checked, {} failed, {inputs} inputs in all",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} random tensor programs failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The tensor program generator is deterministic, uses every operation over the seeds
/// the test checks, and draws shapes other than square ones.
#[test]
fn tensor_generator_covers_the_operations() {
    let srcs: Vec<String> = (0..60).map(|s| tensor_program(s).source()).collect();
    assert_eq!(srcs, (0..60).map(|s| tensor_program(s).source()).collect::<Vec<_>>());
    let all = srcs.join("\n");
    for op in [
        " * m",
        ".transpose()",
        ".component_mul(",
        ".component_div(",
        ".add_scalar(",
        ".map(|x| x.",
        "let mut",
        "::from_fn(",
        ".dot(",
        ".sum()",
        ".norm_squared()",
        "(-",
        " + ",
        " - ",
        " / (1.0 + ",
    ] {
        assert!(all.contains(op), "no program uses `{op}`");
    }
    assert!(
        (0..60).any(|s| tensor_program(s).args.iter().any(|(r, c)| r != c && *c > 1)),
        "no rectangular matrix"
    );
}
