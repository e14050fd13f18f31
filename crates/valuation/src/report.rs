//! The end-to-end valuation of files, its report, and re-execution of a report.
//!
//! [`value_files`] reads the training files and the test file, values every training row with the chosen
//! [`Method`], moves the value of duplicate rows to the rows they copy ([`crate::dedup`]), sums per
//! contributor and converts to basis points ([`crate::shares`]). The [`ValuationReport`] records the method,
//! every parameter, the crate version, the BLAKE3 root of every input file, each row's value and each
//! contributor's share. [`verify`] reads a report, checks the inputs still hash the same, recomputes, and
//! compares shares with a tolerance of ±1 bps (the ledger never compares raw floats).
//!
//! If no contributor has a positive total value, shares are undefined and the valuation fails with
//! [`crate::shares::SharesError::NoPositiveValue`] rather than inventing a split.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Progress;
use crate::data::{
    CsvOptions, Problem, Table, hash_file, open_checked, read_table, read_table_header,
};
use crate::dedup::{Duplicate, find_duplicates, reassign_values};
use crate::error::{Result, ValuationError};
use crate::knn::{KnnInput, KnnVariant, knn_shapley};
use crate::limits;
use crate::retrain::{banzhaf_msr, beta_shapley, leave_one_out, tmc_shapley};
use crate::shares::{basis_points, shares_match};
use crate::utility::{KnnClassifierUtility, LogisticSettings, LogisticUtility, Utility};

/// Report format identifier; bumped on incompatible changes.
pub const REPORT_FORMAT: &str = "tributary-valuation-report/1";

/// Tolerance, in basis points, when comparing shares.
pub const SHARE_TOLERANCE_BPS: u32 = 1;

/// The valuation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Exact KNN-Shapley (truncated when `epsilon` is set).
    Knn,
    /// Soft-label KNN-Shapley.
    SoftKnn,
    /// Threshold KNN-Shapley (needs `tau`).
    Tknn,
    /// Truncated Monte Carlo Shapley with a retrained model.
    Tmc,
    /// Data Banzhaf (maximum sample reuse) with a retrained model.
    Banzhaf,
    /// Beta(α, β) Shapley with a retrained model.
    Beta,
    /// Leave-one-out with a retrained model.
    Loo,
}

impl Method {
    /// Whether the method retrains a model (and so uses `model`, `samples`, `seed`).
    #[must_use]
    pub fn retrains(self) -> bool {
        matches!(self, Self::Tmc | Self::Banzhaf | Self::Beta | Self::Loo)
    }
}

/// The model a retraining method trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Hard-label KNN classifier with the same `k`.
    #[default]
    Knn,
    /// Multinomial logistic regression.
    Logistic,
}

/// Every parameter of a valuation; a report records them all so it can be recomputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// The method.
    pub method: Method,
    /// Number of neighbours.
    pub k: usize,
    /// Truncation error bound for `knn` (None: exact).
    pub epsilon: Option<f64>,
    /// Radius for `tknn`.
    pub tau: Option<f64>,
    /// Seed of the sampling methods.
    pub seed: u64,
    /// Permutations (TMC, Beta) or subsets (Banzhaf).
    pub samples: usize,
    /// The retrained model.
    pub model: ModelKind,
    /// TMC / Beta truncation: stop a permutation once within this fraction of the full score (0: never).
    pub truncation_tolerance: f64,
    /// Beta Shapley α.
    pub beta_alpha: f64,
    /// Beta Shapley β.
    pub beta_beta: f64,
    /// Logistic-regression settings.
    pub logistic: LogisticSettings,
    /// Cosine threshold for near duplicates (None: exact duplicates only).
    pub near_duplicate_cosine: Option<f64>,
    /// The label column.
    pub label_column: String,
    /// The contributor column, if any.
    pub contributor_column: Option<String>,
}

impl Parameters {
    /// Defaults for `method` with the given label column: K = 5, seed 0, 200 samples, KNN model,
    /// tolerance 0.01, Beta(16, 1), exact duplicates only.
    #[must_use]
    pub fn new(method: Method, label_column: impl Into<String>) -> Self {
        Self {
            method,
            k: 5,
            epsilon: None,
            tau: None,
            seed: 0,
            samples: 200,
            model: ModelKind::Knn,
            truncation_tolerance: 0.01,
            beta_alpha: 16.0,
            beta_beta: 1.0,
            logistic: LogisticSettings::default(),
            near_duplicate_cosine: None,
            label_column: label_column.into(),
            contributor_column: None,
        }
    }
}

/// Which side an input file was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputRole {
    /// A training file (rows are valued).
    Train,
    /// The test file (rows define the utility).
    Test,
}

/// A commitment to one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCommitment {
    /// Train or test.
    pub role: InputRole,
    /// The path as given.
    pub path: String,
    /// BLAKE3 root of the file's bytes, hex.
    pub blake3: String,
    /// Data rows read.
    pub rows: usize,
}

/// One training row's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowValue {
    /// Index of the training file in `inputs` order (train files only).
    pub file: usize,
    /// 1-based line in that file (header = line 1).
    pub line: u64,
    /// The contributor, if known.
    pub contributor: Option<String>,
    /// The value after moving duplicates' values to their originals.
    pub value: f64,
    /// The value the method computed, before that move.
    pub raw_value: f64,
    /// Set when the row copies an earlier one (training index of the original).
    pub duplicate_of: Option<Duplicate>,
}

/// The result of a valuation, serialised as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValuationReport {
    /// [`REPORT_FORMAT`].
    pub format: String,
    /// Version of this crate that computed it.
    pub crate_version: String,
    /// All parameters.
    pub parameters: Parameters,
    /// The training files (in order) then the test file.
    pub inputs: Vec<InputCommitment>,
    /// Class names (label strings) in class-id order.
    pub classes: Vec<String>,
    /// One entry per training row, in file order.
    pub rows: Vec<RowValue>,
    /// Sum of row values per contributor (empty without contributors).
    pub contributor_values: BTreeMap<String, f64>,
    /// Shares in basis points per contributor, summing to 10000 (empty without contributors).
    pub shares_bps: BTreeMap<String, u32>,
}

impl ValuationReport {
    /// The value of every training row, in file order.
    #[must_use]
    pub fn values(&self) -> Vec<f64> {
        self.rows.iter().map(|row| row.value).collect()
    }

    /// Writes the report as pretty JSON.
    ///
    /// # Errors
    ///
    /// I/O or serialisation errors.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(|error| ValuationError::io(path, error))
    }

    /// Reads a report (at most [`limits::REPORT_BYTES_MAX`] bytes).
    ///
    /// # Errors
    ///
    /// I/O errors, an oversized file, or invalid JSON / wrong format.
    pub fn read(path: &Path) -> Result<Self> {
        let file = open_checked(path, limits::REPORT_BYTES_MAX)?;
        let mut bytes = Vec::new();
        file.take(limits::REPORT_BYTES_MAX)
            .read_to_end(&mut bytes)
            .map_err(|error| ValuationError::io(path, error))?;
        let report: Self =
            serde_json::from_slice(&bytes).map_err(|error| ValuationError::BadReport {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        if report.format != REPORT_FORMAT {
            return Err(ValuationError::BadReport {
                path: path.to_owned(),
                message: format!("format {:?}, expected {REPORT_FORMAT:?}", report.format),
            });
        }
        Ok(report)
    }
}

/// What to value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuationRequest {
    /// Training files, in order (earlier files win duplicate ties). Without a contributor column and with
    /// more than one file, each file is one contributor named by its file stem.
    pub train: Vec<PathBuf>,
    /// The test file.
    pub test: PathBuf,
    /// Parameters.
    pub parameters: Parameters,
}

/// Per-row values for a prepared problem with `parameters` (no duplicate handling, no shares).
///
/// # Errors
///
/// Invalid parameters for the method, or the method's own errors.
pub fn compute_values(
    problem: &Problem,
    parameters: &Parameters,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    let input = KnnInput {
        train: &problem.train,
        train_labels: &problem.train_labels,
        test: &problem.test,
        test_labels: &problem.test_labels,
        num_classes: problem.num_classes(),
    };
    let k = parameters.k;
    let retrain_utility = || -> Result<Box<dyn Utility>> {
        Ok(match parameters.model {
            ModelKind::Knn => Box::new(KnnClassifierUtility::new(&input, k)?),
            ModelKind::Logistic => Box::new(LogisticUtility::new(&input, parameters.logistic)?),
        })
    };
    crate::debug_event!(method = ?parameters.method, k, train = problem.train.rows(), test = problem.test.rows(), "valuing");
    match parameters.method {
        Method::Knn => {
            let variant = match parameters.epsilon {
                Some(epsilon) => KnnVariant::Truncated { epsilon },
                None => KnnVariant::Exact,
            };
            knn_shapley(&input, k, variant, progress)
        }
        Method::SoftKnn => knn_shapley(&input, k, KnnVariant::SoftLabel, progress),
        Method::Tknn => {
            let tau = parameters
                .tau
                .ok_or_else(|| ValuationError::invalid("tau", "tknn needs a radius tau"))?;
            knn_shapley(&input, k, KnnVariant::Threshold { tau }, progress)
        }
        Method::Tmc => {
            let utility = retrain_utility()?;
            tmc_shapley(
                utility.as_ref(),
                parameters.samples,
                parameters.truncation_tolerance,
                parameters.seed,
                progress,
            )
        }
        Method::Beta => {
            let utility = retrain_utility()?;
            beta_shapley(
                utility.as_ref(),
                parameters.samples,
                parameters.truncation_tolerance,
                parameters.beta_alpha,
                parameters.beta_beta,
                parameters.seed,
                progress,
            )
        }
        Method::Banzhaf => {
            let utility = retrain_utility()?;
            banzhaf_msr(
                utility.as_ref(),
                parameters.samples,
                parameters.seed,
                progress,
            )
        }
        Method::Loo => {
            let utility = retrain_utility()?;
            leave_one_out(utility.as_ref(), progress)
        }
    }
}

/// Reads the files, values every training row, handles duplicates, and computes shares.
///
/// # Errors
///
/// Any input error (naming file and line), invalid parameters, or no contributor with a positive value.
pub fn value_files(request: &ValuationRequest, progress: &dyn Progress) -> Result<ValuationReport> {
    let parameters = &request.parameters;
    let options = CsvOptions {
        label_column: parameters.label_column.clone(),
        contributor_column: parameters.contributor_column.clone(),
    };
    let train: Vec<Table> = request
        .train
        .iter()
        .map(|path| read_table(path, &options))
        .collect::<Result<_>>()?;
    // The test file needs only features and labels; a contributor column there is ignored if present.
    let test_header = read_table_header(&request.test)?;
    let test_options = CsvOptions {
        label_column: parameters.label_column.clone(),
        contributor_column: parameters
            .contributor_column
            .clone()
            .filter(|column| test_header.iter().any(|name| name == column)),
    };
    let test = read_table(&request.test, &test_options)?;
    let problem = Problem::from_tables(&train, &test)?;
    let raw = compute_values(&problem, parameters, progress)?;
    let flags = find_duplicates(
        &problem.train,
        &problem.train_labels,
        parameters.near_duplicate_cosine,
    )?;
    let values = reassign_values(&raw, &flags);

    let mut contributor_values: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(contributors) = &problem.contributors {
        for (name, value) in contributors.iter().zip(&values) {
            *contributor_values.entry(name.clone()).or_insert(0.0) += value;
        }
    }
    let shares_bps = if contributor_values.is_empty() {
        BTreeMap::new()
    } else {
        basis_points(&contributor_values)?
    };

    let mut inputs: Vec<InputCommitment> = train
        .iter()
        .map(|table| InputCommitment {
            role: InputRole::Train,
            path: table.path.display().to_string(),
            blake3: hex::encode(table.blake3),
            rows: table.rows(),
        })
        .collect();
    inputs.push(InputCommitment {
        role: InputRole::Test,
        path: test.path.display().to_string(),
        blake3: hex::encode(test.blake3),
        rows: test.rows(),
    });
    let rows = (0..problem.train.rows())
        .map(|index| RowValue {
            file: problem.origins[index].file,
            line: problem.origins[index].line,
            contributor: problem
                .contributors
                .as_ref()
                .map(|list| list[index].clone()),
            value: values[index],
            raw_value: raw[index],
            duplicate_of: flags[index],
        })
        .collect();
    Ok(ValuationReport {
        format: REPORT_FORMAT.to_owned(),
        crate_version: env!("CARGO_PKG_VERSION").to_owned(),
        parameters: parameters.clone(),
        inputs,
        classes: problem.classes.clone(),
        rows,
        contributor_values,
        shares_bps,
    })
}

/// One input's check during verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCheck {
    /// The path as recorded.
    pub path: String,
    /// Where it was found (relative paths are tried from the working directory, then the report's).
    pub resolved: String,
    /// The recorded root.
    pub expected: String,
    /// The root now.
    pub actual: String,
    /// Whether they are equal.
    pub matches: bool,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    /// Whether everything matches: inputs unchanged, and shares within ±1 bps (or, without contributors,
    /// values within `1e-9` relative).
    pub matches: bool,
    /// Per-input hash checks.
    pub inputs: Vec<InputCheck>,
    /// Whether the recomputed shares are within tolerance (true when there are no contributors).
    pub shares_match: bool,
    /// Largest difference between recorded and recomputed shares, in bps.
    pub share_difference_bps_max: u32,
    /// Largest absolute difference between recorded and recomputed row values.
    pub value_difference_max: f64,
    /// Why it does not match, when it does not.
    pub reason: Option<String>,
}

fn resolve(recorded: &str, report_path: &Path) -> PathBuf {
    let path = PathBuf::from(recorded);
    if path.is_absolute() || path.exists() {
        return path;
    }
    report_path
        .parent()
        .map_or(path.clone(), |directory| directory.join(&path))
}

/// Recomputes a report from its recorded inputs and parameters and compares.
///
/// # Errors
///
/// The report cannot be read, or recomputation fails (an input missing or now invalid).
pub fn verify(report_path: &Path) -> Result<VerifyOutcome> {
    verify_with_progress(report_path, &crate::NoProgress)
}

/// [`verify`] with progress reporting.
///
/// # Errors
///
/// As [`verify`].
pub fn verify_with_progress(report_path: &Path, progress: &dyn Progress) -> Result<VerifyOutcome> {
    let report = ValuationReport::read(report_path)?;
    let mut inputs = Vec::with_capacity(report.inputs.len());
    for input in &report.inputs {
        let resolved = resolve(&input.path, report_path);
        let actual = hex::encode(hash_file(&resolved)?);
        inputs.push(InputCheck {
            path: input.path.clone(),
            resolved: resolved.display().to_string(),
            matches: actual == input.blake3,
            expected: input.blake3.clone(),
            actual,
        });
    }
    if let Some(changed) = inputs.iter().find(|check| !check.matches) {
        let reason = format!(
            "input {} changed (BLAKE3 {} != {})",
            changed.path, changed.actual, changed.expected
        );
        return Ok(VerifyOutcome {
            matches: false,
            inputs,
            shares_match: false,
            share_difference_bps_max: 0,
            value_difference_max: 0.0,
            reason: Some(reason),
        });
    }
    let mut train = Vec::new();
    let mut test = None;
    for (input, check) in report.inputs.iter().zip(&inputs) {
        match input.role {
            InputRole::Train => train.push(PathBuf::from(&check.resolved)),
            InputRole::Test => test = Some(PathBuf::from(&check.resolved)),
        }
    }
    let test = test.ok_or_else(|| ValuationError::BadReport {
        path: report_path.to_owned(),
        message: "no test input recorded".into(),
    })?;
    let request = ValuationRequest {
        train,
        test,
        parameters: report.parameters.clone(),
    };
    let again = value_files(&request, progress)?;
    let value_difference_max = if again.rows.len() == report.rows.len() {
        again
            .rows
            .iter()
            .zip(&report.rows)
            .map(|(a, b)| (a.value - b.value).abs())
            .fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    let share_difference_bps_max = report
        .shares_bps
        .iter()
        .map(|(name, &bps)| {
            again
                .shares_bps
                .get(name)
                .map_or(u32::MAX, |&other| other.abs_diff(bps))
        })
        .max()
        .unwrap_or(0);
    let has_shares = !report.shares_bps.is_empty() || !again.shares_bps.is_empty();
    let shares_ok = shares_match(&report.shares_bps, &again.shares_bps, SHARE_TOLERANCE_BPS);
    let scale = report
        .rows
        .iter()
        .map(|row| row.value.abs())
        .fold(1.0, f64::max);
    let values_ok = value_difference_max <= 1e-9 * scale;
    let matches = if has_shares { shares_ok } else { values_ok };
    let reason = (!matches).then(|| {
        if has_shares {
            format!("shares differ by up to {share_difference_bps_max} bps (tolerance {SHARE_TOLERANCE_BPS})")
        } else {
            format!("values differ by up to {value_difference_max:e}")
        }
    });
    Ok(VerifyOutcome {
        matches,
        inputs,
        shares_match: shares_ok,
        share_difference_bps_max,
        value_difference_max,
        reason,
    })
}
