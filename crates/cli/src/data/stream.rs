//! Streams an asset's shards from their providers into a [`Reassembler`] as they arrive.
//!
//! One thread per shard fetches it (over iroh-blobs every piece is verified against the shard's
//! root before it is handed on) into a bounded channel of blocks, one block per batch of
//! stripes. The caller's thread takes the same batch from each of `k` shards, decodes, decrypts
//! and writes it, so fetching, decoding and writing overlap, and only a few batches per shard
//! are ever in memory: the shards are never held whole.
//!
//! A shard whose fetch fails, at the start or part way, is replaced by the next candidate with
//! another shard index (or the same index at another provider); the replacement streams from
//! the batch being decoded on (a range request over iroh), so what was decoded is not fetched
//! again.

use std::{
    io::Write,
    sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel},
    time::Duration,
};

use indicatif::ProgressBar;
use tributary_store::Reassembler;

/// Blocks a shard's fetch may run ahead of the batch being decoded.
const BLOCKS_AHEAD: usize = 2;

/// Longest wait for a shard's next block; a fetch that stalls longer is dropped and replaced
/// (the transports have their own, shorter stall limits, so this only catches a hung thread).
const BLOCK_WAIT_MS: u64 = 120_000;

/// What a fetch thread sends its reader.
enum Message {
    /// The next block of the shard: exactly one batch's run, the last possibly shorter.
    Block(Vec<u8>),
    /// The fetch ended: whether iroh carried the shard, or why it failed.
    End(Result<bool, String>),
}

/// A [`Write`] that cuts what it is given into blocks of `block_bytes` and sends each to the
/// reader, reusing the blocks the reader hands back.
struct BlockSink {
    sender: SyncSender<Message>,
    returned: Receiver<Vec<u8>>,
    block: Vec<u8>,
    block_bytes: usize,
}

impl BlockSink {
    fn send_block(&mut self) -> std::io::Result<()> {
        let fresh = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.block_bytes));
        let full = std::mem::replace(&mut self.block, fresh);
        self.block.clear();
        self.sender.send(Message::Block(full)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the reader no longer wants this shard",
            )
        })
    }
}

impl Write for BlockSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = self.block_bytes - self.block.len();
        let taken = room.min(bytes.len());
        self.block.extend_from_slice(&bytes[..taken]);
        if self.block.len() == self.block_bytes {
            self.send_block()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.send_block()
    }
}

/// One shard being streamed: its index, the blocks arriving and where to hand blocks back.
struct Stream {
    index: usize,
    blocks: Receiver<Message>,
    recycle: SyncSender<Vec<u8>>,
    /// Blocks received so far (the next one is block number `received`).
    received: u64,
}

impl Stream {
    /// Waits for block `batch` of `length` bytes, dropping earlier ones; the reason on failure.
    fn block(&mut self, batch: u64, length: usize) -> Result<Vec<u8>, String> {
        loop {
            let message = self
                .blocks
                .recv_timeout(Duration::from_millis(BLOCK_WAIT_MS))
                .map_err(|error| match error {
                    RecvTimeoutError::Timeout => {
                        format!("no data for {BLOCK_WAIT_MS} ms")
                    }
                    RecvTimeoutError::Disconnected => "the fetch stopped".to_string(),
                })?;
            match message {
                Message::Block(block) => {
                    self.received += 1;
                    if self.received - 1 < batch {
                        let _ = self.recycle.try_send(block);
                        continue;
                    }
                    if block.len() != length {
                        return Err(format!(
                            "a block of {} bytes arrived where {length} were expected",
                            block.len()
                        ));
                    }
                    return Ok(block);
                }
                Message::End(Ok(_)) => {
                    return Err(format!(
                        "the fetch ended after {} of the blocks needed",
                        self.received
                    ));
                }
                Message::End(Err(reason)) => return Err(reason),
            }
        }
    }
}

/// Which shards were used, which were skipped and why, and how many came over iroh.
pub(super) struct Streamed {
    /// The shards streaming when the last stripe was decoded, by index, sorted (a shard replaced
    /// part way is in `skipped` instead).
    pub used: Vec<u8>,
    /// Candidates given up (shard index, why).
    pub skipped: Vec<(u8, String)>,
    /// How many of the used shards iroh carried (the rest came over HTTP).
    pub over_iroh: usize,
}

/// Streams `needed` (`k`) shards from `candidates` (shard index, and what `fetch` needs to
/// fetch it) into `reassembler` until every stripe is decoded.
///
/// `fetch` streams a candidate's shard from a byte offset on (a multiple of the batch's shard
/// bytes) into a writer and says whether iroh carried it; it runs on its own thread, one per
/// shard. `bar` counts decoded shard bytes. A candidate failing part way is replaced; when
/// candidates run out before `k` shards are streaming, this fails naming every skipped one.
pub(super) fn stream_shards<W, C, F>(
    reassembler: &mut Reassembler<'_, W>,
    shard_count: usize,
    needed: usize,
    candidates: impl IntoIterator<Item = (usize, C)>,
    fetch: F,
    bar: &ProgressBar,
) -> anyhow::Result<Streamed>
where
    W: Write + Send,
    C: Send,
    F: Fn(&C, u64, &mut (dyn Write + Send)) -> Result<bool, String> + Sync,
{
    let block_bytes = usize::try_from(reassembler.batch_shard_bytes())?;
    let mut candidates = candidates.into_iter();
    let mut skipped: Vec<(u8, String)> = Vec::new();
    let fetch = &fetch;
    std::thread::scope(|scope| {
        // Candidates passed over because a stream had their index: tried first when one fails.
        let mut deferred: Vec<(usize, C)> = Vec::new();
        // Starts the next usable candidate whose index no stream has, from batch `batch` on.
        let mut start_next =
            |active: &[Stream], skipped: &mut Vec<(u8, String)>, batch: u64| -> Option<Stream> {
                let free = |index: usize| active.iter().all(|stream| stream.index != index);
                let next = match deferred.iter().position(|(index, _)| free(*index)) {
                    Some(position) => Some(deferred.remove(position)),
                    None => loop {
                        let Some((index, candidate)) = candidates.next() else {
                            break None;
                        };
                        if index >= shard_count {
                            skipped.push((
                                u8::try_from(index).unwrap_or(u8::MAX),
                                format!("no shard {index} in a layout of {shard_count}"),
                            ));
                        } else if free(index) {
                            break Some((index, candidate));
                        } else {
                            deferred.push((index, candidate));
                        }
                    },
                };
                next.map(|(index, candidate)| {
                    let (sender, blocks) = sync_channel(BLOCKS_AHEAD);
                    let (recycle, returned) = sync_channel(BLOCKS_AHEAD + 1);
                    let mut sink = BlockSink {
                        sender,
                        returned,
                        block: Vec::with_capacity(block_bytes),
                        block_bytes,
                    };
                    let offset = batch * block_bytes as u64;
                    tracing::debug!(
                        target: "tributary::get",
                        shard = index,
                        offset,
                        "streaming a shard"
                    );
                    scope.spawn(move || {
                        let result = fetch(&candidate, offset, &mut sink).and_then(|iroh| {
                            sink.flush()
                                .map(|()| iroh)
                                .map_err(|error| error.to_string())
                        });
                        let _ = sink.sender.send(Message::End(result));
                    });
                    Stream {
                        index,
                        blocks,
                        recycle,
                        received: batch,
                    }
                })
            };
        let mut active: Vec<Stream> = Vec::with_capacity(needed);
        while active.len() < needed {
            match start_next(&active, &mut skipped, 0) {
                Some(stream) => active.push(stream),
                None => break,
            }
        }
        let mut batch = 0u64;
        while let Some(range) = reassembler.next_range() {
            if active.len() < needed {
                anyhow::bail!(
                    "only {} of the {needed} shards needed could be fetched; skipped: {skipped:?}",
                    active.len()
                );
            }
            let length = usize::try_from(range.end - range.start)?;
            let mut blocks: Vec<Option<Vec<u8>>> = vec![None; shard_count];
            let mut position = 0;
            while position < active.len() {
                match active[position].block(batch, length) {
                    Ok(block) => {
                        blocks[active[position].index] = Some(block);
                        position += 1;
                    }
                    Err(reason) => {
                        let failed = active.remove(position);
                        tracing::warn!(target: "tributary::get", shard = failed.index, %reason, "shard fetch failed; trying another");
                        skipped.push((u8::try_from(failed.index).unwrap_or(u8::MAX), reason));
                        // The failed stream's block for this batch (if any) is gone with it.
                        blocks[failed.index] = None;
                        match start_next(&active, &mut skipped, batch) {
                            Some(stream) => active.insert(position, stream),
                            None => anyhow::bail!(
                                "only {} of the {needed} shards needed could be fetched; skipped: {skipped:?}",
                                active.len()
                            ),
                        }
                    }
                }
            }
            let pieces: Vec<Option<&[u8]>> = blocks.iter().map(Option::as_deref).collect();
            reassembler.push(&pieces)?;
            for stream in &active {
                if let Some(block) = blocks[stream.index].take() {
                    let _ = stream.recycle.try_send(block);
                }
            }
            bar.inc((length * needed) as u64);
            batch += 1;
        }
        // Every stream's fetch has ended or ends now: collect how each arrived. Every byte used
        // was already decoded and the asset hash decides, so a late failure is only logged.
        let mut over_iroh = 0;
        let mut used = Vec::with_capacity(active.len());
        for stream in &active {
            used.push(u8::try_from(stream.index).unwrap_or(u8::MAX));
            loop {
                match stream
                    .blocks
                    .recv_timeout(Duration::from_millis(BLOCK_WAIT_MS))
                {
                    Ok(Message::Block(_)) => continue,
                    Ok(Message::End(Ok(iroh))) => {
                        over_iroh += usize::from(iroh);
                        break;
                    }
                    Ok(Message::End(Err(reason))) => {
                        tracing::warn!(target: "tributary::get", shard = stream.index, %reason, "shard fetch failed after its last block");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(target: "tributary::get", shard = stream.index, "shard fetch did not finish");
                        break;
                    }
                }
            }
        }
        used.sort_unstable();
        Ok(Streamed {
            used,
            skipped,
            over_iroh,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::{IngestOptions, ingest_bytes};

    /// A CSV of about `bytes` bytes.
    fn csv(bytes: usize) -> Vec<u8> {
        let mut text = String::from("a,b,label\n");
        let mut row = 0u64;
        while text.len() < bytes {
            text.push_str(&format!("{row},{},{}\n", row * 7919 % 104_729, row % 3));
            row += 1;
        }
        text.into_bytes()
    }

    /// How a test candidate behaves.
    #[derive(Clone, Copy)]
    enum Behaviour {
        Whole,
        /// Fails before writing anything.
        Refuses,
        /// Writes this many bytes, then fails.
        FailsAfter(usize),
    }

    /// What a test stream did.
    struct Run {
        streamed: anyhow::Result<Streamed>,
        /// The asset written (empty if streaming failed).
        written: Vec<u8>,
        /// Each fetch's shard index and start offset, in the order they started.
        starts: Vec<(usize, u64)>,
        batch_shard_bytes: u64,
    }

    /// Runs [`stream_shards`] over `candidates` (shard index, behaviour) with batches of 64 KiB.
    fn stream(bytes: &[u8], candidates: Vec<(usize, Behaviour)>) -> Run {
        let starts = std::sync::Mutex::new(Vec::new());
        let ingested = ingest_bytes("stream.csv", bytes, &IngestOptions::new(4, 2)).unwrap();
        let shards = ingested.shard_vecs();
        let shards = &shards;
        let mut reassembler = Reassembler::with_batch_bytes(
            &ingested.manifest,
            &ingested.key,
            "out",
            Vec::new(),
            64 << 10,
        )
        .unwrap();
        let streamed = stream_shards(
            &mut reassembler,
            6,
            4,
            candidates
                .into_iter()
                .map(|(index, behaviour)| (index, (index, behaviour))),
            |&(index, behaviour): &(usize, Behaviour),
             offset: u64,
             sink: &mut (dyn Write + Send)| {
                starts.lock().unwrap().push((index, offset));
                let shard = &shards[index];
                let offset = offset as usize;
                let (sent, fails) = match behaviour {
                    Behaviour::Whole => (shard.len(), false),
                    Behaviour::Refuses => (0, true),
                    Behaviour::FailsAfter(bytes) => (bytes, true),
                };
                // From the offset asked for, in odd pieces, as a transport hands them on.
                for piece in shard[offset..sent.max(offset)].chunks(16_411) {
                    sink.write_all(piece).map_err(|error| error.to_string())?;
                }
                if fails {
                    return Err(format!("shard {index} failed after {sent} bytes"));
                }
                Ok(index % 2 == 0)
            },
            &ProgressBar::hidden(),
        );
        let batch_shard_bytes = reassembler.batch_shard_bytes();
        let written = match streamed {
            Ok(_) => reassembler.finish().unwrap(),
            Err(_) => Vec::new(),
        };
        Run {
            streamed,
            written,
            starts: starts.into_inner().unwrap(),
            batch_shard_bytes,
        }
    }

    #[test]
    fn shards_failing_at_the_start_or_part_way_are_replaced() {
        let bytes = csv(3 << 20);
        let shard_bytes = ingest_bytes("stream.csv", &bytes, &IngestOptions::new(4, 2))
            .unwrap()
            .shard_bytes() as usize;
        // Shard 1 refuses at once, shard 2 fails half way, after several batches are decoded;
        // shard 2 at another provider and parity shard 4 stand by.
        let Run {
            streamed,
            written,
            starts,
            batch_shard_bytes,
        } = stream(
            &bytes,
            vec![
                (0, Behaviour::Whole),
                (1, Behaviour::Refuses),
                (2, Behaviour::FailsAfter(shard_bytes / 2)),
                (3, Behaviour::Whole),
                (2, Behaviour::Whole),
                (4, Behaviour::Whole),
            ],
        );
        let streamed = streamed.unwrap();
        assert!(written == bytes);
        assert_eq!(streamed.skipped.len(), 2, "{:?}", streamed.skipped);
        assert_eq!(streamed.skipped[0].0, 1);
        assert_eq!(streamed.skipped[1].0, 2);
        // Shard 1 is replaced by parity shard 4 (the standby 2 is passed over while the first
        // 2 streams), then the failed 2 by the standby 2.
        assert_eq!(streamed.used, vec![0, 2, 3, 4]);
        assert_eq!(streamed.over_iroh, 3);
        // The first four start at the beginning, as does shard 4 (shard 1 failed at once); the
        // standby 2 starts at the batch its failed twin was in, not at the beginning again.
        assert_eq!(starts.len(), 6, "{starts:?}");
        assert!(
            starts[..5].iter().all(|&(_, offset)| offset == 0),
            "{starts:?}"
        );
        let (index, offset) = starts[5];
        assert_eq!(index, 2);
        assert_eq!(
            offset,
            (shard_bytes as u64 / 2) / batch_shard_bytes * batch_shard_bytes
        );
        assert!(offset > 0, "{starts:?}");
    }

    #[test]
    fn too_few_shards_fail_naming_the_skipped_ones() {
        let bytes = csv(1 << 20);
        let streamed = stream(
            &bytes,
            vec![
                (0, Behaviour::Whole),
                (1, Behaviour::FailsAfter(1000)),
                (2, Behaviour::Whole),
                (3, Behaviour::Refuses),
                (4, Behaviour::Whole),
                (9, Behaviour::Whole),
            ],
        )
        .streamed;
        let error = format!("{:#}", streamed.err().unwrap());
        assert!(error.contains("only 3 of the 4 shards"), "{error}");
        assert!(
            error.contains("shard 1 failed") && error.contains("shard 3 failed"),
            "{error}"
        );
        assert!(error.contains("no shard 9"), "{error}");
    }
}
