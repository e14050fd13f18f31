//! The state: typed ordered maps (persistent, so a clone is O(1)) and the incrementally-updated root.
//!
//! # The root
//! The state root commits to every entry of every map. Each entry is one *element*
//! `table tag | key bytes | value bytes` (keys are fixed-width per table, so the split is unambiguous), and
//! the root is BLAKE3(`ROOT_DOMAIN` | LtHash checksum) of the multiset of all elements. LtHash is additive,
//! so a write is "subtract the old element, add the new one".
//!
//! Every write goes through [`State::record`], which keeps, per key touched since the last flush, the
//! element as it was at the flush and as it is now. [`State::flush`] then does one subtract and one add per
//! touched key (nothing for a key written back to its old value). That gives exactly the root the per-write
//! form would give, while a block that touches the proposer's account a thousand times hashes it twice.
//! The pending set lives in the same persistent map type, so rolling a transaction back (restoring a clone)
//! rolls its root updates back too. Public entry points of the ledger flush before they return, so
//! [`State::root`] is always current outside execution.

use crate::error::ExecutionError;
use commonware_codec::Write;
use commonware_cryptography::lthash::LtHash;
use imbl::OrdMap;
use tributary_types::{
    Address, Amount, AssetId, AssetKind, DealId, Event, Hash32, LicenseTokenId, OpenSession,
    Params, RewardPoolId, Role, StateRoot, StorageLayout, Terms, TrainingSessionId, ValuationClaim,
};

/// Domain tag hashed in front of the LtHash checksum.
pub(crate) const ROOT_DOMAIN: &[u8] = b"tributary-state-root-v1";

/// Table tags: the first byte of every element.
mod table {
    pub const META: u8 = 0x00;
    pub const ACCOUNT: u8 = 0x01;
    pub const BOND: u8 = 0x11;
    pub const UNBONDING: u8 = 0x12;
    pub const ASSET: u8 = 0x21;
    pub const CHILD: u8 = 0x22;
    pub const LICENSE: u8 = 0x31;
    pub const HOLDER: u8 = 0x32;
    pub const MISBEHAVIOUR: u8 = 0x51;
    pub const REWARD_POOL: u8 = 0x61;
    pub const OPEN_CHALLENGE: u8 = 0x62;
    pub const PROVIDER: u8 = 0x71;
    pub const LAYOUT: u8 = 0x72;
    pub const DEAL: u8 = 0x73;
    pub const LIVE_DEAL: u8 = 0x74;
    pub const TRAINING_SESSION: u8 = 0x81;
    pub const TRAINING_ROUND: u8 = 0x82;
    pub const SESSION_LICENSE: u8 = 0x83;
    pub const SESSION_POOL: u8 = 0x84;
    pub const BILL_OF_MATERIALS: u8 = 0x85;
}

/// Keys of the meta table.
mod meta {
    // 0x01 was the height; it is no longer part of the root (see `State::set_height`).
    pub const PARAMS: u8 = 0x02;
    pub const NEXT_LICENSE_ID: u8 = 0x03;
    pub const NEXT_REWARD_POOL_ID: u8 = 0x04;
    pub const NEXT_DEAL_ID: u8 = 0x05;
}

/// An account's balance and nonce. Absent from the map when both are zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Spendable balance.
    pub balance: Amount,
    /// Count of included transactions.
    pub nonce: u64,
}

/// A parent link of an asset, with the royalty rate from the license the child consumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentLink {
    /// Parent asset.
    pub asset: AssetId,
    /// Rate owed to the parent, in basis points (snapshot of the consumed token's terms).
    pub royalty_bps: u16,
    /// The consumed license token.
    pub license_token: LicenseTokenId,
}

/// A registered asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Id (content root).
    pub id: AssetId,
    /// Kind.
    pub kind: AssetKind,
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub byte_size: u64,
    /// Owners with shares in bps, sorted by address, unique, summing to 10000.
    pub owners: Vec<(Address, u16)>,
    /// Parents in registration order.
    pub parents: Vec<ParentLink>,
    /// Terms for new licenses.
    pub terms: Terms,
    /// Registrant.
    pub registrant: Address,
    /// Height of registration.
    pub registered_height: u64,
    /// Licenses minted so far.
    pub licenses_minted: u64,
}

/// A minted license token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseToken {
    /// Id.
    pub id: LicenseTokenId,
    /// Licensed asset.
    pub asset: AssetId,
    /// Terms at mint time.
    pub terms: Terms,
    /// Holder.
    pub holder: Address,
    /// Height minted.
    pub minted_height: u64,
    /// The derivative it was consumed for, if any.
    pub consumed_by: Option<AssetId>,
}

/// A valuation a pool's payout follows unless a challenge voids it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedValuation {
    /// Whose valuation it is; their stake (the pool's `evaluator_stake`) is held by the pool.
    pub evaluator: Address,
    /// The report commitment and shares.
    pub claim: ValuationClaim,
    /// Height it was posted (or replaced a voided one).
    pub submitted_height: u64,
    /// Last height at which it can be challenged.
    pub challenge_deadline_height: u64,
}

/// A challenge being decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenChallenge {
    /// The challenger; their stake is held by the pool.
    pub challenger: Address,
    /// The challenger's report commitment and shares.
    pub claim: ValuationClaim,
    /// Height it was filed.
    pub filed_height: u64,
    /// The committee, ascending; empty until drawn (at the first block after `filed_height`).
    pub committee: Vec<Address>,
    /// Last height at which the committee can vote (0 until drawn).
    pub vote_deadline_height: u64,
    /// Votes cast, in order: (member, for the challenger).
    pub votes: Vec<(Address, bool)>,
}

/// A reward pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardPool {
    /// Id.
    pub id: RewardPoolId,
    /// Who funded it.
    pub funder: Address,
    /// Task description.
    pub task: String,
    /// The test set's root.
    pub test_set_root: Hash32,
    /// Assets it pays, ascending.
    pub assets: Vec<AssetId>,
    /// The reward held.
    pub amount: Amount,
    /// Stake an evaluator and a challenger put up.
    pub evaluator_stake: Amount,
    /// Challenge window, in blocks.
    pub challenge_window_blocks: u64,
    /// Height created.
    pub created_height: u64,
    /// The standing valuation.
    pub valuation: Option<PostedValuation>,
    /// The challenge being decided.
    pub challenge: Option<OpenChallenge>,
    /// Height it was paid out.
    pub paid_height: Option<u64>,
}

impl RewardPool {
    /// What the pool holds: the reward until paid, the standing valuation's stake, and an open
    /// challenge's stake.
    pub fn escrow(&self) -> Amount {
        let mut held: Amount = 0;
        if self.paid_height.is_none() {
            held = held.saturating_add(self.amount);
            if self.valuation.is_some() {
                held = held.saturating_add(self.evaluator_stake);
            }
        }
        if self.challenge.is_some() {
            held = held.saturating_add(self.evaluator_stake);
        }
        held
    }
}

/// A registered storage provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    /// Bytes offered.
    pub capacity_bytes: u64,
    /// Bytes under accepted deals.
    pub committed_bytes: u64,
    /// Price per GiB per epoch.
    pub price_per_gib_epoch: Amount,
    /// Where clients reach it.
    pub endpoint: String,
}

/// Where a storage deal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealStatus {
    /// Proposed by the client, not yet accepted by the provider.
    Proposed,
    /// Accepted: challenged every epoch until it ends.
    Active,
    /// A challenge went unanswered: waiting for a provider to repair it.
    Failed,
    /// Ended (completed or cancelled); kept for the record.
    Closed,
}

impl DealStatus {
    fn tag(self) -> u8 {
        match self {
            DealStatus::Proposed => 0,
            DealStatus::Active => 1,
            DealStatus::Failed => 2,
            DealStatus::Closed => 3,
        }
    }

    /// The status's name in views.
    pub fn name(self) -> &'static str {
        match self {
            DealStatus::Proposed => "proposed",
            DealStatus::Active => "active",
            DealStatus::Failed => "failed",
            DealStatus::Closed => "closed",
        }
    }
}

/// A storage deal: one shard of one asset with one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deal {
    /// Id.
    pub id: DealId,
    /// The asset.
    pub asset: AssetId,
    /// Which shard.
    pub shard_index: u8,
    /// Who pays (an owner of the asset).
    pub client: Address,
    /// Who stores it.
    pub provider: Address,
    /// The shard's BLAKE3 root.
    pub shard_root: Hash32,
    /// The shard's size.
    pub shard_bytes: u64,
    /// Paid per proven epoch.
    pub price_per_epoch: Amount,
    /// Epochs paid for.
    pub epochs: u32,
    /// Escrow left.
    pub escrow: Amount,
    /// Repair bounty held (from the slashed provider).
    pub bounty: Amount,
    /// Status.
    pub status: DealStatus,
    /// First challenged epoch (set on acceptance).
    pub first_epoch: u64,
    /// Epochs proven and paid.
    pub epochs_paid: u32,
    /// The open challenge: (epoch, beacon seed, answered).
    pub challenge: Option<(u64, Hash32, bool)>,
    /// Height created.
    pub created_height: u64,
}

impl Deal {
    /// The first epoch after the deal's paid span.
    pub fn end_epoch(&self) -> u64 {
        self.first_epoch.saturating_add(u64::from(self.epochs))
    }
}

/// An asset that joined a training session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The asset.
    pub asset: AssetId,
    /// The owner who joined it.
    pub owner: Address,
    /// The license token minted to the trainer for it (reserved for the session).
    pub license_token: LicenseTokenId,
    /// Height it joined.
    pub joined_height: u64,
}

/// A federated-learning session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingSession {
    /// Id.
    pub id: TrainingSessionId,
    /// Who opened and funded it; owns the model.
    pub trainer: Address,
    /// The session as opened.
    pub spec: OpenSession,
    /// The reward pool holding the reward (reserved for the session's valuation).
    pub pool: RewardPoolId,
    /// Height opened.
    pub created_height: u64,
    /// Participants, strictly ascending by asset.
    pub participants: Vec<Participant>,
    /// Rounds committed (the last round's number).
    pub rounds_committed: u32,
    /// The model asset, once finalized.
    pub model: Option<AssetId>,
    /// Height finalized.
    pub finalized_height: Option<u64>,
}

impl TrainingSession {
    /// The participant entry of `asset`, if it joined.
    pub fn participant(&self, asset: &AssetId) -> Option<&Participant> {
        self.participants
            .binary_search_by(|participant| participant.asset.cmp(asset))
            .ok()
            .and_then(|index| self.participants.get(index))
    }

    /// The status's name in views.
    pub fn status(&self) -> &'static str {
        if self.model.is_some() {
            "finalized"
        } else if self.rounds_committed > 0 {
            "training"
        } else {
            "open"
        }
    }
}

/// One committed round of a training session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundCommitment {
    /// BLAKE3 of the round's aggregate.
    pub aggregate_root: Hash32,
    /// The participants aggregated, strictly ascending.
    pub participants: Vec<AssetId>,
    /// Height committed.
    pub committed_height: u64,
}

/// One input of a bill of materials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaterialInput {
    /// The input asset (its id is its content root).
    pub asset: AssetId,
    /// The owner who joined it.
    pub contributor: Address,
    /// The license token the model consumed for it.
    pub license_token: LicenseTokenId,
    /// Royalty rate on the model's parent link.
    pub royalty_bps: u16,
    /// Contribution share as posted, in basis points.
    pub share_bps: u16,
}

/// What went into a model trained in a session, kept under the model's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillOfMaterials {
    /// The model asset.
    pub model: AssetId,
    /// The session (its spec: trainer, aggregator, spec root, aggregation, privacy).
    pub session: TrainingSessionId,
    /// Inputs, strictly ascending by asset.
    pub inputs: Vec<MaterialInput>,
    /// Each committed round's aggregate root, in round order.
    pub round_roots: Vec<Hash32>,
    /// ε spent, in thousandths.
    pub epsilon_milli: Option<u64>,
    /// δ, in 10⁻¹⁸ units.
    pub delta_atto: u64,
    /// The valuation report behind the shares.
    pub report_root: Option<Hash32>,
    /// Height finalized.
    pub finalized_height: u64,
}

/// A touched key's element at the last flush and now (`None`: absent).
#[derive(Clone, Debug)]
struct Pending {
    committed: Option<Vec<u8>>,
    current: Option<Vec<u8>>,
}

/// The whole ledger state. Cloning is O(1) plus a 2 KiB copy of the LtHash.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) height: u64,
    /// The executing block's randomness (see [`tributary_types::BlockInput::beacon`]). Like the
    /// height, an input of the block rather than part of the root; what it decides is.
    pub(crate) beacon: Option<Hash32>,
    pub(crate) next_license_id: LicenseTokenId,
    pub(crate) accounts: OrdMap<Address, Account>,
    pub(crate) bonds: OrdMap<(Address, Role), Amount>,
    /// Keyed by release height first, so releasing matured ones reads a prefix.
    pub(crate) unbondings: OrdMap<(u64, Address, Role), Amount>,
    pub(crate) assets: OrdMap<AssetId, Asset>,
    /// (parent, child) pairs: the reverse of parent links, for descendant queries.
    pub(crate) children: OrdMap<(AssetId, AssetId), ()>,
    pub(crate) licenses: OrdMap<LicenseTokenId, LicenseToken>,
    /// (holder, token) pairs.
    pub(crate) holders: OrdMap<(Address, LicenseTokenId), ()>,
    /// Recorded validator misbehaviour: (validator, view) → reporter.
    pub(crate) misbehaviour: OrdMap<(Address, u64), Address>,
    pub(crate) next_reward_pool_id: RewardPoolId,
    pub(crate) providers: OrdMap<Address, Provider>,
    pub(crate) layouts: OrdMap<AssetId, StorageLayout>,
    pub(crate) next_deal_id: DealId,
    pub(crate) deals: OrdMap<DealId, Deal>,
    /// Deals the epoch step visits (active or failed).
    pub(crate) live_deals: OrdMap<DealId, ()>,
    /// Deals not closed, by provider: an index for queries (a provider's duties read it every
    /// round), derived from `deals` by [`State::set_deal`] and not part of the state root.
    pub(crate) provider_open_deals: OrdMap<(Address, DealId), ()>,
    pub(crate) reward_pools: OrdMap<RewardPoolId, RewardPool>,
    /// Pools with a challenge being decided (the work list of each block's start).
    pub(crate) open_challenges: OrdMap<RewardPoolId, ()>,
    /// Training sessions; never removed, so the next id is the last one plus one.
    pub(crate) training_sessions: OrdMap<TrainingSessionId, TrainingSession>,
    /// Committed rounds by (session, round).
    pub(crate) training_rounds: OrdMap<(TrainingSessionId, u32), RoundCommitment>,
    /// License tokens minted by joins → their session: only its `FinalizeSession` consumes them.
    pub(crate) session_licenses: OrdMap<LicenseTokenId, TrainingSessionId>,
    /// Reward pools opened by sessions → their session: only its `FinalizeSession` values them.
    pub(crate) session_pools: OrdMap<RewardPoolId, TrainingSessionId>,
    /// Bills of materials by model asset.
    pub(crate) bills_of_materials: OrdMap<AssetId, BillOfMaterials>,
    lthash: LtHash,
    pending: OrdMap<Vec<u8>, Pending>,
}

fn element(tag: u8, key: &[u8], value: Option<&[u8]>) -> Option<Vec<u8>> {
    value.map(|value| {
        let mut bytes = Vec::with_capacity(1 + key.len() + value.len());
        bytes.push(tag);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        bytes
    })
}

fn encode<T: Write>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    value.write(&mut bytes);
    bytes
}

fn account_value(account: &Account) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(&account.balance.to_be_bytes());
    bytes.extend_from_slice(&account.nonce.to_be_bytes());
    bytes
}

fn asset_value(asset: &Asset) -> Vec<u8> {
    let mut bytes = Vec::new();
    asset.kind.write(&mut bytes);
    bytes.extend_from_slice(&(asset.name.len() as u64).to_be_bytes());
    bytes.extend_from_slice(asset.name.as_bytes());
    bytes.extend_from_slice(&asset.byte_size.to_be_bytes());
    bytes.extend_from_slice(&(asset.owners.len() as u64).to_be_bytes());
    for (owner, bps) in &asset.owners {
        bytes.extend_from_slice(owner.as_bytes());
        bytes.extend_from_slice(&bps.to_be_bytes());
    }
    bytes.extend_from_slice(&(asset.parents.len() as u64).to_be_bytes());
    for link in &asset.parents {
        bytes.extend_from_slice(link.asset.as_bytes());
        bytes.extend_from_slice(&link.royalty_bps.to_be_bytes());
        bytes.extend_from_slice(&link.license_token.to_be_bytes());
    }
    asset.terms.write(&mut bytes);
    bytes.extend_from_slice(asset.registrant.as_bytes());
    bytes.extend_from_slice(&asset.registered_height.to_be_bytes());
    bytes.extend_from_slice(&asset.licenses_minted.to_be_bytes());
    bytes
}

fn license_value(token: &LicenseToken) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(token.asset.as_bytes());
    token.terms.write(&mut bytes);
    bytes.extend_from_slice(token.holder.as_bytes());
    bytes.extend_from_slice(&token.minted_height.to_be_bytes());
    match token.consumed_by {
        None => bytes.push(0),
        Some(child) => {
            bytes.push(1);
            bytes.extend_from_slice(child.as_bytes());
        }
    }
    bytes
}

fn params_value(params: &Params) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(params.chain_id.len() as u64).to_be_bytes());
    bytes.extend_from_slice(params.chain_id.as_bytes());
    bytes.extend_from_slice(&params.min_fee.to_be_bytes());
    bytes.extend_from_slice(&params.unbonding_delay_blocks.to_be_bytes());
    bytes.extend_from_slice(&params.committee_size.to_be_bytes());
    bytes.extend_from_slice(&params.vote_window_blocks.to_be_bytes());
    bytes.extend_from_slice(&params.verifier_bond_min.to_be_bytes());
    bytes.extend_from_slice(&params.verifier_absence_slash.to_be_bytes());
    bytes.extend_from_slice(&params.misbehaviour_slash_bps.to_be_bytes());
    bytes.extend_from_slice(&params.epoch_blocks.to_be_bytes());
    bytes.extend_from_slice(&params.challenges_per_deal.to_be_bytes());
    bytes.extend_from_slice(&params.provider_bond_min.to_be_bytes());
    bytes.extend_from_slice(&params.storage_slash_bps.to_be_bytes());
    bytes.extend_from_slice(&params.repair_bounty_bps.to_be_bytes());
    bytes
}

fn provider_value(provider: &Provider) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&provider.capacity_bytes.to_be_bytes());
    bytes.extend_from_slice(&provider.committed_bytes.to_be_bytes());
    bytes.extend_from_slice(&provider.price_per_gib_epoch.to_be_bytes());
    bytes.extend_from_slice(&(provider.endpoint.len() as u64).to_be_bytes());
    bytes.extend_from_slice(provider.endpoint.as_bytes());
    bytes
}

fn deal_value(deal: &Deal) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(deal.asset.as_bytes());
    bytes.push(deal.shard_index);
    bytes.extend_from_slice(deal.client.as_bytes());
    bytes.extend_from_slice(deal.provider.as_bytes());
    bytes.extend_from_slice(deal.shard_root.as_bytes());
    bytes.extend_from_slice(&deal.shard_bytes.to_be_bytes());
    bytes.extend_from_slice(&deal.price_per_epoch.to_be_bytes());
    bytes.extend_from_slice(&deal.epochs.to_be_bytes());
    bytes.extend_from_slice(&deal.escrow.to_be_bytes());
    bytes.extend_from_slice(&deal.bounty.to_be_bytes());
    bytes.push(deal.status.tag());
    bytes.extend_from_slice(&deal.first_epoch.to_be_bytes());
    bytes.extend_from_slice(&deal.epochs_paid.to_be_bytes());
    match &deal.challenge {
        None => bytes.push(0),
        Some((epoch, seed, answered)) => {
            bytes.push(1);
            bytes.extend_from_slice(&epoch.to_be_bytes());
            bytes.extend_from_slice(seed.as_bytes());
            bytes.push(u8::from(*answered));
        }
    }
    bytes.extend_from_slice(&deal.created_height.to_be_bytes());
    bytes
}

fn reward_pool_value(pool: &RewardPool) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(pool.funder.as_bytes());
    bytes.extend_from_slice(&(pool.task.len() as u64).to_be_bytes());
    bytes.extend_from_slice(pool.task.as_bytes());
    bytes.extend_from_slice(pool.test_set_root.as_bytes());
    bytes.extend_from_slice(&(pool.assets.len() as u64).to_be_bytes());
    for asset in &pool.assets {
        bytes.extend_from_slice(asset.as_bytes());
    }
    bytes.extend_from_slice(&pool.amount.to_be_bytes());
    bytes.extend_from_slice(&pool.evaluator_stake.to_be_bytes());
    bytes.extend_from_slice(&pool.challenge_window_blocks.to_be_bytes());
    bytes.extend_from_slice(&pool.created_height.to_be_bytes());
    match &pool.valuation {
        None => bytes.push(0),
        Some(valuation) => {
            bytes.push(1);
            bytes.extend_from_slice(valuation.evaluator.as_bytes());
            valuation.claim.write(&mut bytes);
            bytes.extend_from_slice(&valuation.submitted_height.to_be_bytes());
            bytes.extend_from_slice(&valuation.challenge_deadline_height.to_be_bytes());
        }
    }
    match &pool.challenge {
        None => bytes.push(0),
        Some(challenge) => {
            bytes.push(1);
            bytes.extend_from_slice(challenge.challenger.as_bytes());
            challenge.claim.write(&mut bytes);
            bytes.extend_from_slice(&challenge.filed_height.to_be_bytes());
            bytes.extend_from_slice(&(challenge.committee.len() as u64).to_be_bytes());
            for member in &challenge.committee {
                bytes.extend_from_slice(member.as_bytes());
            }
            bytes.extend_from_slice(&challenge.vote_deadline_height.to_be_bytes());
            bytes.extend_from_slice(&(challenge.votes.len() as u64).to_be_bytes());
            for (member, for_challenger) in &challenge.votes {
                bytes.extend_from_slice(member.as_bytes());
                bytes.push(u8::from(*for_challenger));
            }
        }
    }
    match pool.paid_height {
        None => bytes.push(0),
        Some(height) => {
            bytes.push(1);
            bytes.extend_from_slice(&height.to_be_bytes());
        }
    }
    bytes
}

fn write_option_hash(value: Option<&Hash32>, bytes: &mut Vec<u8>) {
    match value {
        None => bytes.push(0),
        Some(hash) => {
            bytes.push(1);
            bytes.extend_from_slice(hash.as_bytes());
        }
    }
}

fn write_option_u64(value: Option<u64>, bytes: &mut Vec<u8>) {
    match value {
        None => bytes.push(0),
        Some(value) => {
            bytes.push(1);
            bytes.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn training_session_value(session: &TrainingSession) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(session.trainer.as_bytes());
    session.spec.write(&mut bytes);
    bytes.extend_from_slice(&session.pool.to_be_bytes());
    bytes.extend_from_slice(&session.created_height.to_be_bytes());
    bytes.extend_from_slice(&(session.participants.len() as u64).to_be_bytes());
    for participant in &session.participants {
        bytes.extend_from_slice(participant.asset.as_bytes());
        bytes.extend_from_slice(participant.owner.as_bytes());
        bytes.extend_from_slice(&participant.license_token.to_be_bytes());
        bytes.extend_from_slice(&participant.joined_height.to_be_bytes());
    }
    bytes.extend_from_slice(&session.rounds_committed.to_be_bytes());
    write_option_hash(session.model.as_ref(), &mut bytes);
    write_option_u64(session.finalized_height, &mut bytes);
    bytes
}

fn training_round_value(round: &RoundCommitment) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32 + 8 + 8 + round.participants.len() * 32);
    bytes.extend_from_slice(round.aggregate_root.as_bytes());
    bytes.extend_from_slice(&round.committed_height.to_be_bytes());
    bytes.extend_from_slice(&(round.participants.len() as u64).to_be_bytes());
    for asset in &round.participants {
        bytes.extend_from_slice(asset.as_bytes());
    }
    bytes
}

fn bill_of_materials_value(bill: &BillOfMaterials) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&bill.session.to_be_bytes());
    bytes.extend_from_slice(&(bill.inputs.len() as u64).to_be_bytes());
    for input in &bill.inputs {
        bytes.extend_from_slice(input.asset.as_bytes());
        bytes.extend_from_slice(input.contributor.as_bytes());
        bytes.extend_from_slice(&input.license_token.to_be_bytes());
        bytes.extend_from_slice(&input.royalty_bps.to_be_bytes());
        bytes.extend_from_slice(&input.share_bps.to_be_bytes());
    }
    bytes.extend_from_slice(&(bill.round_roots.len() as u64).to_be_bytes());
    for root in &bill.round_roots {
        bytes.extend_from_slice(root.as_bytes());
    }
    write_option_u64(bill.epsilon_milli, &mut bytes);
    bytes.extend_from_slice(&bill.delta_atto.to_be_bytes());
    write_option_hash(bill.report_root.as_ref(), &mut bytes);
    bytes.extend_from_slice(&bill.finalized_height.to_be_bytes());
    bytes
}

fn training_round_key_bytes(session: TrainingSessionId, round: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&session.to_be_bytes());
    key[8..].copy_from_slice(&round.to_be_bytes());
    key
}

fn training_round_key(key: &[u8]) -> Option<(TrainingSessionId, u32)> {
    if key.len() != 12 {
        return None;
    }
    let round = key[8..].try_into().ok().map(u32::from_be_bytes)?;
    Some((u64_key(&key[..8])?, round))
}

impl State {
    /// An empty state at height 0 committing to `params`.
    pub(crate) fn new(params: &Params) -> Self {
        let mut state = State {
            height: 0,
            beacon: None,
            next_license_id: 1,
            accounts: OrdMap::new(),
            bonds: OrdMap::new(),
            unbondings: OrdMap::new(),
            assets: OrdMap::new(),
            children: OrdMap::new(),
            licenses: OrdMap::new(),
            holders: OrdMap::new(),
            misbehaviour: OrdMap::new(),
            next_reward_pool_id: 1,
            providers: OrdMap::new(),
            layouts: OrdMap::new(),
            next_deal_id: 1,
            deals: OrdMap::new(),
            live_deals: OrdMap::new(),
            provider_open_deals: OrdMap::new(),
            reward_pools: OrdMap::new(),
            open_challenges: OrdMap::new(),
            training_sessions: OrdMap::new(),
            training_rounds: OrdMap::new(),
            session_licenses: OrdMap::new(),
            session_pools: OrdMap::new(),
            bills_of_materials: OrdMap::new(),
            lthash: LtHash::new(),
            pending: OrdMap::new(),
        };
        state.record(table::META, &[meta::PARAMS], Some(params_value(params)));
        state.record(table::META, &[meta::NEXT_LICENSE_ID], Some(encode(&1u64)));
        state.record(
            table::META,
            &[meta::NEXT_REWARD_POOL_ID],
            Some(encode(&1u64)),
        );
        state.record(table::META, &[meta::NEXT_DEAL_ID], Some(encode(&1u64)));
        state.flush();
        state
    }

    /// The one place state writes reach the root: notes `key`'s element before (the first time since the
    /// last flush) and after this write.
    fn record(&mut self, tag: u8, key: &[u8], value: Option<Vec<u8>>) {
        let mut full_key = Vec::with_capacity(1 + key.len());
        full_key.push(tag);
        full_key.extend_from_slice(key);
        let current = element(tag, key, value.as_deref());
        match self.pending.get_mut(&full_key) {
            Some(pending) => pending.current = current,
            None => {
                let committed = self.committed_element(tag, key);
                self.pending
                    .insert(full_key, Pending { committed, current });
            }
        }
    }

    /// The element for (`tag`, `key`) as the root currently counts it. Called before the typed map is
    /// updated, so the typed map still holds the committed value.
    fn committed_element(&self, tag: u8, key: &[u8]) -> Option<Vec<u8>> {
        let value = match tag {
            table::ACCOUNT => Address::try_from_key(key)
                .and_then(|a| self.accounts.get(&a))
                .map(account_value),
            table::BOND => bond_key(key)
                .and_then(|k| self.bonds.get(&k))
                .map(|amount| amount.to_be_bytes().to_vec()),
            table::UNBONDING => unbonding_key(key)
                .and_then(|k| self.unbondings.get(&k))
                .map(|amount| amount.to_be_bytes().to_vec()),
            table::ASSET => hash_key(key)
                .and_then(|id| self.assets.get(&id))
                .map(asset_value),
            table::CHILD => pair_key(key)
                .and_then(|k| self.children.get(&k))
                .map(|()| Vec::new()),
            table::LICENSE => u64_key(key)
                .and_then(|id| self.licenses.get(&id))
                .map(license_value),
            table::HOLDER => holder_key(key)
                .and_then(|k| self.holders.get(&k))
                .map(|()| Vec::new()),
            table::MISBEHAVIOUR => misbehaviour_key(key)
                .and_then(|k| self.misbehaviour.get(&k))
                .map(|reporter| reporter.0.to_vec()),
            table::REWARD_POOL => u64_key(key)
                .and_then(|id| self.reward_pools.get(&id))
                .map(reward_pool_value),
            table::OPEN_CHALLENGE => u64_key(key)
                .and_then(|id| self.open_challenges.get(&id))
                .map(|()| Vec::new()),
            table::PROVIDER => Address::try_from_key(key)
                .and_then(|a| self.providers.get(&a))
                .map(provider_value),
            table::LAYOUT => hash_key(key)
                .and_then(|id| self.layouts.get(&id))
                .map(encode),
            table::DEAL => u64_key(key)
                .and_then(|id| self.deals.get(&id))
                .map(deal_value),
            table::LIVE_DEAL => u64_key(key)
                .and_then(|id| self.live_deals.get(&id))
                .map(|()| Vec::new()),
            table::TRAINING_SESSION => u64_key(key)
                .and_then(|id| self.training_sessions.get(&id))
                .map(training_session_value),
            table::TRAINING_ROUND => training_round_key(key)
                .and_then(|k| self.training_rounds.get(&k))
                .map(training_round_value),
            table::SESSION_LICENSE => u64_key(key)
                .and_then(|id| self.session_licenses.get(&id))
                .map(|session| session.to_be_bytes().to_vec()),
            table::SESSION_POOL => u64_key(key)
                .and_then(|id| self.session_pools.get(&id))
                .map(|session| session.to_be_bytes().to_vec()),
            table::BILL_OF_MATERIALS => hash_key(key)
                .and_then(|id| self.bills_of_materials.get(&id))
                .map(bill_of_materials_value),
            // Meta entries always exist; their old values are recorded by their setters below.
            _ => None,
        };
        element(tag, key, value.as_deref())
    }

    /// Applies every pending change to the LtHash.
    pub(crate) fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (_, change) in pending {
            if change.committed == change.current {
                continue;
            }
            if let Some(old) = &change.committed {
                self.lthash.subtract(old);
            }
            if let Some(new) = &change.current {
                self.lthash.add(new);
            }
        }
    }

    /// Runs `step` so it lands whole or not at all: its events are appended to `events` only if
    /// it succeeds; on an error the state is restored to what it was (an O(1) persistent clone)
    /// and the error returned. Every transaction's call, and each pool's or deal's step at the
    /// start of a block, runs this way.
    pub(crate) fn atomically<T>(
        &mut self,
        events: &mut Vec<Event>,
        step: impl FnOnce(&mut State, &mut Vec<Event>) -> Result<T, ExecutionError>,
    ) -> Result<T, ExecutionError> {
        let snapshot = self.clone();
        let mut step_events = Vec::new();
        match step(self, &mut step_events) {
            Ok(value) => {
                events.append(&mut step_events);
                Ok(value)
            }
            Err(error) => {
                *self = snapshot;
                Err(error)
            }
        }
    }

    /// The state root. Only meaningful after [`State::flush`] (public ledger entry points flush).
    pub(crate) fn root(&self) -> StateRoot {
        let checksum = self.lthash.checksum();
        let mut hasher = blake3::Hasher::new();
        hasher.update(ROOT_DOMAIN);
        hasher.update(checksum.as_ref());
        Hash32(*hasher.finalize().as_bytes())
    }

    /// Whether changes are waiting for a flush.
    #[cfg(test)]
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    // ---- typed setters: each updates its map and records the element ----

    /// The height is not part of the root: the block that commits to the root carries its own
    /// height, and a run of empty blocks leaves the state, and so its root, unchanged.
    pub(crate) fn set_height(&mut self, height: u64) {
        self.height = height;
    }

    pub(crate) fn set_next_license_id(&mut self, next: LicenseTokenId) {
        let key = [meta::NEXT_LICENSE_ID];
        self.record_meta(&key, encode(&self.next_license_id), encode(&next));
        self.next_license_id = next;
    }

    fn record_meta(&mut self, key: &[u8], old: Vec<u8>, new: Vec<u8>) {
        let mut full_key = vec![table::META];
        full_key.extend_from_slice(key);
        if !self.pending.contains_key(&full_key) {
            let committed = element(table::META, key, Some(&old));
            self.pending.insert(
                full_key.clone(),
                Pending {
                    committed,
                    current: None,
                },
            );
        }
        self.record(table::META, key, Some(new));
    }

    pub(crate) fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    pub(crate) fn set_account(&mut self, address: Address, account: Account) {
        let value = (account != Account::default()).then(|| account_value(&account));
        self.record(table::ACCOUNT, address.as_bytes(), value);
        if account == Account::default() {
            self.accounts.remove(&address);
        } else {
            self.accounts.insert(address, account);
        }
    }

    pub(crate) fn bond(&self, address: &Address, role: Role) -> Amount {
        self.bonds.get(&(*address, role)).copied().unwrap_or(0)
    }

    /// Records that `validator` misbehaved in `view`, reported by `reporter`.
    pub(crate) fn set_misbehaviour(&mut self, validator: Address, view: u64, reporter: Address) {
        let key = misbehaviour_key_bytes(&validator, view);
        self.record(table::MISBEHAVIOUR, &key, Some(reporter.0.to_vec()));
        self.misbehaviour.insert((validator, view), reporter);
    }

    pub(crate) fn set_bond(&mut self, address: Address, role: Role, amount: Amount) {
        let key = bond_key_bytes(&address, role);
        self.record(
            table::BOND,
            &key,
            (amount != 0).then(|| amount.to_be_bytes().to_vec()),
        );
        if amount == 0 {
            self.bonds.remove(&(address, role));
        } else {
            self.bonds.insert((address, role), amount);
        }
    }

    pub(crate) fn set_unbonding(
        &mut self,
        release_height: u64,
        address: Address,
        role: Role,
        amount: Amount,
    ) {
        let key = unbonding_key_bytes(release_height, &address, role);
        self.record(
            table::UNBONDING,
            &key,
            (amount != 0).then(|| amount.to_be_bytes().to_vec()),
        );
        if amount == 0 {
            self.unbondings.remove(&(release_height, address, role));
        } else {
            self.unbondings
                .insert((release_height, address, role), amount);
        }
    }

    pub(crate) fn set_asset(&mut self, asset: Asset) {
        self.record(table::ASSET, asset.id.as_bytes(), Some(asset_value(&asset)));
        self.assets.insert(asset.id, asset);
    }

    pub(crate) fn add_child(&mut self, parent: AssetId, child: AssetId) {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(parent.as_bytes());
        key[32..].copy_from_slice(child.as_bytes());
        self.record(table::CHILD, &key, Some(Vec::new()));
        self.children.insert((parent, child), ());
    }

    pub(crate) fn set_next_reward_pool_id(&mut self, next: RewardPoolId) {
        let key = [meta::NEXT_REWARD_POOL_ID];
        self.record_meta(&key, encode(&self.next_reward_pool_id), encode(&next));
        self.next_reward_pool_id = next;
    }

    /// Writes a pool, keeping the open-challenge index in step with its `challenge`.
    pub(crate) fn set_reward_pool(&mut self, pool: RewardPool) {
        let key = pool.id.to_be_bytes();
        let open = pool.challenge.is_some();
        if open != self.open_challenges.contains_key(&pool.id) {
            self.record(table::OPEN_CHALLENGE, &key, open.then(Vec::new));
            if open {
                self.open_challenges.insert(pool.id, ());
            } else {
                self.open_challenges.remove(&pool.id);
            }
        }
        self.record(table::REWARD_POOL, &key, Some(reward_pool_value(&pool)));
        self.reward_pools.insert(pool.id, pool);
    }

    pub(crate) fn set_provider(&mut self, address: Address, provider: Provider) {
        self.record(
            table::PROVIDER,
            address.as_bytes(),
            Some(provider_value(&provider)),
        );
        self.providers.insert(address, provider);
    }

    pub(crate) fn set_layout(&mut self, asset: AssetId, layout: StorageLayout) {
        self.record(table::LAYOUT, asset.as_bytes(), Some(encode(&layout)));
        self.layouts.insert(asset, layout);
    }

    pub(crate) fn set_next_deal_id(&mut self, next: DealId) {
        let key = [meta::NEXT_DEAL_ID];
        self.record_meta(&key, encode(&self.next_deal_id), encode(&next));
        self.next_deal_id = next;
    }

    /// Writes a deal, keeping the live-deal and per-provider indexes in step with it.
    pub(crate) fn set_deal(&mut self, deal: Deal) {
        let key = deal.id.to_be_bytes();
        let live = matches!(deal.status, DealStatus::Active | DealStatus::Failed);
        if live != self.live_deals.contains_key(&deal.id) {
            self.record(table::LIVE_DEAL, &key, live.then(Vec::new));
            if live {
                self.live_deals.insert(deal.id, ());
            } else {
                self.live_deals.remove(&deal.id);
            }
        }
        // A repair moves a deal to another provider; a closed deal leaves the index.
        if let Some(before) = self.deals.get(&deal.id) {
            self.provider_open_deals.remove(&(before.provider, deal.id));
        }
        if deal.status != DealStatus::Closed {
            self.provider_open_deals
                .insert((deal.provider, deal.id), ());
        }
        self.record(table::DEAL, &key, Some(deal_value(&deal)));
        self.deals.insert(deal.id, deal);
    }

    /// The id the next training session gets: sessions are never removed, so the last id plus one.
    pub(crate) fn next_training_session_id(&self) -> Result<TrainingSessionId, ExecutionError> {
        match self.training_sessions.get_max() {
            None => Ok(1),
            Some((last, _)) => last.checked_add(1).ok_or(ExecutionError::Overflow),
        }
    }

    pub(crate) fn set_training_session(&mut self, session: TrainingSession) {
        self.record(
            table::TRAINING_SESSION,
            &session.id.to_be_bytes(),
            Some(training_session_value(&session)),
        );
        self.training_sessions.insert(session.id, session);
    }

    pub(crate) fn set_training_round(
        &mut self,
        session: TrainingSessionId,
        round: u32,
        commitment: RoundCommitment,
    ) {
        self.record(
            table::TRAINING_ROUND,
            &training_round_key_bytes(session, round),
            Some(training_round_value(&commitment)),
        );
        self.training_rounds.insert((session, round), commitment);
    }

    /// Reserves `token` for `session`'s finalization.
    pub(crate) fn set_session_license(
        &mut self,
        token: LicenseTokenId,
        session: TrainingSessionId,
    ) {
        self.record(
            table::SESSION_LICENSE,
            &token.to_be_bytes(),
            Some(session.to_be_bytes().to_vec()),
        );
        self.session_licenses.insert(token, session);
    }

    /// Reserves `pool`'s valuation for `session`'s finalization.
    pub(crate) fn set_session_pool(&mut self, pool: RewardPoolId, session: TrainingSessionId) {
        self.record(
            table::SESSION_POOL,
            &pool.to_be_bytes(),
            Some(session.to_be_bytes().to_vec()),
        );
        self.session_pools.insert(pool, session);
    }

    pub(crate) fn set_bill_of_materials(&mut self, bill: BillOfMaterials) {
        self.record(
            table::BILL_OF_MATERIALS,
            bill.model.as_bytes(),
            Some(bill_of_materials_value(&bill)),
        );
        self.bills_of_materials.insert(bill.model, bill);
    }

    pub(crate) fn set_license(&mut self, token: LicenseToken) {
        if !self.licenses.contains_key(&token.id) {
            let mut key = [0u8; 40];
            key[..32].copy_from_slice(token.holder.as_bytes());
            key[32..].copy_from_slice(&token.id.to_be_bytes());
            self.record(table::HOLDER, &key, Some(Vec::new()));
            self.holders.insert((token.holder, token.id), ());
        }
        self.record(
            table::LICENSE,
            &token.id.to_be_bytes(),
            Some(license_value(&token)),
        );
        self.licenses.insert(token.id, token);
    }
}

trait FromKey: Sized {
    fn try_from_key(key: &[u8]) -> Option<Self>;
}

impl FromKey for Address {
    fn try_from_key(key: &[u8]) -> Option<Self> {
        key.try_into().ok().map(Address)
    }
}

fn misbehaviour_key_bytes(validator: &Address, view: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&validator.0);
    key[32..].copy_from_slice(&view.to_be_bytes());
    key
}

fn misbehaviour_key(key: &[u8]) -> Option<(Address, u64)> {
    if key.len() != 40 {
        return None;
    }
    Some((Address::try_from_key(&key[..32])?, u64_key(&key[32..])?))
}

fn hash_key(key: &[u8]) -> Option<AssetId> {
    key.try_into().ok().map(Hash32)
}

fn u64_key(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

fn bond_key_bytes(address: &Address, role: Role) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[..32].copy_from_slice(address.as_bytes());
    key[32] = role.tag();
    key
}

fn bond_key(key: &[u8]) -> Option<(Address, Role)> {
    if key.len() != 33 {
        return None;
    }
    Some((Address::try_from_key(&key[..32])?, Role::from_tag(key[32])?))
}

fn unbonding_key_bytes(release_height: u64, address: &Address, role: Role) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[..8].copy_from_slice(&release_height.to_be_bytes());
    key[8..40].copy_from_slice(address.as_bytes());
    key[40] = role.tag();
    key
}

fn unbonding_key(key: &[u8]) -> Option<(u64, Address, Role)> {
    if key.len() != 41 {
        return None;
    }
    Some((
        u64_key(&key[..8])?,
        Address::try_from_key(&key[8..40])?,
        Role::from_tag(key[40])?,
    ))
}

fn pair_key(key: &[u8]) -> Option<(AssetId, AssetId)> {
    if key.len() != 64 {
        return None;
    }
    Some((hash_key(&key[..32])?, hash_key(&key[32..])?))
}

fn holder_key(key: &[u8]) -> Option<(Address, LicenseTokenId)> {
    if key.len() != 40 {
        return None;
    }
    Some((Address::try_from_key(&key[..32])?, u64_key(&key[32..])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root of a state is the root of a fresh LtHash over exactly its current elements.
    fn recomputed_root(state: &State, params: &Params) -> StateRoot {
        let mut lthash = LtHash::new();
        let mut add = |tag: u8, key: &[u8], value: Vec<u8>| {
            if let Some(element) = element(tag, key, Some(&value)) {
                lthash.add(&element);
            }
        };
        add(table::META, &[meta::PARAMS], params_value(params));
        add(
            table::META,
            &[meta::NEXT_LICENSE_ID],
            encode(&state.next_license_id),
        );
        add(
            table::META,
            &[meta::NEXT_REWARD_POOL_ID],
            encode(&state.next_reward_pool_id),
        );
        add(
            table::META,
            &[meta::NEXT_DEAL_ID],
            encode(&state.next_deal_id),
        );
        for (address, account) in &state.accounts {
            add(table::ACCOUNT, address.as_bytes(), account_value(account));
        }
        for ((address, role), amount) in &state.bonds {
            add(
                table::BOND,
                &bond_key_bytes(address, *role),
                amount.to_be_bytes().to_vec(),
            );
        }
        let mut copy = state.clone();
        copy.lthash = lthash;
        copy.pending = OrdMap::new();
        copy.root()
    }

    #[test]
    fn flushed_root_equals_recomputed_root() {
        let params = Params::devnet("test");
        let mut state = State::new(&params);
        let a = Address([1; 32]);
        let b = Address([2; 32]);
        state.set_account(
            a,
            Account {
                balance: 10,
                nonce: 0,
            },
        );
        state.set_account(
            b,
            Account {
                balance: 5,
                nonce: 1,
            },
        );
        state.set_account(
            a,
            Account {
                balance: 7,
                nonce: 2,
            },
        );
        state.set_bond(a, Role::Verifier, 3);
        state.set_height(4);
        state.flush();
        assert_eq!(state.root(), recomputed_root(&state, &params));
        // Writing back old values, and removing, keep the root consistent.
        state.set_account(b, Account::default());
        state.set_bond(a, Role::Verifier, 0);
        state.set_bond(a, Role::Verifier, 0);
        state.flush();
        assert_eq!(state.root(), recomputed_root(&state, &params));
        let before = state.root();
        state.set_account(
            a,
            Account {
                balance: 1,
                nonce: 1,
            },
        );
        state.set_account(
            a,
            Account {
                balance: 7,
                nonce: 2,
            },
        );
        assert!(state.has_pending());
        state.flush();
        assert_eq!(state.root(), before);
    }
}
