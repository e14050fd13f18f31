//! royalty: how revenue arriving at an asset is split up its lineage and among owners.
//!
//! Revenue `R` arriving at asset `A` sends `floor(R × rate(P) / 10000)` to each parent `P`, where `rate(P)`
//! is the rate stored on `A`'s parent link (the snapshot from the license token `A` consumed), and that
//! amount is revenue arriving at `P` in turn. What is left goes to `A`'s owners by their shares, by largest
//! remainder: each owner gets `floor(left × bps / 10000)`, then the units still unassigned go one each to
//! the owners with the largest `(left × bps) mod 10000`, ties to the lowest address.
//!
//! **Diamonds.** When one payment reaches an ancestor along several paths, the amounts arriving in this
//! payment are summed before the ancestor's split (assets are processed in an order where each comes after
//! all its descendants in the lineage, smallest id first among those ready). The ancestor receives an
//! amount from every path, but the work is bounded by the number of ancestors (at most
//! `ASSET_ANCESTORS_MAX`) rather than the number of paths, which can grow exponentially in a DAG of
//! diamonds. Flooring happens once per asset on the summed amount, so an ancestor may receive a unit
//! more than per-path flooring would give it.
//!
//! Every unit of `R` ends at an owner: the sum of `RevenuePaid` events equals `R` exactly.

use crate::{bank, error::ExecutionError, registry, state::State};
use std::collections::{BTreeMap, BTreeSet};
use tributary_types::{
    Address, Amount, AssetId, Event, PayoutKind,
    limits::{ASSET_ANCESTORS_MAX, BASIS_POINTS_TOTAL},
};

/// `floor(amount × bps / 10000)` without overflow (`bps` ≤ 10000).
pub(crate) fn apply_bps(amount: Amount, bps: u16) -> Amount {
    let total = Amount::from(BASIS_POINTS_TOTAL);
    let bps = Amount::from(bps.min(BASIS_POINTS_TOTAL));
    (amount / total) * bps + (amount % total) * bps / total
}

/// Splits `amount` among `owners` (addresses, or any ordered key) by largest remainder (ties to the
/// lowest key). Owners' bps must sum to 10000; the result sums to `amount` exactly and is in the
/// owners' order.
pub(crate) fn split_by_shares<K: Ord + Copy>(
    amount: Amount,
    owners: &[(K, u16)],
) -> Vec<(K, Amount)> {
    let total = Amount::from(BASIS_POINTS_TOTAL);
    let quotient = amount / total;
    let rest = amount % total;
    let mut shares: Vec<(K, Amount)> = Vec::with_capacity(owners.len());
    let mut remainders: Vec<(Amount, K, usize)> = Vec::with_capacity(owners.len());
    let mut assigned: Amount = 0;
    for (index, (owner, bps)) in owners.iter().enumerate() {
        let bps = Amount::from(*bps);
        let share = quotient * bps + rest * bps / total;
        assigned += share;
        shares.push((*owner, share));
        remainders.push((rest * bps % total, *owner, index));
    }
    let mut leftover = amount - assigned;
    // Largest remainder first; among equal remainders the lowest address first.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, index) in remainders {
        if leftover == 0 {
            break;
        }
        shares[index].1 += 1;
        leftover -= 1;
    }
    shares
}

/// Takes `amount` from `payer` and distributes it as revenue arriving at `asset`. `amount` may be 0.
pub(crate) fn pay(
    state: &mut State,
    payer: Address,
    asset: AssetId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if !state.assets.contains_key(&asset) {
        return Err(ExecutionError::AssetNotFound(asset));
    }
    if amount == 0 {
        return Ok(());
    }
    bank::debit(state, payer, amount)?;
    events.push(Event::RevenueReceived {
        asset,
        payer,
        amount,
    });
    distribute(state, asset, amount, events)
}

/// Distributes `amount` (already taken from the payer) as revenue arriving at `source`.
pub(crate) fn distribute(
    state: &mut State,
    source: AssetId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    // The lineage: the source and all its ancestors, with each one's count of children in the set.
    let mut nodes = registry::ancestors_of(state, &[source], ASSET_ANCESTORS_MAX);
    nodes.insert(source);
    let mut waiting: BTreeMap<AssetId, usize> = nodes.iter().map(|id| (*id, 0)).collect();
    for id in &nodes {
        if let Some(asset) = state.assets.get(id) {
            for link in &asset.parents {
                if let Some(count) = waiting.get_mut(&link.asset) {
                    *count += 1;
                }
            }
        }
    }
    let mut arriving: BTreeMap<AssetId, Amount> = BTreeMap::new();
    arriving.insert(source, amount);
    let mut ready: BTreeSet<AssetId> = waiting
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut paid_total: Amount = 0;
    while let Some(id) = ready.pop_first() {
        let Some(asset) = state.assets.get(&id).cloned() else {
            continue;
        };
        let revenue = arriving.get(&id).copied().unwrap_or(0);
        let mut forwarded: Amount = 0;
        for link in &asset.parents {
            let share = apply_bps(revenue, link.royalty_bps);
            if share > 0 {
                forwarded = forwarded
                    .checked_add(share)
                    .ok_or(ExecutionError::Overflow)?;
                let entry = arriving.entry(link.asset).or_insert(0);
                *entry = entry.checked_add(share).ok_or(ExecutionError::Overflow)?;
                events.push(Event::RoyaltyForwarded {
                    from_asset: id,
                    to_asset: link.asset,
                    royalty_bps: link.royalty_bps,
                    amount: share,
                });
            }
            if let Some(count) = waiting.get_mut(&link.asset) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.insert(link.asset);
                }
            }
        }
        let left = revenue
            .checked_sub(forwarded)
            .ok_or(ExecutionError::Overflow)?;
        let kind = if id == source {
            PayoutKind::OwnerShare
        } else {
            PayoutKind::RoyaltyFromDescendant
        };
        for (owner, share) in split_by_shares(left, &asset.owners) {
            if share == 0 {
                continue;
            }
            bank::credit(state, owner, share)?;
            paid_total = paid_total
                .checked_add(share)
                .ok_or(ExecutionError::Overflow)?;
            events.push(Event::RevenuePaid {
                to: owner,
                amount: share,
                asset: id,
                source_asset: source,
                kind,
            });
        }
    }
    // Every unit reached an owner (assertion on the far side of the split; an error, never a panic).
    if paid_total != amount {
        return Err(ExecutionError::Overflow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_bps_is_exact_floor_without_overflow() {
        assert_eq!(apply_bps(10_000, 2_500), 2_500);
        assert_eq!(apply_bps(9_999, 1), 0);
        assert_eq!(apply_bps(u128::MAX, 10_000), u128::MAX);
        assert_eq!(apply_bps(u128::MAX, 5_000), u128::MAX / 2);
    }

    #[test]
    fn largest_remainder_ties_go_to_lowest_address() {
        let a = Address([1; 32]);
        let b = Address([2; 32]);
        let c = Address([3; 32]);
        // 3334 + 3333 + 3333: 1 unit -> remainders 3334, 3333, 3333 -> a.
        let owners = [(a, 3334), (b, 3333), (c, 3333)];
        assert_eq!(split_by_shares(1, &owners), vec![(a, 1), (b, 0), (c, 0)]);
        // Equal shares: 2 units among three -> a and b.
        let owners = [(a, 3333), (b, 3333), (c, 3334)];
        assert_eq!(split_by_shares(2, &owners), vec![(a, 1), (b, 0), (c, 1)]);
        let owners = [(a, 5000), (b, 5000)];
        assert_eq!(split_by_shares(3, &owners), vec![(a, 2), (b, 1)]);
        assert_eq!(
            split_by_shares(u128::MAX, &owners)
                .iter()
                .map(|(_, v)| *v)
                .sum::<u128>(),
            u128::MAX
        );
    }
}
