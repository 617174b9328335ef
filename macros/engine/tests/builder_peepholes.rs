//! Every fold of `builder.rs`, reached by a user function: the generated code shows the
//! fold (its exact body), and the interpreted derivative has the right value.
//!
//! Folds no user function reached were removed from the builder (`x - 0`, `a - (-x)`,
//! `(-x) / b`, `(-x) + b`): a fold only a seeded defect in the rule table could reach
//! is not worth its code.

use fluxion_engine::attr::Options;
use fluxion_engine::expand::{expand_item_text_with, lower_source};
use fluxion_engine::interp::{Env, Value};
use fluxion_engine::rules::RuleTable;
use fluxion_engine::symbol::Transform;
use fluxion_engine::transforms::{grad, jacfwd, jvp_user, Site};
use proc_macro2::Span;

/// The body of the generated function `name` in the expansion of `src`, one trimmed
/// statement a line.
fn body(src: &str, name: &str) -> String {
    let text = expand_item_text_with(src, None, false).unwrap_or_else(|e| panic!("{e}"));
    let start = text
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"));
    let open = start + text[start..].find("{\n").unwrap_or_else(|| panic!("{text}")) + 2;
    let close = open + text[open..].find("\n}").unwrap_or_else(|| panic!("{text}"));
    text[open..close].lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

fn site() -> Site {
    Site {
        name: Span::call_site(),
        ret: Span::call_site(),
    }
}

/// The derivative built by transform `t` (`grad`, `jacfwd` or `jvp`) of the function in
/// `src` (without its attribute), evaluated by the interpreter at `args`.
fn eval(t: Transform, src: &str, args: &[Value]) -> Value {
    let f = lower_source(src).unwrap_or_else(|e| panic!("{e}"));
    let o = Options::new(t, Span::call_site());
    let rules = RuleTable::standard();
    let g = match t {
        Transform::Grad => grad(&f, &o, &site(), &rules, false),
        Transform::Jacfwd => jacfwd(&f, &o, &site(), &rules),
        _ => jvp_user(&f, &o, &site(), &rules),
    };
    let g = g.unwrap_or_else(|e| panic!("{src}: {e:?}"));
    Env::default().eval(&g, args).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// One fold: the function, the transform, the generated body expected, and the derivative
/// at `x = 0.7` (and `y = -1.3` for two arguments).
struct Case {
    fold: &'static str,
    attr: &'static str,
    transform: Transform,
    src: &'static str,
    generated: &'static str,
    want: fn(f64, f64) -> f64,
}

const CASES: &[Case] = &[
    Case {
        fold: "x / 1 = x",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { x / 1.0 }",
        generated: "1.0",
        want: |_, _| 1.0,
    },
    Case {
        fold: "-(lit) = -lit",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { -(0.5 * x) }",
        generated: "(-0.5)",
        want: |_, _| -0.5,
    },
    Case {
        fold: "-(-x) = x (and x * -1 = -x)",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { -(x.cos()) }",
        generated: "let t_2 = x.sin();\nt_2",
        want: |x, _| x.sin(),
    },
    Case {
        fold: "x * -1 = -x (the -1 second: a cotangent times `-1`, the partial of `-`)",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64, y: f64) -> f64 { (y - x) * y }",
        generated: "let t_2 = -y;\nt_2",
        want: |_, y| -y,
    },
    Case {
        fold: "lit * lit (small integers) and x * 1 = x",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { 3.0 * (2.0 * x) }",
        generated: "6.0",
        want: |_, _| 6.0,
    },
    Case {
        fold: "lit + lit (small integers)",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { x * 2.0 + x * 3.0 }",
        generated: "5.0",
        want: |_, _| 5.0,
    },
    Case {
        fold: "x * (-y) = -(x * y)",
        attr: "grad",
        transform: Transform::Grad,
        src: "fn f(x: f64) -> f64 { x.cos() * 3.0 }",
        generated: "let t_2 = x.sin();\nlet t_4 = 3.0 * t_2;\nlet t_5 = -t_4;\nt_5",
        want: |x, _| -3.0 * x.sin(),
    },
    Case {
        fold: "x * -1 = -x, then a + (-x) = a - x",
        attr: "jvp",
        transform: Transform::Jvp,
        src: "fn f(x: f64, y: f64) -> f64 { x - y * 2.5 }",
        generated: "let t = y * 2.5;\nlet t_dot = 2.5 * y_dot;\nlet t_1 = x - t;\nlet t_dot_1 = x_dot - t_dot;\nlet out = (t_1, t_dot_1);\nout",
        // Tangent (1, 1): 1 - 2.5.
        want: |_, _| -1.5,
    },
];

#[test]
fn every_fold_is_reached_and_gives_the_right_value() {
    for c in CASES {
        let name = format!("f_{}", c.attr);
        let got = body(&format!("#[{}] {}", c.attr, c.src), &name);
        assert_eq!(got, c.generated, "{}: the body of `{name}` for `{}`", c.fold, c.src);
        let (x, y) = (0.7, -1.3);
        let value = match c.transform {
            Transform::Jvp => match eval(
                c.transform,
                c.src,
                &[Value::F(x), Value::F(y), Value::F(1.0), Value::F(1.0)],
            ) {
                Value::Tup(v) => v[1].clone(),
                other => panic!("{other:?}"),
            },
            t if c.src.contains("y: f64") => eval(t, c.src, &[Value::F(x), Value::F(y)]),
            t => eval(t, c.src, &[Value::F(x)]),
        };
        assert_eq!(
            value,
            Value::F((c.want)(x, y)),
            "{}: the derivative of `{}`",
            c.fold,
            c.src
        );
    }
}
