// A failed expansion: the promised functions keep their types, so the calls that use
// their results add no error and no warning.
use fluxion::{jacfwd, jacrev};

#[jacfwd]
#[jacrev]
fn f(x: [f64; 2], k: f64) -> [f64; 2] {
    let mut y = [0.0; 2];
    while k > 0.0 {}
    y[0] = x[0] * k;
    y
}

fn main() {
    let j = f_jacrev([1.0, 2.0], 3.0);
    let h = f_jacrev_jacfwd([1.0, 2.0], 3.0);
    let mut out = [[0.0; 2]; 2];
    f_jacrev_into([1.0, 2.0], 3.0, &mut out);
    println!("{} {} {}", j[0][1], h[1][0][1], out[0][0]);
}
