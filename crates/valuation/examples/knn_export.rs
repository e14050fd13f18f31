//! Exports what `knn_bench` measures, for an outside comparison (scripts/bench_pydvl.py): for digits
//! (1437 train × 360 test, the seeded stratified split) and digits copied ten times with jitter
//! (14 370 train × 360 test), writes the exact train/test matrices and labels, the exact KNN-Shapley
//! values (K = 5) and the median wall time of `knn_shapley` into OUT_DIR.
//!
//! `cargo run --release -p tributary-valuation --example knn_export -- OUT_DIR [RUNS]`
//!
//! Files, per dataset NAME (`digits`, `digits-x10-jitter`): `NAME.train.csv`, `NAME.test.csv` (one row per
//! point, no header), `NAME.train_labels.csv`, `NAME.test_labels.csv` (one class id per line),
//! `NAME.values.csv` (one value per training point, in training order). Floats are written in Rust's
//! shortest round-trip form, so parsing them gives back the same bits. `timings.json` holds the thread
//! count and, per dataset, every run's seconds and their median.

#[path = "shared/mod.rs"]
mod shared;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use tributary_valuation::knn::{KnnInput, KnnVariant, knn_shapley};
use tributary_valuation::{Matrix, NoProgress};

const K: usize = 5;

fn write_matrix(path: &Path, matrix: &Matrix) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    for row in 0..matrix.rows() {
        for (col, value) in matrix.row(row).iter().enumerate() {
            if col > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{value}")?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn write_column<T: std::fmt::Display>(path: &Path, values: &[T]) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    for value in values {
        writeln!(out, "{value}")?;
    }
    out.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = args.next().ok_or("usage: knn_export OUT_DIR [RUNS]")?;
    let runs: Option<usize> = args.next().map(|text| text.parse()).transpose()?;
    let out_dir = Path::new(&out_dir);
    std::fs::create_dir_all(out_dir)?;

    let (problem, _) = shared::split("digits.csv", 42, 0.0)?;
    let threads = rayon::current_num_threads();
    let base = shared::input(&problem);
    let (big_train, big_labels) = shared::jittered_copies(&problem, 10)?;
    let big = KnnInput {
        train: &big_train,
        train_labels: &big_labels,
        ..base
    };

    let mut datasets = Vec::new();
    for (name, input) in [("digits", base), ("digits-x10-jitter", big)] {
        let runs = runs
            .unwrap_or(if input.train.rows() > 5_000 { 5 } else { 11 })
            .max(1);
        let mut values = Vec::new();
        let mut seconds: Vec<f64> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            values = knn_shapley(&input, K, KnnVariant::Exact, &NoProgress)?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[runs / 2];

        write_matrix(&out_dir.join(format!("{name}.train.csv")), input.train)?;
        write_matrix(&out_dir.join(format!("{name}.test.csv")), input.test)?;
        write_column(
            &out_dir.join(format!("{name}.train_labels.csv")),
            input.train_labels,
        )?;
        write_column(
            &out_dir.join(format!("{name}.test_labels.csv")),
            input.test_labels,
        )?;
        write_column(&out_dir.join(format!("{name}.values.csv")), &values)?;
        println!(
            "{name}: train={} test={} k={K} threads={threads}: median {:.2} ms over {runs} runs",
            input.train.rows(),
            input.test.rows(),
            median * 1000.0
        );
        datasets.push(serde_json::json!({
            "name": name,
            "train_rows": input.train.rows(),
            "test_rows": input.test.rows(),
            "features": input.train.cols(),
            "k": K,
            "runs": runs,
            "seconds": seconds,
            "median_seconds": median,
        }));
    }
    let timings = serde_json::json!({ "threads": threads, "datasets": datasets });
    std::fs::write(
        out_dir.join("timings.json"),
        serde_json::to_string_pretty(&timings)? + "\n",
    )?;
    Ok(())
}
