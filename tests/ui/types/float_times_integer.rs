// `x * 2` on an f64: rustc's one type error, nothing from the generated code.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x * 2
}

fn main() {
    let g = f_grad(1.0);
    println!("{g}");
}
