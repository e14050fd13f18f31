//! Every kind of bad input gives a clear error naming the file and the 1-based line (header = line 1).

use std::path::{Path, PathBuf};

use tributary_valuation::report::{Method, Parameters, ValuationRequest, value_files};
use tributary_valuation::{NoProgress, ValuationError};

struct Files {
    directory: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.directory.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

const GOOD_TRAIN: &str = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n";
const GOOD_TEST: &str = "a,b,label\n1,2,x\n";

fn run(train: &Path, test: &Path, k: usize) -> Result<(), ValuationError> {
    let mut parameters = Parameters::new(Method::Knn, "label");
    parameters.k = k;
    let request = ValuationRequest {
        train: vec![train.to_owned()],
        test: test.to_owned(),
        parameters,
    };
    value_files(&request, &NoProgress).map(|_| ())
}

fn message(error: &ValuationError) -> String {
    error.to_string()
}

#[test]
fn good_input_works() {
    let files = Files::new();
    run(
        &files.write("train.csv", GOOD_TRAIN),
        &files.write("test.csv", GOOD_TEST),
        1,
    )
    .unwrap();
}

#[test]
fn missing_label_column() {
    let files = Files::new();
    let train = files.write("train.csv", "a,b,class\n1,2,x\n");
    let error = run(&train, &files.write("test.csv", GOOD_TEST), 1).unwrap_err();
    assert!(
        matches!(&error, ValuationError::MissingColumn { column, .. } if column == "label"),
        "{error}"
    );
    assert!(message(&error).contains("train.csv") && message(&error).contains("line 1"));
}

#[test]
fn ragged_row() {
    let files = Files::new();
    let train = files.write("train.csv", "a,b,label\n1,2,x\n3,y\n");
    let error = run(&train, &files.write("test.csv", GOOD_TEST), 1).unwrap_err();
    assert!(
        matches!(
            error,
            ValuationError::RaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(message(&error).contains("train.csv: line 3"), "{error}");
}

#[test]
fn non_numeric_feature() {
    let files = Files::new();
    let train = files.write("train.csv", "a,b,label\n1,2,x\n3,four,y\n");
    let error = run(&train, &files.write("test.csv", GOOD_TEST), 1).unwrap_err();
    assert!(
        matches!(&error, ValuationError::NonNumeric { line: 3, column, .. } if column == "b"),
        "{error}"
    );
    assert!(message(&error).contains("line 3") && message(&error).contains("\"four\""));
}

#[test]
fn nan_and_infinity() {
    let files = Files::new();
    for cell in ["NaN", "inf", "-infinity"] {
        let train = files.write(
            "train.csv",
            &format!("a,b,label\n1,2,x\n3,4,y\n{cell},1,x\n"),
        );
        let error = run(&train, &files.write("test.csv", GOOD_TEST), 1).unwrap_err();
        assert!(
            matches!(&error, ValuationError::NonFinite { line: 4, column, .. } if column == "a"),
            "{error}"
        );
    }
    // In the test file too.
    let train = files.write("train.csv", GOOD_TRAIN);
    let test = files.write("test.csv", "a,b,label\n1,2,x\n1,nan,y\n");
    let error = run(&train, &test, 1).unwrap_err();
    assert!(
        matches!(&error, ValuationError::NonFinite { line: 3, path, .. } if path.ends_with("test.csv")),
        "{error}"
    );
}

#[test]
fn empty_test_set() {
    let files = Files::new();
    let error = run(
        &files.write("train.csv", GOOD_TRAIN),
        &files.write("test.csv", "a,b,label\n"),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(&error, ValuationError::EmptyTestSet { path } if path.ends_with("test.csv")),
        "{error}"
    );
    let error = run(
        &files.write("train.csv", GOOD_TRAIN),
        &files.write("test.csv", ""),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::MissingHeader { .. }),
        "{error}"
    );
}

#[test]
fn empty_training_set() {
    let files = Files::new();
    let error = run(
        &files.write("train.csv", "a,b,label\n"),
        &files.write("test.csv", GOOD_TEST),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::EmptyTrainingSet { .. }),
        "{error}"
    );
}

#[test]
fn k_larger_than_the_training_set() {
    let files = Files::new();
    let error = run(
        &files.write("train.csv", GOOD_TRAIN),
        &files.write("test.csv", GOOD_TEST),
        4,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ValuationError::KTooLarge {
                k: 4,
                train_rows: 3
            }
        ),
        "{error}"
    );
    let error = run(
        &files.write("train.csv", GOOD_TRAIN),
        &files.write("test.csv", GOOD_TEST),
        0,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::InvalidParameter { name: "k", .. }),
        "{error}"
    );
}

#[test]
fn mismatched_feature_counts() {
    let files = Files::new();
    let test = files.write("test.csv", "a,b,c,label\n1,2,3,x\n");
    let error = run(&files.write("train.csv", GOOD_TRAIN), &test, 1).unwrap_err();
    assert!(
        matches!(
            error,
            ValuationError::FeatureCountMismatch {
                reference_features: 2,
                other_features: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(message(&error).contains("test.csv") && message(&error).contains("train.csv"));
    let test = files.write("test.csv", "a,z,label\n1,2,x\n");
    let error = run(&files.write("train.csv", GOOD_TRAIN), &test, 1).unwrap_err();
    assert!(
        matches!(error, ValuationError::FeatureNameMismatch { index: 1, .. }),
        "{error}"
    );
}

#[test]
fn empty_label_and_duplicate_column() {
    let files = Files::new();
    let error = run(
        &files.write("train.csv", "a,b,label\n1,2,\n"),
        &files.write("test.csv", GOOD_TEST),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::EmptyCell { line: 2, .. }),
        "{error}"
    );
    let error = run(
        &files.write("train.csv", "a,a,label\n1,2,x\n"),
        &files.write("test.csv", GOOD_TEST),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::DuplicateColumn { .. }),
        "{error}"
    );
}

#[test]
fn only_label_column() {
    let files = Files::new();
    let error = run(
        &files.write("train.csv", "label\nx\n"),
        &files.write("test.csv", "label\nx\n"),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(error, ValuationError::NoFeatures { .. }),
        "{error}"
    );
}

#[test]
fn missing_file() {
    let files = Files::new();
    let missing = files.directory.path().join("nope.csv");
    let error = run(&missing, &files.write("test.csv", GOOD_TEST), 1).unwrap_err();
    assert!(matches!(error, ValuationError::Io { .. }));
    assert!(message(&error).contains("nope.csv"));
}

#[test]
fn missing_contributor_column() {
    let files = Files::new();
    let mut parameters = Parameters::new(Method::Knn, "label");
    parameters.k = 1;
    parameters.contributor_column = Some("who".into());
    let request = ValuationRequest {
        train: vec![files.write("train.csv", GOOD_TRAIN)],
        test: files.write("test.csv", GOOD_TEST),
        parameters,
    };
    let error = value_files(&request, &NoProgress).unwrap_err();
    assert!(
        matches!(&error, ValuationError::MissingColumn { column, .. } if column == "who"),
        "{error}"
    );
}

#[test]
fn bad_method_parameters() {
    let files = Files::new();
    let train = files.write("train.csv", GOOD_TRAIN);
    let test = files.write("test.csv", GOOD_TEST);
    let mut parameters = Parameters::new(Method::Tknn, "label");
    parameters.k = 1;
    let request = ValuationRequest {
        train: vec![train.clone()],
        test: test.clone(),
        parameters: parameters.clone(),
    };
    assert!(matches!(
        value_files(&request, &NoProgress),
        Err(ValuationError::InvalidParameter { name: "tau", .. })
    ));
    let mut parameters = Parameters::new(Method::Knn, "label");
    parameters.k = 1;
    parameters.epsilon = Some(0.0);
    let request = ValuationRequest {
        train: vec![train],
        test,
        parameters,
    };
    assert!(matches!(
        value_files(&request, &NoProgress),
        Err(ValuationError::InvalidParameter {
            name: "epsilon",
            ..
        })
    ));
}
