//! Prints the time of each generated derivative relative to its hand-written baseline,
//! from the results of the last `cargo bench -p fluxion-benches` run: for every criterion
//! group that has a `fluxion` and a `hand` benchmark, both medians and their ratio.
//!
//! `cargo run -p fluxion-benches --bin ratios [CRITERION_DIR]`
//!
//! The results are read where criterion writes them: `CRITERION_DIR` if given, else
//! `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else `criterion` in the target
//! directory that `cargo metadata` reports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// One benchmark group: median times in nanoseconds.
#[derive(Debug, PartialEq)]
struct Row {
    name: String,
    fluxion: f64,
    hand: f64,
}

fn main() -> ExitCode {
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => criterion_dir(),
    };
    match rows(&dir) {
        Ok(rows) if rows.is_empty() => {
            eprintln!(
                "no `fluxion`/`hand` benchmark pairs in {}: run `cargo bench -p fluxion-benches` first",
                dir.display()
            );
            ExitCode::FAILURE
        }
        Ok(rows) => {
            print!("{}", table(&rows));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Where criterion writes its results (the same search criterion makes).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
        .and_then(|meta| meta["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion")
}

/// The groups of `dir` that have both a `fluxion` and a `hand` result, by name.
fn rows(dir: &Path) -> Result<Vec<Row>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut groups: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|g| g.join("fluxion").is_dir() && g.join("hand").is_dir())
        .collect();
    groups.sort();
    groups
        .iter()
        .map(|g| {
            Ok(Row {
                name: group_name(g),
                fluxion: median_ns(&g.join("fluxion/new/estimates.json"))?,
                hand: median_ns(&g.join("hand/new/estimates.json"))?,
            })
        })
        .collect()
}

/// The group's name as the benchmark declared it (criterion writes `training_step/n100` in
/// the directory `training_step_n100`), else the directory's name.
fn group_name(group: &Path) -> String {
    fs::read_to_string(group.join("fluxion/new/benchmark.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["group_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| group.file_name().unwrap_or_default().to_string_lossy().into_owned())
}

/// The median point estimate (nanoseconds) of a criterion `estimates.json`.
fn median_ns(path: &Path) -> Result<f64, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    json["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no `median.point_estimate`", path.display()))
}

fn table(rows: &[Row]) -> String {
    let mut out = format!("{:<22} {:>12} {:>12} {:>7}\n", "benchmark", "fluxion", "hand", "ratio");
    for r in rows {
        out += &format!(
            "{:<22} {:>12} {:>12} {:>7.2}\n",
            r.name,
            time(r.fluxion),
            time(r.hand),
            r.fluxion / r.hand
        );
    }
    out
}

/// A time in nanoseconds, in the unit that keeps it below 1000 (as criterion prints it).
fn time(ns: f64) -> String {
    match ns {
        t if t < 1e3 => format!("{t:.2} ns"),
        t if t < 1e6 => format!("{:.2} µs", t / 1e3),
        t if t < 1e9 => format!("{:.2} ms", t / 1e6),
        t => format!("{:.2} s", t / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(dir: &Path, median: f64) {
        fs::create_dir_all(dir.join("new")).unwrap();
        let json = format!(r#"{{"mean":{{"point_estimate":1.0}},"median":{{"point_estimate":{median}}}}}"#);
        fs::write(dir.join("new/estimates.json"), json).unwrap();
    }

    #[test]
    fn reads_pairs_and_prints_ratios() {
        let dir = std::env::temp_dir().join(format!("fluxion-ratios-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        estimate(&dir.join("b_group/fluxion"), 3.0);
        estimate(&dir.join("b_group/hand"), 2.0);
        estimate(&dir.join("a_group/fluxion"), 10.0);
        estimate(&dir.join("a_group/hand"), 10.0);
        estimate(&dir.join("unpaired/fluxion"), 1.0);
        // A group named `c/n100`, which criterion writes to `c_n100`.
        estimate(&dir.join("c_n100/fluxion"), 2.5e6);
        estimate(&dir.join("c_n100/hand"), 1.25e3);
        let id = r#"{"group_id":"c/n100","function_id":"fluxion"}"#;
        fs::write(dir.join("c_n100/fluxion/new/benchmark.json"), id).unwrap();
        fs::create_dir_all(dir.join("report")).unwrap();
        let rows = rows(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a_group", "b_group", "c/n100"]);
        let text = table(&rows);
        assert_eq!(
            text.lines().nth(2),
            Some("b_group                     3.00 ns      2.00 ns    1.50")
        );
        assert_eq!(
            text.lines().nth(3),
            Some("c/n100                      2.50 ms      1.25 µs 2000.00")
        );
    }
}
