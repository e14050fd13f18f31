//! [`StorageProof`]: making one from a shard in memory, checking one against a root, and its canonical
//! byte encoding.
//!
//! A proof for a sorted list of challenged chunks holds the challenged chunks' bytes and the chaining values
//! of every subtree that contains no challenged chunk but whose sibling does, both in depth-first,
//! left-to-right order. The verifier walks the same tree (its shape follows from the shard's length),
//! hashes each chunk at its offset, merges upward and compares the result with the root, which is exactly
//! `blake3::hash(shard)`. One chunk of a 1 GiB shard costs 1,024 bytes of data plus 20 chaining values:
//! 1,671 bytes encoded.
//!
//! # Encoding (version 1)
//!
//! ```text
//! version: u8 = 1
//! chunk_count: u16 LE          (1 ..= CHALLENGE_CHUNKS_MAX)
//! chunk_count × { length: u16 LE (0 ..= 1024), bytes }
//! sibling_count: u16 LE        (0 ..= SIBLINGS_MAX)
//! sibling_count × [u8; 32]
//! ```
//!
//! Fixed-width fields and no optional parts make the encoding canonical: `encode(decode(b)) == b` for
//! every `b` that decodes. Decoding checks each count and length against [`crate::limits`] before using
//! it, and rejects trailing bytes.

use blake3::hazmat::ChainingValue;

use crate::error::ProofError;
use crate::limits::{
    CHAINING_VALUE_BYTES, CHALLENGE_CHUNKS_MAX, CHUNK_BYTES, SHARD_BYTES_MAX, SIBLINGS_MAX,
    STORAGE_PROOF_BYTES_MAX, STORAGE_PROOF_HEADER_BYTES,
};
use crate::tree::{
    chunk_byte_range, chunk_count, chunks_within, left_chunks, parent_chaining_value, root_hash,
    subtree_chaining_value,
};

/// The encoding's version byte.
pub const STORAGE_PROOF_VERSION: u8 = 1;

/// Proof that the prover holds the challenged chunks of a shard with a known BLAKE3 root.
///
/// Made by [`prove`] or [`crate::prove_from_outboard`], checked by [`StorageProof::verify`], carried as
/// bytes by [`StorageProof::encode`] / [`StorageProof::decode`]. The proof does not name its chunks or
/// shard: the verifier supplies them (from the ledger's deal and challenge), so a proof made for anything
/// else fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProof {
    /// The challenged chunks' bytes, in increasing chunk order.
    chunks: Vec<Vec<u8>>,
    /// Chaining values of the subtrees beside the challenged chunks' paths, depth-first, left to right.
    siblings: Vec<ChainingValue>,
}

/// Reads a shard's chunks and the chaining values of its subtrees, for the prover.
pub(crate) trait ProofSource {
    /// Length of the shard in bytes.
    fn shard_len(&self) -> u64;
    /// The bytes of chunk `chunk`.
    fn chunk(&self, chunk: u64) -> Result<Vec<u8>, ProofError>;
    /// The chaining value of the subtree of `count` chunks from chunk `start`; never the whole shard.
    fn subtree_value(&self, start: u64, count: u64) -> Result<ChainingValue, ProofError>;
}

/// Checks a challenge against a shard length; returns the shard's chunk count.
pub(crate) fn check_challenge(shard_len: u64, chunks: &[u64]) -> Result<u64, ProofError> {
    if shard_len > SHARD_BYTES_MAX {
        return Err(ProofError::ShardTooLarge {
            shard_len,
            max: SHARD_BYTES_MAX,
        });
    }
    if chunks.is_empty() {
        return Err(ProofError::NoChunks);
    }
    if chunks.len() > CHALLENGE_CHUNKS_MAX {
        return Err(ProofError::TooManyChunks {
            count: chunks.len(),
            max: CHALLENGE_CHUNKS_MAX,
        });
    }
    for (position, pair) in chunks.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(ProofError::ChunksNotIncreasing {
                position: position + 1,
                chunk: pair[1],
            });
        }
    }
    let count = chunk_count(shard_len);
    if let Some(&last) = chunks.last()
        && last >= count
    {
        return Err(ProofError::ChunkOutOfRange {
            chunk: last,
            chunk_count: count,
        });
    }
    Ok(count)
}

/// Number of siblings a proof of `chunks` (all within the subtree) holds for the subtree
/// `[start, start + count)`.
fn sibling_count(chunks: &[u64], start: u64, count: u64) -> usize {
    let inside = chunks_within(chunks, start, count);
    if inside.is_empty() {
        1
    } else if count == 1 {
        0
    } else {
        let left = left_chunks(count);
        sibling_count(inside, start, left) + sibling_count(inside, start + left, count - left)
    }
}

/// Exact size in bytes of the encoded proof of `chunks` of a shard of `shard_len` bytes, so a caller can
/// check a transaction budget before proving. Errors as [`StorageProof::verify`] does for a bad challenge.
pub fn storage_proof_bytes(shard_len: u64, chunks: &[u64]) -> Result<usize, ProofError> {
    let count = check_challenge(shard_len, chunks)?;
    let chunk_bytes: usize = chunks
        .iter()
        .map(|&chunk| {
            let (start, end) = chunk_byte_range(shard_len, chunk);
            2 + (end - start) as usize
        })
        .sum();
    Ok(STORAGE_PROOF_HEADER_BYTES
        + chunk_bytes
        + 2
        + sibling_count(chunks, 0, count) * CHAINING_VALUE_BYTES)
}

/// Proves that `shard` (held in memory) contains `chunks`, which must be strictly increasing and in
/// `0..chunk_count(shard.len())` (as [`crate::challenge_chunks`] returns them).
///
/// Cost: hashes the whole shard once (every byte outside the challenged chunks belongs to exactly one
/// sibling subtree), on one core. To prove from disk without reading the whole shard, keep an outboard
/// beside it and use [`crate::prove_from_outboard`].
pub fn prove(shard: &[u8], chunks: &[u64]) -> Result<StorageProof, ProofError> {
    prove_from_source(&MemorySource(shard), chunks)
}

pub(crate) fn prove_from_source(
    source: &impl ProofSource,
    chunks: &[u64],
) -> Result<StorageProof, ProofError> {
    let count = check_challenge(source.shard_len(), chunks)?;
    let mut proof = StorageProof {
        chunks: Vec::with_capacity(chunks.len()),
        siblings: Vec::with_capacity(sibling_count(chunks, 0, count)),
    };
    collect(source, chunks, 0, count, &mut proof)?;
    Ok(proof)
}

fn collect(
    source: &impl ProofSource,
    chunks: &[u64],
    start: u64,
    count: u64,
    proof: &mut StorageProof,
) -> Result<(), ProofError> {
    let inside = chunks_within(chunks, start, count);
    if inside.is_empty() {
        proof.siblings.push(source.subtree_value(start, count)?);
    } else if count == 1 {
        proof.chunks.push(source.chunk(start)?);
    } else {
        let left = left_chunks(count);
        collect(source, inside, start, left, proof)?;
        collect(source, inside, start + left, count - left, proof)?;
    }
    Ok(())
}

/// A shard held in memory.
struct MemorySource<'a>(&'a [u8]);

impl MemorySource<'_> {
    fn bytes(&self, start_chunk: u64, count: u64) -> &[u8] {
        let shard_len = self.0.len() as u64;
        let start = start_chunk.saturating_mul(CHUNK_BYTES).min(shard_len);
        let end = start_chunk
            .saturating_add(count)
            .saturating_mul(CHUNK_BYTES)
            .min(shard_len);
        // Both ends are clamped to the slice's length and `start <= end`.
        self.0.get(start as usize..end as usize).unwrap_or_default()
    }
}

impl ProofSource for MemorySource<'_> {
    fn shard_len(&self) -> u64 {
        self.0.len() as u64
    }

    fn chunk(&self, chunk: u64) -> Result<Vec<u8>, ProofError> {
        Ok(self.bytes(chunk, 1).to_vec())
    }

    fn subtree_value(&self, start: u64, count: u64) -> Result<ChainingValue, ProofError> {
        Ok(subtree_chaining_value(
            start * CHUNK_BYTES,
            self.bytes(start, count),
        ))
    }
}

/// Consumes a proof's chunks and siblings in order while the verifier walks the tree.
struct Reader<'a> {
    proof: &'a StorageProof,
    next_chunk: usize,
    next_sibling: usize,
}

impl StorageProof {
    /// Checks that this proof shows the chunks `chunks` of the shard with BLAKE3 root `root` (that is,
    /// `blake3::hash(shard)`) and length `shard_len`. `chunks` must be strictly increasing and in range, as
    /// [`crate::challenge_chunks`] returns them.
    ///
    /// Deterministic and cheap: one chunk hash and one parent compression per tree level per chunk.
    ///
    /// `shard_len` fixes the tree's shape; a proof whose chunks' paths do not reach the shard's right edge
    /// does not by itself bind the length, so the length must come from the same trusted record as the
    /// root (the deal), and whoever records them must check both (as `outboard` does).
    pub fn verify(
        &self,
        root: &[u8; 32],
        shard_len: u64,
        chunks: &[u64],
    ) -> Result<(), ProofError> {
        let count = check_challenge(shard_len, chunks)?;
        if self.chunks.len() != chunks.len() {
            return Err(ProofError::ShapeMismatch {
                what: "chunks",
                expected: chunks.len(),
                found: self.chunks.len(),
            });
        }
        let siblings_expected = sibling_count(chunks, 0, count);
        if self.siblings.len() != siblings_expected {
            return Err(ProofError::ShapeMismatch {
                what: "siblings",
                expected: siblings_expected,
                found: self.siblings.len(),
            });
        }
        for (data, &chunk) in self.chunks.iter().zip(chunks) {
            let (start, end) = chunk_byte_range(shard_len, chunk);
            if data.len() as u64 != end - start {
                return Err(ProofError::ChunkLengthMismatch {
                    chunk,
                    expected: (end - start) as usize,
                    found: data.len(),
                });
            }
        }
        let mut reader = Reader {
            proof: self,
            next_chunk: 0,
            next_sibling: 0,
        };
        let computed = if count == 1 {
            // The only chunk is the root (shapes were checked: one chunk, no sibling).
            blake3::hash(reader.next_chunk()?)
        } else {
            let left = left_chunks(count);
            let left_value = reader.value(chunks, 0, left)?;
            let right_value = reader.value(chunks, left, count - left)?;
            root_hash(&left_value, &right_value)
        };
        // `blake3::Hash` compares in constant time.
        if computed != blake3::Hash::from_bytes(*root) {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }

    /// The canonical encoding (see the module docs). Its length is at most
    /// [`STORAGE_PROOF_BYTES_MAX`] for any proof this crate makes or decodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(STORAGE_PROOF_VERSION);
        out.extend_from_slice(&(self.chunks.len() as u16).to_le_bytes());
        for chunk in &self.chunks {
            out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&(self.siblings.len() as u16).to_le_bytes());
        for sibling in &self.siblings {
            out.extend_from_slice(sibling);
        }
        out
    }

    /// Length of [`StorageProof::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        STORAGE_PROOF_HEADER_BYTES
            + self
                .chunks
                .iter()
                .map(|chunk| 2 + chunk.len())
                .sum::<usize>()
            + 2
            + self.siblings.len() * CHAINING_VALUE_BYTES
    }

    /// Decodes untrusted bytes, checking every count and length against [`crate::limits`] before using it.
    /// A decoded proof is well-formed, not yet verified: call [`StorageProof::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        if bytes.len() > STORAGE_PROOF_BYTES_MAX {
            return Err(ProofError::ProofTooLarge {
                bytes: bytes.len(),
                max: STORAGE_PROOF_BYTES_MAX,
            });
        }
        let mut input = Input { bytes, offset: 0 };
        let version = input.take("version", 1)?[0];
        if version != STORAGE_PROOF_VERSION {
            return Err(ProofError::UnsupportedVersion {
                found: version,
                expected: STORAGE_PROOF_VERSION,
            });
        }
        let chunk_count = input.u16("chunk count")? as usize;
        if chunk_count == 0 {
            return Err(ProofError::NoChunks);
        }
        check_field("chunk count", chunk_count, CHALLENGE_CHUNKS_MAX)?;
        let mut chunks = Vec::with_capacity(chunk_count);
        for _ in 0..chunk_count {
            let length = input.u16("chunk length")? as usize;
            check_field("chunk length", length, CHUNK_BYTES as usize)?;
            chunks.push(input.take("chunk", length)?.to_vec());
        }
        let sibling_count = input.u16("sibling count")? as usize;
        check_field("sibling count", sibling_count, SIBLINGS_MAX)?;
        let mut siblings = Vec::with_capacity(sibling_count);
        for _ in 0..sibling_count {
            let mut value = [0u8; CHAINING_VALUE_BYTES];
            value.copy_from_slice(input.take("sibling", CHAINING_VALUE_BYTES)?);
            siblings.push(value);
        }
        let extra = bytes.len() - input.offset;
        if extra != 0 {
            return Err(ProofError::TrailingBytes { extra });
        }
        Ok(Self { chunks, siblings })
    }

    /// The challenged chunks' bytes, in increasing chunk order.
    pub fn chunks(&self) -> &[Vec<u8>] {
        &self.chunks
    }

    /// Number of sibling chaining values.
    pub fn sibling_count(&self) -> usize {
        self.siblings.len()
    }
}

impl<'a> Reader<'a> {
    fn next_chunk(&mut self) -> Result<&'a [u8], ProofError> {
        let chunk = self
            .proof
            .chunks
            .get(self.next_chunk)
            .ok_or(ProofError::ShapeMismatch {
                what: "chunks",
                expected: self.next_chunk + 1,
                found: self.proof.chunks.len(),
            })?;
        self.next_chunk += 1;
        Ok(chunk)
    }

    fn next_sibling(&mut self) -> Result<ChainingValue, ProofError> {
        let sibling =
            self.proof
                .siblings
                .get(self.next_sibling)
                .ok_or(ProofError::ShapeMismatch {
                    what: "siblings",
                    expected: self.next_sibling + 1,
                    found: self.proof.siblings.len(),
                })?;
        self.next_sibling += 1;
        Ok(*sibling)
    }

    /// Chaining value of the (non-root) subtree `[start, start + count)`.
    fn value(
        &mut self,
        chunks: &[u64],
        start: u64,
        count: u64,
    ) -> Result<ChainingValue, ProofError> {
        let inside = chunks_within(chunks, start, count);
        if inside.is_empty() {
            self.next_sibling()
        } else if count == 1 {
            // A non-root chunk is never empty: only an empty shard has an empty chunk, and that is the root.
            let data = self.next_chunk()?;
            Ok(subtree_chaining_value(start * CHUNK_BYTES, data))
        } else {
            let left = left_chunks(count);
            let left_value = self.value(inside, start, left)?;
            let right_value = self.value(inside, start + left, count - left)?;
            Ok(parent_chaining_value(&left_value, &right_value))
        }
    }
}

fn check_field(field: &'static str, value: usize, max: usize) -> Result<(), ProofError> {
    if value > max {
        return Err(ProofError::FieldOverLimit { field, value, max });
    }
    Ok(())
}

/// A cursor over untrusted bytes.
struct Input<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], ProofError> {
        let available = self.bytes.len() - self.offset;
        if needed > available {
            return Err(ProofError::Truncated {
                field,
                offset: self.offset,
                needed,
                available,
            });
        }
        let taken = &self.bytes[self.offset..self.offset + needed];
        self.offset += needed;
        Ok(taken)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ProofError> {
        let bytes = self.take(field, 2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}
