// A rule named without its function.
use fluxion::custom_rule;

#[custom_rule(jvp)]
fn f(x: f64) -> f64 {
    x
}

fn main() {}
