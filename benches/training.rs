//! One training step of a Lennard-Jones MLP, trained on energies and forces, with the
//! gradient written by fluxion's macros against the same gradient written by hand, in the
//! same run. The step is the whole loss gradient (energy and force terms, with the force
//! `F = -dE/dr` itself a derivative of the model) followed by one Adam update, which both
//! variants share.
//!
//! - model: `E(r)`, an MLP `1 -> H -> H -> H -> H -> 1` with biases and `tanh` between
//!   layers, ten parameter arrays, initialised like torch's `nn.Linear`;
//! - data: `n` distances `r = linspace(0.5, 1.0, n)`, `E = 4((σ/r)¹² - (σ/r)⁶)` with
//!   `σ = 0.5`, `F = -dE/dr`;
//! - loss: `mean((E(r) - E)²) + 0.01 · mean((F(r) - F)²) / 3`;
//! - fluxion: `#[grad_and_value(argnums = 0)]` on the model gives `(dE/dr, E)`, and
//!   `#[grad(argnums = (1, .., 10))]` on the loss differentiates through it (reverse over
//!   reverse);
//! - by hand: one forward pass carrying `dE/dr` alongside (forward mode through the MLP),
//!   one reverse sweep over both.
//!
//! - fluxion_vmap: the same with the model batched (`#[vmap]` on `grad_and_value`), the
//!   loss over `model_grad_and_value_vmap(r, ..)`, differentiated through the batch.
//!
//! - fluxion_nalgebra: the flagship's form (`examples/lennard_jones.rs`): the weights in a
//!   `#[derive(Parameters)]` struct of nalgebra matrices, the layers written with
//!   nalgebra's operators, the batched model, `grad` with respect to the struct, and
//!   `fluxion::optim::Adam` (the same update).
//!
//! Groups `training_step/n100` and `training_step/n1000`, each with `fluxion`,
//! `fluxion_vmap`, `fluxion_nalgebra` and `hand`.
//!
//! `cargo bench -p fluxion-benches --bench training`, then
//! `cargo run -p fluxion-benches --bin ratios`

// The model and the loss take the ten parameter arrays one by one, as `argnums` counts them.
#![allow(clippy::too_many_arguments)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxion::{grad, grad_and_value, vmap, Parameters};
use nalgebra::{SMatrix, SVector};

/// Hidden width of the MLP.
const H: usize = 16;
/// Hidden (`tanh`) layers of the MLP: `1 -> H -> .. -> H -> 1` has `DEPTH` of them, and
/// `DEPTH + 1` weight arrays and as many bias arrays. The layers are written out one by one
/// (each is an argument of its own for `argnums`), so changing it means adding or removing
/// a layer in `model`, `Params` and `grads_hand`.
const DEPTH: usize = 4;
const _: () = assert!(DEPTH == 4, "the model below is written out for four hidden layers");

/// Weight of the force term of the loss.
const FORCE_WEIGHT: f64 = 0.01;
/// Components of a force (the data is one-dimensional; the loss divides as for 3-D forces).
const FORCE_DIMS: f64 = 3.0;

/// The Lennard-Jones parameters of the data.
const LJ_EPS: f64 = 1.0;
const LJ_SIGMA: f64 = 0.5;

// Adam's hyper-parameters (torch's defaults, lr 1e-3).
const LR: f64 = 1e-3;
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// The model's energy at distance `r`. `model_grad_and_value` returns `(dE/dr, E)`;
/// `model_grad_and_value_vmap` the same over a batch of distances, on SIMD lanes.
#[vmap(in_dims = (0, None, None, None, None, None, None, None, None, None, None))]
#[grad_and_value(argnums = 0)]
fn model(
    r: f64,
    w1: &[f64; H],
    b1: &[f64; H],
    w2: &[[f64; H]; H],
    b2: &[f64; H],
    w3: &[[f64; H]; H],
    b3: &[f64; H],
    w4: &[[f64; H]; H],
    b4: &[f64; H],
    w5: &[f64; H],
    b5: &[f64; 1],
) -> f64 {
    let mut h1 = [0.0; H];
    for i in 0..H {
        h1[i] = (w1[i] * r + b1[i]).tanh();
    }
    let mut h2 = [0.0; H];
    for i in 0..H {
        let mut s = b2[i];
        for j in 0..H {
            s += w2[i][j] * h1[j];
        }
        h2[i] = s.tanh();
    }
    let mut h3 = [0.0; H];
    for i in 0..H {
        let mut s = b3[i];
        for j in 0..H {
            s += w3[i][j] * h2[j];
        }
        h3[i] = s.tanh();
    }
    let mut h4 = [0.0; H];
    for i in 0..H {
        let mut s = b4[i];
        for j in 0..H {
            s += w4[i][j] * h3[j];
        }
        h4[i] = s.tanh();
    }
    let mut e = b5[0];
    for j in 0..H {
        e += w5[j] * h4[j];
    }
    e
}

/// Energy and force matching over the `N` points; `loss_grad` gives the gradient with
/// respect to the ten parameter arrays.
#[grad(argnums = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10))]
fn loss<const N: usize>(
    r: &[f64; N],
    w1: &[f64; H],
    b1: &[f64; H],
    w2: &[[f64; H]; H],
    b2: &[f64; H],
    w3: &[[f64; H]; H],
    b3: &[f64; H],
    w4: &[[f64; H]; H],
    b4: &[f64; H],
    w5: &[f64; H],
    b5: &[f64; 1],
    e_true: &[f64; N],
    f_true: &[f64; N],
) -> f64 {
    let mut se = 0.0;
    let mut sf = 0.0;
    for i in 0..N {
        let (de_dr, e) = model_grad_and_value(r[i], w1, b1, w2, b2, w3, b3, w4, b4, w5, b5);
        let f = -de_dr;
        let de = e - e_true[i];
        let df = f - f_true[i];
        se += de * de;
        sf += df * df;
    }
    let n = N as f64;
    se / n + FORCE_WEIGHT * (sf / n) / FORCE_DIMS
}

/// The same loss over the batched model: energies and forces of every point from one
/// `vmap(grad_and_value(model))`, differentiated through (the batch's reverse half runs
/// the per-sample reverse-over-reverse on lanes).
#[grad(argnums = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10))]
fn loss_batched(
    r: &[f64],
    w1: &[f64; H],
    b1: &[f64; H],
    w2: &[[f64; H]; H],
    b2: &[f64; H],
    w3: &[[f64; H]; H],
    b3: &[f64; H],
    w4: &[[f64; H]; H],
    b4: &[f64; H],
    w5: &[f64; H],
    b5: &[f64; 1],
    e_true: &[f64],
    f_true: &[f64],
) -> f64 {
    let (de_dr, e) = model_grad_and_value_vmap(r, w1, b1, w2, b2, w3, b3, w4, b4, w5, b5);
    let mut se = 0.0;
    let mut sf = 0.0;
    for i in 0..r.len() {
        let f = -de_dr[i];
        let de = e[i] - e_true[i];
        let df = f - f_true[i];
        se += de * de;
        sf += df * df;
    }
    let n = r.len() as f64;
    se / n + FORCE_WEIGHT * (sf / n) / FORCE_DIMS
}

/// The weights as the flagship holds them: a parameter struct of nalgebra matrices.
#[derive(Parameters, Clone, Debug)]
struct Mlp {
    w1: SMatrix<f64, 16, 1>,
    b1: SVector<f64, 16>,
    w2: SMatrix<f64, 16, 16>,
    b2: SVector<f64, 16>,
    w3: SMatrix<f64, 16, 16>,
    b3: SVector<f64, 16>,
    w4: SMatrix<f64, 16, 16>,
    b4: SVector<f64, 16>,
    w5: SMatrix<f64, 1, 16>,
    b5: f64,
}

/// The model with nalgebra's operators.
#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
fn model_na(p: &Mlp, r: f64) -> f64 {
    let h1 = (p.w1 * r + p.b1).map(|v| v.tanh());
    let h2 = (p.w2 * h1 + p.b2).map(|v| v.tanh());
    let h3 = (p.w3 * h2 + p.b3).map(|v| v.tanh());
    let h4 = (p.w4 * h3 + p.b4).map(|v| v.tanh());
    (p.w5 * h4)[0] + p.b5
}

/// The loss over the batched model, its gradient the struct.
#[grad]
fn loss_na(p: &Mlp, r: &[f64], e_true: &[f64], f_true: &[f64]) -> f64 {
    let (de_dr, e) = model_na_grad_and_value_vmap(p, r);
    let mut se = 0.0;
    let mut sf = 0.0;
    for i in 0..r.len() {
        let f = -de_dr[i];
        let de = e[i] - e_true[i];
        let df = f - f_true[i];
        se += de * de;
        sf += df * df;
    }
    let n = r.len() as f64;
    se / n + FORCE_WEIGHT * (sf / n) / FORCE_DIMS
}

impl Mlp {
    /// The same weights as `p` (`w[i][j]` is `m[(i, j)]`).
    fn of(p: &Params) -> Mlp {
        Mlp {
            w1: SMatrix::from_fn(|i, _| p.w1[i]),
            b1: SVector::from_fn(|i, _| p.b1[i]),
            w2: SMatrix::from_fn(|i, j| p.w2[i][j]),
            b2: SVector::from_fn(|i, _| p.b2[i]),
            w3: SMatrix::from_fn(|i, j| p.w3[i][j]),
            b3: SVector::from_fn(|i, _| p.b3[i]),
            w4: SMatrix::from_fn(|i, j| p.w4[i][j]),
            b4: SVector::from_fn(|i, _| p.b4[i]),
            w5: SMatrix::from_fn(|_, j| p.w5[j]),
            b5: p.b5[0],
        }
    }
}

fn step_fluxion_nalgebra<const N: usize>(p: &mut Mlp, adam: &mut fluxion::optim::Adam<Mlp>, d: &Data<N>) {
    let g = loss_na_grad(p, &d.r, &d.e, &d.f);
    adam.step(p, &g);
}

/// The ten parameter arrays (and, with the same shapes, their gradients and Adam's moments).
#[derive(Clone, Debug, PartialEq)]
struct Params {
    w1: [f64; H],
    b1: [f64; H],
    w2: [[f64; H]; H],
    b2: [f64; H],
    w3: [[f64; H]; H],
    b3: [f64; H],
    w4: [[f64; H]; H],
    b4: [f64; H],
    w5: [f64; H],
    b5: [f64; 1],
}

impl Params {
    fn zeros() -> Self {
        Params {
            w1: [0.0; H],
            b1: [0.0; H],
            w2: [[0.0; H]; H],
            b2: [0.0; H],
            w3: [[0.0; H]; H],
            b3: [0.0; H],
            w4: [[0.0; H]; H],
            b4: [0.0; H],
            w5: [0.0; H],
            b5: [0.0; 1],
        }
    }

    /// torch's `nn.Linear` initialisation: weights and biases uniform in ±1/√fan_in.
    fn init(rng: &mut Rng) -> Self {
        let mut p = Params::zeros();
        let fan_ins = [1, 1, H, H, H, H, H, H, H, H];
        for (a, fan_in) in p.arrays_mut().into_iter().zip(fan_ins) {
            let bound = 1.0 / (fan_in as f64).sqrt();
            for x in a {
                *x = rng.uniform(-bound, bound);
            }
        }
        p
    }

    fn arrays(&self) -> [&[f64]; 10] {
        [
            &self.w1,
            &self.b1,
            self.w2.as_flattened(),
            &self.b2,
            self.w3.as_flattened(),
            &self.b3,
            self.w4.as_flattened(),
            &self.b4,
            &self.w5,
            &self.b5,
        ]
    }

    fn arrays_mut(&mut self) -> [&mut [f64]; 10] {
        [
            &mut self.w1,
            &mut self.b1,
            self.w2.as_flattened_mut(),
            &mut self.b2,
            self.w3.as_flattened_mut(),
            &mut self.b3,
            self.w4.as_flattened_mut(),
            &mut self.b4,
            &mut self.w5,
            &mut self.b5,
        ]
    }
}

/// SplitMix64: a small deterministic generator, so every run trains the same network.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }
}

/// Adam (torch's update, no weight decay), shared by both variants.
#[derive(Clone)]
struct Adam {
    m: Params,
    v: Params,
    t: i32,
}

impl Adam {
    fn new() -> Self {
        Adam {
            m: Params::zeros(),
            v: Params::zeros(),
            t: 0,
        }
    }

    fn step(&mut self, p: &mut Params, g: &Params) {
        self.t += 1;
        let bc1 = 1.0 - BETA1.powi(self.t);
        let bc2_sqrt = (1.0 - BETA2.powi(self.t)).sqrt();
        let step_size = LR / bc1;
        let arrays = p.arrays_mut().into_iter().zip(g.arrays());
        let moments = self.m.arrays_mut().into_iter().zip(self.v.arrays_mut());
        for ((p, g), (m, v)) in arrays.zip(moments) {
            for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = BETA1 * *m + (1.0 - BETA1) * g;
                *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                *p -= step_size * *m / (v.sqrt() / bc2_sqrt + ADAM_EPS);
            }
        }
    }
}

/// The training data: distances, energies and forces of the Lennard-Jones potential.
struct Data<const N: usize> {
    r: [f64; N],
    e: [f64; N],
    f: [f64; N],
}

impl<const N: usize> Data<N> {
    fn lennard_jones() -> Self {
        let r: [f64; N] = std::array::from_fn(|i| 0.5 + 0.5 * i as f64 / (N - 1) as f64);
        let e = r.map(|r| {
            let s6 = (LJ_SIGMA / r).powi(6);
            4.0 * LJ_EPS * (s6 * s6 - s6)
        });
        // F = -dE/dr = 4ε(12 s¹² - 6 s⁶)/r.
        let f = r.map(|r| {
            let s6 = (LJ_SIGMA / r).powi(6);
            4.0 * LJ_EPS * (12.0 * s6 * s6 - 6.0 * s6) / r
        });
        Data { r, e, f }
    }
}

/// The ten gradient arrays as `loss_grad` returns them.
type Grads = (
    [f64; H],
    [f64; H],
    [[f64; H]; H],
    [f64; H],
    [[f64; H]; H],
    [f64; H],
    [[f64; H]; H],
    [f64; H],
    [f64; H],
    [f64; 1],
);

impl From<Grads> for Params {
    fn from((w1, b1, w2, b2, w3, b3, w4, b4, w5, b5): Grads) -> Self {
        Params {
            w1,
            b1,
            w2,
            b2,
            w3,
            b3,
            w4,
            b4,
            w5,
            b5,
        }
    }
}

impl From<&Mlp> for Params {
    fn from(m: &Mlp) -> Self {
        Params {
            w1: std::array::from_fn(|i| m.w1[(i, 0)]),
            b1: std::array::from_fn(|i| m.b1[i]),
            w2: std::array::from_fn(|i| std::array::from_fn(|j| m.w2[(i, j)])),
            b2: std::array::from_fn(|i| m.b2[i]),
            w3: std::array::from_fn(|i| std::array::from_fn(|j| m.w3[(i, j)])),
            b3: std::array::from_fn(|i| m.b3[i]),
            w4: std::array::from_fn(|i| std::array::from_fn(|j| m.w4[(i, j)])),
            b4: std::array::from_fn(|i| m.b4[i]),
            w5: std::array::from_fn(|j| m.w5[(0, j)]),
            b5: [m.b5],
        }
    }
}

/// The gradient of the loss through fluxion's `loss_grad`.
fn grads_fluxion<const N: usize>(p: &Params, d: &Data<N>) -> Params {
    loss_grad(
        &d.r, &p.w1, &p.b1, &p.w2, &p.b2, &p.w3, &p.b3, &p.w4, &p.b4, &p.w5, &p.b5, &d.e, &d.f,
    )
    .into()
}

/// The gradient of the loss through the batched model (`loss_batched_grad`).
fn grads_fluxion_vmap<const N: usize>(p: &Params, d: &Data<N>) -> Params {
    loss_batched_grad(
        &d.r, &p.w1, &p.b1, &p.w2, &p.b2, &p.w3, &p.b3, &p.w4, &p.b4, &p.w5, &p.b5, &d.e, &d.f,
    )
    .into()
}

/// A hidden layer's forward pass with its tangent: from the previous layer's output `h`
/// and tangent `dh = dh/dr`, this layer's output `tanh(W h + b)` and its pre-activation
/// tangent `dz = W dh`.
#[inline(always)]
fn hidden_forward(w: &[[f64; H]; H], b: &[f64; H], h: &[f64; H], dh: &[f64; H]) -> ([f64; H], [f64; H]) {
    let mut out = [0.0; H];
    let mut dz = [0.0; H];
    for k in 0..H {
        let mut z = b[k];
        let mut t = 0.0;
        for j in 0..H {
            z += w[k][j] * h[j];
            t += w[k][j] * dh[j];
        }
        out[k] = z.tanh();
        dz[k] = t;
    }
    (out, dz)
}

/// The tangent of a `tanh` layer's output: `dh = (1 - h²) dz`.
#[inline(always)]
fn tangent(h: &[f64; H], dz: &[f64; H]) -> [f64; H] {
    std::array::from_fn(|k| (1.0 - h[k] * h[k]) * dz[k])
}

/// Back through `h = tanh(z)` and its tangent `dh = (1 - h²) dz`: from the adjoints of
/// `h` and `dh`, those of `z` and `dz`.
#[inline(always)]
fn tanh_backward(h: &[f64; H], dz: &[f64; H], hb: &[f64; H], dhb: &[f64; H]) -> ([f64; H], [f64; H]) {
    let mut zb = [0.0; H];
    let mut dzb = [0.0; H];
    for k in 0..H {
        let s = 1.0 - h[k] * h[k];
        dzb[k] = s * dhb[k];
        // ∂dh/∂h = -2h dz.
        zb[k] = s * (hb[k] - 2.0 * h[k] * dz[k] * dhb[k]);
    }
    (zb, dzb)
}

/// Back through `z = W h + b`, `dz = W dh`: accumulates the gradients of `W` and `b`
/// and returns the adjoints of `h` and `dh`.
#[inline(always)]
fn linear_backward(
    w: &[[f64; H]; H],
    gw: &mut [[f64; H]; H],
    gb: &mut [f64; H],
    h: &[f64; H],
    dh: &[f64; H],
    zb: &[f64; H],
    dzb: &[f64; H],
) -> ([f64; H], [f64; H]) {
    let mut hb = [0.0; H];
    let mut dhb = [0.0; H];
    for k in 0..H {
        gb[k] += zb[k];
        for j in 0..H {
            gw[k][j] += zb[k] * h[j] + dzb[k] * dh[j];
            hb[j] += w[k][j] * zb[k];
            dhb[j] += w[k][j] * dzb[k];
        }
    }
    (hb, dhb)
}

/// The gradient of the loss by hand: per point, one forward pass storing the activations
/// with `dE/dr` carried alongside, then one reverse sweep over both.
fn grads_hand<const N: usize>(p: &Params, d: &Data<N>) -> Params {
    let mut g = Params::zeros();
    let n = N as f64;
    for i in 0..N {
        let r = d.r[i];
        // Forward: outputs h and pre-activation tangents dz of each layer (dz1 = w1).
        let h1: [f64; H] = std::array::from_fn(|k| (p.w1[k] * r + p.b1[k]).tanh());
        let dz1 = p.w1;
        let dh1 = tangent(&h1, &dz1);
        let (h2, dz2) = hidden_forward(&p.w2, &p.b2, &h1, &dh1);
        let dh2 = tangent(&h2, &dz2);
        let (h3, dz3) = hidden_forward(&p.w3, &p.b3, &h2, &dh2);
        let dh3 = tangent(&h3, &dz3);
        let (h4, dz4) = hidden_forward(&p.w4, &p.b4, &h3, &dh3);
        let dh4 = tangent(&h4, &dz4);
        let mut e = p.b5[0];
        let mut de_dr = 0.0;
        for k in 0..H {
            e += p.w5[k] * h4[k];
            de_dr += p.w5[k] * dh4[k];
        }
        // The loss's adjoints of E and of dE/dr (F = -dE/dr).
        let eb = 2.0 * (e - d.e[i]) / n;
        let de_drb = -2.0 * FORCE_WEIGHT * (-de_dr - d.f[i]) / n / FORCE_DIMS;
        // Reverse.
        g.b5[0] += eb;
        let mut hb = [0.0; H];
        let mut dhb = [0.0; H];
        for k in 0..H {
            g.w5[k] += eb * h4[k] + de_drb * dh4[k];
            hb[k] = eb * p.w5[k];
            dhb[k] = de_drb * p.w5[k];
        }
        let (zb, dzb) = tanh_backward(&h4, &dz4, &hb, &dhb);
        let (hb, dhb) = linear_backward(&p.w4, &mut g.w4, &mut g.b4, &h3, &dh3, &zb, &dzb);
        let (zb, dzb) = tanh_backward(&h3, &dz3, &hb, &dhb);
        let (hb, dhb) = linear_backward(&p.w3, &mut g.w3, &mut g.b3, &h2, &dh2, &zb, &dzb);
        let (zb, dzb) = tanh_backward(&h2, &dz2, &hb, &dhb);
        let (hb, dhb) = linear_backward(&p.w2, &mut g.w2, &mut g.b2, &h1, &dh1, &zb, &dzb);
        let (zb, dzb) = tanh_backward(&h1, &dz1, &hb, &dhb);
        // z1 = w1 r + b1, dz1 = w1.
        for k in 0..H {
            g.w1[k] += zb[k] * r + dzb[k];
            g.b1[k] += zb[k];
        }
    }
    g
}

fn step_fluxion<const N: usize>(p: &mut Params, adam: &mut Adam, d: &Data<N>) {
    let g = grads_fluxion(p, d);
    adam.step(p, &g);
}

fn step_fluxion_vmap<const N: usize>(p: &mut Params, adam: &mut Adam, d: &Data<N>) {
    let g = grads_fluxion_vmap(p, d);
    adam.step(p, &g);
}

fn step_hand<const N: usize>(p: &mut Params, adam: &mut Adam, d: &Data<N>) {
    let g = grads_hand(p, d);
    adam.step(p, &g);
}

/// The largest relative difference between two gradients, element by element.
fn max_rel_diff(a: &Params, b: &Params) -> f64 {
    let mut worst = 0.0_f64;
    for (x, y) in a.arrays().into_iter().zip(b.arrays()) {
        for (x, y) in x.iter().zip(y) {
            let scale = x.abs().max(y.abs());
            if scale > 0.0 {
                worst = worst.max((x - y).abs() / scale);
            }
        }
    }
    worst
}

/// Correctness first: the two gradients agree (and agree with finite differences of the
/// loss), and the two training steps give the same parameters.
fn check<const N: usize>(p: &Params, d: &Data<N>) {
    let (gf, gh) = (grads_fluxion(p, d), grads_hand(p, d));
    let rel = max_rel_diff(&gf, &gh);
    assert!(
        rel < 1e-10,
        "n = {N}: fluxion and hand-written gradients differ by {rel:e} (relative)"
    );
    eprintln!("training_step/n{N}: fluxion and hand-written gradients agree to {rel:.1e} (relative)");
    // The batched model's lane `tanh` is within a few ulp of std's.
    let rel = max_rel_diff(&grads_fluxion_vmap(p, d), &gh);
    assert!(
        rel < 1e-9,
        "n = {N}: the batched and hand-written gradients differ by {rel:e} (relative)"
    );
    eprintln!("training_step/n{N}: batched and hand-written gradients agree to {rel:.1e} (relative)");
    // The flagship's form: the same gradient in the struct's fields.
    let gn = loss_na_grad(&Mlp::of(p), &d.r, &d.e, &d.f);
    let rel = max_rel_diff(&Params::from(&gn), &gh);
    assert!(
        rel < 1e-9,
        "n = {N}: the nalgebra struct's and hand-written gradients differ by {rel:e} (relative)"
    );
    eprintln!("training_step/n{N}: nalgebra struct and hand-written gradients agree to {rel:.1e} (relative)");

    let loss_of = |p: &Params| {
        loss(
            &d.r, &p.w1, &p.b1, &p.w2, &p.b2, &p.w3, &p.b3, &p.w4, &p.b4, &p.w5, &p.b5, &d.e, &d.f,
        )
    };
    let flat_g = gh.arrays();
    for (a, k) in [(0, 3), (1, 5), (2, 17), (5, 2), (6, 200), (8, 7), (9, 0)] {
        let h = 1e-6;
        let (mut plus, mut minus) = (p.clone(), p.clone());
        plus.arrays_mut()[a][k] += h;
        minus.arrays_mut()[a][k] -= h;
        let fd = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
        let g = flat_g[a][k];
        assert!(
            (fd - g).abs() <= 1e-6 * (1.0 + g.abs()),
            "n = {N}: gradient of array {a}[{k}] is {g}, finite differences give {fd}"
        );
    }

    let (mut pf, mut ph) = (p.clone(), p.clone());
    let (mut af, mut ah) = (Adam::new(), Adam::new());
    for _ in 0..3 {
        step_fluxion(&mut pf, &mut af, d);
        step_hand(&mut ph, &mut ah, d);
    }
    let rel = max_rel_diff(&pf, &ph);
    assert!(
        rel < 1e-10,
        "n = {N}: parameters after three steps differ by {rel:e} (relative)"
    );
}

fn bench_n<const N: usize>(c: &mut Criterion, p0: &Params) {
    let d = Data::<N>::lennard_jones();
    check(p0, &d);
    let mut g = c.benchmark_group(format!("training_step/n{N}"));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(if N > 100 { 20 } else { 50 });
    let (mut p, mut adam) = (p0.clone(), Adam::new());
    g.bench_function("fluxion", |b| b.iter(|| step_fluxion(&mut p, &mut adam, black_box(&d))));
    let (mut p, mut adam) = (p0.clone(), Adam::new());
    g.bench_function("fluxion_vmap", |b| {
        b.iter(|| step_fluxion_vmap(&mut p, &mut adam, black_box(&d)))
    });
    let (mut p, mut adam) = (Mlp::of(p0), fluxion::optim::Adam::new(LR));
    g.bench_function("fluxion_nalgebra", |b| {
        b.iter(|| step_fluxion_nalgebra(&mut p, &mut adam, black_box(&d)))
    });
    let (mut p, mut adam) = (p0.clone(), Adam::new());
    g.bench_function("hand", |b| b.iter(|| step_hand(&mut p, &mut adam, black_box(&d))));
    g.finish();
}

fn benches(c: &mut Criterion) {
    let p0 = Params::init(&mut Rng(42));
    bench_n::<100>(c, &p0);
    bench_n::<1000>(c, &p0);
}

criterion_group!(training_benches, benches);
criterion_main!(training_benches);
