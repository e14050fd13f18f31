//! The closed forms against brute-force Shapley values over all orderings, on small random sets.

use tributary_valuation::knn::{
    KnnInput, KnnVariant, knn_shapley, knn_utility_full, truncation_depth,
};
use tributary_valuation::rng::Stream;
use tributary_valuation::{Matrix, NoProgress};

struct Case {
    train: Matrix,
    train_labels: Vec<u32>,
    test: Matrix,
    test_labels: Vec<u32>,
    classes: usize,
}

fn random_case(seed: u64, n: usize, tests: usize, dims: usize, classes: usize) -> Case {
    let mut stream = Stream::new("test-case", seed, 0);
    let train = Matrix::new(n, dims, (0..n * dims).map(|_| stream.unit()).collect()).unwrap();
    let test = Matrix::new(
        tests,
        dims,
        (0..tests * dims).map(|_| stream.unit()).collect(),
    )
    .unwrap();
    let train_labels = (0..n)
        .map(|_| stream.below(classes as u64) as u32)
        .collect();
    let test_labels = (0..tests)
        .map(|_| stream.below(classes as u64) as u32)
        .collect();
    Case {
        train,
        train_labels,
        test,
        test_labels,
        classes,
    }
}

impl Case {
    fn input(&self) -> KnnInput<'_> {
        KnnInput {
            train: &self.train,
            train_labels: &self.train_labels,
            test: &self.test,
            test_labels: &self.test_labels,
            num_classes: self.classes,
        }
    }

    /// Training indices ordered nearest first from test point `t` (ties by index), with squared distances.
    fn ranking(&self, t: usize) -> Vec<(f64, usize)> {
        let mut order: Vec<(f64, usize)> = (0..self.train.rows())
            .map(|i| {
                let d: f64 = self
                    .test
                    .row(t)
                    .iter()
                    .zip(self.train.row(i))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (d, i)
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        order
    }
}

/// Shapley values by enumerating every ordering of the training points.
fn brute_force(case: &Case, utility: &dyn Fn(&[bool], usize) -> f64) -> Vec<f64> {
    let n = case.train.rows();
    let mut values = vec![0.0; n];
    let mut permutation: Vec<usize> = (0..n).collect();
    let mut count = 0_u64;
    permute(&mut permutation, 0, &mut |order| {
        count += 1;
        for t in 0..case.test.rows() {
            let mut member = vec![false; n];
            let mut previous = utility(&member, t);
            for &i in order {
                member[i] = true;
                let now = utility(&member, t);
                values[i] += now - previous;
                previous = now;
            }
        }
    });
    let scale = (count * case.test.rows() as u64) as f64;
    values.iter().map(|v| v / scale).collect()
}

fn permute(items: &mut Vec<usize>, start: usize, visit: &mut dyn FnMut(&[usize])) {
    if start == items.len() {
        visit(items);
        return;
    }
    for i in start..items.len() {
        items.swap(start, i);
        permute(items, start + 1, visit);
        items.swap(start, i);
    }
}

fn assert_close(a: &[f64], b: &[f64], tolerance: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tolerance, "entry {i}: {x} vs {y}");
    }
}

#[test]
fn exact_knn_shapley_equals_brute_force() {
    for seed in 0..12 {
        let n = 3 + (seed as usize % 6); // 3..=8 points
        let k = 1 + (seed as usize % 4).min(n - 1);
        let case = random_case(seed, n, 3, 2, 3);
        let rankings: Vec<_> = (0..case.test.rows()).map(|t| case.ranking(t)).collect();
        // U(S) = (1/K) Σ_{k ≤ min(K,|S|)} 1[label match]; U(∅) = 0.
        let utility = |member: &[bool], t: usize| {
            let hits = rankings[t]
                .iter()
                .filter(|(_, i)| member[*i])
                .take(k)
                .filter(|(_, i)| case.train_labels[*i] == case.test_labels[t])
                .count();
            hits as f64 / k as f64
        };
        let expected = brute_force(&case, &utility);
        let actual = knn_shapley(&case.input(), k, KnnVariant::Exact, &NoProgress).unwrap();
        assert_close(&actual, &expected, 1e-12);
        // Efficiency: the values sum to U(D).
        let full = knn_utility_full(&case.input(), k).unwrap();
        assert!(
            (actual.iter().sum::<f64>() - full).abs() < 1e-12,
            "seed {seed}"
        );
    }
}

#[test]
fn the_divide_by_min_k_utility_does_not_match_the_recursion() {
    // Documents which utility the Jia et al. recursion is exact for: dividing by min(K, |S|) instead of K
    // gives different values as soon as K > 1.
    // (Three test points: with balanced binary test labels the difference game is symmetric and the two
    // utilities happen to give equal values.)
    let case = random_case(99, 6, 3, 2, 3);
    assert!(
        case.train_labels
            .iter()
            .any(|l| case.test_labels.contains(l))
    );
    let k = 3;
    let rankings: Vec<_> = (0..case.test.rows()).map(|t| case.ranking(t)).collect();
    let utility = |member: &[bool], t: usize| {
        let top: Vec<_> = rankings[t]
            .iter()
            .filter(|(_, i)| member[*i])
            .take(k)
            .collect();
        if top.is_empty() {
            return 0.0;
        }
        top.iter()
            .filter(|(_, i)| case.train_labels[*i] == case.test_labels[t])
            .count() as f64
            / top.len() as f64
    };
    let other = brute_force(&case, &utility);
    let actual = knn_shapley(&case.input(), k, KnnVariant::Exact, &NoProgress).unwrap();
    assert!(actual.iter().zip(&other).any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn soft_label_knn_shapley_equals_brute_force() {
    for seed in 0..12 {
        let n = 2 + (seed as usize % 7); // 2..=8 points
        let k = 1 + (seed as usize % 4).min(n - 1);
        let case = random_case(100 + seed, n, 3, 2, 3);
        let rankings: Vec<_> = (0..case.test.rows()).map(|t| case.ranking(t)).collect();
        let classes = case.classes as f64;
        // U(S) = fraction of the min(K,|S|) nearest with the right label; U(∅) = 1/C.
        let utility = |member: &[bool], t: usize| {
            let top: Vec<_> = rankings[t]
                .iter()
                .filter(|(_, i)| member[*i])
                .take(k)
                .collect();
            if top.is_empty() {
                return 1.0 / classes;
            }
            top.iter()
                .filter(|(_, i)| case.train_labels[*i] == case.test_labels[t])
                .count() as f64
                / top.len() as f64
        };
        let expected = brute_force(&case, &utility);
        let actual = knn_shapley(&case.input(), k, KnnVariant::SoftLabel, &NoProgress).unwrap();
        assert_close(&actual, &expected, 1e-12);
    }
}

#[test]
fn threshold_knn_shapley_equals_brute_force() {
    for seed in 0..12 {
        let n = 2 + (seed as usize % 7);
        let case = random_case(200 + seed, n, 3, 2, 3);
        let tau = 0.3 + 0.1 * (seed % 5) as f64;
        let classes = case.classes as f64;
        let rankings: Vec<_> = (0..case.test.rows()).map(|t| case.ranking(t)).collect();
        // U(S) = fraction of S within distance tau with the right label; 1/C when none is within tau.
        let utility = |member: &[bool], t: usize| {
            let inside: Vec<_> = rankings[t]
                .iter()
                .filter(|(d, i)| member[*i] && *d < tau * tau)
                .collect();
            if inside.is_empty() {
                return 1.0 / classes;
            }
            inside
                .iter()
                .filter(|(_, i)| case.train_labels[*i] == case.test_labels[t])
                .count() as f64
                / inside.len() as f64
        };
        let expected = brute_force(&case, &utility);
        let actual =
            knn_shapley(&case.input(), 1, KnnVariant::Threshold { tau }, &NoProgress).unwrap();
        assert_close(&actual, &expected, 1e-12);
    }
}

#[test]
fn truncated_values_are_within_epsilon_of_exact() {
    let case = random_case(7, 400, 20, 3, 4);
    let k = 5;
    let exact = knn_shapley(&case.input(), k, KnnVariant::Exact, &NoProgress).unwrap();
    for epsilon in [0.1, 0.02, 0.005] {
        let truncated = knn_shapley(
            &case.input(),
            k,
            KnnVariant::Truncated { epsilon },
            &NoProgress,
        )
        .unwrap();
        let bound = 1.0 / (truncation_depth(k, epsilon) + 1) as f64;
        assert!(bound <= epsilon);
        assert_close(&truncated, &exact, bound + 1e-12);
    }
    // With epsilon so small that everything is kept, truncated equals exact bit for bit.
    let all = knn_shapley(
        &case.input(),
        k,
        KnnVariant::Truncated { epsilon: 1e-9 },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(all, exact);
}

#[test]
fn values_sum_to_the_full_utility_on_a_larger_set() {
    let case = random_case(11, 3000, 150, 8, 5);
    for k in [1, 5, 17] {
        let values = knn_shapley(&case.input(), k, KnnVariant::Exact, &NoProgress).unwrap();
        let full = knn_utility_full(&case.input(), k).unwrap();
        assert!((values.iter().sum::<f64>() - full).abs() < 1e-9);
    }
}

#[test]
fn bit_identical_across_thread_counts() {
    // 5000 training rows and 300 test rows give several blocks, so threads really interleave.
    let case = random_case(5, 5000, 300, 6, 4);
    for variant in [
        KnnVariant::Exact,
        KnnVariant::SoftLabel,
        KnnVariant::Truncated { epsilon: 0.01 },
        KnnVariant::Threshold { tau: 0.5 },
    ] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| knn_shapley(&case.input(), 5, variant, &NoProgress).unwrap())
        };
        let one = run(1);
        let two = run(2);
        let four = run(4);
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two), "{variant:?}");
        assert_eq!(bits(&one), bits(&four), "{variant:?}");
    }
}

#[test]
fn ties_are_broken_by_training_index() {
    // Two identical training points: the earlier index is nearer, so with K = 1 only it gets the value
    // from ranking first... and the values differ only through rank.
    let train = Matrix::new(3, 1, vec![1.0, 1.0, 5.0]).unwrap();
    let test = Matrix::new(1, 1, vec![0.0]).unwrap();
    let input = KnnInput {
        train: &train,
        train_labels: &[0, 1, 0],
        test: &test,
        test_labels: &[0],
        num_classes: 2,
    };
    let values = knn_shapley(&input, 1, KnnVariant::Exact, &NoProgress).unwrap();
    // Ranking 0, 1, 2: m = 1, 0, 1. s3 = 1/3, s2 = 1/3 - 1/2 = -1/6, s1 = -1/6 + 1 = 5/6.
    assert_close(&values, &[5.0 / 6.0, -1.0 / 6.0, 1.0 / 3.0], 1e-15);
}
