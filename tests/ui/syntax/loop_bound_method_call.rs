// A loop bound computed at run time (`x.len()`), not a constant.
use fluxion::grad;

#[grad]
fn f(x: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i];
    }
    s
}

fn main() {}
