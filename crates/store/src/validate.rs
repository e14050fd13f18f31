//! Format checks before an asset is stored: the file must be what its name says.
//!
//! The format is chosen by extension ([`DataFormat::from_name`]): `.csv`, `.parquet`, `.jsonl` or
//! `.ndjson`; anything else is [`StoreError::UnsupportedFormat`]. The checks are structural and cheap,
//! not a schema check:
//!
//! * **CSV**: a header row is present and every row has the header's number of fields (quoted fields may
//!   span lines; errors name the row's first line).
//! * **Parquet**: the `PAR1` magic at both ends and a footer length that fits inside the file.
//! * **JSON Lines**: every line is one JSON value (a final newline is allowed, blank lines are not).
//! * **A folder** (a name ending in `/`): a bundle of such files behind an index ([`crate::folder`]);
//!   the index must account for every byte and each file is checked as above.

mod csv_rows;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// The file formats the data plane accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// JSON Lines (newline-delimited JSON).
    Jsonl,
    /// A folder of files in these formats, as one bundle ([`crate::folder`]).
    Folder,
}

impl DataFormat {
    /// The format a file name's extension names (case-insensitive); a name ending in `/` is a
    /// folder ([`asset_name`] gives one).
    pub fn from_name(name: &str) -> Result<Self> {
        if name.ends_with('/') {
            return Ok(Self::Folder);
        }
        let extension = Path::new(name)
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("parquet") => Ok(Self::Parquet),
            Some("jsonl" | "ndjson") => Ok(Self::Jsonl),
            _ => Err(StoreError::UnsupportedFormat {
                name: name.to_string(),
            }),
        }
    }
}

/// Parquet's magic bytes, at the start and at the end of every file.
const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// Checks that `bytes` (the file called `name`) is well-formed for the format its name gives, and returns
/// that format.
pub fn check(name: &str, bytes: &[u8]) -> Result<DataFormat> {
    let format = DataFormat::from_name(name)?;
    match format {
        DataFormat::Csv => csv_rows::check(name, bytes)?,
        DataFormat::Parquet => check_parquet(name, bytes)?,
        DataFormat::Jsonl => check_jsonl(name, bytes)?,
        DataFormat::Folder => {
            crate::folder::check(name, bytes)?;
        }
    }
    Ok(format)
}

/// The name ingest knows the asset at `path` by: its path, with a `/` after a directory's.
pub fn asset_name(path: &Path) -> String {
    let name = path.display().to_string();
    if path.is_dir() && !name.ends_with('/') {
        format!("{name}/")
    } else {
        name
    }
}

fn check_parquet(name: &str, bytes: &[u8]) -> Result<()> {
    let malformed = |reason: String| StoreError::ParquetMalformed {
        name: name.to_string(),
        reason,
    };
    // Magic, at least one byte of footer, the footer length, magic.
    let minimum = PARQUET_MAGIC.len() * 2 + 4;
    if bytes.len() < minimum {
        return Err(malformed(format!(
            "{} bytes, shorter than the smallest Parquet file ({minimum})",
            bytes.len()
        )));
    }
    if !bytes.starts_with(PARQUET_MAGIC) {
        return Err(malformed("no PAR1 magic at the start".into()));
    }
    if !bytes.ends_with(PARQUET_MAGIC) {
        return Err(malformed("no PAR1 magic at the end".into()));
    }
    let length_at = bytes.len() - PARQUET_MAGIC.len() - 4;
    let mut length = [0u8; 4];
    length.copy_from_slice(&bytes[length_at..length_at + 4]);
    let footer_bytes = u32::from_le_bytes(length) as usize;
    if footer_bytes == 0 || footer_bytes > length_at - PARQUET_MAGIC.len() {
        return Err(malformed(format!(
            "footer length {footer_bytes} does not fit in a file of {} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

fn check_jsonl(name: &str, bytes: &[u8]) -> Result<()> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(());
    }
    for (index, line) in body.split(|&byte| byte == b'\n').enumerate() {
        let line_number = index as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(StoreError::JsonLineMalformed {
                name: name.to_string(),
                line: line_number,
                message: "blank line".into(),
            });
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(line).map_err(|error| {
            StoreError::JsonLineMalformed {
                name: name.to_string(),
                line: line_number,
                message: error.to_string(),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(DataFormat::from_name("a/b.CSV").unwrap(), DataFormat::Csv);
        assert_eq!(
            DataFormat::from_name("x.parquet").unwrap(),
            DataFormat::Parquet
        );
        assert_eq!(
            DataFormat::from_name("x.ndjson").unwrap(),
            DataFormat::Jsonl
        );
        let error = DataFormat::from_name("photo.png").unwrap_err();
        assert!(error.to_string().contains("photo.png"), "{error}");
        assert!(DataFormat::from_name("noextension").is_err());
    }

    #[test]
    fn csv_checks() {
        assert!(check("ok.csv", b"a,b\n1,2\n3,4\n").is_ok());
        assert!(check("quoted.csv", b"a,b\n\"multi\nline\",2\n").is_ok());
        assert!(matches!(
            check("empty.csv", b""),
            Err(StoreError::CsvMissingHeader { .. })
        ));
        let error = check("ragged.csv", b"a,b\n1,2\n3\n4,5\n").unwrap_err();
        assert!(matches!(
            error,
            StoreError::CsvRaggedRow {
                line: 3,
                expected: 2,
                found: 1,
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains("ragged.csv") && message.contains("line 3"),
            "{message}"
        );
    }

    #[test]
    fn parquet_checks() {
        let mut good = b"PAR1".to_vec();
        good.extend_from_slice(&[0u8; 10]);
        good.extend_from_slice(&10u32.to_le_bytes());
        good.extend_from_slice(b"PAR1");
        assert!(check("t.parquet", &good).is_ok());
        let mut long_footer = good.clone();
        let at = long_footer.len() - 8;
        long_footer[at..at + 4].copy_from_slice(&11u32.to_le_bytes());
        assert!(matches!(
            check("t.parquet", &long_footer),
            Err(StoreError::ParquetMalformed { .. })
        ));
        assert!(check("t.parquet", b"PAR1PAR1").is_err());
        let mut no_tail = good.clone();
        no_tail.pop();
        assert!(check("t.parquet", &no_tail).is_err());
    }

    #[test]
    fn jsonl_checks() {
        assert!(check("a.jsonl", b"{\"a\":1}\n[1,2]\r\n\"s\"\n").is_ok());
        assert!(check("a.jsonl", b"{\"a\":1}").is_ok());
        assert!(check("a.jsonl", b"").is_ok());
        assert!(matches!(
            check("a.jsonl", b"{\"a\":1}\n{oops}\n"),
            Err(StoreError::JsonLineMalformed { line: 2, .. })
        ));
        assert!(matches!(
            check("a.jsonl", b"1\n\n2\n"),
            Err(StoreError::JsonLineMalformed { line: 2, .. })
        ));
    }
}
