//! Folder assets: a directory of data files stored as one asset.
//!
//! A folder becomes one byte string, its *bundle*, and from then on it is an asset like any file:
//! its id is the bundle's BLAKE3, and it is chunked, sealed and erasure-coded the same way. The
//! bundle is deterministic (the same files give the same bytes, whatever the order the filesystem
//! lists them in or their timestamps), so `asset register` and `asset add` of a folder agree on its
//! id:
//!
//! ```text
//! "TRBFLDR1"  u32 little-endian index length  index (JSON)  file 0's bytes  file 1's bytes  …
//! ```
//!
//! The index is the folder's manifest ([`FolderIndex`]): every file's path relative to the folder
//! (`/`-separated, sorted by byte order), its size, its format and its BLAKE3. Each file is checked
//! like a single-file asset ([`crate::validate`]): CSV, Parquet or JSON Lines by its extension,
//! anything else refused. Hidden entries (names starting with `.`) are left out; symbolic links and
//! other special files are refused rather than followed.
//!
//! [`Unpacker`] turns a bundle back into a directory as its bytes arrive (`asset get` writes the
//! decoded stream straight into it), and [`unpack`] does so from a bundle file. It trusts nothing
//! in the bundle: every path must be relative and plain (no `..`, no empty or `.` component), the
//! sizes must add up to the bundle, and every file must hash to its index entry. It writes into a
//! fresh directory, which it removes if anything fails.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::limits::{
    ASSET_BYTES_MAX, FOLDER_FILES_MAX, FOLDER_INDEX_BYTES_MAX, FOLDER_PATH_BYTES_MAX,
};
use crate::manifest::ContentHash;
use crate::validate::{self, DataFormat};

/// The first bytes of every bundle.
pub const FOLDER_MAGIC: &[u8; 8] = b"TRBFLDR1";

/// Bytes before the index: the magic and the index length.
const HEADER_BYTES: usize = FOLDER_MAGIC.len() + 4;

/// Bytes copied at a time while unpacking.
const COPY_BUFFER_BYTES: usize = 1 << 20;

/// The manifest of a folder: its files, in bundle order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderIndex {
    /// Every file, sorted by path.
    pub files: Vec<FolderFile>,
}

/// One file of a folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderFile {
    /// Its path relative to the folder, components joined by `/`.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its format, from its extension.
    pub format: DataFormat,
    /// Its BLAKE3.
    pub blake3: ContentHash,
}

fn invalid(name: &str, reason: impl Into<String>) -> StoreError {
    StoreError::FolderInvalid {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Reads the folder at `directory` into its bundle, refusing a file of no known format or a
/// folder over the size limit before reading anything; [`check`] (which ingest runs) checks the
/// files' contents. The buffer has `spare_capacity` bytes to spare past the bundle (ingest pads
/// in place).
pub fn bundle(directory: &Path, spare_capacity: usize) -> Result<Vec<u8>> {
    let name = directory.display().to_string();
    let mut paths = Vec::new();
    collect_files(directory, directory, &mut paths, &name)?;
    if paths.is_empty() {
        return Err(invalid(
            &name,
            "it holds no files (hidden ones are left out)",
        ));
    }
    paths.sort();
    // Names and sizes first, so an unknown format or an oversized folder is refused before
    // anything is read.
    let mut total: u64 = 0;
    let mut listed = Vec::with_capacity(paths.len());
    let mut index_bytes_bound = 16;
    for (relative, path) in &paths {
        let format = DataFormat::from_name(relative)?;
        let bytes = fs::metadata(path)
            .map_err(|error| StoreError::io(path, error))?
            .len();
        total = total.saturating_add(bytes);
        // An index entry: its path, escaped (at most six bytes a byte), and the other fields.
        index_bytes_bound += 6 * relative.len() + 160;
        listed.push((format, bytes));
    }
    if total > ASSET_BYTES_MAX {
        return Err(StoreError::AssetTooLarge {
            name,
            bytes: total,
            max: ASSET_BYTES_MAX,
        });
    }
    // The files are read into the buffer the bundle ends up in, then moved up past the header
    // and index once those are known: one buffer the size of the folder, not two.
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let mut bundle = Vec::with_capacity(
        total
            .saturating_add(HEADER_BYTES + index_bytes_bound)
            .saturating_add(spare_capacity),
    );
    let mut files = Vec::with_capacity(paths.len());
    for ((relative, path), (format, expected)) in paths.iter().zip(listed) {
        let start = bundle.len();
        File::open(path)
            .and_then(|file| {
                file.take(expected.saturating_add(1))
                    .read_to_end(&mut bundle)
            })
            .map_err(|error| StoreError::io(path, error))?;
        let read = &bundle[start..];
        if read.len() as u64 != expected {
            return Err(invalid(
                &name,
                format!("{relative} changed size while it was read"),
            ));
        }
        files.push(FolderFile {
            path: relative.clone(),
            bytes: expected,
            format,
            blake3: ContentHash::of(read),
        });
    }
    let index = serde_json::to_vec(&FolderIndex { files })
        .map_err(|error| invalid(&name, format!("cannot write its index: {error}")))?;
    if index.len() > FOLDER_INDEX_BYTES_MAX {
        return Err(invalid(
            &name,
            format!(
                "its index is {} bytes, more than the limit of {FOLDER_INDEX_BYTES_MAX}",
                index.len()
            ),
        ));
    }
    let prefix = HEADER_BYTES + index.len();
    bundle.resize(total + prefix, 0);
    bundle.copy_within(..total, prefix);
    bundle[..FOLDER_MAGIC.len()].copy_from_slice(FOLDER_MAGIC);
    bundle[FOLDER_MAGIC.len()..HEADER_BYTES].copy_from_slice(&(index.len() as u32).to_le_bytes());
    bundle[HEADER_BYTES..prefix].copy_from_slice(&index);
    if bundle.len() as u64 > ASSET_BYTES_MAX {
        return Err(StoreError::AssetTooLarge {
            name,
            bytes: bundle.len() as u64,
            max: ASSET_BYTES_MAX,
        });
    }
    Ok(bundle)
}

/// Adds the files under `directory` to `paths` as (path relative to `root`, full path).
fn collect_files(
    root: &Path,
    directory: &Path,
    paths: &mut Vec<(String, PathBuf)>,
    name: &str,
) -> Result<()> {
    let entries = fs::read_dir(directory).map_err(|error| StoreError::io(directory, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| StoreError::io(directory, error))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(invalid(
                name,
                format!("{} is not named in UTF-8", path.display()),
            ));
        };
        if file_name.starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|error| StoreError::io(&path, error))?;
        let relative = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .map(|relative| relative.replace(std::path::MAIN_SEPARATOR, "/"))
            .ok_or_else(|| invalid(name, format!("{} is outside it", path.display())))?;
        if kind.is_dir() {
            collect_files(root, &path, paths, name)?;
        } else if kind.is_file() {
            check_path(name, &relative)?;
            if paths.len() >= FOLDER_FILES_MAX {
                return Err(invalid(
                    name,
                    format!("more than the limit of {FOLDER_FILES_MAX} files"),
                ));
            }
            paths.push((relative, path));
        } else {
            return Err(invalid(
                name,
                format!(
                    "{relative} is a symbolic link or a special file; only regular files are stored"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that `path` is a plain relative path within the limits.
fn check_path(name: &str, path: &str) -> Result<()> {
    if path.len() > FOLDER_PATH_BYTES_MAX {
        return Err(invalid(
            name,
            format!(
                "the path {path:?} is {} bytes, more than the limit of {FOLDER_PATH_BYTES_MAX}",
                path.len()
            ),
        ));
    }
    let plain = !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(path)
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if !plain {
        return Err(invalid(
            name,
            format!("the path {path:?} is not a plain relative path"),
        ));
    }
    Ok(())
}

/// Parses and checks a bundle's index (`index_bytes`, of a bundle of `bundle_bytes` in all):
/// plain sorted paths, no file also a directory, formats matching the names, and sizes adding up
/// to the bundle.
fn parse_index(name: &str, index_bytes: &[u8], bundle_bytes: u64) -> Result<FolderIndex> {
    let index: FolderIndex = serde_json::from_slice(index_bytes)
        .map_err(|error| invalid(name, format!("its index is not valid: {error}")))?;
    if index.files.is_empty() || index.files.len() > FOLDER_FILES_MAX {
        return Err(invalid(
            name,
            format!(
                "its index lists {} files; a folder holds 1 to {FOLDER_FILES_MAX}",
                index.files.len()
            ),
        ));
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut total: u64 = 0;
    let mut previous: Option<&str> = None;
    for file in &index.files {
        check_path(name, &file.path)?;
        if previous.is_some_and(|previous| previous >= file.path.as_str()) {
            return Err(invalid(
                name,
                format!("its index is not sorted by path at {:?}", file.path),
            ));
        }
        previous = Some(&file.path);
        // A file cannot also be a directory of another.
        let mut ancestor = file.path.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if seen.contains(parent) {
                return Err(invalid(
                    name,
                    format!("{parent:?} is both a file and a directory"),
                ));
            }
            ancestor = parent;
        }
        seen.insert(&file.path);
        if DataFormat::from_name(&file.path)? != file.format {
            return Err(invalid(
                name,
                format!("its index gives {:?} the wrong format", file.path),
            ));
        }
        total = total.saturating_add(file.bytes);
    }
    let expected = (HEADER_BYTES + index_bytes.len()) as u64 + total;
    if expected != bundle_bytes {
        return Err(invalid(
            name,
            format!("its index accounts for {expected} bytes, but it holds {bundle_bytes}"),
        ));
    }
    Ok(index)
}

/// The index length a bundle's header gives, after checking its magic and that the index fits
/// the limit and the bundle (of `bundle_bytes` in all).
fn index_length(name: &str, header: &[u8], bundle_bytes: u64) -> Result<usize> {
    if header.len() < HEADER_BYTES {
        return Err(invalid(name, "it is too short to be a folder"));
    }
    if &header[..FOLDER_MAGIC.len()] != FOLDER_MAGIC {
        return Err(invalid(name, "it does not start as a folder does"));
    }
    let mut length = [0u8; 4];
    length.copy_from_slice(&header[FOLDER_MAGIC.len()..HEADER_BYTES]);
    let bytes = u32::from_le_bytes(length) as usize;
    if bytes > FOLDER_INDEX_BYTES_MAX || (HEADER_BYTES + bytes) as u64 > bundle_bytes {
        return Err(invalid(
            name,
            format!("its index length {bytes} does not fit"),
        ));
    }
    Ok(bytes)
}

/// Reads the header and index of the bundle in `reader` (of `bundle_bytes` bytes in all).
fn read_index(name: &str, reader: &mut impl Read, bundle_bytes: u64) -> Result<FolderIndex> {
    let mut header = [0u8; HEADER_BYTES];
    reader
        .read_exact(&mut header)
        .map_err(|_| invalid(name, "it is too short to be a folder"))?;
    let mut index = vec![0u8; index_length(name, &header, bundle_bytes)?];
    reader
        .read_exact(&mut index)
        .map_err(|_| invalid(name, "it ends inside its index"))?;
    parse_index(name, &index, bundle_bytes)
}

/// Checks a bundle held in memory: its index, and every file against its size, hash and format.
pub fn check(name: &str, bundle: &[u8]) -> Result<FolderIndex> {
    let mut reader = bundle;
    let index = read_index(name, &mut reader, bundle.len() as u64)?;
    let mut rest = reader;
    for file in &index.files {
        // parse_index checked that the sizes add up to the bundle.
        let (contents, after) = rest.split_at(usize::try_from(file.bytes).unwrap_or(usize::MAX));
        if ContentHash::of(contents) != file.blake3 {
            return Err(invalid(
                name,
                format!("{} does not match its hash in the index", file.path),
            ));
        }
        validate::check(&file.path, contents)?;
        rest = after;
    }
    Ok(index)
}

/// Writes the folder the bundle file at `bundle_path` holds into `out`, which must not exist.
/// Every file is checked against its hash; on any failure nothing is left at `out`.
pub fn unpack(bundle_path: &Path, out: &Path) -> Result<FolderIndex> {
    let file = File::open(bundle_path).map_err(|error| StoreError::io(bundle_path, error))?;
    let bundle_bytes = file
        .metadata()
        .map_err(|error| StoreError::io(bundle_path, error))?
        .len();
    let mut unpacker = Unpacker::create(&bundle_path.display().to_string(), out, bundle_bytes)?;
    let mut reader = BufReader::with_capacity(COPY_BUFFER_BYTES, file);
    std::io::copy(&mut reader, &mut unpacker).map_err(|error| {
        unpacker
            .failure
            .take()
            .unwrap_or_else(|| StoreError::io(bundle_path, error))
    })?;
    unpacker.finish()
}

/// Writes a bundle into a folder as its bytes arrive ([`Write`]), so a folder read from the
/// network never sits on disk twice: the header and index are collected and checked first (as
/// [`check`] does), then each file is written under `out` while it is hashed, and checked against
/// its index entry when its last byte arrives. [`finish`](Self::finish) checks that the bundle
/// was complete. Dropped unfinished (a failure anywhere, here or upstream), it removes `out`.
pub struct Unpacker {
    name: String,
    out: PathBuf,
    bundle_bytes: u64,
    stage: Stage,
    /// The header, then the index, as they arrive.
    pending: Vec<u8>,
    index: FolderIndex,
    /// The next entry of `index` to open (the open file is the one before).
    next_file: usize,
    /// Why the last write failed (the [`Write`] error only carries its text).
    failure: Option<StoreError>,
    finished: bool,
}

enum Stage {
    Header,
    Index { bytes: usize },
    // Boxed: the BLAKE3 hasher's state is large.
    File(Box<OpenFile>),
    Done,
}

struct OpenFile {
    path: PathBuf,
    writer: BufWriter<File>,
    hasher: blake3::Hasher,
    left: u64,
}

impl Unpacker {
    /// An unpacker of a bundle of `bundle_bytes` (named `name` in errors) into `out`, which must
    /// not exist yet; it is created now.
    pub fn create(name: &str, out: &Path, bundle_bytes: u64) -> Result<Self> {
        if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|error| StoreError::io(parent, error))?;
        }
        // Creating `out` itself is the check that it did not exist, so nothing another process
        // put there in between is taken for ours (and removed on a failure).
        match fs::create_dir(out) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(invalid(
                    name,
                    format!("{} already exists; give another --out", out.display()),
                ));
            }
            Err(error) => return Err(StoreError::io(out, error)),
        }
        Ok(Self {
            name: name.to_string(),
            out: out.to_path_buf(),
            bundle_bytes,
            stage: Stage::Header,
            pending: Vec::with_capacity(HEADER_BYTES),
            index: FolderIndex::default(),
            next_file: 0,
            failure: None,
            finished: false,
        })
    }

    /// Checks that the whole bundle arrived and every file was written; returns its index.
    pub fn finish(mut self) -> Result<FolderIndex> {
        let unfinished = match &self.stage {
            Stage::Done => None,
            Stage::Header => Some("it is too short to be a folder".to_string()),
            Stage::Index { .. } => Some("it ends inside its index".to_string()),
            Stage::File(_) => Some(format!(
                "it ends inside {}",
                self.index.files[self.next_file - 1].path
            )),
        };
        if let Some(reason) = unfinished {
            return Err(invalid(&self.name, reason));
        }
        self.finished = true;
        Ok(std::mem::take(&mut self.index))
    }

    /// Takes all of `data`, moving through the stages as each completes.
    fn take(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match &mut self.stage {
                Stage::Header => {
                    data = fill(&mut self.pending, HEADER_BYTES, data);
                    if self.pending.len() == HEADER_BYTES {
                        let bytes = index_length(&self.name, &self.pending, self.bundle_bytes)?;
                        self.pending = Vec::with_capacity(bytes);
                        self.stage = Stage::Index { bytes };
                        self.index_if_complete()?;
                    }
                }
                Stage::Index { bytes } => {
                    data = fill(&mut self.pending, *bytes, data);
                    self.index_if_complete()?;
                }
                Stage::File(open) => {
                    let take = usize::try_from(open.left)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    let (contents, rest) = data.split_at(take);
                    open.hasher.update(contents);
                    open.writer
                        .write_all(contents)
                        .map_err(|error| StoreError::io(&open.path, error))?;
                    open.left -= take as u64;
                    data = rest;
                    if open.left == 0 {
                        self.close_file()?;
                        self.open_next()?;
                    }
                }
                Stage::Done => {
                    return Err(invalid(&self.name, "it holds bytes past its last file"));
                }
            }
        }
        Ok(())
    }

    fn index_if_complete(&mut self) -> Result<()> {
        if let Stage::Index { bytes } = self.stage
            && self.pending.len() == bytes
        {
            self.index = parse_index(&self.name, &self.pending, self.bundle_bytes)?;
            self.pending = Vec::new();
            self.open_next()?;
        }
        Ok(())
    }

    /// Opens the next file (writing and closing any empty ones at once), or ends.
    fn open_next(&mut self) -> Result<()> {
        while let Some(entry) = self.index.files.get(self.next_file) {
            let path = self
                .out
                .join(entry.path.replace('/', std::path::MAIN_SEPARATOR_STR));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|error| StoreError::io(parent, error))?;
            }
            let created = File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|error| StoreError::io(&path, error))?;
            self.stage = Stage::File(Box::new(OpenFile {
                path,
                writer: BufWriter::with_capacity(COPY_BUFFER_BYTES, created),
                hasher: blake3::Hasher::new(),
                left: entry.bytes,
            }));
            self.next_file += 1;
            if entry.bytes > 0 {
                return Ok(());
            }
            self.close_file()?;
        }
        self.stage = Stage::Done;
        Ok(())
    }

    /// Checks the file just written against its index entry and makes it durable.
    fn close_file(&mut self) -> Result<()> {
        let Stage::File(open) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Ok(());
        };
        let entry = &self.index.files[self.next_file - 1];
        if ContentHash(*open.hasher.finalize().as_bytes()) != entry.blake3 {
            return Err(invalid(
                &self.name,
                format!("{} does not match its hash in the index", entry.path),
            ));
        }
        open.writer
            .into_inner()
            .map_err(|error| error.into_error())
            .and_then(|file| file.sync_all())
            .map_err(|error| StoreError::io(&open.path, error))
    }
}

/// Moves bytes of `data` into `pending` until it holds `want`; returns the rest of `data`.
fn fill<'a>(pending: &mut Vec<u8>, want: usize, data: &'a [u8]) -> &'a [u8] {
    let take = want.saturating_sub(pending.len()).min(data.len());
    pending.extend_from_slice(&data[..take]);
    &data[take..]
}

impl Write for Unpacker {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(std::io::Error::other(failure.to_string()));
        }
        match self.take(data) {
            Ok(()) => Ok(data.len()),
            Err(failure) => {
                let error = std::io::Error::other(failure.to_string());
                self.failure = Some(failure);
                Err(error)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.stage {
            Stage::File(open) => open.writer.flush(),
            _ => Ok(()),
        }
    }
}

impl Drop for Unpacker {
    fn drop(&mut self) {
        if !self.finished {
            // Close the open file first, then remove everything written.
            self.stage = Stage::Done;
            let _ = fs::remove_dir_all(&self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let directory = tempfile::tempdir().unwrap();
        fs::create_dir_all(directory.path().join("train/more")).unwrap();
        fs::write(directory.path().join("test.csv"), "a,b\n1,2\n").unwrap();
        fs::write(directory.path().join("train/one.csv"), "a,b\n3,4\n5,6\n").unwrap();
        fs::write(
            directory.path().join("train/more/rows.jsonl"),
            "{\"a\":1}\n",
        )
        .unwrap();
        fs::write(directory.path().join(".hidden"), "not stored").unwrap();
        directory
    }

    #[test]
    fn a_folder_bundles_deterministically_checks_and_unpacks_to_the_same_files() {
        let directory = folder();
        let bundle = super::bundle(directory.path(), 0).unwrap();
        assert_eq!(bundle, super::bundle(directory.path(), 64).unwrap());
        let index = check("f", &bundle).unwrap();
        let paths: Vec<&str> = index.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            ["test.csv", "train/more/rows.jsonl", "train/one.csv"]
        );
        assert_eq!(index.files[1].format, DataFormat::Jsonl);

        let scratch = tempfile::tempdir().unwrap();
        let bundle_path = scratch.path().join("bundle");
        fs::write(&bundle_path, &bundle).unwrap();
        let out = scratch.path().join("out");
        assert_eq!(unpack(&bundle_path, &out).unwrap(), index);
        for path in paths {
            assert_eq!(
                fs::read(out.join(path)).unwrap(),
                fs::read(directory.path().join(path)).unwrap()
            );
        }
        assert!(!out.join(".hidden").exists());
        // An existing output is not overwritten.
        let again = unpack(&bundle_path, &out).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
    }

    #[test]
    fn bad_folders_are_refused_with_the_file_named() {
        let directory = folder();
        fs::write(directory.path().join("train/photo.png"), "png").unwrap();
        let error = bundle(directory.path(), 0).unwrap_err();
        assert!(error.to_string().contains("photo.png"), "{error}");

        let directory = folder();
        fs::write(directory.path().join("train/bad.csv"), "a,b\n1\n").unwrap();
        let error = check("f", &bundle(directory.path(), 0).unwrap()).unwrap_err();
        assert!(error.to_string().contains("bad.csv"), "{error}");

        let empty = tempfile::tempdir().unwrap();
        fs::write(empty.path().join(".only-hidden"), "x").unwrap();
        let error = bundle(empty.path(), 0).unwrap_err();
        assert!(error.to_string().contains("no files"), "{error}");

        #[cfg(unix)]
        {
            let directory = folder();
            std::os::unix::fs::symlink("/etc/passwd", directory.path().join("link.csv")).unwrap();
            let error = bundle(directory.path(), 0).unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
        }
    }

    /// A bundle from anywhere: an index that escapes the folder, lies about sizes or hashes, or
    /// is not canonical is refused, and unpacking leaves nothing behind.
    #[test]
    fn crafted_bundles_are_refused_and_unpack_leaves_nothing() {
        let craft = |files: Vec<FolderFile>, contents: &[u8]| {
            let index = serde_json::to_vec(&FolderIndex { files }).unwrap();
            let mut bundle = FOLDER_MAGIC.to_vec();
            bundle.extend_from_slice(&(index.len() as u32).to_le_bytes());
            bundle.extend_from_slice(&index);
            bundle.extend_from_slice(contents);
            bundle
        };
        let entry = |path: &str, contents: &[u8]| FolderFile {
            path: path.into(),
            bytes: contents.len() as u64,
            format: DataFormat::Csv,
            blake3: ContentHash::of(contents),
        };
        let rows = b"a\n1\n";
        let cases = [
            (
                craft(vec![entry("../escape.csv", rows)], rows),
                "plain relative",
            ),
            (
                craft(vec![entry("/etc/x.csv", rows)], rows),
                "plain relative",
            ),
            (craft(vec![entry("a//b.csv", rows)], rows), "plain relative"),
            (
                craft(vec![entry("x.csv", rows)], b"a\n1\n2\n"),
                "accounts for",
            ),
            (
                craft(
                    vec![FolderFile {
                        blake3: ContentHash::of(b"other"),
                        ..entry("x.csv", rows)
                    }],
                    rows,
                ),
                "does not match its hash",
            ),
            (
                craft(
                    vec![entry("b.csv", rows), entry("a.csv", rows)],
                    b"a\n1\na\n1\n",
                ),
                "not sorted",
            ),
            (craft(vec![], b""), "lists 0 files"),
            (b"TRBFLDR1\xff\xff\xff\x7f".to_vec(), "does not fit"),
            (b"not a folder at all".to_vec(), "does not start"),
        ];
        let scratch = tempfile::tempdir().unwrap();
        for (index, (bundle, expected)) in cases.iter().enumerate() {
            let error = check("crafted", bundle).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "case {index}: {error}"
            );
            let bundle_path = scratch.path().join(format!("bundle-{index}"));
            fs::write(&bundle_path, bundle).unwrap();
            let out = scratch.path().join(format!("out-{index}"));
            let error = unpack(&bundle_path, &out).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "case {index}: {error}"
            );
            assert!(!out.exists(), "case {index} left {}", out.display());
        }
    }

    /// Bytes arriving in pieces of any size (one byte, odd sizes, all at once) unpack to the
    /// same files; a bundle cut short, or one dropped unfinished, leaves nothing.
    #[test]
    fn an_unpacker_takes_the_bundle_in_pieces_of_any_size() {
        let directory = folder();
        // An empty file between others, too.
        fs::write(directory.path().join("train/empty.csv"), "").unwrap();
        let bundle = super::bundle(directory.path(), 0).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        for piece_bytes in [1, 7, 4096, bundle.len()] {
            let out = scratch.path().join(format!("out-{piece_bytes}"));
            let mut unpacker = Unpacker::create("f", &out, bundle.len() as u64).unwrap();
            for piece in bundle.chunks(piece_bytes) {
                unpacker.write_all(piece).unwrap();
            }
            let index = unpacker.finish().unwrap();
            assert_eq!(index.files.len(), 4);
            for file in &index.files {
                assert_eq!(
                    fs::read(out.join(&file.path)).unwrap(),
                    fs::read(directory.path().join(&file.path)).unwrap(),
                    "{piece_bytes}-byte pieces, {}",
                    file.path
                );
            }
        }

        let out = scratch.path().join("short");
        let mut unpacker = Unpacker::create("f", &out, bundle.len() as u64).unwrap();
        unpacker.write_all(&bundle[..bundle.len() - 3]).unwrap();
        let error = unpacker.finish().unwrap_err();
        assert!(
            error.to_string().contains("ends inside train/one.csv"),
            "{error}"
        );
        assert!(!out.exists());

        let out = scratch.path().join("dropped");
        let mut unpacker = Unpacker::create("f", &out, bundle.len() as u64).unwrap();
        unpacker.write_all(&bundle[..bundle.len() / 2]).unwrap();
        assert!(out.exists());
        drop(unpacker);
        assert!(!out.exists());

        let out = scratch.path().join("long");
        let mut unpacker = Unpacker::create("f", &out, bundle.len() as u64).unwrap();
        let mut longer = bundle.clone();
        longer.push(b'x');
        let error = unpacker.write_all(&longer).unwrap_err();
        assert!(error.to_string().contains("past its last file"), "{error}");
    }
}
