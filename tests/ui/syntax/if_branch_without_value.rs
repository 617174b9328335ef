// One branch of an `if` used as a value ends with a statement, not a value.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let y = if x > 0.0 {
        x
    } else {
        -x;
    };
    y
}

fn main() {}
