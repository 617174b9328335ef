//! Tests of the flagship example (`lennard_jones.rs`, compiled here as a module): the
//! generated forces against central differences of the model's energy, the loss's
//! gradient through them against central differences on scalars of every field, a short
//! training run, and the command line's checks.

#[allow(dead_code)]
#[path = "lennard_jones.rs"]
mod flagship;

use clap::Parser;
use flagship::{loss, loss_grad_and_value, model, model_grad_and_value_vmap, Args, Data, Model};
use fluxion::optim::Adam;
use fluxion::Parameters;

#[test]
fn forces_are_the_negative_derivative_of_the_energy() {
    let m = Model::new(3);
    let data = Data::new(37);
    let (de, e) = model_grad_and_value_vmap(&m, &data.norms);
    for (k, &r) in data.norms.iter().enumerate() {
        let h = 1e-6;
        let fd = (model(&m, r + h) - model(&m, r - h)) / (2.0 * h);
        assert!(
            (de[k] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
            "r = {r}: {} vs {fd}",
            de[k]
        );
        // Within the lane functions' bound of the original's value (nalgebra's own
        // arithmetic, `tanh` from std).
        assert!((e[k] - model(&m, r)).abs() <= 1e-13 * (1.0 + e[k].abs()));
    }
}

#[test]
fn loss_gradient_through_the_forces_matches_central_differences() {
    let m = Model::new(7);
    let d = Data::new(50);
    let (g, l) = loss_grad_and_value(&m, &d.norms, &d.drs, &d.energies, &d.forces);
    assert_eq!(l, loss(&m, &d.norms, &d.drs, &d.energies, &d.forces));
    let (flat, gf) = (m.to_flat(), g.to_flat());
    assert_eq!(gf.len(), 16 + 16 + 3 * (256 + 16) + 16 + 1);
    // Every field: a sample of scalars spread over the flatten order (which visits the
    // fields in declaration order), the first and last ones included.
    let mut ks: Vec<usize> = (0..flat.len()).step_by(13).collect();
    ks.push(flat.len() - 1);
    for k in ks {
        let h = 1e-6;
        let (mut a, mut b) = (flat.clone(), flat.clone());
        a[k] += h;
        b[k] -= h;
        let (mut pa, mut pb) = (m.clone(), m.clone());
        pa.read_flat(&a);
        pb.read_flat(&b);
        let fd = (loss(&pa, &d.norms, &d.drs, &d.energies, &d.forces)
            - loss(&pb, &d.norms, &d.drs, &d.energies, &d.forces))
            / (2.0 * h);
        assert!(
            (gf[k] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
            "scalar {k}: {} vs {fd}",
            gf[k]
        );
    }
}

#[test]
fn fifty_epochs_halve_the_loss() {
    let d = Data::new(1000);
    let mut m = Model::new(0);
    let mut adam = Adam::new(1e-3);
    let first = loss(&m, &d.norms, &d.drs, &d.energies, &d.forces);
    for _ in 0..50 {
        let (g, _) = loss_grad_and_value(&m, &d.norms, &d.drs, &d.energies, &d.forces);
        adam.step(&mut m, &g);
    }
    let last = loss(&m, &d.norms, &d.drs, &d.energies, &d.forces);
    // Measured: 0.2299 to 0.1060 with the default seed.
    assert!(last < first / 2.0, "{first} -> {last}");
}

#[test]
fn the_command_line_rejects_bad_values() {
    assert!(Args::try_parse_from(["lennard_jones", "--epochs", "0"]).is_err());
    assert!(Args::try_parse_from(["lennard_jones", "--points", "1"]).is_err());
    assert!(Args::try_parse_from(["lennard_jones", "--points", "many"]).is_err());
    let a = Args::try_parse_from(["lennard_jones"]).expect("the defaults");
    assert_eq!((a.epochs, a.points, a.seed), (400, 1000, 0));
}
