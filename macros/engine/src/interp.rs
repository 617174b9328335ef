//! An interpreter of the IR: evaluates the primal and every transformed function without
//! rustc, so rules and transforms are checked on many inputs in-process.
//!
//! Floats are evaluated as `f64` (an `f32` function is evaluated in `f64`); integer
//! arithmetic in `i128`. Calls to other functions are resolved through [`Env::funcs`],
//! and calls to their companions (`g.jvp`, `g.vjp_jvp`, ..) transform the callee on the fly
//! (once per environment: [`CompanionCache`]), exactly as the macro of the callee would; a
//! batched call (`Call::lanes`, in a `vmap` kernel) runs the callee's lanes companion, built
//! by [`crate::batch::lanes_companion`] from that companion.
//!
//! Lanes (a batched kernel's values) are `Value::L`, one scalar per lane; arrays and tuples
//! of lanes are a structure of lanes, as in generated code. Every operation applies lane by
//! lane with the scalar arithmetic, so a kernel's lane is bit for bit its sample's value.
//!
//! Its errors are `String`s, not [`Diag`](crate::error::Diag)s: they are failures of an
//! evaluation (an index out of bounds, a value of the wrong kind, a missing function) that
//! a test reports, not diagnostics of the user's source, and have no span to carry. A
//! transform failing on a callee is turned into its message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::ir::*;
use crate::rules::RuleTable;

/// A runtime value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A float.
    F(f64),
    /// An integer.
    I(i128),
    /// A boolean.
    B(bool),
    /// An array.
    Arr(Vec<Value>),
    /// A tuple.
    Tup(Vec<Value>),
    /// Lanes of a batched kernel: one scalar (float or boolean) per sample of a chunk.
    L(Vec<Value>),
    /// `()`
    Unit,
    /// A generator (`fluxion::Rng`): how it was made from a seed.
    Rng(RngPath),
}

/// A generator as the interpreter sees it: `Rng::new(seed)` followed by `fold_in(data)`
/// (`sample == false`) and `sample(index)` (`sample == true`) steps. [`Env::draw`] turns it
/// into the runtime's generator to draw from.
#[derive(Clone, Debug, PartialEq)]
pub struct RngPath {
    /// The seed of `Rng::new`.
    pub seed: u64,
    /// The derivations in order: `(is_sample, data)`.
    pub steps: Vec<(bool, u64)>,
}

/// A draw of the runtime's generator: `op` (a draw, never `FoldIn` or `Sample`) at `counter` from the
/// generator `path` describes.
pub type DrawFn = fn(path: &RngPath, op: RngOp, counter: u64) -> f64;

impl Value {
    /// The float, if this is one.
    pub fn f(&self) -> Option<f64> {
        match self {
            Value::F(x) => Some(*x),
            _ => None,
        }
    }
    /// Every float in the value, flattened in index order.
    pub fn flatten(&self, out: &mut Vec<f64>) {
        match self {
            Value::F(x) => out.push(*x),
            Value::Arr(xs) | Value::Tup(xs) | Value::L(xs) => xs.iter().for_each(|x| x.flatten(out)),
            _ => {}
        }
    }
    /// A value of the same shape with its floats taken from `it`.
    pub fn unflatten(&self, it: &mut dyn Iterator<Item = f64>) -> Value {
        match self {
            Value::F(_) => Value::F(it.next().unwrap_or(0.0)),
            Value::Arr(xs) => Value::Arr(xs.iter().map(|x| x.unflatten(it)).collect()),
            Value::Tup(xs) => Value::Tup(xs.iter().map(|x| x.unflatten(it)).collect()),
            other => other.clone(),
        }
    }
    /// The zero tangent of this value's shape (`()` for integers and booleans).
    pub fn zero_tangent(&self) -> Value {
        match self {
            Value::F(_) => Value::F(0.0),
            Value::Arr(xs) => Value::Arr(xs.iter().map(Value::zero_tangent).collect()),
            Value::Tup(xs) => Value::Tup(xs.iter().map(Value::zero_tangent).collect()),
            Value::L(xs) => Value::L(xs.iter().map(Value::zero_tangent).collect()),
            _ => Value::Unit,
        }
    }
    fn index(&self, i: i128) -> Result<&Value, String> {
        match self {
            Value::Arr(xs) => xs
                .get(usize::try_from(i).map_err(|_| "negative index")?)
                .ok_or_else(|| format!("index {i} out of bounds")),
            _ => Err("indexing a value that is not an array".into()),
        }
    }
}

fn add(a: &Value, b: &Value, sign: f64) -> Result<Value, String> {
    Ok(match (a, b) {
        (Value::F(x), Value::F(y)) => Value::F(x + sign * y),
        // `Zeros(Unknown)` evaluates to a scalar zero (splatted in a batched kernel): it takes
        // the shape of what is added.
        (z, b @ (Value::Arr(_) | Value::Tup(_))) if is_zero_placeholder(z) => add(&b.zero_tangent(), b, sign)?,
        (a @ (Value::Arr(_) | Value::Tup(_)), z) if is_zero_placeholder(z) => add(a, &a.zero_tangent(), sign)?,
        (Value::Arr(x), Value::Arr(y)) | (Value::Tup(x), Value::Tup(y)) | (Value::L(x), Value::L(y))
            if x.len() == y.len() =>
        {
            let v: Result<Vec<Value>, String> = x.iter().zip(y).map(|(p, q)| add(p, q, sign)).collect();
            match a {
                Value::Arr(_) => Value::Arr(v?),
                Value::Tup(_) => Value::Tup(v?),
                _ => Value::L(v?),
            }
        }
        (Value::Unit, Value::Unit) => Value::Unit,
        (Value::I(x), Value::I(y)) => Value::I(if sign > 0.0 { x + y } else { x - y }),
        _ => return Err(format!("cannot add {a:?} and {b:?}")),
    })
}

/// A zero of a type only rustc knows (`Zeros(Unknown)`), or its lanes: a scalar zero that
/// takes the shape of the value it meets.
fn is_zero_placeholder(v: &Value) -> bool {
    match v {
        Value::F(z) => *z == 0.0,
        Value::L(zs) => zs.iter().all(|z| matches!(z, Value::F(z) if *z == 0.0)),
        _ => false,
    }
}

/// What evaluation needs besides the arguments.
#[derive(Clone)]
pub struct Env {
    /// Values of constants and const generics by path (`N`, `EPS`).
    pub consts: HashMap<String, Value>,
    /// Callable functions by name.
    pub funcs: HashMap<String, Func>,
    /// The rules used to build companions of called functions.
    pub rules: RuleTable,
    /// The lane count of batched kernels (`Splat`, zeros of lanes).
    pub lanes: usize,
    /// The companions built for calls so far (see [`CompanionCache`]).
    pub built: CompanionCache,
    /// Random draws (`rng.uniform(k)`): the runtime's generator, which this crate does not
    /// link (tests pass `fluxion_runtime::Rng`'s); a draw without it is an error.
    pub draw: Option<DrawFn>,
}

/// The companions an environment has built for calls, by callee, modes and lanes: each is
/// built once (transforming the callee at every call would dominate a long run). An entry
/// is used only for the same callee as it was built from; the rule table is not compared,
/// so set [`Env::rules`] before evaluating calls. A clone of an environment starts empty.
#[derive(Default)]
pub struct CompanionCache(RefCell<CompanionMap>);

type CompanionMap = HashMap<(String, Vec<Mode>, bool), Vec<(Func, Rc<Func>)>>;

impl Clone for CompanionCache {
    fn clone(&self) -> Self {
        CompanionCache::default()
    }
}

impl Default for Env {
    fn default() -> Self {
        Env {
            consts: HashMap::new(),
            funcs: HashMap::new(),
            rules: RuleTable::standard(),
            lanes: 4,
            built: CompanionCache::default(),
            draw: None,
        }
    }
}

/// Applies `f` lane by lane where an operand holds lanes (a batched kernel's values): lane
/// `k` of the result is `f` of lane `k` of each lanes operand and the shared operands as
/// they are; without lanes, `f` of the operands.
fn lanewise(xs: &[Value], f: &mut dyn FnMut(&[Value]) -> Result<Value, String>) -> Result<Value, String> {
    let n = xs.iter().find_map(|x| match x {
        Value::L(l) => Some(l.len()),
        _ => None,
    });
    let Some(n) = n else { return f(xs) };
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let lane: Vec<Value> = xs
            .iter()
            .map(|x| match x {
                Value::L(l) => l.get(k).cloned().ok_or_else(|| format!("lane {k} of {n} missing")),
                other => Ok(other.clone()),
            })
            .collect::<Result<_, _>>()?;
        out.push(f(&lane)?);
    }
    Ok(Value::L(out))
}

/// `x` in every one of `lanes` lanes, as the runtime's `Spread`: a float splatted, arrays
/// and tuples element by element (a structure of lanes), integers, booleans and `()`
/// unchanged (the same for the whole batch).
fn spread(x: &Value, lanes: usize) -> Result<Value, String> {
    Ok(match x {
        Value::F(_) => Value::L(vec![x.clone(); lanes]),
        Value::Arr(xs) => Value::Arr(xs.iter().map(|x| spread(x, lanes)).collect::<Result<_, _>>()?),
        Value::Tup(xs) => Value::Tup(xs.iter().map(|x| spread(x, lanes)).collect::<Result<_, _>>()?),
        Value::I(_) | Value::B(_) | Value::Unit | Value::Rng(_) => x.clone(),
        Value::L(_) => return Err(format!("spread of lanes {x:?}")),
    })
}

/// Lane `k` of the result from `a` where lane `k` of the mask `m` is set, from `b`
/// elsewhere, element by element through arrays and tuples of lanes; shared values (the
/// integers of a spread structure) are the same on both sides.
fn select_lanes(m: &[Value], a: &Value, b: &Value) -> Result<Value, String> {
    Ok(match (a, b) {
        // A zero of a type only rustc knows, against a structure: a zero of its shape.
        (s @ (Value::Arr(_) | Value::Tup(_)), z) if is_zero_placeholder(z) => select_lanes(m, s, &s.zero_tangent())?,
        (z, s @ (Value::Arr(_) | Value::Tup(_))) if is_zero_placeholder(z) => select_lanes(m, &s.zero_tangent(), s)?,
        (Value::Arr(x), Value::Arr(y)) | (Value::Tup(x), Value::Tup(y)) if x.len() == y.len() => {
            let v = x
                .iter()
                .zip(y)
                .map(|(p, q)| select_lanes(m, p, q))
                .collect::<Result<_, _>>()?;
            if matches!(a, Value::Arr(_)) {
                Value::Arr(v)
            } else {
                Value::Tup(v)
            }
        }
        (Value::I(_) | Value::Unit, _) if a == b => a.clone(),
        _ => lanewise(&[Value::L(m.to_vec()), a.clone(), b.clone()], &mut |x| match &x[0] {
            Value::B(true) => Ok(x[1].clone()),
            Value::B(false) => Ok(x[2].clone()),
            other => Err(format!("select on {other:?}")),
        })?,
    })
}

impl Env {
    /// Evaluates a constant expression.
    pub fn cexpr(&self, c: &CExpr) -> Result<i128, String> {
        Ok(match c {
            CExpr::Lit(v) => *v,
            CExpr::Path(p) => match self.consts.get(p) {
                Some(Value::I(v)) => *v,
                _ => return Err(format!("no integer constant `{p}` in the interpreter's environment")),
            },
            CExpr::AsUsize(a) => self.cexpr(a)?,
            CExpr::Lift(..) => return Err(format!("`{c}` is not an integer constant")),
            CExpr::Bin(op, a, b) => {
                let (a, b) = (self.cexpr(a)?, self.cexpr(b)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' if b != 0 => a / b,
                    '%' if b != 0 => a % b,
                    _ => return Err("bad constant expression".into()),
                }
            }
        })
    }

    fn constant(&self, p: &CExpr) -> Result<Value, String> {
        if let CExpr::Lift(a, _) = p {
            return match self.constant(a)? {
                Value::I(v) => Ok(Value::F(v as f64)),
                v => Ok(v),
            };
        }
        if let CExpr::Path(s) = p {
            if let Some(v) = self.consts.get(s) {
                return Ok(v.clone());
            }
            let last = s.rsplit("::").next().unwrap_or(s);
            use std::f64::consts as c;
            let known = match last {
                "PI" => Some(c::PI),
                "E" => Some(c::E),
                "TAU" => Some(c::TAU),
                "LN_2" => Some(c::LN_2),
                "LN_10" => Some(c::LN_10),
                "SQRT_2" => Some(c::SQRT_2),
                "FRAC_PI_2" => Some(c::FRAC_PI_2),
                "FRAC_PI_4" => Some(c::FRAC_PI_4),
                "FRAC_1_SQRT_2" => Some(c::FRAC_1_SQRT_2),
                "EPSILON" => Some(f64::EPSILON),
                "INFINITY" => Some(f64::INFINITY),
                "NEG_INFINITY" => Some(f64::NEG_INFINITY),
                "NAN" => Some(f64::NAN),
                "MAX" => Some(f64::MAX),
                "MIN_POSITIVE" => Some(f64::MIN_POSITIVE),
                _ => None,
            };
            if let Some(v) = known {
                return Ok(Value::F(v));
            }
        }
        Ok(Value::I(self.cexpr(p)?))
    }

    fn zeros(&self, t: &Ty) -> Result<Value, String> {
        Ok(match t {
            Ty::Float(_) | Ty::Unknown => Value::F(0.0),
            Ty::Int(_) => Value::I(0),
            Ty::Bool => Value::B(false),
            Ty::Unit => Value::Unit,
            Ty::Rng => Value::Rng(RngPath { seed: 0, steps: vec![] }),
            Ty::Array(e, n) => {
                let n = self.cexpr(n)?;
                let z = self.zeros(e)?;
                Value::Arr(vec![z; usize::try_from(n).map_err(|_| "negative length")?])
            }
            // A matrix is its rows, each its columns: `m[(i, j)]` indexes twice.
            Ty::Matrix { elem, rows, cols } => {
                let (Some(r), Some(c)) = (rows.static_len(), cols.static_len()) else {
                    return Err(format!("no zero of `{t}` without a value to take its size from"));
                };
                let row = self.zeros(&Ty::Array(elem.clone(), c.clone()))?;
                let r = usize::try_from(self.cexpr(r)?).map_err(|_| "negative length")?;
                Value::Arr(vec![row; r])
            }
            Ty::Tuple(ts) => Value::Tup(ts.iter().map(|t| self.zeros(t)).collect::<Result<_, _>>()?),
            // An empty `Vec` (a growing tape): a slice's zero of its length is `ZeroLike`.
            Ty::Slice(_) => Value::Arr(Vec::new()),
            Ty::Lanes(e) => Value::L(vec![self.zeros(e)?; self.lanes]),
            Ty::Tape(t) => self.zeros(t)?,
        })
    }

    /// The function a call `c` of `callee` runs: the callee's companion for `c.modes`,
    /// and for a batched call (`c.lanes`) its lanes companion (`lanes`, `jvp_lanes`, ..),
    /// built from the scalar companion as the callee's macro builds it.
    fn built_companion(&self, callee: &Func, c: &Call) -> Result<Rc<Func>, String> {
        let key = (c.name.clone(), c.modes.clone(), c.lanes);
        let found = self
            .built
            .0
            .borrow()
            .get(&key)
            .and_then(|v| v.iter().find(|(g, _)| g == callee).map(|(_, f)| f.clone()));
        if let Some(f) = found {
            return Ok(f);
        }
        let mut f = companion(callee, &c.modes, &self.rules).map_err(|d| d.msg)?;
        if c.lanes {
            f = crate::batch::lanes_companion(&f)
                .map_err(|d| format!("no lanes companion of `{}`: {}", c.name, d.msg))?
                .0;
        }
        let f = Rc::new(f);
        self.built
            .0
            .borrow_mut()
            .entry(key)
            .or_default()
            .push((callee.clone(), f.clone()));
        Ok(f)
    }

    /// Evaluates `f` at `args`.
    pub fn eval(&self, f: &Func, args: &[Value]) -> Result<Value, String> {
        self.eval_in_place(f, args).map(|(r, _)| r)
    }

    /// Evaluates `f` at `args`, and gives the final value of each parameter as well: the
    /// `&mut` parameters (the accumulators of a `vjp_bwd_acc` companion) are results.
    pub fn eval_in_place(&self, f: &Func, args: &[Value]) -> Result<(Value, Vec<Value>), String> {
        if args.len() != f.params.len() {
            return Err(format!(
                "`{}` takes {} arguments, got {}",
                f.name,
                f.params.len(),
                args.len()
            ));
        }
        let mut m = Machine {
            env: self,
            f,
            vars: vec![None; f.vars.len()],
        };
        for (p, a) in f.params.iter().zip(args) {
            m.vars[p.var] = Some(a.clone());
        }
        m.block(&f.body)?;
        let params = f
            .params
            .iter()
            .map(|p| m.operand(&Operand::Var(p.var)))
            .collect::<Result<_, _>>()?;
        Ok((m.operand(&f.ret)?, params))
    }
}

struct Machine<'a> {
    env: &'a Env,
    f: &'a Func,
    vars: Vec<Option<Value>>,
}

fn int(v: &Value) -> Result<i128, String> {
    match v {
        Value::I(i) => Ok(*i),
        Value::F(x) if x.fract() == 0.0 => Ok(*x as i128),
        other => Err(format!("expected an integer, got {other:?}")),
    }
}
fn fl(v: &Value) -> Result<f64, String> {
    match v {
        Value::F(x) => Ok(*x),
        Value::I(i) => Ok(*i as f64),
        other => Err(format!("expected a float, got {other:?}")),
    }
}

/// Evaluates one primitive on float operands (integers for `powi`'s exponent).
pub fn eval_prim(p: Prim, xs: &[Value]) -> Result<Value, String> {
    use Prim::*;
    if let (Add | Sub | Mul | Div | Rem | Neg, true) = (p, xs.iter().all(|x| matches!(x, Value::I(_)))) {
        let a = int(&xs[0])?;
        return Ok(Value::I(match p {
            Neg => -a,
            Add => a + int(&xs[1])?,
            Sub => a - int(&xs[1])?,
            Mul => a * int(&xs[1])?,
            Div => a.checked_div(int(&xs[1])?).ok_or("division by zero")?,
            _ => a.checked_rem(int(&xs[1])?).ok_or("division by zero")?,
        }));
    }
    if xs.len() != p.arity() {
        return Err(format!("{p:?} takes {} operands, got {}", p.arity(), xs.len()));
    }
    if p == Powi && i32::try_from(int(&xs[1])?).is_err() {
        return Err("powi exponent out of range".into());
    }
    let x = xs.iter().map(fl).collect::<Result<Vec<f64>, String>>()?;
    Ok(Value::F(p.eval(&x)))
}

impl Machine<'_> {
    fn operand(&self, o: &Operand) -> Result<Value, String> {
        Ok(match o {
            Operand::Var(v) => self.vars[*v]
                .clone()
                .ok_or_else(|| format!("`{}` read before it was set", self.f.vars[*v].name))?,
            Operand::Float(l) => Value::F(l.value),
            Operand::Int(i) => Value::I(*i),
            Operand::Bool(b) => Value::B(*b),
            Operand::Const(c) => self.env.constant(c)?,
            Operand::Unit => Value::Unit,
        })
    }

    fn block(&mut self, b: &Block) -> Result<(), String> {
        for s in &b.0 {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), String> {
        match s {
            Stmt::Let(v, e) => {
                let x = self.expr(e)?;
                self.vars[*v] = Some(x);
            }
            Stmt::Mut(v, e) => {
                let x = match e {
                    Some(e) => self.expr(e)?,
                    None => Value::Unit,
                };
                self.vars[*v] = Some(x);
            }
            Stmt::Assign(p, op, val) => {
                let val = self.operand(val)?;
                let idx: Vec<i128> = p
                    .idx
                    .iter()
                    .map(|i| self.operand(i).and_then(|v| int(&v)))
                    .collect::<Result<_, _>>()?;
                let growing = self.f.vars[p.var].storage == Storage::Growing;
                let slot = self.vars[p.var]
                    .as_mut()
                    .ok_or("assignment to an undeclared variable")?;
                // A growing tape is written at its length: a push.
                if let (true, AssignOp::Set, [k], Value::Arr(xs)) = (growing, op, &idx[..], &mut *slot) {
                    if usize::try_from(*k).ok() != Some(xs.len()) {
                        return Err(format!("growing tape written at {k}, its length is {}", xs.len()));
                    }
                    xs.push(val);
                    return Ok(());
                }
                let mut cur = slot;
                for i in idx {
                    cur = match cur {
                        Value::Arr(xs) => xs
                            .get_mut(usize::try_from(i).map_err(|_| "negative index")?)
                            .ok_or("index out of bounds")?,
                        _ => return Err("indexing a value that is not an array".into()),
                    };
                }
                *cur = match op {
                    AssignOp::Set => val,
                    AssignOp::Add => add(cur, &val, 1.0)?,
                    AssignOp::Sub => add(cur, &val, -1.0)?,
                };
            }
            Stmt::For(l) => {
                let lo = int(&self.operand(&l.lo)?)?;
                let hi = int(&self.operand(&l.hi)?)?;
                let run = |m: &mut Machine, i: i128| -> Result<(), String> {
                    m.vars[l.var] = Some(Value::I(i));
                    m.block(&l.body)
                };
                if l.rev {
                    for i in (lo..hi).rev() {
                        run(self, i)?;
                    }
                } else {
                    for i in lo..hi {
                        run(self, i)?;
                    }
                }
            }
            Stmt::If(c, t, e) => match self.operand(c)? {
                Value::B(true) => self.block(t)?,
                Value::B(false) => self.block(e)?,
                other => return Err(format!("`if` on {other:?}")),
            },
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, String> {
        let op = |o: &Operand| self.operand(o);
        Ok(match e {
            Expr::Use(a) | Expr::StopGrad(a) | Expr::Deref(a) => op(a)?,
            Expr::Rng(o, r, k) => {
                let k = u64::try_from(int(&op(k)?)?).map_err(|_| "a negative counter")?;
                let draw = self.env.draw;
                lanewise(&[op(r)?], &mut |x| match (&x[0], o) {
                    (Value::Rng(p), RngOp::FoldIn | RngOp::Sample) => {
                        let mut p = p.clone();
                        p.steps.push((*o == RngOp::Sample, k));
                        Ok(Value::Rng(p))
                    }
                    (Value::Rng(p), _) => match draw {
                        Some(d) => Ok(Value::F(d(p, *o, k))),
                        None => Err("a draw, but the environment has no generator (`Env::draw`)".into()),
                    },
                    (other, _) => Err(format!("a draw from {other:?}")),
                })?
            }
            Expr::IntAsFloat(n, _) => lanewise(&[op(n)?], &mut |x| Ok(Value::F(fl(&x[0])?)))?,
            Expr::Prim(p, xs) => {
                let vals: Vec<Value> = xs.iter().map(op).collect::<Result<_, _>>()?;
                lanewise(&vals, &mut |x| eval_prim(*p, x))?
            }
            Expr::UnitLane(l) => {
                let l = int(&op(l)?)?;
                Value::L(
                    (0..self.env.lanes)
                        .map(|q| Value::F(if q as i128 == l { 1.0 } else { 0.0 }))
                        .collect(),
                )
            }
            Expr::Lane(a, l) => {
                let l = usize::try_from(int(&op(l)?)?).map_err(|_| "negative lane")?;
                match op(a)? {
                    Value::L(xs) => xs.get(l).cloned().ok_or_else(|| format!("lane {l} of {}", xs.len()))?,
                    other => return Err(format!("lane of {other:?}")),
                }
            }
            // A value only rustc types (a call's result) is spread as the runtime's `Spread`:
            // floats into every lane, arrays and tuples element by element, integers,
            // booleans and `()` unchanged. A float or boolean is splatted (a lane mask).
            Expr::Splat(a) => {
                let x = op(a)?;
                match (&x, self.f.ty_of(a)) {
                    (_, Ty::Unknown) | (Value::Arr(_) | Value::Tup(_), _) => spread(&x, self.env.lanes)?,
                    (Value::F(_) | Value::B(_) | Value::Rng(_), _) => Value::L(vec![x; self.env.lanes]),
                    _ => return Err(format!("splat of {x:?}")),
                }
            }
            Expr::Index(v, idx) => {
                let mut cur = self.vars[*v].clone().ok_or("index of an unset variable")?;
                for i in idx {
                    let i = int(&op(i)?)?;
                    cur = cur.index(i)?.clone();
                }
                cur
            }
            Expr::Array(xs) => Value::Arr(xs.iter().map(op).collect::<Result<_, _>>()?),
            Expr::Repeat(a, n) => {
                let a = op(a)?;
                Value::Arr(vec![
                    a;
                    usize::try_from(self.env.cexpr(n)?)
                        .map_err(|_| "negative length")?
                ])
            }
            Expr::Zeros(t) => self.env.zeros(t)?,
            Expr::Len(a) => match op(a)? {
                Value::Arr(xs) => Value::I(xs.len() as i128),
                other => return Err(format!("len of {other:?}")),
            },
            Expr::ZeroLike(a) => op(a)?.zero_tangent(),
            Expr::Tuple(xs) => Value::Tup(xs.iter().map(op).collect::<Result<_, _>>()?),
            Expr::Residuals(a) => match op(a)? {
                Value::Tup(xs) => xs.get(1).cloned().ok_or("a split call's result has no residuals")?,
                other => return Err(format!("residuals of {other:?}")),
            },
            Expr::Field(a, k) => match op(a)? {
                Value::Tup(xs) => xs.get(*k).cloned().ok_or("tuple field out of range")?,
                other => return Err(format!("field of {other:?}")),
            },
            Expr::Call(c) => self.call(c)?,
            Expr::CastLike(a, like) => {
                let f32_like = matches!(self.f.ty_of(like).float_ty(), Some(FloatTy::F32));
                lanewise(&[op(a)?], &mut |x| {
                    let v = fl(&x[0])?;
                    Ok(Value::F(if f32_like { v as f32 as f64 } else { v }))
                })?
            }
            Expr::Cast(a, t) => {
                let t = match t {
                    Ty::Lanes(e) => e,
                    t => t,
                };
                lanewise(&[op(a)?], &mut |x| {
                    let v = x[0].clone();
                    Ok(match (t, &v) {
                        (Ty::Float(Some(FloatTy::F32)), _) => Value::F(fl(&v)? as f32 as f64),
                        (Ty::Float(_), _) => Value::F(fl(&v)?),
                        (Ty::Int(_), Value::F(x)) => Value::I(*x as i128),
                        (Ty::Int(_), _) => Value::I(int(&v)?),
                        _ => v,
                    })
                })?
            }
            Expr::Cmp(c, a, b) => lanewise(&[op(a)?, op(b)?], &mut |x| {
                let ord = match (&x[0], &x[1]) {
                    (Value::I(p), Value::I(q)) => p.partial_cmp(q),
                    (a, b) => fl(a)?.partial_cmp(&fl(b)?),
                };
                use std::cmp::Ordering::*;
                Ok(Value::B(match c {
                    CmpOp::Lt => ord == Some(Less),
                    CmpOp::Le => matches!(ord, Some(Less | Equal)),
                    CmpOp::Gt => ord == Some(Greater),
                    CmpOp::Ge => matches!(ord, Some(Greater | Equal)),
                    CmpOp::Eq => ord == Some(Equal),
                    CmpOp::Ne => ord != Some(Equal),
                }))
            })?,
            Expr::Bool(o, a, b) => lanewise(&[op(a)?, op(b)?], &mut |x| match (&x[0], &x[1]) {
                (Value::B(p), Value::B(q)) => Ok(Value::B(match o {
                    BoolOp::And => *p && *q,
                    BoolOp::Or => *p || *q,
                })),
                _ => Err("boolean operator on non-booleans".into()),
            })?,
            Expr::Not(a) => lanewise(&[op(a)?], &mut |x| match &x[0] {
                Value::B(p) => Ok(Value::B(!p)),
                _ => Err("`!` on a non-boolean".into()),
            })?,
            Expr::Sum(a) => match op(a)? {
                // `impl Sum for f64` folds from -0.0.
                Value::Arr(xs) if xs.iter().all(|x| matches!(x, Value::F(_))) => {
                    Value::F(xs.iter().map(fl).try_fold(-0.0, |acc, x| x.map(|x| acc + x))?)
                }
                // Arrays of arrays (the adjoint of a nested repeat): elementwise.
                Value::Arr(xs) => match xs.split_first() {
                    Some((first, rest)) => rest.iter().try_fold(first.clone(), |acc, x| add(&acc, x, 1.0))?,
                    None => Value::F(0.0),
                },
                other => return Err(format!("sum of {other:?}")),
            },
            Expr::Broadcast(like, v) => match op(like)? {
                Value::Arr(xs) => Value::Arr(vec![op(v)?; xs.len()]),
                other => return Err(format!("broadcast like {other:?}")),
            },
            Expr::Select(c, a, b) => match op(c)? {
                Value::B(true) => op(a)?,
                Value::B(false) => op(b)?,
                // A lane mask: each lane from its side (element by element for the
                // structure of lanes of a call's result: the runtime's `select_lanes`).
                Value::L(m) => select_lanes(&m, &op(a)?, &op(b)?)?,
                other => return Err(format!("select on {other:?}")),
            },
        })
    }

    fn call(&mut self, c: &Call) -> Result<Value, String> {
        let args: Vec<Value> = c.args.iter().map(|a| self.operand(&a.op)).collect::<Result<_, _>>()?;
        if c.is_clone() {
            return args.into_iter().next().ok_or_else(|| "a clone of nothing".to_string());
        }
        let callee = self
            .env
            .funcs
            .get(&c.name)
            .ok_or_else(|| format!("no function `{}` in the interpreter's environment", c.name))?;
        let f = self.env.built_companion(callee, c)?;
        let (r, after) = self.env.eval_in_place(&f, &args)?;
        // `&mut x_bar` arguments: the callee's final values are the caller's.
        for (a, v) in c.args.iter().zip(after) {
            if let (true, Some(w)) = (a.by_mut, a.op.var()) {
                self.vars[w] = Some(v);
            }
        }
        Ok(r)
    }
}

pub use crate::transforms::companion;
