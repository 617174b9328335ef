// Shared by `tests/params.rs` and `tests/crates/nalgebra-params` with `include!`: torch's
// documented optimiser algorithms over flat vectors, the oracle of the optimiser tests.

/// torch.optim.SGD's documented algorithm, scalar by scalar over flat vectors.
#[allow(dead_code)]
struct SgdReference {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    b: Vec<f64>,
    t: usize,
}

#[allow(dead_code)]
impl SgdReference {
    fn step(&mut self, theta: &mut [f64], grad: &[f64]) {
        self.t += 1;
        if self.b.is_empty() {
            self.b = vec![0.0; theta.len()];
        }
        for i in 0..theta.len() {
            let mut g = grad[i];
            if self.weight_decay != 0.0 {
                g += self.weight_decay * theta[i];
            }
            if self.momentum != 0.0 {
                if self.t > 1 {
                    self.b[i] = self.momentum * self.b[i] + (1.0 - self.dampening) * g;
                } else {
                    self.b[i] = g;
                }
                if self.nesterov {
                    g += self.momentum * self.b[i];
                } else {
                    g = self.b[i];
                }
            }
            theta[i] -= self.lr * g;
        }
    }
}

/// torch.optim.Adam's documented algorithm, scalar by scalar over flat vectors.
struct AdamReference {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    m: Vec<f64>,
    v: Vec<f64>,
    v_max: Vec<f64>,
    t: i32,
}

impl AdamReference {
    fn step(&mut self, theta: &mut [f64], grad: &[f64]) {
        self.t += 1;
        if self.m.is_empty() {
            self.m = vec![0.0; theta.len()];
            self.v = vec![0.0; theta.len()];
            self.v_max = vec![0.0; theta.len()];
        }
        for i in 0..theta.len() {
            let mut g = grad[i];
            if self.weight_decay != 0.0 {
                g += self.weight_decay * theta[i];
            }
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let m_hat = self.m[i] / (1.0 - self.beta1.powi(self.t));
            // AMSGrad as torch's implementation: the maximum of the uncorrected v.
            self.v_max[i] = self.v_max[i].max(self.v[i]);
            let v_used = if self.amsgrad { self.v_max[i] } else { self.v[i] };
            let v_hat = v_used / (1.0 - self.beta2.powi(self.t));
            theta[i] -= self.lr * m_hat / (v_hat.sqrt() + self.eps);
        }
    }
}

/// A gradient that depends on the parameters and the step: `∇ Σ (θᵢ - cᵢ)² ` plus a
/// step-dependent term, so every step sees a different gradient.
fn gradient(flat: &[f64], t: usize) -> Vec<f64> {
    flat.iter()
        .enumerate()
        .map(|(i, x)| 2.0 * (x - 0.1 * i as f64) + ((i * 7 + t * 3) as f64).sin())
        .collect()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}
