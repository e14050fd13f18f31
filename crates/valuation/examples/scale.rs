//! Scale check: 1,000,000 training points × 1,000 test points × 64 features, exact and truncated
//! KNN-Shapley (K = 5), printing wall time and peak RSS. Needs about 1 GiB.
//!
//! `cargo run --release -p tributary-valuation --example scale [TRAIN_ROWS] [TEST_ROWS]`

#[path = "shared/mod.rs"]
mod shared;

use std::time::Instant;

use tributary_valuation::knn::{KnnInput, KnnVariant, knn_shapley};
use tributary_valuation::rng::Stream;
use tributary_valuation::{Matrix, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let train_rows: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |text| text.parse())?;
    let test_rows: usize = std::env::args()
        .nth(2)
        .map_or(Ok(1_000), |text| text.parse())?;
    let features = 64;
    let classes = 10_u32;
    let mut stream = Stream::new("scale", 1, 0);
    // Ten Gaussian-ish clusters (sum of uniforms), label = cluster, 10% label noise.
    let centres: Vec<f64> = (0..classes as usize * features)
        .map(|_| stream.unit() * 4.0)
        .collect();
    let mut make =
        |rows: usize| -> Result<(Matrix, Vec<u32>), tributary_valuation::ValuationError> {
            let mut data = Vec::with_capacity(rows * features);
            let mut labels = Vec::with_capacity(rows);
            for _ in 0..rows {
                let class = stream.below(u64::from(classes)) as u32;
                for f in 0..features {
                    let noise = stream.unit() + stream.unit() + stream.unit() - 1.5;
                    data.push(centres[class as usize * features + f] + noise);
                }
                let label = if stream.below(10) == 0 {
                    stream.below(u64::from(classes)) as u32
                } else {
                    class
                };
                labels.push(label);
            }
            Ok((Matrix::new(rows, features, data)?, labels))
        };
    let (train, train_labels) = make(train_rows)?;
    let (test, test_labels) = make(test_rows)?;
    println!(
        "{train_rows} train × {test_rows} test × {features} features, {} threads; after generating: {:.0} MiB",
        rayon::current_num_threads(),
        shared::peak_rss_mib()
    );
    let input = KnnInput {
        train: &train,
        train_labels: &train_labels,
        test: &test,
        test_labels: &test_labels,
        num_classes: 10,
    };
    for (name, variant) in [
        (
            "truncated eps=0.001",
            KnnVariant::Truncated { epsilon: 0.001 },
        ),
        ("exact", KnnVariant::Exact),
    ] {
        let start = Instant::now();
        let values = knn_shapley(&input, 5, variant, &NoProgress)?;
        let sum: f64 = values.iter().sum();
        println!(
            "{name}: {:.1} s, sum of values {sum:.6}, peak RSS so far {:.0} MiB",
            start.elapsed().as_secs_f64(),
            shared::peak_rss_mib()
        );
    }
    Ok(())
}
