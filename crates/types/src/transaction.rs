//! Transactions: one call, signed by its sender over the call's canonical encoding.
//!
//! # Encoding
//! `Transaction` = version (u8, [`TRANSACTION_VERSION`]) | chain id (u8 length + UTF-8) | sender (32) |
//! nonce (u64 BE) | fee (u128 BE) | call. A call is one tag byte followed by its fields. Tags are grouped by
//! module (bank `0x0_`, stake `0x1_`, registry `0x2_`, licensing `0x3_`, royalty `0x4_`, conduct `0x5_`,
//! rewards `0x6_`, storage `0x7_`, training `0x8_`) so later modules (compute) add their own ranges
//! without renumbering. Integers are fixed-width
//! big-endian, lengths are one byte, booleans and option tags are exactly 0 or 1: every value has one
//! encoding, decoding rejects anything else (and trailing bytes, through `Decode`), and the limits of
//! [`crate::limits`] are enforced while decoding.
//!
//! A `SignedTransaction` is the transaction's encoding followed by the 64-byte ed25519 signature over it,
//! made under the namespace [`TRANSACTION_NAMESPACE`]. Its hash is BLAKE3 of that whole encoding.

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    hash::{AssetId, Hash32, TxHash},
    limits::{
        ASSET_NAME_BYTES_MAX, ASSET_OWNERS_MAX, ASSET_PARENTS_MAX, CHAIN_ID_BYTES_MAX,
        ENDPOINT_BYTES_MAX, REWARD_POOL_ASSETS_MAX, REWARD_TASK_BYTES_MAX, STORAGE_SHARDS_MAX,
        TRAINING_PARTICIPANTS_MAX, TRANSACTION_BYTES_MAX,
    },
    training::{FinalizeSession, OpenSession, TrainingSessionId},
    wire::{
        option_u64_size, read_option_u64, read_str, read_u8_len, write_option_u64, write_str,
        write_u8_len,
    },
};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Encode, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use commonware_cryptography::{
    Signer, Verifier,
    ed25519::{PrivateKey, Signature},
};
use serde::{Deserialize, Serialize};

/// Namespace every transaction signature is made under (keeps signatures from other contexts out).
pub const TRANSACTION_NAMESPACE: &[u8] = b"tributary-tx-v1";

/// Version byte at the start of every encoded transaction.
pub const TRANSACTION_VERSION: u8 = 1;

/// A license token's id: sequential from 1.
pub type LicenseTokenId = u64;

/// A reward pool's id: sequential from 1.
pub type RewardPoolId = u64;

/// A storage deal's id: sequential from 1.
pub type DealId = u64;

/// Roles an account can bond stake for. Extensible: new roles take new tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Stores shards under storage deals.
    StorageProvider,
    /// Evaluates data valuation reports.
    ValuationEvaluator,
    /// Sells compute time.
    ComputeProvider,
    /// Re-executes and verifies results.
    Verifier,
    /// Runs consensus; its bond is what proven misbehaviour is slashed from.
    Validator,
}

impl Role {
    /// Every role, in tag order.
    pub const ALL: [Role; 5] = [
        Role::StorageProvider,
        Role::ValuationEvaluator,
        Role::ComputeProvider,
        Role::Verifier,
        Role::Validator,
    ];

    /// The role's wire tag.
    pub const fn tag(self) -> u8 {
        match self {
            Role::StorageProvider => 0,
            Role::ValuationEvaluator => 1,
            Role::ComputeProvider => 2,
            Role::Verifier => 3,
            Role::Validator => 4,
        }
    }

    /// The role with wire tag `tag`.
    pub const fn from_tag(tag: u8) -> Option<Role> {
        match tag {
            0 => Some(Role::StorageProvider),
            1 => Some(Role::ValuationEvaluator),
            2 => Some(Role::ComputeProvider),
            3 => Some(Role::Verifier),
            4 => Some(Role::Validator),
            _ => None,
        }
    }
}

impl Write for Role {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
    }
}

impl Read for Role {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tag = u8::read_cfg(buf, &())?;
        Role::from_tag(tag).ok_or(CodecError::InvalidEnum(tag))
    }
}

impl FixedSize for Role {
    const SIZE: usize = 1;
}

/// What an asset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssetKind {
    /// A dataset.
    Dataset,
    /// A trained model.
    Model,
}

impl AssetKind {
    /// The kind's wire tag.
    pub const fn tag(self) -> u8 {
        match self {
            AssetKind::Dataset => 0,
            AssetKind::Model => 1,
        }
    }
}

impl Write for AssetKind {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
    }
}

impl Read for AssetKind {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(AssetKind::Dataset),
            1 => Ok(AssetKind::Model),
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

impl FixedSize for AssetKind {
    const SIZE: usize = 1;
}

/// License terms an asset offers. A minted token keeps a snapshot; later changes never touch it.
///
/// The default allows nothing and costs 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Commercial use allowed.
    pub commercial_use: bool,
    /// Training AI models on the asset allowed.
    pub ai_training: bool,
    /// Registering derivative assets (children) allowed.
    pub derivatives: bool,
    /// Attribution required.
    pub attribution_required: bool,
    /// Share of a derivative's revenue owed to this asset, in basis points (at most 10000).
    pub royalty_bps: u16,
    /// Price of one license, in base units.
    #[serde(with = "amount_string")]
    pub price: Amount,
    /// Last height at which a license under these terms is valid (and can be bought); `None`: never expires.
    pub expiry_height: Option<u64>,
    /// Most licenses that may ever be minted for the asset; `None`: no cap.
    pub license_cap: Option<u64>,
}

impl Write for Terms {
    fn write(&self, buf: &mut impl BufMut) {
        self.commercial_use.write(buf);
        self.ai_training.write(buf);
        self.derivatives.write(buf);
        self.attribution_required.write(buf);
        self.royalty_bps.write(buf);
        self.price.write(buf);
        write_option_u64(self.expiry_height, buf);
        write_option_u64(self.license_cap, buf);
    }
}

impl EncodeSize for Terms {
    fn encode_size(&self) -> usize {
        4 + 2 + 16 + option_u64_size(self.expiry_height) + option_u64_size(self.license_cap)
    }
}

impl Read for Terms {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Terms {
            commercial_use: bool::read_cfg(buf, &())?,
            ai_training: bool::read_cfg(buf, &())?,
            derivatives: bool::read_cfg(buf, &())?,
            attribution_required: bool::read_cfg(buf, &())?,
            royalty_bps: u16::read_cfg(buf, &())?,
            price: u128::read_cfg(buf, &())?,
            expiry_height: read_option_u64(buf, "Terms.expiry_height")?,
            license_cap: read_option_u64(buf, "Terms.license_cap")?,
        })
    }
}

/// Fields of a `RegisterAsset` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAsset {
    /// BLAKE3 of the file (what `b3sum` prints); becomes the asset id.
    pub content_root: AssetId,
    /// Dataset or model.
    pub kind: AssetKind,
    /// Display name (UTF-8, non-empty, at most `ASSET_NAME_BYTES_MAX` bytes).
    pub name: String,
    /// Size of the content in bytes.
    pub byte_size: u64,
    /// Owners and their shares in basis points (summing to 10000). Empty: the registrant at 10000.
    pub owners: Vec<(Address, u16)>,
    /// Parents, each with the license token (held by the registrant, allowing derivatives) it consumes.
    pub parents: Vec<(AssetId, LicenseTokenId)>,
    /// License terms offered for this asset.
    pub terms: Terms,
}

impl Write for RegisterAsset {
    fn write(&self, buf: &mut impl BufMut) {
        self.content_root.write(buf);
        self.kind.write(buf);
        write_str(&self.name, buf);
        self.byte_size.write(buf);
        write_u8_len(self.owners.len(), buf);
        for (owner, bps) in &self.owners {
            owner.write(buf);
            bps.write(buf);
        }
        write_u8_len(self.parents.len(), buf);
        for (parent, token) in &self.parents {
            parent.write(buf);
            token.write(buf);
        }
        self.terms.write(buf);
    }
}

impl EncodeSize for RegisterAsset {
    fn encode_size(&self) -> usize {
        32 + 1
            + 1
            + self.name.len()
            + 8
            + 1
            + self.owners.len() * 34
            + 1
            + self.parents.len() * 40
            + self.terms.encode_size()
    }
}

impl Read for RegisterAsset {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let content_root = Hash32::read_cfg(buf, &())?;
        let kind = AssetKind::read_cfg(buf, &())?;
        let name = read_str(buf, ASSET_NAME_BYTES_MAX, "RegisterAsset.name")?;
        let byte_size = u64::read_cfg(buf, &())?;
        let owner_count = read_u8_len(buf, ASSET_OWNERS_MAX, "RegisterAsset.owners")?;
        let mut owners = Vec::with_capacity(owner_count);
        for _ in 0..owner_count {
            owners.push((Address::read_cfg(buf, &())?, u16::read_cfg(buf, &())?));
        }
        let parent_count = read_u8_len(buf, ASSET_PARENTS_MAX, "RegisterAsset.parents")?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            parents.push((Hash32::read_cfg(buf, &())?, u64::read_cfg(buf, &())?));
        }
        let terms = Terms::read_cfg(buf, &())?;
        Ok(RegisterAsset {
            content_root,
            kind,
            name,
            byte_size,
            owners,
            parents,
            terms,
        })
    }
}

/// Fields of a `CreateRewardPool` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRewardPool {
    /// What the data is valued for (UTF-8, 1..=`REWARD_TASK_BYTES_MAX` bytes), e.g. "digits, KNN-Shapley K=5".
    pub task: String,
    /// BLAKE3 of the test set valuations must be computed against.
    pub test_set_root: Hash32,
    /// Assets the pool pays, strictly ascending (1..=`REWARD_POOL_ASSETS_MAX`).
    pub assets: Vec<AssetId>,
    /// The reward, moved from the funder into the pool.
    #[serde(with = "amount_string")]
    pub amount: Amount,
    /// What an evaluator (and a challenger) must put up.
    #[serde(with = "amount_string")]
    pub evaluator_stake: Amount,
    /// Blocks after a valuation during which it can be challenged.
    pub challenge_window_blocks: u64,
}

impl Write for CreateRewardPool {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.task, buf);
        self.test_set_root.write(buf);
        write_u8_len(self.assets.len(), buf);
        for asset in &self.assets {
            asset.write(buf);
        }
        self.amount.write(buf);
        self.evaluator_stake.write(buf);
        self.challenge_window_blocks.write(buf);
    }
}

impl EncodeSize for CreateRewardPool {
    fn encode_size(&self) -> usize {
        1 + self.task.len() + 32 + 1 + self.assets.len() * 32 + 16 + 16 + 8
    }
}

impl Read for CreateRewardPool {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let task = read_str(buf, REWARD_TASK_BYTES_MAX, "CreateRewardPool.task")?;
        let test_set_root = Hash32::read_cfg(buf, &())?;
        let count = read_u8_len(buf, REWARD_POOL_ASSETS_MAX, "CreateRewardPool.assets")?;
        let mut assets = Vec::with_capacity(count);
        for _ in 0..count {
            assets.push(Hash32::read_cfg(buf, &())?);
        }
        Ok(CreateRewardPool {
            task,
            test_set_root,
            assets,
            amount: u128::read_cfg(buf, &())?,
            evaluator_stake: u128::read_cfg(buf, &())?,
            challenge_window_blocks: u64::read_cfg(buf, &())?,
        })
    }
}

/// A valuation as the ledger records it: the report's commitment and the per-asset shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuationClaim {
    /// BLAKE3 of the valuation report file (`tributary value --report`), which names every input
    /// by its root so anyone can recompute it (`tributary value verify`).
    pub report_root: Hash32,
    /// Per-asset shares in basis points, strictly ascending by asset, summing to exactly 10000;
    /// assets of the pool that are absent get nothing.
    pub shares: Vec<(AssetId, u16)>,
}

impl Write for ValuationClaim {
    fn write(&self, buf: &mut impl BufMut) {
        self.report_root.write(buf);
        write_u8_len(self.shares.len(), buf);
        for (asset, bps) in &self.shares {
            asset.write(buf);
            bps.write(buf);
        }
    }
}

impl EncodeSize for ValuationClaim {
    fn encode_size(&self) -> usize {
        32 + 1 + self.shares.len() * 34
    }
}

impl Read for ValuationClaim {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let report_root = Hash32::read_cfg(buf, &())?;
        let count = read_u8_len(buf, REWARD_POOL_ASSETS_MAX, "ValuationClaim.shares")?;
        let mut shares = Vec::with_capacity(count);
        for _ in 0..count {
            shares.push((Hash32::read_cfg(buf, &())?, u16::read_cfg(buf, &())?));
        }
        Ok(ValuationClaim {
            report_root,
            shares,
        })
    }
}

/// How a stored asset is laid out across storage providers (`StoreAsset`): the commitments
/// deals and proofs are checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLayout {
    /// BLAKE3 of the asset's manifest (chunking, cipher, coding, shard roots).
    pub manifest_root: Hash32,
    /// Data shards (k): any k of the k + m shards rebuild the asset.
    pub data_shards: u8,
    /// Parity shards (m).
    pub parity_shards: u8,
    /// Size of every shard, in bytes.
    pub shard_bytes: u64,
    /// BLAKE3 root of each shard, in shard order (k + m of them).
    pub shard_roots: Vec<Hash32>,
}

impl Write for StorageLayout {
    fn write(&self, buf: &mut impl BufMut) {
        self.manifest_root.write(buf);
        self.data_shards.write(buf);
        self.parity_shards.write(buf);
        self.shard_bytes.write(buf);
        write_u8_len(self.shard_roots.len(), buf);
        for root in &self.shard_roots {
            root.write(buf);
        }
    }
}

impl EncodeSize for StorageLayout {
    fn encode_size(&self) -> usize {
        32 + 1 + 1 + 8 + 1 + self.shard_roots.len() * 32
    }
}

impl Read for StorageLayout {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let manifest_root = Hash32::read_cfg(buf, &())?;
        let data_shards = u8::read_cfg(buf, &())?;
        let parity_shards = u8::read_cfg(buf, &())?;
        let shard_bytes = u64::read_cfg(buf, &())?;
        let count = read_u8_len(buf, STORAGE_SHARDS_MAX, "StorageLayout.shard_roots")?;
        let mut shard_roots = Vec::with_capacity(count);
        for _ in 0..count {
            shard_roots.push(Hash32::read_cfg(buf, &())?);
        }
        Ok(StorageLayout {
            manifest_root,
            data_shards,
            parity_shards,
            shard_bytes,
            shard_roots,
        })
    }
}

/// The one action a transaction performs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Call {
    /// bank: move `amount` from the sender to `to`.
    Transfer {
        /// Recipient.
        to: Address,
        /// Amount moved.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// stake: move `amount` from the sender's balance into its bond for `role`.
    Bond {
        /// Role bonded for.
        role: Role,
        /// Amount bonded.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// stake: start releasing `amount` of the sender's bond for `role`; it returns to the balance after the
    /// unbonding delay.
    Unbond {
        /// Role unbonded from.
        role: Role,
        /// Amount unbonded.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// registry: register an asset.
    RegisterAsset(RegisterAsset),
    /// registry: change the terms offered for future licenses (any listed owner may).
    UpdateTerms {
        /// The asset.
        asset: AssetId,
        /// The new terms.
        terms: Terms,
    },
    /// licensing: pay the asset's price and mint a license token to the sender.
    BuyLicense {
        /// The asset.
        asset: AssetId,
    },
    /// royalty: pay `amount` of revenue to `asset` (split to its lineage and owners).
    PayRevenue {
        /// The asset.
        asset: AssetId,
        /// Revenue paid by the sender.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// conduct: record proof that validator `validator` misbehaved in consensus view `view`
    /// (two conflicting signed votes). Anyone may submit it. The proof is checked against the
    /// validator set by the chain layer before the transaction is admitted or a block holding it
    /// is accepted; the ledger records one report per validator and view.
    ReportMisbehaviour {
        /// The offending validator's account.
        validator: Address,
        /// The consensus view of the fault.
        view: u64,
        /// The fault with both signed votes, in consensus's canonical encoding.
        #[serde(with = "hex_bytes")]
        proof: Vec<u8>,
    },
    /// rewards: fund a pool that pays the listed assets by a valuation of their data.
    CreateRewardPool(CreateRewardPool),
    /// rewards: post a valuation of the pool's assets, putting up the pool's evaluator stake.
    SubmitValuation {
        /// The pool.
        pool: RewardPoolId,
        /// The valuation.
        valuation: ValuationClaim,
    },
    /// rewards: dispute the pool's current valuation with a different one, putting up the same
    /// stake; a committee of verifiers drawn from the chain's beacon decides.
    ChallengeValuation {
        /// The pool.
        pool: RewardPoolId,
        /// The challenger's valuation.
        valuation: ValuationClaim,
    },
    /// rewards: a drawn committee member's vote on the pool's open challenge, after re-running
    /// both reports.
    VoteValuation {
        /// The pool.
        pool: RewardPoolId,
        /// True: the challenger's valuation is the correct one; false: the current one stands.
        for_challenger: bool,
    },
    /// rewards: pay out a pool whose valuation's challenge window has passed (anyone may call).
    ClaimRewards {
        /// The pool.
        pool: RewardPoolId,
    },
    /// storage: offer storage (needs a `storage_provider` bond of at least
    /// `provider_bond_min`); registering again updates the offer.
    RegisterProvider {
        /// Bytes offered.
        capacity_bytes: u64,
        /// Price per GiB per epoch, in base units (charged per byte, rounded up).
        #[serde(with = "amount_string")]
        price_per_gib_epoch: Amount,
        /// Where clients reach it (e.g. an iroh node address), at most `ENDPOINT_BYTES_MAX` bytes.
        endpoint: String,
    },
    /// storage: an owner of `asset` records how its encrypted, erasure-coded shards are laid out.
    StoreAsset {
        /// The asset.
        asset: AssetId,
        /// The layout.
        layout: StorageLayout,
    },
    /// storage: an owner of a stored asset proposes a deal for one shard with a provider, moving
    /// the whole price (`epochs` epochs) into escrow.
    CreateDeal {
        /// The asset.
        asset: AssetId,
        /// Which shard.
        shard_index: u8,
        /// The provider.
        provider: Address,
        /// Epochs of storage paid for.
        epochs: u32,
    },
    /// storage: the provider confirms it holds the deal's shard (checked against its root); the
    /// deal is challenged from the next epoch.
    AcceptDeal {
        /// The deal.
        deal: DealId,
    },
    /// storage: the client withdraws a deal its provider has not accepted; the escrow returns.
    CancelDeal {
        /// The deal.
        deal: DealId,
    },
    /// storage: the provider answers its deal's challenge for `epoch`.
    SubmitProof {
        /// The deal.
        deal: DealId,
        /// The challenged epoch.
        epoch: u64,
        /// The proof (a BLAKE3 tree proof of the challenged chunks, `tributary_proof`), at most
        /// `STORAGE_PROOF_BYTES_MAX` bytes.
        #[serde(with = "hex_bytes")]
        proof: Vec<u8>,
    },
    /// storage: a registered provider that rebuilt a failed deal's shard takes the deal over for
    /// its remaining epochs and collects the repair bounty.
    ClaimRepair {
        /// The failed deal.
        deal: DealId,
    },
    /// training: open a federated-learning session, escrowing its reward in a new reward pool
    /// whose eligible assets are the session's.
    OpenSession(OpenSession),
    /// training: an owner of an eligible asset joins the session with it; a license token for the
    /// asset is minted to the session's trainer (paid for by the reward, not a price).
    JoinSession {
        /// The session.
        session: TrainingSessionId,
        /// The asset joining.
        asset: AssetId,
    },
    /// training: the aggregator commits one round's aggregate (the first commit closes joins).
    CommitRound {
        /// The session.
        session: TrainingSessionId,
        /// The round: the last committed plus one.
        round: u32,
        /// BLAKE3 of the round's aggregated update.
        aggregate_root: Hash32,
        /// The participants whose updates the round aggregated, strictly ascending.
        participants: Vec<AssetId>,
    },
    /// training: the aggregator registers the model (the participants' assets as its parents),
    /// records its bill of materials and posts the contribution shares as the pool's valuation.
    FinalizeSession(FinalizeSession),
}

/// Serde for byte vectors as lowercase hex.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

impl Call {
    /// Wire tag of `Transfer`.
    pub const TAG_TRANSFER: u8 = 0x01;
    /// Wire tag of `Bond`.
    pub const TAG_BOND: u8 = 0x11;
    /// Wire tag of `Unbond`.
    pub const TAG_UNBOND: u8 = 0x12;
    /// Wire tag of `RegisterAsset`.
    pub const TAG_REGISTER_ASSET: u8 = 0x21;
    /// Wire tag of `UpdateTerms`.
    pub const TAG_UPDATE_TERMS: u8 = 0x22;
    /// Wire tag of `BuyLicense`.
    pub const TAG_BUY_LICENSE: u8 = 0x31;
    /// Wire tag of `PayRevenue`.
    pub const TAG_PAY_REVENUE: u8 = 0x41;
    /// Wire tag of `ReportMisbehaviour`.
    pub const TAG_REPORT_MISBEHAVIOUR: u8 = 0x51;
    /// Wire tag of `CreateRewardPool`.
    pub const TAG_CREATE_REWARD_POOL: u8 = 0x61;
    /// Wire tag of `SubmitValuation`.
    pub const TAG_SUBMIT_VALUATION: u8 = 0x62;
    /// Wire tag of `ChallengeValuation`.
    pub const TAG_CHALLENGE_VALUATION: u8 = 0x63;
    /// Wire tag of `VoteValuation`.
    pub const TAG_VOTE_VALUATION: u8 = 0x64;
    /// Wire tag of `ClaimRewards`.
    pub const TAG_CLAIM_REWARDS: u8 = 0x65;
    /// Wire tag of `RegisterProvider`.
    pub const TAG_REGISTER_PROVIDER: u8 = 0x71;
    /// Wire tag of `StoreAsset`.
    pub const TAG_STORE_ASSET: u8 = 0x72;
    /// Wire tag of `CreateDeal`.
    pub const TAG_CREATE_DEAL: u8 = 0x73;
    /// Wire tag of `AcceptDeal`.
    pub const TAG_ACCEPT_DEAL: u8 = 0x74;
    /// Wire tag of `CancelDeal`.
    pub const TAG_CANCEL_DEAL: u8 = 0x75;
    /// Wire tag of `SubmitProof`.
    pub const TAG_SUBMIT_PROOF: u8 = 0x76;
    /// Wire tag of `ClaimRepair`.
    pub const TAG_CLAIM_REPAIR: u8 = 0x77;
    /// Wire tag of `OpenSession`.
    pub const TAG_OPEN_SESSION: u8 = 0x81;
    /// Wire tag of `JoinSession`.
    pub const TAG_JOIN_SESSION: u8 = 0x82;
    /// Wire tag of `CommitRound`.
    pub const TAG_COMMIT_ROUND: u8 = 0x83;
    /// Wire tag of `FinalizeSession`.
    pub const TAG_FINALIZE_SESSION: u8 = 0x84;

    /// The call's wire tag.
    pub const fn tag(&self) -> u8 {
        match self {
            Call::Transfer { .. } => Self::TAG_TRANSFER,
            Call::Bond { .. } => Self::TAG_BOND,
            Call::Unbond { .. } => Self::TAG_UNBOND,
            Call::RegisterAsset(_) => Self::TAG_REGISTER_ASSET,
            Call::UpdateTerms { .. } => Self::TAG_UPDATE_TERMS,
            Call::BuyLicense { .. } => Self::TAG_BUY_LICENSE,
            Call::PayRevenue { .. } => Self::TAG_PAY_REVENUE,
            Call::ReportMisbehaviour { .. } => Self::TAG_REPORT_MISBEHAVIOUR,
            Call::CreateRewardPool(_) => Self::TAG_CREATE_REWARD_POOL,
            Call::SubmitValuation { .. } => Self::TAG_SUBMIT_VALUATION,
            Call::ChallengeValuation { .. } => Self::TAG_CHALLENGE_VALUATION,
            Call::VoteValuation { .. } => Self::TAG_VOTE_VALUATION,
            Call::ClaimRewards { .. } => Self::TAG_CLAIM_REWARDS,
            Call::RegisterProvider { .. } => Self::TAG_REGISTER_PROVIDER,
            Call::StoreAsset { .. } => Self::TAG_STORE_ASSET,
            Call::CreateDeal { .. } => Self::TAG_CREATE_DEAL,
            Call::AcceptDeal { .. } => Self::TAG_ACCEPT_DEAL,
            Call::CancelDeal { .. } => Self::TAG_CANCEL_DEAL,
            Call::SubmitProof { .. } => Self::TAG_SUBMIT_PROOF,
            Call::ClaimRepair { .. } => Self::TAG_CLAIM_REPAIR,
            Call::OpenSession(_) => Self::TAG_OPEN_SESSION,
            Call::JoinSession { .. } => Self::TAG_JOIN_SESSION,
            Call::CommitRound { .. } => Self::TAG_COMMIT_ROUND,
            Call::FinalizeSession(_) => Self::TAG_FINALIZE_SESSION,
        }
    }

    /// A short snake_case name of the call, for logs and receipts.
    pub const fn name(&self) -> &'static str {
        match self {
            Call::Transfer { .. } => "transfer",
            Call::Bond { .. } => "bond",
            Call::Unbond { .. } => "unbond",
            Call::RegisterAsset(_) => "register_asset",
            Call::UpdateTerms { .. } => "update_terms",
            Call::BuyLicense { .. } => "buy_license",
            Call::PayRevenue { .. } => "pay_revenue",
            Call::ReportMisbehaviour { .. } => "report_misbehaviour",
            Call::CreateRewardPool(_) => "create_reward_pool",
            Call::SubmitValuation { .. } => "submit_valuation",
            Call::ChallengeValuation { .. } => "challenge_valuation",
            Call::VoteValuation { .. } => "vote_valuation",
            Call::ClaimRewards { .. } => "claim_rewards",
            Call::RegisterProvider { .. } => "register_provider",
            Call::StoreAsset { .. } => "store_asset",
            Call::CreateDeal { .. } => "create_deal",
            Call::AcceptDeal { .. } => "accept_deal",
            Call::CancelDeal { .. } => "cancel_deal",
            Call::SubmitProof { .. } => "submit_proof",
            Call::ClaimRepair { .. } => "claim_repair",
            Call::OpenSession(_) => "open_session",
            Call::JoinSession { .. } => "join_session",
            Call::CommitRound { .. } => "commit_round",
            Call::FinalizeSession(_) => "finalize_session",
        }
    }
}

impl Write for Call {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
        match self {
            Call::Transfer { to, amount } => {
                to.write(buf);
                amount.write(buf);
            }
            Call::Bond { role, amount } | Call::Unbond { role, amount } => {
                role.write(buf);
                amount.write(buf);
            }
            Call::RegisterAsset(register) => register.write(buf),
            Call::UpdateTerms { asset, terms } => {
                asset.write(buf);
                terms.write(buf);
            }
            Call::BuyLicense { asset } => asset.write(buf),
            Call::PayRevenue { asset, amount } => {
                asset.write(buf);
                amount.write(buf);
            }
            Call::ReportMisbehaviour {
                validator,
                view,
                proof,
            } => {
                validator.write(buf);
                view.write(buf);
                // The proof's length fits in u16: decoding refuses anything longer.
                buf.put_u16(proof.len().min(usize::from(u16::MAX)) as u16);
                buf.put_slice(proof);
            }
            Call::CreateRewardPool(create) => create.write(buf),
            Call::SubmitValuation { pool, valuation }
            | Call::ChallengeValuation { pool, valuation } => {
                pool.write(buf);
                valuation.write(buf);
            }
            Call::VoteValuation {
                pool,
                for_challenger,
            } => {
                pool.write(buf);
                for_challenger.write(buf);
            }
            Call::ClaimRewards { pool } => pool.write(buf),
            Call::RegisterProvider {
                capacity_bytes,
                price_per_gib_epoch,
                endpoint,
            } => {
                capacity_bytes.write(buf);
                price_per_gib_epoch.write(buf);
                write_str(endpoint, buf);
            }
            Call::StoreAsset { asset, layout } => {
                asset.write(buf);
                layout.write(buf);
            }
            Call::CreateDeal {
                asset,
                shard_index,
                provider,
                epochs,
            } => {
                asset.write(buf);
                shard_index.write(buf);
                provider.write(buf);
                epochs.write(buf);
            }
            Call::AcceptDeal { deal } | Call::CancelDeal { deal } | Call::ClaimRepair { deal } => {
                deal.write(buf)
            }
            Call::SubmitProof { deal, epoch, proof } => {
                deal.write(buf);
                epoch.write(buf);
                // The proof's length fits in u16: decoding refuses anything longer.
                buf.put_u16(proof.len().min(usize::from(u16::MAX)) as u16);
                buf.put_slice(proof);
            }
            Call::OpenSession(open) => open.write(buf),
            Call::JoinSession { session, asset } => {
                session.write(buf);
                asset.write(buf);
            }
            Call::CommitRound {
                session,
                round,
                aggregate_root,
                participants,
            } => {
                session.write(buf);
                round.write(buf);
                aggregate_root.write(buf);
                write_u8_len(participants.len(), buf);
                for asset in participants {
                    asset.write(buf);
                }
            }
            Call::FinalizeSession(finalize) => finalize.write(buf),
        }
    }
}

impl EncodeSize for Call {
    fn encode_size(&self) -> usize {
        1 + match self {
            Call::Transfer { .. } => 32 + 16,
            Call::Bond { .. } | Call::Unbond { .. } => 1 + 16,
            Call::RegisterAsset(register) => register.encode_size(),
            Call::UpdateTerms { terms, .. } => 32 + terms.encode_size(),
            Call::BuyLicense { .. } => 32,
            Call::PayRevenue { .. } => 32 + 16,
            Call::ReportMisbehaviour { proof, .. } => 32 + 8 + 2 + proof.len(),
            Call::CreateRewardPool(create) => create.encode_size(),
            Call::SubmitValuation { valuation, .. }
            | Call::ChallengeValuation { valuation, .. } => 8 + valuation.encode_size(),
            Call::VoteValuation { .. } => 8 + 1,
            Call::ClaimRewards { .. } => 8,
            Call::RegisterProvider { endpoint, .. } => 8 + 16 + 1 + endpoint.len(),
            Call::StoreAsset { layout, .. } => 32 + layout.encode_size(),
            Call::CreateDeal { .. } => 32 + 1 + 32 + 4,
            Call::AcceptDeal { .. } | Call::CancelDeal { .. } | Call::ClaimRepair { .. } => 8,
            Call::SubmitProof { proof, .. } => 8 + 8 + 2 + proof.len(),
            Call::OpenSession(open) => open.encode_size(),
            Call::JoinSession { .. } => 8 + 32,
            Call::CommitRound { participants, .. } => 8 + 4 + 32 + 1 + participants.len() * 32,
            Call::FinalizeSession(finalize) => finalize.encode_size(),
        }
    }
}

impl Read for Call {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tag = u8::read_cfg(buf, &())?;
        Ok(match tag {
            Self::TAG_TRANSFER => Call::Transfer {
                to: Address::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            },
            Self::TAG_BOND => Call::Bond {
                role: Role::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            },
            Self::TAG_UNBOND => Call::Unbond {
                role: Role::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            },
            Self::TAG_REGISTER_ASSET => Call::RegisterAsset(RegisterAsset::read_cfg(buf, &())?),
            Self::TAG_UPDATE_TERMS => Call::UpdateTerms {
                asset: Hash32::read_cfg(buf, &())?,
                terms: Terms::read_cfg(buf, &())?,
            },
            Self::TAG_BUY_LICENSE => Call::BuyLicense {
                asset: Hash32::read_cfg(buf, &())?,
            },
            Self::TAG_PAY_REVENUE => Call::PayRevenue {
                asset: Hash32::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            },
            Self::TAG_REPORT_MISBEHAVIOUR => {
                let validator = Address::read_cfg(buf, &())?;
                let view = u64::read_cfg(buf, &())?;
                let length = usize::from(u16::read_cfg(buf, &())?);
                if length == 0 || length > crate::limits::EVIDENCE_PROOF_BYTES_MAX {
                    return Err(CodecError::Invalid(
                        "ReportMisbehaviour.proof",
                        "empty or longer than EVIDENCE_PROOF_BYTES_MAX",
                    ));
                }
                if buf.remaining() < length {
                    return Err(CodecError::EndOfBuffer);
                }
                let mut proof = vec![0u8; length];
                buf.copy_to_slice(&mut proof);
                Call::ReportMisbehaviour {
                    validator,
                    view,
                    proof,
                }
            }
            Self::TAG_CREATE_REWARD_POOL => {
                Call::CreateRewardPool(CreateRewardPool::read_cfg(buf, &())?)
            }
            Self::TAG_SUBMIT_VALUATION => Call::SubmitValuation {
                pool: u64::read_cfg(buf, &())?,
                valuation: ValuationClaim::read_cfg(buf, &())?,
            },
            Self::TAG_CHALLENGE_VALUATION => Call::ChallengeValuation {
                pool: u64::read_cfg(buf, &())?,
                valuation: ValuationClaim::read_cfg(buf, &())?,
            },
            Self::TAG_VOTE_VALUATION => Call::VoteValuation {
                pool: u64::read_cfg(buf, &())?,
                for_challenger: bool::read_cfg(buf, &())?,
            },
            Self::TAG_CLAIM_REWARDS => Call::ClaimRewards {
                pool: u64::read_cfg(buf, &())?,
            },
            Self::TAG_REGISTER_PROVIDER => Call::RegisterProvider {
                capacity_bytes: u64::read_cfg(buf, &())?,
                price_per_gib_epoch: u128::read_cfg(buf, &())?,
                endpoint: read_str(buf, ENDPOINT_BYTES_MAX, "RegisterProvider.endpoint")?,
            },
            Self::TAG_STORE_ASSET => Call::StoreAsset {
                asset: Hash32::read_cfg(buf, &())?,
                layout: StorageLayout::read_cfg(buf, &())?,
            },
            Self::TAG_CREATE_DEAL => Call::CreateDeal {
                asset: Hash32::read_cfg(buf, &())?,
                shard_index: u8::read_cfg(buf, &())?,
                provider: Address::read_cfg(buf, &())?,
                epochs: u32::read_cfg(buf, &())?,
            },
            Self::TAG_ACCEPT_DEAL => Call::AcceptDeal {
                deal: u64::read_cfg(buf, &())?,
            },
            Self::TAG_CANCEL_DEAL => Call::CancelDeal {
                deal: u64::read_cfg(buf, &())?,
            },
            Self::TAG_CLAIM_REPAIR => Call::ClaimRepair {
                deal: u64::read_cfg(buf, &())?,
            },
            Self::TAG_SUBMIT_PROOF => {
                let deal = u64::read_cfg(buf, &())?;
                let epoch = u64::read_cfg(buf, &())?;
                let length = usize::from(u16::read_cfg(buf, &())?);
                if length == 0 || length > crate::limits::STORAGE_PROOF_BYTES_MAX {
                    return Err(CodecError::Invalid(
                        "SubmitProof.proof",
                        "empty or longer than STORAGE_PROOF_BYTES_MAX",
                    ));
                }
                if buf.remaining() < length {
                    return Err(CodecError::EndOfBuffer);
                }
                let mut proof = vec![0u8; length];
                buf.copy_to_slice(&mut proof);
                Call::SubmitProof { deal, epoch, proof }
            }
            Self::TAG_OPEN_SESSION => Call::OpenSession(OpenSession::read_cfg(buf, &())?),
            Self::TAG_JOIN_SESSION => Call::JoinSession {
                session: u64::read_cfg(buf, &())?,
                asset: Hash32::read_cfg(buf, &())?,
            },
            Self::TAG_COMMIT_ROUND => {
                let session = u64::read_cfg(buf, &())?;
                let round = u32::read_cfg(buf, &())?;
                let aggregate_root = Hash32::read_cfg(buf, &())?;
                let count =
                    read_u8_len(buf, TRAINING_PARTICIPANTS_MAX, "CommitRound.participants")?;
                let mut participants = Vec::with_capacity(count);
                for _ in 0..count {
                    participants.push(Hash32::read_cfg(buf, &())?);
                }
                Call::CommitRound {
                    session,
                    round,
                    aggregate_root,
                    participants,
                }
            }
            Self::TAG_FINALIZE_SESSION => {
                Call::FinalizeSession(FinalizeSession::read_cfg(buf, &())?)
            }
            _ => return Err(CodecError::InvalidEnum(tag)),
        })
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is for (replay protection across chains).
    pub chain_id: String,
    /// The signer, who pays the fee.
    pub sender: Address,
    /// The sender's nonce: its count of earlier included transactions.
    pub nonce: u64,
    /// Fee paid to the block proposer, at least the chain's minimum fee.
    #[serde(with = "amount_string")]
    pub fee: Amount,
    /// What the transaction does.
    pub call: Call,
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(TRANSACTION_VERSION);
        write_str(&self.chain_id, buf);
        self.sender.write(buf);
        self.nonce.write(buf);
        self.fee.write(buf);
        self.call.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        1 + 1 + self.chain_id.len() + 32 + 8 + 16 + self.call.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read_cfg(buf, &())?;
        if version != TRANSACTION_VERSION {
            return Err(CodecError::Invalid("Transaction", "unknown version"));
        }
        Ok(Transaction {
            chain_id: read_str(buf, CHAIN_ID_BYTES_MAX, "Transaction.chain_id")?,
            sender: Address::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            fee: u128::read_cfg(buf, &())?,
            call: Call::read_cfg(buf, &())?,
        })
    }
}

impl Transaction {
    /// The bytes the sender signs: the transaction's canonical encoding.
    pub fn signing_payload(&self) -> Vec<u8> {
        self.encode().to_vec()
    }
}

/// A transaction with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The transaction.
    pub transaction: Transaction,
    /// ed25519 signature by `transaction.sender` over `transaction.signing_payload()` under
    /// [`TRANSACTION_NAMESPACE`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// Signs `transaction` with `key`. The caller is responsible for `transaction.sender` being `key`'s
    /// address; otherwise the signature will not verify.
    pub fn sign(key: &PrivateKey, transaction: Transaction) -> Self {
        let signature = key.sign(TRANSACTION_NAMESPACE, &transaction.signing_payload());
        SignedTransaction {
            transaction,
            signature,
        }
    }

    /// Checks the signature against the sender's key (one verification, no batching).
    pub fn verify_signature(&self) -> bool {
        match self.transaction.sender.public_key() {
            Ok(public_key) => public_key.verify(
                TRANSACTION_NAMESPACE,
                &self.transaction.signing_payload(),
                &self.signature,
            ),
            Err(_) => false,
        }
    }

    /// BLAKE3 of the signed canonical encoding.
    pub fn hash(&self) -> TxHash {
        Hash32::blake3(&self.encode())
    }

    /// The canonical encoding as a `Vec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// Decodes a signed transaction, rejecting encodings above [`TRANSACTION_BYTES_MAX`], non-canonical
    /// forms and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        use commonware_codec::DecodeExt;
        if bytes.len() > TRANSACTION_BYTES_MAX {
            return Err(CodecError::Invalid(
                "SignedTransaction",
                "above TRANSACTION_BYTES_MAX",
            ));
        }
        Self::decode(bytes::Bytes::copy_from_slice(bytes))
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.transaction.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.transaction.encode_size() + Signature::SIZE
    }
}

impl Read for SignedTransaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let transaction = Transaction::read_cfg(buf, &())?;
        let signature = Signature::read_cfg(buf, &())?;
        Ok(SignedTransaction {
            transaction,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        limits::{
            COMMIT_ROUND_CALL_BYTES_MAX, FINALIZE_SESSION_CALL_BYTES_MAX,
            OPEN_SESSION_CALL_BYTES_MAX, REGISTER_ASSET_CALL_BYTES_MAX,
            TRAINING_ELIGIBLE_ASSETS_MAX, TRAINING_TASK_BYTES_MAX, TRANSACTION_BYTES_WORST_CASE,
            TRANSACTION_HEADER_BYTES_MAX,
        },
        training::{Aggregation, DifferentialPrivacy},
    };
    use commonware_cryptography::Signer;
    use proptest::prelude::*;

    fn address() -> impl Strategy<Value = Address> {
        any::<[u8; 32]>().prop_map(Address)
    }

    fn hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    fn terms() -> impl Strategy<Value = Terms> {
        (
            any::<[bool; 4]>(),
            any::<u16>(),
            any::<u128>(),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
        )
            .prop_map(
                |(flags, royalty_bps, price, expiry_height, license_cap)| Terms {
                    commercial_use: flags[0],
                    ai_training: flags[1],
                    derivatives: flags[2],
                    attribution_required: flags[3],
                    royalty_bps,
                    price,
                    expiry_height,
                    license_cap,
                },
            )
    }

    fn role() -> impl Strategy<Value = Role> {
        (0u8..4).prop_map(|tag| Role::from_tag(tag).unwrap())
    }

    fn aggregation() -> impl Strategy<Value = Aggregation> {
        prop_oneof![
            Just(Aggregation::FedAvg),
            Just(Aggregation::Median),
            any::<u16>().prop_map(|trim_bps| Aggregation::TrimmedMean { trim_bps }),
            any::<u16>().prop_map(|byzantine| Aggregation::Krum { byzantine }),
            (any::<u16>(), any::<u16>()).prop_map(|(byzantine, selected)| {
                Aggregation::MultiKrum {
                    byzantine,
                    selected,
                }
            }),
        ]
    }

    fn open_session() -> impl Strategy<Value = OpenSession> {
        (
            (
                hash(),
                "\\PC{0,30}",
                proptest::collection::vec(hash(), 0..=TRAINING_ELIGIBLE_ASSETS_MAX),
                any::<u128>(),
                any::<u128>(),
                any::<u64>(),
                any::<u32>(),
            ),
            (
                proptest::option::of((any::<u32>(), any::<u32>(), any::<u64>())),
                aggregation(),
                any::<bool>(),
                address(),
                "[a-z0-9.:]{0,60}",
                any::<u16>(),
                any::<u16>(),
            ),
        )
            .prop_map(
                |(
                    (
                        model_spec_root,
                        task,
                        eligible_assets,
                        reward,
                        evaluator_stake,
                        window,
                        rounds,
                    ),
                    (privacy, aggregation, secure_aggregation, aggregator, endpoint, min, max),
                )| OpenSession {
                    model_spec_root,
                    task,
                    eligible_assets,
                    reward,
                    evaluator_stake,
                    challenge_window_blocks: window,
                    rounds,
                    privacy: privacy.map(|(noise, clip, delta)| DifferentialPrivacy {
                        noise_multiplier_milli: noise,
                        clip_norm_milli: clip,
                        delta_atto: delta,
                    }),
                    aggregation,
                    secure_aggregation,
                    aggregator,
                    endpoint,
                    participants_min: min,
                    participants_max: max,
                },
            )
    }

    fn finalize_session() -> impl Strategy<Value = FinalizeSession> {
        (
            (any::<u64>(), hash(), "\\PC{0,30}", any::<u64>()),
            (
                any::<Option<u64>>(),
                any::<u64>(),
                proptest::collection::vec((hash(), any::<u16>()), 0..=TRAINING_PARTICIPANTS_MAX),
                proptest::option::of(hash()),
                terms(),
            ),
        )
            .prop_map(
                |(
                    (session, model_root, model_name, byte_size),
                    (epsilon_milli, delta_atto, shares, report_root, terms),
                )| FinalizeSession {
                    session,
                    model_root,
                    model_name,
                    byte_size,
                    epsilon_milli,
                    delta_atto,
                    shares,
                    report_root,
                    terms,
                },
            )
    }

    fn training_call() -> impl Strategy<Value = Call> {
        prop_oneof![
            open_session().prop_map(Call::OpenSession),
            (any::<u64>(), hash())
                .prop_map(|(session, asset)| Call::JoinSession { session, asset }),
            (
                any::<u64>(),
                any::<u32>(),
                hash(),
                proptest::collection::vec(hash(), 0..=TRAINING_PARTICIPANTS_MAX)
            )
                .prop_map(|(session, round, aggregate_root, participants)| {
                    Call::CommitRound {
                        session,
                        round,
                        aggregate_root,
                        participants,
                    }
                }),
            finalize_session().prop_map(Call::FinalizeSession),
        ]
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            training_call(),
            (address(), any::<u128>()).prop_map(|(to, amount)| Call::Transfer { to, amount }),
            (role(), any::<u128>()).prop_map(|(role, amount)| Call::Bond { role, amount }),
            (role(), any::<u128>()).prop_map(|(role, amount)| Call::Unbond { role, amount }),
            (
                hash(),
                any::<bool>(),
                "\\PC{0,30}",
                any::<u64>(),
                proptest::collection::vec((address(), any::<u16>()), 0..=ASSET_OWNERS_MAX),
                proptest::collection::vec((hash(), any::<u64>()), 0..=ASSET_PARENTS_MAX),
                terms()
            )
                .prop_map(
                    |(content_root, model, name, byte_size, owners, parents, terms)| {
                        Call::RegisterAsset(RegisterAsset {
                            content_root,
                            kind: if model {
                                AssetKind::Model
                            } else {
                                AssetKind::Dataset
                            },
                            name,
                            byte_size,
                            owners,
                            parents,
                            terms,
                        })
                    }
                ),
            (hash(), terms()).prop_map(|(asset, terms)| Call::UpdateTerms { asset, terms }),
            hash().prop_map(|asset| Call::BuyLicense { asset }),
            (hash(), any::<u128>()).prop_map(|(asset, amount)| Call::PayRevenue { asset, amount }),
        ]
    }

    fn transaction() -> impl Strategy<Value = Transaction> {
        (
            "[a-z0-9-]{1,64}",
            address(),
            any::<u64>(),
            any::<u128>(),
            call(),
        )
            .prop_map(|(chain_id, sender, nonce, fee, call)| Transaction {
                chain_id,
                sender,
                nonce,
                fee,
                call,
            })
    }

    fn signature() -> Signature {
        PrivateKey::from_seed(1).sign(TRANSACTION_NAMESPACE, b"x")
    }

    proptest! {
        #[test]
        fn codec_roundtrip(transaction in transaction()) {
            let signed = SignedTransaction { transaction, signature: signature() };
            let bytes = signed.to_bytes();
            prop_assert_eq!(bytes.len(), signed.encode_size());
            prop_assert!(bytes.len() <= TRANSACTION_BYTES_MAX);
            let decoded = SignedTransaction::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&decoded, &signed);
            prop_assert_eq!(decoded.to_bytes(), bytes.clone());
            // Trailing bytes are refused; so is every truncation.
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(SignedTransaction::from_bytes(&longer).is_err());
            prop_assert!(SignedTransaction::from_bytes(&bytes[..bytes.len() - 1]).is_err());
            // JSON round trip of the transaction.
            let json = serde_json::to_string(&signed.transaction).unwrap();
            prop_assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), signed.transaction);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(decoded) = SignedTransaction::from_bytes(&bytes) {
                prop_assert_eq!(decoded.to_bytes(), bytes);
            }
        }

        #[test]
        fn mutated_encodings_never_panic(transaction in transaction(), position in any::<usize>(), value in any::<u8>()) {
            let mut bytes = SignedTransaction { transaction, signature: signature() }.to_bytes();
            let index = position % bytes.len();
            bytes[index] = value;
            if let Ok(decoded) = SignedTransaction::from_bytes(&bytes) {
                prop_assert_eq!(decoded.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn sign_verify_and_hash() {
        let key = PrivateKey::from_seed(3);
        let sender = Address::from_public_key(&key.public_key());
        let transaction = Transaction {
            chain_id: "c".into(),
            sender,
            nonce: 0,
            fee: 1,
            call: Call::BuyLicense {
                asset: Hash32::ZERO,
            },
        };
        let signed = SignedTransaction::sign(&key, transaction);
        assert!(signed.verify_signature());
        assert_eq!(signed.hash(), Hash32::blake3(&signed.to_bytes()));
        let mut tampered = signed.clone();
        tampered.transaction.nonce = 1;
        assert!(!tampered.verify_signature());
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let transaction = Transaction {
            chain_id: "c".into(),
            sender: Address([1; 32]),
            nonce: 0,
            fee: 1,
            call: Call::UpdateTerms {
                asset: Hash32::ZERO,
                terms: Terms::default(),
            },
        };
        let bytes = SignedTransaction {
            transaction,
            signature: signature(),
        }
        .to_bytes();
        // Offsets: version 0, chain len 1, chain 2, sender 3..35, nonce 35..43, fee 43..59, tag 59,
        // asset 60..92, first bool 92.
        let mut bad_bool = bytes.clone();
        bad_bool[92] = 2;
        assert!(SignedTransaction::from_bytes(&bad_bool).is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[59] = 0x7f;
        assert!(SignedTransaction::from_bytes(&bad_tag).is_err());
        let mut bad_version = bytes.clone();
        bad_version[0] = 2;
        assert!(SignedTransaction::from_bytes(&bad_version).is_err());
        let mut long_chain = bytes;
        long_chain[1] = (CHAIN_ID_BYTES_MAX + 1) as u8;
        assert!(SignedTransaction::from_bytes(&long_chain).is_err());
    }

    /// A signed transaction of `call` with a one-byte chain id: the call's tag is at offset 59.
    fn encoded(call: Call) -> Vec<u8> {
        SignedTransaction {
            transaction: Transaction {
                chain_id: "c".into(),
                sender: Address([1; 32]),
                nonce: 0,
                fee: 1,
                call,
            },
            signature: signature(),
        }
        .to_bytes()
    }

    /// Offset of the first byte after the call's tag.
    const CALL_FIELDS: usize = 60;

    fn sample_open() -> OpenSession {
        OpenSession {
            model_spec_root: Hash32([7; 32]),
            task: "task".into(),
            eligible_assets: vec![Hash32([1; 32]), Hash32([2; 32])],
            reward: 100,
            evaluator_stake: 5,
            challenge_window_blocks: 3,
            rounds: 4,
            privacy: Some(DifferentialPrivacy {
                noise_multiplier_milli: 1_100,
                clip_norm_milli: 1_000,
                delta_atto: 10_000_000_000_000,
            }),
            aggregation: Aggregation::TrimmedMean { trim_bps: 1_000 },
            secure_aggregation: true,
            aggregator: Address([2; 32]),
            endpoint: "127.0.0.1:7400".into(),
            participants_min: 2,
            participants_max: 3,
        }
    }

    fn sample_finalize() -> FinalizeSession {
        FinalizeSession {
            session: 1,
            model_root: Hash32([5; 32]),
            model_name: "model".into(),
            byte_size: 10,
            epsilon_milli: Some(2_500),
            delta_atto: 10_000_000_000_000,
            shares: vec![(Hash32([1; 32]), 10_000)],
            report_root: Some(Hash32([9; 32])),
            terms: Terms::default(),
        }
    }

    fn refused(bytes: &[u8], offset: usize, value: u8) -> bool {
        let mut bad = bytes.to_vec();
        bad[offset] = value;
        SignedTransaction::from_bytes(&bad).is_err()
    }

    #[test]
    fn training_calls_round_trip_and_refuse_bad_lengths() {
        let join = Call::JoinSession {
            session: 3,
            asset: Hash32([4; 32]),
        };
        let commit = Call::CommitRound {
            session: 3,
            round: 1,
            aggregate_root: Hash32([6; 32]),
            participants: vec![Hash32([1; 32]), Hash32([2; 32])],
        };
        for call in [
            Call::OpenSession(sample_open()),
            join,
            commit.clone(),
            Call::FinalizeSession(sample_finalize()),
        ] {
            let bytes = encoded(call.clone());
            let decoded = SignedTransaction::from_bytes(&bytes).unwrap();
            assert_eq!(decoded.transaction.call, call);
            assert_eq!(decoded.to_bytes(), bytes);
            assert_eq!(bytes[CALL_FIELDS - 1], call.tag());
            // Every truncation is refused.
            for end in 0..bytes.len() {
                assert!(SignedTransaction::from_bytes(&bytes[..end]).is_err());
            }
        }

        // OpenSession: spec root 32, task length, task, asset count, assets, 16 + 16 + 8 + 4,
        // privacy tag, privacy 16, aggregation tag.
        let open = encoded(Call::OpenSession(sample_open()));
        let task_len = CALL_FIELDS + 32;
        assert_eq!(usize::from(open[task_len]), 4);
        assert!(refused(
            &open,
            task_len,
            (TRAINING_TASK_BYTES_MAX + 1) as u8
        ));
        let asset_count = task_len + 1 + 4;
        assert_eq!(open[asset_count], 2);
        assert!(refused(
            &open,
            asset_count,
            (TRAINING_ELIGIBLE_ASSETS_MAX + 1) as u8
        ));
        let privacy_tag = asset_count + 1 + 2 * 32 + 16 + 16 + 8 + 4;
        assert_eq!(open[privacy_tag], 1);
        assert!(refused(&open, privacy_tag, 2));
        let aggregation_tag = privacy_tag + 1 + DifferentialPrivacy::SIZE;
        assert_eq!(open[aggregation_tag], 2);
        assert!(refused(&open, aggregation_tag, 5));
        let secure_aggregation = aggregation_tag + 3;
        assert_eq!(open[secure_aggregation], 1);
        assert!(refused(&open, secure_aggregation, 2));
        let endpoint_len = secure_aggregation + 1 + 32;
        assert_eq!(usize::from(open[endpoint_len]), "127.0.0.1:7400".len());
        assert!(refused(&open, endpoint_len, (ENDPOINT_BYTES_MAX + 1) as u8));

        // CommitRound: session 8, round 4, aggregate root 32, participant count.
        let commit = encoded(commit);
        let participant_count = CALL_FIELDS + 8 + 4 + 32;
        assert_eq!(commit[participant_count], 2);
        assert!(refused(
            &commit,
            participant_count,
            (TRAINING_PARTICIPANTS_MAX + 1) as u8
        ));
        assert!(refused(&commit, participant_count, 3), "past the end");

        // FinalizeSession: session 8, model root 32, name length, name, byte size 8, ε option,
        // δ 8, share count, shares, report root option.
        let finalize = encoded(Call::FinalizeSession(sample_finalize()));
        let name_len = CALL_FIELDS + 8 + 32;
        assert_eq!(usize::from(finalize[name_len]), 5);
        assert!(refused(
            &finalize,
            name_len,
            (ASSET_NAME_BYTES_MAX + 1) as u8
        ));
        let epsilon_tag = name_len + 1 + 5 + 8;
        assert_eq!(finalize[epsilon_tag], 1);
        assert!(refused(&finalize, epsilon_tag, 2));
        let share_count = epsilon_tag + 9 + 8;
        assert_eq!(finalize[share_count], 1);
        assert!(refused(
            &finalize,
            share_count,
            (TRAINING_PARTICIPANTS_MAX + 1) as u8
        ));
        let report_tag = share_count + 1 + 34;
        assert_eq!(finalize[report_tag], 1);
        assert!(refused(&finalize, report_tag, 2));
    }

    /// The largest call of each kind has exactly the size `limits` budgets for it, and the
    /// largest transaction fits.
    #[test]
    fn worst_case_sizes_match_the_limits() {
        let full_terms = Terms {
            expiry_height: Some(1),
            license_cap: Some(1),
            ..Terms::default()
        };
        let open = Call::OpenSession(OpenSession {
            task: "t".repeat(TRAINING_TASK_BYTES_MAX),
            eligible_assets: vec![Hash32([1; 32]); TRAINING_ELIGIBLE_ASSETS_MAX],
            aggregation: Aggregation::MultiKrum {
                byzantine: 1,
                selected: 2,
            },
            endpoint: "e".repeat(ENDPOINT_BYTES_MAX),
            ..sample_open()
        });
        let commit = Call::CommitRound {
            session: 1,
            round: 1,
            aggregate_root: Hash32::ZERO,
            participants: vec![Hash32([1; 32]); TRAINING_PARTICIPANTS_MAX],
        };
        let finalize = Call::FinalizeSession(FinalizeSession {
            model_name: "m".repeat(ASSET_NAME_BYTES_MAX),
            shares: vec![(Hash32([1; 32]), 1); TRAINING_PARTICIPANTS_MAX],
            terms: full_terms.clone(),
            ..sample_finalize()
        });
        let register = Call::RegisterAsset(RegisterAsset {
            content_root: Hash32::ZERO,
            kind: AssetKind::Model,
            name: "n".repeat(ASSET_NAME_BYTES_MAX),
            byte_size: 1,
            owners: vec![(Address([1; 32]), 1); ASSET_OWNERS_MAX],
            parents: vec![(Hash32::ZERO, 1); ASSET_PARENTS_MAX],
            terms: full_terms,
        });
        for (call, budget) in [
            (open, OPEN_SESSION_CALL_BYTES_MAX),
            (commit, COMMIT_ROUND_CALL_BYTES_MAX),
            (finalize, FINALIZE_SESSION_CALL_BYTES_MAX),
            (register, REGISTER_ASSET_CALL_BYTES_MAX),
        ] {
            assert_eq!(call.encode_size(), budget, "{}", call.name());
            let signed = SignedTransaction {
                transaction: Transaction {
                    chain_id: "c".repeat(CHAIN_ID_BYTES_MAX),
                    sender: Address([1; 32]),
                    nonce: 0,
                    fee: 1,
                    call,
                },
                signature: signature(),
            };
            let bytes = signed.to_bytes();
            assert_eq!(bytes.len(), TRANSACTION_HEADER_BYTES_MAX + budget + 64);
            assert!(bytes.len() <= TRANSACTION_BYTES_WORST_CASE);
            assert_eq!(SignedTransaction::from_bytes(&bytes).unwrap(), signed);
        }
    }
}
