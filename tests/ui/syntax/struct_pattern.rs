// A pattern other than a name, a tuple or an array of names.
use fluxion::grad;

struct W(f64);

#[grad]
fn f(x: f64) -> f64 {
    let W(v) = x;
    v
}

fn main() {
    let _ = W(1.0).0;
}
