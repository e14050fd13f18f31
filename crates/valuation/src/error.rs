//! Typed errors.
//!
//! Every error about an input names the file, and where it concerns one row, the row's *line number*:
//! 1-based, counting the header as line 1 (so the first data row is line 2), which is what an editor shows.
//! Parquet rows are numbered the same way: the line the row would have in the same table written as CSV.

use std::path::PathBuf;

use crate::shares::SharesError;

/// Why a valuation could not be computed or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValuationError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`crate::limits::FILE_BYTES_MAX`] (or the report limit).
    #[error("{path}: file is {bytes} bytes, more than the limit of {max}")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The CSV reader rejected the file (bad quoting, invalid UTF-8, ...).
    #[error("{path}: line {line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// What the reader said.
        message: String,
    },
    /// The file is not a readable Parquet file: no Parquet magic, truncated, corrupt metadata or pages, an
    /// unsupported encoding or compression codec.
    #[error("{path}: malformed Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A Parquet column's type does not suit its role (a string feature, a float label, a nested column).
    #[error("{path}: column {column:?} is {found}, but {role} columns must be {expected}")]
    ParquetColumnType {
        /// The file.
        path: PathBuf,
        /// The column's name.
        column: String,
        /// What the column is used for: "feature", "label" or "contributor".
        role: &'static str,
        /// The column's Parquet type, in words.
        found: String,
        /// The types accepted for the role.
        expected: &'static str,
    },
    /// A Parquet string cell (label or contributor) is not valid UTF-8.
    #[error("{path}: line {line}: column {column:?} is not valid UTF-8")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// The column's name.
        column: String,
    },
    /// The file has no header row.
    #[error("{path}: the file is empty (no header row)")]
    MissingHeader {
        /// The file.
        path: PathBuf,
    },
    /// A required column (the label, or the contributor column) is not in the header.
    #[error("{path}: line 1: no column named {column:?} in the header")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
    },
    /// Two header cells have the same name.
    #[error("{path}: line 1: column {column:?} appears more than once")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// Only the label (and contributor) columns: nothing to measure distances on.
    #[error("{path}: line 1: no feature columns besides the label and contributor columns")]
    NoFeatures {
        /// The file.
        path: PathBuf,
    },
    /// A row has a different number of cells from the header.
    #[error("{path}: line {line}: row has {found} fields, the header has {expected}")]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// Number of header cells.
        expected: usize,
        /// Number of cells in this row.
        found: usize,
    },
    /// A feature cell is not a number.
    #[error("{path}: line {line}: column {column:?}: {value:?} is not a number")]
    NonNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell (truncated).
        value: String,
    },
    /// A feature cell is NaN or infinite.
    #[error(
        "{path}: line {line}: column {column:?}: {value:?} is not finite (NaN and infinity are rejected)"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell (truncated).
        value: String,
    },
    /// A label or contributor cell is empty.
    #[error("{path}: line {line}: column {column:?} is empty")]
    EmptyCell {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// The column's name.
        column: String,
    },
    /// A name, label or cell is longer than [`crate::limits::NAME_BYTES_MAX`].
    #[error(
        "{path}: line {line}: column {column:?}: value is {bytes} bytes, more than the limit of {max}"
    )]
    CellTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line, the header being line 1.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The training files have no data rows.
    #[error("{path}: the training set has no rows")]
    EmptyTrainingSet {
        /// The (first) training file.
        path: PathBuf,
    },
    /// The test file has no data rows.
    #[error("{path}: the test set has no rows")]
    EmptyTestSet {
        /// The test file.
        path: PathBuf,
    },
    /// Train and test (or two training files) disagree on the feature columns.
    #[error(
        "{other_path}: has {other_features} feature columns but {reference_path} has {reference_features}"
    )]
    FeatureCountMismatch {
        /// The first training file.
        reference_path: PathBuf,
        /// Its feature count.
        reference_features: usize,
        /// The file that disagrees.
        other_path: PathBuf,
        /// Its feature count.
        other_features: usize,
    },
    /// Same number of feature columns, different names or order.
    #[error(
        "{other_path}: line 1: feature column {index} is {other:?} but in {reference_path} it is {reference:?}"
    )]
    FeatureNameMismatch {
        /// The first training file.
        reference_path: PathBuf,
        /// The file that disagrees.
        other_path: PathBuf,
        /// 0-based feature index.
        index: usize,
        /// The reference name.
        reference: String,
        /// The other name.
        other: String,
    },
    /// `K` is larger than the number of training rows.
    #[error("K = {k} is larger than the training set ({train_rows} rows)")]
    KTooLarge {
        /// The requested K.
        k: usize,
        /// Training rows.
        train_rows: usize,
    },
    /// A parameter is out of its range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A size limit from [`crate::limits`] was exceeded.
    #[error("{context}: {what} is {value}, more than the limit of {max}")]
    LimitExceeded {
        /// Where (a file, or "training set").
        context: String,
        /// What was counted.
        what: &'static str,
        /// The count.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// Converting contributor values to shares failed.
    #[error(transparent)]
    Shares(#[from] SharesError),
    /// The report file is not a valid report.
    #[error("{path}: not a valuation report: {message}")]
    BadReport {
        /// The report file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Writing the report failed.
    #[error("serialising the report: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Shorthand for results in this crate.
pub type Result<T, E = ValuationError> = std::result::Result<T, E>;

impl ValuationError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}
