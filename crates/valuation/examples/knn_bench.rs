//! Times the nearest-neighbour closed forms (K = 5) on digits (1437 train × 360 test) and on digits copied
//! ten times with small jitter (14 370 train × 360 test).
//!
//! `cargo run --release -p tributary-valuation --example knn_bench`

#[path = "shared/mod.rs"]
mod shared;

use std::time::Instant;

use tributary_valuation::NoProgress;
use tributary_valuation::knn::{KnnVariant, knn_shapley};

fn median_seconds(runs: usize, f: &mut dyn FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (problem, _) = shared::split("digits.csv", 42, 0.0)?;
    let threads = rayon::current_num_threads();
    println!("threads: {threads}");
    let base = shared::input(&problem);

    // Ten jittered copies of the training set.
    let (big_train, labels) = shared::jittered_copies(&problem, 10)?;
    let big = tributary_valuation::KnnInput {
        train: &big_train,
        train_labels: &labels,
        ..base
    };

    for (name, input) in [("digits", base), ("digits-x10-jitter", big)] {
        for (variant_name, variant) in [
            ("exact", KnnVariant::Exact),
            ("soft-label", KnnVariant::SoftLabel),
            (
                "truncated-eps=0.01",
                KnnVariant::Truncated { epsilon: 0.01 },
            ),
            ("threshold-tau=20", KnnVariant::Threshold { tau: 20.0 }),
        ] {
            let runs = if input.train.rows() > 5_000 { 5 } else { 11 };
            let seconds = median_seconds(runs, &mut || {
                let values = knn_shapley(&input, 5, variant, &NoProgress);
                assert!(values.is_ok());
            });
            println!(
                "knn_shapley::{variant_name}/train={},test={},k=5 ({name}): {:.2} ms",
                input.train.rows(),
                input.test.rows(),
                seconds * 1000.0
            );
        }
    }
    println!("peak RSS: {:.0} MiB", shared::peak_rss_mib());
    Ok(())
}
