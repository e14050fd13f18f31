//! Error types. Each has a stable machine code (`code()`) for APIs and receipts.

use tributary_types::{Address, Amount, AssetId, LicenseTokenId, Role, TxHash};

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
        }
    }

    /// `code: message`, the form receipts carry.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code(), self)
    }
}
