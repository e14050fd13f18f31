//! storage: providers, asset layouts, deals, per-epoch challenges from the beacon, proofs,
//! payments, slashing and repair.
//!
//! # Flow
//! 1. `RegisterProvider`: an account with a `storage_provider` bond of at least
//!    `provider_bond_min` offers capacity at a price per GiB-epoch, with an endpoint.
//! 2. `StoreAsset`: an owner records the asset's layout: manifest root, k data + m parity shards,
//!    shard size and every shard's BLAKE3 root. Deals and proofs are checked against it.
//! 3. `CreateDeal`: an owner proposes a deal for one shard with one provider for `epochs`
//!    epochs; the whole price, `ceil(shard_bytes × price_per_gib_epoch / 2^30)` per epoch, moves
//!    into the deal's escrow. `CancelDeal` returns it while the provider has not accepted.
//! 4. `AcceptDeal`: the provider, holding the shard (it checked the root on upload), accepts;
//!    challenges start at the next epoch. Capacity is committed.
//! 5. Each epoch's first block (height a multiple of `epoch_blocks`) challenges every active deal
//!    with the block's beacon: `challenges_per_deal` 1 KiB chunks drawn from (beacon, deal, epoch),
//!    fewer where their proof would not fit a transaction (`tributary_proof::challenge_chunks`).
//!    `SubmitProof` answers with a BLAKE3 tree proof of those chunks (the chunks and the chaining
//!    values beside their paths, `tributary_proof`), verified against the shard root; a valid
//!    proof pays the epoch's price from escrow to the provider. A proof that does not verify is
//!    refused and changes nothing: the provider may still send a valid one within the epoch.
//! 6. A challenge still unanswered when the next epoch starts slashes `storage_slash_bps` of the
//!    provider's stake: `repair_bounty_bps` of it is held as the deal's repair bounty, the rest
//!    goes to the client. The deal fails and awaits repair.
//! 7. `ClaimRepair`: another registered provider that rebuilt the shard (from any k others) takes
//!    the deal over for its remaining epochs; challenges resume next epoch, and its first
//!    accepted proof collects the bounty (a claim alone earns nothing).
//! 8. At its end epoch a deal closes: unspent escrow (unproven epochs) and an unclaimed bounty
//!    return to the client.
//!
//! The ledger never sees data: only roots, sizes and proofs, all checked deterministically.

use crate::{
    bank,
    error::ExecutionError,
    registry,
    royalty::apply_bps,
    stake,
    state::{Deal, DealStatus, Provider, State},
};
use tributary_types::{
    Address, Amount, AssetId, DealId, Event, Params, Role, StorageLayout,
    limits::{DEAL_EPOCHS_MAX, ENDPOINT_BYTES_MAX, STORAGE_SHARDS_MAX},
};

// Any proof a challenge asks for fits a `SubmitProof` transaction.
const _: () = assert!(
    tributary_proof::limits::PROOF_BUDGET_BYTES <= tributary_types::limits::STORAGE_PROOF_BYTES_MAX
);

/// Bytes in a GiB: prices are per GiB-epoch.
pub const GIB_BYTES: u64 = 1 << 30;

/// The epoch a height falls in (`epoch_blocks` of 0 is treated as 1).
pub fn epoch_of(height: u64, params: &Params) -> u64 {
    height / params.epoch_blocks.max(1)
}

/// `ceil(bytes × price_per_gib_epoch / GiB)`: one epoch's price for `bytes`.
pub fn epoch_price(bytes: u64, price_per_gib_epoch: Amount) -> Result<Amount, ExecutionError> {
    let total = Amount::from(bytes)
        .checked_mul(price_per_gib_epoch)
        .ok_or(ExecutionError::Overflow)?;
    Ok(total.div_ceil(Amount::from(GIB_BYTES)))
}

fn check_provider_bond(
    state: &State,
    params: &Params,
    provider: Address,
) -> Result<(), ExecutionError> {
    let bonded = state.bond(&provider, Role::StorageProvider);
    if bonded < params.provider_bond_min {
        return Err(ExecutionError::ProviderBondTooSmall {
            provider,
            bonded,
            needed: params.provider_bond_min,
        });
    }
    Ok(())
}

/// `RegisterProvider`.
pub(crate) fn register_provider(
    state: &mut State,
    params: &Params,
    provider: Address,
    capacity_bytes: u64,
    price_per_gib_epoch: Amount,
    endpoint: &str,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    check_provider_bond(state, params, provider)?;
    if endpoint.is_empty() || endpoint.len() > ENDPOINT_BYTES_MAX {
        return Err(ExecutionError::BadEndpoint {
            len: endpoint.len(),
            max: ENDPOINT_BYTES_MAX,
        });
    }
    let committed_bytes = state
        .providers
        .get(&provider)
        .map_or(0, |existing| existing.committed_bytes);
    if capacity_bytes == 0 || capacity_bytes < committed_bytes {
        return Err(ExecutionError::BadCapacity {
            capacity_bytes,
            committed_bytes,
        });
    }
    state.set_provider(
        provider,
        Provider {
            capacity_bytes,
            committed_bytes,
            price_per_gib_epoch,
            endpoint: endpoint.to_string(),
        },
    );
    events.push(Event::ProviderRegistered {
        provider,
        capacity_bytes,
        price_per_gib_epoch,
    });
    Ok(())
}

/// `StoreAsset`.
pub(crate) fn store_asset(
    state: &mut State,
    owner: Address,
    asset: AssetId,
    layout: &StorageLayout,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    registry::require_owner(state, owner, asset)?;
    if state.layouts.contains_key(&asset) {
        return Err(ExecutionError::AlreadyStored(asset));
    }
    let shards = usize::from(layout.data_shards) + usize::from(layout.parity_shards);
    if layout.data_shards == 0
        || shards > STORAGE_SHARDS_MAX
        || layout.shard_roots.len() != shards
        || layout.shard_bytes == 0
    {
        return Err(ExecutionError::BadLayout {
            data_shards: layout.data_shards,
            parity_shards: layout.parity_shards,
            roots: layout.shard_roots.len(),
        });
    }
    state.set_layout(asset, layout.clone());
    events.push(Event::AssetStored {
        asset,
        shards: u8::try_from(shards).unwrap_or(u8::MAX),
        shard_bytes: layout.shard_bytes,
    });
    Ok(())
}

/// `CreateDeal`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_deal(
    state: &mut State,
    params: &Params,
    client: Address,
    asset: AssetId,
    shard_index: u8,
    provider: Address,
    epochs: u32,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    registry::require_owner(state, client, asset)?;
    let layout = state
        .layouts
        .get(&asset)
        .cloned()
        .ok_or(ExecutionError::NotStored(asset))?;
    let shard_root =
        *layout
            .shard_roots
            .get(usize::from(shard_index))
            .ok_or(ExecutionError::NoSuchShard {
                asset,
                shard_index,
                shards: layout.shard_roots.len(),
            })?;
    let offer = state
        .providers
        .get(&provider)
        .cloned()
        .ok_or(ExecutionError::ProviderNotFound(provider))?;
    check_provider_bond(state, params, provider)?;
    if epochs == 0 || epochs > DEAL_EPOCHS_MAX {
        return Err(ExecutionError::BadDealEpochs {
            epochs,
            max: DEAL_EPOCHS_MAX,
        });
    }
    let price_per_epoch = epoch_price(layout.shard_bytes, offer.price_per_gib_epoch)?;
    let escrow = price_per_epoch
        .checked_mul(Amount::from(epochs))
        .ok_or(ExecutionError::Overflow)?;
    bank::debit(state, client, escrow)?;
    let id = state.next_deal_id;
    state.set_next_deal_id(id.checked_add(1).ok_or(ExecutionError::Overflow)?);
    state.set_deal(Deal {
        id,
        asset,
        shard_index,
        client,
        provider,
        shard_root,
        shard_bytes: layout.shard_bytes,
        price_per_epoch,
        epochs,
        escrow,
        bounty: 0,
        status: DealStatus::Proposed,
        first_epoch: 0,
        epochs_paid: 0,
        challenge: None,
        created_height: state.height,
    });
    events.push(Event::DealCreated {
        deal: id,
        asset,
        shard_index,
        provider,
        escrow,
    });
    Ok(())
}

fn deal(state: &State, id: DealId) -> Result<Deal, ExecutionError> {
    state
        .deals
        .get(&id)
        .cloned()
        .ok_or(ExecutionError::DealNotFound(id))
}

/// The deal, when `provider` is its provider and it is in `status`.
fn provider_deal(
    state: &State,
    id: DealId,
    provider: Address,
    status: DealStatus,
) -> Result<Deal, ExecutionError> {
    let deal = deal(state, id)?;
    if deal.provider != provider {
        return Err(ExecutionError::NotDealProvider { deal: id, provider });
    }
    if deal.status != status {
        return Err(wrong_status(&deal));
    }
    Ok(deal)
}

fn wrong_status(deal: &Deal) -> ExecutionError {
    ExecutionError::DealStatus {
        deal: deal.id,
        status: deal.status.name(),
    }
}

/// Commits `bytes` of `provider`'s capacity.
fn commit_capacity(state: &mut State, provider: Address, bytes: u64) -> Result<(), ExecutionError> {
    let mut offer = state
        .providers
        .get(&provider)
        .cloned()
        .ok_or(ExecutionError::ProviderNotFound(provider))?;
    let committed = offer
        .committed_bytes
        .checked_add(bytes)
        .ok_or(ExecutionError::Overflow)?;
    if committed > offer.capacity_bytes {
        return Err(ExecutionError::CapacityExceeded {
            provider,
            capacity_bytes: offer.capacity_bytes,
            needed_bytes: committed,
        });
    }
    offer.committed_bytes = committed;
    state.set_provider(provider, offer);
    Ok(())
}

fn release_capacity(state: &mut State, provider: Address, bytes: u64) {
    if let Some(mut offer) = state.providers.get(&provider).cloned() {
        offer.committed_bytes = offer.committed_bytes.saturating_sub(bytes);
        state.set_provider(provider, offer);
    }
}

/// `AcceptDeal`.
pub(crate) fn accept_deal(
    state: &mut State,
    params: &Params,
    provider: Address,
    id: DealId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut deal = provider_deal(state, id, provider, DealStatus::Proposed)?;
    check_provider_bond(state, params, provider)?;
    commit_capacity(state, provider, deal.shard_bytes)?;
    deal.first_epoch = epoch_of(state.height, params).saturating_add(1);
    deal.status = DealStatus::Active;
    events.push(Event::DealAccepted {
        deal: id,
        provider,
        first_epoch: deal.first_epoch,
    });
    state.set_deal(deal);
    Ok(())
}

/// Closes a deal: unspent escrow and any bounty back to the client.
fn close(
    state: &mut State,
    mut deal: Deal,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let refund = deal
        .escrow
        .checked_add(deal.bounty)
        .ok_or(ExecutionError::Overflow)?;
    bank::credit(state, deal.client, refund)?;
    if deal.status == DealStatus::Active {
        release_capacity(state, deal.provider, deal.shard_bytes);
    }
    deal.escrow = 0;
    deal.bounty = 0;
    deal.status = DealStatus::Closed;
    events.push(Event::DealClosed {
        deal: deal.id,
        reason: reason.to_string(),
        refund,
    });
    state.set_deal(deal);
    Ok(())
}

/// `CancelDeal`.
pub(crate) fn cancel_deal(
    state: &mut State,
    client: Address,
    id: DealId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let deal = deal(state, id)?;
    if deal.client != client {
        return Err(ExecutionError::NotDealClient { deal: id, client });
    }
    if deal.status != DealStatus::Proposed {
        return Err(wrong_status(&deal));
    }
    close(state, deal, "cancelled", events)
}

/// `SubmitProof`.
pub(crate) fn submit_proof(
    state: &mut State,
    params: &Params,
    provider: Address,
    id: DealId,
    epoch: u64,
    proof: &[u8],
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut deal = provider_deal(state, id, provider, DealStatus::Active)?;
    let Some((challenged, seed, answered)) = deal.challenge else {
        return Err(ExecutionError::NoStorageChallenge { deal: id, epoch });
    };
    if challenged != epoch || answered {
        return Err(ExecutionError::NoStorageChallenge { deal: id, epoch });
    }
    let chunks = tributary_proof::challenge_chunks(
        seed.0,
        id,
        epoch,
        deal.shard_bytes,
        usize::from(params.challenges_per_deal.max(1)),
    );
    tributary_proof::StorageProof::decode(proof)
        .and_then(|decoded| decoded.verify(&deal.shard_root.0, deal.shard_bytes, &chunks))
        .map_err(|error| ExecutionError::BadStorageProof {
            deal: id,
            reason: error.to_string(),
        })?;
    let payment = deal.price_per_epoch.min(deal.escrow);
    deal.escrow -= payment;
    deal.epochs_paid = deal.epochs_paid.saturating_add(1);
    deal.challenge = Some((challenged, seed, true));
    bank::credit(state, provider, payment)?;
    events.push(Event::ProofAccepted {
        deal: id,
        epoch,
        provider,
        payment,
    });
    // A repairer's first accepted proof shows it rebuilt the shard: it earns the bounty now.
    if deal.bounty > 0 {
        let bounty = deal.bounty;
        bank::credit(state, provider, bounty)?;
        deal.bounty = 0;
        events.push(Event::RepairBountyPaid {
            deal: id,
            provider,
            bounty,
        });
    }
    state.set_deal(deal);
    Ok(())
}

/// `ClaimRepair`.
pub(crate) fn claim_repair(
    state: &mut State,
    params: &Params,
    provider: Address,
    id: DealId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut deal = deal(state, id)?;
    if deal.status != DealStatus::Failed {
        return Err(wrong_status(&deal));
    }
    if deal.provider == provider {
        return Err(ExecutionError::OwnFailedDeal { deal: id });
    }
    if !state.providers.contains_key(&provider) {
        return Err(ExecutionError::ProviderNotFound(provider));
    }
    check_provider_bond(state, params, provider)?;
    commit_capacity(state, provider, deal.shard_bytes)?;
    // The bounty stays in the deal until the repairer's first accepted proof (`submit_proof`):
    // a claim alone proves nothing, and a claimant that misses its first challenge is slashed
    // like any provider, its slash adding to the bounty for the next repairer.
    deal.provider = provider;
    deal.status = DealStatus::Active;
    deal.challenge = None;
    events.push(Event::DealRepaired {
        deal: id,
        provider,
        bounty: deal.bounty,
    });
    state.set_deal(deal);
    Ok(())
}

/// At each epoch's first block: fails deals whose last challenge went unanswered, closes deals
/// past their end, and challenges every other active deal with the block's beacon. A deal whose
/// step fails (an overflow) is left as it was and retried next epoch.
pub(crate) fn begin_block(state: &mut State, params: &Params, events: &mut Vec<Event>) {
    let epoch_blocks = params.epoch_blocks.max(1);
    if !state.height.is_multiple_of(epoch_blocks) {
        return;
    }
    let epoch = state.height / epoch_blocks;
    let beacon = state.beacon;
    let live: Vec<DealId> = state.live_deals.keys().copied().collect();
    let mut challenged: u64 = 0;
    for id in live {
        let Some(deal) = state.deals.get(&id).cloned() else {
            continue;
        };
        // Each deal's step lands whole or not at all (see `State::atomically`).
        match state.atomically(events, |state, events| {
            epoch_step(state, params, deal, epoch, beacon, events)
        }) {
            Ok(issued) => challenged += u64::from(issued),
            Err(error) => {
                tracing::warn!(target: "tributary::ledger", deal = id, %error, "storage epoch step failed; retrying next epoch");
            }
        }
    }
    if challenged > 0 {
        events.push(Event::StorageChallengesIssued {
            epoch,
            deals: challenged,
        });
    }
}

/// One deal's epoch step; returns whether it was challenged.
fn epoch_step(
    state: &mut State,
    params: &Params,
    mut deal: Deal,
    epoch: u64,
    beacon: Option<tributary_types::Hash32>,
    events: &mut Vec<Event>,
) -> Result<bool, ExecutionError> {
    if deal.status == DealStatus::Active
        && let Some((challenged, _, false)) = deal.challenge
        && challenged < epoch
    {
        // Missed: slash, hold the bounty, compensate the client, await repair.
        let staked = stake::staked(state, &deal.provider, Role::StorageProvider);
        let penalty = apply_bps(staked, params.storage_slash_bps);
        let bounty = apply_bps(penalty, params.repair_bounty_bps);
        let taken = stake::slash(
            state,
            deal.provider,
            Role::StorageProvider,
            penalty,
            deal.client,
            events,
        )?;
        // The bounty part moves from the client's compensation into the deal.
        let held = bounty.min(taken);
        bank::debit(state, deal.client, held)?;
        deal.bounty = deal
            .bounty
            .checked_add(held)
            .ok_or(ExecutionError::Overflow)?;
        release_capacity(state, deal.provider, deal.shard_bytes);
        events.push(Event::ProofMissed {
            deal: deal.id,
            epoch: challenged,
            provider: deal.provider,
            slashed: taken,
        });
        deal.status = DealStatus::Failed;
        deal.challenge = None;
    }
    if epoch >= deal.end_epoch() {
        close(state, deal, "completed", events)?;
        return Ok(false);
    }
    if deal.status == DealStatus::Active
        && epoch >= deal.first_epoch
        && let Some(seed) = beacon
    {
        deal.challenge = Some((epoch, seed, false));
        state.set_deal(deal);
        return Ok(true);
    }
    state.set_deal(deal);
    Ok(false)
}

/// The module through blocks: providers, layout, deals, challenges, proofs, a miss, a repair.
#[cfg(test)]
mod flow_tests {
    use super::*;
    use crate::tests::{Fixture, addr, asset_id, register};
    use tributary_types::{Call, Hash32, ReceiptStatus, Terms};

    const OWNER: u8 = 1;
    const PROVIDERS: [u8; 3] = [10, 11, 12];
    const SHARD_BYTES: usize = 5_000;

    struct Setup {
        fixture: Fixture,
        asset: AssetId,
        shards: Vec<Vec<u8>>,
    }

    fn shard(index: u8) -> Vec<u8> {
        (0..SHARD_BYTES)
            .map(|i| {
                (i as u8)
                    .wrapping_mul(31)
                    .wrapping_add(index.wrapping_mul(97))
            })
            .collect()
    }

    fn layout(shards: &[Vec<u8>]) -> StorageLayout {
        StorageLayout {
            manifest_root: Hash32([5; 32]),
            data_shards: 2,
            parity_shards: 1,
            shard_bytes: SHARD_BYTES as u64,
            shard_roots: shards
                .iter()
                .map(|shard| Hash32(*blake3::hash(shard).as_bytes()))
                .collect(),
        }
    }

    fn setup() -> Setup {
        let mut allocations: Vec<(Address, Amount)> = vec![(addr(OWNER), 10_000_000)];
        for provider in PROVIDERS {
            allocations.push((addr(provider), 100_000));
        }
        let mut fixture = Fixture::new(&allocations);
        let asset = asset_id(1);
        fixture.ok(addr(OWNER), register(asset, vec![], Terms::default()));
        for provider in PROVIDERS {
            fixture.ok(
                addr(provider),
                Call::Bond {
                    role: Role::StorageProvider,
                    amount: 10_000,
                },
            );
            fixture.ok(
                addr(provider),
                Call::RegisterProvider {
                    capacity_bytes: 1 << 20,
                    // One base unit per byte per epoch.
                    price_per_gib_epoch: Amount::from(GIB_BYTES),
                    endpoint: format!("node-{provider}"),
                },
            );
        }
        let shards: Vec<Vec<u8>> = (0..3).map(shard).collect();
        fixture.ok(
            addr(OWNER),
            Call::StoreAsset {
                asset,
                layout: layout(&shards),
            },
        );
        Setup {
            fixture,
            asset,
            shards,
        }
    }

    /// Runs empty blocks until the next block is an epoch's first; runs it and returns its events.
    fn next_epoch(fixture: &mut Fixture) -> Vec<Event> {
        let epoch_blocks = fixture.ledger.params().epoch_blocks;
        while !(fixture.ledger.height() + 1).is_multiple_of(epoch_blocks) {
            fixture.block(vec![]);
        }
        fixture.block(vec![]).block_events
    }

    fn prove(fixture: &Fixture, deal: DealId, shard: &[u8]) -> (u64, Vec<u8>) {
        let view = fixture.ledger.deal(deal).unwrap();
        let epoch = view.challenge_epoch.unwrap();
        let chunks = tributary_proof::challenge_chunks(
            view.challenge_seed.unwrap().0,
            deal,
            epoch,
            view.shard_bytes,
            usize::from(fixture.ledger.params().challenges_per_deal),
        );
        let proof = tributary_proof::prove(shard, &chunks).unwrap().encode();
        (epoch, proof)
    }

    #[test]
    fn deal_is_challenged_proven_paid_missed_slashed_repaired_and_closed() {
        let Setup {
            mut fixture,
            asset,
            shards,
        } = setup();
        let supply = fixture.ledger.total_supply();
        let owner = addr(OWNER);
        let (first, second) = (addr(PROVIDERS[0]), addr(PROVIDERS[1]));
        let events = fixture.ok(
            owner,
            Call::CreateDeal {
                asset,
                shard_index: 0,
                provider: first,
                epochs: 4,
            },
        );
        assert!(matches!(
            events[0],
            Event::DealCreated { deal: 1, escrow, .. } if escrow == 4 * SHARD_BYTES as Amount
        ));
        assert_eq!(fixture.ledger.total_supply(), supply);
        fixture.fails(second, Call::AcceptDeal { deal: 1 }, "not_deal_provider");
        fixture.ok(first, Call::AcceptDeal { deal: 1 });
        fixture.fails(owner, Call::CancelDeal { deal: 1 }, "deal_status");
        assert_eq!(
            fixture.ledger.provider(&first).unwrap().committed_bytes,
            SHARD_BYTES as u64
        );

        // Epoch 1: challenged, proven, paid.
        let events = next_epoch(&mut fixture);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::StorageChallengesIssued { deals: 1, .. }))
        );
        let (epoch, proof) = prove(&fixture, 1, &shards[0]);
        let (_, wrong) = prove(&fixture, 1, &shards[1]);
        fixture.fails(
            first,
            Call::SubmitProof {
                deal: 1,
                epoch,
                proof: wrong,
            },
            "bad_storage_proof",
        );
        fixture.fails(
            first,
            Call::SubmitProof {
                deal: 1,
                epoch: epoch + 1,
                proof: proof.clone(),
            },
            "no_storage_challenge",
        );
        let before = fixture.ledger.balance(&first);
        let events = fixture.ok(
            first,
            Call::SubmitProof {
                deal: 1,
                epoch,
                proof: proof.clone(),
            },
        );
        assert!(
            matches!(events[0], Event::ProofAccepted { payment, .. } if payment == SHARD_BYTES as Amount)
        );
        // Paid the epoch's price, less this transaction's fee.
        assert_eq!(
            fixture.ledger.balance(&first),
            before + SHARD_BYTES as Amount - 1
        );
        fixture.fails(
            first,
            Call::SubmitProof {
                deal: 1,
                epoch,
                proof,
            },
            "no_storage_challenge",
        );

        // Epoch 2: challenged, not answered. Epoch 3 starts: slashed, deal fails.
        next_epoch(&mut fixture);
        let events = next_epoch(&mut fixture);
        let params = fixture.ledger.params().clone();
        let penalty = apply_bps(10_000, params.storage_slash_bps);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::ProofMissed { deal: 1, slashed, .. } if *slashed == penalty
        )));
        let view = fixture.ledger.deal(1).unwrap();
        assert_eq!(view.status, "failed");
        // Listed by status, through the live-deal index for active and failed ones.
        let listed = |ledger: &crate::Ledger, status: &str, after: u64| -> Vec<u64> {
            ledger
                .deals_with_status(status, after, 10, Some(&view.asset))
                .iter()
                .map(|deal| deal.id)
                .collect()
        };
        assert_eq!(listed(&fixture.ledger, "failed", 0), [1]);
        // Not closed: still the failed provider's deal.
        let of = |ledger: &crate::Ledger, provider: &Address| -> Vec<u64> {
            ledger
                .provider_deals(provider)
                .iter()
                .map(|deal| deal.id)
                .collect()
        };
        assert_eq!(of(&fixture.ledger, &first), [1]);
        assert!(of(&fixture.ledger, &second).is_empty());
        assert!(listed(&fixture.ledger, "failed", 1).is_empty());
        assert!(listed(&fixture.ledger, "active", 0).is_empty());
        assert!(listed(&fixture.ledger, "closed", 0).is_empty());
        assert_eq!(view.bounty, apply_bps(penalty, params.repair_bounty_bps));
        assert_eq!(fixture.ledger.provider(&first).unwrap().committed_bytes, 0);
        assert_eq!(fixture.ledger.total_supply(), supply);

        // Another provider rebuilds the shard and takes the deal over; the bounty waits for its
        // first proof.
        fixture.fails(first, Call::ClaimRepair { deal: 1 }, "own_failed_deal");
        let repairer_before = fixture.ledger.balance(&second);
        let events = fixture.ok(second, Call::ClaimRepair { deal: 1 });
        assert!(matches!(events[0], Event::DealRepaired { bounty, .. } if bounty == view.bounty));
        assert_eq!(
            fixture.ledger.balance(&second),
            repairer_before - 1,
            "only the fee"
        );
        assert_eq!(fixture.ledger.deal(1).unwrap().bounty, view.bounty);
        assert_eq!(fixture.ledger.total_supply(), supply);
        assert_eq!(listed(&fixture.ledger, "active", 0), [1]);
        assert!(listed(&fixture.ledger, "failed", 0).is_empty());
        // The deal moved to the repairer: listed under it, no longer under the failed provider.
        assert_eq!(of(&fixture.ledger, &second), [1]);
        assert!(of(&fixture.ledger, &first).is_empty());
        let events = next_epoch(&mut fixture);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::StorageChallengesIssued { .. }))
        );
        let (epoch, proof) = prove(&fixture, 1, &shards[0]);
        let repairer_before = fixture.ledger.balance(&second);
        let events = fixture.ok(
            second,
            Call::SubmitProof {
                deal: 1,
                epoch,
                proof,
            },
        );
        let paid = events
            .iter()
            .find_map(|event| match event {
                Event::RepairBountyPaid {
                    bounty, provider, ..
                } if *provider == second => Some(*bounty),
                _ => None,
            })
            .expect("the first proof pays the bounty");
        assert_eq!(paid, view.bounty);
        // The epoch's price and the bounty, less the fee.
        assert_eq!(
            fixture.ledger.balance(&second),
            repairer_before + SHARD_BYTES as Amount + paid - 1
        );
        assert_eq!(fixture.ledger.deal(1).unwrap().bounty, 0);
        assert_eq!(fixture.ledger.total_supply(), supply);
        // Epoch 5 = first_epoch + epochs: the deal closes; the unproven epochs' price returns.
        let owner_before = fixture.ledger.balance(&owner);
        let events = next_epoch(&mut fixture);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::DealClosed { deal: 1, refund, .. } if *refund == 2 * SHARD_BYTES as Amount
        )));
        assert_eq!(
            fixture.ledger.balance(&owner),
            owner_before + 2 * SHARD_BYTES as Amount
        );
        assert_eq!(fixture.ledger.deal(1).unwrap().status, "closed");
        assert_eq!(listed(&fixture.ledger, "closed", 0), [1]);
        assert!(listed(&fixture.ledger, "active", 0).is_empty());
        assert!(of(&fixture.ledger, &second).is_empty(), "closed");
        assert_eq!(fixture.ledger.provider(&second).unwrap().committed_bytes, 0);
        assert_eq!(fixture.ledger.total_supply(), supply);
    }

    #[test]
    fn error_paths_have_stable_codes() {
        let Setup {
            mut fixture,
            asset,
            shards,
        } = setup();
        let owner = addr(OWNER);
        let stranger = addr(PROVIDERS[2]);
        let outsider = addr(99);
        fixture.fails(
            owner,
            Call::RegisterProvider {
                capacity_bytes: 1,
                price_per_gib_epoch: 1,
                endpoint: "x".into(),
            },
            "provider_bond_too_small",
        );
        fixture.fails(
            stranger,
            Call::RegisterProvider {
                capacity_bytes: 1,
                price_per_gib_epoch: 1,
                endpoint: String::new(),
            },
            "bad_endpoint",
        );
        fixture.fails(
            stranger,
            Call::StoreAsset {
                asset,
                layout: layout(&shards),
            },
            "not_an_owner",
        );
        fixture.fails(
            owner,
            Call::StoreAsset {
                asset,
                layout: layout(&shards),
            },
            "already_stored",
        );
        let other = asset_id(2);
        fixture.ok(owner, register(other, vec![], Terms::default()));
        let mut bad = layout(&shards);
        bad.data_shards = 3;
        fixture.fails(
            owner,
            Call::StoreAsset {
                asset: other,
                layout: bad,
            },
            "bad_layout",
        );
        let deal = |asset, shard_index, provider, epochs| Call::CreateDeal {
            asset,
            shard_index,
            provider,
            epochs,
        };
        fixture.fails(owner, deal(other, 0, stranger, 1), "not_stored");
        fixture.fails(owner, deal(asset, 3, stranger, 1), "no_such_shard");
        fixture.fails(owner, deal(asset, 0, outsider, 1), "provider_not_found");
        fixture.fails(owner, deal(asset, 0, stranger, 0), "bad_deal_epochs");
        fixture.fails(stranger, deal(asset, 0, stranger, 1), "not_an_owner");
        fixture.ok(owner, deal(asset, 0, stranger, 1));
        fixture.fails(stranger, Call::CancelDeal { deal: 1 }, "not_deal_client");
        fixture.fails(owner, Call::ClaimRepair { deal: 1 }, "deal_status");
        fixture.fails(owner, Call::AcceptDeal { deal: 7 }, "deal_not_found");
        // Capacity: a provider offering less than a shard cannot accept.
        fixture.ok(
            stranger,
            Call::RegisterProvider {
                capacity_bytes: 10,
                price_per_gib_epoch: 1,
                endpoint: "small".into(),
            },
        );
        fixture.fails(stranger, Call::AcceptDeal { deal: 1 }, "capacity_exceeded");
        let before = fixture.ledger.balance(&owner);
        let receipt = fixture.call(owner, Call::CancelDeal { deal: 1 });
        assert_eq!(receipt.status, ReceiptStatus::Success);
        // The deal was priced when created (one unit per byte per epoch, one epoch): all of it
        // returns, less the fee.
        assert_eq!(
            fixture.ledger.balance(&owner),
            before + SHARD_BYTES as Amount - 1
        );
        assert_eq!(fixture.ledger.deal(1).unwrap().status, "closed");
    }

    #[test]
    fn epoch_price_rounds_up_per_byte() {
        assert_eq!(epoch_price(1, 1).unwrap(), 1);
        assert_eq!(epoch_price(GIB_BYTES, 7).unwrap(), 7);
        assert_eq!(epoch_price(GIB_BYTES + 1, 1).unwrap(), 2);
        assert_eq!(epoch_price(0, 100).unwrap(), 0);
        assert!(epoch_price(u64::MAX, Amount::MAX).is_err());
    }
}
