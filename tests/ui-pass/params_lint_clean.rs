// `#[derive(Parameters)]` keeps a strict crate clean: public structs, generic ones, buffers,
// fields named like the generated methods' parameters.
#![deny(warnings, missing_docs, unused_qualifications, clippy::all)]
//! A binary deriving `Parameters` under strict lints.

use fluxion::optim::Adam;
use fluxion::Parameters;

/// A layer.
#[derive(Parameters, Clone, Debug)]
pub struct Layer<const I: usize, const O: usize> {
    /// Weights.
    pub w: [[f64; I]; O],
    /// Biases.
    pub b: [f64; O],
}

/// A model whose fields are named like the generated methods' parameters.
#[derive(Parameters, Clone, Debug)]
pub struct Model {
    /// A layer.
    pub f: Layer<2, 3>,
    /// Named `a`.
    pub a: Vec<f64>,
    /// Named `g`.
    pub g: f64,
    /// Named `other`.
    pub other: (f64, [f64; 2]),
    /// A buffer.
    #[param(buffer)]
    pub prefix: String,
}

/// Generic over the scalar, with a lifetime in a buffer.
#[derive(Parameters)]
pub struct Generic<'a, T: Copy> {
    /// Trainable.
    pub w: [T; 2],
    /// Carried.
    #[param(buffer)]
    pub name: &'a str,
}

/// A line, as an argument of annotated functions.
#[derive(Parameters, Clone, Debug)]
pub struct Line {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Steps taken.
    #[param(buffer)]
    pub steps: usize,
}

/// The squared error of a line at a point.
#[fluxion::grad_and_value]
pub fn squared_error(p: &Line, x: f64, y: f64) -> f64 {
    let e = p.slope * x + p.intercept - y;
    e * e
}

fn main() {
    let line = Line { slope: 2.0, intercept: 1.0, steps: 3 };
    let (g, v) = squared_error_grad_and_value(&line, 3.0, 6.0);
    assert_eq!((g.slope, g.intercept, g.steps, v), (6.0, 2.0, 3, 1.0));
    let mut m = Model {
        f: Layer { w: [[0.5; 2]; 3], b: [0.0; 3] },
        a: vec![1.0],
        g: 2.0,
        other: (3.0, [4.0, 5.0]),
        prefix: String::from("m"),
    };
    let grads = m.zeros_like();
    let mut adam = Adam::new(1e-3);
    adam.step(&mut m, &grads);
    assert_eq!(m.num_scalars(), 6 + 3 + 1 + 1 + 3);
    let g = Generic::<f32> { w: [1.0, 2.0], name: "g" };
    assert_eq!(g.to_flat(), [1.0, 2.0]);
}
