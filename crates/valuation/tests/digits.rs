//! Behaviour on the shipped digits dataset: noisy-label detection and contributor shares.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use tributary_valuation::NoProgress;
use tributary_valuation::knn::{KnnVariant, knn_shapley};
use tributary_valuation::report::{Method, Parameters, ValuationRequest, value_files, verify};

use common::{data_path, split};
use tributary_valuation::split::detection_rate;

#[test]
fn knn_shapley_finds_flipped_labels_on_digits() {
    let split = split("digits.csv", 42, 0.10);
    assert_eq!(split.problem.train.rows(), 1437);
    assert_eq!(split.problem.test.rows(), 360);
    assert_eq!(split.flipped.len(), 144);
    let values = knn_shapley(&split.input(), 5, KnnVariant::Exact, &NoProgress).unwrap();
    let rate = detection_rate(&values, &split.flipped);
    println!(
        "KNN-Shapley K=5: {:.1}% of flipped labels in the lowest 10%",
        rate * 100.0
    );
    assert!(rate >= 0.85, "detection rate {rate}");
}

/// Writes `rows` of digits (with a contributor column) to a temporary CSV.
fn write_csv(path: &std::path::Path, header: &str, rows: &[(String, String)]) {
    let mut file = std::fs::File::create(path).unwrap();
    writeln!(file, "{header},contributor").unwrap();
    for (row, contributor) in rows {
        writeln!(file, "{row},{contributor}").unwrap();
    }
}

#[test]
fn flipped_and_copying_contributors_earn_the_least() {
    let text = std::fs::read_to_string(data_path("digits.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    let rows: Vec<&str> = lines.collect();
    // Every fifth row is test; the rest go round-robin to alice, bob and carol. Carol's labels are flipped
    // for 80% of her rows. Dave copies 150 of alice's rows (appearing later in file order).
    let directory = tempfile::tempdir().unwrap();
    let mut train = Vec::new();
    let mut test = Vec::new();
    let names = ["alice", "bob", "carol"];
    let mut counter = 0_usize;
    for (index, row) in rows.iter().enumerate() {
        if index.is_multiple_of(5) {
            test.push((row.to_string(), "none".to_owned()));
            continue;
        }
        let name = names[counter % 3];
        let mut cells: Vec<String> = row.split(',').map(str::to_owned).collect();
        if name == "carol" && !counter.is_multiple_of(5) {
            let label: u32 = cells.last().unwrap().parse().unwrap();
            *cells.last_mut().unwrap() = ((label + 3) % 10).to_string();
        }
        train.push((cells.join(","), name.to_owned()));
        counter += 1;
    }
    let copies: Vec<(String, String)> = train
        .iter()
        .filter(|(_, name)| name == "alice")
        .take(150)
        .map(|(row, _)| (row.clone(), "dave".to_owned()))
        .collect();
    train.extend(copies);
    let train_path = directory.path().join("train.csv");
    let test_path = directory.path().join("test.csv");
    write_csv(&train_path, &header, &train);
    write_csv(&test_path, &header, &test);

    let mut parameters = Parameters::new(Method::Knn, "label");
    parameters.contributor_column = Some("contributor".into());
    let request = ValuationRequest {
        train: vec![train_path.clone()],
        test: test_path,
        parameters,
    };
    let report = value_files(&request, &NoProgress).unwrap();
    let shares = &report.shares_bps;
    println!("shares: {shares:?}");
    assert_eq!(shares.values().sum::<u32>(), 10_000);
    let honest_min = shares["alice"].min(shares["bob"]);
    assert!(
        shares["carol"] < honest_min && shares["dave"] < honest_min,
        "{shares:?}"
    );
    assert_eq!(shares["dave"], 0, "copied rows earn nothing");
    // Every one of dave's rows is flagged as a copy of an earlier (alice) row.
    let dave_rows: Vec<_> = report
        .rows
        .iter()
        .filter(|row| row.contributor.as_deref() == Some("dave"))
        .collect();
    assert_eq!(dave_rows.len(), 150);
    assert!(
        dave_rows
            .iter()
            .all(|row| row.duplicate_of.is_some() && row.value == 0.0)
    );

    // The report round-trips and verifies.
    let report_path = directory.path().join("report.json");
    report.write(&report_path).unwrap();
    let outcome = verify(&report_path).unwrap();
    assert!(outcome.matches, "{outcome:?}");

    // Tampering with the training file is detected.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&train_path)
        .unwrap();
    writeln!(file, "{},mallory", train[0].0).unwrap();
    let outcome = verify(&report_path).unwrap();
    assert!(!outcome.matches);
    assert!(outcome.reason.unwrap().contains("changed"));

    // A report whose shares were edited by more than 1 bps does not verify.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&train_path)
        .unwrap();
    file.write_all(b"").unwrap();
    write_csv(&train_path, &header, &train);
    let mut edited = report.clone();
    let mut shares: BTreeMap<String, u32> = edited.shares_bps.clone();
    *shares.get_mut("alice").unwrap() += 2;
    *shares.get_mut("bob").unwrap() -= 2;
    edited.shares_bps = shares;
    edited.write(&report_path).unwrap();
    let outcome = verify(&report_path).unwrap();
    assert!(!outcome.matches);
    assert_eq!(outcome.share_difference_bps_max, 2);
}

/// Removing the highest-valued points hurts held-out accuracy more than removing random ones.
#[test]
fn removing_high_value_points_hurts_more_than_random() {
    use tributary_valuation::knn::KnnInput;
    use tributary_valuation::removal::removal_curve;
    use tributary_valuation::split::stratified_split;

    let split = split("digits.csv", 42, 0.0);
    let problem = &split.problem;
    // Values against one half of the test rows; the curve on the other half.
    let (heldout_index, validation_index) = stratified_split(&problem.test_labels, 0.5, 7);
    let validation = problem.test.select_rows(&validation_index);
    let validation_labels: Vec<u32> = validation_index
        .iter()
        .map(|&i| problem.test_labels[i])
        .collect();
    let heldout = problem.test.select_rows(&heldout_index);
    let heldout_labels: Vec<u32> = heldout_index
        .iter()
        .map(|&i| problem.test_labels[i])
        .collect();
    let valuing = KnnInput {
        train: &problem.train,
        train_labels: &problem.train_labels,
        test: &validation,
        test_labels: &validation_labels,
        num_classes: problem.num_classes(),
    };
    let values = knn_shapley(&valuing, 5, KnnVariant::Exact, &NoProgress).unwrap();
    let measuring = KnnInput {
        test: &heldout,
        test_labels: &heldout_labels,
        ..valuing
    };
    let curve = removal_curve(&measuring, &values, &[0.0, 0.1, 0.3, 0.5], 5, 5, 1).unwrap();
    assert!((curve[0].high_value_removed - curve[0].random_removed).abs() < 1e-12);
    for point in &curve[1..] {
        println!(
            "removed {:.0}%: high-value {:.3}, random {:.3}",
            point.fraction * 100.0,
            point.high_value_removed,
            point.random_removed
        );
        assert!(point.high_value_removed < point.random_removed, "{point:?}");
    }
    assert!(removal_curve(&measuring, &values[1..], &[0.1], 5, 5, 1).is_err());
    assert!(removal_curve(&measuring, &values, &[1.0], 5, 5, 1).is_err());
}
