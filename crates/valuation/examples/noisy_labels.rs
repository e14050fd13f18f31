//! Noisy-label detection on digits: flip 10% of the training labels (seeded), value every training row with
//! each method, and report the share of flipped rows among the lowest-valued 10%.
//!
//! `cargo run --release -p tributary-valuation --example noisy_labels [SAMPLES]`

#[path = "shared/mod.rs"]
mod shared;

use std::time::Instant;

use tributary_valuation::NoProgress;
use tributary_valuation::knn::{KnnVariant, knn_shapley};
use tributary_valuation::retrain::{banzhaf_msr, beta_shapley, leave_one_out, tmc_shapley};
use tributary_valuation::rng::Stream;
use tributary_valuation::utility::{
    KnnClassifierUtility, LogisticSettings, LogisticUtility, Utility,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let samples: usize = std::env::args()
        .nth(1)
        .map_or(Ok(100), |text| text.parse())?;
    let (problem, flipped) = shared::split("digits.csv", 42, 0.10)?;
    let input = shared::input(&problem);
    println!(
        "digits: {} train x {} test, {} flipped labels, K = 5, {samples} samples for sampling methods",
        problem.train.rows(),
        problem.test.rows(),
        flipped.len()
    );
    println!("{:<34} {:>10} {:>9}", "method", "detected", "seconds");
    let report = |name: &str, values: &[f64], seconds: f64| {
        println!(
            "{name:<34} {:>9.1}% {seconds:>9.2}",
            tributary_valuation::split::detection_rate(values, &flipped) * 100.0
        );
    };
    let time = |f: &mut dyn FnMut() -> Result<Vec<f64>, tributary_valuation::ValuationError>| {
        let start = Instant::now();
        let values = f();
        values.map(|v| (v, start.elapsed().as_secs_f64()))
    };

    // Threshold: the mean distance to the 5th nearest training point, over test points.
    let tau = {
        let mut sum = 0.0;
        for t in 0..problem.test.rows() {
            let mut distances: Vec<f64> = (0..problem.train.rows())
                .map(|i| {
                    problem
                        .test
                        .row(t)
                        .iter()
                        .zip(problem.train.row(i))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect();
            distances.sort_by(f64::total_cmp);
            sum += distances[4];
        }
        sum / problem.test.rows() as f64
    };

    for (name, variant) in [
        ("KNN-Shapley (exact)".to_owned(), KnnVariant::Exact),
        ("soft-label KNN-Shapley".to_owned(), KnnVariant::SoftLabel),
        (
            "truncated KNN-Shapley eps=0.01".to_owned(),
            KnnVariant::Truncated { epsilon: 0.01 },
        ),
        (
            format!("threshold KNN-Shapley tau={tau:.1}"),
            KnnVariant::Threshold { tau },
        ),
    ] {
        let (values, seconds) = time(&mut || knn_shapley(&input, 5, variant, &NoProgress))?;
        report(&name, &values, seconds);
    }

    let knn = KnnClassifierUtility::new(&input, 5)?;
    let logistic = LogisticUtility::new(&input, LogisticSettings::default())?;
    let all: Vec<usize> = (0..knn.len()).collect();
    println!(
        "(full-set accuracy: KNN {:.3}, logistic {:.3})",
        knn.score(&all),
        logistic.score(&all)
    );
    for (model, utility) in [
        ("knn", &knn as &dyn Utility),
        ("logistic", &logistic as &dyn Utility),
    ] {
        let subsets = samples * 10;
        let (values, seconds) = time(&mut || tmc_shapley(utility, samples, 0.01, 1, &NoProgress))?;
        report(&format!("TMC Shapley ({model})"), &values, seconds);
        let (values, seconds) = time(&mut || banzhaf_msr(utility, subsets, 1, &NoProgress))?;
        report(
            &format!("Data Banzhaf MSR x{subsets} ({model})"),
            &values,
            seconds,
        );
        let (values, seconds) =
            time(&mut || beta_shapley(utility, samples, 0.01, 16.0, 1.0, 1, &NoProgress))?;
        report(&format!("Beta(16,1) Shapley ({model})"), &values, seconds);
        let (values, seconds) = time(&mut || leave_one_out(utility, &NoProgress))?;
        report(&format!("leave-one-out ({model})"), &values, seconds);
    }
    let mut stream = Stream::new("random-baseline", 1, 0);
    let random: Vec<f64> = (0..problem.train.rows()).map(|_| stream.unit()).collect();
    report("random", &random, 0.0);
    Ok(())
}
