//! Blocked squared Euclidean distances via one matrix product per block.
//!
//! For a block of test points `Y` (b × d) and the training set `X` (N × d), the squared distances are
//! `‖x‖² + ‖y‖² − 2·Y·Xᵀ`: one GEMM (`ndarray`'s pure-Rust `matrixmultiply` backend, single-threaded per
//! block, so a block's result does not depend on the thread count) plus two rank-one corrections. Negative
//! results from cancellation are clamped to zero. The block size depends only on N (so that the distances
//! held per block stay under [`limits::DISTANCE_BLOCK_BYTES_MAX`]), never on the number of threads.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, linalg::general_mat_mul};

use crate::data::Matrix;
use crate::error::{Result, ValuationError};
use crate::limits;

/// Squared Euclidean norm of every row.
#[must_use]
pub fn squared_norms(matrix: &Matrix) -> Vec<f64> {
    (0..matrix.rows())
        .map(|row| matrix.row(row).iter().map(|value| value * value).sum())
        .collect()
}

/// Number of test points per block for a training set of `train_rows` rows.
#[must_use]
pub fn block_rows(train_rows: usize) -> usize {
    let fit = limits::DISTANCE_BLOCK_BYTES_MAX / (8 * train_rows.max(1));
    fit.clamp(1, limits::DISTANCE_BLOCK_ROWS_MAX)
}

/// The test-point ranges of each block, in order.
#[must_use]
pub fn blocks(test_rows: usize, train_rows: usize) -> Vec<Range<usize>> {
    let size = block_rows(train_rows);
    (0..test_rows.div_ceil(size))
        .map(|block| block * size..((block + 1) * size).min(test_rows))
        .collect()
}

pub(crate) fn view(matrix: &Matrix) -> Result<ArrayView2<'_, f64>> {
    ArrayView2::from_shape((matrix.rows(), matrix.cols()), matrix.as_slice())
        .map_err(|error| ValuationError::invalid("matrix", error.to_string()))
}

/// Squared distances from the test rows in `range` to every training row: a `range.len() × N` array.
///
/// # Errors
///
/// Only if the matrices are malformed (which [`Matrix`] prevents).
pub fn block_squared_distances(
    train: &Matrix,
    train_norms: &[f64],
    test: &Matrix,
    test_norms: &[f64],
    range: Range<usize>,
) -> Result<Array2<f64>> {
    let train_view = view(train)?;
    let cols = test.cols();
    let block_slice = &test.as_slice()[range.start * cols..range.end * cols];
    let block = ArrayView2::from_shape((range.len(), cols), block_slice)
        .map_err(|error| ValuationError::invalid("matrix", error.to_string()))?;
    let mut out = Array2::<f64>::zeros((range.len(), train.rows()));
    general_mat_mul(-2.0, &block, &train_view.t(), 0.0, &mut out);
    for (local, mut row) in out.rows_mut().into_iter().enumerate() {
        let test_norm = test_norms[range.start + local];
        for (value, &train_norm) in row.iter_mut().zip(train_norms) {
            let squared = *value + train_norm + test_norm;
            *value = if squared > 0.0 { squared } else { 0.0 };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_distances_match_direct_ones() {
        let train = Matrix::new(3, 2, vec![0.0, 0.0, 1.0, 2.0, -3.0, 0.5]).unwrap();
        let test = Matrix::new(2, 2, vec![1.0, 1.0, 0.0, -1.0]).unwrap();
        let out = block_squared_distances(
            &train,
            &squared_norms(&train),
            &test,
            &squared_norms(&test),
            0..2,
        )
        .unwrap();
        for t in 0..2 {
            for r in 0..3 {
                let direct: f64 = test
                    .row(t)
                    .iter()
                    .zip(train.row(r))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                assert!((out[[t, r]] - direct).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn blocks_cover_the_test_set_in_order() {
        let ranges = blocks(130, 10);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(130));
        assert!(ranges.windows(2).all(|pair| pair[0].end == pair[1].start));
        assert_eq!(block_rows(1_000_000), 8);
    }
}
