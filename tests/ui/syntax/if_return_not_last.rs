// An `if` branch that contains `return` must end with it.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    if x > 0.0 {
        let y = x * 2.0;
        if y > 1.0 {
            return y;
        }
    }
    x
}

fn main() {}
