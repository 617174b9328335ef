// An `if` whose value is a whole slice: index each slice in its branch instead.
use fluxion::grad;

#[grad]
fn f(xs: &[f64], ys: &[f64]) -> f64 {
    let zs = if xs.len() > ys.len() { xs } else { ys };
    zs[0]
}

fn main() {}
