// `&mut` arguments are not supported in calls.
use fluxion::grad;

fn scale(v: &mut f64) -> f64 {
    *v * 2.0
}

#[grad]
fn f(x: f64) -> f64 {
    let mut y = x;
    scale(&mut y)
}

fn main() {}
