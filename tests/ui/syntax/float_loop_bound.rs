// A loop whose bound is an outer loop's index (the pair loop of a potential).
use fluxion::grad;

#[grad]
fn f(x: [f64; 4]) -> f64 {
    let mut s = 0.0;
    for i in 0..4 {
        for j in i + 1..4 {
            s += x[i] * x[j];
        }
    }
    s
}

fn main() {}
