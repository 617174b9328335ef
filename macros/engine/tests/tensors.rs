//! nalgebra operations in the body (`lower/tensor.rs`), interpreted, at random static shapes.
//!
//! Every operation the lowering supports (`W * x`, `a + b`, `a - b`, `s * a`, `a * s`,
//! `a / s`, `-a`, `transpose`, `dot`, `cross`, `norm`, `norm_squared`, `normalize`, `sum`,
//! `component_mul`, `component_div`, `add_scalar`, `map`, `len`/`nrows`/`ncols`, the
//! constructors `zeros`, `from_element`, `from_fn`, `new`, `Vector3::new`, element writes
//! into `let mut` tensors, a computed matrix returned) is written into source text with
//! shapes drawn at random (rows and columns in `1..=5`, seeded by the operation's name, so
//! every run draws the same shapes), lowered, transformed and run by the interpreter with
//! `SMatrix`/`SVector` arguments (`Ty::Matrix`, values stored row by row). Two functions
//! per operation and shape:
//! - the operation's value returned (a matrix, through `tensor_result`, or a float): the
//!   primal against the same operation computed here on `Vec<Vec<f64>>`, the Jacobian
//!   from `vjp` against central differences of the interpreted primal, the one from `jvp`
//!   against the one from `vjp`;
//! - the value composed with a scalar nonlinearity (`Σ sin(y[i, j] c[i, j])` with weights
//!   that differ by position, or `sin(0.75 y) y + y² / 2` of a float), so that second
//!   derivatives are not trivial: the primal against the reference, the gradient against
//!   central differences, the Hessians of `jvp(vjp)` and `vjp(vjp)` against central
//!   differences of the reverse gradient, symmetric and equal to each other.
//!
//! Then the documented non-differentiable point (`norm` at zero: value and gradient exactly
//! zero, never NaN; `normalize` at zero is NaN, as nalgebra's) and the static shape errors.
//! `FLUXION_TENSOR_SHAPES` (default 4) shapes per operation, `FLUXION_TENSOR_POINTS`
//! (default 3) points per shape.

mod common;

use common::*;
use fluxion_engine::ir::Ty;

/// A matrix of the reference computations: rows of columns (a float is `1 x 1`).
type M = Vec<Vec<f64>>;

/// An operation computed on reference matrices.
type NativeOp = Box<dyn Fn(&[M]) -> M>;

/// Primal against the reference: both sum the same products in the same order (`k` from
/// the first product, elements row by row), so they agree to rounding of the last
/// operations (`sin`, `sqrt` of the interpreter and of std are one function): 4 ulps of
/// `max(1, |y|)`.
const NATIVE_ULPS: f64 = 4.0;

/// Forward against reverse mode: the same products accumulated in other orders through
/// up to 5 x 5 x 5 loops; 64 ulps of the largest entry.
const MODE_ULPS: f64 = 64.0;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// An argument: a float (`rows == 0`) or a matrix, with its type's spelling and the range
/// its floats are sampled from.
#[derive(Clone)]
struct Arg {
    name: &'static str,
    rows: usize,
    cols: usize,
    ty: String,
    range: (f64, f64),
}

fn float(name: &'static str, range: (f64, f64)) -> Arg {
    Arg {
        name,
        rows: 0,
        cols: 0,
        ty: "f64".into(),
        range,
    }
}

fn mat(name: &'static str, rows: usize, cols: usize) -> Arg {
    Arg {
        name,
        rows,
        cols,
        ty: mat_ty(rows, cols),
        range: (-1.5, 1.5),
    }
}

/// `SVector<f64, R>` for one column, else `SMatrix<f64, R, C>`.
fn mat_ty(rows: usize, cols: usize) -> String {
    if cols == 1 {
        format!("SVector<f64, {rows}>")
    } else {
        format!("SMatrix<f64, {rows}, {cols}>")
    }
}

impl Arg {
    fn range(self, lo: f64, hi: f64) -> Arg {
        Arg {
            range: (lo, hi),
            ..self
        }
    }
    fn ty(self, ty: &str) -> Arg {
        Arg { ty: ty.into(), ..self }
    }
    /// The interpreter's value (a matrix is its rows, each its columns).
    fn template(&self) -> Value {
        if self.rows == 0 {
            Value::F(0.0)
        } else {
            Value::Arr(vec![Value::Arr(vec![Value::F(0.0); self.cols]); self.rows])
        }
    }
    fn n(&self) -> usize {
        if self.rows == 0 {
            1
        } else {
            self.rows * self.cols
        }
    }
}

/// One operation at one shape.
struct Case {
    args: Vec<Arg>,
    /// Statements before the value (element writes), may be empty.
    stmts: String,
    /// The operation's value.
    expr: String,
    /// The value's shape: `None` for a float.
    out: Option<(usize, usize)>,
    /// The operation computed here.
    native: NativeOp,
    /// Points where the function is smooth enough for differences.
    valid: fn(&[M]) -> bool,
}

impl Case {
    fn new(args: Vec<Arg>, expr: String, out: Option<(usize, usize)>, native: impl Fn(&[M]) -> M + 'static) -> Case {
        Case {
            args,
            stmts: String::new(),
            expr,
            out,
            native: Box::new(native),
            valid: |_| true,
        }
    }
    fn stmts(self, stmts: String) -> Case {
        Case { stmts, ..self }
    }
    fn valid(self, valid: fn(&[M]) -> bool) -> Case {
        Case { valid, ..self }
    }

    fn params(&self) -> String {
        self.args
            .iter()
            .map(|a| format!("{}: {}", a.name, a.ty))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The function returning the operation's value.
    fn direct_src(&self) -> String {
        let ret = match self.out {
            None => "f64".to_string(),
            Some((r, c)) => mat_ty(r, c),
        };
        format!("fn f({}) -> {ret} {{ {} {} }}", self.params(), self.stmts, self.expr)
    }

    /// The function composing the value with a scalar nonlinearity.
    fn composed_src(&self) -> String {
        let tail = match self.out {
            None => "(y * 0.75).sin() * y + 0.5 * y * y".to_string(),
            Some((r, c)) => {
                let at = if c == 1 { "y[i]" } else { "y[(i, j)]" };
                format!(
                    "let mut t = 0.0; for i in 0..{r} {{ for j in 0..{c} {{ t += ({at} * (1.0 + 0.25 * (i as f64) + 0.5 * (j as f64))).sin(); }} }} t"
                )
            }
        };
        format!(
            "fn f({}) -> f64 {{ {} let y = {}; {tail} }}",
            self.params(),
            self.stmts,
            self.expr
        )
    }

    /// The arguments as reference matrices, from the flattened inputs.
    fn split(&self, x: &[f64]) -> Vec<M> {
        let mut it = x.iter().copied();
        self.args
            .iter()
            .map(|a| {
                let (r, c) = if a.rows == 0 { (1, 1) } else { (a.rows, a.cols) };
                (0..r)
                    .map(|_| (0..c).map(|_| it.next().unwrap_or(f64::NAN)).collect())
                    .collect()
            })
            .collect()
    }

    fn native_direct(&self, x: &[f64]) -> Vec<f64> {
        (self.native)(&self.split(x)).concat()
    }

    fn native_composed(&self, x: &[f64]) -> Vec<f64> {
        let y = (self.native)(&self.split(x));
        let v = match self.out {
            None => {
                let y = y[0][0];
                (y * 0.75).sin() * y + 0.5 * y * y
            }
            Some(_) => {
                let mut t = 0.0;
                for (i, row) in y.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        t += (v * (1.0 + 0.25 * (i as f64) + 0.5 * (j as f64))).sin();
                    }
                }
                t
            }
        };
        vec![v]
    }

    fn template(&self) -> Vec<Value> {
        self.args.iter().map(Arg::template).collect()
    }

    fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        for _ in 0..1000 {
            let x: Vec<f64> = self
                .args
                .iter()
                .flat_map(|a| (0..a.n()).map(|_| a.range).collect::<Vec<_>>())
                .map(|(lo, hi)| rng.uniform(lo, hi))
                .collect();
            if (self.valid)(&self.split(&x)) {
                return x;
            }
        }
        panic!("no valid point for {}", self.direct_src())
    }
}

fn primal_close(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(a, b)| ulps_close(*a, *b, NATIVE_ULPS, 1.0))
}

/// Every check of the module doc on one case.
fn check_case(case: &Case, rng: &mut Rng, points: usize) -> Result<(), String> {
    let rules = RuleTable::standard();
    let (dsrc, csrc) = (case.direct_src(), case.composed_src());
    let direct = Harness::new(
        &dsrc,
        lower(&dsrc).map_err(|e| format!("{dsrc}: {e}"))?,
        case.template(),
        &rules,
    );
    let composed = Harness::new(
        &csrc,
        lower(&csrc).map_err(|e| format!("{csrc}: {e}"))?,
        case.template(),
        &rules,
    );
    for _ in 0..points {
        let x = case.sample(rng);
        // The operation's value.
        let at = |what: &str| format!("`{dsrc}`: {what} at {x:?}");
        let (got, want) = (direct.primal_flat(&x)?, case.native_direct(&x));
        if !primal_close(&got, &want) {
            return Err(at(&format!("primal {got:?}, reference {want:?}")));
        }
        let fd = direct.fd_jacobian(&x)?;
        let rev = direct.jac_rev(&x)?;
        let fwd = direct.jac_fwd(&x)?;
        compare(&at("vjp Jacobian vs finite differences"), &rev, &fd, fd_close)?;
        let s = max_abs(&rev);
        compare(&at("jvp columns vs vjp rows"), &fwd, &rev, |a, b| {
            ulps_close(a, b, MODE_ULPS, s)
        })?;
        // Composed with a nonlinearity: to second order.
        let at = |what: &str| format!("`{csrc}`: {what} at {x:?}");
        let (got, want) = (composed.primal_flat(&x)?, case.native_composed(&x));
        if !primal_close(&got, &want) {
            return Err(at(&format!("primal {got:?}, reference {want:?}")));
        }
        let fd = composed.fd_jacobian(&x)?;
        let rev = composed.jac_rev(&x)?;
        let fwd = composed.jac_fwd(&x)?;
        compare(&at("gradient vs finite differences"), &rev, &fd, fd_close)?;
        let s = max_abs(&rev);
        compare(&at("jvp vs vjp"), &fwd, &rev, |a, b| ulps_close(a, b, MODE_ULPS, s))?;
        let fd2 = composed.fd_hessian_of_grad(&x)?;
        let hf = composed.hess_fwd_rev(&x)?;
        let hr = composed.hess_rev_rev(&x)?;
        compare(
            &at("jvp(vjp) Hessian vs differences of the gradient"),
            &hf,
            &fd2,
            fd_close,
        )?;
        compare(
            &at("vjp(vjp) Hessian vs differences of the gradient"),
            &hr,
            &fd2,
            fd_close,
        )?;
        let s = max_abs(&hf).max(max_abs(&hr));
        let close = |a: f64, b: f64| ulps_close(a, b, MODE_ULPS, s);
        compare(&at("jvp(vjp) Hessian symmetry"), &hf, &transpose(&hf), close)?;
        compare(&at("jvp(vjp) vs vjp(vjp) Hessian"), &hf, &hr, close)?;
    }
    Ok(())
}

/// Shapes drawn for one case: `r`, `c`, `k`, `n` each in `1..=5`.
#[derive(Clone, Copy, Debug)]
struct Dims {
    r: usize,
    c: usize,
    k: usize,
    n: usize,
}

fn dim(rng: &mut Rng) -> usize {
    1 + (rng.next_u64() % 5) as usize
}

/// The operation `make` builds, at `FLUXION_TENSOR_SHAPES` random shapes.
fn check_op(name: &str, make: impl Fn(Dims) -> Case) {
    let mut rng = Rng::for_name(name);
    let shapes = env_count("FLUXION_TENSOR_SHAPES", 4);
    let points = env_count("FLUXION_TENSOR_POINTS", 3);
    for _ in 0..shapes {
        let d = Dims {
            r: dim(&mut rng),
            c: dim(&mut rng),
            k: dim(&mut rng),
            n: dim(&mut rng),
        };
        let case = make(d);
        check_case(&case, &mut rng, points).unwrap_or_else(|e| panic!("{name} at {d:?}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------
// The reference operations

fn mm(a: &M, b: &M) -> M {
    (0..a.len())
        .map(|i| {
            (0..b[0].len())
                .map(|j| {
                    let mut s = a[i][0] * b[0][j];
                    for k in 1..b.len() {
                        s += a[i][k] * b[k][j];
                    }
                    s
                })
                .collect()
        })
        .collect()
}

fn zip(a: &M, b: &M, f: impl Fn(f64, f64) -> f64) -> M {
    a.iter()
        .zip(b)
        .map(|(r, s)| r.iter().zip(s).map(|(x, y)| f(*x, *y)).collect())
        .collect()
}

fn each(a: &M, f: impl Fn(f64) -> f64) -> M {
    a.iter().map(|r| r.iter().map(|x| f(*x)).collect()).collect()
}

fn tr(a: &M) -> M {
    (0..a[0].len()).map(|j| a.iter().map(|r| r[j]).collect()).collect()
}

/// `Σ f(a[i, j])`, row by row.
fn total(a: &M, f: impl Fn(f64) -> f64) -> f64 {
    let mut s = 0.0;
    for r in a {
        for x in r {
            s += f(*x);
        }
    }
    s
}

fn one(x: f64) -> M {
    vec![vec![x]]
}

fn norm(a: &M) -> f64 {
    total(a, |x| x * x).sqrt()
}

fn away_from_zero(args: &[M]) -> bool {
    norm(&args[0]) >= 0.3
}

/// `name[(i, j)]`, or `name[i]` for a vector.
fn at(name: &str, i: usize, j: usize, cols: usize) -> String {
    if cols == 1 {
        format!("{name}[{i}]")
    } else {
        format!("{name}[({i}, {j})]")
    }
}

// ---------------------------------------------------------------------------------------
// Products and arithmetic

#[test]
fn matrix_times_matrix() {
    check_op("matmul", |d| {
        Case::new(
            vec![mat("w", d.r, d.k), mat("m", d.k, d.c)],
            "w * m".into(),
            Some((d.r, d.c)),
            |a| mm(&a[0], &a[1]),
        )
    });
}

#[test]
fn matrix_times_vector() {
    check_op("matvec", |d| {
        Case::new(
            vec![mat("w", d.r, d.k), mat("x", d.k, 1)],
            "w * x".into(),
            Some((d.r, 1)),
            |a| mm(&a[0], &a[1]),
        )
    });
}

/// A computed left side (row by row) times a stored right one, and a chain of three.
#[test]
fn computed_times_matrix() {
    check_op("computed_matmul", |d| {
        Case::new(
            vec![mat("w", d.r, d.k), mat("m", d.k, d.c), mat("x", d.c, 1)],
            "(w * m).transpose().transpose() * x".into(),
            Some((d.r, 1)),
            |a| mm(&mm(&a[0], &a[1]), &a[2]),
        )
    });
}

#[test]
fn add_and_sub() {
    check_op("add", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c)],
            "a + b".into(),
            Some((d.r, d.c)),
            |a| zip(&a[0], &a[1], |x, y| x + y),
        )
    });
    check_op("sub", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c)],
            "a - b".into(),
            Some((d.r, d.c)),
            |a| zip(&a[0], &a[1], |x, y| x - y),
        )
    });
}

#[test]
fn scalar_products_and_division() {
    check_op("scalar_left", |d| {
        Case::new(
            vec![float("s", (-1.5, 1.5)), mat("a", d.r, d.c)],
            "s * a".into(),
            Some((d.r, d.c)),
            |a| each(&a[1], |x| a[0][0][0] * x),
        )
    });
    check_op("scalar_right", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), float("s", (-1.5, 1.5))],
            "a * s".into(),
            Some((d.r, d.c)),
            |a| each(&a[0], |x| x * a[1][0][0]),
        )
    });
    check_op("divide", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), float("s", (0.5, 1.5))],
            "a / s".into(),
            Some((d.r, d.c)),
            |a| each(&a[0], |x| x / a[1][0][0]),
        )
    });
}

#[test]
fn negation() {
    check_op("neg", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c)],
            "-(a - b)".into(),
            Some((d.r, d.c)),
            |a| zip(&a[0], &a[1], |x, y| -(x - y)),
        )
    });
}

#[test]
fn transposed() {
    check_op("transpose", |d| {
        Case::new(
            vec![mat("a", d.r, d.c)],
            "a.transpose()".into(),
            Some((d.c, d.r)),
            |a| tr(&a[0]),
        )
    });
}

// ---------------------------------------------------------------------------------------
// Reductions

#[test]
fn dot_products() {
    check_op("dot_vectors", |d| {
        Case::new(
            vec![mat("u", d.n, 1), mat("v", d.n, 1)],
            "u.dot(&v)".into(),
            None,
            |a| one(total(&zip(&a[0], &a[1], |x, y| x * y), |x| x)),
        )
    });
    check_op("dot_matrices", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c)],
            "a.dot(&b)".into(),
            None,
            |a| one(total(&zip(&a[0], &a[1], |x, y| x * y), |x| x)),
        )
    });
}

#[test]
fn norms_and_sum() {
    check_op("norm", |d| {
        Case::new(vec![mat("u", d.n, d.c)], "u.norm()".into(), None, |a| one(norm(&a[0]))).valid(away_from_zero)
    });
    check_op("norm_squared", |d| {
        Case::new(vec![mat("u", d.r, d.n)], "u.norm_squared()".into(), None, |a| {
            one(total(&a[0], |x| x * x))
        })
    });
    check_op("sum", |d| {
        Case::new(vec![mat("a", d.r, d.c)], "a.sum()".into(), None, |a| {
            one(total(&a[0], |x| x))
        })
    });
}

#[test]
fn normalized() {
    check_op("normalize", |d| {
        Case::new(
            vec![mat("u", d.n, d.k)],
            "u.normalize()".into(),
            Some((d.n, d.k)),
            |a| {
                let n = norm(&a[0]);
                each(&a[0], |x| x / n)
            },
        )
        .valid(away_from_zero)
    });
}

#[test]
fn cross_product() {
    check_op("cross", |_| {
        Case::new(
            vec![mat("u", 3, 1).ty("Vector3<f64>"), mat("v", 3, 1)],
            "u.cross(&v)".into(),
            Some((3, 1)),
            |a| {
                let (u, v) = (&a[0], &a[1]);
                vec![
                    vec![u[1][0] * v[2][0] - u[2][0] * v[1][0]],
                    vec![u[2][0] * v[0][0] - u[0][0] * v[2][0]],
                    vec![u[0][0] * v[1][0] - u[1][0] * v[0][0]],
                ]
            },
        )
    });
}

// ---------------------------------------------------------------------------------------
// Elementwise

#[test]
fn componentwise() {
    check_op("component_mul", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c)],
            "a.component_mul(&b)".into(),
            Some((d.r, d.c)),
            |a| zip(&a[0], &a[1], |x, y| x * y),
        )
    });
    check_op("component_div", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), mat("b", d.r, d.c).range(0.5, 1.5)],
            "a.component_div(&b)".into(),
            Some((d.r, d.c)),
            |a| zip(&a[0], &a[1], |x, y| x / y),
        )
    });
}

#[test]
fn add_scalar_and_map() {
    check_op("add_scalar", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), float("s", (-1.5, 1.5))],
            "a.add_scalar(s * s)".into(),
            Some((d.r, d.c)),
            |a| each(&a[0], |x| x + a[1][0][0] * a[1][0][0]),
        )
    });
    check_op("map", |d| {
        Case::new(
            vec![mat("a", d.r, d.c), float("s", (-1.5, 1.5))],
            "a.map(|x| (x * s).tanh() + x * x)".into(),
            Some((d.r, d.c)),
            |a| each(&a[0], |x| (x * a[1][0][0]).tanh() + x * x),
        )
    });
}

/// `len`, `nrows`, `ncols`: integers from the shape, so the derivative in `s` checks them.
#[test]
fn sizes() {
    check_op("sizes", |d| {
        let (r, c) = (d.r, d.c);
        Case::new(
            vec![mat("a", d.r, d.c), float("s", (-1.5, 1.5))],
            "s * (a.len() as f64) + (a.nrows() as f64) * s * s + (a.ncols() as f64) * a.sum()".into(),
            None,
            move |a| {
                let s = a[1][0][0];
                one(s * ((r * c) as f64) + (r as f64) * s * s + (c as f64) * total(&a[0], |x| x))
            },
        )
    });
}

// ---------------------------------------------------------------------------------------
// Constructors and element writes

/// `zeros`, then element writes into it (row 0 left zero).
#[test]
fn zeros_and_element_writes() {
    check_op("zeros", |d| {
        let (r, c) = (d.r, d.c);
        let write = if c == 1 {
            "z[i] = a[i] * a[i] * s;".to_string()
        } else {
            "for j in 0..COLS { z[(i, j)] = a[(i, j)] * a[(i, j)] * s; }".replace("COLS", &c.to_string())
        };
        Case::new(
            vec![mat("a", r, c), float("s", (-1.5, 1.5))],
            "z".into(),
            Some((r, c)),
            |a| {
                let s = a[1][0][0];
                let mut z = each(&a[0], |x| x * x * s);
                z[0].iter_mut().for_each(|x| *x = 0.0);
                z
            },
        )
        .stmts(format!(
            "let mut z = {}::zeros(); for i in 1..{r} {{ {write} }}",
            if c == 1 {
                format!("SVector::<f64, {r}>")
            } else {
                format!("SMatrix::<f64, {r}, {c}>")
            }
        ))
    });
}

/// A `let mut` copy of a computed tensor stays one: an element written, then used.
#[test]
fn element_write_into_a_copy() {
    check_op("let_mut_copy", |d| {
        let (r, c) = (d.r, d.c);
        let z0 = at("z", 0, 0, r);
        Case::new(
            vec![mat("a", r, c), float("s", (-1.5, 1.5))],
            "z * s".into(),
            Some((c, r)),
            |a| {
                let s = a[1][0][0];
                let mut z = tr(&a[0]);
                z[0][0] = (z[0][0] * s).sin();
                each(&z, |x| x * s)
            },
        )
        .stmts(format!("let mut z = a.transpose(); {z0} = ({z0} * s).sin();"))
    });
}

#[test]
fn from_element() {
    check_op("from_element", |d| {
        let (r, c) = (d.r, d.c);
        Case::new(
            vec![mat("a", r, c), float("s", (-1.5, 1.5))],
            format!("SMatrix::<f64, {r}, {c}>::from_element(s * s).component_mul(&a)"),
            Some((r, c)),
            |a| {
                let s = a[1][0][0];
                each(&a[0], |x| s * s * x)
            },
        )
    });
}

#[test]
fn from_fn() {
    check_op("from_fn", |d| {
        let (r, c) = (d.r, d.c);
        let aij = at("a", 0, 0, c).replace("[(0, 0)]", "[(i, j)]").replace("[0]", "[i]");
        Case::new(
            vec![mat("a", r, c), float("s", (-1.5, 1.5))],
            format!(
                "{}::from_fn(|i, j| {aij} * s + (i as f64) - 0.5 * (j as f64))",
                if c == 1 {
                    format!("SVector::<f64, {r}>")
                } else {
                    format!("SMatrix::<f64, {r}, {c}>")
                }
            ),
            Some((r, c)),
            |a| {
                let s = a[1][0][0];
                a[0].iter()
                    .enumerate()
                    .map(|(i, row)| {
                        row.iter()
                            .enumerate()
                            .map(|(j, x)| x * s + (i as f64) - 0.5 * (j as f64))
                            .collect()
                    })
                    .collect()
            },
        )
    });
}

/// `new(..)` takes the elements row by row (nalgebra's order).
#[test]
fn new_row_by_row() {
    check_op("new", |d| {
        let (r, c) = (d.r, d.c);
        let elems: Vec<String> = (0..r)
            .flat_map(|i| (0..c).map(move |j| (i, j)))
            .map(|(i, j)| format!("{} * s", at("a", i, j, c)))
            .collect();
        let ty = if c == 1 {
            format!("SVector::<f64, {r}>")
        } else {
            format!("SMatrix::<f64, {r}, {c}>")
        };
        Case::new(
            vec![mat("a", r, c), float("s", (-1.5, 1.5))],
            format!("{ty}::new({})", elems.join(", ")),
            Some((r, c)),
            |a| each(&a[0], |x| x * a[1][0][0]),
        )
    });
    check_op("vector3_new", |_| {
        Case::new(
            vec![mat("u", 3, 1), float("s", (-1.5, 1.5))],
            "Vector3::new(u[0] * s, u[1].sin(), u[2] + s)".into(),
            Some((3, 1)),
            |a| {
                let (u, s) = (&a[0], a[1][0][0]);
                vec![vec![u[0][0] * s], vec![u[1][0].sin()], vec![u[2][0] + s]]
            },
        )
    });
}

/// Operations chained as in a layer: `tanh(W x + b)` against a target, with a norm.
#[test]
fn a_layer() {
    check_op("layer", |d| {
        Case::new(
            vec![mat("w", d.r, d.k), mat("x", d.k, 1), mat("b", d.r, 1)],
            "(w * x + b).map(|t| t.tanh()) - b * 0.5".into(),
            Some((d.r, 1)),
            |a| {
                let h = zip(&mm(&a[0], &a[1]), &a[2], |x, y| x + y);
                zip(&each(&h, f64::tanh), &a[2], |x, y| x - y * 0.5)
            },
        )
    });
}

// ---------------------------------------------------------------------------------------
// The documented non-differentiable point and shape errors

/// `norm` at the zero vector (and matrix): value 0, gradient exactly 0 (the documented
/// subgradient, not `sqrt'(0) · 0 = NaN`), forward tangent 0, the Hessian-vector products
/// finite; `normalize` there is NaN, as nalgebra's.
#[test]
fn norm_at_zero() {
    let rules = RuleTable::standard();
    let mut rng = Rng::for_name("norm_at_zero");
    for _ in 0..6 {
        let (r, c) = (dim(&mut rng), dim(&mut rng));
        let src = format!("fn f(u: {}) -> f64 {{ u.norm() }}", mat_ty(r, c));
        let h = Harness::new(&src, lower(&src).unwrap(), vec![mat("u", r, c).template()], &rules);
        let n = r * c;
        let zero = vec![0.0; n];
        assert_eq!(h.primal_flat(&zero).unwrap(), vec![0.0], "{src}");
        let g = h.grad(&zero).unwrap();
        assert!(g.iter().all(|x| *x == 0.0), "{src}: gradient at zero {g:?}");
        for k in 0..n {
            let u = unit(n, k);
            let (y, t) = h.jvp(&zero, &u).unwrap();
            assert_eq!((y, t.clone()), (vec![0.0], vec![0.0]), "{src}: jvp along e_{k}");
            for hv in [h.hvp_fwd_rev(&zero, &u).unwrap(), h.hvp_rev_rev(&zero, &u).unwrap()] {
                assert!(hv.iter().all(|x| x.is_finite()), "{src}: H e_{k} at zero {hv:?}");
            }
        }
        // Off zero the gradient is `u / |u|`: the convention is only at zero.
        let x: Vec<f64> = (0..n).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let g = h.grad(&x).unwrap();
        for (gi, xi) in g.iter().zip(&x) {
            assert!(ulps_close(*gi, xi / nx, 4.0, 1.0), "{src}: gradient {g:?} at {x:?}");
        }
        let src = format!("fn f(u: {}) -> {} {{ u.normalize() }}", mat_ty(r, c), mat_ty(r, c));
        let h = Harness::new(&src, lower(&src).unwrap(), vec![mat("u", r, c).template()], &rules);
        let y = h.primal_flat(&zero).unwrap();
        assert!(y.len() == n && y.iter().all(|v| v.is_nan()), "{src}: {y:?}");
    }
}

/// A static mismatch is a lowering error that says what must match, at random shapes.
#[test]
fn shape_errors() {
    let err = lower("fn f(w: SMatrix<f64, 3, 4>, x: SVector<f64, 3>) -> f64 { let y = w * x; y.sum() }")
        .expect_err("a 3 x 4 matrix times a 3-vector lowered");
    assert!(
        err.contains("3 x 4") && err.contains("columns of the left must match the rows of the right"),
        "{err}"
    );
    let mut rng = Rng::for_name("shape_errors");
    let mut seen = 0;
    while seen < 8 {
        let (r, c, k) = (dim(&mut rng), dim(&mut rng), dim(&mut rng));
        if c == k {
            continue;
        }
        seen += 1;
        let src = format!(
            "fn f(w: {}, m: {}) -> f64 {{ let y = w * m; y.sum() }}",
            mat_ty(r, c),
            mat_ty(k, r)
        );
        let err = lower(&src).expect_err(&src);
        assert!(err.contains("must match the rows of the right"), "{src}: {err}");
        let src = format!(
            "fn f(a: {}, b: {}) -> f64 {{ (a + b).sum() }}",
            mat_ty(r, c),
            mat_ty(r, k)
        );
        let err = lower(&src).expect_err(&src);
        assert!(err.contains("the shapes differ"), "{src}: {err}");
        let src = format!("fn f(a: {}, b: {}) -> f64 {{ a.dot(&b) }}", mat_ty(r, c), mat_ty(r, k));
        let err = lower(&src).expect_err(&src);
        assert!(err.contains("the shapes differ"), "{src}: {err}");
        // The matching shapes lower.
        let src = format!(
            "fn f(w: {}, m: {}) -> f64 {{ let y = w * m; y.sum() }}",
            mat_ty(r, c),
            mat_ty(c, k)
        );
        lower(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
    }
}

/// A `let mut` tensor read after element writes is still a tensor: operators and methods
/// on it are tensor operations (not the float operation on an array, which the emitter
/// would spell `z * s` on a Rust array), and a function returning it returns the
/// signature's matrix (`tensor_result`), not the array.
#[test]
fn let_mut_tensor_read_after_writes() {
    let ops = [
        ("z * s", "SMatrix<f64, 3, 2>"),
        ("s * z", "SMatrix<f64, 3, 2>"),
        ("z + z", "SMatrix<f64, 3, 2>"),
        ("-z", "SMatrix<f64, 3, 2>"),
        ("z.transpose()", "SMatrix<f64, 2, 3>"),
        ("z.map(|x| x.sin())", "SMatrix<f64, 3, 2>"),
        ("z", "SMatrix<f64, 3, 2>"),
        ("z.sum()", "f64"),
        ("z.dot(&a)", "f64"),
        ("z.norm()", "f64"),
    ];
    for (e, ret) in ops {
        let src = format!(
            "fn f(a: SMatrix<f64, 3, 2>, s: f64) -> {ret} {{ let mut z = SMatrix::<f64, 3, 2>::zeros(); for i in 0..3 {{ z[(i, 1)] = a[(i, 0)] * s; }} {e} }}"
        );
        let f = lower(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let got = f.ty_of(&f.ret);
        let want_matrix = ret != "f64";
        assert_eq!(
            matches!(got, Ty::Matrix { .. }),
            want_matrix,
            "{src}: the result has type {got:?}"
        );
        if !want_matrix {
            assert!(got.is_float(), "{src}: the result has type {got:?}");
        }
        // And the values, against the reference.
        let h = Harness::new(
            &src,
            f,
            vec![mat("a", 3, 2).template(), Value::F(0.0)],
            &RuleTable::standard(),
        );
        let mut rng = Rng::for_name(&src);
        let x: Vec<f64> = (0..7).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let s = x[6];
        let z: M = (0..3).map(|i| vec![0.0, x[2 * i] * s]).collect();
        let a: M = (0..3).map(|i| vec![x[2 * i], x[2 * i + 1]]).collect();
        let want: Vec<f64> = match e {
            "z * s" | "s * z" => each(&z, |v| v * s).concat(),
            "z + z" => each(&z, |v| v + v).concat(),
            "-z" => each(&z, |v| -v).concat(),
            "z.transpose()" => tr(&z).concat(),
            "z.map(|x| x.sin())" => each(&z, f64::sin).concat(),
            "z" => z.concat(),
            "z.sum()" => vec![total(&z, |v| v)],
            "z.dot(&a)" => vec![total(&zip(&z, &a, |p, q| p * q), |v| v)],
            _ => vec![norm(&z)],
        };
        let got = h.primal_flat(&x).unwrap();
        assert!(primal_close(&got, &want), "{src}: {got:?} vs {want:?}");
        let fd = h.fd_jacobian(&x).unwrap();
        let rev = h.jac_rev(&x).unwrap();
        compare(&src, &rev, &fd, fd_close).unwrap();
    }
}
