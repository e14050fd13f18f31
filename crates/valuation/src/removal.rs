//! Point removal: how fast a model degrades when the highest-valued training points are removed,
//! against removing the same number of random points (Ghorbani & Zou 2019, Fig. 2).
//!
//! Values are computed against one test set; the curve is measured on a *separate* held-out set
//! with the hard-label K-NN classifier retrained on what is left, so a good valuation shows a
//! steeper fall than random removal without the held-out points having shaped the values.

use crate::error::{Result, ValuationError};
use crate::knn::KnnInput;
use crate::rng::Stream;
use crate::utility::{KnnClassifierUtility, Utility};

/// Held-out accuracy after removing a fraction of the training set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemovalPoint {
    /// Fraction of training points removed.
    pub fraction: f64,
    /// Accuracy after removing the highest-valued points (ties by training index).
    pub high_value_removed: f64,
    /// Mean accuracy after removing random points, over the repeats.
    pub random_removed: f64,
}

/// The removal curve at each of `fractions` (each in `[0, 1)`). `heldout` is the K-NN input whose
/// `test` side is the held-out set; `values` has one entry per training point. Random removal is
/// averaged over `random_repeats` seeded draws.
///
/// # Errors
///
/// Invalid input for the classifier, a value count that differs from the training set, a fraction
/// outside `[0, 1)`, or no repeats.
pub fn removal_curve(
    heldout: &KnnInput<'_>,
    values: &[f64],
    fractions: &[f64],
    k: usize,
    random_repeats: usize,
    seed: u64,
) -> Result<Vec<RemovalPoint>> {
    let n = heldout.train.rows();
    if values.len() != n {
        return Err(ValuationError::invalid(
            "values",
            format!("{} values for {n} training points", values.len()),
        ));
    }
    if random_repeats == 0 {
        return Err(ValuationError::invalid(
            "random_repeats",
            "random removal needs at least one repeat",
        ));
    }
    let utility = KnnClassifierUtility::new(heldout, k)?;
    let mut by_value: Vec<usize> = (0..n).collect();
    by_value.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let mut stream = Stream::new("point-removal", seed, 0);
    let random_orders: Vec<Vec<usize>> =
        (0..random_repeats).map(|_| stream.permutation(n)).collect();
    fractions
        .iter()
        .map(|&fraction| {
            if !(0.0..1.0).contains(&fraction) {
                return Err(ValuationError::invalid(
                    "fractions",
                    format!("removal fraction {fraction} is not in [0, 1)"),
                ));
            }
            let removed = ((n as f64) * fraction).round() as usize;
            // Keep at least K points so the classifier is defined.
            let removed = removed.min(n.saturating_sub(k));
            let high_value_removed = utility.score(&by_value[removed..]);
            let random_removed = random_orders
                .iter()
                .map(|order| utility.score(&order[removed..]))
                .sum::<f64>()
                / random_repeats as f64;
            Ok(RemovalPoint {
                fraction,
                high_value_removed,
                random_removed,
            })
        })
        .collect()
}
