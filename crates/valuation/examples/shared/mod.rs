//! Helpers shared by the examples (included with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tributary_valuation::data::{CsvOptions, Matrix, Problem, read_csv};
use tributary_valuation::knn::KnnInput;
use tributary_valuation::rng::Stream;
use tributary_valuation::split::{flip_labels, stratified_split};

pub fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// A seeded stratified 80/20 split of a shipped dataset, with `flip` of the training labels flipped.
pub fn split(
    name: &str,
    seed: u64,
    flip: f64,
) -> Result<(Problem, Vec<usize>), Box<dyn std::error::Error>> {
    let table = read_csv(&data_path(name), &CsvOptions::label("label"))?;
    let whole = Problem::from_tables(std::slice::from_ref(&table), &table)?;
    let (train_index, test_index) = stratified_split(&whole.train_labels, 0.2, seed);
    let mut train_labels: Vec<u32> = train_index.iter().map(|&i| whole.train_labels[i]).collect();
    let flipped = flip_labels(&mut train_labels, whole.num_classes() as u32, flip, seed);
    let problem = Problem {
        train: whole.train.select_rows(&train_index),
        train_labels,
        test: whole.train.select_rows(&test_index),
        test_labels: test_index.iter().map(|&i| whole.train_labels[i]).collect(),
        classes: whole.classes.clone(),
        contributors: None,
        origins: Vec::new(),
    };
    Ok((problem, flipped))
}

pub fn input(problem: &Problem) -> KnnInput<'_> {
    KnnInput {
        train: &problem.train,
        train_labels: &problem.train_labels,
        test: &problem.test,
        test_labels: &problem.test_labels,
        num_classes: problem.num_classes(),
    }
}

/// The training set copied `copies` times, every feature of every copy moved by uniform noise in
/// [-0.01, 0.01) (stream "jitter", seed 1), labels repeated: the "digits copied 10× with jitter" data.
pub fn jittered_copies(
    problem: &Problem,
    copies: usize,
) -> Result<(Matrix, Vec<u32>), Box<dyn std::error::Error>> {
    let mut stream = Stream::new("jitter", 1, 0);
    let mut data = Vec::with_capacity(problem.train.as_slice().len() * copies);
    let mut labels = Vec::with_capacity(problem.train_labels.len() * copies);
    for _ in 0..copies {
        data.extend(
            problem
                .train
                .as_slice()
                .iter()
                .map(|v| v + (stream.unit() - 0.5) * 0.02),
        );
        labels.extend_from_slice(&problem.train_labels);
    }
    let matrix = Matrix::new(problem.train.rows() * copies, problem.train.cols(), data)?;
    Ok((matrix, labels))
}

/// Peak resident set size of this process, in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|kib| kib.parse::<f64>().ok())
                })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
