//! The federated quality figures and the per-round cost of secure aggregation, on the shipped digits data
//! (80/20 stratified split, softmax regression, E=5 local epochs of SGD, batch 32, learning rate 0.05).
//!
//! ```text
//! cargo run --release -p tributary-learn --example federated_quality
//! ```
//!
//! Prints markdown tables for BENCHMARKS.md:
//! 1. held-out accuracy after 100 rounds × 10 contributors with SecAgg+ on, IID and Dirichlet(0.5), three
//!    partition seeds each;
//! 2. 2 of 10 contributors sending sign-flipped updates ×10 (30 rounds): FedAvg, median, trimmed mean;
//! 3. DP-FedAvg with σ = 1 and clip norm 1 (every client every round): accuracy and ε at δ = 1e-5;
//! 4. one round's wall time (all clients' local training and the aggregation, in one process) with and
//!    without secure aggregation for 10, 50 and 100 clients.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tributary_learn::data::{partition_dirichlet, partition_iid};
use tributary_learn::privacy::DpConfig;
use tributary_learn::robust::AggregationRule;
use tributary_learn::session::{Behaviour, Session, SessionConfig};
use tributary_learn::{Architecture, Dataset, ModelSpec, Standardizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
    let data = Dataset::read(&path, "label", None)?;
    let (mut training, mut test) = data.stratified_split(0.2, 42)?;
    let standardizer = Standardizer::fit(&training)?;
    training.standardize(&standardizer)?;
    test.standardize(&standardizer)?;
    let spec = ModelSpec {
        architecture: Architecture::Softmax,
        features: 64,
        classes: 10,
    };
    let config = SessionConfig::reference;
    let session = |parts: Vec<Vec<usize>>,
                   config: SessionConfig|
     -> Result<Session, Box<dyn std::error::Error>> {
        let clients: BTreeMap<u32, Dataset> = parts
            .into_iter()
            .enumerate()
            .map(|(id, rows)| Ok((id as u32, training.select(&rows)?)))
            .collect::<Result<_, tributary_learn::LearnError>>()?;
        Ok(Session::new(
            config,
            spec.clone(),
            clients,
            None,
            Some(test.clone()),
        )?)
    };

    println!("| partition | seed 1 | seed 2 | seed 3 | mean | wall s (3 runs) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for partition in ["IID", "Dirichlet α=0.5"] {
        let started = Instant::now();
        let mut accuracies = Vec::new();
        for seed in 1..=3 {
            let parts = if partition == "IID" {
                partition_iid(training.rows(), 10, seed)?
            } else {
                partition_dirichlet(training.labels(), 10, 0.5, seed)?
            };
            let report = session(parts, config(100, seed))?.run(|_| {})?;
            accuracies.push(report.accuracy.unwrap_or_default());
        }
        let mean = accuracies.iter().sum::<f64>() / 3.0;
        println!(
            "| {partition} | {:.4} | {:.4} | {:.4} | {mean:.4} | {:.1} |",
            accuracies[0],
            accuracies[1],
            accuracies[2],
            started.elapsed().as_secs_f64()
        );
    }

    println!();
    println!("| rule (2 of 10 sign-flipped ×10, no SecAgg, 30 rounds) | accuracy |");
    println!("| --- | --- |");
    for (name, rule) in [
        ("FedAvg (mean)", AggregationRule::Mean),
        ("coordinate median", AggregationRule::Median),
        (
            "trimmed mean β=0.2",
            AggregationRule::TrimmedMean { trim_fraction: 0.2 },
        ),
        (
            "Multi-Krum f=2 m=6",
            AggregationRule::MultiKrum {
                byzantine: 2,
                selected: 6,
            },
        ),
    ] {
        let mut attacked = config(30, 1);
        attacked.secure_aggregation = false;
        attacked.groups = 0;
        attacked.aggregation = rule;
        let mut attacked = session(partition_iid(training.rows(), 10, 1)?, attacked)?;
        for attacker in [3, 7] {
            attacked.set_behaviour(attacker, Behaviour::SignFlip { scale: 10.0 })?;
        }
        let report = attacked.run(|_| {})?;
        println!("| {name} | {:.4} |", report.accuracy.unwrap_or_default());
    }

    println!();
    println!("| DP-FedAvg (SecAgg on, 100 rounds, q = 1) | accuracy | ε at δ = 1e-5 |");
    println!("| --- | --- | --- |");
    for noise_multiplier in [0.0, 1.0] {
        let mut private = config(100, 1);
        private.privacy = Some(DpConfig::new(1.0, noise_multiplier)?);
        let report = session(partition_iid(training.rows(), 10, 1)?, private)?.run(|_| {})?;
        let epsilon = report
            .privacy
            .map_or(f64::INFINITY, |privacy| privacy.epsilon);
        println!(
            "| σ = {noise_multiplier}, clip 1 | {:.4} | {epsilon:.2} |",
            report.accuracy.unwrap_or_default()
        );
    }

    println!();
    println!(
        "| clients | round, plain FedAvg (ms) | round, SecAgg+ (ms) | SecAgg+ extra per round (ms) |"
    );
    println!("| --- | --- | --- | --- |");
    for clients in [10_usize, 50, 100] {
        let mut times = Vec::new();
        for secure in [false, true] {
            let mut timed = config(5, 1);
            timed.secure_aggregation = secure;
            let timed = session(partition_iid(training.rows(), clients, 1)?, timed)?;
            let started = Instant::now();
            timed.run(|_| {})?;
            times.push(started.elapsed().as_secs_f64() * 1000.0 / 5.0);
        }
        println!(
            "| {clients} | {:.1} | {:.1} | {:.1} |",
            times[0],
            times[1],
            times[1] - times[0]
        );
    }
    Ok(())
}
