//! Gradients with respect to parameter structs (JAX's pytrees): `grad` of a function taking
//! a `#[derive(Parameters)]` struct returns the struct type, field by field.

use fluxion::{grad, grad_and_value, Parameters};

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Lin {
    w: [f64; 3],
    b: f64,
    #[param(buffer)]
    scale: f64,
}

#[grad]
fn loss(p: &Lin, x: &[f64; 3]) -> f64 {
    let mut s = p.b;
    for i in 0..3 {
        s += p.w[i] * x[i];
    }
    (s * p.scale).tanh()
}

#[test]
fn grad_of_a_struct() {
    let p = Lin {
        w: [0.1, -0.2, 0.3],
        b: 0.05,
        scale: 2.0,
    };
    let x = [1.0, 2.0, -0.5];
    let g: Lin = loss_grad(&p, &x);
    let h = 1e-6;
    for i in 0..3 {
        let (mut a, mut b) = (p.clone(), p.clone());
        a.w[i] += h;
        b.w[i] -= h;
        let fd = (loss(&a, &x) - loss(&b, &x)) / (2.0 * h);
        assert!((g.w[i] - fd).abs() < 1e-8, "{i}: {} vs {fd}", g.w[i]);
    }
    assert_eq!(g.scale, 2.0);
}
