// `custom_rule` without any rule.
use fluxion::custom_rule;

#[custom_rule]
fn f(x: f64) -> f64 {
    x
}

fn main() {}
