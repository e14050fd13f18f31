//! Content-defined chunking with FastCDC (the 2020 algorithm), so an edit moves only nearby chunk
//! boundaries.
//!
//! Sizes are [`CHUNK_BYTES_MIN`], [`CHUNK_BYTES_AVERAGE`] and [`CHUNK_BYTES_MAX`] with FastCDC's default
//! normalisation (level 1) and gear table, so chunk boundaries are a pure function of the bytes. Chunking
//! is sequential by nature (each cut depends on the last); it runs alongside hashing during ingest.

use crate::limits::{CHUNK_BYTES_AVERAGE, CHUNK_BYTES_MAX, CHUNK_BYTES_MIN};

/// A chunk's place in the plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Byte offset.
    pub offset: usize,
    /// Length in bytes (at least 1).
    pub len: usize,
}

/// The content-defined chunks of `bytes`, in order, covering it exactly. Empty input has no chunks.
pub fn chunk_spans(bytes: &[u8]) -> Vec<ChunkSpan> {
    chunk_spans_iter(bytes).collect()
}

/// [`chunk_spans`], one chunk at a time, so work on a chunk can start as soon as it is cut.
pub fn chunk_spans_iter(bytes: &[u8]) -> impl Iterator<Item = ChunkSpan> + '_ {
    let chunker = (!bytes.is_empty()).then(|| {
        fastcdc::v2020::FastCDC::new(
            bytes,
            CHUNK_BYTES_MIN as usize,
            CHUNK_BYTES_AVERAGE as usize,
            CHUNK_BYTES_MAX as usize,
        )
    });
    chunker.into_iter().flatten().map(|chunk| ChunkSpan {
        offset: chunk.offset,
        len: chunk.length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_input_within_bounds() {
        let mut bytes = vec![0u8; 9 * 1024 * 1024 + 123];
        blake3::Hasher::new().finalize_xof().fill(&mut bytes);
        let spans = chunk_spans(&bytes);
        let mut end = 0;
        for (index, span) in spans.iter().enumerate() {
            assert_eq!(span.offset, end);
            assert!(span.len <= CHUNK_BYTES_MAX as usize);
            if index + 1 < spans.len() {
                assert!(span.len >= CHUNK_BYTES_MIN as usize);
            }
            end += span.len;
        }
        assert_eq!(end, bytes.len());
        assert!(chunk_spans(&[]).is_empty());
        assert_eq!(chunk_spans(&[1]), vec![ChunkSpan { offset: 0, len: 1 }]);
    }
}
