// A float method called with the wrong number of arguments.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x.powf()
}

fn main() {}
