//! functorch's Jacobians tutorial in Rust: reverse mode (`jacrev`, one sweep per output)
//! against forward mode (`jacfwd`, one sweep per input) on a wide function (many inputs,
//! few outputs) and a tall one (few inputs, many outputs), with several `chunk_size`s.
//! Every Jacobian is checked against the others; the times show which mode wins where.
//!
//! `cargo run --release --example jacobians`

use std::hint::black_box;
use std::time::Instant;

use fluxion::transforms;

const WIDE: usize = 512;
const FEW: usize = 4;

/// Many inputs, few outputs: `jacrev` needs 4 sweeps, `jacfwd` 512.
#[transforms(
    jacrev,
    jacfwd,
    jacrev(chunk_size = 2, name = "wide_jacrev_2"),
    jacfwd(chunk_size = 64, name = "wide_jacfwd_64")
)]
pub fn wide(x: [f64; WIDE]) -> [f64; FEW] {
    let mut y = [0.0; FEW];
    for k in 0..FEW {
        let mut s = 0.0;
        for i in 0..WIDE {
            s += ((k + 1) as f64 * x[i]).sin() * x[(i + k) % WIDE];
        }
        y[k] = s;
    }
    y
}

/// Few inputs, many outputs, each output the next step of a recurrence through all the
/// inputs: `jacfwd` needs 4 sweeps, `jacrev` one per output back along the chain.
#[transforms(
    jacrev,
    jacfwd,
    jacrev(chunk_size = 64, name = "tall_jacrev_64"),
    jacfwd(chunk_size = 2, name = "tall_jacfwd_2")
)]
pub fn tall(x: [f64; FEW]) -> [f64; WIDE] {
    let mut y = [0.0; WIDE];
    let mut s = x[0];
    for i in 0..WIDE {
        s = (s * x[1] + x[2]).sin() + x[3] * (i as f64 / WIDE as f64);
        y[i] = s;
    }
    y
}

/// The best time of a few runs, in microseconds.
fn time<T>(f: impl Fn() -> T) -> f64 {
    (0..20)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64() * 1e6
        })
        .fold(f64::INFINITY, f64::min)
}

fn max_diff<const M: usize, const N: usize>(a: &[[f64; N]; M], b: &[[f64; N]; M]) -> f64 {
    let mut worst = 0.0_f64;
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            worst = worst.max((x - y).abs() / y.abs().max(1.0));
        }
    }
    worst
}

fn main() {
    let xw: [f64; WIDE] = std::array::from_fn(|i| (i as f64 * 0.37).cos());
    let xt = [0.3, -1.1, 0.7, 0.5];
    let (r, f) = (wide_jacrev(xw), wide_jacfwd(xw));
    let (r2, f64_) = (wide_jacrev_2(xw), wide_jacfwd_64(xw));
    assert!(max_diff(&r, &f).max(max_diff(&r, &r2)).max(max_diff(&r, &f64_)) < 1e-12);
    let (tr, tf) = (tall_jacrev(xt), tall_jacfwd(xt));
    let (tr64, tf2) = (tall_jacrev_64(xt), tall_jacfwd_2(xt));
    assert!(max_diff(&tr, &tf).max(max_diff(&tr, &tr64)).max(max_diff(&tr, &tf2)) < 1e-12);

    let report = |what: &str, rows: [(&str, f64); 4]| {
        println!("{what} (best of 20, µs)");
        for (name, t) in rows {
            println!("  {name:<24}{t:>10.1}");
        }
        let best = rows.iter().fold(rows[0], |a, b| if b.1 < a.1 { *b } else { a });
        println!("  fastest: {}", best.0);
    };
    report(
        &format!("wide: {WIDE} inputs -> {FEW} outputs"),
        [
            ("jacrev", time(|| wide_jacrev(xw))),
            ("jacrev chunk_size = 2", time(|| wide_jacrev_2(xw))),
            ("jacfwd", time(|| wide_jacfwd(xw))),
            ("jacfwd chunk_size = 64", time(|| wide_jacfwd_64(xw))),
        ],
    );
    report(
        &format!("tall: {FEW} inputs -> {WIDE} outputs"),
        [
            ("jacrev", time(|| tall_jacrev(xt))),
            ("jacrev chunk_size = 64", time(|| tall_jacrev_64(xt))),
            ("jacfwd", time(|| tall_jacfwd(xt))),
            ("jacfwd chunk_size = 2", time(|| tall_jacfwd_2(xt))),
        ],
    );
    println!("every Jacobian agrees with the others");
}
