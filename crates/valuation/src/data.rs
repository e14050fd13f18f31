//! Reading labelled tables (CSV or Parquet) and assembling them into a training and a test set.
//!
//! A file has named columns (a CSV header row, or a Parquet schema); one column holds the label (any
//! string, or for Parquet an integer, string or boolean), an optional column names the contributor of each
//! row, and every other column is a numeric feature. [`read_table`] picks the reader by extension: `.parquet`
//! (any case) is read by [`read_parquet`], anything else by [`read_csv`]. Both give the same [`Table`] for
//! the same data. While reading, the file is hashed with BLAKE3 so that a report can commit to exactly the
//! bytes it valued.
//!
//! Every rejection names the file and the 1-based line (the header is line 1; for Parquet, the line the row
//! would have in the same table written as CSV, so the first data row is line 2). Limits from
//! [`crate::limits`] are checked while reading, before memory is committed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod parquet_reader;

pub use parquet_reader::{read_parquet, read_parquet_header};

use crate::error::{Result, ValuationError};
use crate::limits;

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps row-major `data` of `rows × cols`.
    ///
    /// # Errors
    ///
    /// [`ValuationError::InvalidParameter`] if `data.len() != rows * cols` or a value is not finite.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ValuationError::invalid(
                "matrix",
                format!(
                    "{} values do not make {rows} rows of {cols} columns",
                    data.len()
                ),
            ));
        }
        if let Some(position) = data.iter().position(|value| !value.is_finite()) {
            return Err(ValuationError::invalid(
                "matrix",
                format!(
                    "value at row {}, column {} is not finite",
                    position / cols.max(1),
                    position % cols.max(1)
                ),
            ));
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    #[must_use]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `index` (panics if out of range).
    #[must_use]
    pub fn row(&self, index: usize) -> &[f64] {
        &self.data[index * self.cols..(index + 1) * self.cols]
    }

    /// All values, row-major.
    #[must_use]
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// A new matrix holding the given rows, in the given order.
    #[must_use]
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &index in indices {
            data.extend_from_slice(self.row(index));
        }
        Self {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// Rows of `self` followed by rows of `other` (same column count required).
    ///
    /// # Errors
    ///
    /// [`ValuationError::InvalidParameter`] if the column counts differ.
    pub fn concat(&self, other: &Self) -> Result<Self> {
        if self.cols != other.cols {
            return Err(ValuationError::invalid(
                "matrix",
                "concatenating matrices of different widths",
            ));
        }
        let mut data = Vec::with_capacity(self.data.len() + other.data.len());
        data.extend_from_slice(&self.data);
        data.extend_from_slice(&other.data);
        Ok(Self {
            rows: self.rows + other.rows,
            cols: self.cols,
            data,
        })
    }
}

/// Which columns of a file (CSV or Parquet) mean what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The label column (required).
    pub label_column: String,
    /// The contributor column, if rows name their contributor.
    pub contributor_column: Option<String>,
}

impl CsvOptions {
    /// Options with only a label column.
    #[must_use]
    pub fn label(label_column: impl Into<String>) -> Self {
        Self {
            label_column: label_column.into(),
            contributor_column: None,
        }
    }
}

/// One file as read: features, labels as strings, optional contributors, and where each row came from.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it came from.
    pub path: PathBuf,
    /// Feature column names, in file order.
    pub feature_names: Vec<String>,
    /// The features, one row per data row.
    pub features: Matrix,
    /// The label of each row (trimmed).
    pub labels: Vec<String>,
    /// The contributor of each row, if a contributor column was given.
    pub contributors: Option<Vec<String>>,
    /// The 1-based line of each row (header = line 1).
    pub lines: Vec<u64>,
    /// BLAKE3 of the file's bytes.
    pub blake3: [u8; 32],
}

impl Table {
    /// Number of data rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// A reader adapter that hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

/// BLAKE3 of a whole file (streamed), checking [`limits::FILE_BYTES_MAX`].
///
/// # Errors
///
/// I/O errors, or the file being too large.
pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let file = open_checked(path, limits::FILE_BYTES_MAX)?;
    hash_open_file(path, &file, limits::FILE_BYTES_MAX)
}

/// BLAKE3 of an open file's first `max` bytes (it is rewound first: clones of a handle share its position).
fn hash_open_file(path: &Path, mut file: &File, max: u64) -> Result<[u8; 32]> {
    file.seek(SeekFrom::Start(0))
        .map_err(|error| ValuationError::io(path, error))?;
    let mut hasher = blake3::Hasher::new();
    let mut reader = BufReader::with_capacity(1 << 20, file.take(max));
    std::io::copy(&mut reader, &mut hasher).map_err(|error| ValuationError::io(path, error))?;
    Ok(*hasher.finalize().as_bytes())
}

pub(crate) fn open_checked(path: &Path, max: u64) -> Result<File> {
    let file = File::open(path).map_err(|error| ValuationError::io(path, error))?;
    let bytes = file
        .metadata()
        .map_err(|error| ValuationError::io(path, error))?
        .len();
    if bytes > max {
        return Err(ValuationError::FileTooLarge {
            path: path.to_owned(),
            bytes,
            max,
        });
    }
    Ok(file)
}

fn truncate_cell(cell: &str) -> String {
    const SHOWN_MAX: usize = 40;
    if cell.len() <= SHOWN_MAX {
        return cell.to_owned();
    }
    let mut end = SHOWN_MAX;
    while !cell.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &cell[..end])
}

fn check_name(path: &Path, line: u64, column: &str, cell: &str) -> Result<()> {
    if cell.is_empty() {
        return Err(ValuationError::EmptyCell {
            path: path.to_owned(),
            line,
            column: column.to_owned(),
        });
    }
    if cell.len() > limits::NAME_BYTES_MAX {
        return Err(ValuationError::CellTooLong {
            path: path.to_owned(),
            line,
            column: column.to_owned(),
            bytes: cell.len(),
            max: limits::NAME_BYTES_MAX,
        });
    }
    Ok(())
}

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet (flat schema; see [`read_parquet`]).
    Parquet,
}

impl TableFormat {
    /// The format of `path` by its extension: `.parquet` (any case) is Parquet, anything else is CSV.
    #[must_use]
    pub fn of_path(path: &Path) -> Self {
        match path.extension() {
            Some(extension) if extension.eq_ignore_ascii_case("parquet") => Self::Parquet,
            _ => Self::Csv,
        }
    }
}

/// Reads one input file, CSV or Parquet by its extension ([`TableFormat::of_path`]).
///
/// # Errors
///
/// As [`read_csv`] or [`read_parquet`].
pub fn read_table(path: &Path, options: &CsvOptions) -> Result<Table> {
    match TableFormat::of_path(path) {
        TableFormat::Csv => read_csv(path, options),
        TableFormat::Parquet => read_parquet(path, options),
    }
}

/// The column names of an input file, CSV or Parquet by its extension ([`TableFormat::of_path`]).
///
/// # Errors
///
/// As [`read_header`] or [`read_parquet_header`].
pub fn read_table_header(path: &Path) -> Result<Vec<String>> {
    match TableFormat::of_path(path) {
        TableFormat::Csv => read_header(path),
        TableFormat::Parquet => read_parquet_header(path),
    }
}

/// Checks a table's column names (CSV header or Parquet schema): each a valid name, none twice,
/// at most the feature limit plus the label and contributor columns. Returns each name's column
/// index.
pub(crate) fn check_header<'a>(
    path: &Path,
    header: &'a [String],
) -> Result<BTreeMap<&'a str, usize>> {
    let mut seen = BTreeMap::new();
    for (index, name) in header.iter().enumerate() {
        check_name(path, 1, &format!("#{}", index + 1), name)?;
        if seen.insert(name.as_str(), index).is_some() {
            return Err(ValuationError::DuplicateColumn {
                path: path.to_owned(),
                column: name.clone(),
            });
        }
    }
    if header.len() > limits::FEATURES_MAX + 2 {
        return Err(ValuationError::LimitExceeded {
            context: path.display().to_string(),
            what: "number of columns",
            value: header.len(),
            max: limits::FEATURES_MAX + 2,
        });
    }
    Ok(seen)
}

/// The header cells of a CSV file (trimmed).
///
/// # Errors
///
/// I/O errors, malformed CSV, or an empty file.
pub fn read_header(path: &Path) -> Result<Vec<String>> {
    let file = open_checked(path, limits::FILE_BYTES_MAX)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let mut record = csv::StringRecord::new();
    let found = reader
        .read_record(&mut record)
        .map_err(|error| ValuationError::Csv {
            path: path.to_owned(),
            line: error.position().map_or(1, csv::Position::line),
            message: error.to_string(),
        })?;
    if !found {
        return Err(ValuationError::MissingHeader {
            path: path.to_owned(),
        });
    }
    Ok(record.iter().map(|cell| cell.trim().to_owned()).collect())
}

/// Reads one CSV file.
///
/// # Errors
///
/// Every malformed input is a [`ValuationError`] naming the file and line: missing label or contributor
/// column, ragged rows, non-numeric or non-finite features, empty labels, files or counts over the limits.
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Table> {
    let file = open_checked(path, limits::FILE_BYTES_MAX)?;
    let hashing = HashingReader {
        inner: BufReader::with_capacity(1 << 20, file.take(limits::FILE_BYTES_MAX)),
        hasher: blake3::Hasher::new(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(hashing);
    let csv_error = |error: csv::Error| {
        let line = error.position().map_or(0, csv::Position::line);
        ValuationError::Csv {
            path: path.to_owned(),
            line,
            message: error.to_string(),
        }
    };

    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record).map_err(csv_error)? {
        return Err(ValuationError::MissingHeader {
            path: path.to_owned(),
        });
    }
    let header: Vec<String> = record.iter().map(|cell| cell.trim().to_owned()).collect();
    let seen = check_header(path, &header)?;
    let label_index =
        *seen
            .get(options.label_column.as_str())
            .ok_or_else(|| ValuationError::MissingColumn {
                path: path.to_owned(),
                column: options.label_column.clone(),
            })?;
    let contributor_index = match &options.contributor_column {
        Some(column) => {
            Some(
                *seen
                    .get(column.as_str())
                    .ok_or_else(|| ValuationError::MissingColumn {
                        path: path.to_owned(),
                        column: column.clone(),
                    })?,
            )
        }
        None => None,
    };
    let feature_indices: Vec<usize> = (0..header.len())
        .filter(|&index| index != label_index && Some(index) != contributor_index)
        .collect();
    if feature_indices.is_empty() {
        return Err(ValuationError::NoFeatures {
            path: path.to_owned(),
        });
    }
    let feature_names: Vec<String> = feature_indices
        .iter()
        .map(|&index| header[index].clone())
        .collect();
    let cols = feature_indices.len();

    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut contributors = contributor_index.map(|_| Vec::new());
    let mut lines = Vec::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        // A completely empty line is skipped by the csv crate; a line of only commas is a ragged row.
        if record.len() != header.len() {
            return Err(ValuationError::RaggedRow {
                path: path.to_owned(),
                line,
                expected: header.len(),
                found: record.len(),
            });
        }
        if labels.len() >= limits::ROWS_MAX {
            return Err(ValuationError::LimitExceeded {
                context: path.display().to_string(),
                what: "number of rows",
                value: labels.len() + 1,
                max: limits::ROWS_MAX,
            });
        }
        if data.len() + cols > limits::CELLS_MAX {
            return Err(ValuationError::LimitExceeded {
                context: path.display().to_string(),
                what: "number of feature cells",
                value: data.len() + cols,
                max: limits::CELLS_MAX,
            });
        }
        for &index in &feature_indices {
            let cell = record.get(index).unwrap_or_default().trim();
            let value: f64 = cell.parse().map_err(|_| ValuationError::NonNumeric {
                path: path.to_owned(),
                line,
                column: header[index].clone(),
                value: truncate_cell(cell),
            })?;
            if !value.is_finite() {
                return Err(ValuationError::NonFinite {
                    path: path.to_owned(),
                    line,
                    column: header[index].clone(),
                    value: truncate_cell(cell),
                });
            }
            // Normalise -0.0 to 0.0 so equal rows hash equal.
            data.push(if value == 0.0 { 0.0 } else { value });
        }
        let label = record.get(label_index).unwrap_or_default().trim();
        check_name(path, line, &header[label_index], label)?;
        labels.push(label.to_owned());
        if let (Some(index), Some(list)) = (contributor_index, contributors.as_mut()) {
            let name = record.get(index).unwrap_or_default().trim();
            check_name(path, line, &header[index], name)?;
            list.push(name.to_owned());
        }
        lines.push(line);
    }
    let mut hashing = reader.into_inner();
    // Drain anything the CSV reader left (it reads to EOF on success; this is a guard).
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|error| ValuationError::io(path, error))?;
    let blake3 = *hashing.hasher.finalize().as_bytes();
    let rows = labels.len();
    Ok(Table {
        path: path.to_owned(),
        feature_names,
        features: Matrix { rows, cols, data },
        labels,
        contributors,
        lines,
        blake3,
    })
}

/// Where a training row came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOrigin {
    /// Index of the training file (in the order given).
    pub file: usize,
    /// 1-based line in that file (header = line 1).
    pub line: u64,
}

/// Training and test sets with labels mapped to class ids, ready for valuation.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Training features, all training files concatenated in order.
    pub train: Matrix,
    /// Training class ids.
    pub train_labels: Vec<u32>,
    /// Test features.
    pub test: Matrix,
    /// Test class ids.
    pub test_labels: Vec<u32>,
    /// Class names; class id `c` is `classes[c]` (sorted, so ids do not depend on row order).
    pub classes: Vec<String>,
    /// The contributor of each training row, if known (column, or one contributor per file).
    pub contributors: Option<Vec<String>>,
    /// Where each training row came from.
    pub origins: Vec<RowOrigin>,
}

impl Problem {
    /// Number of classes seen in training and test labels together.
    #[must_use]
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Assembles tables into a problem.
    ///
    /// Contributors come from the tables' contributor column if they have one; otherwise, when there is more
    /// than one training file, each file is one contributor named by its file stem; with a single file and
    /// no column there are no contributors.
    ///
    /// # Errors
    ///
    /// Empty training or test sets, differing feature columns, too many classes or contributors.
    pub fn from_tables(train: &[Table], test: &Table) -> Result<Self> {
        let first = train
            .first()
            .ok_or_else(|| ValuationError::invalid("train", "no training files"))?;
        if train.len() > limits::FILES_MAX {
            return Err(ValuationError::LimitExceeded {
                context: "training set".into(),
                what: "number of files",
                value: train.len(),
                max: limits::FILES_MAX,
            });
        }
        for table in train.iter().chain(std::iter::once(test)) {
            check_same_features(first, table)?;
        }
        let train_rows: usize = train.iter().map(Table::rows).sum();
        if train_rows == 0 {
            return Err(ValuationError::EmptyTrainingSet {
                path: first.path.clone(),
            });
        }
        if train_rows > limits::ROWS_MAX {
            return Err(ValuationError::LimitExceeded {
                context: "training set".into(),
                what: "number of rows",
                value: train_rows,
                max: limits::ROWS_MAX,
            });
        }
        if test.rows() == 0 {
            return Err(ValuationError::EmptyTestSet {
                path: test.path.clone(),
            });
        }
        if test.rows() > limits::TEST_ROWS_MAX {
            return Err(ValuationError::LimitExceeded {
                context: test.path.display().to_string(),
                what: "number of test rows",
                value: test.rows(),
                max: limits::TEST_ROWS_MAX,
            });
        }
        let mut names: BTreeMap<&str, u32> = BTreeMap::new();
        for label in train
            .iter()
            .flat_map(|table| table.labels.iter())
            .chain(test.labels.iter())
        {
            names.insert(label.as_str(), 0);
        }
        if names.len() > limits::CLASSES_MAX {
            return Err(ValuationError::LimitExceeded {
                context: "training and test sets".into(),
                what: "number of classes",
                value: names.len(),
                max: limits::CLASSES_MAX,
            });
        }
        for (id, value) in names.values_mut().enumerate() {
            *value = id as u32;
        }
        let classes: Vec<String> = names.keys().map(|name| (*name).to_owned()).collect();
        let to_ids = |labels: &[String]| -> Vec<u32> {
            labels.iter().map(|label| names[label.as_str()]).collect()
        };

        let mut data = Vec::with_capacity(train_rows * first.features.cols());
        let mut train_labels = Vec::with_capacity(train_rows);
        let mut origins = Vec::with_capacity(train_rows);
        for (file, table) in train.iter().enumerate() {
            data.extend_from_slice(table.features.as_slice());
            train_labels.extend(to_ids(&table.labels));
            origins.extend(table.lines.iter().map(|&line| RowOrigin { file, line }));
        }
        let any_column = train.iter().any(|table| table.contributors.is_some());
        let contributors = if any_column {
            let mut all = Vec::with_capacity(train_rows);
            for table in train {
                match &table.contributors {
                    Some(list) => all.extend(list.iter().cloned()),
                    None => {
                        return Err(ValuationError::invalid(
                            "contributor",
                            format!("{} has no contributor column", table.path.display()),
                        ));
                    }
                }
            }
            Some(all)
        } else if train.len() > 1 {
            let mut all = Vec::with_capacity(train_rows);
            for table in train {
                let name = file_contributor_name(&table.path);
                all.extend(std::iter::repeat_n(name, table.rows()));
            }
            Some(all)
        } else {
            None
        };
        if let Some(list) = &contributors {
            let distinct: std::collections::BTreeSet<&String> = list.iter().collect();
            if distinct.len() > limits::CONTRIBUTORS_MAX {
                return Err(ValuationError::LimitExceeded {
                    context: "training set".into(),
                    what: "number of contributors",
                    value: distinct.len(),
                    max: limits::CONTRIBUTORS_MAX,
                });
            }
        }
        Ok(Self {
            train: Matrix {
                rows: train_rows,
                cols: first.features.cols(),
                data,
            },
            train_labels,
            test: test.features.clone(),
            test_labels: to_ids(&test.labels),
            classes,
            contributors,
            origins,
        })
    }
}

/// The contributor name for a file without a contributor column: its file stem.
#[must_use]
pub fn file_contributor_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

fn check_same_features(reference: &Table, other: &Table) -> Result<()> {
    if reference.feature_names.len() != other.feature_names.len() {
        return Err(ValuationError::FeatureCountMismatch {
            reference_path: reference.path.clone(),
            reference_features: reference.feature_names.len(),
            other_path: other.path.clone(),
            other_features: other.feature_names.len(),
        });
    }
    for (index, (a, b)) in reference
        .feature_names
        .iter()
        .zip(&other.feature_names)
        .enumerate()
    {
        if a != b {
            return Err(ValuationError::FeatureNameMismatch {
                reference_path: reference.path.clone(),
                other_path: other.path.clone(),
                index,
                reference: a.clone(),
                other: b.clone(),
            });
        }
    }
    Ok(())
}
