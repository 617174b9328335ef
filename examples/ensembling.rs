//! functorch's model-ensembling tutorial in Rust: several models of one architecture,
//! their parameter structs in a slice, run as one batch (`combine_state_for_ensemble` and
//! `vmap`): every model on the same minibatch, each model on its own minibatch, and the
//! gradient of every model's loss at once. Each result is checked against a loop over the
//! models.
//!
//! `cargo run --release --example ensembling`

use fluxion::{differentiable, grad, init, vmap, Parameters, Rng};

const D: usize = 4;
const H: usize = 16;

/// A `D -> H -> 1` tanh MLP.
#[derive(Parameters, Clone, Debug)]
pub struct Mlp {
    pub w1: [[f64; D]; H],
    pub b1: [f64; H],
    pub w2: [f64; H],
    pub b2: f64,
}

/// One model's prediction for one input.
#[differentiable]
pub fn predict(p: &Mlp, x: &[f64; D]) -> f64 {
    let mut out = p.b2;
    for i in 0..H {
        let mut s = p.b1[i];
        for j in 0..D {
            s += p.w1[i][j] * x[j];
        }
        out += p.w2[i] * s.tanh();
    }
    out
}

/// Every model on the same input (`in_dims = (0, None)`).
#[vmap(in_dims = (0, None))]
pub fn same_input(p: &Mlp, x: &[f64; D]) -> f64 {
    predict(p, x)
}

/// Each model on its own input (`in_dims = (0, 0)`).
#[vmap(in_dims = (0, 0))]
pub fn own_input(p: &Mlp, x: &[f64; D]) -> f64 {
    predict(p, x)
}

/// Each model's squared error on its own sample; `vmap` of its gradient gives every
/// model's gradient at once.
#[vmap(in_dims = (0, 0, 0))]
#[grad]
pub fn loss(p: &Mlp, x: &[f64; D], y: f64) -> f64 {
    let e = predict(p, x) - y;
    e * e
}

fn main() {
    let models: Vec<Mlp> = (0..10)
        .map(|m| {
            let rng = Rng::new(100 + m);
            let mut p = Mlp {
                w1: [[0.0; D]; H],
                b1: [0.0; H],
                w2: [0.0; H],
                b2: 0.0,
            };
            init::linear(&mut p.w1, &rng.fold_in(1), D);
            init::linear(&mut p.b1, &rng.fold_in(2), D);
            init::linear(&mut p.w2, &rng.fold_in(3), H);
            init::linear(&mut p.b2, &rng.fold_in(4), H);
            p
        })
        .collect();
    let data = Rng::new(1);
    let xs: Vec<[f64; D]> = (0..models.len())
        .map(|k| std::array::from_fn(|j| data.normal(k * D + j)))
        .collect();
    let ys: Vec<f64> = xs.iter().map(|x| x[0] * x[1] - x[2]).collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);

    let same = same_input_vmap(&models, &xs[0]);
    let own = own_input_vmap(&models, &xs);
    let grads: Vec<Mlp> = loss_grad_vmap(&models, &xs, &ys);
    for (m, p) in models.iter().enumerate() {
        assert!(close(same[m], predict(p, &xs[0])), "model {m} on the shared input");
        assert!(close(own[m], predict(p, &xs[m])), "model {m} on its own input");
        let want = loss_grad(p, &xs[m], ys[m]);
        let ok = grads[m].to_flat().iter().zip(want.to_flat()).all(|(a, b)| close(*a, b));
        assert!(ok, "model {m}'s gradient");
    }
    println!("{} models, one batch each way:", models.len());
    println!(
        "  on one input:      {:?}",
        same.iter().map(|v| (v * 1e3).round() / 1e3).collect::<Vec<_>>()
    );
    println!(
        "  on its own input:  {:?}",
        own.iter().map(|v| (v * 1e3).round() / 1e3).collect::<Vec<_>>()
    );
    let norms: Vec<f64> = grads.iter().map(|g| (g.dot(g).sqrt() * 1e3).round() / 1e3).collect();
    println!("  gradient norms:    {norms:?}");
    println!("every result equals the loop over the models");
}
