// A custom rule on a method taking `self`.
use fluxion::custom_rule;

struct Scale(f64);

impl Scale {
    #[custom_rule(jvp = scale_jvp)]
    fn apply(&self, x: f64) -> f64 {
        self.0 * x
    }
}

fn scale_jvp(s: &Scale, x: f64, dx: f64) -> (f64, f64) {
    (s.0 * x, s.0 * dx)
}

fn main() {
    let _ = Scale(2.0).apply(1.0);
}
