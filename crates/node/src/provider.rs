//! A storage provider's service: holds shards for the deals it is party to, accepts and proves
//! them on chain, and serves them to readers the ledger allows.
//!
//! It owns an account key (its provider address on the ledger) and a crash-safe
//! [`ShardStore`]. What it does:
//! - [`StorageProvider::upload`]: takes a shard for a deal proposed to it, after checking the deal
//!   (this provider, still proposed) and that the bytes hash to the deal's shard root and size.
//! - [`StorageProvider::tick`] (run every few hundred milliseconds): registers the provider's offer
//!   if the ledger does not have it, accepts proposed deals whose shard it holds, and answers the
//!   open challenge of each active deal with a proof from disk. Each transaction is sent once per
//!   (deal, epoch); a dropped one is sent again once it leaves the mempool unfinalized.
//! - Serving shards over iroh-blobs ([`tributary_blobs`]): a provider opened with
//!   [`StorageProvider::open`] runs an iroh endpoint keyed by its account key and serves each
//!   shard file it holds in place, with BLAKE3/bao verified streaming. A request is allowed only
//!   if the reader's endpoint id (its address, authenticated by QUIC's handshake) may read the
//!   shard's asset on the ledger: an owner, the holder of an unexpired license, or a provider
//!   repairing the asset. [`StorageProvider::blob_address`] says where to dial it.
//! - [`StorageProvider::read`]: the same shards over HTTP, for a reader whose signed request
//!   verifies and whom the ledger allows (the fallback, and the simulator's path).
//!   Shards are ciphertext; this check keeps the provider from serving anyone the asset's terms
//!   exclude.
//! - [`StorageProvider::deliver_keys`] and [`StorageProvider::key`] (in [`envelopes`]): keep, for
//!   each asset it holds a shard of, the asset's manifest and the data key wrapped to each reader
//!   by an owner's key agent, and hand a reader the ledger allows its own envelope. A provider
//!   holds only wrapped keys: never a data key, never plaintext.

use commonware_cryptography::{Signer, Verifier as _, ed25519};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, OnceLock, Weak},
};
use tributary_blobs::{BlobAddress, BlobConfig, BlobNode, Gate, Serving};
use tributary_store::{ContentHash, ShardStore};
use tributary_types::{Address, Amount, AssetId, Call, DealId, DealView, TxHash};

pub mod chain;
pub mod envelopes;
mod repair;
pub mod transport;

pub use chain::{ChainError, ProviderChain, RemoteChain};
pub use transport::{
    Clock, HttpTransport, IrohTransport, MemoryTransport, ShardTransport, SystemClock,
};

pub use envelopes::{
    DeliveryReceipt, EnvelopeListing, KEY_DELIVERY_NAMESPACE, KEY_REQUEST_NAMESPACE, KeyDelivery,
    KeyRequest, KeyResponse,
};

/// Namespace of a reader's signature on a shard request.
pub const READ_NAMESPACE: &[u8] = b"tributary-shard-read-v1";

/// What a provider offers on the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Bytes offered.
    pub capacity_bytes: u64,
    /// Price per GiB per epoch.
    pub price_per_gib_epoch: Amount,
    /// Where readers and clients reach it.
    pub endpoint: String,
}

/// Where a provider's iroh endpoint binds, and what it announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobOptions {
    /// The UDP address to bind (port 0 for any).
    pub bind: SocketAddr,
    /// Addresses to announce to readers; empty for the bound ones.
    pub announce: Vec<SocketAddr>,
}

impl BlobOptions {
    /// Any free port on loopback (devnets, tests).
    pub fn loopback() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            announce: Vec::new(),
        }
    }
}

/// Why a provider refused a request.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No such deal on the finalized ledger.
    #[error("storage deal {0} not found")]
    DealNotFound(DealId),
    /// The deal names another provider.
    #[error("storage deal {deal} is with {provider}, not this provider")]
    NotMyDeal {
        /// The deal.
        deal: DealId,
        /// Its provider.
        provider: Address,
    },
    /// The deal is not waiting for its shard.
    #[error("storage deal {deal} is {status}; shards are taken only for proposed deals")]
    NotProposed {
        /// The deal.
        deal: DealId,
        /// Its status.
        status: String,
    },
    /// The bytes are not the deal's shard.
    #[error("the upload is not the shard of deal {deal}: {reason}")]
    WrongShard {
        /// The deal.
        deal: DealId,
        /// What differs.
        reason: String,
    },
    /// The signature does not verify, or the request expired (or expires too far ahead).
    #[error(
        "the request is not validly signed by {0}, or has expired; sign a fresh one (clocks must agree)"
    )]
    BadSignature(Address),
    /// The ledger does not let the reader read the asset.
    #[error(
        "{reader} may not read asset {asset}: it is neither an owner nor holds an unexpired license"
    )]
    NotAuthorised {
        /// The reader.
        reader: Address,
        /// The asset.
        asset: AssetId,
    },
    /// The provider's iroh endpoint could not start or serve.
    #[error("iroh: {0}")]
    Blobs(#[from] tributary_blobs::BlobsError),
    /// This provider does not hold that shard.
    #[error("this provider holds no shard {shard_index} of asset {asset}")]
    NoShard {
        /// The asset.
        asset: AssetId,
        /// The shard.
        shard_index: u8,
    },
    /// The signer of a key delivery is not an owner of the asset.
    #[error(
        "{signer} is not an owner of asset {asset}; only an owner's key agent delivers its keys"
    )]
    NotOwner {
        /// Who signed.
        signer: Address,
        /// The asset.
        asset: AssetId,
    },
    /// The asset has no storage layout on the ledger.
    #[error("asset {0} has no storage layout on the ledger; store it with `tributary asset add`")]
    NotStored(AssetId),
    /// This provider holds no shard of the asset.
    #[error(
        "this provider holds no shard of asset {0}; deliver keys to the providers in its deals (`tributary storage deals --asset {0}`)"
    )]
    AssetNotHeld(AssetId),
    /// The manifest sent is not the asset's.
    #[error("the manifest is not the one recorded on the ledger for asset {asset}: {reason}")]
    ManifestMismatch {
        /// The asset.
        asset: AssetId,
        /// What differs.
        reason: String,
    },
    /// No manifest was sent and this provider has none yet.
    #[error("this provider has no manifest of asset {0} yet; send it with the delivery")]
    ManifestRequired(AssetId),
    /// An envelope is unusable.
    #[error("invalid key envelope for {reader}: {reason}")]
    InvalidEnvelope {
        /// The reader it is for.
        reader: Address,
        /// Why.
        reason: String,
    },
    /// Too many envelopes in one delivery, or for one asset.
    #[error("too many key envelopes for asset {asset}: {count}, the limit is {max}")]
    TooManyEnvelopes {
        /// The asset.
        asset: AssetId,
        /// How many there would be.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No envelope for this reader (yet).
    #[error(
        "the owner's key agent has not delivered a key for {reader} yet; ask the owner of asset {asset} to run `tributary asset serve-keys --from OWNER`"
    )]
    NoEnvelope {
        /// The reader.
        reader: Address,
        /// The asset.
        asset: AssetId,
    },
    /// The body names another asset than the path.
    #[error("the request is for asset {body}, the path names {path}")]
    AssetMismatch {
        /// The asset in the path.
        path: AssetId,
        /// The asset in the body.
        body: AssetId,
    },
    /// A record on this provider's disk does not parse or match the ledger.
    #[error("the stored {what} of asset {asset} is damaged: {reason}")]
    RecordDamaged {
        /// Which record.
        what: &'static str,
        /// The asset.
        asset: AssetId,
        /// What is wrong.
        reason: String,
    },
    /// The local store failed.
    #[error("shard store: {0}")]
    Store(#[from] tributary_store::StoreError),
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Too few providers served a valid shard to rebuild a lost one.
    #[error("cannot repair deal {deal}: {held} of the {needed} shards needed could be read")]
    RepairSources {
        /// The failed deal.
        deal: DealId,
        /// Valid shards read.
        held: usize,
        /// Shards needed (k).
        needed: usize,
    },
}

impl ProviderError {
    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DealNotFound(_) => "deal_not_found",
            Self::NotMyDeal { .. } => "not_my_deal",
            Self::NotProposed { .. } => "deal_not_proposed",
            Self::WrongShard { .. } => "wrong_shard",
            Self::BadSignature(_) => "bad_signature",
            Self::NotAuthorised { .. } => "not_authorised",
            Self::NoShard { .. } => "no_shard",
            Self::NotOwner { .. } => "not_owner",
            Self::NotStored(_) => "not_stored",
            Self::AssetNotHeld(_) => "asset_not_held",
            Self::ManifestMismatch { .. } => "manifest_mismatch",
            Self::ManifestRequired(_) => "manifest_required",
            Self::InvalidEnvelope { .. } => "invalid_envelope",
            Self::TooManyEnvelopes { .. } => "too_many_envelopes",
            Self::NoEnvelope { .. } => "no_key_envelope",
            Self::AssetMismatch { .. } => "asset_mismatch",
            Self::RecordDamaged { .. } => "record_damaged",
            Self::Store(_) => "store_error",
            Self::Blobs(_) => "blob_transport",
            Self::Chain(_) => "chain_unavailable",
            Self::RepairSources { .. } => "repair_sources",
        }
    }
}

/// A reader's signed request for one shard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReadRequest {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// Which shard.
    pub shard_index: u8,
    /// The reader's address (its key verifies the signature).
    #[schema(value_type = String)]
    pub reader: Address,
    /// The provider asked (so a request cannot be replayed to another provider).
    #[schema(value_type = String)]
    pub provider: Address,
    /// Unix time in milliseconds after which the request is void.
    pub expires_ms: u64,
    /// ed25519 signature over [`ReadRequest::message`], hex.
    pub signature: String,
}

impl ReadRequest {
    /// The signed bytes: asset, shard index, provider and expiry.
    pub fn message(
        asset: &AssetId,
        shard_index: u8,
        provider: &Address,
        expires_ms: u64,
    ) -> Vec<u8> {
        let mut message = Vec::with_capacity(32 + 1 + 32 + 8);
        message.extend_from_slice(asset.as_bytes());
        message.push(shard_index);
        message.extend_from_slice(provider.as_bytes());
        message.extend_from_slice(&expires_ms.to_be_bytes());
        message
    }

    /// A request signed by `reader`.
    pub fn sign(
        reader: &ed25519::PrivateKey,
        asset: AssetId,
        shard_index: u8,
        provider: Address,
        expires_ms: u64,
    ) -> Self {
        let message = Self::message(&asset, shard_index, &provider, expires_ms);
        let signature = reader.sign(READ_NAMESPACE, &message);
        Self {
            asset,
            shard_index,
            reader: Address::from_public_key(&reader.public_key()),
            provider,
            expires_ms,
            signature: hex::encode(commonware_codec::Encode::encode(&signature)),
        }
    }

    fn verifies(&self, now_ms: u64) -> bool {
        if now_ms > self.expires_ms {
            return false;
        }
        let message = Self::message(
            &self.asset,
            self.shard_index,
            &self.provider,
            self.expires_ms,
        );
        signature_verifies(&self.reader, READ_NAMESPACE, &message, &self.signature)
    }
}

/// Whether `signature_hex` is `signer`'s ed25519 signature of `message` under `namespace`.
pub fn signature_verifies(
    signer: &Address,
    namespace: &[u8],
    message: &[u8],
    signature_hex: &str,
) -> bool {
    let Ok(key) = signer.public_key() else {
        return false;
    };
    let Ok(bytes) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(signature) = <ed25519::Signature as commonware_codec::DecodeExt<()>>::decode(
        commonware_codec::Copying(bytes.as_slice()),
    ) else {
        return false;
    };
    key.verify(namespace, message, &signature)
}

/// `signer`'s ed25519 signature of `message` under `namespace`, hex.
pub fn sign_hex(signer: &ed25519::PrivateKey, namespace: &[u8], message: &[u8]) -> String {
    hex::encode(commonware_codec::Encode::encode(
        &signer.sign(namespace, message),
    ))
}

/// One provider.
pub struct StorageProvider {
    signer: ed25519::PrivateKey,
    address: Address,
    store: ShardStore,
    chain: Arc<dyn ProviderChain>,
    offer: Offer,
    /// Transactions sent and not yet finalized or dropped, by what they were for.
    sent: Mutex<BTreeMap<Duty, TxHash>>,
    /// Held while an asset's key envelopes are read, merged and written back.
    envelopes: Mutex<()>,
    /// Challenges this provider could not answer (its copy is gone or damaged), so each is
    /// reported once rather than every tick; only the latest epoch's are kept.
    unprovable: Mutex<BTreeMap<DealId, u64>>,
    /// Reads other providers' shards for repairs.
    transport: Arc<dyn ShardTransport>,
    /// Stamps read requests with their expiry.
    clock: Arc<dyn Clock>,
    /// The iroh endpoint serving this provider's shards (none in the simulator).
    blobs: Option<Arc<BlobNode>>,
    /// Shard roots served over iroh, with the asset (what the gate checks) and shard index each
    /// belongs to.
    served: Arc<Served>,
    /// The ids of this provider's open deals when held shards were last checked against them
    /// ([`StorageProvider::release_closed`]); `None` when the next round must check: before the
    /// first check, and while a shard is held for a repair whose claim is undecided (its deal is
    /// another provider's until the claim lands, and if another repairer's claim lands first,
    /// this one's shard is an orphan).
    open_deals_checked: Mutex<Option<Vec<DealId>>>,
    /// Shards found unserved by a round of duties (after a restart), handed to a thread of
    /// their own so that importing them never delays a proof; with the roots queued.
    serve_queue: Option<ServeQueue>,
}

/// Shard roots served over iroh, with the asset and shard index of each.
type Served = Mutex<BTreeMap<[u8; 32], (AssetId, u32)>>;

/// The serving thread's queue and the roots put on it.
type ServeQueue = (
    std::sync::mpsc::Sender<ServeJob>,
    Mutex<std::collections::BTreeSet<[u8; 32]>>,
);

/// A shard for the serving thread.
struct ServeJob {
    path: std::path::PathBuf,
    root: [u8; 32],
    asset: AssetId,
    index: u32,
}

/// Lets a reader fetch a served shard if the ledger lets it read the shard's asset.
#[derive(Default)]
struct ProviderGate {
    provider: OnceLock<Weak<StorageProvider>>,
}

impl Gate for ProviderGate {
    fn allow(&self, reader: &[u8; 32], root: &[u8; 32]) -> Result<(), String> {
        let provider = self
            .provider
            .get()
            .and_then(Weak::upgrade)
            .ok_or("the provider is shutting down")?;
        let asset = provider
            .served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(root)
            .map(|(asset, _)| *asset)
            .ok_or("no shard with this root is served here")?;
        let reader = Address(*reader);
        match provider.may_read_shards(&reader, &asset) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProviderError::NotAuthorised { reader, asset }.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// What a provider transaction is for (so each is sent once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Duty {
    Register,
    Accept(DealId),
    Prove(DealId, u64),
    Repair(DealId),
}

impl StorageProvider {
    /// A provider with account key `signer`, keeping shards under `directory`, reading and
    /// writing the chain through `chain`, serving its shards and reading other providers' over
    /// iroh (an endpoint bound as `blobs` says, its blob store in `directory/iroh`).
    pub fn open(
        signer: ed25519::PrivateKey,
        directory: &Path,
        chain: Arc<dyn ProviderChain>,
        offer: Offer,
        blobs: BlobOptions,
    ) -> Result<Arc<Self>, ProviderError> {
        let gate = Arc::new(ProviderGate::default());
        let node = Arc::new(BlobNode::start(
            BlobConfig {
                secret_key: secret_seed(&signer),
                bind: blobs.bind,
                announce: blobs.announce,
            },
            Serving::Files {
                directory: directory.join("iroh"),
                gate: gate.clone(),
            },
        )?);
        let mut provider = Self::open_inner(
            signer,
            directory,
            chain,
            offer,
            Arc::new(IrohTransport::new(node.clone())),
            Arc::new(SystemClock),
        )?;
        let (sender, jobs) = std::sync::mpsc::channel::<ServeJob>();
        {
            // Weak: the provider's drop must drop the node (and release its store) at once.
            let node = Arc::downgrade(&node);
            let served = provider.served.clone();
            let address = provider.address;
            std::thread::Builder::new()
                .name("provider-serving".into())
                .spawn(move || {
                    for job in jobs {
                        let Some(node) = node.upgrade() else {
                            return;
                        };
                        serve_file(&node, &served, &address, &job);
                    }
                })
                .map_err(|source| {
                    ProviderError::Store(tributary_store::StoreError::Io {
                        path: directory.to_path_buf(),
                        source,
                    })
                })?;
        }
        provider.serve_queue = Some((sender, Mutex::default()));
        provider.blobs = Some(node);
        let provider = Arc::new(provider);
        let _ = gate.provider.set(Arc::downgrade(&provider));
        Ok(provider)
    }

    /// [`StorageProvider::open`] with its own transport to other providers and clock.
    pub fn open_with(
        signer: ed25519::PrivateKey,
        directory: &Path,
        chain: Arc<dyn ProviderChain>,
        offer: Offer,
        transport: Arc<dyn ShardTransport>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, ProviderError> {
        Self::open_inner(signer, directory, chain, offer, transport, clock).map(Arc::new)
    }

    fn open_inner(
        signer: ed25519::PrivateKey,
        directory: &Path,
        chain: Arc<dyn ProviderChain>,
        offer: Offer,
        transport: Arc<dyn ShardTransport>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        let store = ShardStore::open(directory)?;
        let address = Address::from_public_key(&signer.public_key());
        Ok(Self {
            signer,
            address,
            store,
            chain,
            offer,
            sent: Mutex::new(BTreeMap::new()),
            envelopes: Mutex::new(()),
            unprovable: Mutex::new(BTreeMap::new()),
            transport,
            clock,
            blobs: None,
            served: Arc::default(),
            open_deals_checked: Mutex::new(None),
            serve_queue: None,
        })
    }

    /// Where readers dial this provider's iroh endpoint; `None` if it serves over HTTP only.
    pub fn blob_address(&self) -> Option<BlobAddress> {
        self.blobs.as_ref().map(|node| node.address())
    }

    /// Whether `reader` may read `asset`'s shards: an owner or licensee, or a provider repairing
    /// the asset.
    fn may_read_shards(&self, reader: &Address, asset: &AssetId) -> Result<bool, ProviderError> {
        Ok(self.chain.may_read(reader, asset)? || self.may_repair(reader, asset)?)
    }

    /// Serves the stored shard `index` of `asset` (root `root`) over iroh, once.
    fn serve_shard(&self, asset: &AssetId, index: u32, root: &ContentHash) {
        let Some(node) = &self.blobs else {
            return;
        };
        if self.is_served(root) {
            return;
        }
        let job = ServeJob {
            path: self.store.shard_path(&ContentHash(asset.0), index),
            root: root.0,
            asset: *asset,
            index,
        };
        serve_file(node, &self.served, &self.address, &job);
    }

    fn is_served(&self, root: &ContentHash) -> bool {
        self.served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&root.0)
    }

    /// Queues a held, unserved shard of an active deal for the serving thread (once).
    fn queue_serving(&self, deal: &DealView, asset: &ContentHash, index: u32, root: &ContentHash) {
        let Some((sender, queued)) = &self.serve_queue else {
            return;
        };
        if self.is_served(root) || !matches!(self.store.contains(asset, index), Ok(true)) {
            return;
        }
        if queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(root.0)
        {
            let _ = sender.send(ServeJob {
                path: self.store.shard_path(asset, index),
                root: root.0,
                asset: deal.asset,
                index,
            });
        }
    }

    /// The provider's account address.
    pub fn address(&self) -> Address {
        self.address
    }

    fn deal(&self, id: DealId) -> Result<DealView, ProviderError> {
        self.chain.deal(id)?.ok_or(ProviderError::DealNotFound(id))
    }

    /// Takes the shard of proposed deal `id`.
    pub fn upload(&self, id: DealId, bytes: &[u8]) -> Result<(), ProviderError> {
        self.upload_from_reader(id, bytes, Some(bytes.len() as u64))
    }

    /// [`upload`](Self::upload) from a reader, as the shard arrives: it is written to disk while
    /// it is hashed, never held whole in memory. `announced` is the size the sender announced
    /// (HTTP `Content-Length`), checked against the deal before anything is read.
    pub fn upload_from_reader(
        &self,
        id: DealId,
        shard: impl std::io::Read,
        announced: Option<u64>,
    ) -> Result<(), ProviderError> {
        let deal = self.deal(id)?;
        if deal.provider != self.address {
            return Err(ProviderError::NotMyDeal {
                deal: id,
                provider: deal.provider,
            });
        }
        if deal.status != "proposed" {
            return Err(ProviderError::NotProposed {
                deal: id,
                status: deal.status,
            });
        }
        if let Some(announced) = announced
            && announced != deal.shard_bytes
        {
            return Err(ProviderError::WrongShard {
                deal: id,
                reason: format!(
                    "{announced} bytes, the deal's shard has {}",
                    deal.shard_bytes
                ),
            });
        }
        let root = ContentHash(deal.shard_root.0);
        let started = std::time::Instant::now();
        // The store checks the root in the same pass that builds the proof outboard.
        match self.store.put_from_reader(
            &ContentHash(deal.asset.0),
            u32::from(deal.shard_index),
            shard,
            deal.shard_bytes,
            &root,
        ) {
            Err(tributary_store::StoreError::ShardRootMismatch { .. }) => {
                return Err(ProviderError::WrongShard {
                    deal: id,
                    reason: "its BLAKE3 root differs from the deal's".into(),
                });
            }
            Err(tributary_store::StoreError::Proof {
                source: tributary_proof::ProofError::ShardLengthMismatch { .. },
                ..
            }) => {
                return Err(ProviderError::WrongShard {
                    deal: id,
                    reason: format!(
                        "its length differs from the deal's {} bytes",
                        deal.shard_bytes
                    ),
                });
            }
            stored => stored?,
        }
        let stored_ms = started.elapsed().as_millis();
        self.serve_shard(&deal.asset, u32::from(deal.shard_index), &root);
        let served_ms = started.elapsed().as_millis() - stored_ms;
        tracing::info!(target: "tributary::provider", provider = %self.address, deal = id, bytes = deal.shard_bytes, stored_ms, served_ms, "stored a shard");
        Ok(())
    }

    /// Serves a shard to a reader the ledger allows.
    pub fn read(&self, request: &ReadRequest, now_ms: u64) -> Result<Vec<u8>, ProviderError> {
        if request.provider != self.address || !request.verifies(now_ms) {
            return Err(ProviderError::BadSignature(request.reader));
        }
        if !self.may_read_shards(&request.reader, &request.asset)? {
            return Err(ProviderError::NotAuthorised {
                reader: request.reader,
                asset: request.asset,
            });
        }
        let layout = self.chain.storage_layout(&request.asset)?;
        let no_shard = || ProviderError::NoShard {
            asset: request.asset,
            shard_index: request.shard_index,
        };
        let root = layout
            .and_then(|layout| {
                layout
                    .shard_roots
                    .get(usize::from(request.shard_index))
                    .copied()
            })
            .ok_or_else(no_shard)?;
        self.store
            .get(
                &ContentHash(request.asset.0),
                u32::from(request.shard_index),
                &ContentHash(root.0),
            )?
            .ok_or_else(no_shard)
    }

    /// Sends the call `make` builds for `duty`, unless a transaction for it is pending or
    /// finalized already: then `make` (which may read or hash a shard) is not run at all.
    /// Returns the new transaction's hash.
    fn send(&self, duty: Duty, make: impl FnOnce() -> Option<Call>) -> Option<TxHash> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hash) = sent.get(&duty) {
            match self.chain.transaction_known(hash) {
                Ok(false) => {}
                Ok(true) => return None,
                Err(error) => {
                    tracing::warn!(target: "tributary::provider", provider = %self.address, ?duty, %error, "cannot check a sent transaction");
                    return None;
                }
            }
        }
        let call = make()?;
        match self.chain.submit(&self.signer, call) {
            Ok(hash) => {
                sent.insert(duty, hash);
                Some(hash)
            }
            Err(error) => {
                tracing::warn!(target: "tributary::provider", provider = %self.address, ?duty, %error, "could not send a provider transaction");
                None
            }
        }
    }

    /// One round of duties; returns the transactions sent. A chain that cannot be read is
    /// logged and the round skipped (the next one tries again).
    pub fn tick(&self) -> Vec<TxHash> {
        match self.duties() {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(target: "tributary::provider", provider = %self.address, %error, "skipped a round of duties");
                Vec::new()
            }
        }
    }

    fn duties(&self) -> Result<Vec<TxHash>, ProviderError> {
        let mut sent = Vec::new();
        if self.chain.provider(&self.address)?.is_none() {
            sent.extend(self.send(Duty::Register, || {
                Some(Call::RegisterProvider {
                    capacity_bytes: self.offer.capacity_bytes,
                    price_per_gib_epoch: self.offer.price_per_gib_epoch,
                    endpoint: self.offer.endpoint.clone(),
                })
            }));
            return Ok(sent);
        }
        let challenge_count = usize::from(self.chain.params()?.challenges_per_deal).max(1);
        let deals = self.chain.provider_deals(&self.address)?;
        self.unprovable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| {
                deals
                    .iter()
                    .any(|deal| deal.id == *id && deal.status == "active")
            });
        for deal in &deals {
            let asset = ContentHash(deal.asset.0);
            let index = u32::from(deal.shard_index);
            let root = ContentHash(deal.shard_root.0);
            if deal.status == "active" {
                self.queue_serving(deal, &asset, index, &root);
            }
            match deal.status.as_str() {
                // Held: the store checked the shard against the layout's root when it took
                // it (an asset's layout never changes), so it is not read and hashed again here;
                // rot after that is what the challenges catch.
                "proposed" => sent.extend(self.send(Duty::Accept(deal.id), || {
                    let held = matches!(self.store.contains(&asset, index), Ok(true));
                    held.then_some(Call::AcceptDeal { deal: deal.id })
                })),
                "active" => {
                    let (Some(epoch), Some(seed), false) = (
                        deal.challenge_epoch,
                        deal.challenge_seed,
                        deal.challenge_answered,
                    ) else {
                        continue;
                    };
                    let mut unprovable = self.unprovable.lock().unwrap_or_else(|p| p.into_inner());
                    if unprovable.get(&deal.id) == Some(&epoch) {
                        continue;
                    }
                    sent.extend(self.send(Duty::Prove(deal.id, epoch), || {
                        let chunks = tributary_proof::challenge_chunks(
                            seed.0,
                            deal.id,
                            epoch,
                            deal.shard_bytes,
                            challenge_count,
                        );
                        match self.store.prove(&asset, index, &root, &chunks) {
                            Ok(proof) => Some(Call::SubmitProof {
                                deal: deal.id,
                                epoch,
                                proof: proof.encode(),
                            }),
                            Err(error) => {
                                tracing::error!(target: "tributary::provider", provider = %self.address, deal = deal.id, epoch, %error, "cannot prove a shard it should hold; the deal will fail and be repaired elsewhere");
                                unprovable.insert(deal.id, epoch);
                                None
                            }
                        }
                    }));
                }
                _ => {}
            }
        }
        sent.extend(self.repair_one()?);
        self.release_closed(&deals)?;
        Ok(sent)
    }

    /// Lets go of the shards no open deal of this provider needs any more: those of closed deals
    /// (completed or cancelled) and any stored for a deal that closed before it was accepted.
    /// Each stops being served over iroh and is deleted from the store. A failed deal is still
    /// open: its shard stays until the deal closes, for readers and repairers to fall back on;
    /// so does a shard rebuilt for another provider's failed deal while the claim is pending.
    /// Runs when the set of open deals (`deals`, this round's) has changed since the last run,
    /// once after a start, and every round while a shard is held for a failed deal (so a shard
    /// rebuilt for a repair that another provider claimed first goes as soon as that claim lands).
    fn release_closed(&self, deals: &[DealView]) -> Result<(), ProviderError> {
        let open: Vec<DealId> = deals.iter().map(|deal| deal.id).collect();
        let mut checked = self
            .open_deals_checked
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if checked.as_ref() == Some(&open) {
            return Ok(());
        }
        // Recorded only once the check has run through: a failed one runs again next round, and
        // so does one that kept a shard for a repair.
        let kept_for_repair = self.release_unneeded()?;
        *checked = (!kept_for_repair).then_some(open);
        Ok(())
    }

    /// Makes the next round check held shards (after a repair stored one).
    fn recheck_held_shards(&self) {
        *self
            .open_deals_checked
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The work of [`release_closed`](Self::release_closed); whether a shard was kept for a
    /// failed deal (a repair in progress).
    fn release_unneeded(&self) -> Result<bool, ProviderError> {
        let mut kept_for_repair = false;
        // The store first, then the ledger: a shard is stored only for a deal already on the
        // ledger, so one stored before the deals are read and not among them has no open deal.
        let stored = self.store.list()?;
        if stored.is_empty() {
            return Ok(false);
        }
        let deals = self.chain.provider_deals(&self.address)?;
        for (asset, index) in stored {
            let needed = deals
                .iter()
                .any(|deal| deal.asset.0 == asset.0 && u32::from(deal.shard_index) == index);
            // A failed deal of that shard may be one this provider has just rebuilt and claimed
            // (the claim names it only once finalized): keep the shard while it is failed.
            let repairing = !needed
                && self
                    .chain
                    .asset_deals(&tributary_types::Hash32(asset.0))?
                    .iter()
                    .any(|deal| deal.status == "failed" && u32::from(deal.shard_index) == index);
            kept_for_repair |= repairing;
            if needed || repairing {
                continue;
            }
            // Out of the gate's map first, so no reader is let in meanwhile; then out of iroh.
            let mut released = Vec::new();
            self.served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|root, (served_asset, served_index)| {
                    let kept = served_asset.0 != asset.0 || *served_index != index;
                    if !kept {
                        released.push(*root);
                    }
                    kept
                });
            if let Some(node) = &self.blobs {
                for root in released {
                    if let Err(error) = node.forget(&root) {
                        tracing::warn!(target: "tributary::provider", provider = %self.address, %error, "cannot stop serving a released shard over iroh");
                    }
                }
            }
            self.store.delete(&asset, index)?;
            tracing::info!(target: "tributary::provider", provider = %self.address, asset = %asset.to_hex(), index, "released a shard no open deal needs");
        }
        Ok(kept_for_repair)
    }
}

/// Serves `job`'s file over iroh and records its root for the gate; a failure is logged (readers
/// still have HTTP; an upload or repair of the shard, or a restart, tries again).
fn serve_file(node: &BlobNode, served: &Served, provider: &Address, job: &ServeJob) {
    match node.serve_file(&job.path, &job.root) {
        Ok(()) => {
            served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job.root, (job.asset, job.index));
            tracing::debug!(target: "tributary::provider", %provider, asset = %job.asset, path = %job.path.display(), "serving a shard over iroh");
        }
        Err(error) => {
            tracing::warn!(target: "tributary::provider", %provider, asset = %job.asset, %error, "cannot serve a shard over iroh");
        }
    }
}

/// The 32-byte seed of an ed25519 key: the secret of its iroh endpoint, so the endpoint id is
/// the account's public key.
pub fn secret_seed(signer: &ed25519::PrivateKey) -> [u8; 32] {
    use commonware_codec::Encode as _;
    let encoded = signer.encode();
    let mut seed = [0u8; 32];
    for (byte, encoded) in seed.iter_mut().zip(encoded.iter()) {
        *byte = *encoded;
    }
    seed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tributary_chain::{Block, ChainState};
    use tributary_ledger::Ledger;
    use tributary_types::{
        AssetKind, BlockInput, Genesis, GenesisBond, Hash32, ReceiptStatus, RegisterAsset, Role,
        StorageLayout, Terms,
    };
    use tributary_types::{SignedTransaction, Transaction};

    pub(crate) const SHARD: &[u8] = &[7u8; 3000];

    /// The id of the test asset.
    pub(super) fn test_asset() -> AssetId {
        Hash32::blake3(b"the asset")
    }

    pub(super) fn key(seed: u64) -> ed25519::PrivateKey {
        ed25519::PrivateKey::from_seed(seed)
    }

    pub(crate) fn address(seed: u64) -> Address {
        Address::from_public_key(&key(seed).public_key())
    }

    pub(crate) struct World {
        pub(crate) ledger: Ledger,
        pub(super) asset: AssetId,
    }

    impl World {
        /// Executes one block of calls (signed by the seeds' keys) with a beacon.
        pub(super) fn block(&mut self, calls: Vec<(u64, Call)>) {
            let height = self.ledger.height() + 1;
            let mut nonces: BTreeMap<u64, u64> = BTreeMap::new();
            let transactions = calls
                .into_iter()
                .map(|(seed, call)| {
                    let nonce = nonces
                        .entry(seed)
                        .or_insert_with(|| self.ledger.nonce(&address(seed)));
                    let transaction = Transaction {
                        chain_id: self.ledger.params().chain_id.clone(),
                        sender: address(seed),
                        nonce: *nonce,
                        fee: 1,
                        call,
                    };
                    *nonce += 1;
                    SignedTransaction::sign(&key(seed), transaction)
                })
                .collect();
            let outcome = self
                .ledger
                .execute_block(&BlockInput {
                    height,
                    proposer: address(99),
                    transactions,
                    beacon: Some(Hash32::blake3(&height.to_be_bytes())),
                })
                .unwrap();
            for receipt in outcome.receipts {
                assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
            }
        }
    }

    /// Owner (1) registers and stores an asset and proposes a deal with provider (2); reader (3)
    /// buys a license; stranger (4) has none.
    pub(crate) fn world() -> World {
        world_with_manifest_root(Hash32([1; 32]))
    }

    /// [`world`] with the asset's layout recording `manifest_root`.
    pub(super) fn world_with_manifest_root(manifest_root: Hash32) -> World {
        let mut genesis = Genesis::devnet(
            "provider-test",
            [
                (address(1), 1_000_000_000),
                (address(2), 1_000_000),
                (address(3), 1_000_000),
                (address(4), 1_000_000),
            ],
        );
        genesis.bonds.push(GenesisBond {
            address: address(2),
            role: Role::StorageProvider,
            amount: 10_000,
        });
        let mut world = World {
            ledger: Ledger::from_genesis(&genesis).unwrap(),
            asset: test_asset(),
        };
        let asset = world.asset;
        world.block(vec![
            (
                1,
                Call::RegisterAsset(RegisterAsset {
                    content_root: asset,
                    kind: AssetKind::Dataset,
                    name: "data".into(),
                    byte_size: 9000,
                    owners: vec![],
                    parents: vec![],
                    terms: Terms {
                        ai_training: true,
                        price: 10,
                        ..Terms::default()
                    },
                }),
            ),
            (
                2,
                Call::RegisterProvider {
                    capacity_bytes: 1 << 20,
                    price_per_gib_epoch: 1 << 30,
                    endpoint: "http://127.0.0.1:1/v1/storage/x".into(),
                },
            ),
            (
                1,
                Call::StoreAsset {
                    asset,
                    layout: StorageLayout {
                        manifest_root,
                        data_shards: 1,
                        parity_shards: 1,
                        shard_bytes: SHARD.len() as u64,
                        shard_roots: vec![Hash32::blake3(SHARD), Hash32::blake3(SHARD)],
                    },
                },
            ),
            (
                1,
                Call::CreateDeal {
                    asset,
                    shard_index: 0,
                    provider: address(2),
                    epochs: 5,
                },
            ),
            (3, Call::BuyLicense { asset }),
        ]);
        world
    }

    pub(crate) fn chain(ledger: &Ledger) -> ChainState {
        let genesis = Block::genesis(ledger.state_root().0, key(99).public_key());
        ChainState::new(ledger.clone(), &genesis)
    }

    pub(crate) fn provider(chain: &ChainState, directory: &Path) -> Arc<StorageProvider> {
        provider_with_key(chain, directory, 2)
    }

    /// The storage provider of account `seed`.
    fn provider_with_key(chain: &ChainState, directory: &Path, seed: u64) -> Arc<StorageProvider> {
        provider_on(Arc::new(chain.clone()), directory, seed)
    }

    /// The storage provider of account `seed` over any view of the chain.
    pub(crate) fn provider_on(
        chain: Arc<dyn ProviderChain>,
        directory: &Path,
        seed: u64,
    ) -> Arc<StorageProvider> {
        StorageProvider::open(
            key(seed),
            directory,
            chain,
            Offer {
                capacity_bytes: 1 << 20,
                price_per_gib_epoch: 1 << 30,
                endpoint: "http://127.0.0.1:1/v1/storage/x".into(),
            },
            BlobOptions::loopback(),
        )
        .unwrap()
    }

    fn pending_calls(chain: &ChainState) -> Vec<Call> {
        chain
            .lock()
            .mempool
            .iter()
            .map(|(_, transaction)| transaction.transaction.call.clone())
            .collect()
    }

    #[test]
    fn takes_the_right_shard_accepts_once_and_serves_only_allowed_readers() {
        let world = world();
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        let provider = provider(&chain, directory.path());
        assert_eq!(
            provider.upload(9, SHARD).unwrap_err().code(),
            "deal_not_found"
        );
        assert_eq!(
            provider.upload(1, &SHARD[1..]).unwrap_err().code(),
            "wrong_shard"
        );
        let mut altered = SHARD.to_vec();
        altered[0] ^= 1;
        assert_eq!(
            provider.upload(1, &altered).unwrap_err().code(),
            "wrong_shard"
        );
        // Streamed: a wrong announced size is refused before reading, a body longer or shorter
        // than the deal's shard after reading, and a failing body stores nothing.
        assert_eq!(
            provider
                .upload_from_reader(1, SHARD, Some(SHARD.len() as u64 + 1))
                .unwrap_err()
                .code(),
            "wrong_shard"
        );
        let longer = [SHARD, b"!"].concat();
        assert_eq!(
            provider
                .upload_from_reader(1, &longer[..], None)
                .unwrap_err()
                .code(),
            "wrong_shard"
        );
        assert_eq!(
            provider
                .upload_from_reader(1, &SHARD[..SHARD.len() - 1], None)
                .unwrap_err()
                .code(),
            "wrong_shard"
        );
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the connection dropped"))
            }
        }
        assert!(provider.upload_from_reader(1, Failing, None).is_err());
        assert!(
            !provider
                .store
                .contains(&ContentHash(world.asset.0), 0)
                .unwrap()
        );
        // Nothing is accepted before the shard is held.
        assert!(provider.tick().is_empty());
        provider.upload(1, SHARD).unwrap();
        assert_eq!(provider.tick().len(), 1);
        assert_eq!(pending_calls(&chain), vec![Call::AcceptDeal { deal: 1 }]);
        assert!(provider.tick().is_empty(), "sent once while pending");

        let now = 1_000;
        let request = |seed: u64, expires_ms: u64| {
            ReadRequest::sign(&key(seed), world.asset, 0, address(2), expires_ms)
        };
        // The licensee and the owner read; a stranger, an expired or altered request, do not.
        assert_eq!(provider.read(&request(3, now + 1), now).unwrap(), SHARD);
        assert_eq!(provider.read(&request(1, now + 1), now).unwrap(), SHARD);
        assert_eq!(
            provider.read(&request(4, now + 1), now).unwrap_err().code(),
            "not_authorised"
        );
        assert_eq!(
            provider.read(&request(3, now - 1), now).unwrap_err().code(),
            "bad_signature"
        );
        let mut forged = request(4, now + 1);
        forged.reader = address(3);
        assert_eq!(
            provider.read(&forged, now).unwrap_err().code(),
            "bad_signature"
        );
        let mut other_shard = request(3, now + 1);
        other_shard.shard_index = 1;
        assert_eq!(
            provider.read(&other_shard, now).unwrap_err().code(),
            "bad_signature"
        );

        // Over iroh: the endpoint id is the provider's address; the licensee and the owner fetch
        // verified bytes, a stranger is refused by the gate, whose key it cannot fake.
        let served = provider.blob_address().unwrap();
        assert_eq!(served.id, hex::encode(address(2).0));
        let root = *blake3::hash(SHARD).as_bytes();
        let reader = |seed: u64| {
            BlobNode::start(
                BlobConfig {
                    secret_key: secret_seed(&key(seed)),
                    bind: BlobOptions::loopback().bind,
                    announce: Vec::new(),
                },
                Serving::Nothing,
            )
            .unwrap()
        };
        for allowed in [1, 3] {
            let node = reader(allowed);
            assert_eq!(node.id(), address(allowed).0, "endpoint id is the address");
            assert_eq!(
                node.fetch_to_vec(&served, &root, SHARD.len() as u64)
                    .unwrap(),
                SHARD
            );
        }
        let refused = reader(4)
            .fetch_to_vec(&served, &root, SHARD.len() as u64)
            .unwrap_err();
        assert!(
            matches!(refused, tributary_blobs::BlobsError::Transfer { .. }),
            "{refused}"
        );
    }

    #[test]
    fn lets_go_of_a_shard_once_its_deal_closes() {
        let mut world = world();
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        let provider = provider(&chain, directory.path());
        provider.upload(1, SHARD).unwrap();
        assert_eq!(provider.tick().len(), 1, "accepts");
        let asset = ContentHash(world.asset.0);
        let root = *blake3::hash(SHARD).as_bytes();
        assert!(provider.store.contains(&asset, 0).unwrap());
        assert!(provider.is_served(&ContentHash(root)));
        // The owner cancels the deal before the acceptance lands.
        world.block(vec![(1, Call::CancelDeal { deal: 1 })]);
        {
            let mut inner = chain.lock();
            inner.finalized = world.ledger.clone();
            inner.mempool = tributary_chain::mempool::Mempool::default();
        }
        assert!(provider.tick().is_empty());
        assert!(!provider.store.contains(&asset, 0).unwrap(), "deleted");
        assert!(!provider.is_served(&ContentHash(root)), "no longer served");
        let owner = BlobNode::start(
            BlobConfig {
                secret_key: secret_seed(&key(1)),
                bind: BlobOptions::loopback().bind,
                announce: Vec::new(),
            },
            Serving::Nothing,
        )
        .unwrap();
        let served = provider.blob_address().unwrap();
        assert!(
            owner
                .fetch_to_vec(&served, &root, SHARD.len() as u64)
                .is_err()
        );
    }

    /// A provider that rebuilt a failed deal's shard keeps it while the deal is failed, and lets
    /// it go as soon as another repairer's claim lands, though its own open deals never changed.
    #[test]
    fn lets_go_of_a_rebuilt_shard_when_another_repairer_wins_the_claim() {
        let mut world = world();
        let asset = world.asset;
        // Providers 4 (the loser) and 5 (the winner) join; provider 2 accepts, then misses
        // every challenge until its deal fails.
        let join = |seed: u64| {
            vec![
                (
                    1,
                    Call::Transfer {
                        to: address(seed),
                        amount: 100_000,
                    },
                ),
                (
                    seed,
                    Call::Bond {
                        role: Role::StorageProvider,
                        amount: 10_000,
                    },
                ),
                (
                    seed,
                    Call::RegisterProvider {
                        capacity_bytes: 1 << 20,
                        price_per_gib_epoch: 1 << 30,
                        endpoint: "http://127.0.0.1:1/v1/storage/y".into(),
                    },
                ),
            ]
        };
        world.block(join(4).into_iter().chain(join(5)).collect());
        world.block(vec![(2, Call::AcceptDeal { deal: 1 })]);
        for _ in 0..10 * world.ledger.params().epoch_blocks {
            if world.ledger.deal(1).unwrap().status == "failed" {
                break;
            }
            world.block(vec![]);
        }
        assert_eq!(world.ledger.deal(1).unwrap().status, "failed");

        // Provider 4 holds the rebuilt shard 0 (as a repair stores it) and its claim is pending.
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        let loser = provider_with_key(&chain, directory.path(), 4);
        let stored = ContentHash(asset.0);
        loser
            .store
            .put(
                &stored,
                0,
                SHARD,
                &ContentHash(*blake3::hash(SHARD).as_bytes()),
            )
            .unwrap();
        loser.tick();
        assert!(
            loser.store.contains(&stored, 0).unwrap(),
            "kept while failed"
        );
        loser.tick();
        assert!(
            loser.store.contains(&stored, 0).unwrap(),
            "kept while failed"
        );

        // Provider 5's claim lands first: the deal is 5's, and 4's copy is an orphan.
        world.block(vec![(5, Call::ClaimRepair { deal: 1 })]);
        assert_eq!(world.ledger.deal(1).unwrap().provider, address(5));
        {
            let mut inner = chain.lock();
            inner.finalized = world.ledger.clone();
            inner.mempool = tributary_chain::mempool::Mempool::default();
        }
        loser.tick();
        assert!(!loser.store.contains(&stored, 0).unwrap(), "released");
    }

    #[test]
    fn answers_a_challenge_with_a_proof_the_ledger_accepts() {
        let mut world = world();
        world.block(vec![(2, Call::AcceptDeal { deal: 1 })]);
        let epoch_blocks = world.ledger.params().epoch_blocks;
        while !(world.ledger.height() + 1).is_multiple_of(epoch_blocks) {
            world.block(vec![]);
        }
        world.block(vec![]);
        let deal = world.ledger.deal(1).unwrap();
        assert!(deal.challenge_epoch.is_some() && !deal.challenge_answered);
        let chain = chain(&world.ledger);
        let directory = tempfile::tempdir().unwrap();
        // The provider holds the shard (stored when the deal was proposed).
        ShardStore::open(directory.path())
            .and_then(|store| {
                store.put(
                    &ContentHash(world.asset.0),
                    0,
                    SHARD,
                    &ContentHash::of(SHARD),
                )
            })
            .unwrap();
        let provider = provider(&chain, directory.path());
        assert_eq!(provider.tick().len(), 1);
        let calls = pending_calls(&chain);
        let Some(Call::SubmitProof { deal, epoch, proof }) = calls.first().cloned() else {
            panic!("expected a proof, got {calls:?}");
        };
        assert_eq!(
            (deal, Some(epoch)),
            (1, world.ledger.deal(1).unwrap().challenge_epoch)
        );
        // The ledger accepts it and pays the provider.
        let before = world.ledger.balance(&address(2));
        world.block(vec![(2, Call::SubmitProof { deal, epoch, proof })]);
        assert!(world.ledger.deal(1).unwrap().challenge_answered);
        assert_eq!(world.ledger.balance(&address(2)), before + 3000 - 1);
    }
}
