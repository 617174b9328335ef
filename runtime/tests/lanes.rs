//! The lane math (`fluxion_runtime::Lanes`) against std's `f64`/`f32` methods.
//!
//! Every function of the table in `runtime/src/lanes.rs` runs on `f64x4`, `f32x8` and the
//! 1-lane `f64`/`f32` over many points (ordinary ranges, near 0, `-0.0`, subnormals, large
//! values, near domain edges, NaN, ±inf), each lane of a vector from a different point.
//! Each result must be within the table's ulp bound of std's (the table is parsed from
//! the module's documentation: it is the one list), NaN where std gives NaN, the same
//! infinity where std gives one, and a zero of the same sign where std gives a zero.
//! The table's bounds must also be tight (at most one ulp above the measured maximum),
//! so it stays a measurement. `cargo test -p fluxion-runtime --test lanes -- --nocapture`
//! prints the measured errors.

use std::collections::BTreeMap;
use std::hint::black_box;

use fluxion_runtime::{f32x8, f64x4, LaneMask, Lanes};

/// What the tests need of `f64` and `f32` beyond `Lanes`.
trait Float: Copy + std::fmt::Debug + PartialEq + PartialOrd {
    const SPECIALS: &'static [f64];
    fn of(x: f64) -> Self;
    /// A monotone map to integers, `-0.0` and `+0.0` both to 0: the distance of two
    /// finite floats in ulps is the difference of their images.
    fn ordered(self) -> i64;
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_zero(self) -> bool;
    fn sign_bit(self) -> bool;
    fn bits(self) -> u64;
    fn mul_add_std(self, a: Self, b: Self) -> Self;
}

impl Float for f64 {
    fn mul_add_std(self, a: f64, b: f64) -> f64 {
        self.mul_add(a, b)
    }
    const SPECIALS: &'static [f64] = &[
        0.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MIN_POSITIVE - 5e-324, // the largest subnormal
        1e-300,
        1e-200,
        1e-20,
        1e-8,
        1.5e-8,
        1e-7,
        1e-5,
        0.1,
        0.5,
        0.75,
        0.9999999999999999,
        1.0,
        1.0000000000000002,
        1.5,
        2.0,
        3.0,
        std::f64::consts::FRAC_PI_2,
        std::f64::consts::PI,
        10.0,
        18.0,
        19.1,
        22.0,
        88.0,
        89.0,
        100.0,
        700.0,
        709.78,
        709.79,
        710.0,
        744.0,
        745.2,
        1022.0,
        1023.5,
        1024.0,
        1075.0,
        1e10,
        1e15,
        4503599627370496.5,
        9007199254740993.0,
        1e20,
        1e100,
        1e300,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
    ];
    fn of(x: f64) -> f64 {
        x
    }
    fn ordered(self) -> i64 {
        let b = self.to_bits() as i64;
        if b < 0 {
            i64::MIN.wrapping_sub(b)
        } else {
            b
        }
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn is_infinite(self) -> bool {
        self.is_infinite()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    fn sign_bit(self) -> bool {
        self.is_sign_negative()
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

impl Float for f32 {
    fn mul_add_std(self, a: f32, b: f32) -> f32 {
        self.mul_add(a, b)
    }
    const SPECIALS: &'static [f64] = &[
        0.0,
        1.1754944e-38,
        1e-45,
        1.1754942e-38, // the largest subnormal
        1e-40,
        1e-30,
        1e-10,
        1e-4,
        3e-4,
        1e-3,
        0.1,
        0.5,
        0.75,
        0.99999994,
        1.0,
        1.0000001,
        1.5,
        2.0,
        3.0,
        std::f64::consts::FRAC_PI_2,
        std::f64::consts::PI,
        8.0,
        9.0,
        10.0,
        20.0,
        88.0,
        88.72,
        88.73,
        89.0,
        103.0,
        104.0,
        126.0,
        127.5,
        128.0,
        150.0,
        1e5,
        8388608.5,
        16777217.0,
        1e10,
        1e20,
        1e30,
        3.4028235e38,
        f64::INFINITY,
        f64::NAN,
    ];
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn ordered(self) -> i64 {
        let b = self.to_bits() as i32;
        (if b < 0 { i32::MIN.wrapping_sub(b) } else { b }) as i64
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn is_infinite(self) -> bool {
        self.is_infinite()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    fn sign_bit(self) -> bool {
        self.is_sign_negative()
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}

/// The error of `got` against std's `want` in ulps; `u64::MAX` where they differ in
/// kind (NaN, infinity, the sign of a zero).
fn ulps<E: Float>(got: E, want: E, zero_sign: bool) -> u64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() { 0 } else { u64::MAX };
    }
    if want.is_infinite() || got.is_infinite() {
        return if got == want { 0 } else { u64::MAX };
    }
    if zero_sign && want.is_zero() && (!got.is_zero() || got.sign_bit() != want.sign_bit()) {
        return u64::MAX;
    }
    got.ordered().abs_diff(want.ordered())
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// A random sign and a magnitude log-uniform over `[2^lo, 2^hi)`.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let m = self.uniform(lo, hi).exp2();
        if self.next() & 1 == 0 {
            m
        } else {
            -m
        }
    }
}

/// The points of the unary functions: the specials and their negations, random points
/// in ordinary ranges, near 0, near ±1, over the whole exponent range, and at and
/// around integers and half-integers (for the rounding functions).
fn unary_points<E: Float>(max_exp: f64, min_exp: f64) -> Vec<E> {
    let mut v: Vec<f64> = Vec::new();
    for &s in E::SPECIALS {
        v.push(s);
        v.push(-s);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..1500 {
        v.push(rng.uniform(-10.0, 10.0));
        v.push(rng.uniform(-1.0, 1.0));
        v.push(rng.log_uniform(min_exp, max_exp));
    }
    for _ in 0..300 {
        v.push(rng.uniform(-1e-4, 1e-4));
        v.push(1.0 + rng.uniform(-1e-3, 1e-3));
        v.push(-1.0 + rng.uniform(-1e-3, 1e-3));
        v.push(rng.uniform(-800.0, 800.0));
        v.push(rng.uniform(-40.0, 40.0));
    }
    for k in -12..=12 {
        let k = k as f64;
        v.extend([k, k + 0.5, k - 0.5, k + 0.25]);
    }
    v.into_iter().map(E::of).collect()
}

/// The points of the binary functions: every pair of a small set of specials, then
/// random pairs of unary points.
fn binary_points<E: Float>(points: &[E]) -> Vec<(E, E)> {
    let small: Vec<E> = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        3.0,
        -3.0,
        2.5,
        10.0,
        -10.0,
        1e-300,
        1e300,
        1e-40,
        1e30,
        f64::INFINITY,
        -f64::INFINITY,
        f64::NAN,
    ]
    .iter()
    .map(|&x| E::of(x))
    .collect();
    let mut v = Vec::new();
    for &a in &small {
        for &b in &small {
            v.push((a, b));
        }
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let n = points.len() as u64;
    for _ in 0..6000 {
        let a = points[(rng.next() % n) as usize];
        let b = points[(rng.next() % n) as usize];
        v.push((a, b));
    }
    v
}

/// One function: the lane version and std's.
enum Fun<L: Lanes> {
    Unary(fn(L) -> L, fn(L::Elem) -> L::Elem),
    Binary(fn(L, L) -> L, fn(L::Elem, L::Elem) -> L::Elem),
    /// Points drawn by the case itself (`powf`, `powi`, `clamp`, `mul_add`, domains).
    Points(
        fn(L, L, L) -> L,
        fn(L::Elem, L::Elem, L::Elem) -> L::Elem,
        fn() -> Vec<[L::Elem; 3]>,
    ),
}

struct Case<L: Lanes> {
    name: &'static str,
    fun: Fun<L>,
}

fn case<L: Lanes>(name: &'static str, fun: Fun<L>) -> Case<L> {
    Case { name, fun }
}

/// Triples for the functions with their own points.
fn triples<E: Float>(name: &str) -> Vec<[E; 3]> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let unary = unary_points::<E>(60.0, -60.0);
    let mut v = Vec::new();
    match name {
        "powf" => {
            for _ in 0..4000 {
                v.push([
                    E::of(rng.uniform(0.0, 10.0)),
                    E::of(rng.uniform(-30.0, 30.0)),
                    E::of(0.0),
                ]);
                v.push([
                    E::of(rng.log_uniform(-60.0, 60.0).abs()),
                    E::of(rng.uniform(-4.0, 4.0)),
                    E::of(0.0),
                ]);
                v.push([
                    E::of(rng.uniform(-10.0, 10.0)),
                    E::of(rng.uniform(-12.0, 12.0).round()),
                    E::of(0.0),
                ]);
            }
            for (a, b) in binary_points(&unary) {
                v.push([a, b, E::of(0.0)]);
            }
        }
        "powi" => {
            for &x in &unary {
                let n = (rng.next() % 41) as f64 - 20.0;
                v.push([x, E::of(n), E::of(0.0)]);
            }
            for n in [
                -1074.0, -200.0, -64.0, -3.0, -1.0, 0.0, 1.0, 2.0, 3.0, 31.0, 64.0, 200.0, 1023.0,
            ] {
                for x in [
                    0.0,
                    -0.0,
                    0.5,
                    -0.5,
                    1.0000001,
                    -1.5,
                    2.0,
                    1e-3,
                    f64::INFINITY,
                    f64::NAN,
                ] {
                    v.push([E::of(x), E::of(n), E::of(0.0)]);
                }
            }
        }
        "clamp" => {
            for &x in &unary {
                let a = E::of(rng.uniform(-20.0, 20.0));
                let b = E::of(rng.uniform(-20.0, 20.0));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                v.push([x, lo, hi]);
            }
            for x in [0.0, -0.0, 1.0, -1.0] {
                v.push([E::of(x), E::of(-0.0), E::of(0.0)]);
                v.push([E::of(x), E::of(0.0), E::of(0.0)]);
                v.push([E::of(x), E::of(-f64::INFINITY), E::of(f64::INFINITY)]);
            }
        }
        "mul_add" => {
            for _ in 0..6000 {
                let a = E::of(rng.uniform(-10.0, 10.0));
                let b = E::of(rng.uniform(-10.0, 10.0));
                v.push([a, b, E::of(-rng.uniform(-100.0, 100.0))]);
                // Products that cancel against the addend: the fused rounding shows.
                let a = E::of(1.0 + rng.uniform(0.0, 1e-3));
                v.push([a, a, E::of(-1.0 - rng.uniform(0.0, 3e-3))]);
            }
            for (a, b) in binary_points(&unary).into_iter().take(3000) {
                v.push([a, b, a]);
            }
        }
        _ => unreachable!("no points for {name}"),
    }
    v
}

macro_rules! cases {
    ($l:ty, $e:ident) => {{
        type L = $l;
        vec![
            case::<L>("+", Fun::Binary(|a, b| a + b, |a, b| a + b)),
            case::<L>("-", Fun::Binary(|a, b| a - b, |a, b| a - b)),
            case::<L>("*", Fun::Binary(|a, b| a * b, |a, b| a * b)),
            case::<L>("/", Fun::Binary(|a, b| a / b, |a, b| a / b)),
            case::<L>("%", Fun::Binary(|a, b| a % b, |a, b| a % b)),
            case::<L>("neg", Fun::Unary(|a| -a, |a| -a)),
            case::<L>("sin", Fun::Unary(Lanes::sin, $e::sin)),
            case::<L>("cos", Fun::Unary(Lanes::cos, $e::cos)),
            case::<L>("tan", Fun::Unary(Lanes::tan, $e::tan)),
            case::<L>("asin", Fun::Unary(Lanes::asin, $e::asin)),
            case::<L>("acos", Fun::Unary(Lanes::acos, $e::acos)),
            case::<L>("atan", Fun::Unary(Lanes::atan, $e::atan)),
            case::<L>("sinh", Fun::Unary(Lanes::sinh, $e::sinh)),
            case::<L>("cosh", Fun::Unary(Lanes::cosh, $e::cosh)),
            case::<L>("tanh", Fun::Unary(Lanes::tanh, $e::tanh)),
            case::<L>("exp", Fun::Unary(Lanes::exp, $e::exp)),
            case::<L>("exp2", Fun::Unary(Lanes::exp2, $e::exp2)),
            case::<L>("exp_m1", Fun::Unary(Lanes::exp_m1, $e::exp_m1)),
            case::<L>("ln", Fun::Unary(Lanes::ln, $e::ln)),
            case::<L>("log2", Fun::Unary(Lanes::log2, $e::log2)),
            case::<L>("log10", Fun::Unary(Lanes::log10, $e::log10)),
            case::<L>("ln_1p", Fun::Unary(Lanes::ln_1p, $e::ln_1p)),
            case::<L>("sqrt", Fun::Unary(Lanes::sqrt, $e::sqrt)),
            case::<L>("cbrt", Fun::Unary(Lanes::cbrt, $e::cbrt)),
            case::<L>("abs", Fun::Unary(Lanes::abs, $e::abs)),
            case::<L>("signum", Fun::Unary(Lanes::signum, $e::signum)),
            case::<L>("recip", Fun::Unary(Lanes::recip, $e::recip)),
            case::<L>("trunc", Fun::Unary(Lanes::trunc, $e::trunc)),
            case::<L>("floor", Fun::Unary(Lanes::floor, $e::floor)),
            case::<L>("ceil", Fun::Unary(Lanes::ceil, $e::ceil)),
            case::<L>("round", Fun::Unary(Lanes::round, $e::round)),
            case::<L>(
                "round_ties_even",
                Fun::Unary(Lanes::round_ties_even, $e::round_ties_even),
            ),
            case::<L>("fract", Fun::Unary(Lanes::fract, $e::fract)),
            case::<L>("to_degrees", Fun::Unary(Lanes::to_degrees, $e::to_degrees)),
            case::<L>("to_radians", Fun::Unary(Lanes::to_radians, $e::to_radians)),
            case::<L>("asinh", Fun::Unary(Lanes::asinh, $e::asinh)),
            case::<L>("acosh", Fun::Unary(Lanes::acosh, $e::acosh)),
            case::<L>("atanh", Fun::Unary(Lanes::atanh, $e::atanh)),
            case::<L>("sign0", Fun::Unary(Lanes::sign0, fluxion_runtime::sign0)),
            case::<L>("atan2", Fun::Binary(Lanes::atan2, $e::atan2)),
            case::<L>("min", Fun::Binary(Lanes::min, $e::min)),
            case::<L>("max", Fun::Binary(Lanes::max, $e::max)),
            case::<L>("hypot", Fun::Binary(Lanes::hypot, $e::hypot)),
            case::<L>("copysign", Fun::Binary(Lanes::copysign, $e::copysign)),
            case::<L>("log", Fun::Binary(Lanes::log, $e::log)),
            case::<L>("rem_euclid", Fun::Binary(Lanes::rem_euclid, $e::rem_euclid)),
            case::<L>("div_euclid", Fun::Binary(Lanes::div_euclid, $e::div_euclid)),
            case::<L>("max_da", Fun::Binary(Lanes::max_da, fluxion_runtime::max_da)),
            case::<L>("min_da", Fun::Binary(Lanes::min_da, fluxion_runtime::min_da)),
            case::<L>(
                "powf",
                Fun::Points(
                    |a, b, _| Lanes::powf(a, b),
                    |a, b, _| a.powf(b),
                    || triples::<$e>("powf"),
                ),
            ),
            case::<L>(
                "powi",
                Fun::Points(
                    |a, b, _| Lanes::powi(a, b.lane(0) as i32),
                    |a, b, _| a.powi(black_box(b as i32)),
                    || triples::<$e>("powi"),
                ),
            ),
            case::<L>("clamp", Fun::Points(Lanes::clamp, $e::clamp, || triples::<$e>("clamp"))),
            case::<L>(
                "mul_add",
                Fun::Points(Lanes::mul_add, $e::mul_add, || triples::<$e>("mul_add")),
            ),
        ]
    }};
}

/// The largest error of a function in ulps, and its first difference in kind (NaN,
/// infinity, sign of zero), if any.
type Measured = BTreeMap<&'static str, (u64, Option<String>)>;

/// Runs every case on `L`.
fn measure<L: Lanes>(cases: Vec<Case<L>>, type_name: &str, max_exp: f64, min_exp: f64) -> Measured
where
    L::Elem: Float,
{
    let unary = unary_points::<L::Elem>(max_exp, min_exp);
    let binary = binary_points(&unary);
    let zero = <L::Elem as Float>::of(0.0);
    let mut worst = BTreeMap::new();
    for c in cases {
        // `min`/`max` of `-0.0` and `+0.0` may give either (IEEE maxNum, std's docs).
        let zero_sign = !matches!(c.name, "min" | "max");
        let points: Vec<[L::Elem; 3]> = match &c.fun {
            Fun::Unary(..) => unary.iter().map(|&x| [x, zero, zero]).collect(),
            Fun::Binary(..) => binary.iter().map(|&(a, b)| [a, b, zero]).collect(),
            Fun::Points(_, _, p) => p(),
        };
        let mut max = 0u64;
        let mut kind = None;
        // `powi`'s exponent is one per call: every lane gets the same one.
        let same_in_all_lanes = c.name == "powi";
        for (k, chunk) in points.chunks(L::LANES).enumerate() {
            let lane_of = |j: usize| {
                let i = if same_in_all_lanes { 0 } else { j % chunk.len() };
                // Rotate the lanes so that a lane mix-up shows.
                chunk[(i + k) % chunk.len()]
            };
            let arg = |a: usize| L::from_fn(|j| lane_of(j)[a]);
            let got = match &c.fun {
                Fun::Unary(f, _) => f(arg(0)),
                Fun::Binary(f, _) => f(arg(0), arg(1)),
                Fun::Points(f, _, _) => f(arg(0), arg(1), arg(2)),
            };
            for j in 0..L::LANES {
                let p = lane_of(j);
                let want = match &c.fun {
                    Fun::Unary(_, g) => g(p[0]),
                    Fun::Binary(_, g) => g(p[0], p[1]),
                    Fun::Points(_, g, _) => g(p[0], p[1], p[2]),
                };
                let e = ulps(got.lane(j), want, zero_sign);
                if e == u64::MAX {
                    kind.get_or_insert_with(|| {
                        format!(
                            "{type_name}::{} at {:?}: {:?} (bits {:#x}), std gives {:?} (bits {:#x})",
                            c.name,
                            p,
                            got.lane(j),
                            got.lane(j).bits(),
                            want,
                            want.bits()
                        )
                    });
                } else if e > max {
                    max = e;
                    if std::env::var_os("LANES_WORST").is_some() {
                        println!("{type_name}::{} worst so far {e} ulp at {p:?}", c.name);
                    }
                }
            }
        }
        worst.insert(c.name, (max, kind));
    }
    worst
}

/// The table of the module documentation: method name -> (f64 bound, f32 bound).
fn documented() -> BTreeMap<String, (u64, u64)> {
    let src = include_str!("../src/lanes.rs");
    let mut table = BTreeMap::new();
    for line in src.lines().filter_map(|l| l.strip_prefix("//! | `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (f64_ulp, f32_ulp) = (cells[2].parse().unwrap(), cells[4].parse().unwrap());
        // The first cell names one method or several (`+` `-` `*` `/`), before any
        // parenthesised remark.
        let names = cells[0].split(" (").next().unwrap();
        for name in names.split('`').map(str::trim).filter(|s| !s.is_empty()) {
            table.insert(name.to_string(), (f64_ulp, f32_ulp));
        }
    }
    table
}

fn check(measured: &[(&str, Measured)], bound_of: fn((u64, u64)) -> u64) {
    let table = documented();
    let names: Vec<&str> = measured[0].1.keys().copied().collect();
    let mut undocumented: Vec<&str> = names.iter().copied().filter(|n| !table.contains_key(*n)).collect();
    undocumented.sort();
    assert!(
        undocumented.is_empty(),
        "functions missing from the table: {undocumented:?}"
    );
    let untested: Vec<&String> = table.keys().filter(|n| !names.contains(&n.as_str())).collect();
    assert!(untested.is_empty(), "table rows without a test: {untested:?}");
    let mut failures = Vec::new();
    for name in names {
        let bound = bound_of(table[name]);
        let errs: Vec<String> = measured.iter().map(|(t, m)| format!("{t} {}", m[name].0)).collect();
        println!("{name:>16}: bound {bound}, measured {}", errs.join(", "));
        for (_, m) in measured {
            if let Some(k) = &m[name].1 {
                println!("{:>16}  {k}", "");
                failures.push(k.clone());
            }
        }
        let max = measured.iter().map(|(_, m)| m[name].0).max().unwrap();
        if max > bound {
            failures.push(format!("{name}: {} ulp above the bound {bound}", errs.join(", ")));
        } else if bound > max + 1 {
            failures.push(format!(
                "{name}: the bound {bound} is loose (measured {})",
                errs.join(", ")
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn f64_lanes_match_std_within_the_documented_bounds() {
    let measured = [
        ("f64x4", measure(cases!(f64x4, f64), "f64x4", 1023.0, -1074.0)),
        ("f64", measure(cases!(f64, f64), "f64", 1023.0, -1074.0)),
    ];
    check(&measured, |(b, _)| b);
}

#[test]
fn f32_lanes_match_std_within_the_documented_bounds() {
    let measured = [
        ("f32x8", measure(cases!(f32x8, f32), "f32x8", 127.0, -149.0)),
        ("f32", measure(cases!(f32, f32), "f32", 127.0, -149.0)),
    ];
    check(&measured, |(_, b)| b);
}

/// Exact values, lane by lane, on every lane type: a swapped or shifted function fails
/// here whatever the bounds.
fn exact_values<L: Lanes>()
where
    L::Elem: Float,
{
    let c = |x: f64| L::splat_f64(x);
    let is = |got: L, want: f64, what: &str| {
        for j in 0..L::LANES {
            let w = <L::Elem as Float>::of(want);
            assert!(
                got.lane(j).bits() == w.bits(),
                "{what}: lane {j} is {:?}, not {want:?}",
                got.lane(j)
            );
        }
    };
    is(Lanes::sin(c(0.0)), 0.0, "sin 0");
    is(Lanes::sin(c(-0.0)), -0.0, "sin -0");
    is(Lanes::cos(c(0.0)), 1.0, "cos 0");
    is(Lanes::tan(c(-0.0)), -0.0, "tan -0");
    is(Lanes::exp(c(0.0)), 1.0, "exp 0");
    is(Lanes::exp(c(f64::NEG_INFINITY)), 0.0, "exp -inf");
    is(Lanes::exp2(c(10.0)), 1024.0, "exp2 10");
    is(Lanes::exp2(c(-3.0)), 0.125, "exp2 -3");
    is(Lanes::exp_m1(c(-0.0)), -0.0, "exp_m1 -0");
    is(Lanes::ln(c(1.0)), 0.0, "ln 1");
    is(Lanes::ln(c(0.0)), f64::NEG_INFINITY, "ln 0");
    is(Lanes::log2(c(8.0)), 3.0, "log2 8");
    is(Lanes::log10(c(1000.0)), 3.0, "log10 1000");
    is(Lanes::ln_1p(c(-1.0)), f64::NEG_INFINITY, "ln_1p -1");
    is(Lanes::sqrt(c(4.0)), 2.0, "sqrt 4");
    is(Lanes::sqrt(c(-0.0)), -0.0, "sqrt -0");
    is(Lanes::cbrt(c(-27.0)), -3.0, "cbrt -27");
    is(Lanes::atan2(c(-0.0), c(1.0)), -0.0, "atan2(-0, 1)");
    is(Lanes::asin(c(-0.0)), -0.0, "asin -0");
    is(Lanes::acos(c(1.0)), 0.0, "acos 1");
    is(Lanes::sinh(c(-0.0)), -0.0, "sinh -0");
    is(Lanes::cosh(c(0.0)), 1.0, "cosh 0");
    is(Lanes::tanh(c(-30.0)), -1.0, "tanh -30");
    is(Lanes::asinh(c(-0.0)), -0.0, "asinh -0");
    is(Lanes::acosh(c(1.0)), 0.0, "acosh 1");
    is(Lanes::atanh(c(1.0)), f64::INFINITY, "atanh 1");
    is(Lanes::powf(c(2.0), c(10.0)), 1024.0, "powf(2, 10)");
    is(Lanes::powf(c(-2.0), c(3.0)), -8.0, "powf(-2, 3)");
    is(Lanes::powf(c(f64::NAN), c(0.0)), 1.0, "powf(NaN, 0)");
    is(Lanes::powf(c(1.0), c(f64::NAN)), 1.0, "powf(1, NaN)");
    is(Lanes::powf(c(-0.0), c(-3.0)), f64::NEG_INFINITY, "powf(-0, -3)");
    is(Lanes::powi(c(3.0), 4), 81.0, "powi(3, 4)");
    is(Lanes::powi(c(2.0), -2), 0.25, "powi(2, -2)");
    is(Lanes::powi(c(f64::NAN), 0), 1.0, "powi(NaN, 0)");
    is(Lanes::hypot(c(3.0), c(-4.0)), 5.0, "hypot(3, -4)");
    is(
        Lanes::hypot(c(f64::INFINITY), c(f64::NAN)),
        f64::INFINITY,
        "hypot(inf, NaN)",
    );
    is(Lanes::log(c(8.0), c(2.0)), 3.0, "log(8, 2)");
    is(Lanes::abs(c(-0.0)), 0.0, "abs -0");
    is(Lanes::signum(c(-0.0)), -1.0, "signum -0");
    is(Lanes::sign0(c(-0.0)), 0.0, "sign0 -0");
    is(Lanes::sign0(c(-2.0)), -1.0, "sign0 -2");
    is(Lanes::sign0(c(f64::NAN)), 0.0, "sign0 NaN");
    is(Lanes::recip(c(4.0)), 0.25, "recip 4");
    is(Lanes::trunc(c(-2.7)), -2.0, "trunc -2.7");
    is(Lanes::floor(c(-2.5)), -3.0, "floor -2.5");
    is(Lanes::ceil(c(-0.5)), -0.0, "ceil -0.5");
    is(Lanes::round(c(2.5)), 3.0, "round 2.5");
    is(Lanes::round(c(-2.5)), -3.0, "round -2.5");
    is(Lanes::round_ties_even(c(2.5)), 2.0, "round_ties_even 2.5");
    is(Lanes::fract(c(-2.5)), -0.5, "fract -2.5");
    is(Lanes::to_degrees(c(std::f64::consts::PI)), 180.0, "to_degrees pi");
    is(Lanes::copysign(c(3.0), c(-0.0)), -3.0, "copysign(3, -0)");
    is(Lanes::clamp(c(5.0), c(-1.0), c(2.0)), 2.0, "clamp(5, -1, 2)");
    is(
        Lanes::clamp(c(f64::NAN), c(-1.0), c(2.0)),
        f64::NAN,
        "clamp(NaN, -1, 2)",
    );
    is(c(-7.0) % c(3.0), -1.0, "-7 % 3");
    is(Lanes::rem_euclid(c(-7.0), c(3.0)), 2.0, "rem_euclid(-7, 3)");
    is(Lanes::div_euclid(c(-7.0), c(3.0)), -3.0, "div_euclid(-7, 3)");
    is(Lanes::min(c(f64::NAN), c(1.0)), 1.0, "min(NaN, 1)");
    is(Lanes::max(c(2.0), c(f64::NAN)), 2.0, "max(2, NaN)");
    is(Lanes::max_da(c(1.0), c(1.0)), 0.5, "max_da tie");
    is(Lanes::max_da(c(1.0), c(f64::NAN)), 1.0, "max_da(1, NaN)");
    is(Lanes::max_da(c(f64::NAN), c(1.0)), 0.0, "max_da(NaN, 1)");
    is(Lanes::min_da(c(0.0), c(1.0)), 1.0, "min_da(0, 1)");
    is(Lanes::min_da(c(2.0), c(1.0)), 0.0, "min_da(2, 1)");
    // 0.1 * 10 - 1 is 0 unfused (both roundings), not fused.
    let of = <L::Elem as Float>::of;
    let fused = of(0.1).mul_add_std(of(10.0), of(-1.0));
    assert!(!fused.is_zero());
    for j in 0..L::LANES {
        assert_eq!(
            Lanes::mul_add(c(0.1), c(10.0), c(-1.0)).lane(j).bits(),
            fused.bits(),
            "mul_add, lane {j}"
        );
    }
}

#[test]
fn exact_values_on_every_lane_type() {
    exact_values::<f64x4>();
    exact_values::<f64>();
    exact_values::<f32x8>();
    exact_values::<f32>();
}

/// Loads, stores, lanes, masks and selects, on distinct values in every lane.
#[allow(clippy::needless_range_loop)] // lanes are read by index
fn lane_plumbing<L: Lanes>()
where
    L::Elem: Float,
{
    let n = L::LANES;
    let xs: Vec<L::Elem> = (0..n + 3).map(|i| <L::Elem as Float>::of(i as f64 + 0.5)).collect();
    let v = L::from_slice(&xs[1..]);
    for j in 0..n {
        assert_eq!(v.lane(j), xs[1 + j]);
    }
    let mut out = vec![<L::Elem as Float>::of(-1.0); n + 2];
    v.write_to_slice(&mut out[1..]);
    assert_eq!(&out[1..n + 1], &xs[1..n + 1]);
    assert_eq!(
        (out[0], out[n + 1]),
        (<L::Elem as Float>::of(-1.0), <L::Elem as Float>::of(-1.0))
    );
    // A partial chunk of `n - 1` samples, padded; its store leaves the rest alone.
    let pad = <L::Elem as Float>::of(9.0);
    let p = L::from_slice_partial(&xs[..n - 1], pad);
    for j in 0..n {
        assert_eq!(p.lane(j), if j < n - 1 { xs[j] } else { pad });
    }
    let mut out = vec![<L::Elem as Float>::of(-1.0); n];
    (p + p).write_to_slice_partial(&mut out[..n - 1]);
    for j in 0..n {
        let want = if j < n - 1 {
            <L::Elem as Float>::of(2.0 * (j as f64 + 0.5))
        } else {
            <L::Elem as Float>::of(-1.0)
        };
        assert_eq!(out[j], want);
    }
    // Masks: lane j of `v < 2.5` is set for the lanes holding 1.5 (j = 0) only, and so on.
    let two = L::splat_f64(2.0);
    let lt = Lanes::lt(v, two);
    let ge = Lanes::ge(v, two);
    for j in 0..n {
        assert_eq!(lt.lane(j), j == 0);
        assert_eq!(ge.lane(j), j != 0);
        assert_eq!(Lanes::le(v, L::splat_f64(1.5)).lane(j), j == 0);
        assert_eq!(Lanes::gt(v, L::splat_f64(1.5)).lane(j), j != 0);
        assert_eq!(Lanes::eq(v, L::splat_f64(1.5)).lane(j), j == 0);
        assert_eq!(Lanes::ne(v, L::splat_f64(1.5)).lane(j), j != 0);
        assert!(lt.or(ge).lane(j));
        assert!(!lt.and(ge).lane(j));
        assert_eq!(lt.not().lane(j), j != 0);
    }
    let nan = L::splat_f64(f64::NAN);
    assert!(Lanes::ne(nan, nan).all() && !Lanes::eq(nan, nan).any() && !Lanes::lt(nan, two).any());
    assert_eq!((lt.any(), lt.all(), lt.or(ge).all()), (true, n == 1, true));
    assert!(<L::Mask as LaneMask>::splat(true).all() && !<L::Mask as LaneMask>::splat(false).any());
    let s = L::select(lt, L::splat_f64(-1.0), v);
    for j in 0..n {
        assert_eq!(
            s.lane(j),
            if j == 0 {
                <L::Elem as Float>::of(-1.0)
            } else {
                v.lane(j)
            }
        );
    }
}

#[test]
fn loads_stores_masks_and_selects() {
    lane_plumbing::<f64x4>();
    lane_plumbing::<f64>();
    lane_plumbing::<f32x8>();
    lane_plumbing::<f32>();
}

#[test]
#[should_panic(expected = "clamp")]
fn clamp_panics_as_std_when_min_exceeds_max_in_a_lane() {
    let lo = f64x4::new([0.0, 0.0, 3.0, 0.0]);
    let _ = Lanes::clamp(f64x4::splat(1.0), lo, f64x4::splat(2.0));
}

#[test]
#[should_panic(expected = "partial chunk")]
fn a_partial_chunk_longer_than_the_lanes_panics() {
    let _ = <f64x4 as Lanes>::from_slice_partial(&[1.0; 5], 0.0);
}
