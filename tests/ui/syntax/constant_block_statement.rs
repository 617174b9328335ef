// An array length given by a block whose one statement is not an expression.
use fluxion::grad;

macro_rules! len {
    () => {
        2
    };
}

#[grad]
fn f(x: f64) -> f64 {
    let v = [x; {
        len! {}
    }];
    v[0] * v[1]
}

fn main() {}
