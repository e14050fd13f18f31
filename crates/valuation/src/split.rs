//! Seeded dataset splitting and label noise, for experiments, benchmarks and tests.

use std::collections::BTreeMap;

use crate::rng::Stream;

/// A seeded stratified split: about `test_fraction` of each class goes to the test side.
///
/// The test size is `ceil(test_fraction · n)` (as scikit-learn does), shared among classes by largest
/// remainder (ties to the lowest class id); within a class the rows are chosen by a seeded shuffle. Both
/// returned index lists are sorted.
#[must_use]
pub fn stratified_split(labels: &[u32], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = test_fraction.clamp(0.0, 1.0);
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (index, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    let test_total = ((labels.len() as f64) * fraction).ceil() as usize;
    // Largest-remainder apportionment of the test rows among classes.
    let mut quotas: Vec<(u32, usize, f64)> = by_class
        .iter()
        .map(|(&class, rows)| {
            let exact = rows.len() as f64 * test_total as f64 / labels.len().max(1) as f64;
            (class, exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    let assigned: usize = quotas.iter().map(|quota| quota.1).sum();
    let mut order: Vec<usize> = (0..quotas.len()).collect();
    order.sort_by(|&a, &b| {
        quotas[b]
            .2
            .total_cmp(&quotas[a].2)
            .then(quotas[a].0.cmp(&quotas[b].0))
    });
    for &index in order.iter().take(test_total.saturating_sub(assigned)) {
        quotas[index].1 += 1;
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (class, take, _) in quotas {
        let mut rows = by_class.remove(&class).unwrap_or_default();
        Stream::new("stratified-split", seed, u64::from(class)).shuffle(&mut rows);
        let take = take.min(rows.len());
        test.extend_from_slice(&rows[..take]);
        train.extend_from_slice(&rows[take..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Flips the labels of `round(fraction · n)` seeded-random rows to a different, uniformly chosen class.
/// Returns the sorted indices of the flipped rows.
pub fn flip_labels(labels: &mut [u32], num_classes: u32, fraction: f64, seed: u64) -> Vec<usize> {
    if num_classes < 2 {
        return Vec::new();
    }
    let count = ((labels.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    let mut stream = Stream::new("flip-labels", seed, 0);
    let mut chosen = stream.permutation(labels.len());
    chosen.truncate(count);
    chosen.sort_unstable();
    for &index in &chosen {
        let shift = 1 + stream.below(u64::from(num_classes) - 1) as u32;
        labels[index] = (labels[index] + shift) % num_classes;
    }
    chosen
}

/// Fraction of the `flipped` rows found among the lowest-valued `flipped.len()` rows (ties broken
/// by index): how well a valuation finds the labels [`flip_labels`] corrupted. 0 when nothing was
/// flipped.
pub fn detection_rate(values: &[f64], flipped: &[usize]) -> f64 {
    if flipped.is_empty() {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let lowest: std::collections::BTreeSet<usize> = order[..flipped.len().min(order.len())]
        .iter()
        .copied()
        .collect();
    flipped
        .iter()
        .filter(|index| lowest.contains(index))
        .count() as f64
        / flipped.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_and_stratification() {
        let labels: Vec<u32> = (0..1797).map(|i| (i % 10) as u32).collect();
        let (train, test) = stratified_split(&labels, 0.2, 3);
        assert_eq!(test.len(), 360);
        assert_eq!(train.len(), 1437);
        let (train_again, _) = stratified_split(&labels, 0.2, 3);
        assert_eq!(train, train_again);
        for class in 0..10 {
            let count = test.iter().filter(|&&i| labels[i] == class).count();
            assert!((35..=37).contains(&count));
        }
    }

    #[test]
    fn flips_change_labels() {
        let mut labels = vec![0_u32; 100];
        let flipped = flip_labels(&mut labels, 3, 0.1, 9);
        assert_eq!(flipped.len(), 10);
        assert!(flipped.iter().all(|&i| labels[i] != 0));
        assert_eq!(labels.iter().filter(|&&l| l != 0).count(), 10);
    }
}
