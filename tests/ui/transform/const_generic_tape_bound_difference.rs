// Only `N - k` (a const generic minus a literal) is sized `N`: `2 * N - 1` would need a
// tape of `2 * N`, which cannot size an array on stable Rust.
use fluxion::grad;

#[grad]
fn f<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..2 * N - 1 {
        let t = (i as f64 * x[0]).exp();
        s = s * t;
    }
    s
}

fn main() {}
