//! The rule table: one declaration per primitive (`prims!` below), read by forward and
//! reverse mode alike, and by everything else that knows about primitives.
//!
//! A row gives the partial derivatives of the primitive as IR builders (so every rule's
//! output is made of primitives that have rules: the IR is closed under the transforms),
//! its sampling domain and its conventions at non-differentiable points. Forward mode
//! forms `ẏ = Σ ∂ᵢ · ẋᵢ`, reverse mode `x̄ᵢ += ∂ᵢ · ȳ`, from the same partials.
//!
//! Conventions at non-differentiable points (tested exactly, see `tests/rules.rs`):
//! - `abs'(0) = 0`; `signum' = 0` everywhere;
//! - `max`/`min` ties split the derivative evenly (`0.5`, as JAX and PyTorch do);
//!   a NaN operand gets `0` and the other operand `1` (as `f64::max` returns it);
//! - `sqrt'(±0) = +inf`, `cbrt'(±0) = +inf`, `ln'(±0) = log2'(±0) = log10'(±0) = +inf`
//!   (JAX gives `-inf` at `-0.0`: see the rows);
//! - `hypot'` at `(0, 0)` is `(0, 0)` (like `norm'(0) = 0`), and stays finite where
//!   `x*x + y*y` overflows (JAX gets `(3e200, 4e200)` wrong; the edge is checked at
//!   `(3, 4) * 2^600`, where `hypot` is exact and `x*x` overflows);
//! - `powf`: `∂/∂y x^y` at `x == 0` is `0` for every `y` (jax#14397: not `0 * ln 0 = NaN`;
//!   and for `y < 0` not JAX's `inf * ln 1 = NaN`); `∂/∂x x^y` at `x == 0` is the limit
//!   `y 0^(y-1)`: `0` for `y > 1`, `-inf` for `y < 0`;
//!   `∂/∂x x^0 = 0` and `powi(x, 0)' = 0` at `x == 0` (not `0 * inf`);
//! - `atan2'` at `(0, 0)` is NaN, as in JAX;
//! - steps (`signum trunc floor ceil round round_ties_even div_euclid`) have derivative 0;
//!   `%`, `rem_euclid` and `fract` take the one-sided derivative at their jumps (from the
//!   side where the step is constant at its value); `clamp` has the derivative of the
//!   operand it returns (`x` itself at the bounds); `copysign'(±0, s) = 0` (as `abs`);
//! - `asinh'` stays finite where `x*x + 1` overflows; `acosh'(1) = atanh'(±1) = +inf`.

use std::collections::BTreeMap;
use std::f64::consts::{LN_10, LN_2};
use std::sync::Arc;

use crate::builder::Builder;
use crate::ir::*;

/// How a partial derivative multiplies a tangent or cotangent.
#[derive(Clone, Debug, PartialEq)]
pub enum Partial {
    /// `∂ · v`
    Mul(Operand),
    /// `v / d` (more accurate and cheaper than `v * (1/d)`).
    Div(Operand),
    /// `k · ∂` for a literal `k`: a cotangent is scaled first, `(v · k) · ∂`, so that a
    /// constant cotangent (the seed of a gradient times the constants on its way) folds
    /// with `k` at compile time; a tangent is multiplied as `(k · ∂) · v`.
    Scaled(Operand, Operand),
}

/// Builds the partials of a primitive: operands, the primitive's output, and one entry per
/// operand (`None`: structurally zero).
pub type PartialsFn = dyn Fn(&mut Builder, &[Operand], &Operand) -> Vec<Option<Partial>> + Send + Sync;

/// A documented edge point of a primitive: inputs and the exact partials there.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Operand values.
    pub at: Vec<f64>,
    /// Expected partial derivatives (NaN means "is NaN").
    pub partials: Vec<f64>,
}

/// A row of the rule table.
#[derive(Clone)]
pub struct Rule {
    /// The primitive.
    pub prim: Prim,
    /// The partials builder.
    pub partials: Arc<PartialsFn>,
    /// Per operand, a range of ordinary points where the primitive is smooth.
    pub domain: Vec<(f64, f64)>,
    /// Documented behaviour at non-differentiable or limiting points.
    pub edges: Vec<Edge>,
    /// Derivative identically zero (step functions): nothing to propagate.
    pub zero_derivative: bool,
}

/// The table every transform reads. A value, so tests can hand the checks a mutated one.
#[derive(Clone)]
pub struct RuleTable {
    rows: BTreeMap<Prim, Rule>,
}

/// Seeded defects a test can apply to one rule to show the checks catch it.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    /// Every partial multiplied by this factor.
    Scale(f64),
    /// Every partial negated.
    FlipSign,
    /// The partial for operand `k` dropped.
    DropTerm(usize),
}

fn m(o: Operand) -> Option<Partial> {
    Some(Partial::Mul(o))
}
fn d(o: Operand) -> Option<Partial> {
    Some(Partial::Div(o))
}

fn edge(at: &[f64], partials: &[f64]) -> Edge {
    Edge {
        at: at.to_vec(),
        partials: partials.to_vec(),
    }
}

/// `1 - x*x` style helper: `c - a*b`.
fn c_minus(b: &mut Builder, c: f64, x: Operand, y: Operand) -> Operand {
    let p = b.mul(x, y);
    let c = b.lit(c);
    b.sub(c, p)
}
fn c_plus(b: &mut Builder, c: f64, x: Operand, y: Operand) -> Operand {
    let p = b.mul(x, y);
    let c = b.lit(c);
    b.add(c, p)
}
/// `x + 0.0`: the same value except `-0.0 + 0.0 = +0.0`, so a denominator made of it
/// gives `+inf`, not `-inf`, at a negative zero. (The builder never folds `x + 0`.)
fn plus_zero(b: &mut Builder, x: Operand) -> Operand {
    let z = b.lit(0.0);
    b.add(x, z)
}
/// `select(h == 0, 1, h)`: a denominator that is safe at the origin.
fn safe_denominator(b: &mut Builder, h: Operand) -> Operand {
    let z = b.lit(0.0);
    let c = b.cmp(CmpOp::Eq, h.clone(), z);
    let one = b.lit(1.0);
    b.select(c, one, h)
}

const R: (f64, f64) = (-3.0, 3.0);
const POS: (f64, f64) = (0.1, 4.0);
const UNIT: (f64, f64) = (-0.9, 0.9);
const INF: f64 = f64::INFINITY;
/// 2^600, a power of two: scaling by it is exact, and its square overflows.
const TWO_600: f64 = 4.149515568880993e180;

/// How a primitive is written in Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// `x.sin()`, `x.atan2(y)`: a float method (the user writes it so).
    Method(&'static str),
    /// `a + b`.
    Infix(&'static str),
    /// `-a`.
    Prefix(&'static str),
    /// `::fluxion::__private::sign0(a)`: a runtime helper (internal to derivative rules).
    Runtime(&'static str),
}

/// What a row's derivative is, as JAX's `ad.py` sorts primitives. Reverse mode of a linear
/// or bilinear row transposes its forward rule; on scalars that is multiplying by the same
/// partials, so every row below gives partials. (Rows on tensors will give their own
/// forward rule and transpose: `W * x` needs `W^T * ȳ` and `ȳ * x^T`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Linear in its operands (`-a`, `a + b`).
    Linear,
    /// Linear in each operand separately (`a * b`).
    Bilinear,
    /// Elementwise with partial derivatives (`sin`, `a / b`).
    Elementwise,
    /// Derivative identically zero: step functions and the rules' own helpers.
    ZeroDerivative,
}

/// Declares every primitive once: its variant, Rust spelling, arity, integer operands
/// (never differentiated), cost weight, value, kind, sampling domain, documented edges and
/// partial derivatives. Everything the engine knows about a primitive is generated from
/// its entry here: the `Prim` enum, `arity`, `method`, `ALL`, `cost`, `eval`, the
/// supported-methods list of error messages, activity (integer operands, zero rows) and
/// the rule table's row.
macro_rules! prims {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident {
            spell: $spell:expr,
            arity: $arity:literal,
            ints: [$($int:literal),*],
            cost: $cost:literal,
            eval: |$ex:ident| $eval:expr,
            kind: $kind:ident,
            domain: [$($dom:expr),*],
            edges: [$($edge:expr),*],
            partials: |$b:ident, $x:ident, $y:ident| $body:expr $(,)?
        }
    )*) => {
        /// The primitives with derivative rules.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Prim {
            $($(#[doc = $doc])* $name,)*
        }

        impl Prim {
            /// Every primitive.
            pub const ALL: [Prim; [$(stringify!($name)),*].len()] = [$(Prim::$name),*];
            /// Number of operands.
            pub fn arity(self) -> usize {
                match self {
                    $(Prim::$name => $arity,)*
                }
            }
            /// How it is written in Rust.
            pub fn spelling(self) -> Spelling {
                use Spelling::*;
                match self {
                    $(Prim::$name => $spell,)*
                }
            }
            /// The operands that are integers (never differentiated: `powi`'s exponent).
            pub fn int_operands(self) -> &'static [usize] {
                match self {
                    $(Prim::$name => &[$($int),*],)*
                }
            }
            /// The weight in the cost model (`cost.rs`): additions and multiplications 1,
            /// divisions and square roots 4, transcendental functions 8.
            pub fn cost(self) -> u64 {
                match self {
                    $(Prim::$name => $cost,)*
                }
            }
            /// What its derivative is.
            pub fn kind(self) -> Kind {
                match self {
                    $(Prim::$name => Kind::$kind,)*
                }
            }
            /// The value on `f64` operands (`x.len() == self.arity()`; integer operands as
            /// `f64`).
            pub fn eval(self, x: &[f64]) -> f64 {
                match self {
                    $(Prim::$name => {
                        let $ex = x;
                        $eval
                    })*
                }
            }
        }

        impl RuleTable {
            /// The rules fluxion ships.
            // Each row names the builder, the operands and the output; most use some of them.
            #[allow(unused_variables)]
            pub fn standard() -> RuleTable {
                #[allow(unused_imports)]
                use Prim::*;
                let rows = vec![$(
                    Rule {
                        prim: Prim::$name,
                        partials: Arc::new(|$b: &mut Builder, $x: &[Operand], $y: &Operand| $body),
                        domain: vec![$($dom),*],
                        edges: vec![$($edge),*],
                        zero_derivative: Kind::$kind == Kind::ZeroDerivative,
                    },
                )*];
                RuleTable {
                    rows: rows.into_iter().map(|r| (r.prim, r)).collect(),
                }
            }
        }
    };
}

/// The partials of a row of kind `ZeroDerivative`: none.
fn none(x: &[Operand]) -> Vec<Option<Partial>> {
    vec![None; x.len()]
}

/// The runtime's `sign0`, `max_da` and `min_da` (`runtime/src/lib.rs`), for the
/// interpreter and the rule checks.
fn sign0(a: f64) -> f64 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        0.0
    }
}
fn max_da(a: f64, b: f64) -> f64 {
    if a > b || b.is_nan() {
        1.0
    } else if a == b {
        0.5
    } else {
        0.0
    }
}

fn min_da(a: f64, b: f64) -> f64 {
    if a < b || b.is_nan() {
        1.0
    } else if a == b {
        0.5
    } else {
        0.0
    }
}

prims! {
    /// `-a`
    Neg { spell: Prefix("-"), arity: 1, ints: [], cost: 1, eval: |x| -x[0], kind: Linear,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.lit(-1.0))] }
    /// `a + b`
    Add { spell: Infix("+"), arity: 2, ints: [], cost: 1, eval: |x| x[0] + x[1], kind: Linear,
        domain: [R, R], edges: [], partials: |b, x, y| vec![m(b.lit(1.0)), m(b.lit(1.0))] }
    /// `a - b`
    Sub { spell: Infix("-"), arity: 2, ints: [], cost: 1, eval: |x| x[0] - x[1], kind: Linear,
        domain: [R, R], edges: [], partials: |b, x, y| vec![m(b.lit(1.0)), m(b.lit(-1.0))] }
    /// `a * b`
    Mul { spell: Infix("*"), arity: 2, ints: [], cost: 1, eval: |x| x[0] * x[1], kind: Bilinear,
        domain: [R, R], edges: [], partials: |b, x, y| vec![m(x[1].clone()), m(x[0].clone())] }
    /// `a / b`: ∂/∂a = 1/b, ∂/∂b = -(a/b)/b
    Div { spell: Infix("/"), arity: 2, ints: [], cost: 4, eval: |x| x[0] / x[1], kind: Elementwise,
        domain: [R, POS], edges: [],
        partials: |b, x, y| {
            let q = b.div(y.clone(), x[1].clone());
            vec![d(x[1].clone()), m(b.neg(q))]
        } }
    /// `x % y = x - trunc(x / y) * y` (Rust's `%` on floats, C's fmod): ∂x = 1,
    /// ∂y = -trunc(x / y), as JAX's `rem`. At a jump (x / y an integer) the partials are the
    /// one-sided ones from the side where `trunc` is constant at its value.
    Rem { spell: Infix("%"), arity: 2, ints: [], cost: 4, eval: |x| x[0] % x[1], kind: Elementwise,
        domain: [R, POS], edges: [edge(&[4.0, 2.0], &[1.0, -2.0]), edge(&[-5.0, 2.0], &[1.0, 2.0])],
        partials: |b, x, y| {
            let q = b.div(x[0].clone(), x[1].clone());
            let t = b.prim(Trunc, vec![q]);
            vec![m(b.lit(1.0)), m(b.neg(t))]
        } }
    /// `x.sin()`
    Sin { spell: Method("sin"), arity: 1, ints: [], cost: 8, eval: |x| x[0].sin(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.prim(Cos, vec![x[0].clone()]))] }
    /// `x.cos()`
    Cos { spell: Method("cos"), arity: 1, ints: [], cost: 8, eval: |x| x[0].cos(), kind: Elementwise,
        domain: [R], edges: [],
        partials: |b, x, y| {
            let s = b.prim(Sin, vec![x[0].clone()]);
            vec![m(b.neg(s))]
        } }
    /// `x.tan()`: tan' = 1 + tan²
    Tan { spell: Method("tan"), arity: 1, ints: [], cost: 8, eval: |x| x[0].tan(), kind: Elementwise,
        domain: [(-1.2, 1.2)], edges: [], partials: |b, x, y| vec![m(c_plus(b, 1.0, y.clone(), y.clone()))] }
    /// `x.asin()`
    Asin { spell: Method("asin"), arity: 1, ints: [], cost: 8, eval: |x| x[0].asin(), kind: Elementwise,
        domain: [UNIT], edges: [edge(&[1.0], &[INF])],
        partials: |b, x, y| {
            let r = c_minus(b, 1.0, x[0].clone(), x[0].clone());
            vec![d(b.prim(Sqrt, vec![r]))]
        } }
    /// `x.acos()`
    Acos { spell: Method("acos"), arity: 1, ints: [], cost: 8, eval: |x| x[0].acos(), kind: Elementwise,
        domain: [UNIT], edges: [edge(&[1.0], &[-INF])],
        partials: |b, x, y| {
            let r = c_minus(b, 1.0, x[0].clone(), x[0].clone());
            let s = b.prim(Sqrt, vec![r]);
            let one = b.lit(-1.0);
            vec![m(b.div(one, s))]
        } }
    /// `x.atan()`
    Atan { spell: Method("atan"), arity: 1, ints: [], cost: 8, eval: |x| x[0].atan(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![d(c_plus(b, 1.0, x[0].clone(), x[0].clone()))] }
    /// `x.sinh()`
    Sinh { spell: Method("sinh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].sinh(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.prim(Cosh, vec![x[0].clone()]))] }
    /// `x.cosh()`
    Cosh { spell: Method("cosh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].cosh(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.prim(Sinh, vec![x[0].clone()]))] }
    /// `x.tanh()`: tanh' = 1 - tanh²
    Tanh { spell: Method("tanh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].tanh(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![m(c_minus(b, 1.0, y.clone(), y.clone()))] }
    /// `x.exp()`
    Exp { spell: Method("exp"), arity: 1, ints: [], cost: 8, eval: |x| x[0].exp(), kind: Elementwise,
        domain: [R], edges: [], partials: |b, x, y| vec![m(y.clone())] }
    /// `x.exp2()`
    Exp2 { spell: Method("exp2"), arity: 1, ints: [], cost: 8, eval: |x| x[0].exp2(), kind: Elementwise,
        domain: [R], edges: [],
        partials: |b, x, y| {
            let l = b.lit(LN_2);
            vec![m(b.mul(y.clone(), l))]
        } }
    /// `x.exp_m1()`
    ExpM1 { spell: Method("exp_m1"), arity: 1, ints: [], cost: 8, eval: |x| x[0].exp_m1(), kind: Elementwise,
        domain: [R], edges: [],
        partials: |b, x, y| {
            let one = b.lit(1.0);
            vec![m(b.add(y.clone(), one))]
        } }
    /// `x.ln()`: ln'(x) = 1 / (x + 0). `+ 0.0` turns -0.0 into +0.0 and changes no other
    /// value, so ln'(±0) = +inf (JAX's `g / x` gives -inf at -0.0, a slope of the wrong
    /// sign for an increasing function; -0.0 == 0.0 and ln(-0.0) = ln(0.0)).
    Ln { spell: Method("ln"), arity: 1, ints: [], cost: 8, eval: |x| x[0].ln(), kind: Elementwise,
        domain: [POS], edges: [edge(&[0.0], &[INF]), edge(&[-0.0], &[INF])],
        partials: |b, x, y| vec![d(plus_zero(b, x[0].clone()))] }
    /// `x.log2()`
    Log2 { spell: Method("log2"), arity: 1, ints: [], cost: 8, eval: |x| x[0].log2(), kind: Elementwise,
        domain: [POS], edges: [edge(&[0.0], &[INF]), edge(&[-0.0], &[INF])],
        partials: |b, x, y| {
            let l = b.lit(LN_2);
            let x0 = plus_zero(b, x[0].clone());
            vec![d(b.mul(x0, l))]
        } }
    /// `x.log10()`
    Log10 { spell: Method("log10"), arity: 1, ints: [], cost: 8, eval: |x| x[0].log10(), kind: Elementwise,
        domain: [POS], edges: [edge(&[0.0], &[INF]), edge(&[-0.0], &[INF])],
        partials: |b, x, y| {
            let l = b.lit(LN_10);
            let x0 = plus_zero(b, x[0].clone());
            vec![d(b.mul(x0, l))]
        } }
    /// `x.ln_1p()`
    Ln1p { spell: Method("ln_1p"), arity: 1, ints: [], cost: 8, eval: |x| x[0].ln_1p(), kind: Elementwise,
        domain: [(-0.5, 3.0)], edges: [],
        partials: |b, x, y| {
            let one = b.lit(1.0);
            vec![d(b.add(one, x[0].clone()))]
        } }
    /// `x.sqrt()`: sqrt'(x) = 1 / (2 (sqrt(x) + 0)), +inf at ±0. `sqrt(-0.0)` is -0.0, and
    /// `+ 0.0` turns it into +0.0 (no other value changes): JAX's `0.5 / ans` gives -inf
    /// there, a slope of the wrong sign for an increasing function.
    Sqrt { spell: Method("sqrt"), arity: 1, ints: [], cost: 4, eval: |x| x[0].sqrt(), kind: Elementwise,
        domain: [POS], edges: [edge(&[0.0], &[INF]), edge(&[-0.0], &[INF])],
        partials: |b, x, y| {
            let two = b.lit(2.0);
            let y0 = plus_zero(b, y.clone());
            vec![d(b.mul(two, y0))]
        } }
    /// `x.cbrt()`: cbrt'(x) = 1 / (3 cbrt(x)²), +inf at 0 (not out/(3x) = 0/0).
    Cbrt { spell: Method("cbrt"), arity: 1, ints: [], cost: 8, eval: |x| x[0].cbrt(), kind: Elementwise,
        domain: [R], edges: [edge(&[0.0], &[INF])],
        partials: |b, x, y| {
            let yy = b.mul(y.clone(), y.clone());
            let three = b.lit(3.0);
            vec![d(b.mul(three, yy))]
        } }
    /// `x.abs()`: abs'(±0) = 0.
    Abs { spell: Method("abs"), arity: 1, ints: [], cost: 1, eval: |x| x[0].abs(), kind: Elementwise,
        domain: [R], edges: [edge(&[0.0], &[0.0]), edge(&[-0.0], &[0.0])],
        partials: |b, x, y| vec![m(b.prim(Sign0, vec![x[0].clone()]))] }
    /// `x.signum()`: a step.
    Signum { spell: Method("signum"), arity: 1, ints: [], cost: 1, eval: |x| x[0].signum(), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `x.recip()`
    Recip { spell: Method("recip"), arity: 1, ints: [], cost: 4, eval: |x| x[0].recip(), kind: Elementwise,
        domain: [POS], edges: [],
        partials: |b, x, y| {
            let yy = b.mul(y.clone(), y.clone());
            vec![m(b.neg(yy))]
        } }
    /// `x.trunc()`: a step (also the partial of `%`).
    Trunc { spell: Method("trunc"), arity: 1, ints: [], cost: 1, eval: |x| x[0].trunc(), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// The sign with `sign0(0) = 0`: the partial of `abs`.
    Sign0 { spell: Runtime("sign0"), arity: 1, ints: [], cost: 1, eval: |x| sign0(x[0]), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `y.atan2(x)`: ∂/∂a atan2(a, c) = c/h², ∂/∂c = -a/h², with h = hypot(a, c): no
    /// overflow. NaN at (0, 0), as in JAX.
    Atan2 { spell: Method("atan2"), arity: 2, ints: [], cost: 8, eval: |x| x[0].atan2(x[1]), kind: Elementwise,
        domain: [R, POS], edges: [edge(&[0.0, 0.0], &[f64::NAN, f64::NAN])],
        partials: |b, x, y| {
            let h = b.prim(Hypot, vec![x[0].clone(), x[1].clone()]);
            let qa = b.div(x[1].clone(), h.clone());
            let qc = b.div(x[0].clone(), h.clone());
            let pa = b.div(qa, h.clone());
            let pc = b.div(qc, h);
            vec![m(pa), m(b.neg(pc))]
        } }
    /// `x.powf(y)`: see `powf_dx` and `powf_dy` for the conventions at `x == 0`.
    Powf { spell: Method("powf"), arity: 2, ints: [], cost: 8, eval: |x| x[0].powf(x[1]), kind: Elementwise,
        domain: [POS, R],
        edges: [
            edge(&[0.0, 2.0], &[0.0, 0.0]),
            edge(&[0.0, 0.0], &[0.0, 0.0]),
            edge(&[0.0, -1.0], &[-INF, 0.0])
        ],
        partials: |b, x, y| vec![powf_dx(b, &x[0], &x[1]), powf_dy(b, &x[0], y)] }
    /// `x.powi(n)`: `n` is an integer.
    Powi { spell: Method("powi"), arity: 2, ints: [1], cost: 8, eval: |x| x[0].powi(x[1] as i32), kind: Elementwise,
        domain: [R], edges: [edge(&[0.0, 0.0], &[0.0])],
        partials: |b, x, y| vec![powi_dx(b, &x[0], &x[1]), None] }
    /// `a.min(b)`: ties split the derivative `0.5`/`0.5`; a NaN operand gets `0`.
    Min { spell: Method("min"), arity: 2, ints: [], cost: 1, eval: |x| x[0].min(x[1]), kind: Elementwise,
        domain: [R, R], edges: [edge(&[1.0, 1.0], &[0.5, 0.5]), edge(&[f64::NAN, 1.0], &[0.0, 1.0])],
        partials: |b, x, y| {
            let da = b.prim(MinDa, vec![x[0].clone(), x[1].clone()]);
            let one = b.lit(1.0);
            let db = b.sub(one, da.clone());
            vec![m(da), m(db)]
        } }
    /// `a.max(b)`: ties split the derivative `0.5`/`0.5`; a NaN operand gets `0`.
    Max { spell: Method("max"), arity: 2, ints: [], cost: 1, eval: |x| x[0].max(x[1]), kind: Elementwise,
        domain: [R, R], edges: [edge(&[1.0, 1.0], &[0.5, 0.5]), edge(&[f64::NAN, 1.0], &[0.0, 1.0])],
        partials: |b, x, y| {
            let da = b.prim(MaxDa, vec![x[0].clone(), x[1].clone()]);
            let one = b.lit(1.0);
            let db = b.sub(one, da.clone());
            vec![m(da), m(db)]
        } }
    /// `x.hypot(y)`: `(0, 0)` at the origin, finite where `x*x + y*y` overflows.
    Hypot { spell: Method("hypot"), arity: 2, ints: [], cost: 8, eval: |x| x[0].hypot(x[1]), kind: Elementwise,
        domain: [R, R],
        edges: [edge(&[0.0, 0.0], &[0.0, 0.0]), edge(&[3.0 * TWO_600, 4.0 * TWO_600], &[0.6, 0.8])],
        partials: |b, x, y| {
            let h = safe_denominator(b, y.clone());
            vec![m(b.div(x[0].clone(), h.clone())), m(b.div(x[1].clone(), h))]
        } }
    /// `x.asinh()`: asinh' = 1 / hypot(x, 1), finite where `x*x + 1` overflows (JAX's
    /// `rsqrt(x*x + 1)` gives 0 at 1e200).
    Asinh { spell: Method("asinh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].asinh(), kind: Elementwise,
        domain: [R], edges: [edge(&[1e200], &[1.0 / 1e200])],
        partials: |b, x, y| {
            let one = b.lit(1.0);
            vec![d(b.prim(Hypot, vec![x[0].clone(), one]))]
        } }
    /// `x.acosh()`: acosh' = 1 / (sqrt(x - 1) sqrt(x + 1)), no overflow of `x*x`; +inf at 1.
    Acosh { spell: Method("acosh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].acosh(), kind: Elementwise,
        domain: [(1.1, 4.0)], edges: [edge(&[1.0], &[INF])],
        partials: |b, x, y| {
            let one = b.lit(1.0);
            let below = b.sub(x[0].clone(), one.clone());
            let above = b.add(x[0].clone(), one);
            let sb = b.prim(Sqrt, vec![below]);
            let sa = b.prim(Sqrt, vec![above]);
            vec![d(b.mul(sb, sa))]
        } }
    /// `x.atanh()`: atanh' = 1 / (1 - x²), +inf at ±1.
    Atanh { spell: Method("atanh"), arity: 1, ints: [], cost: 8, eval: |x| x[0].atanh(), kind: Elementwise,
        domain: [UNIT], edges: [edge(&[1.0], &[INF]), edge(&[-1.0], &[INF])],
        partials: |b, x, y| vec![d(c_minus(b, 1.0, x[0].clone(), x[0].clone()))] }
    /// `x.floor()`: a step.
    Floor { spell: Method("floor"), arity: 1, ints: [], cost: 1, eval: |x| x[0].floor(), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `x.ceil()`: a step.
    Ceil { spell: Method("ceil"), arity: 1, ints: [], cost: 1, eval: |x| x[0].ceil(), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `x.round()`: a step.
    Round { spell: Method("round"), arity: 1, ints: [], cost: 1, eval: |x| x[0].round(), kind: ZeroDerivative,
        domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `x.round_ties_even()`: a step.
    RoundTiesEven { spell: Method("round_ties_even"), arity: 1, ints: [], cost: 1, eval: |x| x[0].round_ties_even(),
        kind: ZeroDerivative, domain: [R], edges: [], partials: |b, x, y| none(x) }
    /// `x.fract() = x - trunc(x)`: ∂ = 1, also at the jumps (one-sided, as `%`).
    Fract { spell: Method("fract"), arity: 1, ints: [], cost: 1, eval: |x| x[0].fract(), kind: Elementwise,
        domain: [R], edges: [edge(&[2.0], &[1.0])], partials: |b, x, y| vec![m(b.lit(1.0))] }
    /// `x.to_degrees() = x * (180 / π)`.
    ToDegrees { spell: Method("to_degrees"), arity: 1, ints: [], cost: 1, eval: |x| x[0].to_degrees(), kind: Linear,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.lit(180.0 / std::f64::consts::PI))] }
    /// `x.to_radians() = x * (π / 180)`.
    ToRadians { spell: Method("to_radians"), arity: 1, ints: [], cost: 1, eval: |x| x[0].to_radians(), kind: Linear,
        domain: [R], edges: [], partials: |b, x, y| vec![m(b.lit(std::f64::consts::PI / 180.0))] }
    /// `x.copysign(s) = |x|` with the sign of `s`: ∂x = sign0(x) signum(s) (0 at `x = ±0`,
    /// as `abs`), ∂s = 0 (a step).
    Copysign { spell: Method("copysign"), arity: 2, ints: [], cost: 1, eval: |x| x[0].copysign(x[1]), kind: Elementwise,
        domain: [R, R], edges: [edge(&[0.0, 1.0], &[0.0, 0.0]), edge(&[2.0, -0.0], &[-1.0, 0.0])],
        partials: |b, x, y| {
            let sx = b.prim(Sign0, vec![x[0].clone()]);
            let ss = b.prim(Signum, vec![x[1].clone()]);
            vec![m(b.mul(sx, ss)), None]
        } }
    /// `x.clamp(lo, hi)`: the derivative of the operand returned: ∂x = 1 for
    /// `lo <= x <= hi` (`x` itself is returned at the bounds), ∂lo = 1 for `x < lo`,
    /// ∂hi = 1 for `x > hi`.
    Clamp { spell: Method("clamp"), arity: 3, ints: [], cost: 2, eval: |x| x[0].clamp(x[1], x[2]), kind: Elementwise,
        domain: [R, (-2.0, -1.0), (1.0, 2.0)],
        edges: [edge(&[-1.0, -1.0, 1.0], &[1.0, 0.0, 0.0]), edge(&[3.0, -1.0, 1.0], &[0.0, 0.0, 1.0])],
        partials: |b, x, y| {
            let below = b.cmp(CmpOp::Lt, x[0].clone(), x[1].clone());
            let above = b.cmp(CmpOp::Gt, x[0].clone(), x[2].clone());
            let (one, zero) = (b.lit(1.0), b.lit(0.0));
            let dlo = b.select(below, one.clone(), zero.clone());
            let dhi = b.select(above, one.clone(), zero);
            let out = b.add(dlo.clone(), dhi.clone());
            vec![m(b.sub(one, out)), m(dlo), m(dhi)]
        } }
    /// `x.log(base) = ln x / ln base`: ∂x = 1 / ((x + 0) ln base) (+inf at ±0, as `ln`),
    /// ∂base = -log_base(x) / (base ln base).
    Log { spell: Method("log"), arity: 2, ints: [], cost: 8, eval: |x| x[0].log(x[1]), kind: Elementwise,
        domain: [POS, (1.5, 4.0)], edges: [edge(&[0.0, 2.0], &[INF, INF]), edge(&[-0.0, 2.0], &[INF, INF])],
        partials: |b, x, y| {
            let lb = b.prim(Ln, vec![x[1].clone()]);
            let x0 = plus_zero(b, x[0].clone());
            let dx = b.mul(x0, lb.clone());
            let blb = b.mul(x[1].clone(), lb);
            let q = b.div(y.clone(), blb);
            vec![d(dx), m(b.neg(q))]
        } }
    /// `x.rem_euclid(y) = x - div_euclid(x, y) * y`: ∂x = 1, ∂y = -div_euclid(x, y),
    /// one-sided at the jumps as `%`.
    RemEuclid { spell: Method("rem_euclid"), arity: 2, ints: [], cost: 4, eval: |x| x[0].rem_euclid(x[1]), kind: Elementwise,
        domain: [R, POS], edges: [edge(&[4.0, 2.0], &[1.0, -2.0]), edge(&[-5.0, 2.0], &[1.0, 3.0])],
        partials: |b, x, y| {
            let q = b.prim(DivEuclid, vec![x[0].clone(), x[1].clone()]);
            vec![m(b.lit(1.0)), m(b.neg(q))]
        } }
    /// `x.div_euclid(y)`: a step.
    DivEuclid { spell: Method("div_euclid"), arity: 2, ints: [], cost: 4, eval: |x| x[0].div_euclid(x[1]), kind: ZeroDerivative,
        domain: [R, POS], edges: [], partials: |b, x, y| none(x) }
    /// `∂max(a, b)/∂a`: 1, 0 or 0.5 at ties.
    MaxDa { spell: Runtime("max_da"), arity: 2, ints: [], cost: 1, eval: |x| max_da(x[0], x[1]), kind: ZeroDerivative,
        domain: [R, R], edges: [], partials: |b, x, y| none(x) }
    /// `∂min(a, b)/∂a`: 1, 0 or 0.5 at ties.
    MinDa { spell: Runtime("min_da"), arity: 2, ints: [], cost: 1, eval: |x| min_da(x[0], x[1]), kind: ZeroDerivative,
        domain: [R, R], edges: [], partials: |b, x, y| none(x) }
    /// `a.mul_add(b, c)`
    MulAdd { spell: Method("mul_add"), arity: 3, ints: [], cost: 2, eval: |x| x[0].mul_add(x[1], x[2]), kind: Elementwise,
        domain: [R, R, R], edges: [],
        partials: |b, x, y| vec![m(x[1].clone()), m(x[0].clone()), m(b.lit(1.0))] }
}

impl Prim {
    /// The method name for primitives written as `x.method(..)`.
    pub fn method(self) -> Option<&'static str> {
        match self.spelling() {
            Spelling::Method(m) => Some(m),
            _ => None,
        }
    }
    /// Looks a method name up.
    pub fn from_method(name: &str) -> Option<Prim> {
        Prim::ALL.iter().copied().find(|p| p.method() == Some(name))
    }
    /// The methods user code can write, for error messages: `sin cos .. mul_add`.
    pub fn methods() -> String {
        Prim::ALL
            .iter()
            .filter_map(|p| p.method())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl RuleTable {
    /// The row of a primitive.
    pub fn get(&self, p: Prim) -> Option<&Rule> {
        self.rows.get(&p)
    }

    /// Every row.
    pub fn rows(&self) -> impl Iterator<Item = &Rule> {
        self.rows.values()
    }

    /// A copy with one rule replaced by a defective version (for testing the checks).
    pub fn mutated(&self, p: Prim, how: Mutation) -> RuleTable {
        let mut t = self.clone();
        if let Some(row) = t.rows.get_mut(&p) {
            let inner = row.partials.clone();
            row.partials = Arc::new(move |b: &mut Builder, x: &[Operand], y: &Operand| {
                let ps = inner(b, x, y);
                ps.into_iter()
                    .enumerate()
                    .map(|(k, part)| {
                        let part = part?;
                        let scale = match how {
                            Mutation::Scale(s) => s,
                            Mutation::FlipSign => -1.0,
                            Mutation::DropTerm(j) if j == k => return None,
                            Mutation::DropTerm(_) => return Some(part),
                        };
                        let s = b.lit(scale);
                        Some(match part {
                            Partial::Mul(o) => Partial::Mul(b.mul(o, s)),
                            Partial::Scaled(k, o) => Partial::Scaled(k, b.mul(o, s)),
                            Partial::Div(o) => {
                                let inv = b.lit(1.0 / scale);
                                Partial::Div(b.mul(o, inv))
                            }
                        })
                    })
                    .collect()
            });
        }
        t
    }
}

/// `∂/∂x x^y = y x^(y-1)`, zero where `y == 0` (not `0 * inf` at `x == 0`).
fn powf_dx(b: &mut Builder, x: &Operand, yexp: &Operand) -> Option<Partial> {
    if let Some(v) = yexp.float_value() {
        if v == 0.0 {
            return None;
        }
        if v == 1.0 {
            return m(b.lit(1.0));
        }
        if v.fract() == 0.0 && v.abs() < 16_777_216.0 {
            // y - 1 is exact in f32 and f64: fold it.
            let e = b.lit(v - 1.0);
            let p = b.prim(Prim::Powf, vec![x.clone(), e]);
            return Some(Partial::Scaled(yexp.clone(), p));
        }
    }
    let one = b.lit(1.0);
    let e = b.sub(yexp.clone(), one);
    let p = b.prim(Prim::Powf, vec![x.clone(), e]);
    if yexp.float_value().is_some() {
        return Some(Partial::Scaled(yexp.clone(), p));
    }
    let full = b.mul(yexp.clone(), p);
    let z = b.lit(0.0);
    let c = b.cmp(CmpOp::Eq, yexp.clone(), z.clone());
    m(b.select(c, z, full))
}

/// `∂/∂y x^y = x^y ln x`, and `0` where `x == 0`, for every `y`: `y ↦ 0^y` is constant
/// on each side of `y = 0` (`0` for `y > 0`, `+inf` for `y < 0`). Written
/// `select(x == 0, 0, x^y) · ln(select(x == 0, 1, x))`: the safe `ln` keeps NaN out of
/// second derivatives (jax#14397), and selecting `0` in place of `x^y` keeps `+inf · 0`
/// out for `y < 0`, where JAX's `x^y · ln(1)` gives NaN. Away from `x == 0` the value
/// is `x^y · ln x`, bit for bit.
fn powf_dy(b: &mut Builder, x: &Operand, out: &Operand) -> Option<Partial> {
    let z = b.lit(0.0);
    let c = b.cmp(CmpOp::Eq, x.clone(), z.clone());
    let one = b.lit(1.0);
    let safe = b.select(c.clone(), one, x.clone());
    let l = b.prim(Prim::Ln, vec![safe]);
    let o = b.select(c, z, out.clone());
    m(b.mul(o, l))
}

/// `∂/∂x x^n = n x^(n-1)`; zero for `n == 0`.
fn powi_dx(b: &mut Builder, x: &Operand, n: &Operand) -> Option<Partial> {
    if let Operand::Int(k) = n {
        return match *k {
            0 => None,
            1 => m(b.lit(1.0)),
            2 => Some(Partial::Scaled(b.lit(2.0), x.clone())),
            k => {
                let p = b.prim(Prim::Powi, vec![x.clone(), Operand::Int(k - 1)]);
                Some(Partial::Scaled(b.lit(k as f64), p))
            }
        };
    }
    // `n as f64` (or f32); where the base's type is not visible, a conversion to its type.
    let nf = match b.f.ty_of(x) {
        Ty::Float(Some(k)) => b.let_(Expr::Cast(n.clone(), Ty::Float(Some(k))), "t"),
        _ => b.let_(Expr::IntAsFloat(n.clone(), x.clone()), "t"),
    };
    let nm1 = b.let_ty(
        Expr::Prim(Prim::Sub, vec![n.clone(), Operand::Int(1)]),
        "t",
        Ty::Int(Some("i32".into())),
    );
    let p = b.prim(Prim::Powi, vec![x.clone(), nm1]);
    let full = b.mul(nf, p);
    let c = b.let_ty(Expr::Cmp(CmpOp::Eq, n.clone(), Operand::Int(0)), "c", Ty::Bool);
    let z = b.lit(0.0);
    m(b.select(c, z, full))
}
