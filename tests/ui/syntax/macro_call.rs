// Macro calls are not supported in the body.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    println!("{x}");
    x * x
}

fn main() {}
