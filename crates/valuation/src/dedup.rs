//! Exact and near-duplicate detection, and moving a duplicate's value to the row it copies.
//!
//! Rows are considered in training order (files in the order given, rows in file order), so the *first*
//! copy is the original and every later copy is flagged as a duplicate of it.
//!
//! * **Exact**: BLAKE3 of the normalised row (the label id, then every feature as the bits of its `f64`
//!   value, with −0.0 read as 0.0 — so "1", "1.0" and "1e0" are equal).
//! * **Near** (opt-in): cosine similarity of the feature vectors at or above a threshold, with the same
//!   label. Every later row is compared with every earlier original (a blocked GEMM, so quadratic: limited to
//!   [`limits::NEAR_DUPLICATE_ROWS_MAX`] rows). All-zero rows have no direction and are only caught as exact
//!   duplicates.
//!
//! Duplicates require equal labels: the same features with a different label are not a copy but a conflict,
//! which the valuation itself prices (one of the two will have a low value).

use std::collections::HashMap;

use ndarray::{Array2, ArrayView2, linalg::general_mat_mul};
use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Result, ValuationError};
use crate::limits;

/// How a row was found to be a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicateKind {
    /// Identical normalised row.
    Exact,
    /// Cosine similarity at or above the threshold.
    Near,
}

/// A row flagged as a copy of an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    /// The earlier row (training index) it copies; never itself a duplicate.
    pub original: usize,
    /// How it was detected.
    pub kind: DuplicateKind,
}

fn row_hash(label: u32, features: &[f64]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&label.to_le_bytes());
    for &value in features {
        let value = if value == 0.0 { 0.0_f64 } else { value };
        hasher.update(&value.to_bits().to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Flags every row that copies an earlier one; `None` for originals.
///
/// `near_cosine`: the cosine-similarity threshold for near duplicates (e.g. 0.999), or `None` for exact
/// duplicates only.
///
/// # Errors
///
/// A threshold outside (0, 1], or near-duplicate detection on more than
/// [`limits::NEAR_DUPLICATE_ROWS_MAX`] rows.
pub fn find_duplicates(
    features: &Matrix,
    labels: &[u32],
    near_cosine: Option<f64>,
) -> Result<Vec<Option<Duplicate>>> {
    let n = features.rows();
    if labels.len() != n {
        return Err(ValuationError::invalid(
            "labels",
            "one label per row is required",
        ));
    }
    let mut flags: Vec<Option<Duplicate>> = vec![None; n];
    let mut first: HashMap<[u8; 32], usize> = HashMap::with_capacity(n);
    for row in 0..n {
        let hash = row_hash(labels[row], features.row(row));
        match first.get(&hash) {
            Some(&original) => {
                flags[row] = Some(Duplicate {
                    original,
                    kind: DuplicateKind::Exact,
                })
            }
            None => {
                first.insert(hash, row);
            }
        }
    }
    let Some(threshold) = near_cosine else {
        return Ok(flags);
    };
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(ValuationError::invalid(
            "near_duplicate_cosine",
            format!("{threshold} is not in (0, 1]"),
        ));
    }
    if n > limits::NEAR_DUPLICATE_ROWS_MAX {
        return Err(ValuationError::LimitExceeded {
            context: "near-duplicate detection".into(),
            what: "training rows",
            value: n,
            max: limits::NEAR_DUPLICATE_ROWS_MAX,
        });
    }
    // Unit vectors (zero rows stay zero and never match).
    let cols = features.cols();
    let mut unit = Vec::with_capacity(n * cols);
    for row in 0..n {
        let values = features.row(row);
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        unit.extend(values.iter().map(|v| v * scale));
    }
    let all = ArrayView2::from_shape((n, cols), &unit[..])
        .map_err(|error| ValuationError::invalid("matrix", error.to_string()))?;
    const BLOCK: usize = 256;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        // Similarities of this block's rows to every row before the block's end.
        let block = all.slice(ndarray::s![start..end, ..]);
        let earlier = all.slice(ndarray::s![0..end, ..]);
        let mut similarity = Array2::<f64>::zeros((end - start, end));
        general_mat_mul(1.0, &block, &earlier.t(), 0.0, &mut similarity);
        for row in start..end {
            if flags[row].is_some() {
                continue;
            }
            let local = similarity.row(row - start);
            // The earliest original with the same label that is similar enough.
            let found = (0..row).find(|&candidate| {
                flags[candidate].is_none()
                    && labels[candidate] == labels[row]
                    && local[candidate] >= threshold
            });
            if let Some(original) = found {
                flags[row] = Some(Duplicate {
                    original,
                    kind: DuplicateKind::Near,
                });
            }
        }
    }
    Ok(flags)
}

/// Moves every duplicate's value to its original (the duplicate keeps 0). The total is unchanged.
#[must_use]
pub fn reassign_values(values: &[f64], flags: &[Option<Duplicate>]) -> Vec<f64> {
    let mut out = values.to_vec();
    for (row, flag) in flags.iter().enumerate() {
        if let Some(duplicate) = flag {
            out[duplicate.original] += values[row];
            out[row] = 0.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_near_duplicates() {
        let features = Matrix::new(
            5,
            2,
            vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 2.0, 4.0001, -0.0, 5.0], // rows 2 = 0 exact; 3 ≈ 0 near
        )
        .unwrap();
        let labels = [0, 0, 0, 0, 0];
        let exact = find_duplicates(&features, &labels, None).unwrap();
        assert_eq!(
            exact[2],
            Some(Duplicate {
                original: 0,
                kind: DuplicateKind::Exact
            })
        );
        assert_eq!(exact[3], None);
        let near = find_duplicates(&features, &labels, Some(0.9999)).unwrap();
        assert_eq!(
            near[3],
            Some(Duplicate {
                original: 0,
                kind: DuplicateKind::Near
            })
        );
        assert_eq!(near[1], None);
        assert_eq!(near[4], None);
    }

    #[test]
    fn different_labels_are_not_duplicates() {
        let features = Matrix::new(2, 2, vec![1.0, 2.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            find_duplicates(&features, &[0, 1], Some(0.99)).unwrap(),
            vec![None, None]
        );
    }

    #[test]
    fn negative_zero_equals_zero() {
        let features = Matrix::new(2, 1, vec![0.0, -0.0]).unwrap();
        assert!(find_duplicates(&features, &[0, 0], None).unwrap()[1].is_some());
    }

    #[test]
    fn reassignment_keeps_the_total() {
        let flags = vec![
            None,
            None,
            Some(Duplicate {
                original: 0,
                kind: DuplicateKind::Exact,
            }),
        ];
        let moved = reassign_values(&[0.1, 0.2, 0.3], &flags);
        assert_eq!(moved, vec![0.4, 0.2, 0.0]);
    }
}
