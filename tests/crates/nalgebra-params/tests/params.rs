//! `Parameters` for nalgebra's `SMatrix`, `SVector`, `DMatrix` and `DVector` (the runtime's
//! `nalgebra` feature): storage-order flattening, names, `zeros_like`, Adam steps against a
//! scalar loop of torch's documented algorithm, shape mismatches panicking with both sizes.
#![allow(clippy::needless_range_loop)]

use fluxion::optim::{Adam, Sgd};
use fluxion::Parameters;
use nalgebra::{DMatrix, DVector, SMatrix, SVector};

include!("../../../support/optim_reference.rs");

#[derive(Parameters, Clone, Debug, PartialEq)]
struct WithMatrices {
    w: SMatrix<f64, 2, 3>,
    b: DVector<f64>,
    #[param(buffer)]
    steps: u32,
}

#[test]
fn nalgebra_fields_flatten_column_major_and_train() {
    let mut p = WithMatrices {
        w: SMatrix::<f64, 2, 3>::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        b: DVector::from_vec(vec![7.0, 8.0]),
        steps: 3,
    };
    assert_eq!(p.num_scalars(), 8);
    // Storage order: column by column.
    assert_eq!(p.to_flat(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 7.0, 8.0]);
    let mut names = Vec::new();
    p.for_each_named("", &mut |n, v| names.push((n.to_string(), v.len())));
    assert_eq!(names, [("w".to_string(), 6), ("b".to_string(), 2)]);
    let z = p.zeros_like();
    assert_eq!((z.w, z.b.len(), z.steps), (SMatrix::zeros(), 2, 3));

    let mut flat = p.to_flat();
    let mut reference = AdamReference {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        amsgrad: false,
        m: Vec::new(),
        v: Vec::new(),
        v_max: Vec::new(),
        t: 0,
    };
    let mut adam = Adam::new(0.1);
    let mut grads = p.zeros_like();
    for t in 0..4 {
        let g = gradient(&p.to_flat(), t);
        grads.read_flat(&g);
        adam.step(&mut p, &grads);
        reference.step(&mut flat, &g);
        assert!(close(&p.to_flat(), &flat, 1e-13), "step {t}");
    }
    assert_eq!(p.steps, 3);
}

#[test]
#[should_panic(expected = "a 3x1 matrix combined with a 2x1 one")]
fn dynamic_matrices_of_different_sizes_do_not_combine() {
    let mut a = DVector::<f64>::zeros(3);
    a.zip_mut(&DVector::zeros(2), |x, y| *x += y);
}

#[test]
fn dynamic_matrices_and_f32_vectors() {
    let mut m = DMatrix::<f64>::from_row_slice(2, 2, &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.to_flat(), [1.0, 3.0, 2.0, 4.0]);
    let z = m.zeros_like();
    assert_eq!(z.shape(), (2, 2));
    assert_eq!(z.to_flat(), [0.0; 4]);
    let mut sgd = Sgd::new(0.5);
    sgd.step(&mut m, &DMatrix::from_element(2, 2, 2.0));
    assert_eq!(m.to_flat(), [0.0, 2.0, 1.0, 3.0]);
    let mut v = SVector::<f32, 3>::new(1.0, 2.0, 3.0);
    // nalgebra's inherent `axpy`, `dot` and `scale` take precedence: call the trait's.
    Parameters::axpy(&mut v, 2.0, &SVector::<f32, 3>::new(1.0, 1.0, 1.0));
    assert_eq!(Parameters::to_flat(&v), [3.0f32, 4.0, 5.0]);
    assert_eq!(Parameters::dot(&v, &v), 50.0);
    let mut names = Vec::new();
    (v, DVector::<f32>::zeros(0)).for_each_named("p", &mut |n, x| names.push((n.to_string(), x.len())));
    assert_eq!(names, [("p.0".to_string(), 3)]);
}

#[test]
#[should_panic(expected = "a 2x2 matrix combined with a 2x3 one")]
fn dynamic_matrices_of_different_shapes_do_not_combine() {
    let mut a = DMatrix::<f64>::zeros(2, 2);
    Parameters::add_assign(&mut a, &DMatrix::zeros(2, 3));
}

/// A parameter struct as a `DVector` and back (an external optimiser's point), in flatten
/// order; a vector of the wrong length panics naming both lengths.
#[test]
fn parameters_as_a_dvector_and_back() {
    use fluxion_runtime::{read_dvector, to_dvector};
    let p = WithMatrices {
        w: SMatrix::<f64, 2, 3>::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        b: DVector::from_vec(vec![7.0, 8.0]),
        steps: 3,
    };
    let v = to_dvector(&p);
    assert_eq!(v.as_slice(), p.to_flat().as_slice());
    let mut q = p.zeros_like();
    read_dvector(&mut q, &(v * 2.0));
    assert_eq!(q.to_flat(), [2.0, 8.0, 4.0, 10.0, 6.0, 12.0, 14.0, 16.0]);
    assert_eq!(q.steps, 3);
    let r = std::panic::catch_unwind(move || read_dvector(&mut q, &DVector::from_vec(vec![1.0; 7])));
    let msg = r.expect_err("a vector of the wrong length");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("holds 7 scalars, the parameters 8"), "{msg}");
}
