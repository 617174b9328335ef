// Reverse mode through a function with only a forward rule, on an array signature
// (where the reverse rule is not derived).
use fluxion::{custom_rule, grad};

#[custom_rule(jvp = norm_jvp)]
fn norm(v: [f64; 2]) -> f64 {
    (v[0] * v[0] + v[1] * v[1]).sqrt()
}

fn norm_jvp(v: [f64; 2], dv: [f64; 2]) -> (f64, f64) {
    let n = norm(v);
    (n, (v[0] * dv[0] + v[1] * dv[1]) / n)
}

#[grad]
fn f(v: [f64; 2]) -> f64 {
    2.0 * norm(v)
}

fn main() {
    let _ = f_grad([3.0, 4.0]);
}
