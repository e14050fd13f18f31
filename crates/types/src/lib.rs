//! Shared types of Tributary: addresses, ids, amounts, license terms, transactions and their canonical
//! wire encoding, blocks, events, receipts, genesis, JSON views, and every limit (`limits`).
//!
//! No I/O lives here. Design choices:
//! - **One encoding per value.** The transaction codec (see [`transaction`]) uses fixed-width big-endian
//!   integers, one-byte length prefixes and strict 0/1 tags, so signatures and hashes are over the only
//!   possible bytes; decoding enforces the limits and never panics on arbitrary input.
//! - **Fixed limits.** Decoding takes no config: the bounds are the constants in [`limits`], which every
//!   node shares. A later format version can carry different ones.
//! - **Amounts are `u128`** base units, decimal strings in JSON.
//! - **Text forms are unique**: addresses are lowercase bech32m `trib1…`, 32-byte ids lowercase hex.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod address;
pub mod amount;
pub mod block;
pub mod event;
pub mod genesis;
pub mod hash;
pub mod limits;
pub mod training;
pub mod transaction;
pub mod views;
mod wire;

pub use address::{ADDRESS_HRP, Address, AddressError};
pub use amount::{Amount, amount_string, amount_string_option};
pub use block::{BlockInput, BlockOutcome};
pub use event::{Event, PayoutKind, Receipt, ReceiptStatus};
pub use genesis::{Allocation, Genesis, GenesisBond, Params};
pub use hash::{AssetId, Hash32, ParseHashError, StateRoot, TxHash};
pub use training::{
    Aggregation, DifferentialPrivacy, FinalizeSession, OpenSession, TrainingSessionId,
};
pub use transaction::{
    AssetKind, Call, CreateRewardPool, DealId, LicenseTokenId, RegisterAsset, RewardPoolId, Role,
    SignedTransaction, StorageLayout, TRANSACTION_NAMESPACE, TRANSACTION_VERSION, Terms,
    Transaction, ValuationClaim,
};
pub use views::{
    AccountView, AssetShareView, AssetView, BillOfMaterialsView, BondView, ChallengeView, DealView,
    LicenseTokenView, LineageView, MaterialInputView, OwnerView, ParentView, ProviderView,
    RewardPoolView, RoundCommitmentView, SessionParticipantView, TrainingSessionView,
    ValuationView, VoteView,
};

/// Re-exports so dependants use the same crypto and codec versions.
pub use commonware_codec as codec;
pub use commonware_cryptography::ed25519::{PrivateKey, PublicKey, Signature};
