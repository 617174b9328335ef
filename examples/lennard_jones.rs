//! functorch's Lennard-Jones example in Rust: an MLP learns the Lennard-Jones energy from
//! energies and forces, where the predicted forces are the negative derivative of the
//! network (`-vmap(jacrev(model))`) and the loss is differentiated through them.
//!
//! `cargo run --release --example lennard_jones` trains for 400 epochs on 1000 distances
//! (the original's sizes), prints the loss every 20 epochs, shows a progress bar, reports
//! the energy and force errors on a finer held-out grid and writes `lennard_jones.svg`
//! (the true and learned curves and the loss). `--help` lists the options.
//!
//! Everything derivative and batched is generated at compile time: `model` is batched over
//! the distances with its forward pass and `dE/dr` computed together
//! (`vmap(grad_and_value(model))`, on SIMD lanes and threads), and `loss_grad_and_value`
//! differentiates the loss, through those forces, with respect to every weight of the
//! parameter struct (a second derivative).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use fluxion::optim::Adam;
use fluxion::{grad_and_value, init, vmap, Parameters, Rng};
use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::{SMatrix, SVector};
use plotters::prelude::*;

const EPSILON: f64 = 4.0;
const SIGMA: f64 = 0.5;

/// The Lennard-Jones energy.
pub fn lennard_jones(r: f64) -> f64 {
    EPSILON * ((SIGMA / r).powi(12) - (SIGMA / r).powi(6))
}

/// Its force magnitude, `-dE/dr`.
pub fn lennard_jones_force(r: f64) -> f64 {
    -EPSILON * (-12.0 * SIGMA.powi(12) / r.powi(13) + 6.0 * SIGMA.powi(6) / r.powi(7))
}

/// The MLP `1 -> 16 -> 16 -> 16 -> 16 -> 1` with `tanh` between the layers, as torch's
/// `nn.Sequential` of `nn.Linear`s.
#[derive(Parameters, Clone, Debug)]
pub struct Model {
    pub w1: SMatrix<f64, 16, 1>,
    pub b1: SVector<f64, 16>,
    pub w2: SMatrix<f64, 16, 16>,
    pub b2: SVector<f64, 16>,
    pub w3: SMatrix<f64, 16, 16>,
    pub b3: SVector<f64, 16>,
    pub w4: SMatrix<f64, 16, 16>,
    pub b4: SVector<f64, 16>,
    pub w5: SMatrix<f64, 1, 16>,
    pub b5: f64,
}

impl Model {
    /// torch's `nn.Linear` initialisation, uniform in `±1/√fan_in`, from `seed`.
    pub fn new(seed: u64) -> Model {
        let rng = Rng::new(seed);
        let mut m = Model {
            w1: SMatrix::zeros(),
            b1: SVector::zeros(),
            w2: SMatrix::zeros(),
            b2: SVector::zeros(),
            w3: SMatrix::zeros(),
            b3: SVector::zeros(),
            w4: SMatrix::zeros(),
            b4: SVector::zeros(),
            w5: SMatrix::zeros(),
            b5: 0.0,
        };
        // Each tensor its own numbers; a layer's weights and biases share its fan-in.
        init::linear(&mut m.w1, &rng.fold_in(10), 1);
        init::linear(&mut m.b1, &rng.fold_in(11), 1);
        init::linear(&mut m.w2, &rng.fold_in(20), 16);
        init::linear(&mut m.b2, &rng.fold_in(21), 16);
        init::linear(&mut m.w3, &rng.fold_in(30), 16);
        init::linear(&mut m.b3, &rng.fold_in(31), 16);
        init::linear(&mut m.w4, &rng.fold_in(40), 16);
        init::linear(&mut m.b4, &rng.fold_in(41), 16);
        init::linear(&mut m.w5, &rng.fold_in(50), 16);
        init::linear(&mut m.b5, &rng.fold_in(51), 16);
        m
    }
}

/// The energy of one distance. `#[grad_and_value(argnums = 1)]` gives `(dE/dr, E)`, and
/// `#[vmap]` batches that over the distances with the weights shared.
#[vmap(in_dims = (None, 0))]
#[grad_and_value(argnums = 1)]
pub fn model(p: &Model, r: f64) -> f64 {
    let h1 = (p.w1 * r + p.b1).map(|v| v.tanh());
    let h2 = (p.w2 * h1 + p.b2).map(|v| v.tanh());
    let h3 = (p.w3 * h2 + p.b3).map(|v| v.tanh());
    let h4 = (p.w4 * h3 + p.b4).map(|v| v.tanh());
    (p.w5 * h4)[0] + p.b5
}

/// The original's loss, `mse(energies) + 0.01 * mse(forces) / 3`, with the predicted
/// forces `-dE/dr * dr / |dr|` from the batched derivative; `loss_grad_and_value` is its
/// gradient with respect to every weight, through those forces.
#[grad_and_value]
pub fn loss(p: &Model, norms: &[f64], drs: &[[f64; 3]], energies: &[f64], forces: &[[f64; 3]]) -> f64 {
    let (de, e) = model_grad_and_value_vmap(p, norms);
    let (mut se, mut sf) = (0.0, 0.0);
    for k in 0..norms.len() {
        let a = e[k] - energies[k];
        se += a * a;
        for c in 0..3 {
            let b = -de[k] * drs[k][c] / norms[k] - forces[k][c];
            sf += b * b;
        }
    }
    let n = norms.len() as f64;
    se / n + 0.01 * (sf / (3.0 * n)) / 3.0
}

/// The training data: distances evenly spaced in `[0.5, 1.0]`, displacements
/// `r (1, 0, 0)`, energies, and forces as the original computes them (the force
/// magnitude times the displacement).
pub struct Data {
    pub norms: Vec<f64>,
    pub drs: Vec<[f64; 3]>,
    pub energies: Vec<f64>,
    pub forces: Vec<[f64; 3]>,
}

impl Data {
    pub fn new(points: usize) -> Data {
        let norms: Vec<f64> = (0..points)
            .map(|k| 0.5 + (2.0 * SIGMA - 0.5) * k as f64 / (points - 1).max(1) as f64)
            .collect();
        let drs: Vec<[f64; 3]> = norms.iter().map(|&r| [r, 0.0, 0.0]).collect();
        let energies = norms.iter().map(|&r| lennard_jones(r)).collect();
        let forces = drs
            .iter()
            .zip(&norms)
            .map(|(d, &r)| d.map(|x| x * lennard_jones_force(r)))
            .collect();
        Data {
            norms,
            drs,
            energies,
            forces,
        }
    }
}

/// functorch's Lennard-Jones example: train an MLP on energies and forces.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
pub struct Args {
    /// Training epochs (full-batch Adam steps).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Training distances, evenly spaced in [0.5, 1.0].
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
    pub points: u64,
    /// Seed of the weights' initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the picture (SVG).
    #[arg(long, default_value = "lennard_jones.svg")]
    pub out: PathBuf,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    pub quiet: bool,
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    let data = Data::new(args.points as usize);
    let mut model = Model::new(args.seed);
    let mut adam = Adam::new(1e-3);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.epochs)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} epochs, loss {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut losses = Vec::with_capacity(args.epochs as usize);
    let start = Instant::now();
    for epoch in 0..args.epochs {
        let (grads, l) = loss_grad_and_value(&model, &data.norms, &data.drs, &data.energies, &data.forces);
        adam.step(&mut model, &grads);
        losses.push(l);
        if epoch % 20 == 0 {
            let line = format!("epoch {epoch:>4}: loss {l:.6e}");
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
        }
        bar.set_message(format!("{l:.3e}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let took = start.elapsed();
    let final_loss = loss(&model, &data.norms, &data.drs, &data.energies, &data.forces);
    println!(
        "trained {} epochs on {} points in {:.3} s ({:.1} µs per epoch); final loss {final_loss:.6e}",
        args.epochs,
        args.points,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / args.epochs as f64
    );

    // Held out: a grid four times finer over the same range.
    let test = Data::new(4 * args.points as usize);
    let (de, e) = model_grad_and_value_vmap(&model, &test.norms);
    let rms = |f: &dyn Fn(usize) -> f64| {
        (test.norms.iter().enumerate().map(|(k, _)| f(k).powi(2)).sum::<f64>() / test.norms.len() as f64).sqrt()
    };
    let energy_rms = rms(&|k| e[k] - test.energies[k]);
    let force_rms = rms(&|k| -de[k] - lennard_jones_force(test.norms[k]));
    println!(
        "held out ({} points): energy RMS error {energy_rms:.4e}, force RMS error {force_rms:.4e}",
        test.norms.len()
    );

    match plot(&args.out, &test, &e, &de, &losses) {
        Ok(()) => {
            println!("wrote {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("could not write {}: {err}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

/// True and learned energy and force curves, and the loss per epoch (log scale).
fn plot(path: &PathBuf, test: &Data, e: &[f64], de: &[f64], losses: &[f64]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1200, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let curves = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                  title: &str,
                  truth: &dyn Fn(f64) -> f64,
                  learned: &[f64]|
     -> Result<(), Box<dyn std::error::Error>> {
        let ys: Vec<f64> = test
            .norms
            .iter()
            .map(|&r| truth(r))
            .chain(learned.iter().copied())
            .collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5..1.0, lo..hi)?;
        chart.configure_mesh().x_desc("r").draw()?;
        chart
            .draw_series(LineSeries::new(test.norms.iter().map(|&r| (r, truth(r))), &BLACK))?
            .label("Lennard-Jones")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        chart
            .draw_series(LineSeries::new(
                test.norms.iter().copied().zip(learned.iter().copied()),
                &RED,
            ))?
            .label("learned")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart.configure_series_labels().border_style(BLACK).draw()?;
        Ok(())
    };
    curves(&panels[0], "energy", &lennard_jones, e)?;
    let forces: Vec<f64> = de.iter().map(|d| -d).collect();
    curves(&panels[1], "force", &lennard_jones_force, &forces)?;
    let lo = losses.iter().copied().fold(f64::INFINITY, f64::min).max(1e-12);
    let hi = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(lo * 10.0);
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("loss", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..losses.len(), (lo..hi).log_scale())?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    chart.draw_series(LineSeries::new(losses.iter().copied().enumerate(), &BLUE))?;
    root.present()?;
    Ok(())
}
