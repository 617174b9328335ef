//! functorch's per-sample-gradients tutorial in Rust: the gradient of a small MLP's loss
//! for every sample of a batch at once, `vmap(grad(loss), in_dims = (None, 0, 0))`,
//! checked against a loop of single-sample gradients.
//!
//! `cargo run --release --example per_sample_grads`
//!
//! The weights are a parameter struct; `loss_grad_vmap` returns one struct per sample
//! (the samples run on SIMD lanes, the weights shared), and `loss_grad_vmap_into` writes
//! them into structs the caller keeps (a training loop's buffer, reused every step).

use fluxion::{grad, init, vmap, Parameters, Rng};

const D: usize = 32;
const H: usize = 64;

/// A `D -> H -> 1` tanh MLP.
#[derive(Parameters, Clone, Debug)]
pub struct Mlp {
    pub w1: [[f64; D]; H],
    pub b1: [f64; H],
    pub w2: [f64; H],
    pub b2: f64,
}

/// One sample's squared error.
#[vmap(in_dims = (None, 0, 0))]
#[grad]
pub fn loss(p: &Mlp, x: &[f64; D], y: f64) -> f64 {
    let mut out = p.b2;
    for i in 0..H {
        let mut s = p.b1[i];
        for j in 0..D {
            s += p.w1[i][j] * x[j];
        }
        out += p.w2[i] * s.tanh();
    }
    let e = out - y;
    e * e
}

fn main() {
    let rng = Rng::new(7);
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
    let n = 1024;
    let data = rng.fold_in(5);
    let xs: Vec<[f64; D]> = (0..n)
        .map(|k| std::array::from_fn(|j| data.normal(k * D + j)))
        .collect();
    let ys: Vec<f64> = xs.iter().map(|x| x.iter().map(|v| v.sin()).sum()).collect();

    let batched: Vec<Mlp> = loss_grad_vmap(&p, &xs, &ys);
    let looped: Vec<Mlp> = xs.iter().zip(&ys).map(|(x, &y)| loss_grad(&p, x, y)).collect();
    // The same gradients into a buffer of structs, allocated once.
    let mut buffer = vec![p.clone(); n];
    loss_grad_vmap_into(&p, &xs, &ys, &mut buffer, None);
    assert!(buffer.iter().zip(&batched).all(|(a, b)| a.to_flat() == b.to_flat()));

    // The same gradients, within the lane `tanh`'s few ulps.
    let mut worst = 0.0_f64;
    for (a, b) in batched.iter().zip(&looped) {
        for (u, v) in a.to_flat().iter().zip(b.to_flat()) {
            worst = worst.max((u - v).abs() / v.abs().max(1e-300).max(1.0));
        }
    }
    assert!(worst < 1e-12, "per-sample gradients differ by {worst:e}");
    println!(
        "{n} per-sample gradients of {} parameters each, one struct per sample; the loop of single-sample gradients agrees to {worst:.1e}",
        p.num_scalars()
    );
    let norms: Vec<f64> = batched.iter().map(|g| g.dot(g).sqrt()).collect();
    let mean = norms.iter().sum::<f64>() / n as f64;
    println!("mean per-sample gradient norm {mean:.4} (the quantity DP-SGD clips)");
}
