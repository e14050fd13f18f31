//! The federated quality bar on the shipped digits data (80/20 stratified split, 10 contributors, E=5):
//! accuracy with secure aggregation on IID and Dirichlet(0.5) partitions, robustness to sign-flipping
//! attackers, dropout recovery, and DP.

use std::collections::BTreeMap;
use std::path::Path;
use tributary_learn::data::{partition_dirichlet, partition_iid};
use tributary_learn::privacy::DpConfig;
use tributary_learn::robust::AggregationRule;
use tributary_learn::session::{Behaviour, Dropout, Session, SessionConfig};
use tributary_learn::{Architecture, Dataset, ModelSpec, Standardizer};

const CLIENTS: usize = 10;

struct Digits {
    training: Dataset,
    test: Dataset,
}

fn digits() -> Digits {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
    let data = Dataset::read(&path, "label", None).unwrap();
    let (mut training, mut test) = data.stratified_split(0.2, 42).unwrap();
    let standardizer = Standardizer::fit(&training).unwrap();
    training.standardize(&standardizer).unwrap();
    test.standardize(&standardizer).unwrap();
    Digits { training, test }
}

fn spec() -> ModelSpec {
    ModelSpec {
        architecture: Architecture::Softmax,
        features: 64,
        classes: 10,
    }
}

fn config(rounds: u32, seed: u64) -> SessionConfig {
    SessionConfig::reference(rounds, seed)
}

fn session(digits: &Digits, parts: Vec<Vec<usize>>, config: SessionConfig) -> Session {
    let clients: BTreeMap<u32, Dataset> = parts
        .into_iter()
        .enumerate()
        .map(|(id, rows)| (id as u32, digits.training.select(&rows).unwrap()))
        .collect();
    Session::new(config, spec(), clients, None, Some(digits.test.clone())).unwrap()
}

fn accuracy(session: &Session) -> f64 {
    session.run(|_| {}).unwrap().accuracy.unwrap()
}

#[test]
fn secure_fedavg_reaches_the_reference_accuracy_iid_and_non_iid() {
    let digits = digits();
    let mut iid = Vec::new();
    let mut dirichlet = Vec::new();
    for seed in 1..=3 {
        let parts = partition_iid(digits.training.rows(), CLIENTS, seed).unwrap();
        iid.push(accuracy(&session(&digits, parts, config(100, seed))));
        let parts = partition_dirichlet(digits.training.labels(), CLIENTS, 0.5, seed).unwrap();
        dirichlet.push(accuracy(&session(&digits, parts, config(100, seed))));
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    println!(
        "IID {iid:?} mean {:.4}; Dirichlet(0.5) {dirichlet:?} mean {:.4}",
        mean(&iid),
        mean(&dirichlet)
    );
    assert!(mean(&iid) >= 0.945, "IID mean accuracy {}", mean(&iid));
    assert!(
        mean(&dirichlet) >= 0.945,
        "Dirichlet mean accuracy {}",
        mean(&dirichlet)
    );
}

#[test]
fn median_and_trimmed_mean_resist_two_sign_flippers() {
    let digits = digits();
    let parts = partition_iid(digits.training.rows(), CLIENTS, 1).unwrap();
    let run = |aggregation: AggregationRule| {
        let mut config = config(30, 1);
        config.secure_aggregation = false;
        config.groups = 0;
        config.aggregation = aggregation;
        let mut session = session(&digits, parts.clone(), config);
        for attacker in [3, 7] {
            session
                .set_behaviour(attacker, Behaviour::SignFlip { scale: 10.0 })
                .unwrap();
        }
        accuracy(&session)
    };
    let mean = run(AggregationRule::Mean);
    let median = run(AggregationRule::Median);
    let trimmed = run(AggregationRule::TrimmedMean { trim_fraction: 0.2 });
    println!("under attack: FedAvg {mean:.4}, median {median:.4}, trimmed mean {trimmed:.4}");
    assert!(median >= 0.88, "median {median}");
    assert!(trimmed >= 0.88, "trimmed mean {trimmed}");
    assert!(mean < 0.5, "plain FedAvg should collapse, got {mean}");
}

#[test]
fn a_round_survives_three_clients_killed() {
    let digits = digits();
    let parts = partition_iid(digits.training.rows(), CLIENTS, 2).unwrap();
    let mut session = session(&digits, parts, config(3, 2));
    session.drop_client(1, 2, Dropout::BeforeMaskedInput);
    session.drop_client(1, 5, Dropout::BeforeMaskedInput);
    session.drop_client(1, 8, Dropout::BeforeUnmasking);
    let report = session.run(|_| {}).unwrap();
    let round = &report.rounds[1];
    assert_eq!(round.abandoned_groups, 0);
    // Killed while training: left out; killed after uploading: recovered and included.
    assert_eq!(round.aggregated, vec![0, 1, 3, 4, 6, 7, 8, 9]);
    assert!(report.accuracy.unwrap() > 0.85);
}

#[test]
fn dp_fedavg_reports_epsilon_and_accuracy() {
    let digits = digits();
    let parts = partition_iid(digits.training.rows(), CLIENTS, 3).unwrap();
    let mut config = config(100, 3);
    config.privacy = Some(DpConfig::new(1.0, 1.0).unwrap());
    let report = session(&digits, parts, config).run(|_| {}).unwrap();
    let privacy = report.privacy.unwrap();
    println!(
        "DP σ=1: accuracy {:.4}, ε = {:.3} at δ = 1e-5",
        report.accuracy.unwrap(),
        privacy.epsilon
    );
    assert!(privacy.epsilon.is_finite() && privacy.epsilon > 0.0);
    assert!(report.accuracy.unwrap() > 0.8);
}

#[test]
fn contribution_shares_favour_honest_clients() {
    let digits = digits();
    let parts = partition_iid(digits.training.rows(), 9, 4).unwrap();
    let (validation_rows, _) = (0..digits.test.rows()).partition::<Vec<_>, _>(|row| row % 2 == 0);
    let validation = digits.test.select(&validation_rows).unwrap();
    let clients: BTreeMap<u32, Dataset> = parts
        .into_iter()
        .enumerate()
        .map(|(id, rows)| (id as u32, digits.training.select(&rows).unwrap()))
        .collect();
    let mut config = config(30, 4);
    config.groups = 3;
    let mut session = Session::new(config, spec(), clients, Some(validation), None).unwrap();
    session
        .set_behaviour(0, Behaviour::SignFlip { scale: 1.0 })
        .unwrap();
    let report = session.run(|_| {}).unwrap();
    let shares = report.contribution_bps;
    assert_eq!(shares.values().sum::<u32>(), 10_000);
    let honest_mean = shares
        .iter()
        .filter(|(id, _)| **id != 0)
        .map(|(_, bps)| *bps)
        .sum::<u32>()
        / 8;
    println!("contribution shares {shares:?}");
    assert!(
        shares[&0] < honest_mean / 2,
        "attacker {} vs honest mean {honest_mean}",
        shares[&0]
    );
}
