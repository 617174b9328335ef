// `unsafe` blocks are not supported.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    unsafe { std::ptr::read(&x) }
}

fn main() {}
