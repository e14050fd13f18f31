//! The retraining estimators and their utilities.

mod common;

use tributary_valuation::NoProgress;
use tributary_valuation::retrain::{banzhaf_msr, beta_shapley, leave_one_out, tmc_shapley};
use tributary_valuation::utility::{
    KnnClassifierUtility, LogisticSettings, LogisticUtility, Utility,
};

use common::split;

#[test]
fn knn_prefix_scores_equal_scores_of_prefixes() {
    let data = split("iris.csv", 1, 0.1);
    let utility = KnnClassifierUtility::new(&data.input(), 3).unwrap();
    let order: Vec<usize> = (0..utility.len()).rev().collect();
    let prefixes = utility.prefix_scores(&order, &mut |_| false);
    assert_eq!(prefixes.len(), order.len());
    for (end, &score) in prefixes.iter().enumerate() {
        assert_eq!(score, utility.score(&order[..=end]), "prefix {end}");
    }
    // Stopping early.
    let short = utility.prefix_scores(&order, &mut |score| score > 0.5);
    assert!(short.len() < order.len());
}

#[test]
fn tmc_converges_to_exact_shapley_on_a_tiny_set() {
    // Six iris training points: exact Shapley by enumeration of all 720 orderings.
    let data = split("iris.csv", 3, 0.0);
    let picks = [0, 40, 60, 80, 100, 119];
    let mut problem = data.problem.clone();
    problem.train = problem.train.select_rows(&picks);
    problem.train_labels = picks
        .iter()
        .map(|&i| data.problem.train_labels[i])
        .collect();
    let input = tributary_valuation::knn::KnnInput {
        train: &problem.train,
        train_labels: &problem.train_labels,
        test: &problem.test,
        test_labels: &problem.test_labels,
        num_classes: problem.num_classes(),
    };
    let utility = KnnClassifierUtility::new(&input, 1).unwrap();
    let n = picks.len();
    let mut exact = vec![0.0; n];
    let mut permutation: Vec<usize> = (0..n).collect();
    let mut count = 0.0;
    heap_permutations(&mut permutation, n, &mut |order| {
        count += 1.0;
        let mut previous = utility.score(&[]);
        for end in 1..=n {
            let now = utility.score(&order[..end]);
            exact[order[end - 1]] += now - previous;
            previous = now;
        }
    });
    exact.iter_mut().for_each(|v| *v /= count);
    let estimate = tmc_shapley(&utility, 3000, 0.0, 7, &NoProgress).unwrap();
    for (e, x) in estimate.iter().zip(&exact) {
        assert!((e - x).abs() < 0.03, "{estimate:?} vs {exact:?}");
    }
    // Beta(1, 1) is Shapley: same permutations, weights all 1.
    let beta = beta_shapley(&utility, 3000, 0.0, 1.0, 1.0, 7, &NoProgress).unwrap();
    for (b, t) in beta.iter().zip(&estimate) {
        assert!((b - t).abs() < 0.03);
    }
}

fn heap_permutations(items: &mut Vec<usize>, size: usize, visit: &mut dyn FnMut(&[usize])) {
    if size == 1 {
        visit(items);
        return;
    }
    for i in 0..size {
        heap_permutations(items, size - 1, visit);
        if !size.is_multiple_of(2) {
            items.swap(0, size - 1);
        } else {
            items.swap(i, size - 1);
        }
    }
}

#[test]
fn sampling_methods_are_seeded_and_thread_count_independent() {
    let data = split("iris.csv", 5, 0.1);
    let utility = KnnClassifierUtility::new(&data.input(), 5).unwrap();
    let bits = |values: Vec<f64>| values.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                bits(tmc_shapley(&utility, 40, 0.01, seed, &NoProgress).unwrap()),
                bits(banzhaf_msr(&utility, 80, seed, &NoProgress).unwrap()),
                bits(beta_shapley(&utility, 40, 0.01, 16.0, 1.0, seed, &NoProgress).unwrap()),
                bits(leave_one_out(&utility, &NoProgress).unwrap()),
            )
        })
    };
    let one = run(1, 9);
    assert_eq!(one, run(2, 9));
    assert_eq!(one, run(3, 9));
    assert_ne!(
        one.0,
        run(1, 10).0,
        "a different seed gives different permutations"
    );
}

#[test]
fn leave_one_out_matches_its_definition() {
    let data = split("iris.csv", 2, 0.0);
    let utility = KnnClassifierUtility::new(&data.input(), 1).unwrap();
    let values = leave_one_out(&utility, &NoProgress).unwrap();
    let n = utility.len();
    let all: Vec<usize> = (0..n).collect();
    for i in [0, 17, n - 1] {
        let rest: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        assert_eq!(values[i], utility.score(&all) - utility.score(&rest));
    }
}

#[test]
fn logistic_regression_learns_iris() {
    let data = split("iris.csv", 4, 0.0);
    let utility = LogisticUtility::new(&data.input(), LogisticSettings::default()).unwrap();
    let all: Vec<usize> = (0..utility.len()).collect();
    let accuracy = utility.score(&all);
    assert!(accuracy > 0.85, "accuracy {accuracy}");
    assert_eq!(utility.score(&[]), 0.0);
    // Order of the subset does not matter.
    let reversed: Vec<usize> = all.iter().rev().copied().collect();
    assert_eq!(utility.score(&reversed).to_bits(), accuracy.to_bits());
}
