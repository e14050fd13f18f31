//! JSON views served by the API and parsed by the CLI. Amounts are decimal strings.

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    hash::{AssetId, Hash32},
    training::{Aggregation, DifferentialPrivacy, OpenSession, TrainingSessionId},
    transaction::{AssetKind, LicenseTokenId, RewardPoolId, Role, Terms},
};
use serde::{Deserialize, Serialize};

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Address.
    pub address: Address,
    /// Spendable balance.
    #[serde(with = "amount_string")]
    pub balance: Amount,
    /// Next nonce.
    pub nonce: u64,
}

/// One owner's share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerView {
    /// Owner.
    pub address: Address,
    /// Share in basis points.
    pub bps: u16,
}

/// One parent link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentView {
    /// Parent asset.
    pub asset: AssetId,
    /// Royalty rate owed to it (snapshot from the consumed license).
    pub royalty_bps: u16,
    /// The license token consumed.
    pub license_token: LicenseTokenId,
}

/// An asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetView {
    /// Id (content root).
    pub id: AssetId,
    /// Kind.
    pub kind: AssetKind,
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub byte_size: u64,
    /// Owners, ordered by address.
    pub owners: Vec<OwnerView>,
    /// Parents, in registration order.
    pub parents: Vec<ParentView>,
    /// Current terms for new licenses.
    pub terms: Terms,
    /// Who registered it.
    pub registrant: Address,
    /// Height of registration.
    pub registered_height: u64,
    /// Licenses minted so far.
    pub licenses_minted: u64,
}

/// A license token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseTokenView {
    /// Id.
    pub id: LicenseTokenId,
    /// Licensed asset.
    pub asset: AssetId,
    /// Terms at mint time (never changes).
    pub terms: Terms,
    /// Holder.
    pub holder: Address,
    /// Height minted.
    pub minted_height: u64,
    /// The derivative registered with this token, once consumed.
    pub consumed_by: Option<AssetId>,
}

/// An asset's lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageView {
    /// The asset.
    pub asset: AssetId,
    /// All transitive ancestors, ordered by id (bounded by `ASSET_ANCESTORS_MAX`).
    pub ancestors: Vec<AssetId>,
    /// Transitive descendants, ordered by id, at most `LINEAGE_DESCENDANTS_MAX`.
    pub descendants: Vec<AssetId>,
    /// Whether descendants were cut at the limit.
    pub descendants_truncated: bool,
}

/// One bond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondView {
    /// Account.
    pub account: Address,
    /// Role.
    pub role: Role,
    /// Bonded amount.
    #[serde(with = "amount_string")]
    pub amount: Amount,
}

/// A valuation as posted to a reward pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuationView {
    /// Whose valuation it is.
    pub evaluator: Address,
    /// BLAKE3 of the valuation report.
    pub report_root: Hash32,
    /// Per-asset shares in basis points.
    pub shares: Vec<AssetShareView>,
    /// Height posted.
    pub submitted_height: u64,
    /// Last height it can be challenged (for a challenge: `None`).
    pub challenge_deadline_height: Option<u64>,
}

/// One asset's share of a valuation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetShareView {
    /// Asset.
    pub asset: AssetId,
    /// Share in basis points.
    pub bps: u16,
}

/// A challenge being decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeView {
    /// The challenger's valuation.
    pub valuation: ValuationView,
    /// The committee (empty until drawn).
    pub committee: Vec<Address>,
    /// Last height members can vote (`None` until drawn).
    pub vote_deadline_height: Option<u64>,
    /// Votes cast.
    pub votes: Vec<VoteView>,
}

/// A committee member's vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteView {
    /// The member.
    pub verifier: Address,
    /// For the challenger's valuation.
    pub for_challenger: bool,
}

/// A reward pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardPoolView {
    /// Id.
    pub id: u64,
    /// Funder.
    pub funder: Address,
    /// Task description.
    pub task: String,
    /// Root of the test set.
    pub test_set_root: Hash32,
    /// Eligible assets, ascending.
    pub assets: Vec<AssetId>,
    /// The reward.
    #[serde(with = "amount_string")]
    pub amount: Amount,
    /// Stake of an evaluator or challenger.
    #[serde(with = "amount_string")]
    pub evaluator_stake: Amount,
    /// Challenge window in blocks.
    pub challenge_window_blocks: u64,
    /// Height created.
    pub created_height: u64,
    /// `open` (no valuation), `valuated`, `challenged` or `paid`.
    pub status: String,
    /// The standing valuation.
    pub valuation: Option<ValuationView>,
    /// The challenge being decided.
    pub challenge: Option<ChallengeView>,
    /// Height paid out.
    pub paid_height: Option<u64>,
}

/// A storage provider's offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    /// The provider.
    pub address: Address,
    /// Bytes offered.
    pub capacity_bytes: u64,
    /// Bytes under accepted deals.
    pub committed_bytes: u64,
    /// Price per GiB per epoch.
    #[serde(with = "amount_string")]
    pub price_per_gib_epoch: Amount,
    /// Where clients reach it.
    pub endpoint: String,
}

/// A storage deal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealView {
    /// Id.
    pub id: u64,
    /// The asset.
    pub asset: AssetId,
    /// Which shard.
    pub shard_index: u8,
    /// Who pays.
    pub client: Address,
    /// Who stores.
    pub provider: Address,
    /// The shard's BLAKE3 root.
    pub shard_root: Hash32,
    /// The shard's size.
    pub shard_bytes: u64,
    /// Paid per proven epoch.
    #[serde(with = "amount_string")]
    pub price_per_epoch: Amount,
    /// Epochs paid for.
    pub epochs: u32,
    /// Escrow left.
    #[serde(with = "amount_string")]
    pub escrow: Amount,
    /// Repair bounty held.
    #[serde(with = "amount_string")]
    pub bounty: Amount,
    /// `proposed`, `active`, `failed` or `closed`.
    pub status: String,
    /// First challenged epoch.
    pub first_epoch: u64,
    /// Epochs proven and paid.
    pub epochs_paid: u32,
    /// The open (or last) challenge's epoch.
    pub challenge_epoch: Option<u64>,
    /// Its beacon seed (the chunks are derived from it, the deal and the epoch).
    pub challenge_seed: Option<Hash32>,
    /// Whether it was answered.
    pub challenge_answered: bool,
}

/// A participant of a training session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionParticipantView {
    /// The asset that joined.
    pub asset: AssetId,
    /// The owner who joined it.
    pub owner: Address,
    /// The license token minted to the trainer for it.
    pub license_token: LicenseTokenId,
    /// Height it joined.
    pub joined_height: u64,
}

/// A committed training round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundCommitmentView {
    /// The round (from 1).
    pub round: u32,
    /// BLAKE3 of the round's aggregate.
    pub aggregate_root: Hash32,
    /// The participants aggregated, ascending.
    pub participants: Vec<AssetId>,
    /// Height committed.
    pub committed_height: u64,
}

/// A training session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingSessionView {
    /// Id.
    pub id: TrainingSessionId,
    /// Who opened and funded it (the model's owner).
    pub trainer: Address,
    /// The session as opened.
    pub spec: OpenSession,
    /// The reward pool holding the reward.
    pub pool: RewardPoolId,
    /// Height opened.
    pub created_height: u64,
    /// `open` (joins open, no round yet), `training` (rounds committed) or `finalized`.
    pub status: String,
    /// Participants, ascending by asset.
    pub participants: Vec<SessionParticipantView>,
    /// Rounds committed.
    pub rounds_committed: u32,
    /// The committed rounds, in order.
    pub rounds: Vec<RoundCommitmentView>,
    /// The model asset, once finalized.
    pub model: Option<AssetId>,
    /// Height finalized.
    pub finalized_height: Option<u64>,
}

/// One input of a model's bill of materials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInputView {
    /// The input asset; its id is its content root (BLAKE3 of its file).
    pub asset: AssetId,
    /// The owner who joined it to the session.
    pub contributor: Address,
    /// The license token the model consumed for it.
    pub license_token: LicenseTokenId,
    /// Royalty rate owed to it by the model (snapshot of the token's terms).
    pub royalty_bps: u16,
    /// Its contribution share as posted at finalization, in basis points.
    pub share_bps: u16,
}

/// A model's bill of materials: what went into it, as recorded when its session was finalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillOfMaterialsView {
    /// The model asset (BLAKE3 of its weights file).
    pub model: AssetId,
    /// The training session that produced it.
    pub session: TrainingSessionId,
    /// The model's owner (the session's trainer).
    pub trainer: Address,
    /// Who ran the rounds and posted the shares.
    pub aggregator: Address,
    /// BLAKE3 of the session spec file.
    pub model_spec_root: Hash32,
    /// What was trained.
    pub task: String,
    /// How updates were aggregated.
    pub aggregation: Aggregation,
    /// Whether updates were combined by secure aggregation.
    pub secure_aggregation: bool,
    /// The differential-privacy settings, if any.
    pub privacy: Option<DifferentialPrivacy>,
    /// Inputs, ascending by asset.
    pub inputs: Vec<MaterialInputView>,
    /// The committed rounds, in order.
    pub rounds: Vec<RoundCommitmentView>,
    /// ε spent, in thousandths (`None` without differential privacy).
    pub epsilon_milli: Option<u64>,
    /// δ, in 10⁻¹⁸ units (0 without differential privacy).
    pub delta_atto: u64,
    /// BLAKE3 of the valuation report behind the shares, if one was made.
    pub report_root: Option<Hash32>,
    /// The reward pool paying the contributors (its standing valuation is the one that pays, which
    /// a successful challenge may have replaced).
    pub pool: RewardPoolId,
    /// Height finalized.
    pub finalized_height: u64,
}
