//! Optimisers over [`Parameters`]: [`Sgd`] and [`Adam`], with torch.optim's defaults and
//! update rules.
//!
//! An optimiser holds its hyper-parameters and its state (momentum buffers, moments) as
//! values of the parameters' own type, allocated with [`Parameters::zeros_like`] on the
//! first [`step`](Adam::step) and updated in place afterwards: a step allocates nothing
//! after the first. Hyper-parameters are public fields (change `lr` between steps for a
//! schedule) and builder methods of the same names. The gradient has the parameters'
//! type; buffers of derived structs are neither read nor changed.
//!
//! ```
//! use fluxion::optim::Sgd;
//!
//! // Minimise (x - 3)² from x = 0: the gradient is 2(x - 3).
//! let mut x = [0.0f64];
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! for _ in 0..500 {
//!     let g = [2.0 * (x[0] - 3.0)];
//!     sgd.step(&mut x, &g);
//! }
//! assert!((x[0] - 3.0).abs() < 1e-6);
//! ```

use crate::params::{ParamFloat, Parameters};

/// Stochastic gradient descent with momentum, as `torch.optim.SGD`.
///
/// With gradient `g`, parameters `θ`, learning rate `γ`, momentum `μ`, dampening `τ`,
/// weight decay `λ`, at step `t` (from 1), for each scalar:
///
/// ```text
/// g ← g + λ θ                    if λ ≠ 0
/// if μ ≠ 0:
///     b ← g                      if t = 1
///     b ← μ b + (1 − τ) g        if t > 1
///     g ← g + μ b                if nesterov
///     g ← b                      otherwise
/// θ ← θ − γ g
/// ```
///
/// Defaults as torch's: `lr = 1e-3`, `momentum = 0`, `dampening = 0`,
/// `weight_decay = 0`, `nesterov = false`. The momentum buffer `b` is allocated on the
/// first step with momentum (where it is set to the gradient, as torch does).
#[derive(Clone, Debug)]
pub struct Sgd<P: Parameters> {
    /// The learning rate `γ`.
    pub lr: f64,
    /// The momentum factor `μ` (`0`: plain gradient descent, no buffer).
    pub momentum: f64,
    /// The dampening `τ` of the momentum (the gradient's weight in the buffer is `1 − τ`).
    pub dampening: f64,
    /// The L2 penalty `λ` (added to the gradient as `λ θ`).
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`, as in torch).
    pub nesterov: bool,
    buf: Option<P>,
}

impl<P: Parameters> Default for Sgd<P> {
    /// torch's defaults: `lr = 1e-3`, no momentum, dampening or weight decay.
    fn default() -> Self {
        Sgd::new(1e-3)
    }
}

impl<P: Parameters> Sgd<P> {
    /// SGD with learning rate `lr` and torch's other defaults.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            buf: None,
        }
    }

    /// Sets the momentum factor `μ`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening `τ`.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets the weight decay `λ`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// The momentum buffer `b`, after the first step with momentum.
    pub fn momentum_buffer(&self) -> Option<&P> {
        self.buf.as_ref()
    }

    /// One update of `params` from `grads` (see the type's documentation for the rule).
    ///
    /// # Panics
    /// If `nesterov` is set without momentum or with dampening (torch's `ValueError`), or
    /// if `params`, `grads` and the state differ in shape (both sizes named).
    pub fn step(&mut self, params: &mut P, grads: &P) {
        assert!(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening (momentum {}, dampening {})",
            self.momentum,
            self.dampening
        );
        let s = <P::Scalar as ParamFloat>::from_f64;
        let (lr, wd, mu) = (s(self.lr), s(self.weight_decay), s(self.momentum));
        let decay = self.weight_decay != 0.0;
        if self.momentum == 0.0 {
            params.zip_mut(grads, |p, g| {
                let g = if decay { g + wd * *p } else { g };
                *p = *p - lr * g;
            });
            return;
        }
        let keep = s(1.0 - self.dampening);
        let nesterov = self.nesterov;
        let first = self.buf.is_none();
        let buf = self.buf.get_or_insert_with(|| params.zeros_like());
        params.zip_mut2(buf, grads, |p, b, g| {
            let g = if decay { g + wd * *p } else { g };
            *b = if first { g } else { mu * *b + keep * g };
            let d = if nesterov { g + mu * *b } else { *b };
            *p = *p - lr * d;
        });
    }
}

/// Adam, as `torch.optim.Adam`.
///
/// With gradient `g`, parameters `θ`, learning rate `γ`, betas `(β₁, β₂)`, `ε`, weight
/// decay `λ`, at step `t` (from 1), for each scalar, the first and second moments `m`,
/// `v` starting at `0`:
///
/// ```text
/// g ← g + λ θ                    if λ ≠ 0
/// m ← β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// m̂ = m / (1 − β₁ᵗ)
/// v̂ = v / (1 − β₂ᵗ)
/// θ ← θ − γ m̂ / (√v̂ + ε)
/// ```
///
/// With `amsgrad`, as torch's implementation: the running maximum `vₘₐₓ ← max(vₘₐₓ, v)`
/// of the uncorrected second moment (starting at `0`) takes `v`'s place in `v̂`,
/// `v̂ = vₘₐₓ / (1 − β₂ᵗ)`.
///
/// The last three lines are computed as torch's implementation computes them,
/// `θ ← θ − (γ / (1 − β₁ᵗ)) m / (√v / √(1 − β₂ᵗ) + ε)`, the corrections `1 − βᵗ` in `f64`
/// once per step. Defaults as torch's: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
/// `weight_decay = 0`. The moments are allocated on the first step.
#[derive(Clone, Debug)]
pub struct Adam<P: Parameters> {
    /// The learning rate `γ`.
    pub lr: f64,
    /// The decay rates `(β₁, β₂)` of the first and second moments.
    pub betas: (f64, f64),
    /// The term `ε` added to the denominator.
    pub eps: f64,
    /// The L2 penalty `λ` (added to the gradient as `λ θ`; for decoupled weight decay,
    /// AdamW, scale the parameters yourself).
    pub weight_decay: f64,
    /// The AMSGrad variant (the running maximum of the second moment in the denominator).
    pub amsgrad: bool,
    t: u64,
    moments: Option<(P, P)>,
    v_max: Option<P>,
}

impl<P: Parameters> Default for Adam<P> {
    /// torch's defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, no weight decay.
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

impl<P: Parameters> Adam<P> {
    /// Adam with learning rate `lr` and torch's other defaults.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            t: 0,
            moments: None,
            v_max: None,
        }
    }

    /// Sets the betas `(β₁, β₂)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets `ε`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the weight decay `λ`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns the AMSGrad variant on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// The running maximum `vₘₐₓ` of the second moment, after the first step with
    /// `amsgrad`.
    pub fn max_second_moment(&self) -> Option<&P> {
        self.v_max.as_ref()
    }

    /// The number of steps taken (`t` of the last step).
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The first and second moments `(m, v)`, after the first step.
    pub fn moments(&self) -> Option<(&P, &P)> {
        self.moments.as_ref().map(|(m, v)| (m, v))
    }

    /// One update of `params` from `grads` (see the type's documentation for the rule).
    ///
    /// # Panics
    /// If `params`, `grads` and the state differ in shape (both sizes named).
    pub fn step(&mut self, params: &mut P, grads: &P) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let t = self.t as f64;
        let correction1 = 1.0 - libm::pow(b1, t);
        let correction2 = 1.0 - libm::pow(b2, t);
        let s = <P::Scalar as ParamFloat>::from_f64;
        let step_size = s(self.lr / correction1);
        let root2 = s(libm::sqrt(correction2));
        let (beta1, beta2, keep1, keep2) = (s(b1), s(b2), s(1.0 - b1), s(1.0 - b2));
        let (eps, wd) = (s(self.eps), s(self.weight_decay));
        let decay = self.weight_decay != 0.0;
        let (m, v) = self
            .moments
            .get_or_insert_with(|| (params.zeros_like(), params.zeros_like()));
        if !self.amsgrad {
            params.zip_mut3(m, v, grads, |p, m, v, g| {
                let g = if decay { g + wd * *p } else { g };
                *m = beta1 * *m + keep1 * g;
                *v = beta2 * *v + keep2 * g * g;
                let denom = v.sqrt() / root2 + eps;
                *p = *p - step_size * (*m / denom);
            });
            return;
        }
        // Two passes of the three-way zip: the moments, then the maximum and the update.
        params.zip_mut3(m, v, grads, |p, m, v, g| {
            let g = if decay { g + wd * *p } else { g };
            *m = beta1 * *m + keep1 * g;
            *v = beta2 * *v + keep2 * g * g;
        });
        let v_max = self.v_max.get_or_insert_with(|| params.zeros_like());
        params.zip_mut3(v_max, m, v, |p, v_max, m, v| {
            if v > *v_max {
                *v_max = v;
            }
            let denom = v_max.sqrt() / root2 + eps;
            *p = *p - step_size * (*m / denom);
        });
    }
}
