// The same rule given twice.
use fluxion::custom_rule;

#[custom_rule(jvp = f_jvp, jvp = f_jvp)]
fn f(x: f64) -> f64 {
    x
}

fn f_jvp(x: f64, dx: f64) -> (f64, f64) {
    (x, dx)
}

fn main() {}
