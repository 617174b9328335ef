use fluxion::{grad, jacfwd, jacrev};

const EPS: f64 = 1.0;
const SIGMA: f64 = 1.0;

#[jacrev]
fn energy(r: f64) -> f64 {
    EPS * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

#[grad]
fn sum_sin<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i].sin();
    }
    s
}

#[jacfwd]
#[jacrev]
fn sum_sin2<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i].sin();
    }
    s
}

fn main() {
    println!("energy'(1.1) = {}", energy_jacrev(1.1));
    println!("grad sum sin = {:?}", sum_sin_grad([0.0, 1.0, 2.0]));
    println!("hess sum sin = {:?}", sum_sin2_jacrev_jacfwd([0.0, 1.0, 2.0]));
}
