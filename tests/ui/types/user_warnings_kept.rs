// The annotated function's own warnings are the user's: fluxion hides none of them (here
// an unused variable, made an error), and a function used only through its generated
// forms is not "never used".
#![deny(unused_variables, dead_code)]
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let unused = 2.0;
    x * x
}

fn main() {
    let _ = f_grad(1.0);
}
