//! Times the expansion of a file's annotated functions (median of repeated runs) and
//! reports the generated code's size.
//!
//! `cargo run --release -p fluxion-engine --example expand_time -- benches/mlp5.rs.txt`

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "benches/mlp5.rs.txt".into());
    let src = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut times = Vec::new();
    let mut text = String::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        match fluxion_engine::expand::expand_item_text(&src, None) {
            Ok(t) => text = t,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let public = fluxion_engine::expand::expand_item_text_with(&src, None, false).unwrap_or_default();
    println!(
        "{path}: expansion {:.1} ms (median of 7, including formatting), {} generated lines ({} without hidden companions), source {} lines",
        times[3] * 1e3,
        text.lines().count(),
        public.lines().count(),
        src.lines().count()
    );
}
