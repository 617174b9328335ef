// A function with a custom rule must return a value.
use fluxion::custom_rule;

#[custom_rule(jvp = f_jvp)]
fn f(x: f64) {
    let _ = x;
}

fn f_jvp(x: f64, dx: f64) -> (f64, f64) {
    (x, dx)
}

fn main() {}
