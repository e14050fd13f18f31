//! Shared helpers for the integration tests: loading the shipped datasets, splitting, flipping labels.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tributary_valuation::data::{CsvOptions, Problem, read_csv};
use tributary_valuation::knn::KnnInput;
use tributary_valuation::split::{flip_labels, stratified_split};

pub fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// A dataset split 80/20 (stratified, seeded), optionally with flipped training labels.
pub struct Split {
    pub problem: Problem,
    pub flipped: Vec<usize>,
}

impl Split {
    pub fn input(&self) -> KnnInput<'_> {
        KnnInput {
            train: &self.problem.train,
            train_labels: &self.problem.train_labels,
            test: &self.problem.test,
            test_labels: &self.problem.test_labels,
            num_classes: self.problem.num_classes(),
        }
    }
}

pub fn split(name: &str, seed: u64, flip_fraction: f64) -> Split {
    let table = read_csv(&data_path(name), &CsvOptions::label("label")).unwrap();
    // Use the whole file as "train" to map labels, then split by index.
    let whole = Problem::from_tables(std::slice::from_ref(&table), &table).unwrap();
    let (train_index, test_index) = stratified_split(&whole.train_labels, 0.2, seed);
    let mut train_labels: Vec<u32> = train_index.iter().map(|&i| whole.train_labels[i]).collect();
    let flipped = flip_labels(
        &mut train_labels,
        whole.num_classes() as u32,
        flip_fraction,
        seed,
    );
    let problem = Problem {
        train: whole.train.select_rows(&train_index),
        train_labels,
        test: whole.train.select_rows(&test_index),
        test_labels: test_index.iter().map(|&i| whole.train_labels[i]).collect(),
        classes: whole.classes.clone(),
        contributors: None,
        origins: Vec::new(),
    };
    Split { problem, flipped }
}
