//! Utilities for the retraining methods: a model trained on a subset of the training set, scored on the test
//! set.
//!
//! A [`Utility`] must be a pure function of the subset (as a set: the order of indices must not matter) so
//! that values are reproducible. Two are provided:
//!
//! * [`KnnClassifierUtility`]: the accuracy of the hard-label K-nearest-neighbour classifier (majority vote;
//!   a tie goes to the tied class with the nearest member). Neighbour rankings are precomputed once, so a
//!   score costs O(test · K) plus the walk, and permutation prefixes are scored incrementally.
//! * [`LogisticUtility`]: the accuracy of a multinomial logistic regression trained by full-batch gradient
//!   descent for a fixed number of epochs from zero weights, on features standardised with the *whole*
//!   training set's mean and deviation (a fixed preprocessing, so it does not depend on the subset).
//!
//! Both score the empty subset as 0 (no model can be trained).

use rayon::prelude::*;

use crate::data::Matrix;
use crate::distance::{block_squared_distances, blocks, squared_norms};
use crate::error::{Result, ValuationError};
use crate::knn::KnnInput;
use crate::limits;

/// A model-quality function of training subsets.
pub trait Utility: Sync {
    /// Number of training points (indices range over `0..len`).
    fn len(&self) -> usize;

    /// Whether there are no training points.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The test score of a model trained on `subset` (distinct indices, any order). Must depend on the set
    /// only, and be deterministic.
    fn score(&self, subset: &[usize]) -> f64;

    /// Scores of the prefixes `order[..1]`, `order[..2]`, … in turn, stopping after the first prefix for
    /// which `stop(score)` is true. Returns the scores computed (one per prefix, at most `order.len()`).
    ///
    /// The default retrains for every prefix; utilities that can add a point cheaply override it.
    fn prefix_scores(&self, order: &[usize], stop: &mut dyn FnMut(f64) -> bool) -> Vec<f64> {
        let mut scores = Vec::with_capacity(order.len());
        for end in 1..=order.len() {
            let score = self.score(&order[..end]);
            scores.push(score);
            if stop(score) {
                break;
            }
        }
        scores
    }
}

/// Accuracy of the hard-label KNN classifier trained on a subset.
#[derive(Debug)]
pub struct KnnClassifierUtility {
    k: usize,
    train_rows: usize,
    test_labels: Vec<u32>,
    train_labels: Vec<u32>,
    num_classes: usize,
    /// `order[t * N + r]`: the training index at rank `r` for test point `t`.
    order: Vec<u32>,
    /// `rank[t * N + i]`: the rank of training index `i` for test point `t`.
    rank: Vec<u32>,
}

impl KnnClassifierUtility {
    /// Precomputes the neighbour rankings (ties by training index).
    ///
    /// # Errors
    ///
    /// Invalid input, or more than [`limits::RETRAIN_RANK_ENTRIES_MAX`] test × training entries.
    pub fn new(input: &KnnInput<'_>, k: usize) -> Result<Self> {
        input.check(k)?;
        let n = input.train.rows();
        let tests = input.test.rows();
        let entries = n.saturating_mul(tests);
        if entries > limits::RETRAIN_RANK_ENTRIES_MAX {
            return Err(ValuationError::LimitExceeded {
                context: "KNN utility".into(),
                what: "test rows × training rows",
                value: entries,
                max: limits::RETRAIN_RANK_ENTRIES_MAX,
            });
        }
        let train_norms = squared_norms(input.train);
        let test_norms = squared_norms(input.test);
        let ranges = blocks(tests, n);
        let per_block: Vec<Result<Vec<u32>>> = ranges
            .par_iter()
            .map(|range| {
                let distances = block_squared_distances(
                    input.train,
                    &train_norms,
                    input.test,
                    &test_norms,
                    range.clone(),
                )?;
                let mut out = Vec::with_capacity(range.len() * n);
                let mut keys: Vec<(u64, u32)> = Vec::with_capacity(n);
                for row in distances.rows() {
                    keys.clear();
                    keys.extend(
                        row.iter()
                            .enumerate()
                            .map(|(index, distance)| (distance.to_bits(), index as u32)),
                    );
                    keys.sort_unstable();
                    out.extend(keys.iter().map(|&(_, index)| index));
                }
                Ok(out)
            })
            .collect();
        let mut order = Vec::with_capacity(entries);
        for block in per_block {
            order.extend(block?);
        }
        let mut rank = vec![0_u32; entries];
        for t in 0..tests {
            for (position, &index) in order[t * n..(t + 1) * n].iter().enumerate() {
                rank[t * n + index as usize] = position as u32;
            }
        }
        Ok(Self {
            k,
            train_rows: n,
            test_labels: input.test_labels.to_vec(),
            train_labels: input.train_labels.to_vec(),
            num_classes: input.num_classes,
            order,
            rank,
        })
    }

    /// The prediction from neighbours given nearest first: majority, ties to the class seen first.
    fn predict(
        &self,
        neighbours: impl Iterator<Item = u32> + Clone,
        counts: &mut [u32],
    ) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None;
        for class in neighbours.clone() {
            counts[class as usize] += 1;
        }
        for class in neighbours.clone() {
            let count = counts[class as usize];
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((class, count));
            }
        }
        for class in neighbours {
            counts[class as usize] = 0;
        }
        best.map(|(class, _)| class)
    }
}

impl Utility for KnnClassifierUtility {
    fn len(&self) -> usize {
        self.train_rows
    }

    fn score(&self, subset: &[usize]) -> f64 {
        if subset.is_empty() {
            return 0.0;
        }
        let n = self.train_rows;
        let mut member = vec![false; n];
        for &index in subset {
            member[index] = true;
        }
        let mut counts = vec![0_u32; self.num_classes];
        let mut correct = 0_usize;
        let mut neighbours = Vec::with_capacity(self.k);
        for (t, &label) in self.test_labels.iter().enumerate() {
            neighbours.clear();
            for &index in &self.order[t * n..(t + 1) * n] {
                if member[index as usize] {
                    neighbours.push(self.train_labels[index as usize]);
                    if neighbours.len() == self.k {
                        break;
                    }
                }
            }
            if self.predict(neighbours.iter().copied(), &mut counts) == Some(label) {
                correct += 1;
            }
        }
        correct as f64 / self.test_labels.len() as f64
    }

    fn prefix_scores(&self, order: &[usize], stop: &mut dyn FnMut(f64) -> bool) -> Vec<f64> {
        let n = self.train_rows;
        let tests = self.test_labels.len();
        // Per test point: the ranks of its current K nearest members, ascending.
        let mut nearest: Vec<Vec<u32>> = vec![Vec::with_capacity(self.k + 1); tests];
        let mut right = vec![false; tests];
        let mut correct = 0_usize;
        let mut counts = vec![0_u32; self.num_classes];
        let mut scores = Vec::with_capacity(order.len());
        for &added in order {
            for t in 0..tests {
                let rank = self.rank[t * n + added];
                let list = &mut nearest[t];
                if list.len() == self.k && list.last().is_some_and(|&last| rank > last) {
                    continue;
                }
                let position = list.partition_point(|&existing| existing < rank);
                list.insert(position, rank);
                list.truncate(self.k);
                let labels = list
                    .iter()
                    .map(|&r| self.train_labels[self.order[t * n + r as usize] as usize]);
                let now = self.predict(labels, &mut counts) == Some(self.test_labels[t]);
                if now != right[t] {
                    if now {
                        correct += 1;
                    } else {
                        correct -= 1;
                    }
                    right[t] = now;
                }
            }
            let score = correct as f64 / tests as f64;
            scores.push(score);
            if stop(score) {
                break;
            }
        }
        scores
    }
}

/// Settings of the logistic-regression utility.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogisticSettings {
    /// Full-batch gradient-descent epochs.
    pub epochs: usize,
    /// Step size.
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the bias).
    pub l2: f64,
}

impl Default for LogisticSettings {
    fn default() -> Self {
        Self {
            epochs: 30,
            learning_rate: 0.5,
            l2: 1e-3,
        }
    }
}

/// Accuracy of a multinomial logistic regression trained on a subset.
#[derive(Debug)]
pub struct LogisticUtility {
    settings: LogisticSettings,
    classes: usize,
    /// Standardised training features with a trailing 1 (bias), row-major `N × (d + 1)`.
    train: Vec<f64>,
    train_labels: Vec<u32>,
    test: Vec<f64>,
    test_labels: Vec<u32>,
    width: usize,
}

impl LogisticUtility {
    /// Standardises the features and stores them.
    ///
    /// # Errors
    ///
    /// Invalid input or settings.
    pub fn new(input: &KnnInput<'_>, settings: LogisticSettings) -> Result<Self> {
        input.check(1)?;
        if settings.epochs == 0 || settings.epochs > limits::EPOCHS_MAX {
            return Err(ValuationError::invalid(
                "epochs",
                format!("must be in 1..={}", limits::EPOCHS_MAX),
            ));
        }
        if !(settings.learning_rate.is_finite() && settings.learning_rate > 0.0) {
            return Err(ValuationError::invalid(
                "learning_rate",
                "must be positive and finite",
            ));
        }
        if !(settings.l2.is_finite() && settings.l2 >= 0.0) {
            return Err(ValuationError::invalid(
                "l2",
                "must be non-negative and finite",
            ));
        }
        let cols = input.train.cols();
        let n = input.train.rows() as f64;
        let mut mean = vec![0.0; cols];
        for row in 0..input.train.rows() {
            for (sum, value) in mean.iter_mut().zip(input.train.row(row)) {
                *sum += value;
            }
        }
        mean.iter_mut().for_each(|sum| *sum /= n);
        let mut deviation = vec![0.0; cols];
        for row in 0..input.train.rows() {
            for ((sum, value), centre) in deviation.iter_mut().zip(input.train.row(row)).zip(&mean)
            {
                *sum += (value - centre) * (value - centre);
            }
        }
        deviation.iter_mut().for_each(|sum| {
            let sd = (*sum / n).sqrt();
            *sum = if sd > 1e-12 { sd } else { 1.0 };
        });
        let standardise = |matrix: &Matrix| -> Vec<f64> {
            let mut out = Vec::with_capacity(matrix.rows() * (cols + 1));
            for row in 0..matrix.rows() {
                out.extend(
                    matrix
                        .row(row)
                        .iter()
                        .zip(&mean)
                        .zip(&deviation)
                        .map(|((v, m), s)| (v - m) / s),
                );
                out.push(1.0);
            }
            out
        };
        Ok(Self {
            settings,
            classes: input.num_classes,
            train: standardise(input.train),
            train_labels: input.train_labels.to_vec(),
            test: standardise(input.test),
            test_labels: input.test_labels.to_vec(),
            width: cols + 1,
        })
    }

    /// Trains on `subset` (processed in ascending index order, so the set alone determines the result) and
    /// returns the weights, `classes × width`.
    #[must_use]
    pub fn train(&self, subset: &[usize]) -> Vec<f64> {
        let mut sorted = subset.to_vec();
        sorted.sort_unstable();
        let width = self.width;
        let classes = self.classes;
        let mut weights = vec![0.0; classes * width];
        let mut gradient = vec![0.0; classes * width];
        let mut probabilities = vec![0.0; classes];
        let scale = 1.0 / sorted.len().max(1) as f64;
        for _ in 0..self.settings.epochs {
            gradient.iter_mut().for_each(|g| *g = 0.0);
            for &index in &sorted {
                let x = &self.train[index * width..(index + 1) * width];
                softmax(&weights, x, &mut probabilities);
                probabilities[self.train_labels[index] as usize] -= 1.0;
                for (class, &error) in probabilities.iter().enumerate() {
                    for (g, &value) in gradient[class * width..(class + 1) * width]
                        .iter_mut()
                        .zip(x)
                    {
                        *g += error * value;
                    }
                }
            }
            for (position, (w, g)) in weights.iter_mut().zip(&gradient).enumerate() {
                let penalty = if position % width == width - 1 {
                    0.0
                } else {
                    self.settings.l2 * *w
                };
                *w -= self.settings.learning_rate * (g * scale + penalty);
            }
        }
        weights
    }
}

fn softmax(weights: &[f64], x: &[f64], out: &mut [f64]) {
    let width = x.len();
    let mut max = f64::NEG_INFINITY;
    for (class, logit) in out.iter_mut().enumerate() {
        *logit = weights[class * width..(class + 1) * width]
            .iter()
            .zip(x)
            .map(|(w, v)| w * v)
            .sum();
        max = max.max(*logit);
    }
    let mut total = 0.0;
    for logit in out.iter_mut() {
        *logit = (*logit - max).exp();
        total += *logit;
    }
    out.iter_mut().for_each(|p| *p /= total);
}

impl Utility for LogisticUtility {
    fn len(&self) -> usize {
        self.train_labels.len()
    }

    fn score(&self, subset: &[usize]) -> f64 {
        if subset.is_empty() {
            return 0.0;
        }
        let weights = self.train(subset);
        let width = self.width;
        let mut correct = 0_usize;
        for (t, &label) in self.test_labels.iter().enumerate() {
            let x = &self.test[t * width..(t + 1) * width];
            let mut best = (0_usize, f64::NEG_INFINITY);
            for class in 0..self.classes {
                let logit: f64 = weights[class * width..(class + 1) * width]
                    .iter()
                    .zip(x)
                    .map(|(w, v)| w * v)
                    .sum();
                if logit > best.1 {
                    best = (class, logit);
                }
            }
            if best.0 == label as usize {
                correct += 1;
            }
        }
        correct as f64 / self.test_labels.len() as f64
    }
}
