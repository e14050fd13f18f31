//! Reading Parquet files into a [`Table`], with the same meaning of columns as CSV.
//!
//! Only flat files are read: every top-level field must be a primitive, non-repeated column (nested groups,
//! lists and maps are rejected with the column's name). Types:
//!
//! * **Features**: `INT32` and `INT64` (signed or unsigned, any bit width), `DECIMAL` stored in `INT32` or
//!   `INT64`, `FLOAT` and `DOUBLE`, all converted to `f64` (`FLOAT` widens exactly; integers beyond 2^53
//!   and decimals round to the nearest `f64`, as parsing the same number from CSV would). Dates, times,
//!   timestamps, booleans and strings are not numbers and are rejected.
//! * **Label**: an integer (written in decimal, so `INT64` 3 is the label `"3"`, as in CSV), a string
//!   (`BYTE_ARRAY`, UTF-8, trimmed like CSV cells) or a boolean (`"true"`/`"false"`). Floating-point labels
//!   are rejected: they are not classes.
//! * **Contributor**: an integer or a string.
//!
//! A null cell is treated like an empty CSV cell ([`ValuationError::EmptyCell`]). Row numbers are reported as
//! the line the row would have in the same table written as CSV: the first data row is line 2. So a CSV file
//! and a Parquet file holding the same doubles and labels give equal [`Table`]s (apart from path and hash)
//! and equal reports.
//!
//! Bad files never panic the caller: the footer's framing and every column chunk's byte range are checked
//! before the decoder uses them, reads are bounded by the file's length, every count is checked against
//! [`crate::limits`] before it is used, and the decoder runs under [`std::panic::catch_unwind`], because
//! `parquet` still panics on some corrupt pages (a dictionary-encoded page without a dictionary page, in
//! 60.1). Such a panic is reported as [`ValuationError::Parquet`] naming the file; the default panic hook
//! still prints its message to stderr. This needs `panic = "unwind"` (the default).
//!
//! The file is read twice: once to hash it (BLAKE3 of its bytes, the same root [`super::hash_file`] gives)
//! and once, through the same open handle, to decode it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use bytes::Bytes;
use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as PhysicalType};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, FileReader, Length};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::schema::types::ColumnDescriptor;

use super::{CsvOptions, Matrix, Table, check_header, check_name, hash_open_file, open_checked};
use crate::error::{Result, ValuationError};
use crate::limits;

/// The 4-byte magic at the start and end of every (unencrypted) Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";

/// The magic at the end of a Parquet file with an encrypted footer (not supported).
const MAGIC_ENCRYPTED: &[u8; 4] = b"PARE";

/// Smallest possible Parquet file: leading magic, footer length, trailing magic.
const FILE_BYTES_MIN: u64 = 12;

/// Records decoded per call into the column reader (bounds the per-column buffers).
const BATCH_ROWS: usize = 8_192;

fn malformed(path: &Path, message: impl std::fmt::Display) -> ValuationError {
    ValuationError::Parquet {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// A decoder error in words, without the "Parquet error: " prefix (the message already says Parquet).
fn plain(error: &ParquetError) -> String {
    let text = error.to_string();
    match text.strip_prefix("Parquet error: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// An open file of fixed length, read with positioned reads that never go past that length (the decoder
/// would otherwise allocate whatever size a corrupt page header claims before finding the file too short).
struct SizedFile {
    file: File,
    len: u64,
}

impl SizedFile {
    fn at(&self, start: u64) -> parquet::errors::Result<File> {
        if start > self.len {
            return Err(ParquetError::EOF(format!(
                "offset {start} is past the end of the file ({} bytes)",
                self.len
            )));
        }
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        Ok(file)
    }
}

impl Length for SizedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SizedFile {
    type T = BufReader<std::io::Take<File>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let file = self.at(start)?;
        Ok(BufReader::new(file.take(self.len - start)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let fits = u64::try_from(length)
            .ok()
            .and_then(|length| start.checked_add(length))
            .is_some_and(|end| end <= self.len);
        if !fits {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at offset {start} go past the end of the file ({} bytes)",
                self.len
            )));
        }
        let mut file = self.at(start)?;
        let mut buffer = vec![0; length];
        file.read_exact(&mut buffer)?;
        Ok(Bytes::from(buffer))
    }
}

/// Opens the file, checks its size and the footer's framing, and returns it with its length.
fn open_parquet(path: &Path) -> Result<SizedFile> {
    let file = open_checked(path, limits::FILE_BYTES_MAX)?;
    let len = file
        .metadata()
        .map_err(|error| ValuationError::io(path, error))?
        .len();
    if len < FILE_BYTES_MIN {
        return Err(malformed(
            path,
            format!("the file is {len} bytes, too short to be Parquet"),
        ));
    }
    let sized = SizedFile { file, len };
    let read = |start: u64, buffer: &mut [u8]| -> Result<()> {
        let mut file = sized
            .at(start)
            .map_err(|error| malformed(path, plain(&error)))?;
        file.read_exact(buffer)
            .map_err(|error| ValuationError::io(path, error))
    };
    let mut head = [0_u8; 4];
    read(0, &mut head)?;
    let mut tail = [0_u8; 8];
    read(len - 8, &mut tail)?;
    if &tail[4..] == MAGIC_ENCRYPTED {
        return Err(malformed(path, "encrypted Parquet files are not supported"));
    }
    if &head != MAGIC || &tail[4..] != MAGIC {
        return Err(malformed(
            path,
            "not a Parquet file (no PAR1 magic at the start and end)",
        ));
    }
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer > limits::PARQUET_FOOTER_BYTES_MAX {
        return Err(ValuationError::LimitExceeded {
            context: path.display().to_string(),
            what: "Parquet footer size in bytes",
            value: usize::try_from(footer).unwrap_or(usize::MAX),
            max: usize::try_from(limits::PARQUET_FOOTER_BYTES_MAX).unwrap_or(usize::MAX),
        });
    }
    if footer + FILE_BYTES_MIN > len {
        return Err(malformed(
            path,
            format!(
                "the footer claims {footer} bytes but the file is only {len} bytes (truncated?)"
            ),
        ));
    }
    Ok(sized)
}

/// Runs the decoder, turning a panic inside it into an error naming the file.
fn guarded<T>(path: &Path, work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown reason".to_owned());
        Err(malformed(path, format!("the decoder failed: {reason}")))
    })
}

fn open_reader(path: &Path, sized: SizedFile) -> Result<SerializedFileReader<SizedFile>> {
    SerializedFileReader::new(sized).map_err(|error| malformed(path, plain(&error)))
}

/// The top-level column names (trimmed, like CSV header cells).
fn column_names(reader: &SerializedFileReader<SizedFile>) -> Vec<String> {
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|field| field.name().trim().to_owned())
        .collect()
}

/// The column names of a Parquet file (its top-level fields, trimmed).
///
/// # Errors
///
/// I/O errors, a file over the size limit, or a file that is not Parquet.
pub fn read_parquet_header(path: &Path) -> Result<Vec<String>> {
    let sized = open_parquet(path)?;
    guarded(path, || Ok(column_names(&open_reader(path, sized)?)))
}

/// How a column's values are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    /// `INT32` or `INT64`, signed or not.
    Integer {
        unsigned: bool,
    },
    /// `INT32` or `INT64` holding `value / 10^scale`.
    Decimal {
        scale: u32,
    },
    /// `FLOAT` or `DOUBLE`.
    Float,
    /// `BYTE_ARRAY` holding text.
    Text,
}

/// What a column is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Feature number `index` (0-based, in file order).
    Feature(usize),
    Label,
    Contributor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Feature(_) => "feature",
            Self::Label => "label",
            Self::Contributor => "contributor",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Feature(_) => "integers, decimals or floating-point numbers",
            Self::Label => "integers, strings or booleans",
            Self::Contributor => "integers or strings",
        }
    }

    fn accepts(self, kind: Kind) -> bool {
        match self {
            Self::Feature(_) => matches!(
                kind,
                Kind::Integer { .. } | Kind::Decimal { .. } | Kind::Float
            ),
            Self::Label => matches!(kind, Kind::Integer { .. } | Kind::Text | Kind::Bool),
            Self::Contributor => matches!(kind, Kind::Integer { .. } | Kind::Text),
        }
    }
}

/// The column's type in words, for errors.
fn describe(column: &ColumnDescriptor) -> String {
    match (column.logical_type_ref(), column.converted_type()) {
        (Some(logical), _) => format!("{:?} ({logical:?})", column.physical_type()),
        (None, ConvertedType::NONE) => format!("{:?}", column.physical_type()),
        (None, converted) => format!("{:?} ({converted:?})", column.physical_type()),
    }
}

/// How to read a column, or `None` if it holds something that is neither number, text nor boolean.
fn classify(column: &ColumnDescriptor) -> Option<Kind> {
    let logical = column.logical_type_ref();
    let converted = column.converted_type();
    match column.physical_type() {
        PhysicalType::BOOLEAN => {
            (logical.is_none() && converted == ConvertedType::NONE).then_some(Kind::Bool)
        }
        PhysicalType::INT32 | PhysicalType::INT64 => match (logical, converted) {
            (Some(LogicalType::Integer(integer)), _) => Some(Kind::Integer {
                unsigned: !integer.is_signed,
            }),
            (Some(LogicalType::Decimal(decimal)), _) => decimal_kind(decimal.scale),
            (Some(_), _) => None,
            (None, ConvertedType::NONE) => Some(Kind::Integer { unsigned: false }),
            (
                None,
                ConvertedType::INT_8
                | ConvertedType::INT_16
                | ConvertedType::INT_32
                | ConvertedType::INT_64,
            ) => Some(Kind::Integer { unsigned: false }),
            (
                None,
                ConvertedType::UINT_8
                | ConvertedType::UINT_16
                | ConvertedType::UINT_32
                | ConvertedType::UINT_64,
            ) => Some(Kind::Integer { unsigned: true }),
            (None, ConvertedType::DECIMAL) => decimal_kind(column.type_scale()),
            (None, _) => None,
        },
        PhysicalType::FLOAT | PhysicalType::DOUBLE => {
            (logical.is_none() && converted == ConvertedType::NONE).then_some(Kind::Float)
        }
        PhysicalType::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _)
            | (None, ConvertedType::NONE | ConvertedType::UTF8 | ConvertedType::ENUM)
            | (None, ConvertedType::JSON) => Some(Kind::Text),
            _ => None,
        },
        PhysicalType::INT96 | PhysicalType::FIXED_LEN_BYTE_ARRAY => None,
    }
}

fn decimal_kind(scale: i32) -> Option<Kind> {
    // Parquet decimals have 0 <= scale <= precision <= 38.
    u32::try_from(scale)
        .ok()
        .filter(|&scale| scale <= 38)
        .map(|scale| Kind::Decimal { scale })
}

/// One decoded cell, before it is turned into a feature or a name.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Signed(i64),
    Unsigned(u64),
    Decimal(i64, u32),
    Float(f64),
    Bool(bool),
    Bytes(&'a parquet::data_type::ByteArray),
}

fn bytes_value(value: &parquet::data_type::ByteArray) -> Value<'_> {
    Value::Bytes(value)
}

/// Exact powers of ten representable as `f64`.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `unscaled / 10^scale`, correctly rounded (as parsing the decimal text would be).
fn decimal_to_f64(unscaled: i64, scale: u32) -> f64 {
    const EXACT: u64 = 1 << 53;
    let power = usize::try_from(scale)
        .ok()
        .and_then(|scale| POWERS_OF_TEN.get(scale));
    match power {
        // Both operands exact: one correctly rounded division.
        Some(power) if unscaled.unsigned_abs() <= EXACT => unscaled as f64 / power,
        _ => format!("{unscaled}e-{scale}").parse().unwrap_or(f64::NAN),
    }
}

/// A column of the file with its role.
struct Column {
    name: String,
    index: usize,
    role: Role,
    kind: Kind,
}

/// Where decoded cells go.
struct Sink<'a> {
    path: &'a Path,
    /// Rows before this row group (0-based index of its first row in the file).
    first_row: usize,
    cols: usize,
    /// This row group's features, row-major.
    features: &'a mut [f64],
    labels: &'a mut Vec<String>,
    contributors: Option<&'a mut Vec<String>>,
}

impl Sink<'_> {
    fn line(&self, row: usize) -> u64 {
        // The line the row would have in a CSV file with a header (the first data row is line 2).
        (self.first_row + row) as u64 + 2
    }

    fn put(&mut self, column: &Column, row: usize, value: Option<Value<'_>>) -> Result<()> {
        let line = self.line(row);
        let Some(value) = value else {
            return Err(ValuationError::EmptyCell {
                path: self.path.to_owned(),
                line,
                column: column.name.clone(),
            });
        };
        match column.role {
            Role::Feature(feature) => {
                let number = match value {
                    Value::Signed(value) => value as f64,
                    Value::Unsigned(value) => value as f64,
                    Value::Decimal(value, scale) => decimal_to_f64(value, scale),
                    Value::Float(value) => value,
                    Value::Bool(_) | Value::Bytes(_) => {
                        return Err(self.type_error(column, "a non-numeric value"));
                    }
                };
                if !number.is_finite() {
                    return Err(ValuationError::NonFinite {
                        path: self.path.to_owned(),
                        line,
                        column: column.name.clone(),
                        value: number.to_string(),
                    });
                }
                let cell = self
                    .features
                    .get_mut(row * self.cols + feature)
                    .ok_or_else(|| malformed(self.path, "row index out of range"))?;
                // Normalise -0.0 to 0.0 so equal rows hash equal (as the CSV reader does).
                *cell = if number == 0.0 { 0.0 } else { number };
            }
            Role::Label | Role::Contributor => {
                let text = match value {
                    Value::Signed(value) => value.to_string(),
                    Value::Unsigned(value) => value.to_string(),
                    Value::Bool(value) => value.to_string(),
                    Value::Bytes(bytes) => bytes
                        .as_utf8()
                        .map_err(|_| ValuationError::InvalidUtf8 {
                            path: self.path.to_owned(),
                            line,
                            column: column.name.clone(),
                        })?
                        .trim()
                        .to_owned(),
                    Value::Decimal(..) | Value::Float(_) => {
                        return Err(self.type_error(column, "a number"));
                    }
                };
                check_name(self.path, line, &column.name, &text)?;
                let list = if column.role == Role::Label {
                    &mut *self.labels
                } else {
                    self.contributors
                        .as_deref_mut()
                        .ok_or_else(|| malformed(self.path, "no contributor list"))?
                };
                if list.len() != row {
                    return Err(malformed(self.path, "rows out of order"));
                }
                list.push(text);
            }
        }
        Ok(())
    }

    fn type_error(&self, column: &Column, found: &str) -> ValuationError {
        ValuationError::ParquetColumnType {
            path: self.path.to_owned(),
            column: column.name.clone(),
            role: column.role.name(),
            found: found.to_owned(),
            expected: column.role.expected(),
        }
    }
}

/// Decodes the `rows` records of one column chunk, calling `put` for each (with `None` for a null).
fn decode_chunk<T: DataType>(
    path: &Path,
    column: &Column,
    mut reader: ColumnReaderImpl<T>,
    rows: usize,
    max_level: i16,
    convert: impl for<'v> Fn(&'v T::T) -> Value<'v>,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let context = |error: ParquetError| {
        malformed(path, format!("column {:?}: {}", column.name, plain(&error)))
    };
    let mut levels: Vec<i16> = Vec::with_capacity(BATCH_ROWS.min(rows));
    let mut values: Vec<T::T> = Vec::with_capacity(BATCH_ROWS.min(rows));
    let mut row = 0;
    while row < rows {
        levels.clear();
        values.clear();
        let wanted = BATCH_ROWS.min(rows - row);
        let (records, _, _) = reader
            .read_records(wanted, Some(&mut levels), None, &mut values)
            .map_err(context)?;
        if records == 0 || records > wanted {
            return Err(malformed(
                path,
                format!(
                    "column {:?} has {row} values in a row group of {rows} rows",
                    column.name
                ),
            ));
        }
        if max_level > 0 {
            if levels.len() != records {
                return Err(malformed(
                    path,
                    format!(
                        "column {:?}: definition levels do not match rows",
                        column.name
                    ),
                ));
            }
            let mut next = values.iter();
            for (offset, &level) in levels.iter().enumerate() {
                let value = if level >= max_level {
                    Some(next.next().ok_or_else(|| {
                        malformed(path, format!("column {:?}: missing values", column.name))
                    })?)
                } else {
                    None
                };
                sink.put(column, row + offset, value.map(&convert))?;
            }
        } else {
            if values.len() != records {
                return Err(malformed(
                    path,
                    format!("column {:?}: values do not match rows", column.name),
                ));
            }
            for (offset, value) in values.iter().enumerate() {
                sink.put(column, row + offset, Some(convert(value)))?;
            }
        }
        row += records;
    }
    levels.clear();
    values.clear();
    let (extra, _, _) = reader
        .read_records(1, Some(&mut levels), None, &mut values)
        .map_err(context)?;
    if extra != 0 {
        return Err(malformed(
            path,
            format!(
                "column {:?} has more values than its row group's {rows} rows",
                column.name
            ),
        ));
    }
    Ok(())
}

fn decode_column(
    path: &Path,
    column: &Column,
    reader: ColumnReader,
    rows: usize,
    max_level: i16,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let kind = column.kind;
    match reader {
        ColumnReader::BoolColumnReader(reader) => decode_chunk(
            path,
            column,
            reader,
            rows,
            max_level,
            |&v| Value::Bool(v),
            sink,
        ),
        ColumnReader::Int32ColumnReader(reader) => decode_chunk(
            path,
            column,
            reader,
            rows,
            max_level,
            |&v| match kind {
                // Unsigned 32-bit values are stored in INT32 by their bit pattern.
                Kind::Integer { unsigned: true } => Value::Unsigned(u64::from(v as u32)),
                Kind::Decimal { scale } => Value::Decimal(i64::from(v), scale),
                _ => Value::Signed(i64::from(v)),
            },
            sink,
        ),
        ColumnReader::Int64ColumnReader(reader) => decode_chunk(
            path,
            column,
            reader,
            rows,
            max_level,
            |&v| match kind {
                Kind::Integer { unsigned: true } => Value::Unsigned(v as u64),
                Kind::Decimal { scale } => Value::Decimal(v, scale),
                _ => Value::Signed(v),
            },
            sink,
        ),
        ColumnReader::FloatColumnReader(reader) => decode_chunk(
            path,
            column,
            reader,
            rows,
            max_level,
            |&v| Value::Float(f64::from(v)),
            sink,
        ),
        ColumnReader::DoubleColumnReader(reader) => decode_chunk(
            path,
            column,
            reader,
            rows,
            max_level,
            |&v| Value::Float(v),
            sink,
        ),
        ColumnReader::ByteArrayColumnReader(reader) => {
            decode_chunk(path, column, reader, rows, max_level, bytes_value, sink)
        }
        ColumnReader::Int96ColumnReader(_) | ColumnReader::FixedLenByteArrayColumnReader(_) => {
            Err(sink.type_error(column, "an unsupported physical type"))
        }
    }
}

/// Reads one Parquet file, with the same column meanings, checks and errors as [`super::read_csv`].
///
/// # Errors
///
/// Every malformed input is a [`ValuationError`] naming the file (and, for a bad cell, the row as a CSV line
/// number): not Parquet or corrupt ([`ValuationError::Parquet`]), a column of the wrong type
/// ([`ValuationError::ParquetColumnType`]), missing label or contributor column, null or non-finite
/// features, empty labels, files or counts over the limits.
pub fn read_parquet(path: &Path, options: &CsvOptions) -> Result<Table> {
    let sized = open_parquet(path)?;
    let blake3 = hash_open_file(path, &sized.file, sized.len)?;
    guarded(path, || decode(path, sized, options, blake3))
}

fn decode(path: &Path, sized: SizedFile, options: &CsvOptions, blake3: [u8; 32]) -> Result<Table> {
    let file_len = sized.len;
    let reader = open_reader(path, sized)?;
    let metadata = reader.metadata();
    let schema = metadata.file_metadata().schema_descr();
    let header = column_names(&reader);

    // The header, checked as the CSV reader checks it.
    let seen = check_header(path, &header)?;
    let find = |column: &String| {
        seen.get(column.as_str())
            .copied()
            .ok_or_else(|| ValuationError::MissingColumn {
                path: path.to_owned(),
                column: column.clone(),
            })
    };
    let label_index = find(&options.label_column)?;
    let contributor_index = options.contributor_column.as_ref().map(find).transpose()?;

    // Every top-level field must be one flat column, so field `i` is leaf column `i`.
    let fields = schema.root_schema().get_fields();
    for (index, field) in fields.iter().enumerate() {
        let flat = field.is_primitive()
            && !(field.get_basic_info().has_repetition()
                && field.get_basic_info().repetition() == Repetition::REPEATED);
        if !flat {
            let role = if index == label_index {
                Role::Label
            } else if Some(index) == contributor_index {
                Role::Contributor
            } else {
                Role::Feature(0)
            };
            return Err(ValuationError::ParquetColumnType {
                path: path.to_owned(),
                column: header[index].clone(),
                role: role.name(),
                found: if field.is_primitive() {
                    "a repeated field".to_owned()
                } else {
                    "a nested group (struct, list or map)".to_owned()
                },
                expected: role.expected(),
            });
        }
    }
    if schema.num_columns() != fields.len() {
        return Err(malformed(
            path,
            "the schema's leaves do not match its fields",
        ));
    }

    let mut columns = Vec::with_capacity(header.len());
    let mut feature_names = Vec::new();
    for (index, name) in header.iter().enumerate() {
        let role = if index == label_index {
            Role::Label
        } else if Some(index) == contributor_index {
            Role::Contributor
        } else {
            feature_names.push(name.clone());
            Role::Feature(feature_names.len() - 1)
        };
        let descriptor = schema.column(index);
        let kind = classify(&descriptor)
            .filter(|&kind| role.accepts(kind))
            .ok_or_else(|| ValuationError::ParquetColumnType {
                path: path.to_owned(),
                column: name.clone(),
                role: role.name(),
                found: describe(&descriptor),
                expected: role.expected(),
            })?;
        columns.push(Column {
            name: name.clone(),
            index,
            role,
            kind,
        });
    }
    if feature_names.is_empty() {
        return Err(ValuationError::NoFeatures {
            path: path.to_owned(),
        });
    }
    let cols = feature_names.len();

    // Counts from the footer, checked against the limits before anything is decoded or allocated.
    let groups = metadata.num_row_groups();
    if groups > limits::PARQUET_ROW_GROUPS_MAX {
        return Err(ValuationError::LimitExceeded {
            context: path.display().to_string(),
            what: "number of Parquet row groups",
            value: groups,
            max: limits::PARQUET_ROW_GROUPS_MAX,
        });
    }
    let mut group_rows = Vec::with_capacity(groups);
    let mut total_rows: usize = 0;
    for group in metadata.row_groups() {
        if group.num_columns() != header.len() {
            return Err(malformed(
                path,
                format!(
                    "a row group has {} columns, the schema {}",
                    group.num_columns(),
                    header.len()
                ),
            ));
        }
        // The decoder asserts (panics) on negative offsets; check every chunk lies inside the file.
        for (chunk, name) in group.columns().iter().zip(&header) {
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or_else(|| chunk.data_page_offset());
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(chunk.compressed_size()).ok())
                .and_then(|(start, len)| start.checked_add(len))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(malformed(
                    path,
                    format!("column {name:?}: a column chunk lies outside the file"),
                ));
            }
        }
        let rows = usize::try_from(group.num_rows())
            .map_err(|_| malformed(path, "a row group has a negative row count"))?;
        total_rows = total_rows.saturating_add(rows);
        if total_rows > limits::ROWS_MAX {
            return Err(ValuationError::LimitExceeded {
                context: path.display().to_string(),
                what: "number of rows",
                value: total_rows,
                max: limits::ROWS_MAX,
            });
        }
        group_rows.push(rows);
    }
    let cells = total_rows.saturating_mul(cols);
    if cells > limits::CELLS_MAX {
        return Err(ValuationError::LimitExceeded {
            context: path.display().to_string(),
            what: "number of feature cells",
            value: cells,
            max: limits::CELLS_MAX,
        });
    }

    let mut data = vec![0.0; cells];
    let mut labels = Vec::with_capacity(total_rows.min(BATCH_ROWS));
    let mut contributors = contributor_index.map(|_| Vec::new());
    let mut first_row = 0;
    for (group, &rows) in group_rows.iter().enumerate() {
        let group_reader = reader
            .get_row_group(group)
            .map_err(|error| malformed(path, format!("row group {group}: {}", plain(&error))))?;
        let mut group_labels = Vec::with_capacity(rows.min(BATCH_ROWS));
        let mut group_contributors = contributors.as_ref().map(|_| Vec::new());
        let mut sink = Sink {
            path,
            first_row,
            cols,
            features: data
                .get_mut(first_row * cols..(first_row + rows) * cols)
                .ok_or_else(|| malformed(path, "row counts out of range"))?,
            labels: &mut group_labels,
            contributors: group_contributors.as_mut(),
        };
        for column in &columns {
            let column_reader = group_reader
                .get_column_reader(column.index)
                .map_err(|error| {
                    malformed(
                        path,
                        format!(
                            "row group {group}, column {:?}: {}",
                            column.name,
                            plain(&error)
                        ),
                    )
                })?;
            let max_level = schema.column(column.index).max_def_level();
            decode_column(path, column, column_reader, rows, max_level, &mut sink)?;
        }
        labels.append(&mut group_labels);
        if let (Some(all), Some(mut these)) = (contributors.as_mut(), group_contributors) {
            all.append(&mut these);
        }
        first_row += rows;
    }
    let lines = (0..total_rows).map(|row| row as u64 + 2).collect();
    Ok(Table {
        path: path.to_owned(),
        feature_names,
        features: Matrix {
            rows: total_rows,
            cols,
            data,
        },
        labels,
        contributors,
        lines,
        blake3,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use parquet::basic::{Compression, ZstdLevel};
    use parquet::data_type::{
        BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
    };
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
    use parquet::schema::parser::parse_message_type;

    use super::*;
    use crate::data::{TableFormat, read_csv, read_table, read_table_header};
    use crate::report::{Method, Parameters, ValuationRequest, value_files, verify};

    /// One column's cells (`None` is a null).
    #[derive(Clone)]
    enum Cells {
        Double(Vec<Option<f64>>),
        Float(Vec<Option<f32>>),
        Int32(Vec<Option<i32>>),
        Int64(Vec<Option<i64>>),
        Bool(Vec<Option<bool>>),
        Text(Vec<Option<Vec<u8>>>),
    }

    impl Cells {
        fn doubles(values: &[f64]) -> Self {
            Self::Double(values.iter().copied().map(Some).collect())
        }

        fn int64s(values: &[i64]) -> Self {
            Self::Int64(values.iter().copied().map(Some).collect())
        }

        fn texts(values: &[&str]) -> Self {
            Self::Text(
                values
                    .iter()
                    .map(|text| Some(text.as_bytes().to_vec()))
                    .collect(),
            )
        }

        fn len(&self) -> usize {
            match self {
                Self::Double(cells) => cells.len(),
                Self::Float(cells) => cells.len(),
                Self::Int32(cells) => cells.len(),
                Self::Int64(cells) => cells.len(),
                Self::Bool(cells) => cells.len(),
                Self::Text(cells) => cells.len(),
            }
        }

        fn slice(&self, start: usize, end: usize) -> Self {
            match self {
                Self::Double(cells) => Self::Double(cells[start..end].to_vec()),
                Self::Float(cells) => Self::Float(cells[start..end].to_vec()),
                Self::Int32(cells) => Self::Int32(cells[start..end].to_vec()),
                Self::Int64(cells) => Self::Int64(cells[start..end].to_vec()),
                Self::Bool(cells) => Self::Bool(cells[start..end].to_vec()),
                Self::Text(cells) => Self::Text(cells[start..end].to_vec()),
            }
        }
    }

    fn put<T: DataType>(column: &mut SerializedColumnWriter<'_>, cells: &[Option<T::T>])
    where
        T::T: Clone,
    {
        let values: Vec<T::T> = cells.iter().flatten().cloned().collect();
        let levels: Vec<i16> = cells.iter().map(|cell| i16::from(cell.is_some())).collect();
        let writer = column.typed::<T>();
        let nullable = writer.get_descriptor().max_def_level() > 0;
        writer
            .write_batch(&values, nullable.then_some(&levels[..]), None)
            .unwrap();
    }

    /// Writes a Parquet file with `schema` (message type syntax), `group_rows` rows per row group.
    fn write_parquet(
        path: &Path,
        schema: &str,
        columns: &[Cells],
        group_rows: usize,
        compression: Compression,
    ) {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let properties = Arc::new(
            WriterProperties::builder()
                .set_compression(compression)
                .build(),
        );
        let file = File::create(path).unwrap();
        let mut writer = SerializedFileWriter::new(file, schema, properties).unwrap();
        let rows = columns.first().map_or(0, Cells::len);
        let mut start = 0;
        loop {
            let end = (start + group_rows).min(rows);
            let mut group = writer.next_row_group().unwrap();
            for cells in columns {
                let mut column = group.next_column().unwrap().unwrap();
                match cells.slice(start, end) {
                    Cells::Double(cells) => put::<DoubleType>(&mut column, &cells),
                    Cells::Float(cells) => put::<FloatType>(&mut column, &cells),
                    Cells::Int32(cells) => put::<Int32Type>(&mut column, &cells),
                    Cells::Int64(cells) => put::<Int64Type>(&mut column, &cells),
                    Cells::Bool(cells) => put::<BoolType>(&mut column, &cells),
                    Cells::Text(cells) => {
                        let cells: Vec<Option<ByteArray>> = cells
                            .into_iter()
                            .map(|cell| cell.map(ByteArray::from))
                            .collect();
                        put::<ByteArrayType>(&mut column, &cells);
                    }
                }
                column.close().unwrap();
            }
            group.close().unwrap();
            start = end;
            if start >= rows {
                break;
            }
        }
        writer.close().unwrap();
    }

    fn iris_csv() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv")
    }

    const IRIS_SCHEMA: &str = "message iris {
        REQUIRED DOUBLE sepal_length_cm;
        REQUIRED DOUBLE sepal_width_cm;
        REQUIRED DOUBLE petal_length_cm;
        REQUIRED DOUBLE petal_width_cm;
        REQUIRED INT64 label;
    }";

    /// The chosen rows of `data/iris.csv`, written as CSV and as Parquet into `directory`.
    fn iris_pair(
        directory: &Path,
        name: &str,
        keep: impl Fn(usize) -> bool,
        group_rows: usize,
        compression: Compression,
    ) -> (PathBuf, PathBuf) {
        let text = std::fs::read_to_string(iris_csv()).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines
            .enumerate()
            .filter(|(index, _)| keep(*index))
            .map(|(_, line)| line)
            .collect();
        let csv = directory.join(format!("{name}.csv"));
        std::fs::write(&csv, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        let cells: Vec<Vec<&str>> = rows.iter().map(|row| row.split(',').collect()).collect();
        let mut columns: Vec<Cells> = (0..4)
            .map(|feature| {
                Cells::doubles(
                    &cells
                        .iter()
                        .map(|row| row[feature].parse().unwrap())
                        .collect::<Vec<f64>>(),
                )
            })
            .collect();
        columns.push(Cells::int64s(
            &cells
                .iter()
                .map(|row| row[4].parse().unwrap())
                .collect::<Vec<i64>>(),
        ));
        let parquet = directory.join(format!("{name}.parquet"));
        write_parquet(&parquet, IRIS_SCHEMA, &columns, group_rows, compression);
        (csv, parquet)
    }

    fn assert_same_table(csv: &Table, parquet: &Table) {
        assert_eq!(csv.feature_names, parquet.feature_names);
        assert_eq!(csv.features, parquet.features);
        assert_eq!(csv.labels, parquet.labels);
        assert_eq!(csv.contributors, parquet.contributors);
        assert_eq!(csv.lines, parquet.lines);
    }

    #[test]
    fn iris_first_50_rows_read_like_csv() {
        let directory = tempfile::tempdir().unwrap();
        for (group_rows, compression) in [
            (50, Compression::UNCOMPRESSED),
            (7, Compression::SNAPPY),
            (16, Compression::ZSTD(ZstdLevel::default())),
        ] {
            let (csv, parquet) = iris_pair(
                directory.path(),
                "iris50",
                |row| row < 50,
                group_rows,
                compression,
            );
            let options = CsvOptions::label("label");
            let from_csv = read_csv(&csv, &options).unwrap();
            let from_parquet = read_parquet(&parquet, &options).unwrap();
            assert_eq!(from_parquet.rows(), 50);
            assert_same_table(&from_csv, &from_parquet);
            assert_eq!(
                from_parquet.blake3,
                crate::data::hash_file(&parquet).unwrap()
            );
            assert_eq!(from_parquet.path, parquet);
            assert_eq!(
                read_parquet_header(&parquet).unwrap(),
                read_table_header(&csv).unwrap()
            );
        }
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            TableFormat::of_path(Path::new("a/b.parquet")),
            TableFormat::Parquet
        );
        assert_eq!(
            TableFormat::of_path(Path::new("B.PARQUET")),
            TableFormat::Parquet
        );
        assert_eq!(TableFormat::of_path(Path::new("b.csv")), TableFormat::Csv);
        assert_eq!(TableFormat::of_path(Path::new("parquet")), TableFormat::Csv);
        assert_eq!(
            TableFormat::of_path(Path::new("b.parquet.csv")),
            TableFormat::Csv
        );

        let directory = tempfile::tempdir().unwrap();
        let (csv, parquet) = iris_pair(
            directory.path(),
            "iris",
            |row| row % 10 == 0,
            4,
            Compression::SNAPPY,
        );
        let upper = directory.path().join("IRIS.PARQUET");
        std::fs::copy(&parquet, &upper).unwrap();
        let options = CsvOptions::label("label");
        let from_csv = read_table(&csv, &options).unwrap();
        assert_same_table(&from_csv, &read_table(&parquet, &options).unwrap());
        assert_same_table(&from_csv, &read_table(&upper, &options).unwrap());
    }

    #[test]
    fn string_labels_and_contributors() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("strings.parquet");
        write_parquet(
            &path,
            "message m {
                REQUIRED BINARY who (UTF8);
                REQUIRED FLOAT x;
                REQUIRED INT32 small (INTEGER(8, true));
                REQUIRED BINARY label (UTF8);
                OPTIONAL INT32 price (DECIMAL(9, 2));
                REQUIRED INT64 big (INTEGER(64, false));
            }",
            &[
                Cells::texts(&["alice", " bob ", "alice"]),
                Cells::Float(vec![Some(0.5), Some(-0.0), Some(1.25)]),
                Cells::Int32(vec![Some(-3), Some(0), Some(127)]),
                Cells::texts(&[" setosa", "versicolor ", "setosa"]),
                Cells::Int32(vec![Some(123), Some(-5), Some(1)]),
                Cells::int64s(&[1, -1, 7]),
            ],
            2,
            Compression::SNAPPY,
        );
        let options = CsvOptions {
            label_column: "label".into(),
            contributor_column: Some("who".into()),
        };
        let table = read_parquet(&path, &options).unwrap();
        assert_eq!(table.feature_names, ["x", "small", "price", "big"]);
        assert_eq!(table.labels, ["setosa", "versicolor", "setosa"]);
        assert_eq!(
            table.contributors.as_deref(),
            Some(&["alice".to_owned(), "bob".to_owned(), "alice".to_owned()][..])
        );
        assert_eq!(table.lines, [2, 3, 4]);
        // -1 stored in an unsigned 64-bit column is u64::MAX; -0.0 becomes 0.0; decimals are divided.
        assert_eq!(table.features.row(0), [0.5, -3.0, 1.23, 1.0]);
        assert_eq!(table.features.row(1), [0.0, 0.0, -0.05, u64::MAX as f64]);
        assert!(table.features.row(1)[0].is_sign_positive());
        assert_eq!(table.features.row(2), [1.25, 127.0, 0.01, 7.0]);

        // Integer contributors and boolean labels are names too.
        let path = directory.path().join("integers.parquet");
        write_parquet(
            &path,
            "message m { REQUIRED INT32 who; REQUIRED DOUBLE x; REQUIRED BOOLEAN label; }",
            &[
                Cells::Int32(vec![Some(10), Some(-2)]),
                Cells::doubles(&[1.0, 2.0]),
                Cells::Bool(vec![Some(true), Some(false)]),
            ],
            10,
            Compression::UNCOMPRESSED,
        );
        let table = read_parquet(&path, &options).unwrap();
        assert_eq!(table.labels, ["true", "false"]);
        assert_eq!(
            table.contributors.as_deref(),
            Some(&["10".to_owned(), "-2".to_owned()][..])
        );
    }

    fn write_simple(directory: &Path, name: &str, schema: &str, columns: &[Cells]) -> PathBuf {
        let path = directory.join(name);
        write_parquet(&path, schema, columns, 2, Compression::SNAPPY);
        path
    }

    fn error_of(path: &Path) -> ValuationError {
        read_parquet(path, &CsvOptions::label("label")).unwrap_err()
    }

    #[test]
    fn missing_label_column() {
        let directory = tempfile::tempdir().unwrap();
        let path = write_simple(
            directory.path(),
            "no_label.parquet",
            "message m { REQUIRED DOUBLE a; REQUIRED BINARY class (UTF8); }",
            &[Cells::doubles(&[1.0]), Cells::texts(&["x"])],
        );
        let error = error_of(&path);
        assert!(
            matches!(&error, ValuationError::MissingColumn { column, .. } if column == "label"),
            "{error}"
        );
        assert!(error.to_string().contains("no_label.parquet"), "{error}");

        // A missing contributor column likewise.
        let options = CsvOptions {
            label_column: "class".into(),
            contributor_column: Some("who".into()),
        };
        let error = read_parquet(&path, &options).unwrap_err();
        assert!(
            matches!(&error, ValuationError::MissingColumn { column, .. } if column == "who"),
            "{error}"
        );
    }

    #[test]
    fn bad_cells_name_file_and_line() {
        let directory = tempfile::tempdir().unwrap();
        // Rows 1..=3 are lines 2..=4; the bad cell is in the third row (second row group).
        let path = write_simple(
            directory.path(),
            "nan.parquet",
            "message m { REQUIRED DOUBLE a; REQUIRED INT64 label; }",
            &[
                Cells::doubles(&[1.0, 2.0, f64::NAN]),
                Cells::int64s(&[0, 1, 0]),
            ],
        );
        let error = error_of(&path);
        assert!(
            matches!(&error, ValuationError::NonFinite { line: 4, column, .. } if column == "a"),
            "{error}"
        );
        assert!(error.to_string().contains("nan.parquet"), "{error}");

        let path = write_simple(
            directory.path(),
            "inf.parquet",
            "message m { REQUIRED FLOAT a; REQUIRED INT64 label; }",
            &[Cells::Float(vec![Some(f32::INFINITY)]), Cells::int64s(&[0])],
        );
        assert!(matches!(
            error_of(&path),
            ValuationError::NonFinite { line: 2, .. }
        ));

        let path = write_simple(
            directory.path(),
            "null.parquet",
            "message m { OPTIONAL DOUBLE a; REQUIRED INT64 label; }",
            &[Cells::Double(vec![Some(1.0), None]), Cells::int64s(&[0, 1])],
        );
        let error = error_of(&path);
        assert!(
            matches!(&error, ValuationError::EmptyCell { line: 3, column, .. } if column == "a"),
            "{error}"
        );

        let path = write_simple(
            directory.path(),
            "empty_label.parquet",
            "message m { REQUIRED DOUBLE a; OPTIONAL BINARY label (UTF8); }",
            &[
                Cells::doubles(&[1.0, 2.0, 3.0]),
                Cells::Text(vec![
                    Some(b"x".to_vec()),
                    Some(b"y".to_vec()),
                    Some(b"  ".to_vec()),
                ]),
            ],
        );
        assert!(matches!(
            error_of(&path),
            ValuationError::EmptyCell { line: 4, .. }
        ));

        let path = write_simple(
            directory.path(),
            "utf8.parquet",
            "message m { REQUIRED DOUBLE a; REQUIRED BINARY label; }",
            &[
                Cells::doubles(&[1.0]),
                Cells::Text(vec![Some(vec![0xff, 0xfe])]),
            ],
        );
        assert!(matches!(
            error_of(&path),
            ValuationError::InvalidUtf8 { line: 2, .. }
        ));
    }

    #[test]
    fn columns_of_the_wrong_type_are_rejected() {
        let directory = tempfile::tempdir().unwrap();
        let cases = [
            (
                "message m { REQUIRED BINARY a (UTF8); REQUIRED INT64 label; }",
                vec![Cells::texts(&["1.5"]), Cells::int64s(&[0])],
                "a",
                "feature",
            ),
            (
                "message m { REQUIRED BOOLEAN a; REQUIRED INT64 label; }",
                vec![Cells::Bool(vec![Some(true)]), Cells::int64s(&[0])],
                "a",
                "feature",
            ),
            (
                "message m { REQUIRED INT32 a (DATE); REQUIRED INT64 label; }",
                vec![Cells::Int32(vec![Some(1)]), Cells::int64s(&[0])],
                "a",
                "feature",
            ),
            (
                "message m { REQUIRED DOUBLE a; REQUIRED DOUBLE label; }",
                vec![Cells::doubles(&[1.0]), Cells::doubles(&[0.0])],
                "label",
                "label",
            ),
            (
                "message m { REQUIRED DOUBLE a; REPEATED INT64 label; }",
                vec![Cells::doubles(&[1.0]), Cells::int64s(&[0])],
                "label",
                "label",
            ),
        ];
        for (index, (schema, columns, bad, role_name)) in cases.into_iter().enumerate() {
            let path = directory.path().join(format!("type{index}.parquet"));
            // A repeated column needs repetition levels; write it without data instead.
            if schema.contains("REPEATED") {
                let schema = Arc::new(parse_message_type(schema).unwrap());
                let writer = SerializedFileWriter::new(
                    File::create(&path).unwrap(),
                    schema,
                    Arc::new(WriterProperties::builder().build()),
                )
                .unwrap();
                writer.close().unwrap();
            } else {
                write_parquet(&path, schema, &columns, 10, Compression::SNAPPY);
            }
            let error = error_of(&path);
            assert!(
                matches!(&error, ValuationError::ParquetColumnType { column, role, .. }
                    if column == bad && *role == role_name),
                "{schema}: {error}"
            );
            assert!(error.to_string().contains(&format!("type{index}.parquet")));
        }

        // A nested column.
        let path = directory.path().join("nested.parquet");
        let schema = Arc::new(
            parse_message_type(
                "message m { REQUIRED INT64 label; REQUIRED GROUP g { REQUIRED DOUBLE x; } }",
            )
            .unwrap(),
        );
        SerializedFileWriter::new(
            File::create(&path).unwrap(),
            schema,
            Arc::new(WriterProperties::builder().build()),
        )
        .unwrap()
        .close()
        .unwrap();
        let error = error_of(&path);
        assert!(
            matches!(&error, ValuationError::ParquetColumnType { column, .. } if column == "g"),
            "{error}"
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let (_, good) = iris_pair(
            directory.path(),
            "good",
            |row| row % 2 == 0,
            20,
            Compression::SNAPPY,
        );
        let bytes = std::fs::read(&good).unwrap();
        let options = CsvOptions::label("label");
        let reference = read_parquet(&good, &options).unwrap();

        let check = |name: &str, contents: &[u8]| -> Option<ValuationError> {
            let path = directory.path().join(name);
            std::fs::write(&path, contents).unwrap();
            match read_parquet(&path, &options) {
                Ok(table) => {
                    // A flipped byte may land in statistics or padding and change nothing we read; then the
                    // table must still be well-formed.
                    assert_eq!(table.features.cols(), reference.features.cols());
                    None
                }
                Err(error) => {
                    assert!(error.to_string().contains(name), "{name}: {error}");
                    Some(error)
                }
            }
        };

        // Random bytes, empty, text.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for (name, contents) in [
            ("random.parquet", &random[..]),
            ("empty.parquet", &[][..]),
            ("text.parquet", &b"a,b,label\n1,2,x\n"[..]),
        ] {
            let error = check(name, contents).unwrap();
            assert!(matches!(error, ValuationError::Parquet { .. }), "{error}");
        }
        // Random bytes framed as Parquet (both magics), and a footer length past the start of the file.
        let mut framed = b"PAR1".to_vec();
        framed.extend_from_slice(&random);
        framed.extend_from_slice(&100_u32.to_le_bytes());
        framed.extend_from_slice(b"PAR1");
        assert!(check("framed.parquet", &framed).is_some());
        let mut long_footer = bytes.clone();
        let at = long_footer.len() - 8;
        long_footer[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(check("long_footer.parquet", &long_footer).is_some());

        // Every truncation is an error.
        for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            let error = check("truncated.parquet", &bytes[..cut]);
            assert!(error.is_some(), "truncated at {cut} of {}", bytes.len());
        }
        // Flipping any byte never panics, and is usually an error.
        let mut errors = 0;
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x5a;
            errors += usize::from(check("flipped.parquet", &flipped).is_some());
        }
        assert!(errors > 0);
        // The header reader also rejects a corrupt file.
        let path = directory.path().join("random.parquet");
        assert!(read_parquet_header(&path).is_err());
    }

    #[test]
    fn a_decoder_panic_is_an_error_naming_the_file() {
        let path = Path::new("some/file.parquet");
        let error = guarded::<()>(path, || panic!("boom")).unwrap_err();
        assert!(matches!(error, ValuationError::Parquet { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("some/file.parquet") && message.contains("boom"),
            "{message}"
        );
    }

    #[test]
    fn decimals_round_like_parsing() {
        for (unscaled, scale) in [
            (123, 2),
            (-5, 2),
            (1, 0),
            (i64::MAX, 3),
            (i64::MIN, 18),
            (9_007_199_254_740_993, 1),
            (7, 30),
        ] {
            let text = format!("{unscaled}e-{scale}");
            assert_eq!(
                decimal_to_f64(unscaled, scale),
                text.parse::<f64>().unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn reports_are_identical_for_csv_and_parquet() {
        let directory = tempfile::tempdir().unwrap();
        let (train_csv, train_parquet) = iris_pair(
            directory.path(),
            "train",
            |row| row % 3 != 0,
            25,
            Compression::SNAPPY,
        );
        let (test_csv, test_parquet) = iris_pair(
            directory.path(),
            "test",
            |row| row % 3 == 0,
            1_000,
            Compression::ZSTD(ZstdLevel::default()),
        );
        // Two training files make two contributors (one per file), so shares are computed too.
        let (train2_csv, train2_parquet) = iris_pair(
            directory.path(),
            "train2",
            |row| row % 3 == 0 && row % 2 == 0,
            10,
            Compression::UNCOMPRESSED,
        );
        let mut parameters = Parameters::new(Method::Knn, "label");
        parameters.k = 3;
        let report = |train: Vec<PathBuf>, test: PathBuf| {
            value_files(
                &ValuationRequest {
                    train,
                    test,
                    parameters: parameters.clone(),
                },
                &crate::NoProgress,
            )
            .unwrap()
        };
        let from_csv = report(vec![train_csv, train2_csv], test_csv);
        let from_parquet = report(vec![train_parquet.clone(), train2_parquet], test_parquet);
        assert_eq!(from_csv.rows, from_parquet.rows);
        assert_eq!(from_csv.classes, from_parquet.classes);
        assert_eq!(from_csv.contributor_values, from_parquet.contributor_values);
        assert_eq!(from_csv.shares_bps, from_parquet.shares_bps);
        assert!(!from_parquet.shares_bps.is_empty());
        assert_eq!(
            from_parquet.inputs[0].blake3,
            hex::encode(crate::data::hash_file(&train_parquet).unwrap())
        );

        // `verify` re-reads the Parquet inputs.
        let report_path = directory.path().join("report.json");
        from_parquet.write(&report_path).unwrap();
        let outcome = verify(&report_path).unwrap();
        assert!(outcome.matches, "{:?}", outcome.reason);
    }
}
