//! Outboards: proving from a shard on disk without reading all of it.
//!
//! An outboard is the list of chaining values of the shard's 16 KiB groups
//! ([`OUTBOARD_GROUP_CHUNKS`] chunks each, the last one possibly short), 32 bytes per group: 2 MiB for a
//! 1 GiB shard (0.2%), kept in a file beside the shard. Shards of one group (16 KiB or less) have an empty
//! outboard. Building it ([`outboard`]) reads the shard once and yields its root.
//!
//! Proving one chunk ([`prove_from_outboard`]) then reads the chunk's 16 KiB group from the shard and the
//! outboard's values for the sibling subtrees above the group (every value except the group's own: 2 MiB
//! for a 1 GiB shard, read in batches of at most [`OUTBOARD_READ_VALUES_MAX`]), and merges them: a few
//! milliseconds instead of hashing the whole shard. The proof is checked against the expected root before
//! it is returned, so a corrupt local copy is reported ([`ProofError::LocalCopyCorrupt`]) rather than
//! submitted.
//!
//! Storage is reached through [`ReadAt`], implemented for byte slices and files; this crate opens no file.

use std::io::{self, Read, Write};

use blake3::hazmat::ChainingValue;

use crate::error::ProofError;
use crate::limits::{
    CHAINING_VALUE_BYTES, CHUNK_BYTES, OUTBOARD_GROUP_CHUNKS, OUTBOARD_READ_VALUES_MAX,
    SHARD_BYTES_MAX,
};
use crate::proof::{ProofSource, StorageProof, check_challenge, prove_from_source};
use crate::tree::{
    chunk_byte_range, chunk_count, left_chunks, merge_chaining_values, parent_chaining_value,
    root_hash, subtree_chaining_value,
};

/// Bytes in one outboard group.
const GROUP_BYTES: u64 = OUTBOARD_GROUP_CHUNKS * CHUNK_BYTES;

/// Groups read from the shard per read call while building an outboard (1 MiB).
const BUILD_READ_GROUPS: usize = 64;

/// Positioned reads, so one shard or outboard can serve many proofs without a shared cursor.
pub trait ReadAt {
    /// Fills `buffer` from `offset`, or fails (with [`io::ErrorKind::UnexpectedEof`] past the end).
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let source = start
            .checked_add(buffer.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(source);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buffer)
    }
}

impl ReadAt for std::fs::File {
    #[cfg(unix)]
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buffer, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut offset: u64, mut buffer: &mut [u8]) -> io::Result<()> {
        while !buffer.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(self, buffer, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => {
                    buffer = &mut buffer[read..];
                    offset += read as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buffer)
    }
}

fn group_count(shard_len: u64) -> u64 {
    chunk_count(shard_len).div_ceil(OUTBOARD_GROUP_CHUNKS)
}

/// Size in bytes of the outboard of a shard of `shard_len` bytes: 32 bytes per 16 KiB group, and 0 for a
/// shard of one group.
pub fn outboard_bytes(shard_len: u64) -> u64 {
    let groups = group_count(shard_len);
    if groups < 2 {
        0
    } else {
        groups * CHAINING_VALUE_BYTES as u64
    }
}

/// Reads exactly `shard_len` bytes of a shard from `shard`, writes its outboard to `outboard`
/// ([`outboard_bytes`] of them) and returns the shard's root, `blake3::hash(shard)`.
///
/// Streams: holds 1 MiB of shard and one chaining value per tree level. Fails with
/// [`ProofError::ShardLengthMismatch`] if the reader holds fewer or more than `shard_len` bytes.
pub fn outboard(
    mut shard: impl Read,
    shard_len: u64,
    mut outboard: impl Write,
) -> Result<[u8; 32], ProofError> {
    if shard_len > SHARD_BYTES_MAX {
        return Err(ProofError::ShardTooLarge {
            shard_len,
            max: SHARD_BYTES_MAX,
        });
    }
    let groups = group_count(shard_len);
    if groups < 2 {
        let mut bytes = vec![0u8; shard_len as usize];
        read_shard_exactly(&mut shard, &mut bytes, 0, shard_len)?;
        expect_end(&mut shard, shard_len)?;
        return Ok(*blake3::hash(&bytes).as_bytes());
    }
    let mut buffer = vec![0u8; BUILD_READ_GROUPS * GROUP_BYTES as usize];
    // Completed subtrees not yet merged, as in BLAKE3's incremental hasher: at most one per level.
    let mut stack: Vec<ChainingValue> = Vec::with_capacity(64);
    let mut group = 0u64;
    let mut offset = 0u64;
    while group < groups {
        let batch_end = (offset + buffer.len() as u64).min(shard_len);
        let batch = &mut buffer[..(batch_end - offset) as usize];
        read_shard_exactly(&mut shard, batch, offset, shard_len)?;
        for bytes in batch.chunks(GROUP_BYTES as usize) {
            let mut value = subtree_chaining_value(group * GROUP_BYTES, bytes);
            outboard
                .write_all(&value)
                .map_err(|source| ProofError::Io {
                    what: "outboard",
                    offset: group * CHAINING_VALUE_BYTES as u64,
                    source,
                })?;
            group += 1;
            if group == groups {
                // The last group: fold the stack from the right; the final merge is the root.
                while let Some(left) = stack.pop() {
                    if stack.is_empty() {
                        expect_end(&mut shard, shard_len)?;
                        outboard.flush().map_err(|source| ProofError::Io {
                            what: "outboard",
                            offset: outboard_bytes(shard_len),
                            source,
                        })?;
                        return Ok(*root_hash(&left, &value).as_bytes());
                    }
                    value = parent_chaining_value(&left, &value);
                }
            } else {
                // More groups follow, so every completed power-of-two subtree is a non-root node.
                let mut completed = group;
                while completed & 1 == 0 {
                    if let Some(left) = stack.pop() {
                        value = parent_chaining_value(&left, &value);
                    }
                    completed >>= 1;
                }
                stack.push(value);
            }
        }
        offset = batch_end;
    }
    // Unreachable for `groups >= 2`: the loop returns at the last group.
    Err(ProofError::ShardLengthMismatch {
        expected: shard_len,
        found: offset,
    })
}

/// Fills `buffer` from a sequential reader; a short read is a length mismatch.
fn read_shard_exactly(
    shard: &mut impl Read,
    buffer: &mut [u8],
    offset: u64,
    shard_len: u64,
) -> Result<(), ProofError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match shard.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Err(ProofError::ShardLengthMismatch {
                    expected: shard_len,
                    found: offset + filled as u64,
                });
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ProofError::Io {
                    what: "shard",
                    offset: offset + filled as u64,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Fails if the reader has bytes past `shard_len`.
fn expect_end(shard: &mut impl Read, shard_len: u64) -> Result<(), ProofError> {
    let mut probe = [0u8; 1];
    loop {
        match shard.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(ProofError::ShardLengthMismatch {
                    expected: shard_len,
                    found: shard_len + 1,
                });
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ProofError::Io {
                    what: "shard",
                    offset: shard_len,
                    source,
                });
            }
        }
    }
}

/// Proves `chunks` of the shard of length `shard_len` and root `root`, reading the shard and its outboard
/// (built by [`outboard`]) through [`ReadAt`]. The proof is verified against `root` before it is returned;
/// [`ProofError::LocalCopyCorrupt`] means the shard or outboard on disk is damaged.
///
/// Cost per chunk: one 16 KiB read of the shard and the outboard's values (32 bytes per 16 KiB of shard)
/// merged with one compression each; see the module docs.
pub fn prove_from_outboard<S, O>(
    shard: &S,
    outboard: &O,
    shard_len: u64,
    root: &[u8; 32],
    chunks: &[u64],
) -> Result<StorageProof, ProofError>
where
    S: ReadAt + ?Sized,
    O: ReadAt + ?Sized,
{
    check_challenge(shard_len, chunks)?;
    let source = OutboardSource {
        shard,
        outboard,
        shard_len,
        chunk_count: chunk_count(shard_len),
        has_outboard: group_count(shard_len) >= 2,
    };
    let proof = prove_from_source(&source, chunks)?;
    match proof.verify(root, shard_len, chunks) {
        Ok(()) => Ok(proof),
        Err(ProofError::RootMismatch) => Err(ProofError::LocalCopyCorrupt),
        Err(other) => Err(other),
    }
}

struct OutboardSource<'a, S: ?Sized, O: ?Sized> {
    shard: &'a S,
    outboard: &'a O,
    shard_len: u64,
    chunk_count: u64,
    has_outboard: bool,
}

impl<S: ReadAt + ?Sized, O: ReadAt + ?Sized> OutboardSource<'_, S, O> {
    fn read_shard(&self, start_chunk: u64, count: u64) -> Result<Vec<u8>, ProofError> {
        let (start, _) = chunk_byte_range(self.shard_len, start_chunk);
        let end = start_chunk
            .saturating_add(count)
            .saturating_mul(CHUNK_BYTES)
            .min(self.shard_len);
        let mut bytes = vec![0u8; (end - start) as usize];
        self.shard
            .read_exact_at(start, &mut bytes)
            .map_err(|source| ProofError::Io {
                what: "shard",
                offset: start,
                source,
            })?;
        Ok(bytes)
    }

    fn read_values(&self, first_group: u64, count: u64) -> Result<Vec<ChainingValue>, ProofError> {
        let offset = first_group * CHAINING_VALUE_BYTES as u64;
        let mut bytes = vec![0u8; count as usize * CHAINING_VALUE_BYTES];
        self.outboard
            .read_exact_at(offset, &mut bytes)
            .map_err(|source| ProofError::Io {
                what: "outboard",
                offset,
                source,
            })?;
        Ok(bytes
            .chunks_exact(CHAINING_VALUE_BYTES)
            .map(|value| {
                let mut out = [0u8; CHAINING_VALUE_BYTES];
                out.copy_from_slice(value);
                out
            })
            .collect())
    }
}

impl<S: ReadAt + ?Sized, O: ReadAt + ?Sized> ProofSource for OutboardSource<'_, S, O> {
    fn shard_len(&self) -> u64 {
        self.shard_len
    }

    fn chunk(&self, chunk: u64) -> Result<Vec<u8>, ProofError> {
        self.read_shard(chunk, 1)
    }

    fn subtree_value(&self, start: u64, count: u64) -> Result<ChainingValue, ProofError> {
        let group_aligned = start.is_multiple_of(OUTBOARD_GROUP_CHUNKS);
        if count <= OUTBOARD_GROUP_CHUNKS {
            let whole_group = self.has_outboard
                && group_aligned
                && (count == OUTBOARD_GROUP_CHUNKS || start + count == self.chunk_count);
            if whole_group {
                let values = self.read_values(start / OUTBOARD_GROUP_CHUNKS, 1)?;
                return merge_chaining_values(&values).ok_or(ProofError::LocalCopyCorrupt);
            }
            let bytes = self.read_shard(start, count)?;
            return Ok(subtree_chaining_value(start * CHUNK_BYTES, &bytes));
        }
        // A subtree larger than a group starts on a group boundary (it starts at a multiple of the power
        // of two at or above its size) and is made of whole groups plus, on the right edge, a short one.
        let groups = count.div_ceil(OUTBOARD_GROUP_CHUNKS);
        if self.has_outboard && group_aligned && groups <= OUTBOARD_READ_VALUES_MAX as u64 {
            let values = self.read_values(start / OUTBOARD_GROUP_CHUNKS, groups)?;
            return merge_chaining_values(&values).ok_or(ProofError::LocalCopyCorrupt);
        }
        let left = left_chunks(count);
        let left_value = self.subtree_value(start, left)?;
        let right_value = self.subtree_value(start + left, count - left)?;
        Ok(parent_chaining_value(&left_value, &right_value))
    }
}
