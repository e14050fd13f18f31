//! Error types. Each has a stable machine code (`code()`) for APIs and receipts.

use tributary_types::{
    Address, Amount, AssetId, DealId, LicenseTokenId, RewardPoolId, Role, TrainingSessionId, TxHash,
};

/// Why a transaction is refused at admission (and why a block containing it is invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The transaction is for another chain.
    #[error("chain id is {got:?}, expected {expected:?}")]
    WrongChainId {
        /// This chain's id.
        expected: String,
        /// The transaction's.
        got: String,
    },
    /// The signature does not verify against the sender's key.
    #[error("signature does not verify")]
    BadSignature,
    /// The encoded transaction is larger than the limit.
    #[error("transaction is {size} bytes, limit {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The nonce is not the next one.
    #[error("nonce is {got}, expected {expected}")]
    WrongNonce {
        /// Expected nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The fee is below the chain's minimum.
    #[error("fee {fee} is below the minimum {min}")]
    FeeBelowMinimum {
        /// Fee offered.
        fee: Amount,
        /// Minimum.
        min: Amount,
    },
    /// The sender cannot pay the fee.
    #[error("balance {balance} cannot pay fee {fee}")]
    InsufficientFeeBalance {
        /// Sender's balance.
        balance: Amount,
        /// Fee.
        fee: Amount,
    },
}

impl AdmissionError {
    /// Stable machine code.
    pub const fn code(&self) -> &'static str {
        match self {
            AdmissionError::WrongChainId { .. } => "wrong_chain_id",
            AdmissionError::BadSignature => "bad_signature",
            AdmissionError::TooLarge { .. } => "too_large",
            AdmissionError::WrongNonce { .. } => "wrong_nonce",
            AdmissionError::FeeBelowMinimum { .. } => "fee_below_minimum",
            AdmissionError::InsufficientFeeBalance { .. } => "insufficient_fee_balance",
        }
    }
}

/// Why a block cannot be executed. The ledger is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The block's height is not the ledger's height plus one.
    #[error("block height is {got}, expected {expected}")]
    WrongHeight {
        /// Expected height.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// More transactions than `BLOCK_TRANSACTIONS_MAX`.
    #[error("block has {count} transactions, limit {max}")]
    TooManyTransactions {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A transaction breaks an admission rule.
    #[error("transaction {index} ({tx_hash}) is invalid: {error}")]
    InvalidTransaction {
        /// Position in the block.
        index: usize,
        /// Its hash.
        tx_hash: TxHash,
        /// The rule broken.
        error: AdmissionError,
    },
    /// Crediting a fee or a matured unbonding overflowed a balance (impossible while the supply fits
    /// in u128).
    #[error("balance overflow while executing the block")]
    Overflow,
}

impl BlockError {
    /// Stable machine code.
    pub const fn code(&self) -> &'static str {
        match self {
            BlockError::WrongHeight { .. } => "wrong_height",
            BlockError::TooManyTransactions { .. } => "too_many_transactions",
            BlockError::InvalidTransaction { error, .. } => error.code(),
            BlockError::Overflow => "overflow",
        }
    }
}

/// Why genesis is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// `genesis.chain_id` differs from `genesis.params.chain_id`.
    #[error("genesis chain id {genesis:?} differs from params chain id {params:?}")]
    ChainIdMismatch {
        /// The genesis's.
        genesis: String,
        /// The params'.
        params: String,
    },
    /// The chain id is empty or longer than `CHAIN_ID_BYTES_MAX`.
    #[error("chain id must be 1..={max} bytes, got {len}")]
    BadChainId {
        /// Its length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// An address is allocated twice.
    #[error("address {0} is allocated twice")]
    DuplicateAllocation(Address),
    /// An address is bonded twice for one role.
    #[error("address {0} is bonded twice for one role")]
    DuplicateBond(Address),
    /// The allocations sum above u128.
    #[error("allocations overflow u128")]
    SupplyOverflow,
}

/// Why a call failed during execution. The transaction still pays its fee and uses its nonce; nothing else
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutionError {
    /// Arithmetic overflow.
    #[error("arithmetic overflow")]
    Overflow,
    /// A call this ledger version does not execute.
    #[error("call not supported by this ledger")]
    UnsupportedCall,
    /// Misbehaviour of this validator in this view is already on record.
    #[error("misbehaviour of {validator} in view {view} is already recorded")]
    MisbehaviourAlreadyReported {
        /// The validator.
        validator: Address,
        /// The view.
        view: u64,
    },
    /// A zero amount where a positive one is required.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Not enough balance.
    #[error("account {account} has {balance}, needs {needed}")]
    InsufficientBalance {
        /// Account.
        account: Address,
        /// Balance.
        balance: Amount,
        /// Needed.
        needed: Amount,
    },
    /// Not enough bonded for an unbond.
    #[error("{role:?} bond is {bonded}, cannot unbond {requested}")]
    InsufficientBond {
        /// Role.
        role: Role,
        /// Bonded.
        bonded: Amount,
        /// Requested.
        requested: Amount,
    },
    /// The content is already registered.
    #[error("content already registered as asset {existing}")]
    AlreadyRegistered {
        /// The existing asset's id.
        existing: AssetId,
    },
    /// Empty or over-long name.
    #[error("asset name must be 1..={max} bytes, got {len}")]
    BadName {
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Too many owners.
    #[error("{count} owners, limit {max}")]
    TooManyOwners {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// An owner listed twice.
    #[error("owner {0} listed twice")]
    DuplicateOwner(Address),
    /// An owner with a zero share.
    #[error("owner {0} has a zero share")]
    ZeroShare(Address),
    /// Owner shares do not sum to 10000 bps.
    #[error("owner shares sum to {sum} bps, expected 10000")]
    SharesNotTotal {
        /// Sum.
        sum: u64,
    },
    /// Too many parents.
    #[error("{count} parents, limit {max}")]
    TooManyParents {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A parent listed twice.
    #[error("parent {0} listed twice")]
    DuplicateParent(AssetId),
    /// Too many transitive ancestors.
    #[error("{count} ancestors, limit {max}")]
    TooManyAncestors {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// Parents' royalty rates sum above 10000 bps.
    #[error("parents' royalty rates sum to {sum} bps, above 10000")]
    RoyaltyRatesAboveTotal {
        /// Sum.
        sum: u64,
    },
    /// Terms with a royalty rate above 10000 bps.
    #[error("royalty rate {0} bps is above 10000")]
    BadRoyaltyRate(u16),
    /// Unknown asset.
    #[error("asset {0} not found")]
    AssetNotFound(AssetId),
    /// Unknown license token.
    #[error("license token {0} not found")]
    LicenseNotFound(LicenseTokenId),
    /// The token licenses another asset.
    #[error("license token {token} licenses {licensed}, not {parent}")]
    LicenseWrongAsset {
        /// Token.
        token: LicenseTokenId,
        /// Asset it licenses.
        licensed: AssetId,
        /// Parent it was presented for.
        parent: AssetId,
    },
    /// The token is held by someone else.
    #[error("license token {token} is held by {holder}")]
    LicenseNotHeld {
        /// Token.
        token: LicenseTokenId,
        /// Its holder.
        holder: Address,
    },
    /// The token was already consumed.
    #[error("license token {token} was consumed by {derivative}")]
    LicenseConsumed {
        /// Token.
        token: LicenseTokenId,
        /// The derivative it was consumed for.
        derivative: AssetId,
    },
    /// The token expired.
    #[error("license token {token} expired at height {expiry_height}")]
    LicenseExpired {
        /// Token.
        token: LicenseTokenId,
        /// Its expiry height.
        expiry_height: u64,
    },
    /// The token's terms do not allow derivatives.
    #[error("license token {0} does not allow derivatives")]
    DerivativesNotAllowed(LicenseTokenId),
    /// The sender is not an owner of the asset.
    #[error("{account} is not an owner of asset {asset}")]
    NotAnOwner {
        /// Sender.
        account: Address,
        /// Asset.
        asset: AssetId,
    },
    /// The asset's license cap is reached.
    #[error("license cap {cap} of asset {asset} reached")]
    LicenseCapReached {
        /// Asset.
        asset: AssetId,
        /// Cap.
        cap: u64,
    },
    /// The asset's terms expired: its licenses can no longer be bought.
    #[error("license offer of asset {asset} expired at height {expiry_height}")]
    LicenseOfferExpired {
        /// Asset.
        asset: AssetId,
        /// Expiry height.
        expiry_height: u64,
    },
    /// Empty or over-long reward task description.
    #[error("task description must be 1..={max} bytes, got {len}")]
    BadTask {
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// No assets, or more than the limit, in a reward pool.
    #[error("a reward pool pays 1..={max} assets, got {count}")]
    BadPoolAssets {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A list of assets that is not strictly ascending (unsorted or repeated).
    #[error("assets must be listed in strictly ascending order of id, each once")]
    AssetsNotAscending,
    /// A challenge window of zero or above the limit.
    #[error("challenge window must be 1..={max} blocks, got {blocks}")]
    BadChallengeWindow {
        /// Requested.
        blocks: u64,
        /// Limit.
        max: u64,
    },
    /// Unknown reward pool.
    #[error("reward pool {0} not found")]
    PoolNotFound(RewardPoolId),
    /// The pool was paid out already.
    #[error("reward pool {0} was already paid out")]
    PoolAlreadyPaid(RewardPoolId),
    /// A share names an asset the pool does not pay.
    #[error("asset {asset} is not eligible in reward pool {pool}")]
    AssetNotInPool {
        /// Pool.
        pool: RewardPoolId,
        /// Asset.
        asset: AssetId,
    },
    /// The pool already has a valuation: dispute it with a challenge.
    #[error("reward pool {0} already has a valuation; challenge it instead")]
    ValuationAlreadySubmitted(RewardPoolId),
    /// The pool has no valuation yet.
    #[error("reward pool {0} has no valuation yet")]
    NoValuation(RewardPoolId),
    /// A challenge of the pool is being decided.
    #[error("a challenge of reward pool {0} is being decided")]
    ChallengeOpen(RewardPoolId),
    /// The pool has no open challenge.
    #[error("reward pool {0} has no open challenge")]
    NoChallenge(RewardPoolId),
    /// The valuation's challenge window has closed.
    #[error("the challenge window of reward pool {pool} closed at height {deadline_height}")]
    ChallengeWindowClosed {
        /// Pool.
        pool: RewardPoolId,
        /// Last height a challenge was possible.
        deadline_height: u64,
    },
    /// The valuation's challenge window is still open.
    #[error("reward pool {pool} can be claimed after height {deadline_height}")]
    ChallengeWindowOpen {
        /// Pool.
        pool: RewardPoolId,
        /// Last height of the window.
        deadline_height: u64,
    },
    /// An evaluator cannot challenge its own valuation.
    #[error("the standing valuation of reward pool {0} is the sender's own")]
    OwnValuation(RewardPoolId),
    /// The challenge has the same shares as the standing valuation.
    #[error("the challenge of reward pool {0} has the same shares as the standing valuation")]
    SameShares(RewardPoolId),
    /// Too few eligible verifiers for a committee.
    #[error("{available} eligible verifiers, a committee needs {needed}")]
    NotEnoughVerifiers {
        /// Eligible verifiers other than the two parties.
        available: usize,
        /// Committee size.
        needed: u16,
    },
    /// The sender is not on the challenge's committee.
    #[error("{verifier} is not on the committee of reward pool {pool}'s challenge")]
    NotOnCommittee {
        /// Pool.
        pool: RewardPoolId,
        /// Sender.
        verifier: Address,
    },
    /// The vote deadline passed (or the committee is not drawn yet).
    #[error(
        "voting on reward pool {pool}'s challenge is not open (deadline height {deadline_height})"
    )]
    VoteClosed {
        /// Pool.
        pool: RewardPoolId,
        /// Deadline (0: not drawn yet).
        deadline_height: u64,
    },
    /// The member voted already.
    #[error("{verifier} already voted on reward pool {pool}'s challenge")]
    AlreadyVoted {
        /// Pool.
        pool: RewardPoolId,
        /// Member.
        verifier: Address,
    },
    /// A provider's storage bond is below the minimum.
    #[error("{provider} has a storage_provider bond of {bonded}, at least {needed} is needed")]
    ProviderBondTooSmall {
        /// Provider.
        provider: Address,
        /// Its bond.
        bonded: Amount,
        /// The minimum.
        needed: Amount,
    },
    /// Empty or over-long endpoint.
    #[error("endpoint must be 1..={max} bytes, got {len}")]
    BadEndpoint {
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Zero capacity, or less than what deals already use.
    #[error(
        "capacity {capacity_bytes} bytes is zero or below the {committed_bytes} bytes under deals"
    )]
    BadCapacity {
        /// Offered.
        capacity_bytes: u64,
        /// Committed.
        committed_bytes: u64,
    },
    /// The asset's layout is already recorded.
    #[error("asset {0} is already stored")]
    AlreadyStored(AssetId),
    /// The asset has no layout.
    #[error("asset {0} has no storage layout; record it with StoreAsset first")]
    NotStored(AssetId),
    /// An inconsistent layout.
    #[error(
        "layout of {data_shards} data + {parity_shards} parity shards with {roots} roots is invalid (k ≥ 1, k + m ≤ 32, one root per shard, non-empty shards)"
    )]
    BadLayout {
        /// k.
        data_shards: u8,
        /// m.
        parity_shards: u8,
        /// Roots given.
        roots: usize,
    },
    /// A shard index past the layout.
    #[error("asset {asset} has {shards} shards, no shard {shard_index}")]
    NoSuchShard {
        /// Asset.
        asset: AssetId,
        /// Index asked.
        shard_index: u8,
        /// Shards.
        shards: usize,
    },
    /// Unknown provider.
    #[error("{0} is not a registered storage provider")]
    ProviderNotFound(Address),
    /// A deal of zero epochs or above the limit.
    #[error("a deal lasts 1..={max} epochs, got {epochs}")]
    BadDealEpochs {
        /// Asked.
        epochs: u32,
        /// Limit.
        max: u32,
    },
    /// Unknown deal.
    #[error("storage deal {0} not found")]
    DealNotFound(DealId),
    /// The deal is not in a status that allows the call.
    #[error("storage deal {deal} is {status}")]
    DealStatus {
        /// Deal.
        deal: DealId,
        /// Its status.
        status: &'static str,
    },
    /// The sender is not the deal's provider.
    #[error("{provider} is not the provider of storage deal {deal}")]
    NotDealProvider {
        /// Deal.
        deal: DealId,
        /// Sender.
        provider: Address,
    },
    /// The sender is not the deal's client.
    #[error("{client} is not the client of storage deal {deal}")]
    NotDealClient {
        /// Deal.
        deal: DealId,
        /// Sender.
        client: Address,
    },
    /// Accepting would exceed the provider's capacity.
    #[error("{provider} offers {capacity_bytes} bytes; this deal would need {needed_bytes}")]
    CapacityExceeded {
        /// Provider.
        provider: Address,
        /// Capacity.
        capacity_bytes: u64,
        /// Needed.
        needed_bytes: u64,
    },
    /// No open challenge of the deal for that epoch.
    #[error("storage deal {deal} has no open challenge for epoch {epoch}")]
    NoStorageChallenge {
        /// Deal.
        deal: DealId,
        /// Epoch.
        epoch: u64,
    },
    /// The proof does not verify.
    #[error("storage proof for deal {deal} is invalid: {reason}")]
    BadStorageProof {
        /// Deal.
        deal: DealId,
        /// Why.
        reason: String,
    },
    /// The failed provider cannot repair its own deal.
    #[error("the provider that failed storage deal {deal} cannot claim its repair")]
    OwnFailedDeal {
        /// Deal.
        deal: DealId,
    },
    /// Unknown training session.
    #[error("training session {0} not found")]
    TrainingSessionNotFound(TrainingSessionId),
    /// A session planning no rounds, or more than the limit.
    #[error("a training session plans 1..={max} rounds, got {rounds}")]
    BadRounds {
        /// Planned.
        rounds: u32,
        /// Limit.
        max: u32,
    },
    /// Inconsistent participant bounds.
    #[error("participant bounds {min}..={max} are invalid: {reason}")]
    BadParticipantBounds {
        /// `participants_min`.
        min: u16,
        /// `participants_max`.
        max: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// Invalid differential-privacy settings.
    #[error("differential privacy settings are invalid: {0}")]
    BadPrivacy(&'static str),
    /// Invalid aggregation settings.
    #[error("aggregation settings are invalid: {0}")]
    BadAggregation(&'static str),
    /// The asset is not among the session's eligible assets.
    #[error("asset {asset} is not eligible for training session {session}")]
    AssetNotEligible {
        /// Session.
        session: TrainingSessionId,
        /// Asset.
        asset: AssetId,
    },
    /// The asset's terms do not grant a right a training session needs.
    #[error(
        "the terms of asset {asset} do not allow {right}, which joining a training session needs"
    )]
    TermsForbidTraining {
        /// Asset.
        asset: AssetId,
        /// The right missing (`ai_training` or `derivatives`).
        right: &'static str,
    },
    /// The asset's terms expire: a session's license must stay valid until its model is registered.
    #[error(
        "the terms of asset {asset} expire at height {expiry_height}; a training session's license must not expire"
    )]
    TermsExpire {
        /// Asset.
        asset: AssetId,
        /// Expiry height.
        expiry_height: u64,
    },
    /// Joins closed with the session's first committed round.
    #[error("training session {0} closed joins at its first committed round")]
    JoinsClosed(TrainingSessionId),
    /// The asset already joined the session.
    #[error("asset {asset} already joined training session {session}")]
    AlreadyJoined {
        /// Session.
        session: TrainingSessionId,
        /// Asset.
        asset: AssetId,
    },
    /// The session has its most participants.
    #[error("training session {session} is full ({max} participants)")]
    SessionFull {
        /// Session.
        session: TrainingSessionId,
        /// `participants_max`.
        max: u16,
    },
    /// The session was finalized already.
    #[error("training session {0} is already finalized")]
    SessionFinalized(TrainingSessionId),
    /// The sender is not the session's aggregator.
    #[error("{account} is not the aggregator of training session {session}")]
    NotAggregator {
        /// Session.
        session: TrainingSessionId,
        /// Sender.
        account: Address,
    },
    /// A round that is not the last committed one plus one.
    #[error("training session {session} expects round {expected}, got round {round}")]
    RoundOutOfOrder {
        /// Session.
        session: TrainingSessionId,
        /// Committed.
        round: u32,
        /// Expected.
        expected: u32,
    },
    /// A round past the session's planned rounds.
    #[error("training session {session} plans {rounds} rounds, got round {round}")]
    RoundBeyondPlan {
        /// Session.
        session: TrainingSessionId,
        /// Committed.
        round: u32,
        /// Planned.
        rounds: u32,
    },
    /// A round aggregating fewer participants than the session's minimum.
    #[error(
        "a round of training session {session} aggregates at least {min} participants, got {count}"
    )]
    TooFewRoundParticipants {
        /// Session.
        session: TrainingSessionId,
        /// Listed.
        count: usize,
        /// `participants_min`.
        min: u16,
    },
    /// The asset has not joined the session.
    #[error("asset {asset} is not a participant of training session {session}")]
    NotParticipant {
        /// Session.
        session: TrainingSessionId,
        /// Asset.
        asset: AssetId,
    },
    /// Finalizing before any round was committed.
    #[error("training session {0} has no committed round to finalize")]
    NoRoundsCommitted(TrainingSessionId),
    /// ε and δ at finalization do not match the session's privacy settings.
    #[error("privacy accounting for training session {session} is invalid: {reason}")]
    BadPrivacyReport {
        /// Session.
        session: TrainingSessionId,
        /// What is wrong.
        reason: &'static str,
    },
    /// The pool belongs to a training session: only its `FinalizeSession` posts a valuation.
    #[error(
        "reward pool {pool} belongs to training session {session}; its valuation comes from FinalizeSession"
    )]
    PoolReservedForSession {
        /// Pool.
        pool: RewardPoolId,
        /// Session.
        session: TrainingSessionId,
    },
    /// The token was minted for a training session: only that session's model may consume it.
    #[error("license token {token} is reserved for the model of training session {session}")]
    LicenseReserved {
        /// Token.
        token: LicenseTokenId,
        /// Session.
        session: TrainingSessionId,
    },
}

impl ExecutionError {
    /// Stable machine code.
    pub const fn code(&self) -> &'static str {
        match self {
            ExecutionError::Overflow => "overflow",
            ExecutionError::UnsupportedCall => "unsupported_call",
            ExecutionError::MisbehaviourAlreadyReported { .. } => "misbehaviour_already_reported",
            ExecutionError::ZeroAmount => "zero_amount",
            ExecutionError::InsufficientBalance { .. } => "insufficient_balance",
            ExecutionError::InsufficientBond { .. } => "insufficient_bond",
            ExecutionError::AlreadyRegistered { .. } => "already_registered",
            ExecutionError::BadName { .. } => "bad_name",
            ExecutionError::TooManyOwners { .. } => "too_many_owners",
            ExecutionError::DuplicateOwner(_) => "duplicate_owner",
            ExecutionError::ZeroShare(_) => "zero_share",
            ExecutionError::SharesNotTotal { .. } => "shares_not_total",
            ExecutionError::TooManyParents { .. } => "too_many_parents",
            ExecutionError::DuplicateParent(_) => "duplicate_parent",
            ExecutionError::TooManyAncestors { .. } => "too_many_ancestors",
            ExecutionError::RoyaltyRatesAboveTotal { .. } => "royalty_rates_above_total",
            ExecutionError::BadRoyaltyRate(_) => "bad_royalty_rate",
            ExecutionError::AssetNotFound(_) => "asset_not_found",
            ExecutionError::LicenseNotFound(_) => "license_not_found",
            ExecutionError::LicenseWrongAsset { .. } => "license_wrong_asset",
            ExecutionError::LicenseNotHeld { .. } => "license_not_held",
            ExecutionError::LicenseConsumed { .. } => "license_consumed",
            ExecutionError::LicenseExpired { .. } => "license_expired",
            ExecutionError::DerivativesNotAllowed(_) => "derivatives_not_allowed",
            ExecutionError::NotAnOwner { .. } => "not_an_owner",
            ExecutionError::LicenseCapReached { .. } => "license_cap_reached",
            ExecutionError::LicenseOfferExpired { .. } => "license_offer_expired",
            ExecutionError::BadTask { .. } => "bad_task",
            ExecutionError::BadPoolAssets { .. } => "bad_pool_assets",
            ExecutionError::AssetsNotAscending => "assets_not_ascending",
            ExecutionError::BadChallengeWindow { .. } => "bad_challenge_window",
            ExecutionError::PoolNotFound(_) => "pool_not_found",
            ExecutionError::PoolAlreadyPaid(_) => "pool_already_paid",
            ExecutionError::AssetNotInPool { .. } => "asset_not_in_pool",
            ExecutionError::ValuationAlreadySubmitted(_) => "valuation_already_submitted",
            ExecutionError::NoValuation(_) => "no_valuation",
            ExecutionError::ChallengeOpen(_) => "challenge_open",
            ExecutionError::NoChallenge(_) => "no_challenge",
            ExecutionError::ChallengeWindowClosed { .. } => "challenge_window_closed",
            ExecutionError::ChallengeWindowOpen { .. } => "challenge_window_open",
            ExecutionError::OwnValuation(_) => "own_valuation",
            ExecutionError::SameShares(_) => "same_shares",
            ExecutionError::NotEnoughVerifiers { .. } => "not_enough_verifiers",
            ExecutionError::NotOnCommittee { .. } => "not_on_committee",
            ExecutionError::VoteClosed { .. } => "vote_closed",
            ExecutionError::AlreadyVoted { .. } => "already_voted",
            ExecutionError::ProviderBondTooSmall { .. } => "provider_bond_too_small",
            ExecutionError::BadEndpoint { .. } => "bad_endpoint",
            ExecutionError::BadCapacity { .. } => "bad_capacity",
            ExecutionError::AlreadyStored(_) => "already_stored",
            ExecutionError::NotStored(_) => "not_stored",
            ExecutionError::BadLayout { .. } => "bad_layout",
            ExecutionError::NoSuchShard { .. } => "no_such_shard",
            ExecutionError::ProviderNotFound(_) => "provider_not_found",
            ExecutionError::BadDealEpochs { .. } => "bad_deal_epochs",
            ExecutionError::DealNotFound(_) => "deal_not_found",
            ExecutionError::DealStatus { .. } => "deal_status",
            ExecutionError::NotDealProvider { .. } => "not_deal_provider",
            ExecutionError::NotDealClient { .. } => "not_deal_client",
            ExecutionError::CapacityExceeded { .. } => "capacity_exceeded",
            ExecutionError::NoStorageChallenge { .. } => "no_storage_challenge",
            ExecutionError::BadStorageProof { .. } => "bad_storage_proof",
            ExecutionError::OwnFailedDeal { .. } => "own_failed_deal",
            ExecutionError::TrainingSessionNotFound(_) => "training_session_not_found",
            ExecutionError::BadRounds { .. } => "bad_rounds",
            ExecutionError::BadParticipantBounds { .. } => "bad_participant_bounds",
            ExecutionError::BadPrivacy(_) => "bad_privacy",
            ExecutionError::BadAggregation(_) => "bad_aggregation",
            ExecutionError::AssetNotEligible { .. } => "asset_not_eligible",
            ExecutionError::TermsForbidTraining { .. } => "terms_forbid_training",
            ExecutionError::TermsExpire { .. } => "terms_expire",
            ExecutionError::JoinsClosed(_) => "joins_closed",
            ExecutionError::AlreadyJoined { .. } => "already_joined",
            ExecutionError::SessionFull { .. } => "session_full",
            ExecutionError::SessionFinalized(_) => "session_finalized",
            ExecutionError::NotAggregator { .. } => "not_aggregator",
            ExecutionError::RoundOutOfOrder { .. } => "round_out_of_order",
            ExecutionError::RoundBeyondPlan { .. } => "round_beyond_plan",
            ExecutionError::TooFewRoundParticipants { .. } => "too_few_round_participants",
            ExecutionError::NotParticipant { .. } => "not_participant",
            ExecutionError::NoRoundsCommitted(_) => "no_rounds_committed",
            ExecutionError::BadPrivacyReport { .. } => "bad_privacy_report",
            ExecutionError::PoolReservedForSession { .. } => "pool_reserved_for_session",
            ExecutionError::LicenseReserved { .. } => "license_reserved",
        }
    }

    /// `code: message`, the form receipts carry.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code(), self)
    }
}
