//! Events (structured audit records, fields only) and receipts.

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    hash::{AssetId, Hash32, TxHash},
    training::TrainingSessionId,
    transaction::{AssetKind, DealId, LicenseTokenId, RewardPoolId, Role},
};
use serde::{Deserialize, Serialize};

/// Why a revenue payout reached an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutKind {
    /// The revenue arrived at this asset directly (a license sale or `PayRevenue`).
    OwnerShare,
    /// The revenue arrived at a descendant and reached this asset as royalties.
    RoyaltyFromDescendant,
}

/// Something that happened while executing. Amounts serialize as decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// bank: `amount` moved from `from` to `to`.
    Transferred {
        /// Payer.
        from: Address,
        /// Payee.
        to: Address,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// stake: `amount` bonded.
    Bonded {
        /// Account.
        account: Address,
        /// Role.
        role: Role,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// stake: `amount` left the bond and is released at `release_height`.
    UnbondStarted {
        /// Account.
        account: Address,
        /// Role.
        role: Role,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
        /// Height at whose start it returns to the balance.
        release_height: u64,
    },
    /// stake: an unbonding matured and returned to the balance.
    UnbondReleased {
        /// Account.
        account: Address,
        /// Role.
        role: Role,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// stake: a module slashed `amount` of `account`'s stake for `role` and paid it to `beneficiary`.
    Slashed {
        /// Account slashed.
        account: Address,
        /// Role.
        role: Role,
        /// Amount taken.
        #[serde(with = "amount_string")]
        amount: Amount,
        /// Who received it.
        beneficiary: Address,
    },
    /// registry: an asset was registered.
    AssetRegistered {
        /// Its id (content root).
        asset: AssetId,
        /// Kind.
        kind: AssetKind,
        /// Registrant.
        registrant: Address,
        /// Direct parents.
        parents: Vec<AssetId>,
    },
    /// registry: an owner changed an asset's terms.
    TermsUpdated {
        /// The asset.
        asset: AssetId,
        /// The owner who changed them.
        by: Address,
    },
    /// licensing: a license token was minted.
    LicenseMinted {
        /// Token id.
        token: LicenseTokenId,
        /// Licensed asset.
        asset: AssetId,
        /// Holder.
        holder: Address,
        /// Price paid.
        #[serde(with = "amount_string")]
        price: Amount,
    },
    /// licensing: a license token was consumed by registering a derivative.
    LicenseConsumed {
        /// Token id.
        token: LicenseTokenId,
        /// The parent asset the token licensed.
        asset: AssetId,
        /// The derivative registered with it.
        derivative: AssetId,
    },
    /// royalty: revenue arrived at `asset` from outside (a license sale or `PayRevenue`).
    RevenueReceived {
        /// The asset.
        asset: AssetId,
        /// Who paid.
        payer: Address,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// royalty: `amount` of revenue at `from_asset` flowed to its parent `to_asset` at `royalty_bps`.
    RoyaltyForwarded {
        /// The child.
        from_asset: AssetId,
        /// The parent.
        to_asset: AssetId,
        /// Rate on the child's parent link (the snapshot from the consumed license).
        royalty_bps: u16,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// conduct: proof that `validator` misbehaved in consensus view `view` was recorded.
    MisbehaviourReported {
        /// The offending validator.
        validator: Address,
        /// The consensus view of the fault.
        view: u64,
        /// Who submitted the proof.
        reporter: Address,
    },
    /// royalty: a payout to an owner of `asset`. The payouts of one revenue sum to the revenue exactly.
    RevenuePaid {
        /// Who was paid.
        to: Address,
        /// Amount.
        #[serde(with = "amount_string")]
        amount: Amount,
        /// The asset whose owner share this is.
        asset: AssetId,
        /// The asset the revenue originally arrived at.
        source_asset: AssetId,
        /// Owner share of direct revenue, or royalty from a descendant.
        kind: PayoutKind,
    },
    /// rewards: a pool was funded.
    RewardPoolCreated {
        /// Its id.
        pool: RewardPoolId,
        /// Who funded it.
        funder: Address,
        /// The reward.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// rewards: a valuation was posted (by an evaluator, or a challenger's replacing a voided one).
    ValuationSubmitted {
        /// The pool.
        pool: RewardPoolId,
        /// Whose valuation it is (their stake backs it).
        evaluator: Address,
        /// The report's commitment.
        report_root: Hash32,
        /// Last height at which it can be challenged.
        challenge_deadline_height: u64,
    },
    /// rewards: a valuation was challenged.
    ValuationChallenged {
        /// The pool.
        pool: RewardPoolId,
        /// The challenger.
        challenger: Address,
        /// The challenger's report commitment.
        report_root: Hash32,
    },
    /// rewards: the committee deciding a challenge was drawn from the block's beacon.
    CommitteeDrawn {
        /// The pool.
        pool: RewardPoolId,
        /// The members, ascending.
        members: Vec<Address>,
        /// Last height at which they can vote.
        vote_deadline_height: u64,
    },
    /// rewards: a committee member voted.
    ValuationVoted {
        /// The pool.
        pool: RewardPoolId,
        /// The member.
        verifier: Address,
        /// Whether for the challenger's valuation.
        for_challenger: bool,
    },
    /// rewards: a challenge was decided; the loser's stake went to the winner.
    ChallengeResolved {
        /// The pool.
        pool: RewardPoolId,
        /// Whether the challenger won (its valuation replaced the old one).
        challenger_won: bool,
        /// Who received the stake.
        winner: Address,
        /// Whose stake it was.
        loser: Address,
        /// The stake moved.
        #[serde(with = "amount_string")]
        amount: Amount,
        /// Votes for the challenger.
        votes_for_challenger: u16,
        /// Votes for the standing valuation.
        votes_for_valuation: u16,
    },
    /// rewards: a challenge lapsed without a committee (no eligible verifiers were left at the
    /// draw); the challenger's stake was returned.
    ChallengeDismissed {
        /// The pool.
        pool: RewardPoolId,
        /// The challenger, refunded.
        challenger: Address,
    },
    /// rewards: the part of a pool allocated to an asset by the valuation, paid on as revenue
    /// arriving at that asset (so it reaches its owners and, by royalty, its ancestors).
    RewardAllocated {
        /// The pool.
        pool: RewardPoolId,
        /// The asset.
        asset: AssetId,
        /// Its shares in basis points.
        share_bps: u16,
        /// The amount.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// storage: a provider registered (or updated) its offer.
    ProviderRegistered {
        /// The provider.
        provider: Address,
        /// Bytes offered.
        capacity_bytes: u64,
        /// Price per GiB per epoch.
        #[serde(with = "amount_string")]
        price_per_gib_epoch: Amount,
    },
    /// storage: an asset's shard layout was recorded.
    AssetStored {
        /// The asset.
        asset: AssetId,
        /// k + m shards.
        shards: u8,
        /// Bytes per shard.
        shard_bytes: u64,
    },
    /// storage: a deal was proposed and its price escrowed.
    DealCreated {
        /// The deal.
        deal: DealId,
        /// The asset.
        asset: AssetId,
        /// Which shard.
        shard_index: u8,
        /// The provider.
        provider: Address,
        /// The escrow (every epoch's price).
        #[serde(with = "amount_string")]
        escrow: Amount,
    },
    /// storage: the provider accepted; challenges start at `first_epoch`.
    DealAccepted {
        /// The deal.
        deal: DealId,
        /// The provider.
        provider: Address,
        /// The first challenged epoch.
        first_epoch: u64,
    },
    /// storage: a deal ended (cancelled, completed or abandoned) and its unspent escrow returned.
    DealClosed {
        /// The deal.
        deal: DealId,
        /// `cancelled` or `completed`.
        reason: String,
        /// Escrow returned to the client.
        #[serde(with = "amount_string")]
        refund: Amount,
    },
    /// storage: challenges for an epoch were issued from the block's beacon.
    StorageChallengesIssued {
        /// The epoch.
        epoch: u64,
        /// Deals challenged.
        deals: u64,
    },
    /// storage: a valid proof; the provider was paid the epoch's price.
    ProofAccepted {
        /// The deal.
        deal: DealId,
        /// The epoch.
        epoch: u64,
        /// The provider.
        provider: Address,
        /// Paid from escrow.
        #[serde(with = "amount_string")]
        payment: Amount,
    },
    /// storage: a challenge went unanswered; the provider was slashed and the deal awaits repair.
    ProofMissed {
        /// The deal.
        deal: DealId,
        /// The epoch.
        epoch: u64,
        /// The provider.
        provider: Address,
        /// Stake taken (part to the client, part held as the repair bounty).
        #[serde(with = "amount_string")]
        slashed: Amount,
    },
    /// storage: a provider took over a failed deal with a rebuilt shard.
    DealRepaired {
        /// The deal.
        deal: DealId,
        /// The new provider.
        provider: Address,
        /// The repair bounty held in the deal, paid to it with its first accepted proof
        /// ([`Event::RepairBountyPaid`]).
        #[serde(with = "amount_string")]
        bounty: Amount,
    },
    /// storage: a repairer's first accepted proof after taking over a deal earned the bounty.
    RepairBountyPaid {
        /// The deal.
        deal: DealId,
        /// The repairer.
        provider: Address,
        /// Bounty paid.
        #[serde(with = "amount_string")]
        bounty: Amount,
    },
    /// rewards: a pool was paid out in full and the evaluator's stake returned.
    RewardPoolPaid {
        /// The pool.
        pool: RewardPoolId,
        /// The evaluator whose valuation paid it.
        evaluator: Address,
        /// The reward paid.
        #[serde(with = "amount_string")]
        amount: Amount,
    },
    /// training: a session was opened and its reward escrowed in `pool`.
    SessionOpened {
        /// The session.
        session: TrainingSessionId,
        /// Who opened and funded it (the model's owner).
        trainer: Address,
        /// Who runs, commits and finalizes it.
        aggregator: Address,
        /// The reward pool holding the reward.
        pool: RewardPoolId,
        /// The reward.
        #[serde(with = "amount_string")]
        reward: Amount,
    },
    /// training: an asset joined a session; `license_token` was minted to the trainer for it.
    SessionJoined {
        /// The session.
        session: TrainingSessionId,
        /// The asset.
        asset: AssetId,
        /// The owner who joined it.
        owner: Address,
        /// The license token minted for the session.
        license_token: LicenseTokenId,
    },
    /// training: the aggregator committed a round.
    RoundCommitted {
        /// The session.
        session: TrainingSessionId,
        /// The round (from 1).
        round: u32,
        /// BLAKE3 of the round's aggregate.
        aggregate_root: Hash32,
        /// The participants aggregated, ascending.
        participants: Vec<AssetId>,
    },
    /// training: a session was finalized: its model registered with a bill of materials and its
    /// contribution shares posted as `pool`'s valuation.
    SessionFinalized {
        /// The session.
        session: TrainingSessionId,
        /// The model asset (its weights' root).
        model: AssetId,
        /// The reward pool that pays the contributors after the challenge window.
        pool: RewardPoolId,
        /// Rounds committed.
        rounds_committed: u32,
    },
}

/// Whether a transaction's call succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The call's effects were applied.
    Success,
    /// The call broke a rule: only the fee and the nonce were applied. `reason` starts with a stable
    /// machine code followed by `": "` and a message.
    Failed {
        /// `code: message`.
        reason: String,
    },
}

/// What happened to one included transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction's hash.
    pub tx_hash: TxHash,
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Success or failure.
    pub status: ReceiptStatus,
    /// Fee paid to the proposer (paid on failure too).
    #[serde(with = "amount_string")]
    pub fee_paid: Amount,
    /// Events of the call (empty on failure).
    pub events: Vec<Event>,
}
