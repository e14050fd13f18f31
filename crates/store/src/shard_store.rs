//! A crash-safe store of shards on local disk, for storage providers (and owners keeping their own).
//!
//! Layout under the store's directory:
//!
//! ```text
//! LOCK                            held (advisory lock) while a ShardStore is open
//! <asset id hex>/<index>.shard    the shard's bytes
//! <asset id hex>/<index>.outboard its proof-of-storage outboard (tributary-proof), 0.2% of the shard
//! <asset id hex>/<name>.record    a small file about the asset (a provider's copy of its manifest,
//!                                 key envelopes), written by [`ShardStore::put_record`]
//! <asset id hex>/.tmp-*           a write in progress; removed when the store is opened
//! ```
//!
//! [`ShardStore::put`] checks the bytes against the expected BLAKE3 root, then writes a temporary file,
//! fsyncs it, renames it into place and fsyncs the directory, for the outboard and then the shard. A
//! rename is atomic, so a reader sees either no shard or the whole of it, never half; a crash leaves at
//! most a temporary file, which [`ShardStore::open`] deletes. An outboard that does not match its shard
//! (a crash between the two renames while replacing a shard) is detected and rebuilt by
//! [`ShardStore::prove`]. Records are written the same way (temporary file, fsync, rename), so a record
//! is always either its previous or its new content. Deleting an asset's last shard deletes its
//! records. One process uses a store at a time, enforced by the `LOCK` file.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tributary_proof::{ProofError, StorageProof, outboard, prove_from_outboard};

use crate::error::{Result, StoreError};
use crate::limits::{RECORD_BYTES_MAX, RECORD_NAME_BYTES_MAX, SHARD_BYTES_MAX};
use crate::manifest::ContentHash;

/// Prefix of temporary files.
const TEMPORARY_PREFIX: &str = ".tmp-";

/// Distinguishes temporary files written by one process.
static TEMPORARY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of shards. See the module docs.
#[derive(Debug)]
pub struct ShardStore {
    directory: PathBuf,
    /// Held open for its advisory lock.
    _lock: File,
}

impl ShardStore {
    /// Opens (creating if needed) the store at `directory`, takes its lock and deletes any temporary
    /// files left by a crash.
    pub fn open(directory: impl Into<PathBuf>) -> Result<Self> {
        let directory = directory.into();
        fs::create_dir_all(&directory).map_err(|error| StoreError::io(&directory, error))?;
        let lock_path = directory.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| StoreError::io(&lock_path, error))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::StoreLocked { path: lock_path });
        }
        let store = Self {
            directory,
            _lock: lock,
        };
        store.remove_temporary_files()?;
        Ok(store)
    }

    fn remove_temporary_files(&self) -> Result<()> {
        for asset_directory in self.asset_directories()? {
            for entry in read_directory(&asset_directory)? {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(TEMPORARY_PREFIX))
                {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(|error| StoreError::io(&path, error))?;
                }
            }
        }
        Ok(())
    }

    fn asset_directories(&self) -> Result<Vec<PathBuf>> {
        Ok(read_directory(&self.directory)?
            .into_iter()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.parse::<ContentHash>().is_ok())
            })
            .map(|entry| entry.path())
            .collect())
    }

    fn asset_directory(&self, asset_id: &ContentHash) -> PathBuf {
        self.directory.join(asset_id.to_hex())
    }

    /// Where shard `index` of `asset_id` is (or would be) kept: for serving the file in place.
    /// Replaced only by an atomic rename of identical bytes (a shard is checked against its
    /// root before it is stored).
    pub fn shard_path(&self, asset_id: &ContentHash, index: u32) -> PathBuf {
        self.asset_directory(asset_id)
            .join(format!("{index}.shard"))
    }

    fn outboard_path(&self, asset_id: &ContentHash, index: u32) -> PathBuf {
        self.asset_directory(asset_id)
            .join(format!("{index}.outboard"))
    }

    fn record_path(&self, asset_id: &ContentHash, name: &str) -> PathBuf {
        self.asset_directory(asset_id)
            .join(format!("{name}.record"))
    }

    /// Whether shard `index` of `asset_id` is stored (without reading or checking it).
    pub fn contains(&self, asset_id: &ContentHash, index: u32) -> Result<bool> {
        let path = self.shard_path(asset_id, index);
        path.try_exists()
            .map_err(|error| StoreError::io(&path, error))
    }

    /// Stores the record `name` about `asset_id` (at most [`RECORD_BYTES_MAX`] bytes), replacing any
    /// record of that name. Durable when it returns; a crash leaves the old record or the new one,
    /// never a mix. `name` is 1 to [`RECORD_NAME_BYTES_MAX`] lowercase ASCII letters or `-`.
    pub fn put_record(&self, asset_id: &ContentHash, name: &str, bytes: &[u8]) -> Result<()> {
        check_record_name(name)?;
        if bytes.len() > RECORD_BYTES_MAX {
            return Err(StoreError::invalid_option(
                "record",
                format!(
                    "{} bytes, more than the limit of {RECORD_BYTES_MAX}",
                    bytes.len()
                ),
            ));
        }
        let directory = self.asset_directory(asset_id);
        fs::create_dir_all(&directory).map_err(|error| StoreError::io(&directory, error))?;
        sync_directory(&self.directory)?;
        write_atomically(&directory, &self.record_path(asset_id, name), bytes)
    }

    /// Reads the record `name` about `asset_id`; `None` if there is none. A file on disk larger than
    /// [`RECORD_BYTES_MAX`] is refused, not read.
    pub fn record(&self, asset_id: &ContentHash, name: &str) -> Result<Option<Vec<u8>>> {
        check_record_name(name)?;
        let path = self.record_path(asset_id, name);
        let length = match fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io(&path, error)),
        };
        if length > RECORD_BYTES_MAX as u64 {
            return Err(StoreError::Malformed {
                what: "record",
                reason: format!(
                    "{} is {length} bytes, more than the limit of {RECORD_BYTES_MAX}",
                    path.display()
                ),
            });
        }
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::io(&path, error)),
        }
    }

    /// Stores shard `index` of `asset_id` after checking that `bytes` hash to `expected_root`, replacing
    /// any shard stored there before. Durable when it returns.
    pub fn put(
        &self,
        asset_id: &ContentHash,
        index: u32,
        bytes: &[u8],
        expected_root: &ContentHash,
    ) -> Result<()> {
        self.put_from_reader(asset_id, index, bytes, bytes.len() as u64, expected_root)
    }

    /// [`put`](Self::put) from a reader holding exactly `shard_len` bytes (an upload as it
    /// arrives). One pass writes the shard to a temporary file, hashes it and builds its
    /// outboard, without holding it in memory; it takes its place only if its root is
    /// `expected_root`. A reader that holds fewer or more bytes, or fails, stores nothing.
    pub fn put_from_reader(
        &self,
        asset_id: &ContentHash,
        index: u32,
        shard: impl Read,
        shard_len: u64,
        expected_root: &ContentHash,
    ) -> Result<()> {
        if shard_len > SHARD_BYTES_MAX {
            return Err(StoreError::invalid_option(
                "shard",
                format!("{shard_len} bytes, more than the limit of {SHARD_BYTES_MAX}"),
            ));
        }
        let directory = self.asset_directory(asset_id);
        fs::create_dir_all(&directory).map_err(|error| StoreError::io(&directory, error))?;
        sync_directory(&self.directory)?;
        let target = self.shard_path(asset_id, index);
        let temporary = temporary_path(&directory, &target);
        let result = (|| {
            let file =
                File::create(&temporary).map_err(|error| StoreError::io(&temporary, error))?;
            let mut tee = Tee {
                reader: shard,
                writer: BufWriter::with_capacity(WRITE_PIECE_BYTES, WritebackFile::new(file)),
                write_error: None,
            };
            let mut outboard_bytes = Vec::new();
            let built = outboard(&mut tee, shard_len, &mut outboard_bytes);
            if let Some(error) = tee.write_error.take() {
                return Err(StoreError::io(&temporary, error));
            }
            let root = built.map_err(|source| self.proof_error(asset_id, index, source))?;
            check_root(asset_id, index, ContentHash(root), expected_root)?;
            tee.writer
                .into_inner()
                .map_err(|error| error.into_error())
                .and_then(|file| file.file.sync_all())
                .map_err(|error| StoreError::io(&temporary, error))?;
            // The outboard first: a shard in place always has its outboard.
            write_atomically(
                &directory,
                &self.outboard_path(asset_id, index),
                &outboard_bytes,
            )?;
            fs::rename(&temporary, &target).map_err(|error| StoreError::io(&target, error))?;
            sync_directory(&directory)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }

    /// Reads shard `index` of `asset_id`, checking it against `expected_root`; `None` if not stored.
    /// Fails with [`StoreError::ShardRootMismatch`] if the bytes on disk have rotted.
    pub fn get(
        &self,
        asset_id: &ContentHash,
        index: u32,
        expected_root: &ContentHash,
    ) -> Result<Option<Vec<u8>>> {
        let path = self.shard_path(asset_id, index);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io(&path, error)),
        };
        check_root(asset_id, index, ContentHash::of(&bytes), expected_root)?;
        Ok(Some(bytes))
    }

    /// Deletes shard `index` of `asset_id` (and its outboard); returns whether it was stored.
    pub fn delete(&self, asset_id: &ContentHash, index: u32) -> Result<bool> {
        let shard_path = self.shard_path(asset_id, index);
        let existed = match fs::remove_file(&shard_path) {
            Ok(()) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(StoreError::io(&shard_path, error)),
        };
        let outboard_path = self.outboard_path(asset_id, index);
        match fs::remove_file(&outboard_path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io(&outboard_path, error)),
        }
        let directory = self.asset_directory(asset_id);
        if existed {
            sync_directory(&directory)?;
        }
        // With its last shard gone, the asset's records go too.
        let entries = read_directory(&directory).unwrap_or_default();
        let any_shard = entries.iter().any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.ends_with(".shard"))
        });
        if !any_shard {
            for entry in entries {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.ends_with(".record"))
                {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(|error| StoreError::io(&path, error))?;
                }
            }
        }
        // Remove the asset's directory once empty (fails harmlessly if not).
        if fs::remove_dir(&directory).is_ok() {
            sync_directory(&self.directory)?;
        }
        Ok(existed)
    }

    /// Every stored shard as `(asset id, index)`, sorted.
    pub fn list(&self) -> Result<Vec<(ContentHash, u32)>> {
        let mut shards = Vec::new();
        for directory in self.asset_directories()? {
            let Some(asset_id) = directory
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<ContentHash>().ok())
            else {
                continue;
            };
            for entry in read_directory(&directory)? {
                let name = entry.file_name();
                let Some(index) = name
                    .to_str()
                    .and_then(|name| name.strip_suffix(".shard"))
                    .and_then(|index| index.parse::<u32>().ok())
                else {
                    continue;
                };
                shards.push((asset_id, index));
            }
        }
        shards.sort_unstable();
        Ok(shards)
    }

    /// Proves that this store holds `chunks` of shard `index` of `asset_id` (root `expected_root`),
    /// reading only the challenged chunks' 16 KiB groups and the outboard. An outboard that does not match
    /// its shard is rebuilt from the shard; a shard that does not match its root is an error
    /// ([`StoreError::ShardRootMismatch`]): repair it from other providers.
    pub fn prove(
        &self,
        asset_id: &ContentHash,
        index: u32,
        expected_root: &ContentHash,
        chunks: &[u64],
    ) -> Result<StorageProof> {
        let shard_path = self.shard_path(asset_id, index);
        let shard = File::open(&shard_path).map_err(|error| StoreError::io(&shard_path, error))?;
        let shard_len = shard
            .metadata()
            .map_err(|error| StoreError::io(&shard_path, error))?
            .len();
        let outboard_path = self.outboard_path(asset_id, index);
        let attempt = File::open(&outboard_path)
            .map_err(|error| ProofError::Io {
                what: "outboard",
                offset: 0,
                source: error,
            })
            .and_then(|outboard_file| {
                prove_from_outboard(&shard, &outboard_file, shard_len, &expected_root.0, chunks)
            });
        match attempt {
            Ok(proof) => Ok(proof),
            Err(ProofError::LocalCopyCorrupt | ProofError::Io { .. }) => {
                // Rebuild the outboard from the shard, checking the shard's root on the way.
                let mut outboard_bytes = Vec::new();
                let root = outboard(&shard, shard_len, &mut outboard_bytes)
                    .map_err(|source| self.proof_error(asset_id, index, source))?;
                check_root(asset_id, index, ContentHash(root), expected_root)?;
                let directory = self.asset_directory(asset_id);
                write_atomically(&directory, &outboard_path, &outboard_bytes)?;
                prove_from_outboard(&shard, &outboard_bytes, shard_len, &expected_root.0, chunks)
                    .map_err(|source| self.proof_error(asset_id, index, source))
            }
            Err(source) => Err(self.proof_error(asset_id, index, source)),
        }
    }

    fn proof_error(&self, asset_id: &ContentHash, index: u32, source: ProofError) -> StoreError {
        StoreError::Proof {
            asset: asset_id.to_hex(),
            index,
            source,
        }
    }
}

/// Record names are short and plain, so a name can never reach outside the asset's directory.
fn check_record_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= RECORD_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'-');
    if plain {
        Ok(())
    } else {
        Err(StoreError::invalid_option(
            "record name",
            format!("`{name}`: use 1 to {RECORD_NAME_BYTES_MAX} lowercase ASCII letters or `-`"),
        ))
    }
}

fn read_directory(directory: &Path) -> Result<Vec<fs::DirEntry>> {
    fs::read_dir(directory)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .map_err(|error| StoreError::io(directory, error))
}

/// [`StoreError::ShardRootMismatch`] unless shard `index` of `asset_id` hashed to `expected`.
fn check_root(
    asset_id: &ContentHash,
    index: u32,
    actual: ContentHash,
    expected: &ContentHash,
) -> Result<()> {
    if actual != *expected {
        return Err(StoreError::ShardRootMismatch {
            asset: asset_id.to_hex(),
            index,
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(())
}

/// A temporary file in `directory` for `target`, named so [`ShardStore::open`] clears it away
/// after a crash.
fn temporary_path(directory: &Path, target: &Path) -> PathBuf {
    let file_name = target
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    directory.join(format!(
        "{TEMPORARY_PREFIX}{file_name}.{}.{}",
        std::process::id(),
        TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A reader that writes what it reads to `writer`; a failed write fails the read and is kept
/// in `write_error`, so the caller reports the disk, not the source.
struct Tee<R, W> {
    reader: R,
    writer: W,
    write_error: Option<std::io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.reader.read(buffer)?;
        if let Err(error) = self.writer.write_all(&buffer[..read]) {
            let failed = std::io::Error::new(error.kind(), "writing the shard failed");
            self.write_error = Some(error);
            return Err(failed);
        }
        Ok(read)
    }
}

/// A file written front to back whose dirty pages are handed to the disk as they accumulate,
/// [`WRITEBACK_STEP_BYTES`] at a time, instead of all at the fsync that makes the file durable.
/// A provider receives a shard over the network far slower than a disk takes it, so the disk
/// writes while the shard arrives and the final fsync waits only for the last step (measured:
/// the fsync of six 268 MB shards arriving at once took 0.55–0.7 s of each upload's 1.6 s).
struct WritebackFile {
    file: File,
    /// Bytes written.
    written: u64,
    /// Bytes already handed to the disk.
    handed: u64,
}

impl WritebackFile {
    fn new(file: File) -> Self {
        Self {
            file,
            written: 0,
            handed: 0,
        }
    }
}

impl Write for WritebackFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.written += written as u64;
        if self.written - self.handed >= WRITEBACK_STEP_BYTES {
            start_writeback(&self.file, self.handed, self.written - self.handed);
            self.handed = self.written;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// How many written bytes [`WritebackFile`] gathers before handing them to the disk.
const WRITEBACK_STEP_BYTES: u64 = 8 << 20;

/// Starts writing `length` bytes of `file` from `offset` to disk without waiting for them
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Only a hint: a failure is ignored, since
/// the fsync that follows makes the file durable and reports any error.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor `file` keeps open for the call's duration; it
    // reads no memory of ours.
    let _ = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            length,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

/// How many bytes [`write_atomically`] and [`ShardStore::put_from_reader`] hand the kernel per
/// write.
const WRITE_PIECE_BYTES: usize = 1 << 20;

/// Writes `bytes` to `target` through a fsynced temporary file in `directory`, a rename, and a directory
/// fsync.
fn write_atomically(directory: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_path(directory, target);
    let result = (|| {
        let mut file =
            File::create(&temporary).map_err(|error| StoreError::io(&temporary, error))?;
        // In pieces: a single write of hundreds of megabytes was two to three times slower here
        // than the same bytes a mebibyte at a time (the kernel's page cache work per call).
        bytes
            .chunks(WRITE_PIECE_BYTES)
            .try_for_each(|piece| file.write_all(piece))
            .and_then(|()| file.sync_all())
            .map_err(|error| StoreError::io(&temporary, error))?;
        drop(file);
        fs::rename(&temporary, target).map_err(|error| StoreError::io(target, error))?;
        sync_directory(directory)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_directory(directory: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| StoreError::io(directory, error))?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writeback_file_keeps_every_byte_and_hands_them_to_the_disk_in_steps() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("shard");
        let bytes: Vec<u8> = (0..(2 * WRITEBACK_STEP_BYTES + 12_345))
            .map(|index| (index % 251) as u8)
            .collect();
        let mut writer = BufWriter::with_capacity(
            WRITE_PIECE_BYTES,
            WritebackFile::new(File::create(&path).unwrap()),
        );
        for piece in bytes.chunks(100_003) {
            writer.write_all(piece).unwrap();
        }
        let file = writer
            .into_inner()
            .map_err(|error| error.into_error())
            .unwrap();
        assert_eq!(file.written, bytes.len() as u64);
        // Handed each time a step's worth has gathered; the tail waits for the fsync.
        assert!(file.handed >= WRITEBACK_STEP_BYTES, "{}", file.handed);
        assert!(file.written - file.handed < WRITEBACK_STEP_BYTES);
        file.file.sync_all().unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}
