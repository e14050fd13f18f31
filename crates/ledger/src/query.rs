//! Read-only queries. Each is bounded: lists are paged or capped by a named limit.

use crate::{
    Ledger, registry,
    state::{Asset, Deal, LicenseToken, Provider, RewardPool, State, TrainingSession},
};
use std::collections::{BTreeSet, VecDeque};
use tributary_types::{
    AccountView, Address, Amount, AssetId, AssetShareView, AssetView, BillOfMaterialsView,
    BondView, ChallengeView, DealId, DealView, LicenseTokenId, LicenseTokenView, LineageView,
    MaterialInputView, OwnerView, Params, ParentView, ProviderView, RewardPoolId, RewardPoolView,
    Role, RoundCommitmentView, SessionParticipantView, StateRoot, TrainingSessionId,
    TrainingSessionView, ValuationView, VoteView,
    limits::{ASSET_ANCESTORS_MAX, LINEAGE_DESCENDANTS_MAX, QUERY_PAGE_MAX},
};

fn asset_view(asset: &Asset) -> AssetView {
    AssetView {
        id: asset.id,
        kind: asset.kind,
        name: asset.name.clone(),
        byte_size: asset.byte_size,
        owners: asset
            .owners
            .iter()
            .map(|(address, bps)| OwnerView {
                address: *address,
                bps: *bps,
            })
            .collect(),
        parents: asset
            .parents
            .iter()
            .map(|link| ParentView {
                asset: link.asset,
                royalty_bps: link.royalty_bps,
                license_token: link.license_token,
            })
            .collect(),
        terms: asset.terms.clone(),
        registrant: asset.registrant,
        registered_height: asset.registered_height,
        licenses_minted: asset.licenses_minted,
    }
}

fn license_view(token: &LicenseToken) -> LicenseTokenView {
    LicenseTokenView {
        id: token.id,
        asset: token.asset,
        terms: token.terms.clone(),
        holder: token.holder,
        minted_height: token.minted_height,
        consumed_by: token.consumed_by,
    }
}

impl Ledger {
    /// Height of the last executed block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.state.height
    }

    /// The state root after the last executed block.
    pub fn state_root(&self) -> StateRoot {
        self.state.root()
    }

    /// The chain's parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// An account (zero balance and nonce when never seen).
    pub fn account(&self, address: &Address) -> AccountView {
        let account = self.state.account(address);
        AccountView {
            address: *address,
            balance: account.balance,
            nonce: account.nonce,
        }
    }

    /// An account's next nonce.
    pub fn nonce(&self, address: &Address) -> u64 {
        self.state.account(address).nonce
    }

    /// An account's spendable balance.
    pub fn balance(&self, address: &Address) -> Amount {
        self.state.account(address).balance
    }

    /// An asset.
    pub fn asset(&self, id: &AssetId) -> Option<AssetView> {
        self.state.assets.get(id).map(asset_view)
    }

    /// Assets ordered by id, skipping `offset`, at most `min(limit, QUERY_PAGE_MAX)`.
    pub fn assets(&self, offset: usize, limit: usize) -> Vec<AssetView> {
        self.state
            .assets
            .values()
            .skip(offset)
            .take(limit.min(QUERY_PAGE_MAX))
            .map(asset_view)
            .collect()
    }

    /// Count of registered assets.
    pub fn asset_count(&self) -> usize {
        self.state.assets.len()
    }

    /// An asset's ancestors (all, at most `ASSET_ANCESTORS_MAX`) and descendants (at most
    /// `LINEAGE_DESCENDANTS_MAX`, breadth-first, then sorted by id).
    pub fn lineage(&self, id: &AssetId) -> Option<LineageView> {
        if !self.state.assets.contains_key(id) {
            return None;
        }
        let ancestors: Vec<AssetId> =
            registry::ancestors_of(&self.state, &[*id], ASSET_ANCESTORS_MAX)
                .into_iter()
                .collect();
        let mut descendants = BTreeSet::new();
        let mut queue = VecDeque::from([*id]);
        let mut truncated = false;
        'walk: while let Some(parent) = queue.pop_front() {
            let range = self.state.children.range((parent, AssetId::ZERO)..);
            for ((from, child), ()) in range {
                if *from != parent {
                    break;
                }
                if descendants.contains(child) {
                    continue;
                }
                if descendants.len() == LINEAGE_DESCENDANTS_MAX {
                    truncated = true;
                    break 'walk;
                }
                descendants.insert(*child);
                queue.push_back(*child);
            }
        }
        Some(LineageView {
            asset: *id,
            ancestors,
            descendants: descendants.into_iter().collect(),
            descendants_truncated: truncated,
        })
    }

    /// A license token.
    pub fn license(&self, id: LicenseTokenId) -> Option<LicenseTokenView> {
        self.state.licenses.get(&id).map(license_view)
    }

    /// Count of license tokens ever minted (the last token id).
    pub fn license_count(&self) -> u64 {
        self.state.next_license_id.saturating_sub(1)
    }

    /// License tokens held by `holder` (consumed ones included), by id, at most `QUERY_PAGE_MAX`.
    pub fn licenses_of(&self, holder: &Address) -> Vec<LicenseTokenView> {
        self.state
            .holders
            .range((*holder, 0)..)
            .take_while(|((owner, _), ())| owner == holder)
            .take(QUERY_PAGE_MAX)
            .filter_map(|((_, id), ())| self.state.licenses.get(id).map(license_view))
            .collect()
    }

    /// License tokens by id, from `after` (exclusive), at most `min(limit, QUERY_PAGE_MAX)`: how an
    /// owner's key agent learns of new licensees.
    pub fn licenses(&self, after: LicenseTokenId, limit: usize) -> Vec<LicenseTokenView> {
        self.state
            .licenses
            .range(after.saturating_add(1)..)
            .take(limit.min(QUERY_PAGE_MAX))
            .map(|(_, token)| license_view(token))
            .collect()
    }

    /// Amount bonded by `account` for `role` (not counting unbonding amounts).
    pub fn bonded(&self, account: &Address, role: Role) -> Amount {
        self.state.bond(account, role)
    }

    /// Every bond of `account`.
    pub fn bonds_of(&self, account: &Address) -> Vec<BondView> {
        Role::ALL
            .iter()
            .filter_map(|role| {
                let amount = self.state.bond(account, *role);
                (amount > 0).then_some(BondView {
                    account: *account,
                    role: *role,
                    amount,
                })
            })
            .collect()
    }

    /// Amount `account` has unbonding for `role` (not yet released).
    pub fn unbonding(&self, account: &Address, role: Role) -> Amount {
        self.state
            .unbondings
            .iter()
            .filter(|((_, owner, entry_role), _)| owner == account && *entry_role == role)
            .fold(0u128, |sum, (_, amount)| sum.saturating_add(*amount))
    }

    /// Sum of all balances, bonds and unbonding amounts: constant from genesis on. Walks every account
    /// (O(accounts)); saturates at `u128::MAX`, which genesis rules out.
    pub fn total_supply(&self) -> Amount {
        let balances = self
            .state
            .accounts
            .values()
            .fold(0u128, |sum, account| sum.saturating_add(account.balance));
        let bonds = self
            .state
            .bonds
            .values()
            .fold(0u128, |sum, amount| sum.saturating_add(*amount));
        let unbonding = self
            .state
            .unbondings
            .values()
            .fold(0u128, |sum, amount| sum.saturating_add(*amount));
        let pools = self
            .state
            .reward_pools
            .values()
            .fold(0u128, |sum, pool| sum.saturating_add(pool.escrow()));
        let deals = self.state.deals.values().fold(0u128, |sum, deal| {
            sum.saturating_add(deal.escrow).saturating_add(deal.bounty)
        });
        balances
            .saturating_add(bonds)
            .saturating_add(unbonding)
            .saturating_add(pools)
            .saturating_add(deals)
    }

    /// A storage provider's offer.
    pub fn provider(&self, address: &Address) -> Option<ProviderView> {
        self.state
            .providers
            .get(address)
            .map(|provider| provider_view(*address, provider))
    }

    /// Storage providers by address, from `after` (exclusive), at most `min(limit, QUERY_PAGE_MAX)`.
    pub fn providers(&self, after: Option<Address>, limit: usize) -> Vec<ProviderView> {
        let take = limit.min(QUERY_PAGE_MAX);
        match after {
            Some(after) => self
                .state
                .providers
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(take)
                .map(|(address, provider)| provider_view(*address, provider))
                .collect(),
            None => self
                .state
                .providers
                .iter()
                .take(take)
                .map(|(address, provider)| provider_view(*address, provider))
                .collect(),
        }
    }

    /// An asset's storage layout.
    pub fn storage_layout(&self, asset: &AssetId) -> Option<tributary_types::StorageLayout> {
        self.state.layouts.get(asset).cloned()
    }

    /// A storage deal.
    pub fn deal(&self, id: DealId) -> Option<DealView> {
        self.state.deals.get(&id).map(deal_view)
    }

    /// Storage deals by id, from `after` (exclusive), at most `min(limit, QUERY_PAGE_MAX)`,
    /// optionally only those of `asset`.
    pub fn deals(&self, after: DealId, limit: usize, asset: Option<&AssetId>) -> Vec<DealView> {
        self.state
            .deals
            .range(after.saturating_add(1)..)
            .filter(|(_, deal)| asset.is_none_or(|asset| deal.asset == *asset))
            .take(limit.min(QUERY_PAGE_MAX))
            .map(|(_, deal)| deal_view(deal))
            .collect()
    }

    /// Deals of `provider` that are not closed, by id (from the per-provider index: no scan of
    /// other providers' deals or of closed ones).
    pub fn provider_deals(&self, provider: &Address) -> Vec<DealView> {
        self.state
            .provider_open_deals
            .range((*provider, 0)..=(*provider, DealId::MAX))
            .filter_map(|((_, id), ())| self.state.deals.get(id))
            .map(deal_view)
            .collect()
    }

    /// Deals whose status is `status` (`proposed`, `active`, `failed` or `closed`), optionally
    /// only those of `asset`, by id, from `after` (exclusive), at most
    /// `min(limit, QUERY_PAGE_MAX)`. Active and failed deals are found through the live-deal
    /// index, so a provider's repair loop asking for failed deals every tick never walks the
    /// closed deals, which pile up over the chain's life.
    pub fn deals_with_status(
        &self,
        status: &str,
        after: DealId,
        limit: usize,
        asset: Option<&AssetId>,
    ) -> Vec<DealView> {
        let matches = |deal: &&Deal| {
            deal.status.name() == status && asset.is_none_or(|asset| deal.asset == *asset)
        };
        let limit = limit.min(QUERY_PAGE_MAX);
        let from = after.saturating_add(1);
        if matches!(status, "active" | "failed") {
            return self
                .state
                .live_deals
                .range(from..)
                .filter_map(|(id, ())| self.state.deals.get(id))
                .filter(matches)
                .take(limit)
                .map(deal_view)
                .collect();
        }
        self.state
            .deals
            .range(from..)
            .map(|(_, deal)| deal)
            .filter(matches)
            .take(limit)
            .map(deal_view)
            .collect()
    }

    /// Whether `reader` may read `asset`'s data: one of its owners, or the holder of a license
    /// token for it that has not expired. A token minted by a training session's join does not
    /// count: in federated learning the data stays with its owners.
    pub fn may_read(&self, reader: &Address, asset: &AssetId) -> bool {
        if registry::require_owner(&self.state, *reader, *asset).is_ok() {
            return true;
        }
        let height = self.state.height;
        self.state
            .holders
            .range((*reader, 0)..)
            .take_while(|((holder, _), ())| holder == reader)
            .filter_map(|((_, id), ())| self.state.licenses.get(id))
            .any(|token| {
                token.asset == *asset
                    && !self.state.session_licenses.contains_key(&token.id)
                    && token
                        .terms
                        .expiry_height
                        .is_none_or(|expiry| height <= expiry)
            })
    }

    /// The storage epoch the next block falls in.
    pub fn storage_epoch(&self) -> u64 {
        crate::storage::epoch_of(self.state.height.saturating_add(1), &self.params)
    }

    /// A reward pool.
    pub fn reward_pool(&self, id: RewardPoolId) -> Option<RewardPoolView> {
        self.state.reward_pools.get(&id).map(reward_pool_view)
    }

    /// Reward pools by id, from `after` (exclusive), at most `min(limit, QUERY_PAGE_MAX)`.
    pub fn reward_pools(&self, after: RewardPoolId, limit: usize) -> Vec<RewardPoolView> {
        self.state
            .reward_pools
            .range(after.saturating_add(1)..)
            .take(limit.min(QUERY_PAGE_MAX))
            .map(|(_, pool)| reward_pool_view(pool))
            .collect()
    }

    /// A training session, with its participants and committed rounds (at most
    /// `TRAINING_ROUNDS_MAX`).
    pub fn training_session(&self, id: TrainingSessionId) -> Option<TrainingSessionView> {
        self.state
            .training_sessions
            .get(&id)
            .map(|session| training_session_view(&self.state, session))
    }

    /// Training sessions by id, from `after` (exclusive), at most `min(limit, QUERY_PAGE_MAX)`.
    pub fn training_sessions(
        &self,
        after: TrainingSessionId,
        limit: usize,
    ) -> Vec<TrainingSessionView> {
        self.state
            .training_sessions
            .range(after.saturating_add(1)..)
            .take(limit.min(QUERY_PAGE_MAX))
            .map(|(_, session)| training_session_view(&self.state, session))
            .collect()
    }

    /// The bill of materials of a model trained in a session.
    pub fn bill_of_materials(&self, model: &AssetId) -> Option<BillOfMaterialsView> {
        let bill = self.state.bills_of_materials.get(model)?;
        let session = self.state.training_sessions.get(&bill.session)?;
        Some(BillOfMaterialsView {
            model: bill.model,
            session: bill.session,
            trainer: session.trainer,
            aggregator: session.spec.aggregator,
            model_spec_root: session.spec.model_spec_root,
            task: session.spec.task.clone(),
            aggregation: session.spec.aggregation,
            secure_aggregation: session.spec.secure_aggregation,
            privacy: session.spec.privacy,
            inputs: bill
                .inputs
                .iter()
                .map(|input| MaterialInputView {
                    asset: input.asset,
                    contributor: input.contributor,
                    license_token: input.license_token,
                    royalty_bps: input.royalty_bps,
                    share_bps: input.share_bps,
                })
                .collect(),
            rounds: round_views(&self.state, session),
            epsilon_milli: bill.epsilon_milli,
            delta_atto: bill.delta_atto,
            report_root: bill.report_root,
            pool: session.pool,
            finalized_height: bill.finalized_height,
        })
    }
}

/// A session's committed rounds, in order.
fn round_views(state: &State, session: &TrainingSession) -> Vec<RoundCommitmentView> {
    state
        .training_rounds
        .range((session.id, 0)..=(session.id, u32::MAX))
        .map(|((_, round), commitment)| RoundCommitmentView {
            round: *round,
            aggregate_root: commitment.aggregate_root,
            participants: commitment.participants.clone(),
            committed_height: commitment.committed_height,
        })
        .collect()
}

fn training_session_view(state: &State, session: &TrainingSession) -> TrainingSessionView {
    TrainingSessionView {
        id: session.id,
        trainer: session.trainer,
        spec: session.spec.clone(),
        pool: session.pool,
        created_height: session.created_height,
        status: session.status().to_string(),
        participants: session
            .participants
            .iter()
            .map(|participant| SessionParticipantView {
                asset: participant.asset,
                owner: participant.owner,
                license_token: participant.license_token,
                joined_height: participant.joined_height,
            })
            .collect(),
        rounds_committed: session.rounds_committed,
        rounds: round_views(state, session),
        model: session.model,
        finalized_height: session.finalized_height,
    }
}

fn provider_view(address: Address, provider: &Provider) -> ProviderView {
    ProviderView {
        address,
        capacity_bytes: provider.capacity_bytes,
        committed_bytes: provider.committed_bytes,
        price_per_gib_epoch: provider.price_per_gib_epoch,
        endpoint: provider.endpoint.clone(),
    }
}

fn deal_view(deal: &Deal) -> DealView {
    DealView {
        id: deal.id,
        asset: deal.asset,
        shard_index: deal.shard_index,
        client: deal.client,
        provider: deal.provider,
        shard_root: deal.shard_root,
        shard_bytes: deal.shard_bytes,
        price_per_epoch: deal.price_per_epoch,
        epochs: deal.epochs,
        escrow: deal.escrow,
        bounty: deal.bounty,
        status: deal.status.name().to_string(),
        first_epoch: deal.first_epoch,
        epochs_paid: deal.epochs_paid,
        challenge_epoch: deal.challenge.map(|(epoch, _, _)| epoch),
        challenge_seed: deal.challenge.map(|(_, seed, _)| seed),
        challenge_answered: deal.challenge.is_some_and(|(_, _, answered)| answered),
    }
}

fn claim_view(
    evaluator: Address,
    claim: &tributary_types::ValuationClaim,
    submitted_height: u64,
    challenge_deadline_height: Option<u64>,
) -> ValuationView {
    ValuationView {
        evaluator,
        report_root: claim.report_root,
        shares: claim
            .shares
            .iter()
            .map(|(asset, bps)| AssetShareView {
                asset: *asset,
                bps: *bps,
            })
            .collect(),
        submitted_height,
        challenge_deadline_height,
    }
}

fn reward_pool_view(pool: &RewardPool) -> RewardPoolView {
    let status = if pool.paid_height.is_some() {
        "paid"
    } else if pool.challenge.is_some() {
        "challenged"
    } else if pool.valuation.is_some() {
        "valuated"
    } else {
        "open"
    };
    RewardPoolView {
        id: pool.id,
        funder: pool.funder,
        task: pool.task.clone(),
        test_set_root: pool.test_set_root,
        assets: pool.assets.clone(),
        amount: pool.amount,
        evaluator_stake: pool.evaluator_stake,
        challenge_window_blocks: pool.challenge_window_blocks,
        created_height: pool.created_height,
        status: status.to_string(),
        valuation: pool.valuation.as_ref().map(|valuation| {
            claim_view(
                valuation.evaluator,
                &valuation.claim,
                valuation.submitted_height,
                Some(valuation.challenge_deadline_height),
            )
        }),
        challenge: pool.challenge.as_ref().map(|challenge| ChallengeView {
            valuation: claim_view(
                challenge.challenger,
                &challenge.claim,
                challenge.filed_height,
                None,
            ),
            committee: challenge.committee.clone(),
            vote_deadline_height: (!challenge.committee.is_empty())
                .then_some(challenge.vote_deadline_height),
            votes: challenge
                .votes
                .iter()
                .map(|(verifier, for_challenger)| VoteView {
                    verifier: *verifier,
                    for_challenger: *for_challenger,
                })
                .collect(),
        }),
        paid_height: pool.paid_height,
    }
}
