// A cast to a type that is not a number.
use fluxion::grad;

#[grad]
fn f(x: f64, n: i32) -> f64 {
    if n as bool {
        x
    } else {
        2.0 * x
    }
}

fn main() {}
