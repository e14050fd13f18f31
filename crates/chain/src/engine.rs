//! Wires one validator: authenticated p2p, buffered block broadcast, marshal (finalized-block
//! archive, ordering and backfill), the `Deferred` wrapper around our [`Application`], and the
//! simplex consensus engine, all on one commonware runtime context. Modelled on commonware's own
//! reference chain (alto).

use crate::{
    application::{Application, Finalized, MarshalMailbox, Scheme, catch_up, run_finalizer},
    block::{Block, block_encode_size_max},
    state::ChainState,
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self,
        core::Actor as MarshalActor,
        resolver::p2p as marshal_resolver,
        standard::{Deferred, Standard},
    },
    simplex::{
        self,
        config::{ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
    },
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{
    Digestible, Sha256, Signer,
    bls12381::primitives::{group::Share, sharing::Sharing, variant::MinSig},
    ed25519,
};
use commonware_p2p::{Address, AddressableManager, authenticated::lookup};
use commonware_parallel::Sequential;
use commonware_runtime::{Handle, Quota, Supervisor, buffer::paged::CacheRef, tokio as runtime};
use commonware_storage::archive::immutable;
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZDuration, NZU16, NZU32, NZU64, NZUsize, ordered::Set};
use std::{
    net::SocketAddr,
    num::{NonZeroU16, NonZeroU64, NonZeroUsize},
    time::Duration,
};
use tributary_types::{SignedTransaction, limits};

/// Namespace for every consensus signature of this chain.
pub const NAMESPACE: &[u8] = b"tributary-consensus-v1";
/// Namespace for p2p handshakes.
pub const P2P_NAMESPACE: &[u8] = b"tributary-p2p-v1";

const VOTE_CHANNEL: u64 = 0;
const CERTIFICATE_CHANNEL: u64 = 1;
const RESOLVER_CHANNEL: u64 = 2;
const BROADCAST_CHANNEL: u64 = 3;
const BACKFILL_CHANNEL: u64 = 4;
const TRANSACTION_CHANNEL: u64 = 5;

/// The epoch (no reconfiguration yet, so one epoch forever).
const EPOCH: Epoch = Epoch::zero();
const EPOCH_LENGTH: NonZeroU64 = NZU64!(u64::MAX);

const MAILBOX_SIZE: NonZeroUsize = NZUsize!(1024);
const DEQUE_SIZE: usize = 10;
const ITEMS_PER_SECTION: NonZeroU64 = NZU64!(4_096);
const IO_BUFFER: NonZeroUsize = NZUsize!(1024 * 1024);
const PAGE_SIZE: NonZeroU16 = NZU16!(4_096);
const PAGE_CACHE_PAGES: NonZeroUsize = NZUsize!(4_096);
const FREEZER_TABLE_INITIAL_SIZE: u32 = 1 << 16;
const FREEZER_VALUE_TARGET_SIZE_BYTES: u64 = 256 * 1024 * 1024;

/// Timeouts of the consensus engine.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(1);
const CERTIFICATION_TIMEOUT: Duration = Duration::from_secs(2);
const TIMEOUT_RETRY: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What a validator's engine needs of its runtime.
pub trait EngineRuntime:
    commonware_runtime::Spawner
    + commonware_runtime::Clock
    + commonware_runtime::Storage
    + commonware_runtime::Metrics
    + commonware_runtime::Supervisor
    + rand_core::CryptoRng
    + Send
    + Sync
    + 'static
{
}

impl<T> EngineRuntime for T where
    T: commonware_runtime::Spawner
        + commonware_runtime::Clock
        + commonware_runtime::Storage
        + commonware_runtime::Metrics
        + commonware_runtime::Supervisor
        + rand_core::CryptoRng
        + Send
        + Sync
        + 'static
{
}

/// A node's identity: its key and, for a validator, its threshold key share.
#[derive(Clone)]
pub struct NodeIdentity {
    /// The node's ed25519 key (p2p identity; for a validator also its consensus identity and fee
    /// account).
    pub signer: ed25519::PrivateKey,
    /// A validator's share of the threshold-BLS group key; `None` for a full (non-voting) node,
    /// which follows the chain without voting.
    pub share: Option<Share>,
}

/// The validator set, shared by every node of the chain.
#[derive(Clone)]
pub struct ValidatorSet {
    /// Each validator's key and p2p address.
    pub validators: Vec<(ed25519::PublicKey, SocketAddr)>,
    /// Full nodes accepted as (secondary) peers: key and p2p address.
    pub followers: Vec<(ed25519::PublicKey, SocketAddr)>,
    /// The public polynomial of the threshold-BLS group key.
    pub polynomial: Sharing<MinSig>,
}

/// Everything one node needs.
pub struct EngineConfig {
    /// This node.
    pub identity: NodeIdentity,
    /// The validator set.
    pub set: ValidatorSet,
    /// The address the p2p listener binds.
    pub listen: SocketAddr,
    /// Prefix for this node's storage partitions (unique per node in one process).
    pub partition_prefix: String,
    /// The chain's genesis block.
    pub genesis: Block,
    /// The node's shared chain state.
    pub state: ChainState,
    /// A deliberate fault in this validator's proposals: `None` except in simulation.
    pub proposal_fault: Option<crate::application::ProposalFault>,
}

/// Errors starting a validator.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The share does not belong to this validator under the genesis polynomial.
    #[error("the threshold key share does not match this validator in the genesis polynomial")]
    ShareMismatch,
    /// A full node's key is not among the genesis followers (validators would refuse it).
    #[error("this node's key is not a follower in the genesis; add it with `genesis add-follower`")]
    NotAFollower,
    /// Two validators have the same key.
    #[error("the validator set has duplicate keys or addresses")]
    DuplicateValidator,
    /// A storage archive could not be opened.
    #[error("storage: {0}")]
    Storage(String),
}

/// The p2p channels one validator uses, as (sender, receiver) pairs.
pub struct Channels<S, R> {
    /// Consensus votes.
    pub vote: (S, R),
    /// Consensus certificates.
    pub certificate: (S, R),
    /// Consensus fetches of missing certificates.
    pub resolver: (S, R),
    /// Block broadcast.
    pub broadcast: (S, R),
    /// Backfill of finalized blocks.
    pub backfill: (S, R),
    /// Transaction gossip.
    pub transactions: (S, R),
}

/// Channel ids and their per-peer rate limits (messages per second), in [`Channels`] order.
pub const CHANNEL_QUOTAS: [(u64, u32); 6] = [
    (VOTE_CHANNEL, 1024),
    (CERTIFICATE_CHANNEL, 1024),
    (RESOLVER_CHANNEL, 1024),
    (BROADCAST_CHANNEL, 256),
    (BACKFILL_CHANNEL, 256),
    (TRANSACTION_CHANNEL, 8192),
];

/// The largest p2p message a validator set of `validators` needs (a whole block, or a
/// certificate-carrying backfill response).
pub fn max_message_size(validators: usize) -> u32 {
    u32::try_from(marshal::max_payload_size::<Standard<Block>, Scheme>(
        u32::try_from(validators).unwrap_or(u32::MAX),
        &(),
    ))
    .unwrap_or(u32::MAX)
    .max(1024 * 1024)
}

/// Checks the validator set and builds this node's scheme: a validator signs with its share, a
/// full node only verifies certificates.
pub fn validate(config: &EngineConfig) -> Result<(Set<ed25519::PublicKey>, Scheme), EngineError> {
    let participants: Set<ed25519::PublicKey> =
        Set::from_iter_dedup(config.set.validators.iter().map(|(key, _)| key.clone()));
    if participants.len() != config.set.validators.len() {
        return Err(EngineError::DuplicateValidator);
    }
    let scheme = match &config.identity.share {
        Some(share) => Scheme::signer(
            NAMESPACE,
            participants.clone(),
            config.set.polynomial.clone(),
            share.clone(),
        )
        .ok_or(EngineError::ShareMismatch)?,
        None => {
            let public_key = config.identity.signer.public_key();
            if !config
                .set
                .followers
                .iter()
                .any(|(key, _)| *key == public_key)
            {
                return Err(EngineError::NotAFollower);
            }
            Scheme::verifier(
                NAMESPACE,
                participants.clone(),
                config.set.polynomial.clone(),
            )
        }
    };
    Ok((participants, scheme))
}

/// The p2p peer set every node tracks: validators as primary peers (dialled, driving progress),
/// followers as secondary peers (accepted, served, never dialled).
fn peer_set(
    set: &ValidatorSet,
) -> Result<commonware_p2p::AddressableTrackedPeers<ed25519::PublicKey>, EngineError> {
    let to_map = |peers: &[(ed25519::PublicKey, SocketAddr)]| {
        peers
            .iter()
            .map(|(key, address)| (key.clone(), Address::from(*address)))
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| EngineError::DuplicateValidator)
    };
    Ok(commonware_p2p::AddressableTrackedPeers::new(
        to_map(&set.validators)?,
        to_map(&set.followers)?,
    ))
}

/// Starts a node (a validator, or a full node when its identity has no share) on the tokio
/// runtime with authenticated p2p (`lookup`) on its configured address, and returns once its
/// ledger has replayed every block it had finalized before (so the API serves the recovered
/// state from the first request).
pub async fn start_validator(
    context: runtime::Context,
    config: EngineConfig,
) -> Result<Vec<Handle<()>>, EngineError> {
    let (participants, _) = validate(&config)?;
    // p2p: a fixed, fully connected set of validators at known addresses.
    let handshake = Cups::<_, commonware_cryptography::ChaCha20Poly1305>::new(
        Sake {
            signer: config.identity.signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let p2p_config = lookup::Config::local(
        handshake,
        P2P_NAMESPACE,
        config.listen,
        NZUsize!(config.set.validators.len() + config.set.followers.len() + 1),
        max_message_size(participants.len()),
        MAILBOX_SIZE,
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p_config);
    oracle.track(EPOCH.get(), peer_set(&config.set)?);
    let mut register = |index: usize| {
        let (channel, rate) = CHANNEL_QUOTAS[index];
        network.register(
            channel,
            Quota::per_second(std::num::NonZeroU32::new(rate).unwrap_or(NZU32!(1))),
        )
    };
    let channels = Channels {
        vote: register(0),
        certificate: register(1),
        resolver: register(2),
        broadcast: register(3),
        backfill: register(4),
        transactions: register(5),
    };
    let network_handle = network.start();
    let mut handles = start_engine(context, config, oracle.clone(), oracle, channels).await?;
    handles.push(network_handle);
    Ok(handles)
}

/// Starts one validator's engine on any commonware runtime (tokio in production, the
/// deterministic runtime in simulation) over the given p2p channels.
pub async fn start_engine<E, P, B, S, R>(
    context: E,
    config: EngineConfig,
    provider: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Vec<Handle<()>>, EngineError>
where
    E: EngineRuntime,
    P: commonware_p2p::Provider<PublicKey = ed25519::PublicKey>,
    B: commonware_p2p::Blocker<PublicKey = ed25519::PublicKey>,
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
{
    let (_, scheme) = validate(&config)?;
    let public_key = config.identity.signer.public_key();
    let Channels {
        vote,
        certificate,
        resolver,
        broadcast,
        backfill,
        transactions,
    } = channels;
    let gossip_handles = start_gossip(&context, config.state.clone(), transactions);

    // Block broadcast.
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: public_key.clone(),
            mailbox_size: MAILBOX_SIZE,
            deque_size: DEQUE_SIZE,
            priority: false,
            codec_config: (),
            peer_provider: provider.clone(),
            strategy: Sequential,
        },
    );
    let broadcast_handle = broadcast_engine.start(broadcast);

    // Backfill of finalized blocks from peers.
    let (backfill_receiver, backfill_mailbox) = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: public_key.clone(),
            peer_provider: provider.clone(),
            blocker: blocker.clone(),
            mailbox_size: MAILBOX_SIZE,
            fetch_timeout: NZDuration!(FETCH_TIMEOUT),
            fetch_retry_delay: Duration::from_millis(200),
            priority_requests: false,
            priority_responses: false,
        },
        backfill,
    );

    // Marshal: durable archives of finalized blocks and their certificates.
    let page_cache = CacheRef::new(PAGE_SIZE, PAGE_CACHE_PAGES);
    let prefix = config.partition_prefix.clone();
    // The threshold scheme's certificate codec needs no configuration (it is `()`), but the
    // archive is generic over it, so it is passed as the scheme defines it.
    #[allow(clippy::unit_arg)]
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive_config(
            &prefix,
            "finalizations",
            page_cache.clone(),
            <Scheme as commonware_cryptography::certificate::Verifier>::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .map_err(|error| EngineError::Storage(error.to_string()))?;
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive_config(&prefix, "blocks", page_cache.clone(), ()),
    )
    .await
    .map_err(|error| EngineError::Storage(error.to_string()))?;
    let genesis_digest = config.genesis.digest();
    let (marshal_actor, marshal_mailbox, floor): (_, MarshalMailbox, _) =
        MarshalActor::<_, Standard<Block>, _, _, _, _, _>::init(
            context.child("marshal"),
            finalizations,
            blocks,
            marshal::Config {
                provider: commonware_cryptography::certificate::ConstantProvider::new(
                    scheme.clone(),
                ),
                epocher: FixedEpocher::new(EPOCH_LENGTH),
                start: marshal::Start::Genesis(commonware_cryptography::Digested::precomputed(
                    config.genesis.clone(),
                    genesis_digest,
                )),
                partition_prefix: format!("{prefix}-marshal"),
                mailbox_size: MAILBOX_SIZE,
                view_retention: ViewDelta::new(256),
                prunable_items_per_section: ITEMS_PER_SECTION,
                page_cache: page_cache.clone(),
                replay_buffer: IO_BUFFER,
                key_write_buffer: IO_BUFFER,
                value_write_buffer: IO_BUFFER,
                block_codec_config: (),
                max_repair: NZUsize!(16),
                max_pending_acks: NZUsize!(16),
                strategy: Sequential,
            },
        )
        .await;
    let (finalized_reporter, finalized_blocks) = Finalized::new();
    let marshal_handle = marshal_actor.start(
        finalized_reporter,
        buffer,
        (backfill_receiver, backfill_mailbox),
    );

    // Rebuild the ledger from this node's own finalized blocks before anything reads it.
    let processed = floor.processed().map(|p| p.height().get()).unwrap_or(0);
    if processed > 0 {
        tracing::info!(target: "tributary::chain", processed, "replaying finalized blocks");
    }
    if let Err(error) = catch_up(&config.state, &marshal_mailbox, processed).await {
        return Err(EngineError::Storage(error.to_string()));
    }
    let finalizer_state = config.state.clone();
    let finalizer_marshal = marshal_mailbox.clone();
    let finalizer_handle = context.child("finalizer").spawn(move |_| async move {
        run_finalizer(finalizer_state, finalizer_marshal, finalized_blocks).await;
    });

    config.state.set_scheme(scheme.clone());
    let mut handles = vec![
        gossip_handles.0,
        gossip_handles.1,
        broadcast_handle,
        marshal_handle,
        finalizer_handle,
    ];
    if config.identity.share.is_none() {
        handles.push(start_following(&context, &config, marshal_mailbox)?);
        tracing::info!(target: "tributary::chain", node = %public_key, listen = %config.listen, "full node started");
        return Ok(handles);
    }

    // Consensus.
    let application = Application::with_fault(config.state.clone(), config.proposal_fault);
    let deferred = Deferred::new(
        context.child("deferred"),
        application,
        marshal_mailbox.clone(),
        FixedEpocher::new(EPOCH_LENGTH),
    );
    let evidence_scheme = scheme.clone();
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: deferred.clone(),
            relay: deferred.clone(),
            reporter: commonware_consensus::Reporters::from((
                deferred,
                crate::evidence::ActivityReporter::new(config.state.clone(), evidence_scheme),
            )),
            strategy: Sequential,
            partition: format!("{prefix}-simplex"),
            mailbox_size: MAILBOX_SIZE,
            epoch: EPOCH,
            floor: simplex::config::Floor::Genesis(genesis_digest),
            replay_buffer: IO_BUFFER,
            write_buffer: IO_BUFFER,
            page_cache,
            leader_timeout: LEADER_TIMEOUT,
            certification_timeout: CERTIFICATION_TIMEOUT,
            timeout_retry: TIMEOUT_RETRY,
            view_retention: ViewDelta::new(256),
            skip: SkipPolicy::Enabled {
                timeout: Duration::from_secs(10),
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(FETCH_TIMEOUT),
            fetch_retry_delay: Duration::from_millis(500),
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );
    handles.push(engine.start(vote, certificate, resolver));
    tracing::info!(target: "tributary::chain", validator = %public_key, listen = %config.listen, block_bytes_max = block_encode_size_max(), "validator started");
    Ok(handles)
}

/// How often a full node asks validators for the next finalized blocks.
pub const FOLLOW_INTERVAL_MS: u64 = 200;
/// How many heights past its own a full node asks for at a time.
pub const FOLLOW_AHEAD_BLOCKS: u64 = 8;

/// A full node's chain tracking: it never sees votes, so it keeps hinting marshal that the next
/// heights are finalized; marshal fetches each finalization and block from the validators,
/// verifies the certificate against the group key and delivers the blocks in order to the
/// finalizer. Heights not finalized yet come back empty and are asked for again.
fn start_following<E: EngineRuntime>(
    context: &E,
    config: &EngineConfig,
    marshal: MarshalMailbox,
) -> Result<Handle<()>, EngineError> {
    let targets: commonware_utils::vec::NonEmptyVec<ed25519::PublicKey> = config
        .set
        .validators
        .iter()
        .map(|(key, _)| key.clone())
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| EngineError::DuplicateValidator)?;
    let state = config.state.clone();
    Ok(context.child("follower").spawn(move |clock| async move {
        loop {
            let next = state.finalized_height() + 1;
            for height in next..next + FOLLOW_AHEAD_BLOCKS {
                marshal.hint_finalized(
                    commonware_consensus::types::Height::new(height),
                    targets.clone(),
                );
            }
            clock.sleep(Duration::from_millis(FOLLOW_INTERVAL_MS)).await;
        }
    }))
}

/// Relays transactions this node admitted from clients to every peer, and admits transactions
/// peers relay. A peer's transaction that does not decode or is refused is logged with the peer
/// and dropped.
fn start_gossip<E: EngineRuntime>(
    context: &E,
    state: ChainState,
    (mut sender, mut receiver): (
        impl commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
        impl commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
    ),
) -> (Handle<()>, Handle<()>) {
    let (outgoing, mut admitted) = futures::channel::mpsc::unbounded();
    state.set_gossip(outgoing);
    let relay = context.child("gossip_out").spawn(move |_| async move {
        while let Some(transaction) = futures::StreamExt::next(&mut admitted).await {
            let bytes = transaction.to_bytes();
            sender.send(commonware_p2p::Recipients::All, bytes, false);
        }
    });
    let admit = context.child("gossip_in").spawn(move |_| async move {
        while let Ok((peer, message)) = receiver.recv().await {
            let bytes: &[u8] = message.as_ref();
            if bytes.len() > limits::TRANSACTION_BYTES_MAX {
                tracing::warn!(target: "tributary::chain", %peer, bytes = bytes.len(), "dropped an oversized gossiped transaction");
                continue;
            }
            match SignedTransaction::from_bytes(bytes) {
                Ok(transaction) => {
                    if let Err(error) = state.submit_from_peer(transaction) {
                        tracing::debug!(target: "tributary::chain", %peer, %error, "refused a gossiped transaction");
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "tributary::chain", %peer, %error, "dropped a malformed gossiped transaction");
                }
            }
        }
    });
    (relay, admit)
}

fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: FREEZER_TABLE_INITIAL_SIZE,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 12,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: FREEZER_VALUE_TARGET_SIZE_BYTES,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: ITEMS_PER_SECTION,
        codec_config,
        replay_buffer: IO_BUFFER,
        freezer_key_write_buffer: IO_BUFFER,
        freezer_value_write_buffer: IO_BUFFER,
        ordinal_write_buffer: IO_BUFFER,
    }
}
