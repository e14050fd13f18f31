//! Tabular datasets for training: rows of `f32` features with class ids, read from CSV or Parquet
//! (through the `valuation` crate's readers, so both crates accept the same files), split, partitioned,
//! and standardised with statistics that travel with the model.

use crate::error::{LearnError, Result};
use crate::limits;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tributary_valuation::data::{CsvOptions, Table, read_table};

/// Rows of features with a class id each.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    feature_count: usize,
    labels: Vec<u32>,
    classes: Vec<String>,
}

impl Dataset {
    /// A dataset from row-major `features` (`labels.len()` rows of `feature_count` values) and class ids
    /// into `classes`.
    ///
    /// # Errors
    ///
    /// Shapes that do not agree, non-finite values, class ids out of range, or sizes over the limits.
    pub fn new(
        features: Vec<f32>,
        feature_count: usize,
        labels: Vec<u32>,
        classes: Vec<String>,
    ) -> Result<Self> {
        if feature_count == 0 || feature_count > limits::FEATURES_MAX {
            return Err(LearnError::invalid(
                "dataset",
                format!(
                    "{feature_count} feature columns; between 1 and {} are supported",
                    limits::FEATURES_MAX
                ),
            ));
        }
        if classes.len() < 2 || classes.len() > limits::CLASSES_MAX {
            return Err(LearnError::invalid(
                "dataset",
                format!(
                    "{} classes; a classifier needs between 2 and {}",
                    classes.len(),
                    limits::CLASSES_MAX
                ),
            ));
        }
        if labels.len().checked_mul(feature_count) != Some(features.len()) {
            return Err(LearnError::invalid(
                "dataset",
                format!(
                    "{} values do not make {} rows of {feature_count} features",
                    features.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(position) = features.iter().position(|value| !value.is_finite()) {
            return Err(LearnError::invalid(
                "dataset",
                format!(
                    "the value in row {}, feature {} is not a finite number",
                    position / feature_count,
                    position % feature_count
                ),
            ));
        }
        if let Some(label) = labels
            .iter()
            .find(|&&label| label as usize >= classes.len())
        {
            return Err(LearnError::invalid(
                "dataset",
                format!(
                    "class id {label} is out of range for {} classes",
                    classes.len()
                ),
            ));
        }
        Ok(Self {
            features,
            feature_count,
            labels,
            classes,
        })
    }

    /// Reads a CSV or Parquet file with a label column.
    ///
    /// `classes` fixes the class names (and so the ids) when the model already knows them, as in a
    /// federated session where every contributor must number classes alike; a label outside them is an
    /// error. Without it the classes are the sorted distinct labels of the file.
    ///
    /// # Errors
    ///
    /// The file cannot be read or parsed, has no such label column, or has a label not in `classes`.
    pub fn read(path: &Path, label_column: &str, classes: Option<&[String]>) -> Result<Self> {
        let table = read_table(path, &CsvOptions::label(label_column))?;
        Self::from_table(&table, classes)
    }

    /// Converts a table read by the valuation crate; see [`Dataset::read`] for `classes`.
    ///
    /// # Errors
    ///
    /// As [`Dataset::read`].
    pub fn from_table(table: &Table, classes: Option<&[String]>) -> Result<Self> {
        let classes: Vec<String> = match classes {
            Some(classes) => classes.to_vec(),
            None => {
                let distinct: std::collections::BTreeSet<&String> = table.labels.iter().collect();
                distinct.into_iter().cloned().collect()
            }
        };
        let index: BTreeMap<&str, u32> = classes
            .iter()
            .enumerate()
            .map(|(id, name)| (name.as_str(), id as u32))
            .collect();
        let mut labels = Vec::with_capacity(table.rows());
        for (row, label) in table.labels.iter().enumerate() {
            let id = index.get(label.as_str()).ok_or_else(|| {
                LearnError::invalid(
                    table.path.display().to_string(),
                    format!(
                        "line {}: label {label:?} is not one of the model's classes {classes:?}",
                        table.lines.get(row).copied().unwrap_or_default()
                    ),
                )
            })?;
            labels.push(*id);
        }
        let features = table
            .features
            .as_slice()
            .iter()
            .map(|&value| value as f32)
            .collect();
        Self::new(features, table.features.cols(), labels, classes)
    }

    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Features per row.
    #[must_use]
    pub fn feature_count(&self) -> usize {
        self.feature_count
    }

    /// All features, row-major.
    #[must_use]
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The class id of each row.
    #[must_use]
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Class names; class id `c` is `classes()[c]`.
    #[must_use]
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The rows at `indices`, in that order (indices out of range are an error).
    ///
    /// # Errors
    ///
    /// An index past the last row.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        let mut features = Vec::with_capacity(indices.len() * self.feature_count);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            let label = self.labels.get(index).ok_or_else(|| {
                LearnError::invalid(
                    "dataset",
                    format!("row {index} selected from {} rows", self.rows()),
                )
            })?;
            labels.push(*label);
            let start = index * self.feature_count;
            features.extend_from_slice(&self.features[start..start + self.feature_count]);
        }
        Ok(Self {
            features,
            feature_count: self.feature_count,
            labels,
            classes: self.classes.clone(),
        })
    }

    /// A seeded stratified split: `(train, test)` with about `test_fraction` of each class in test.
    ///
    /// # Errors
    ///
    /// A fraction outside (0, 1).
    pub fn stratified_split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(LearnError::invalid(
                "split",
                format!("test fraction {test_fraction} must be strictly between 0 and 1"),
            ));
        }
        let (train, test) =
            tributary_valuation::split::stratified_split(&self.labels, test_fraction, seed);
        Ok((self.select(&train)?, self.select(&test)?))
    }

    /// Standardises every feature in place with `standardizer`.
    ///
    /// # Errors
    ///
    /// A standardizer for a different number of features.
    pub fn standardize(&mut self, standardizer: &Standardizer) -> Result<()> {
        if standardizer.mean.len() != self.feature_count {
            return Err(LearnError::invalid(
                "standardizer",
                format!(
                    "has statistics for {} features; the data has {}",
                    standardizer.mean.len(),
                    self.feature_count
                ),
            ));
        }
        for row in self.features.chunks_exact_mut(self.feature_count) {
            for ((value, mean), scale) in row
                .iter_mut()
                .zip(&standardizer.mean)
                .zip(&standardizer.scale)
            {
                *value = (*value - mean) / scale;
            }
        }
        Ok(())
    }

    /// Per-feature sums and sums of squares, the moments a [`Standardizer`] is made from. Several parties
    /// can add theirs (e.g. with secure aggregation) to standardise over all their data without sharing it.
    #[must_use]
    pub fn moments(&self) -> Moments {
        let mut sum = vec![0.0_f64; self.feature_count];
        let mut sum_of_squares = vec![0.0_f64; self.feature_count];
        for row in self.features.chunks_exact(self.feature_count) {
            for (index, &value) in row.iter().enumerate() {
                let value = f64::from(value);
                sum[index] += value;
                sum_of_squares[index] += value * value;
            }
        }
        Moments {
            count: self.rows() as u64,
            sum,
            sum_of_squares,
        }
    }
}

/// Per-feature first and second moments of some rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Rows counted.
    pub count: u64,
    /// Sum of each feature.
    pub sum: Vec<f64>,
    /// Sum of each feature's square.
    pub sum_of_squares: Vec<f64>,
}

/// Per-feature mean and scale: a feature `x` becomes `(x - mean) / scale`.
///
/// A feature with (near) zero variance keeps scale 1, so constant columns (the corner pixels of digits)
/// stay at zero rather than dividing by zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Standard deviation of each feature (1 where it is ~0).
    pub scale: Vec<f32>,
}

impl Standardizer {
    /// The standardizer of some rows' moments.
    ///
    /// # Errors
    ///
    /// No rows, or moment vectors of different lengths.
    pub fn from_moments(moments: &Moments) -> Result<Self> {
        if moments.count == 0 {
            return Err(LearnError::invalid(
                "standardizer",
                "no rows to compute statistics from",
            ));
        }
        if moments.sum.len() != moments.sum_of_squares.len() {
            return Err(LearnError::invalid(
                "standardizer",
                "sums and sums of squares have different lengths",
            ));
        }
        let count = moments.count as f64;
        let mut mean = Vec::with_capacity(moments.sum.len());
        let mut scale = Vec::with_capacity(moments.sum.len());
        for (&sum, &sum_of_squares) in moments.sum.iter().zip(&moments.sum_of_squares) {
            let feature_mean = sum / count;
            let variance = (sum_of_squares / count - feature_mean * feature_mean).max(0.0);
            let deviation = variance.sqrt();
            mean.push(feature_mean as f32);
            scale.push(if deviation > 1e-8 {
                deviation as f32
            } else {
                1.0
            });
        }
        Ok(Self { mean, scale })
    }

    /// The standardizer fitted to `dataset`.
    ///
    /// # Errors
    ///
    /// An empty dataset.
    pub fn fit(dataset: &Dataset) -> Result<Self> {
        Self::from_moments(&dataset.moments())
    }
}

/// Splits row indices `0..rows` into `clients` parts of near-equal size after a seeded shuffle.
///
/// # Errors
///
/// Zero clients, more clients than [`limits::CLIENTS_MAX`], or fewer rows than clients.
pub fn partition_iid(rows: usize, clients: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    check_clients(clients, rows)?;
    let mut indices: Vec<usize> = (0..rows).collect();
    indices.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
    let mut parts = vec![Vec::new(); clients];
    for (position, index) in indices.into_iter().enumerate() {
        parts[position % clients].push(index);
    }
    Ok(parts)
}

/// A seeded Dirichlet(α) label-skew partition (the standard non-IID benchmark split): for each class, the
/// proportions going to each client are drawn from Dirichlet(α, …, α), so small α gives each client few
/// classes. Every client gets at least one row (rows are moved from the largest part if needed).
///
/// # Errors
///
/// α not positive and finite, zero or too many clients, or fewer rows than clients.
pub fn partition_dirichlet(
    labels: &[u32],
    clients: usize,
    alpha: f64,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    check_clients(clients, labels.len())?;
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(LearnError::invalid(
            "partition",
            format!("Dirichlet α = {alpha}; it must be a positive number"),
        ));
    }
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (index, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let gamma = rand_distr::Gamma::new(alpha, 1.0)
        .map_err(|error| LearnError::invalid("partition", error.to_string()))?;
    let mut parts = vec![Vec::new(); clients];
    for (_, mut indices) in by_class {
        indices.shuffle(&mut rng);
        // Dirichlet as normalised Gamma(α, 1) draws.
        let draws: Vec<f64> = (0..clients)
            .map(|_| rand_distr::Distribution::sample(&gamma, &mut rng))
            .collect();
        let total: f64 = draws.iter().sum();
        let mut start = 0_usize;
        let mut cumulative = 0.0;
        for (client, draw) in draws.iter().enumerate() {
            cumulative += if total > 0.0 {
                draw / total
            } else {
                1.0 / clients as f64
            };
            let end = if client + 1 == clients {
                indices.len()
            } else {
                ((cumulative * indices.len() as f64).round() as usize).clamp(start, indices.len())
            };
            parts[client].extend_from_slice(&indices[start..end]);
            start = end;
        }
    }
    // No empty client: move one row at a time from the largest part.
    while let Some(empty) = parts.iter().position(Vec::is_empty) {
        let largest = (0..clients)
            .max_by_key(|&client| parts[client].len())
            .unwrap_or(0);
        match parts[largest].pop() {
            Some(row) => parts[empty].push(row),
            None => break,
        }
    }
    for part in &mut parts {
        part.sort_unstable();
    }
    Ok(parts)
}

fn check_clients(clients: usize, rows: usize) -> Result<()> {
    if clients == 0 || clients > limits::CLIENTS_MAX {
        return Err(LearnError::invalid(
            "partition",
            format!(
                "{clients} clients; between 1 and {} are supported",
                limits::CLIENTS_MAX
            ),
        ));
    }
    if rows < clients {
        return Err(LearnError::invalid(
            "partition",
            format!("{rows} rows cannot give each of {clients} clients one"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(rows: usize) -> Dataset {
        let features = (0..rows * 2).map(|value| value as f32).collect();
        let labels = (0..rows).map(|row| (row % 3) as u32).collect();
        Dataset::new(
            features,
            2,
            labels,
            vec!["a".into(), "b".into(), "c".into()],
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        let classes = vec!["a".to_string(), "b".to_string()];
        assert!(Dataset::new(vec![1.0; 5], 2, vec![0, 1], classes.clone()).is_err());
        assert!(Dataset::new(vec![f32::NAN, 1.0], 2, vec![0], classes.clone()).is_err());
        assert!(Dataset::new(vec![1.0, 1.0], 2, vec![2], classes.clone()).is_err());
        assert!(Dataset::new(vec![1.0, 1.0], 2, vec![0], vec!["a".into()]).is_err());
        assert!(toy(3).select(&[3]).is_err());
    }

    #[test]
    fn standardizer_centres_and_scales() {
        let mut data = toy(30);
        let standardizer = Standardizer::fit(&data).unwrap();
        data.standardize(&standardizer).unwrap();
        let moments = data.moments();
        for (sum, squares) in moments.sum.iter().zip(&moments.sum_of_squares) {
            assert!(sum.abs() < 1e-3, "mean {sum}");
            assert!((squares / 30.0 - 1.0).abs() < 1e-3, "variance {squares}");
        }
    }

    #[test]
    fn constant_feature_keeps_unit_scale() {
        let data = Dataset::new(
            vec![5.0, 1.0, 5.0, 2.0],
            2,
            vec![0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let standardizer = Standardizer::fit(&data).unwrap();
        assert_eq!(standardizer.scale[0], 1.0);
    }

    #[test]
    fn moments_add_up_across_parties() {
        let data = toy(20);
        let left = data.select(&(0..7).collect::<Vec<_>>()).unwrap().moments();
        let right = data.select(&(7..20).collect::<Vec<_>>()).unwrap().moments();
        let whole = data.moments();
        assert_eq!(left.count + right.count, whole.count);
        for index in 0..2 {
            assert!((left.sum[index] + right.sum[index] - whole.sum[index]).abs() < 1e-9);
        }
    }

    #[test]
    fn partitions_cover_every_row_once() {
        let labels: Vec<u32> = (0..500).map(|row| (row % 10) as u32).collect();
        for parts in [
            partition_iid(500, 10, 7).unwrap(),
            partition_dirichlet(&labels, 10, 0.5, 7).unwrap(),
            partition_dirichlet(&labels, 10, 0.01, 7).unwrap(),
        ] {
            assert_eq!(parts.len(), 10);
            assert!(parts.iter().all(|part| !part.is_empty()));
            let mut all: Vec<usize> = parts.concat();
            all.sort_unstable();
            assert_eq!(all, (0..500).collect::<Vec<_>>());
        }
        assert_eq!(
            partition_dirichlet(&labels, 10, 0.5, 7).unwrap(),
            partition_dirichlet(&labels, 10, 0.5, 7).unwrap()
        );
        assert!(partition_dirichlet(&labels, 10, 0.0, 7).is_err());
        assert!(partition_iid(5, 10, 7).is_err());
    }

    #[test]
    fn small_alpha_skews_labels() {
        let labels: Vec<u32> = (0..1000).map(|row| (row % 10) as u32).collect();
        let parts = partition_dirichlet(&labels, 10, 0.1, 3).unwrap();
        // With α = 0.1 most clients hold few classes; IID clients hold all ten.
        let classes_held: Vec<usize> = parts
            .iter()
            .map(|part| {
                part.iter()
                    .map(|&row| labels[row])
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            })
            .collect();
        let mean = classes_held.iter().sum::<usize>() as f64 / 10.0;
        assert!(mean < 6.0, "classes per client {classes_held:?}");
    }

    #[test]
    fn reads_the_shipped_digits() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
        let data = Dataset::read(&path, "label", None).unwrap();
        assert_eq!(data.rows(), 1797);
        assert_eq!(data.feature_count(), 64);
        assert_eq!(data.classes().len(), 10);
        let (train, test) = data.stratified_split(0.2, 42).unwrap();
        assert_eq!(train.rows() + test.rows(), 1797);
        assert!((test.rows() as f64 - 359.4).abs() < 10.0);
    }
}
