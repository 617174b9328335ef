// Tuple patterns bind names or `_`, not nested tuples.
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    let (s, (c, t)) = (x.sin(), (x.cos(), x.tan()));
    s * c * t
}

fn main() {}
