//! Shard transfer between Tributary nodes over iroh + iroh-blobs.
//!
//! A [`BlobNode`] is one iroh endpoint. Its identity is the account's ed25519 key, so a peer's
//! endpoint id *is* its Tributary address: QUIC's TLS handshake authenticates who is reading, and
//! a reader checks that the endpoint it dialed belongs to the provider the ledger names. Blobs are
//! fetched with iroh-blobs' BLAKE3/bao verified streaming: every 16 KiB group is checked against
//! the blob's root (the shard root the ledger records) before it is handed on, so a corrupt or
//! truncated shard is detected as it arrives, never after.
//!
//! # What it owns
//!
//! * **Serving.** A provider's node serves shard files in place: [`BlobNode::serve_file`] imports a
//!   file into an iroh-blobs file store *by reference* (the store keeps only its bao outboard, no
//!   second copy), tagged so it stays until [`BlobNode::forget`]. A client's node serves bytes
//!   from memory ([`BlobNode::serve_bytes`]), e.g. for a benchmark.
//! * **Gating.** Every connection must present an endpoint id, and every request is for one whole
//!   blob, asked of a [`Gate`] with the reader's key and the blob's root: the provider answers from
//!   the ledger (owner, licensee, repairer). Requests for collections, pushes and observations are
//!   refused.
//! * **Fetching.** [`BlobNode::fetch`] dials an endpoint by [`BlobAddress`], checks the announced
//!   size against the size the caller expects (from the ledger) before reading any data, and
//!   streams verified bytes into a writer.
//!
//! # Network
//!
//! Endpoints bind the address they are given (loopback in tests) with relays, address lookup and
//! port mapping off: nothing is contacted but the peers a caller dials. The API is blocking (the
//! node's provider duties and the CLI are threads); each node runs its own small tokio runtime.

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{Endpoint, EndpointAddr, SecretKey, TransportAddr, endpoint::presets, protocol::Router};
use iroh_blobs::{
    BlobFormat, BlobsProtocol, Hash,
    api::{
        Store,
        blobs::{AddPathOptions, ImportMode},
    },
    get::fsm,
    provider::events::{
        AbortReason, ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage,
        RequestMode, ThrottleMode,
    },
    store::{
        GcConfig,
        fs::{FsStore, options::Options as FsOptions},
        mem::MemStore,
    },
};
use serde::{Deserialize, Serialize};

/// How long dialing a peer may take.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// How long one blob transfer may take, from dialing to the last byte.
pub const FETCH_TIMEOUT_MS: u64 = 300_000;
/// Longest a transfer may wait for its next piece before it is abandoned.
pub const STALL_TIMEOUT_MS: u64 = 30_000;
/// How often the provider's store drops blobs no longer tagged.
pub const GARBAGE_COLLECTION_INTERVAL_MS: u64 = 60_000;
/// Longest the provider's store holds a write to batch it with others.
const WRITE_BATCH_MS: u64 = 5;
/// Most addresses a [`BlobAddress`] may carry.
pub const ADDRESSES_MAX: usize = 16;
/// Provider events (connections, requests) queued for the gate before the provider waits.
const EVENT_QUEUE_CAPACITY: usize = 64;
/// Worker threads of a node's runtime.
const RUNTIME_THREADS: usize = 2;

/// What went wrong moving a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobsError {
    /// The endpoint could not be set up.
    #[error("cannot start the iroh endpoint on {bind}: {reason}")]
    Bind {
        /// The address asked for.
        bind: SocketAddr,
        /// Why not.
        reason: String,
    },
    /// The blob store could not be opened or used.
    #[error("blob store: {0}")]
    Store(String),
    /// This node serves no blobs (it was started to fetch only).
    #[error("this iroh node does not serve blobs")]
    NotServing,
    /// A file to serve does not hash to the root expected of it.
    #[error("{path} hashes to {actual}, not the expected {expected}")]
    RootMismatch {
        /// The file.
        path: PathBuf,
        /// The root asked for.
        expected: String,
        /// The file's root.
        actual: String,
    },
    /// A peer's address is unusable.
    #[error("bad iroh address: {0}")]
    BadAddress(String),
    /// The peer could not be reached.
    #[error("cannot reach {peer}: {reason}")]
    Connect {
        /// The peer's endpoint id, hex.
        peer: String,
        /// Why not.
        reason: String,
    },
    /// The peer announced a blob of another size than expected: refused before reading it.
    #[error("{peer} offers {hash} as {announced} bytes; expected {expected}")]
    SizeMismatch {
        /// The peer's endpoint id, hex.
        peer: String,
        /// The blob.
        hash: String,
        /// The size the peer announced.
        announced: u64,
        /// The size the caller expected.
        expected: u64,
    },
    /// The transfer failed: refused by the peer, a piece failed verification, or the stream broke.
    #[error("fetching {hash} from {peer}: {reason}")]
    Transfer {
        /// The peer's endpoint id, hex.
        peer: String,
        /// The blob.
        hash: String,
        /// Why.
        reason: String,
    },
    /// The transfer took longer than [`FETCH_TIMEOUT_MS`] or stalled for [`STALL_TIMEOUT_MS`].
    #[error("fetching {hash} from {peer} timed out")]
    Timeout {
        /// The peer's endpoint id, hex.
        peer: String,
        /// The blob.
        hash: String,
    },
    /// The writer the bytes went to failed.
    #[error("writing fetched bytes: {0}")]
    Write(#[source] std::io::Error),
}

/// Where a node can be dialed: its endpoint id (an ed25519 public key, equal to its Tributary
/// address) and direct socket addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobAddress {
    /// The endpoint id, 64 hex digits.
    pub id: String,
    /// Direct UDP addresses, at most [`ADDRESSES_MAX`].
    pub addresses: Vec<SocketAddr>,
}

impl BlobAddress {
    /// The endpoint id's 32 bytes.
    pub fn id_bytes(&self) -> Result<[u8; 32], BlobsError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&self.id, &mut bytes).map_err(|error| {
            BlobsError::BadAddress(format!("endpoint id `{}`: {error}", self.id))
        })?;
        Ok(bytes)
    }

    fn to_endpoint_address(&self) -> Result<EndpointAddr, BlobsError> {
        if self.addresses.is_empty() || self.addresses.len() > ADDRESSES_MAX {
            return Err(BlobsError::BadAddress(format!(
                "{} socket addresses; between 1 and {ADDRESSES_MAX} are needed",
                self.addresses.len()
            )));
        }
        let id = iroh::PublicKey::from_bytes(&self.id_bytes()?)
            .map_err(|error| BlobsError::BadAddress(format!("endpoint id: {error}")))?;
        Ok(EndpointAddr::from_parts(
            id,
            self.addresses.iter().copied().map(TransportAddr::Ip),
        ))
    }
}

/// Decides who may fetch which blob from a serving node.
pub trait Gate: Send + Sync + 'static {
    /// Whether the holder of the ed25519 key `reader` may fetch the blob whose BLAKE3 root is
    /// `root`; `Err` says why not (logged). Called off the network threads; it may block.
    fn allow(&self, reader: &[u8; 32], root: &[u8; 32]) -> Result<(), String>;
}

/// Lets every reader fetch every blob served: for a client serving its own uploads to peers it
/// chose, and for benchmarks.
pub struct OpenGate;

impl Gate for OpenGate {
    fn allow(&self, _reader: &[u8; 32], _root: &[u8; 32]) -> Result<(), String> {
        Ok(())
    }
}

/// What a node serves.
pub enum Serving {
    /// Nothing: the node only fetches.
    Nothing,
    /// Files imported by reference into a file store kept in this directory, behind a gate.
    Files {
        /// The store's directory (its database and outboards).
        directory: PathBuf,
        /// Who may read what.
        gate: Arc<dyn Gate>,
    },
    /// Bytes held in memory, behind a gate.
    Memory {
        /// Who may read what.
        gate: Arc<dyn Gate>,
    },
}

/// How a node starts.
pub struct BlobConfig {
    /// The ed25519 secret key (the account's), whose public key is the endpoint id.
    pub secret_key: [u8; 32],
    /// The UDP address to bind (port 0 for any).
    pub bind: SocketAddr,
    /// The addresses to announce in [`BlobNode::address`]; empty for the bound ones.
    pub announce: Vec<SocketAddr>,
}

/// Figures from one fetch.
#[derive(Clone, Copy, Debug)]
pub struct FetchStats {
    /// Payload bytes received (verified).
    pub bytes: u64,
    /// From dialing to the last byte.
    pub elapsed: Duration,
}

/// The blob store behind a serving node.
enum Backing {
    Files(FsStore),
    Memory(MemStore),
}

impl Backing {
    fn store(&self) -> &Store {
        match self {
            Self::Files(store) => store,
            Self::Memory(store) => store,
        }
    }
}

/// One iroh endpoint with its runtime, serving and fetching blobs. See the module docs.
pub struct BlobNode {
    runtime: Option<tokio::runtime::Runtime>,
    endpoint: Endpoint,
    router: Option<Router>,
    backing: Option<Backing>,
    announce: Vec<SocketAddr>,
}

impl BlobNode {
    /// Binds an endpoint with `config` and serves what `serving` says.
    pub fn start(config: BlobConfig, serving: Serving) -> Result<Self, BlobsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("tributary-blobs")
            .enable_all()
            .build()
            .map_err(|error| BlobsError::Bind {
                bind: config.bind,
                reason: format!("cannot start a runtime: {error}"),
            })?;
        let bind = config.bind;
        let started = block_on(runtime.handle(), async move {
            let endpoint = Endpoint::builder(presets::Minimal)
                .secret_key(SecretKey::from_bytes(&config.secret_key))
                .clear_ip_transports()
                .bind_addr(bind)
                .map_err(|error| BlobsError::Bind {
                    bind,
                    reason: error.to_string(),
                })?
                .bind()
                .await
                .map_err(|error| BlobsError::Bind {
                    bind,
                    reason: error.to_string(),
                })?;
            let (backing, gate) = match serving {
                Serving::Nothing => return Ok((endpoint, None, None)),
                Serving::Files { directory, gate } => {
                    let mut options = FsOptions::new(&directory);
                    // Serve every file from where it lies, however small: one copy on disk,
                    // and what is served is what the provider holds.
                    options.inline.max_data_inlined = 0;
                    // Writes are rare (a tag per shard): commit them at once rather than
                    // batching for half a second.
                    options.batch.max_write_duration = Duration::from_millis(WRITE_BATCH_MS);
                    options.gc = Some(GcConfig {
                        interval: Duration::from_millis(GARBAGE_COLLECTION_INTERVAL_MS),
                        add_protected: None,
                    });
                    let store = FsStore::load_with_opts(directory.join("blobs.db"), options)
                        .await
                        .map_err(|error| {
                            BlobsError::Store(format!("{}: {error}", directory.display()))
                        })?;
                    (Backing::Files(store), gate)
                }
                Serving::Memory { gate } => (Backing::Memory(MemStore::new()), gate),
            };
            let events = gated_events(gate);
            let protocol = BlobsProtocol::new(backing.store(), Some(events));
            let router = Router::builder(endpoint.clone())
                .accept(iroh_blobs::ALPN, protocol)
                .spawn();
            Ok((endpoint, Some(router), Some(backing)))
        });
        let (endpoint, router, backing) = match started {
            Ok(started) => started,
            Err(error) => {
                runtime.shutdown_background();
                return Err(error);
            }
        };
        tracing::debug!(target: "tributary::blobs", id = %endpoint.id(), sockets = ?endpoint.bound_sockets(), "iroh endpoint up");
        Ok(Self {
            runtime: Some(runtime),
            endpoint,
            router,
            backing,
            announce: config.announce,
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle(),
            // Only `drop` takes the runtime.
            None => unreachable!("a BlobNode's runtime is taken only when it is dropped"),
        }
    }

    fn store(&self) -> Result<&Store, BlobsError> {
        self.backing
            .as_ref()
            .map(Backing::store)
            .ok_or(BlobsError::NotServing)
    }

    /// This node's endpoint id (its ed25519 public key).
    pub fn id(&self) -> [u8; 32] {
        *self.endpoint.id().as_bytes()
    }

    /// Where peers dial this node.
    pub fn address(&self) -> BlobAddress {
        let addresses = if self.announce.is_empty() {
            self.endpoint.bound_sockets()
        } else {
            self.announce.clone()
        };
        BlobAddress {
            id: hex::encode(self.id()),
            addresses: addresses.into_iter().take(ADDRESSES_MAX).collect(),
        }
    }

    /// Serves the file at `path`, which must hash to `root`, in place (the store references the
    /// file; it must not change while served). Serving a root already served is a no-op.
    pub fn serve_file(&self, path: &Path, root: &[u8; 32]) -> Result<(), BlobsError> {
        let store = self.store()?.clone();
        let path = std::fs::canonicalize(path)
            .map_err(|error| BlobsError::Store(format!("{}: {error}", path.display())))?;
        let root = Hash::from_bytes(*root);
        block_on(self.handle(), async move {
            if store
                .blobs()
                .has(root)
                .await
                .map_err(|error| BlobsError::Store(error.to_string()))?
            {
                store
                    .tags()
                    .set(tag_name(&root), root)
                    .await
                    .map_err(|error| BlobsError::Store(error.to_string()))?;
                return Ok(());
            }
            let added = store
                .blobs()
                .add_path_with_opts(AddPathOptions {
                    path: path.clone(),
                    mode: ImportMode::TryReference,
                    format: BlobFormat::Raw,
                })
                .with_named_tag(tag_name(&root))
                .await
                .map_err(|error| BlobsError::Store(format!("{}: {error}", path.display())))?;
            if added.hash != root {
                let _ = store.tags().delete(tag_name(&added.hash)).await;
                return Err(BlobsError::RootMismatch {
                    path,
                    expected: root.to_hex().to_string(),
                    actual: added.hash.to_hex().to_string(),
                });
            }
            Ok(())
        })
    }

    /// Serves `bytes` from memory (or the store); returns their root.
    pub fn serve_bytes(&self, bytes: bytes::Bytes) -> Result<[u8; 32], BlobsError> {
        let store = self.store()?.clone();
        block_on(self.handle(), async move {
            let hash = store
                .blobs()
                .add_bytes(bytes)
                .temp_tag()
                .await
                .map_err(|error| BlobsError::Store(error.to_string()))?
                .hash();
            store
                .tags()
                .set(tag_name(&hash), hash)
                .await
                .map_err(|error| BlobsError::Store(error.to_string()))?;
            Ok(*hash.as_bytes())
        })
    }

    /// Stops serving `root`; the store drops its entry at its next collection (a referenced file
    /// itself is never deleted by the store).
    pub fn forget(&self, root: &[u8; 32]) -> Result<(), BlobsError> {
        let store = self.store()?.clone();
        let root = Hash::from_bytes(*root);
        block_on(self.handle(), async move {
            store
                .tags()
                .delete(tag_name(&root))
                .await
                .map(|_| ())
                .map_err(|error| BlobsError::Store(error.to_string()))
        })
    }

    /// Fetches the blob `root` of `size` bytes from `from`, writing its verified bytes to `sink`
    /// in order. Fails before reading data if `from` announces another size, and as soon as a
    /// piece fails verification.
    pub fn fetch(
        &self,
        from: &BlobAddress,
        root: &[u8; 32],
        size: u64,
        sink: &mut (dyn Write + Send),
    ) -> Result<FetchStats, BlobsError> {
        self.fetch_from(from, root, size, 0, sink)
    }

    /// [`fetch`](Self::fetch) of the blob's bytes from `offset` on (a range request: the peer
    /// sends the verified pieces from the one holding `offset`, and the bytes before `offset` are
    /// dropped here). `sink` gets exactly `size - offset` bytes; `FetchStats::bytes` counts them.
    pub fn fetch_from(
        &self,
        from: &BlobAddress,
        root: &[u8; 32],
        size: u64,
        offset: u64,
        sink: &mut (dyn Write + Send),
    ) -> Result<FetchStats, BlobsError> {
        if offset > size {
            return Err(BlobsError::Transfer {
                peer: from.id.clone(),
                hash: Hash::from_bytes(*root).to_hex().to_string(),
                reason: format!("offset {offset} is past the blob's end ({size} bytes)"),
            });
        }
        let address = from.to_endpoint_address()?;
        let endpoint = self.endpoint.clone();
        let root = Hash::from_bytes(*root);
        let peer = from.id.clone();
        let timeout = Duration::from_millis(FETCH_TIMEOUT_MS);
        let hash_hex = root.to_hex().to_string();
        block_on(self.handle(), async move {
            let started = Instant::now();
            match tokio::time::timeout(
                timeout,
                fetch_into(&endpoint, address, root, size, offset, &peer, sink),
            )
            .await
            {
                Ok(Ok(bytes)) => Ok(FetchStats {
                    bytes,
                    elapsed: started.elapsed(),
                }),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(BlobsError::Timeout {
                    peer,
                    hash: hash_hex,
                }),
            }
        })
    }

    /// [`fetch`](Self::fetch) into memory.
    pub fn fetch_to_vec(
        &self,
        from: &BlobAddress,
        root: &[u8; 32],
        size: u64,
    ) -> Result<Vec<u8>, BlobsError> {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        self.fetch(from, root, size, &mut bytes)?;
        Ok(bytes)
    }
}

impl Drop for BlobNode {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let router = self.router.take();
        let endpoint = self.endpoint.clone();
        let backing = self.backing.take();
        // Close connections politely and let the store flush, but never hang a caller.
        block_on(runtime.handle(), async move {
            let closing = async {
                if let Some(router) = router {
                    let _ = router.shutdown().await;
                }
                endpoint.close().await;
                if let Some(backing) = &backing {
                    let _ = backing.store().shutdown().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
        });
        runtime.shutdown_background();
    }
}

/// The tag that keeps `root` in a node's store.
fn tag_name(root: &Hash) -> String {
    format!("shard-{}", root.to_hex())
}

/// Runs `future` on `handle` to completion from blocking code, also when the caller is itself on
/// some runtime's thread (there a scoped thread waits instead, as a runtime must not block on
/// another inside its own context).
fn block_on<F>(handle: &tokio::runtime::Handle, future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return handle.block_on(future);
    }
    std::thread::scope(
        |scope| match scope.spawn(|| handle.block_on(future)).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    )
}

/// Dials `address` and streams the blob `root` from `offset` on into `sink`; returns the bytes
/// written.
async fn fetch_into(
    endpoint: &Endpoint,
    address: EndpointAddr,
    root: Hash,
    size: u64,
    offset: u64,
    peer: &str,
    sink: &mut (dyn Write + Send),
) -> Result<u64, BlobsError> {
    let transfer = |reason: String| BlobsError::Transfer {
        peer: peer.to_string(),
        hash: root.to_hex().to_string(),
        reason,
    };
    let stall = Duration::from_millis(STALL_TIMEOUT_MS);
    let connection = tokio::time::timeout(
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        endpoint.connect(address, iroh_blobs::ALPN),
    )
    .await
    .map_err(|_| BlobsError::Connect {
        peer: peer.to_string(),
        reason: format!("no answer within {CONNECT_TIMEOUT_MS} ms"),
    })?
    .map_err(|error| BlobsError::Connect {
        peer: peer.to_string(),
        reason: error.to_string(),
    })?;
    let request = if offset == 0 {
        iroh_blobs::protocol::GetRequest::blob(root)
    } else {
        // From the 1 KiB chunk holding `offset`; the peer answers from the start of the
        // verifiable piece holding that chunk.
        let first = bao_tree::ChunkNum(offset / 1024);
        iroh_blobs::protocol::GetRequest::blob_ranges(root, bao_tree::ChunkRanges::from(first..))
    };
    let initial = fsm::start(connection.clone(), request, Default::default());
    let connected = initial
        .next()
        .await
        .map_err(|error| transfer(error.to_string()))?;
    let fsm::ConnectedNext::StartRoot(start) = connected
        .next()
        .await
        .map_err(|error| transfer(error.to_string()))?
    else {
        return Err(transfer(
            "the peer answered with something other than the blob".into(),
        ));
    };
    let (mut content, announced) = tokio::time::timeout(stall, start.next().next())
        .await
        .map_err(|_| transfer(format!("no size header within {STALL_TIMEOUT_MS} ms")))?
        .map_err(|error| transfer(refusal(error.to_string())))?;
    if announced != size {
        connection.close(0u32.into(), b"wrong size");
        return Err(BlobsError::SizeMismatch {
            peer: peer.to_string(),
            hash: root.to_hex().to_string(),
            announced,
            expected: size,
        });
    }
    // Where the next piece must start: the first one anywhere up to `offset`, each later one
    // right after the one before.
    let mut position: Option<u64> = None;
    let end = loop {
        let next = tokio::time::timeout(stall, content.next())
            .await
            .map_err(|_| transfer(format!("stalled for {STALL_TIMEOUT_MS} ms")))?;
        match next {
            fsm::BlobContentNext::More((more, item)) => {
                let item =
                    item.map_err(|error| transfer(format!("verification failed: {error}")))?;
                if let bao_tree::io::BaoContentItem::Leaf(leaf) = item {
                    let in_place = match position {
                        None => leaf.offset <= offset,
                        Some(expected) => leaf.offset == expected,
                    };
                    if !in_place {
                        return Err(transfer(format!(
                            "a piece at offset {} arrived where {} was expected",
                            leaf.offset,
                            position.unwrap_or(offset)
                        )));
                    }
                    let end = leaf.offset + leaf.data.len() as u64;
                    if end > offset {
                        let skip = offset.saturating_sub(leaf.offset) as usize;
                        sink.write_all(&leaf.data[skip..])
                            .map_err(BlobsError::Write)?;
                    }
                    position = Some(end);
                }
                content = more;
            }
            fsm::BlobContentNext::Done(end) => break end,
        }
    };
    let arrived_to = position.unwrap_or(offset);
    if arrived_to != size {
        return Err(transfer(format!(
            "bytes {offset}..{arrived_to} of {size} arrived"
        )));
    }
    let written = size - offset;
    if let fsm::EndBlobNext::Closing(closing) = end.next() {
        let _ = closing.next().await;
    }
    Ok(written)
}

/// A provider's refusal reads as a stream reset; say so.
fn refusal(reason: String) -> String {
    format!("{reason} (the provider may have refused this reader or not hold the blob)")
}

/// An event sender that admits connections with an endpoint id and asks `gate` about every
/// blob request; everything else (collections, pushes, observations) is refused.
fn gated_events(gate: Arc<dyn Gate>) -> EventSender {
    let mask = EventMask {
        connected: ConnectMode::Intercept,
        get: RequestMode::Intercept,
        get_many: RequestMode::Disabled,
        push: RequestMode::Disabled,
        observe: ObserveMode::Intercept,
        throttle: ThrottleMode::None,
    };
    let (sender, mut receiver) = EventSender::channel(EVENT_QUEUE_CAPACITY, mask);
    let readers: Arc<Mutex<BTreeMap<u64, [u8; 32]>>> = Arc::default();
    tokio::spawn(async move {
        while let Some(message) = receiver.recv().await {
            match message {
                ProviderMessage::ClientConnected(message) => {
                    let verdict = match message.endpoint_id {
                        Some(id) => {
                            readers
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(message.connection_id, *id.as_bytes());
                            Ok(())
                        }
                        None => Err(AbortReason::Permission),
                    };
                    message.tx.send(verdict).await.ok();
                }
                ProviderMessage::ConnectionClosed(message) => {
                    readers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&message.connection_id);
                }
                ProviderMessage::GetRequestReceived(message) => {
                    let reader = readers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&message.connection_id)
                        .copied();
                    let root = *message.request.hash.as_bytes();
                    let whole_blob = message.request.ranges.is_blob();
                    let gate = gate.clone();
                    tokio::spawn(async move {
                        let verdict = match reader {
                            None => Err("no endpoint id".to_string()),
                            Some(_) if !whole_blob => {
                                Err("only whole-blob requests are served".to_string())
                            }
                            Some(reader) => {
                                tokio::task::spawn_blocking(move || gate.allow(&reader, &root))
                                    .await
                                    .unwrap_or_else(|error| Err(error.to_string()))
                            }
                        };
                        let verdict = verdict.map_err(|reason| {
                            tracing::info!(target: "tributary::blobs", reader = ?reader.map(hex::encode), root = %hex::encode(root), %reason, "refused a blob request");
                            AbortReason::Permission
                        });
                        message.tx.send(verdict).await.ok();
                    });
                }
                ProviderMessage::ObserveRequestReceived(message) => {
                    message.tx.send(Err(AbortReason::Permission)).await.ok();
                }
                ProviderMessage::GetManyRequestReceived(message) => {
                    message.tx.send(Err(AbortReason::Permission)).await.ok();
                }
                ProviderMessage::PushRequestReceived(message) => {
                    message.tx.send(Err(AbortReason::Permission)).await.ok();
                }
                _ => {}
            }
        }
    });
    sender
}

#[cfg(test)]
mod tests;
