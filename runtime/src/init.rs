//! Initialisation of [`Parameters`] from a counter-based [`Rng`], as torch's `nn.Linear`.
//!
//! Scalar `i` of the flatten order (see [`Parameters`]) is set from the draw
//! `rng.uniform(i)`: the values are a pure function of the generator and the position, the
//! same for every run, thread count and platform. Trainable scalars only; buffers keep
//! their values. Give each layer its own stream with [`Rng::fold_in`]
//! (`rng.fold_in(layer)`), or initialise the whole model at once from one generator.
//!
//! ```
//! use fluxion::{init, Parameters, Rng};
//!
//! #[derive(Parameters)]
//! struct Linear {
//!     w: [[f64; 4]; 2], // 2 outputs, fan-in 4
//!     b: [f64; 2],
//! }
//!
//! let mut layer = Linear { w: [[0.0; 4]; 2], b: [0.0; 2] };
//! init::linear(&mut layer, &Rng::new(7), 4);
//! // Every value in [-1/√4, 1/√4) = [-0.5, 0.5).
//! layer.for_each(|x| assert!((-0.5..0.5).contains(&x)));
//! ```

use crate::params::{ParamFloat, Parameters};
use crate::Rng;

/// Sets every trainable scalar to a uniform value in `[-bound, bound)`: scalar `i` of the
/// flatten order is `(2 u - 1) bound` with `u = rng.uniform(i)`, computed in `f64` and
/// rounded to the scalar type.
pub fn uniform<P: Parameters>(params: &mut P, rng: &Rng, bound: f64) {
    let mut i = 0usize;
    params.for_each_mut(|x| {
        *x = <P::Scalar as ParamFloat>::from_f64((2.0 * rng.uniform(i) - 1.0) * bound);
        i += 1;
    });
}

/// torch's `nn.Linear` initialisation: [`uniform`] with `bound = 1 / √fan_in` (torch's
/// weights, `kaiming_uniform_(a = √5)`, and its biases both have this bound), `fan_in`
/// being the layer's number of inputs.
///
/// # Panics
/// If `fan_in` is `0`.
pub fn linear<P: Parameters>(params: &mut P, rng: &Rng, fan_in: usize) {
    assert!(
        fan_in > 0,
        "init::linear: fan_in is 0 (the number of inputs of the layer)"
    );
    uniform(params, rng, 1.0 / libm::sqrt(fan_in as f64));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_counters_in_flatten_order() {
        let rng = Rng::new(42).fold_in(3);
        let mut p = [[0.0f64; 3]; 2];
        uniform(&mut p, &rng, 0.25);
        for (i, x) in p.iter().flatten().enumerate() {
            assert_eq!(*x, (2.0 * rng.uniform(i) - 1.0) * 0.25);
        }
        let mut q = [0.0f32; 6];
        linear(&mut q, &rng, 16);
        for (i, x) in q.iter().enumerate() {
            assert_eq!(*x, ((2.0 * rng.uniform(i) - 1.0) * 0.25) as f32);
        }
        // Not all equal, and spread over the interval.
        assert!(p.iter().flatten().any(|x| *x > 0.0) && p.iter().flatten().any(|x| *x < 0.0));
    }
}
