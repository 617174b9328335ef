//! Parameter structs (`Parameters`, `#[derive(Parameters)]`), the optimisers and the
//! initialisation: flatten order and names of a derived struct with nested arrays, a `Vec`
//! field and buffers; several steps of `Sgd` and `Adam` against straightforward scalar
//! loops over a flat `Vec` written from torch.optim's documented algorithms (momentum,
//! dampening, Nesterov, weight decay, betas); buffers unchanged; no allocation after the
//! first step; shape mismatches panic naming both sizes. nalgebra fields are tested in
//! `tests/crates/nalgebra-params`.
#![allow(clippy::needless_range_loop)]

use fluxion::optim::{Adam, Sgd};
use fluxion::{init, Parameters, Rng};

include!("support/counting_alloc.rs");

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Layer {
    w: [[f64; 3]; 2],
    b: [f64; 2],
}

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Model {
    layers: [Layer; 2],
    #[param(buffer)]
    running: Vec<f64>,
    extra: Vec<f64>,
    scale: f64,
    #[param(buffer)]
    tag: String,
}

/// A model whose scalars are `start, start + 1, ..` in flatten order.
fn model(extra: usize, start: f64) -> Model {
    let mut m = Model {
        layers: [
            Layer {
                w: [[0.0; 3]; 2],
                b: [0.0; 2],
            },
            Layer {
                w: [[0.0; 3]; 2],
                b: [0.0; 2],
            },
        ],
        running: vec![0.25, -0.5],
        extra: vec![0.0; extra],
        scale: 0.0,
        tag: "buffers stay".to_string(),
    };
    let flat: Vec<f64> = (0..m.num_scalars()).map(|i| start + i as f64).collect();
    m.read_flat(&flat);
    m
}

#[test]
fn flatten_order_names_and_arithmetic_of_a_derived_struct() {
    let m = model(3, 1.0);
    assert_eq!(m.num_scalars(), 2 * (6 + 2) + 3 + 1);
    assert_eq!(m.layers[0].w, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(m.layers[0].b, [7.0, 8.0]);
    assert_eq!(m.layers[1].w[0], [9.0, 10.0, 11.0]);
    assert_eq!(m.extra, [17.0, 18.0, 19.0]);
    assert_eq!(m.scale, 20.0);
    let flat = m.to_flat();
    assert_eq!(flat, (1..=20).map(|i| i as f64).collect::<Vec<_>>());
    let mut out = vec![0.0; 20];
    m.write_flat(&mut out);
    assert_eq!(out, flat);

    let mut names = Vec::new();
    m.for_each_named("model", &mut |name, values| {
        names.push((name.to_string(), values.to_vec()))
    });
    let expected: Vec<(String, Vec<f64>)> = vec![
        ("model.layers.0.w".into(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ("model.layers.0.b".into(), vec![7.0, 8.0]),
        ("model.layers.1.w".into(), vec![9.0, 10.0, 11.0, 12.0, 13.0, 14.0]),
        ("model.layers.1.b".into(), vec![15.0, 16.0]),
        ("model.extra".into(), vec![17.0, 18.0, 19.0]),
        ("model.scale".into(), vec![20.0]),
    ];
    assert_eq!(names, expected);
    let mut top = Vec::new();
    m.for_each_named("", &mut |name, _| top.push(name.to_string()));
    assert_eq!(top[0], "layers.0.w");

    // zeros_like zeroes the parameters and clones the buffers.
    let z = m.zeros_like();
    assert_eq!(z.to_flat(), vec![0.0; 20]);
    assert_eq!((z.running.clone(), z.tag.clone()), (m.running.clone(), m.tag.clone()));
    assert_eq!(z.extra.len(), 3);

    // The arithmetic, against the same on the flat vectors.
    let other = model(3, -4.5);
    let (a, b) = (m.to_flat(), other.to_flat());
    assert_eq!(m.dot(&other), a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>());
    let mut s = m.clone();
    s.axpy(-0.75, &other);
    s.scale(3.0);
    s.add_assign(&other);
    let want: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x + -0.75 * y) * 3.0 + y).collect();
    assert_eq!(s.to_flat(), want);
    assert_eq!((s.running, s.tag), (m.running.clone(), m.tag.clone()));

    // read_flat keeps the buffers.
    let mut r = other.clone();
    r.running = vec![9.0];
    r.read_flat(&a);
    assert_eq!(r.to_flat(), a);
    assert_eq!(r.running, [9.0]);
}

#[test]
#[should_panic(expected = "read_flat: the source slice holds 19 scalars, the parameters 20")]
fn read_flat_of_the_wrong_length_names_both() {
    let mut m = model(3, 0.0);
    m.read_flat(&[0.0; 19]);
}

#[test]
#[should_panic(expected = "a Vec of 3 elements combined with one of 4")]
fn models_of_different_shapes_do_not_combine() {
    let mut m = model(3, 0.0);
    m.add_assign(&model(4, 0.0));
}

include!("support/optim_reference.rs");

fn run_sgd(sgd: Sgd<Model>) {
    let mut reference = SgdReference {
        lr: sgd.lr,
        momentum: sgd.momentum,
        dampening: sgd.dampening,
        weight_decay: sgd.weight_decay,
        nesterov: sgd.nesterov,
        b: Vec::new(),
        t: 0,
    };
    let mut sgd = sgd;
    let mut m = model(3, 0.5);
    let (running, tag) = (m.running.clone(), m.tag.clone());
    let mut flat = m.to_flat();
    let mut grads = m.zeros_like();
    for t in 0..6 {
        let g = gradient(&m.to_flat(), t);
        grads.read_flat(&g);
        sgd.step(&mut m, &grads);
        reference.step(&mut flat, &g);
        assert!(
            close(&m.to_flat(), &flat, 1e-14),
            "step {t}: {:?} vs {flat:?}",
            m.to_flat()
        );
        if sgd.momentum != 0.0 {
            let b = sgd.momentum_buffer().map(Parameters::to_flat);
            assert!(close(&b.unwrap_or_default(), &reference.b, 1e-14), "buffer at step {t}");
        }
    }
    assert_eq!((m.running, m.tag), (running, tag));
    // The parameters moved.
    assert!(!close(&flat, &model(3, 0.5).to_flat(), 1e-3));
}

#[test]
fn sgd_matches_torchs_algorithm() {
    run_sgd(Sgd::new(0.05));
    run_sgd(Sgd::new(0.05).weight_decay(0.1));
    run_sgd(Sgd::new(0.03).momentum(0.9));
    run_sgd(Sgd::new(0.03).momentum(0.9).dampening(0.3).weight_decay(0.01));
    run_sgd(Sgd::new(0.03).momentum(0.8).nesterov(true));
    run_sgd(Sgd::new(0.03).momentum(0.8).nesterov(true).weight_decay(0.2));
}

#[test]
fn sgd_defaults_are_torchs() {
    let sgd = Sgd::<f64>::default();
    assert_eq!(
        (sgd.lr, sgd.momentum, sgd.dampening, sgd.weight_decay, sgd.nesterov),
        (1e-3, 0.0, 0.0, 0.0, false)
    );
    // Without momentum, no buffer.
    let mut sgd = Sgd::new(0.5);
    let mut x = [1.0f64, 2.0];
    sgd.step(&mut x, &[1.0, -1.0]);
    assert_eq!(x, [0.5, 2.5]);
    assert!(sgd.momentum_buffer().is_none());
}

#[test]
#[should_panic(expected = "Nesterov momentum requires a momentum and zero dampening (momentum 0.9, dampening 0.1)")]
fn nesterov_with_dampening_panics() {
    let mut sgd = Sgd::new(0.1).momentum(0.9).dampening(0.1).nesterov(true);
    sgd.step(&mut [1.0f64], &[1.0]);
}

fn run_adam(adam: Adam<Model>) {
    let mut reference = AdamReference {
        lr: adam.lr,
        beta1: adam.betas.0,
        beta2: adam.betas.1,
        eps: adam.eps,
        weight_decay: adam.weight_decay,
        amsgrad: adam.amsgrad,
        m: Vec::new(),
        v: Vec::new(),
        v_max: Vec::new(),
        t: 0,
    };
    let mut adam = adam;
    let mut m = model(3, -1.0);
    let (running, tag) = (m.running.clone(), m.tag.clone());
    let mut flat = m.to_flat();
    let mut grads = m.zeros_like();
    for t in 0..8 {
        let g = gradient(&m.to_flat(), t);
        grads.read_flat(&g);
        adam.step(&mut m, &grads);
        reference.step(&mut flat, &g);
        assert!(
            close(&m.to_flat(), &flat, 1e-13),
            "step {t}: {:?} vs {flat:?}",
            m.to_flat()
        );
        let (m1, m2) = adam
            .moments()
            .map(|(a, b)| (a.to_flat(), b.to_flat()))
            .unwrap_or_default();
        assert!(
            close(&m1, &reference.m, 1e-14) && close(&m2, &reference.v, 1e-14),
            "moments at step {t}"
        );
    }
    assert_eq!(adam.steps(), 8);
    assert_eq!((m.running, m.tag), (running, tag));
}

#[test]
fn adam_matches_torchs_algorithm() {
    let adam = Adam::<f64>::default();
    assert_eq!(
        (adam.lr, adam.betas, adam.eps, adam.weight_decay),
        (1e-3, (0.9, 0.999), 1e-8, 0.0)
    );
    run_adam(Adam::default());
    run_adam(Adam::new(0.05));
    run_adam(Adam::new(0.05).weight_decay(0.1));
    run_adam(Adam::new(0.02).betas(0.5, 0.9).eps(1e-3));
    run_adam(Adam::new(0.05).amsgrad(true));
    run_adam(Adam::new(0.05).amsgrad(true).weight_decay(0.05).betas(0.8, 0.9));
}

#[test]
fn amsgrad_keeps_the_largest_second_moment() {
    // A large gradient then small ones: v decays, its maximum does not, so AMSGrad's
    // steps are smaller than Adam's.
    let grads = [[10.0f64], [0.1], [0.1], [0.1]];
    let (mut a, mut b) = ([0.0f64], [0.0f64]);
    let (mut adam, mut ams) = (Adam::new(0.1), Adam::new(0.1).amsgrad(true));
    for g in &grads {
        adam.step(&mut a, g);
        ams.step(&mut b, g);
    }
    let v = adam.moments().map(|(_, v)| v[0]).unwrap_or_default();
    let v_max = ams.max_second_moment().map(|v| v[0]).unwrap_or_default();
    assert_eq!(v_max, (1.0 - 0.999) * 10.0 * 10.0);
    assert!(v < v_max);
    assert!(b[0] > a[0] && b[0] < 0.0, "{a:?} {b:?}");
}

#[test]
fn adams_first_step_moves_each_parameter_by_lr() {
    // m̂ = g and v̂ = g² at t = 1: the step is lr g / (|g| + eps).
    let mut x = [1.0f64, 2.0, 3.0];
    let mut adam = Adam::new(0.1).eps(0.0);
    adam.step(&mut x, &[4.0, -0.5, 0.0 + 1e-3]);
    assert!(close(&x, &[0.9, 2.1, 2.9], 1e-14), "{x:?}");
}

#[test]
fn steps_after_the_first_do_not_allocate() {
    let mut m = model(50, 0.0);
    let grads = model(50, 1.0);
    let mut adam = Adam::new(1e-2);
    let mut ams = Adam::new(1e-2).amsgrad(true);
    let mut sgd = Sgd::new(1e-2).momentum(0.9).nesterov(true);
    let mut plain = Sgd::new(1e-2);
    adam.step(&mut m, &grads);
    ams.step(&mut m, &grads);
    sgd.step(&mut m, &grads);
    let (_, n) = allocated(|| {
        for _ in 0..10 {
            adam.step(&mut m, &grads);
            ams.step(&mut m, &grads);
            sgd.step(&mut m, &grads);
            plain.step(&mut m, &grads);
            m.axpy(1e-3, &grads);
            std::hint::black_box(m.dot(&grads));
        }
    });
    assert_eq!(n, 0);
    // The counter does count: one `zeros_like` of this model allocates its two `Vec`s
    // and its `String`.
    let (_, n) = allocated(|| std::hint::black_box(m.zeros_like()));
    assert_eq!(n, 3);
}

#[derive(Parameters, Clone, Debug, PartialEq)]
struct Generic<T, const N: usize> {
    w: [T; N],
    #[param(buffer)]
    count: usize,
    b: Vec<T>,
}

#[test]
fn generic_derived_structs_of_f32() {
    let mut g = Generic::<f32, 3> {
        w: [1.0, 2.0, 3.0],
        count: 7,
        b: vec![4.0],
    };
    assert_eq!(g.num_scalars(), 4);
    let grads = Generic::<f32, 3> {
        w: [1.0, -1.0, 0.5],
        count: 0,
        b: vec![2.0],
    };
    let mut sgd = Sgd::new(0.5);
    sgd.step(&mut g, &grads);
    assert_eq!(g.to_flat(), [0.5f32, 2.5, 2.75, 3.0]);
    assert_eq!(g.count, 7);
    let mut adam = Adam::new(0.25);
    adam.step(&mut g, &grads);
    let want = [0.25f32, 2.75, 2.5, 2.75];
    assert!(
        g.to_flat().iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-6),
        "{:?}",
        g.to_flat()
    );
}

#[test]
fn init_linear_is_a_function_of_the_seed_and_the_position() {
    let rng = Rng::new(2024).fold_in(1);
    let mut m = model(4, 0.0);
    let running = m.running.clone();
    init::linear(&mut m, &rng, 9);
    let flat = m.to_flat();
    for (i, x) in flat.iter().enumerate() {
        assert_eq!(*x, (2.0 * rng.uniform(i) - 1.0) * (1.0 / 9f64.sqrt()));
        assert!((-1.0 / 3.0..1.0 / 3.0).contains(x));
    }
    assert_eq!(m.running, running);
    let mut again = model(4, 5.0);
    init::linear(&mut again, &rng, 9);
    assert_eq!(again.to_flat(), flat);
    init::linear(&mut again, &Rng::new(2024).fold_in(2), 9);
    assert_ne!(again.to_flat(), flat);
}
