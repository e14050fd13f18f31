//! How shards move between providers, and the clock read requests are stamped with.
//!
//! A provider reads other providers' shards (to repair a failed deal) through a
//! [`ShardTransport`]. [`IrohTransport`] fetches them over iroh-blobs with verified streaming
//! from the endpoint the other provider announces at `ENDPOINT/blobs` (checking that its endpoint
//! id is the provider's address), and falls back to HTTP if it announces none;
//! [`HttpTransport`] posts a signed [`ReadRequest`] to the other provider's endpoint (the node
//! API's `/v1/storage/ADDRESS/read` route); [`MemoryTransport`] hands it straight to a
//! [`StorageProvider`] in the same process, so the deterministic storage simulation runs deals,
//! challenges, slashing and repair without sockets. The caller still verifies every shard against
//! the root the ledger records.
//!
//! [`Clock`] is where a provider reads the time for request expiry: [`SystemClock`] in a running
//! node, a simulated clock in the simulation.

use super::{ReadRequest, StorageProvider};
use std::{
    collections::BTreeMap,
    io::Write,
    sync::{Arc, RwLock},
    time::Duration,
};
use tributary_blobs::{BlobAddress, BlobNode};
use tributary_store::ContentHash;
use tributary_types::{Address, limits};

/// How long one shard download may take.
pub const SHARD_DOWNLOAD_TIMEOUT_MS: u64 = 120_000;
/// Largest `/blobs` answer read from a provider, in bytes (an id and a few socket addresses).
const BLOB_ADDRESS_BYTES_MAX: u64 = 4 * 1024;
/// Largest error body read from another provider, in bytes.
const ERROR_BODY_BYTES_MAX: u64 = 64 * 1024;

/// Reads a shard from another provider.
pub trait ShardTransport: Send + Sync {
    /// Sends `request` to the provider whose endpoint is `endpoint` for the shard whose root
    /// and size the ledger records as `root` and `size`; the shard's bytes, checked against
    /// both (callers need not hash them again), or why not.
    fn read_shard(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
    ) -> Result<Vec<u8>, String>;
}

/// Milliseconds since the Unix epoch, as a provider sees them.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock (0 if it is before 1970).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// Shards over HTTP: `POST {endpoint}/read`.
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_millis(SHARD_DOWNLOAD_TIMEOUT_MS)))
                .build()
                .into(),
        }
    }
}

/// `bytes` if they are the shard whose root and size are `root` and `size`.
fn checked(bytes: Vec<u8>, root: &[u8; 32], size: u64) -> Result<Vec<u8>, String> {
    if bytes.len() as u64 != size {
        return Err(format!(
            "the provider sent {} bytes; the shard has {size}",
            bytes.len()
        ));
    }
    if ContentHash::of_large(&bytes).0 != *root {
        return Err("the shard does not match its root on the ledger".into());
    }
    Ok(bytes)
}

impl ShardTransport for HttpTransport {
    fn read_shard(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
    ) -> Result<Vec<u8>, String> {
        let mut response = self
            .agent
            .post(format!("{endpoint}/read"))
            .send_json(request)
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response
                .body_mut()
                .with_config()
                .limit(ERROR_BODY_BYTES_MAX)
                .read_to_string()
                .unwrap_or_default();
            return Err(format!("HTTP {status}: {text}"));
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(size.min(limits::API_SHARD_BYTES_MAX as u64))
            .read_to_vec()
            .map_err(|error| error.to_string())?;
        checked(bytes, root, size)
    }
}

/// Shards over iroh-blobs from the endpoint a provider announces, through this provider's own
/// iroh node (so the reader's endpoint id is its address); HTTP for a provider announcing none.
pub struct IrohTransport {
    node: Arc<BlobNode>,
    http: HttpTransport,
}

impl IrohTransport {
    /// Reads through `node`.
    pub fn new(node: Arc<BlobNode>) -> Self {
        Self {
            node,
            http: HttpTransport::default(),
        }
    }

    /// [`ShardTransport::read_shard`], also saying whether iroh carried the shard (`false`: the
    /// provider announces no iroh endpoint and HTTP did). Either way the bytes are checked
    /// against `root` and `size`: iroh verifies them as they stream. A size above
    /// [`limits::API_SHARD_BYTES_MAX`] is refused before anything is fetched.
    pub fn fetch(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
    ) -> Result<(Vec<u8>, bool), String> {
        let capacity = size.min(limits::API_SHARD_BYTES_MAX as u64);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        let iroh = self.fetch_into(endpoint, request, root, size, 0, &mut bytes)?;
        Ok((bytes, iroh))
    }

    /// [`IrohTransport::fetch`] of the shard's bytes from `offset` on, streamed into `sink` in
    /// order; says whether iroh carried them. Over iroh that is a range request, and every piece
    /// is verified against `root` before `sink` sees it, so a caller may use bytes as they come;
    /// a failure part way leaves `sink` holding a verified prefix. Over HTTP the whole shard is
    /// fetched and checked before any of it is written.
    pub fn fetch_into(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
        offset: u64,
        sink: &mut (dyn Write + Send),
    ) -> Result<bool, String> {
        if size > limits::API_SHARD_BYTES_MAX as u64 {
            return Err(format!(
                "the ledger records {size} bytes for this shard, more than the limit of {}",
                limits::API_SHARD_BYTES_MAX
            ));
        }
        if offset > size {
            return Err(format!(
                "offset {offset} is past the end of a shard of {size} bytes"
            ));
        }
        match blob_address(&self.http.agent, endpoint, &request.provider)? {
            Some(address) => self
                .node
                .fetch_from(&address, root, size, offset, sink)
                .map(|_| true)
                .map_err(|error| format!("iroh: {error}")),
            None => {
                let bytes = self.http.read_shard(endpoint, request, root, size)?;
                sink.write_all(&bytes[offset as usize..])
                    .map_err(|error| format!("cannot keep the shard: {error}"))?;
                Ok(false)
            }
        }
    }
}

impl ShardTransport for IrohTransport {
    fn read_shard(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
    ) -> Result<Vec<u8>, String> {
        self.fetch(endpoint, request, root, size)
            .map(|(bytes, _)| bytes)
    }
}

/// The iroh address the provider at `endpoint` announces (`GET {endpoint}/blobs`), checked to
/// belong to `provider`; `None` if it announces none (HTTP 404).
pub fn blob_address(
    agent: &ureq::Agent,
    endpoint: &str,
    provider: &Address,
) -> Result<Option<BlobAddress>, String> {
    let mut response = agent
        .get(format!("{endpoint}/blobs"))
        .call()
        .map_err(|error| error.to_string())?;
    if response.status() == 404 {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("HTTP {} from {endpoint}/blobs", response.status()));
    }
    let address: BlobAddress = response
        .body_mut()
        .with_config()
        .limit(BLOB_ADDRESS_BYTES_MAX)
        .read_json()
        .map_err(|error| format!("{endpoint}/blobs: {error}"))?;
    if address.id != hex::encode(provider.0) {
        return Err(format!(
            "{endpoint} announces iroh endpoint {}, which is not provider {provider}",
            address.id
        ));
    }
    Ok(Some(address))
}

/// Shards between providers in one process, by endpoint; a provider missing from the map is
/// unreachable (crashed or cut off).
#[derive(Clone, Default)]
pub struct MemoryTransport {
    providers: Arc<RwLock<BTreeMap<String, Arc<StorageProvider>>>>,
    clock: Option<Arc<dyn Clock>>,
}

impl MemoryTransport {
    /// A transport whose providers check request expiry against `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            providers: Arc::default(),
            clock: Some(clock),
        }
    }

    /// Makes `provider` reachable at `endpoint`.
    pub fn connect(&self, endpoint: &str, provider: Arc<StorageProvider>) {
        self.providers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(endpoint.to_string(), provider);
    }

    /// Makes the provider at `endpoint` unreachable; returns whether it was reachable.
    pub fn disconnect(&self, endpoint: &str) -> bool {
        self.providers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(endpoint)
            .is_some()
    }

    /// The providers reachable now, by endpoint.
    pub fn reachable(&self) -> Vec<(String, Address)> {
        self.providers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(endpoint, provider)| (endpoint.clone(), provider.address()))
            .collect()
    }
}

impl ShardTransport for MemoryTransport {
    fn read_shard(
        &self,
        endpoint: &str,
        request: &ReadRequest,
        root: &[u8; 32],
        size: u64,
    ) -> Result<Vec<u8>, String> {
        let provider = self
            .providers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(endpoint)
            .cloned()
            .ok_or_else(|| format!("{endpoint} is unreachable"))?;
        let now_ms = self
            .clock
            .as_ref()
            .map_or_else(|| SystemClock.now_ms(), |clock| clock.now_ms());
        let bytes = provider
            .read(request, now_ms)
            .map_err(|error| error.to_string())?;
        checked(bytes, root, size)
    }
}
