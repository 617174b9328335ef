// Reverse mode needs a tape sized by the loop bound; `N + 1` with a const generic `N`
// cannot size an array on stable Rust.
use fluxion::grad;

#[grad]
fn f<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N + 1 {
        let t = (i as f64 * x[0]).exp();
        s = s * t;
    }
    s
}

fn main() {}
