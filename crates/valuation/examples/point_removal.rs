//! Point removal on digits: held-out accuracy of the K-NN classifier (K = 5) after removing the
//! 10..50% highest-valued training points, beside removing random points (mean of 20 draws).
//! Values are exact KNN-Shapley against one half of the test split; accuracy is measured on the
//! other half.
//!
//! `cargo run --release -p tributary-valuation --example point_removal`

#[path = "shared/mod.rs"]
mod shared;

use tributary_valuation::NoProgress;
use tributary_valuation::knn::{KnnInput, KnnVariant, knn_shapley};
use tributary_valuation::removal::removal_curve;
use tributary_valuation::split::stratified_split;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (problem, _) = shared::split("digits.csv", 42, 0.0)?;
    let (heldout_index, validation_index) = stratified_split(&problem.test_labels, 0.5, 7);
    let pick = |index: &[usize]| {
        (
            problem.test.select_rows(index),
            index
                .iter()
                .map(|&i| problem.test_labels[i])
                .collect::<Vec<u32>>(),
        )
    };
    let (validation, validation_labels) = pick(&validation_index);
    let (heldout, heldout_labels) = pick(&heldout_index);
    let valuing = KnnInput {
        train: &problem.train,
        train_labels: &problem.train_labels,
        test: &validation,
        test_labels: &validation_labels,
        num_classes: problem.num_classes(),
    };
    let values = knn_shapley(&valuing, 5, KnnVariant::Exact, &NoProgress)?;
    let measuring = KnnInput {
        test: &heldout,
        test_labels: &heldout_labels,
        ..valuing
    };
    let fractions = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5];
    let curve = removal_curve(&measuring, &values, &fractions, 5, 20, 1)?;
    println!(
        "digits: {} train, values on {} validation rows, accuracy on {} held-out rows",
        problem.train.rows(),
        validation.rows(),
        heldout.rows()
    );
    println!("| removed | highest-valued first | random (mean of 20) |");
    println!("| --- | --- | --- |");
    for point in curve {
        println!(
            "| {:.0}% | {:.3} | {:.3} |",
            point.fraction * 100.0,
            point.high_value_removed,
            point.random_removed
        );
    }
    Ok(())
}
