//! Closed-form Shapley values for nearest-neighbour utilities.
//!
//! All four variants share one driver: test points are processed in blocks (see [`crate::distance`]); each
//! block computes its squared distances with one GEMM, then, per test point, ranks the training points
//! nearest first (ties broken by training index, always) and adds that test point's values into the block's
//! partial sum. Blocks run in parallel (rayon) a fixed number at a time; their partial sums are folded into
//! the total strictly in block order, and the block size depends only on the training-set size. The result
//! is therefore bit-identical whatever the number of threads. Memory is bounded by the training set plus, per
//! block in flight, one block of distances and one partial-sum vector.
//!
//! Notation for one test point with label `y`: `α_1, …, α_N` are the training points nearest first and
//! `m_i = 1[label(α_i) = y]`. Values are averaged over test points.
//!
//! # Exact KNN-Shapley (Jia et al., VLDB 2019)
//!
//! Utility `U(S) = (1/K) Σ_{k ≤ min(K,|S|)} m_{(k)}(S)`: the number of the (at most) K nearest members of S
//! that have the right label, divided by K — *not* by `min(K,|S|)`; `U(∅) = 0`. (This is the definition the
//! recursion below is exact for; the tests check it against brute force over all orderings.)
//! `s_N = m_N / N`, `s_i = s_{i+1} + (m_i − m_{i+1}) / K · min(K, i) / i`. The values sum to `U(D)`.
//!
//! # Soft-label KNN-Shapley (Wang & Jia, 2023)
//!
//! Utility `U(S) = (1/min(K,|S|)) Σ_{k ≤ min(K,|S|)} m_{(k)}(S)` (the fraction of the nearest neighbours with
//! the right label, i.e. the soft-label KNN's probability of the right class) and `U(∅) = 1/C` for `C`
//! classes (a uniform guess). With `c = Σ_{i<N} m_i` and `H_K` the harmonic number:
//! `s_N = (m_N − c/(N−1))/N · (H_K − 1) + (m_N − 1/C)/N`,
//! `s_i = s_{i+1} + (m_i − m_{i+1})/(N−1) · (H_K + (min(i,K)·(N−1)/i − K)/K)`. The values sum to
//! `U(D) − 1/C`.
//!
//! # Threshold KNN-Shapley (TKNN; Wang, Yang & Jia, ICLR 2024)
//!
//! The neighbours are all training points strictly within distance `τ`; no sort, O(N) per test point.
//! Utility: for `B = S ∩ ball(τ)`, `U(S) = (1/|B|) Σ_{j∈B} m_j` if `B ≠ ∅`, else `1/C`. With `n = |D ∩ ball|`,
//! `a` the matching points in the ball, and `a_{−i} = a − m_i`: for `i` in the ball,
//! `s_i = (m_i − 1/C)/n + (m_i − a_{−i}/(n−1))/n · (H_n − 1)` (second term only for `n ≥ 2`); points outside
//! the ball get 0. The values sum to `U(D) − U(∅)`.
//!
//! # Truncated KNN-Shapley (Jia et al., 2019, Theorem 3)
//!
//! Only the `K* = max(K, ⌈1/ε⌉)` nearest points are ranked (a linear-time selection then a sort of K*
//! points): `ŝ_i = 0` for `i > K*` and the exact recursion from there down. Each test point's values are
//! within `1/(K*+1) ≤ ε` of the exact ones.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Progress;
use crate::data::Matrix;
use crate::distance::{block_squared_distances, blocks, squared_norms};
use crate::error::{Result, ValuationError};
use crate::limits;

/// Which closed form to use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "variant")]
pub enum KnnVariant {
    /// Exact KNN-Shapley (Jia et al. 2019).
    Exact,
    /// Soft-label KNN-Shapley (Wang & Jia 2023).
    SoftLabel,
    /// Truncated KNN-Shapley: only the `max(K, ⌈1/ε⌉)` nearest get values.
    Truncated {
        /// Error bound per test point, in (0, 1].
        epsilon: f64,
    },
    /// Threshold KNN-Shapley: the neighbours are the points strictly within Euclidean distance `tau`.
    Threshold {
        /// The radius (not squared), finite and > 0.
        tau: f64,
    },
}

/// Inputs shared by every nearest-neighbour method, checked once.
#[derive(Debug, Clone, Copy)]
pub struct KnnInput<'a> {
    /// Training features.
    pub train: &'a Matrix,
    /// Training class ids.
    pub train_labels: &'a [u32],
    /// Test features.
    pub test: &'a Matrix,
    /// Test class ids.
    pub test_labels: &'a [u32],
    /// Number of classes (every label must be below it).
    pub num_classes: usize,
}

impl KnnInput<'_> {
    /// Checks shapes, labels and `k`.
    ///
    /// # Errors
    ///
    /// Empty sets, mismatched shapes, labels out of range, `k` zero, above [`limits::K_MAX`] or above N.
    pub fn check(&self, k: usize) -> Result<()> {
        let train_rows = self.train.rows();
        if train_rows == 0 {
            return Err(ValuationError::invalid(
                "train",
                "the training set has no rows",
            ));
        }
        if self.test.rows() == 0 {
            return Err(ValuationError::invalid("test", "the test set has no rows"));
        }
        if self.train.cols() != self.test.cols() {
            return Err(ValuationError::invalid(
                "test",
                format!(
                    "test has {} features, train has {}",
                    self.test.cols(),
                    self.train.cols()
                ),
            ));
        }
        if self.train_labels.len() != train_rows || self.test_labels.len() != self.test.rows() {
            return Err(ValuationError::invalid(
                "labels",
                "one label per row is required",
            ));
        }
        if self.num_classes == 0
            || self
                .train_labels
                .iter()
                .chain(self.test_labels)
                .any(|&label| label as usize >= self.num_classes)
        {
            return Err(ValuationError::invalid(
                "labels",
                "a label is not below the number of classes",
            ));
        }
        if k == 0 {
            return Err(ValuationError::invalid("k", "K must be at least 1"));
        }
        if k > limits::K_MAX {
            return Err(ValuationError::LimitExceeded {
                context: "parameters".into(),
                what: "K",
                value: k,
                max: limits::K_MAX,
            });
        }
        if k > train_rows {
            return Err(ValuationError::KTooLarge { k, train_rows });
        }
        Ok(())
    }
}

/// Sort key: squared distance (non-negative, so its bits order like the value) then the training index.
#[inline]
fn key(distance: f64, index: usize) -> u128 {
    (u128::from(distance.to_bits()) << 32) | index as u128
}

#[inline]
fn key_index(key: u128) -> usize {
    (key & 0xFFFF_FFFF) as usize
}

/// Per-thread scratch space for one block.
struct Scratch {
    keys: Vec<u128>,
}

/// Shapley values of every training point for the nearest-neighbour utility of `variant`, averaged over the
/// test points. Deterministic (bit-identical for any thread count).
///
/// # Errors
///
/// Invalid inputs (see [`KnnInput::check`]), or a variant parameter out of range.
pub fn knn_shapley(
    input: &KnnInput<'_>,
    k: usize,
    variant: KnnVariant,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    input.check(k)?;
    let n = input.train.rows();
    match variant {
        KnnVariant::Truncated { epsilon } if !(epsilon > 0.0 && epsilon <= 1.0) => {
            return Err(ValuationError::invalid(
                "epsilon",
                format!("{epsilon} is not in (0, 1]"),
            ));
        }
        KnnVariant::Threshold { tau } if !(tau.is_finite() && tau > 0.0) => {
            return Err(ValuationError::invalid(
                "tau",
                format!("{tau} is not a positive finite distance"),
            ));
        }
        _ => {}
    }
    let harmonic = harmonic_numbers(n.max(k));
    let num_classes = input.num_classes as f64;
    let train_labels = input.train_labels;
    let kernel = |row: &[f64], label: u32, scratch: &mut Scratch, partial: &mut [f64]| match variant
    {
        KnnVariant::Exact => {
            sort_keys(row, &mut scratch.keys);
            exact_recursion(&scratch.keys, train_labels, label, k, partial);
        }
        KnnVariant::Truncated { epsilon } => {
            let kept = truncation_depth(k, epsilon);
            if kept >= n {
                sort_keys(row, &mut scratch.keys);
                exact_recursion(&scratch.keys, train_labels, label, k, partial);
            } else {
                fill_keys(row, &mut scratch.keys);
                // The K*+1 nearest, in order; the (K*+1)-th only anchors the recursion at zero.
                let (head, _, _) = scratch.keys.select_nth_unstable(kept);
                head.sort_unstable();
                let mut ranked: Vec<u128> = head.to_vec();
                ranked.push(scratch.keys[kept]);
                truncated_recursion(&ranked, train_labels, label, k, partial);
            }
        }
        KnnVariant::SoftLabel => {
            sort_keys(row, &mut scratch.keys);
            soft_label_recursion(
                &scratch.keys,
                train_labels,
                label,
                k,
                num_classes,
                &harmonic,
                partial,
            );
        }
        KnnVariant::Threshold { tau } => {
            threshold_values(
                row,
                tau * tau,
                train_labels,
                label,
                num_classes,
                &harmonic,
                partial,
            );
        }
    };
    let total = drive(input, progress, kernel)?;
    let count = input.test.rows() as f64;
    Ok(total.into_iter().map(|value| value / count).collect())
}

/// `K* = max(K, ⌈1/ε⌉)`.
#[must_use]
pub fn truncation_depth(k: usize, epsilon: f64) -> usize {
    let inverse = (1.0 / epsilon).ceil();
    let inverse = if inverse >= usize::MAX as f64 {
        usize::MAX
    } else {
        inverse as usize
    };
    k.max(inverse)
}

/// `H_0 = 0, H_1 = 1, …, H_len`.
fn harmonic_numbers(len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len + 1);
    let mut sum = 0.0;
    out.push(0.0);
    for i in 1..=len {
        sum += 1.0 / i as f64;
        out.push(sum);
    }
    out
}

fn fill_keys(row: &[f64], keys: &mut Vec<u128>) {
    keys.clear();
    keys.extend(
        row.iter()
            .enumerate()
            .map(|(index, &distance)| key(distance, index)),
    );
}

fn sort_keys(row: &[f64], keys: &mut Vec<u128>) {
    fill_keys(row, keys);
    keys.sort_unstable();
}

#[inline]
fn matches(labels: &[u32], key: u128, label: u32) -> f64 {
    if labels[key_index(key)] == label {
        1.0
    } else {
        0.0
    }
}

/// Exact recursion over fully ranked keys, adding into `partial`.
fn exact_recursion(ranked: &[u128], labels: &[u32], label: u32, k: usize, partial: &mut [f64]) {
    let n = ranked.len();
    let k_f = k as f64;
    let mut current = matches(labels, ranked[n - 1], label) / n as f64;
    partial[key_index(ranked[n - 1])] += current;
    let mut next_match = matches(labels, ranked[n - 1], label);
    for position in (0..n - 1).rev() {
        let rank = position + 1;
        let this_match = matches(labels, ranked[position], label);
        current += (this_match - next_match) / k_f * (k.min(rank) as f64) / rank as f64;
        partial[key_index(ranked[position])] += current;
        next_match = this_match;
    }
}

/// Truncated recursion: `ranked` holds the K*+1 nearest; the last one is the zero anchor.
fn truncated_recursion(ranked: &[u128], labels: &[u32], label: u32, k: usize, partial: &mut [f64]) {
    let kept = ranked.len() - 1;
    let k_f = k as f64;
    let mut current = 0.0;
    let mut next_match = matches(labels, ranked[kept], label);
    for position in (0..kept).rev() {
        let rank = position + 1;
        let this_match = matches(labels, ranked[position], label);
        current += (this_match - next_match) / k_f * (k.min(rank) as f64) / rank as f64;
        partial[key_index(ranked[position])] += current;
        next_match = this_match;
    }
}

fn soft_label_recursion(
    ranked: &[u128],
    labels: &[u32],
    label: u32,
    k: usize,
    num_classes: f64,
    harmonic: &[f64],
    partial: &mut [f64],
) {
    let n = ranked.len();
    let last_match = matches(labels, ranked[n - 1], label);
    if n == 1 {
        partial[key_index(ranked[0])] += last_match - 1.0 / num_classes;
        return;
    }
    let n_f = n as f64;
    let k_f = k as f64;
    let others: f64 = ranked[..n - 1]
        .iter()
        .map(|&key| matches(labels, key, label))
        .sum();
    let h_k = harmonic[k];
    let mut current = (last_match - others / (n_f - 1.0)) / n_f * (h_k - 1.0)
        + (last_match - 1.0 / num_classes) / n_f;
    partial[key_index(ranked[n - 1])] += current;
    let mut next_match = last_match;
    for position in (0..n - 1).rev() {
        let rank = position + 1;
        let this_match = matches(labels, ranked[position], label);
        let factor = h_k + ((k.min(rank) as f64) * (n_f - 1.0) / rank as f64 - k_f) / k_f;
        current += (this_match - next_match) / (n_f - 1.0) * factor;
        partial[key_index(ranked[position])] += current;
        next_match = this_match;
    }
}

fn threshold_values(
    row: &[f64],
    tau_squared: f64,
    labels: &[u32],
    label: u32,
    num_classes: f64,
    harmonic: &[f64],
    partial: &mut [f64],
) {
    let mut inside = 0_usize;
    let mut agreeing = 0_usize;
    for (index, &distance) in row.iter().enumerate() {
        if distance < tau_squared {
            inside += 1;
            agreeing += usize::from(labels[index] == label);
        }
    }
    if inside == 0 {
        return;
    }
    let n = inside as f64;
    let tail = harmonic[inside] - 1.0;
    for (index, &distance) in row.iter().enumerate() {
        if distance < tau_squared {
            let this_match = if labels[index] == label { 1.0 } else { 0.0 };
            let mut value = (this_match - 1.0 / num_classes) / n;
            if inside >= 2 {
                let others = agreeing as f64 - this_match;
                value += (this_match - others / (n - 1.0)) / n * tail;
            }
            partial[index] += value;
        }
    }
}

/// Runs `kernel` for every test point (in blocks), returning the sum over test points of what it adds.
fn drive<F>(input: &KnnInput<'_>, progress: &dyn Progress, kernel: F) -> Result<Vec<f64>>
where
    F: Fn(&[f64], u32, &mut Scratch, &mut [f64]) + Sync,
{
    let n = input.train.rows();
    let train_norms = squared_norms(input.train);
    let test_norms = squared_norms(input.test);
    let ranges = blocks(input.test.rows(), n);
    progress.start(input.test.rows() as u64);
    let mut total = vec![0.0_f64; n];
    for wave in ranges.chunks(limits::BLOCKS_IN_FLIGHT_MAX) {
        let partials: Vec<Result<Vec<f64>>> = wave
            .par_iter()
            .map(|range| {
                let distances = block_squared_distances(
                    input.train,
                    &train_norms,
                    input.test,
                    &test_norms,
                    range.clone(),
                )?;
                let mut partial = vec![0.0_f64; n];
                let mut scratch = Scratch {
                    keys: Vec::with_capacity(n),
                };
                for (local, row) in distances.rows().into_iter().enumerate() {
                    let row = row
                        .as_slice()
                        .ok_or_else(|| ValuationError::invalid("matrix", "non-contiguous row"))?;
                    kernel(
                        row,
                        input.test_labels[range.start + local],
                        &mut scratch,
                        &mut partial,
                    );
                }
                progress.advance(range.len() as u64);
                Ok(partial)
            })
            .collect();
        // Fold in block order: the float sums do not depend on scheduling.
        for partial in partials {
            for (sum, value) in total.iter_mut().zip(partial?) {
                *sum += value;
            }
        }
    }
    Ok(total)
}

/// The exact-KNN utility of the whole training set, `(1/K) Σ_{k ≤ K} m_(k)`, averaged over test points (what
/// the exact values sum to).
///
/// # Errors
///
/// As [`knn_shapley`].
pub fn knn_utility_full(input: &KnnInput<'_>, k: usize) -> Result<f64> {
    input.check(k)?;
    let train_labels = input.train_labels;
    let kernel = |row: &[f64], label: u32, scratch: &mut Scratch, partial: &mut [f64]| {
        fill_keys(row, &mut scratch.keys);
        let (head, kth, _) = scratch.keys.select_nth_unstable(k - 1);
        let hits = head
            .iter()
            .chain(std::iter::once(&*kth))
            .filter(|&&key| train_labels[key_index(key)] == label)
            .count();
        partial[0] += hits as f64 / k as f64;
    };
    let total = drive(input, &crate::NoProgress, kernel)?;
    Ok(total[0] / input.test.rows() as f64)
}
