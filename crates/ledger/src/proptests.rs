//! Property tests: conservation, exact royalty splits on random lineage DAGs, deterministic replay, and
//! failed calls changing nothing but fee and nonce. Transactions are unsigned here (signature checks are
//! covered by the signed tests), which keeps these fast.

use crate::tests::{Fixture, addr, asset_id, derivative_terms, register};
use proptest::prelude::*;
use tributary_types::{
    Address, Amount, AssetKind, Call, Event, ReceiptStatus, RegisterAsset, Role, Terms,
};

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::StorageProvider),
        Just(Role::Verifier),
        Just(Role::ComputeProvider)
    ]
}

/// Calls among 4 accounts and 6 possible assets; amounts small enough to succeed sometimes and large
/// enough to fail sometimes.
fn call() -> impl Strategy<Value = (u8, Call)> {
    let sender = 1u8..=4;
    let amount = prop_oneof![0u128..2_000, Just(u128::MAX)];
    let asset = (0u64..6).prop_map(asset_id);
    prop_oneof![
        (sender.clone(), 1u8..=5, amount.clone()).prop_map(|(s, to, amount)| (
            s,
            Call::Transfer {
                to: addr(to),
                amount
            }
        )),
        (sender.clone(), role(), amount.clone())
            .prop_map(|(s, role, amount)| (s, Call::Bond { role, amount })),
        (sender.clone(), role(), amount.clone())
            .prop_map(|(s, role, amount)| (s, Call::Unbond { role, amount })),
        (
            sender.clone(),
            asset.clone(),
            0u16..4_000,
            0u128..500,
            proptest::option::of((asset.clone(), 1u64..8))
        )
            .prop_map(|(s, id, rate, price, parent)| {
                (
                    s,
                    register(
                        id,
                        parent.into_iter().collect(),
                        derivative_terms(rate, price),
                    ),
                )
            }),
        (sender.clone(), asset.clone()).prop_map(|(s, asset)| (s, Call::BuyLicense { asset })),
        (sender.clone(), asset.clone(), amount)
            .prop_map(|(s, asset, amount)| (s, Call::PayRevenue { asset, amount })),
        (sender, asset, 0u16..12_000, 0u128..500).prop_map(|(s, asset, rate, price)| (
            s,
            Call::UpdateTerms {
                asset,
                terms: derivative_terms(rate, price)
            }
        )),
    ]
}

fn genesis() -> Vec<(Address, Amount)> {
    (1..=4).map(|i| (addr(i), 5_000)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Total supply is conserved, failed calls change only fee and nonce, and replay gives the same roots.
    #[test]
    fn random_transactions_conserve_supply_and_replay(calls in proptest::collection::vec(call(), 1..40), split in 1usize..6) {
        let mut fixture = Fixture::new(&genesis());
        let supply = fixture.ledger.total_supply();
        let mut roots = Vec::new();
        for (sender, call) in &calls {
            let before = fixture.ledger.clone();
            let receipt = fixture.call(addr(*sender), call.clone());
            prop_assert_eq!(fixture.ledger.total_supply(), supply);
            if let ReceiptStatus::Failed { .. } = receipt.status {
                let mut noop = Fixture { ledger: before };
                noop.ok(addr(*sender), Call::Transfer { to: addr(*sender), amount: 0 });
                prop_assert_eq!(noop.ledger.state_root(), fixture.ledger.state_root());
            }
            roots.push(fixture.ledger.state_root());
        }
        // Replay: the same blocks give the same roots.
        let mut replay = Fixture::new(&genesis());
        for (index, (sender, call)) in calls.iter().enumerate() {
            replay.call(addr(*sender), call.clone());
            prop_assert_eq!(replay.ledger.state_root(), roots[index]);
        }
        // The same transactions in fewer, larger blocks conserve supply too.
        let mut batched = Fixture::new(&genesis());
        for chunk in calls.chunks(split) {
            batched.block(chunk.iter().map(|(sender, call)| (addr(*sender), call.clone())).collect());
            prop_assert_eq!(batched.ledger.total_supply(), supply);
        }
    }

    /// On random lineage DAGs (with diamonds), payouts sum to the revenue exactly.
    #[test]
    fn royalty_payouts_sum_to_revenue(
        assets in proptest::collection::vec(
            (
                proptest::collection::btree_set(0usize..64, 0..4),
                0u16..3_000,
                proptest::collection::vec(1u16..100, 1..5),
            ),
            1..12,
        ),
        target in 0usize..64,
        revenue in prop_oneof![1u128..1_000_000, (1u128 << 100)..(1u128 << 110)],
    ) {
        let payer = addr(200);
        let mut fixture = Fixture::new(&[(addr(1), 1 << 40), (payer, 1u128 << 120)]);
        for (index, (parent_picks, rate, weights)) in assets.iter().enumerate() {
            let parents: Vec<u64> = if index == 0 {
                vec![]
            } else {
                parent_picks.iter().map(|pick| (*pick % index) as u64).collect::<std::collections::BTreeSet<_>>().into_iter().collect()
            };
            let mut links = Vec::new();
            for parent in parents {
                let token = fixture.buy(addr(1), asset_id(parent));
                links.push((asset_id(parent), token));
            }
            // Owner shares from weights, summing to 10000 exactly.
            let total: u32 = weights.iter().map(|w| u32::from(*w)).sum();
            let mut owners: Vec<(Address, u16)> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| (addr(10 + i as u8), (u32::from(*w) * 10_000 / total) as u16))
                .collect();
            let assigned: u16 = owners.iter().map(|(_, bps)| *bps).sum();
            owners[0].1 += 10_000 - assigned;
            owners.retain(|(_, bps)| *bps > 0);
            fixture.ok(addr(1), Call::RegisterAsset(RegisterAsset {
                content_root: asset_id(index as u64),
                kind: AssetKind::Dataset,
                name: format!("asset {index}"),
                byte_size: 1,
                owners,
                parents: links,
                terms: derivative_terms(*rate, 0),
            }));
        }
        let asset = asset_id((target % assets.len()) as u64);
        let before: Vec<Amount> = (10..15).map(|i| fixture.ledger.balance(&addr(i))).collect();
        let events = fixture.ok(payer, Call::PayRevenue { asset, amount: revenue });
        let after: Vec<Amount> = (10..15).map(|i| fixture.ledger.balance(&addr(i))).collect();
        let gained: Amount = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        prop_assert_eq!(gained, revenue);
        let paid: Amount = events.iter().filter_map(|event| match event {
            Event::RevenuePaid { amount, .. } => Some(*amount),
            _ => None,
        }).sum();
        prop_assert_eq!(paid, revenue);
    }

    /// A reward pool pays its amount exactly, whatever the shares (zeros included), and holds
    /// every unit until then: total supply never changes.
    #[test]
    fn reward_pool_pays_exactly_and_conserves_supply(
        weights in proptest::collection::vec(0u16..1_000, 1..20),
        amount in prop_oneof![1u128..10_000, (1u128 << 90)..(1u128 << 100)],
    ) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let funder = addr(200);
        let evaluator = addr(201);
        let mut fixture = Fixture::new(&[(addr(1), 1 << 40), (funder, 1u128 << 110), (evaluator, 1 << 40)]);
        let mut assets: Vec<tributary_types::AssetId> = (0..weights.len() as u64).map(asset_id).collect();
        for asset in &assets {
            fixture.ok(addr(1), register(*asset, vec![], Terms::default()));
        }
        assets.sort();
        let supply = fixture.ledger.total_supply();
        fixture.ok(funder, Call::CreateRewardPool(tributary_types::CreateRewardPool {
            task: "task".into(),
            test_set_root: asset_id(999),
            assets: assets.clone(),
            amount,
            evaluator_stake: 7,
            challenge_window_blocks: 1,
        }));
        let total: u32 = weights.iter().map(|w| u32::from(*w)).sum();
        let mut shares: Vec<(tributary_types::AssetId, u16)> = assets
            .iter()
            .zip(&weights)
            .map(|(asset, w)| (*asset, (u32::from(*w) * 10_000 / total) as u16))
            .collect();
        let assigned: u16 = shares.iter().map(|(_, bps)| *bps).sum();
        let first_positive = weights.iter().position(|w| *w > 0).unwrap_or(0);
        shares[first_positive].1 += 10_000 - assigned;
        fixture.ok(evaluator, Call::SubmitValuation {
            pool: 1,
            valuation: tributary_types::ValuationClaim { report_root: asset_id(998), shares: shares.clone() },
        });
        fixture.block(vec![]);
        prop_assert_eq!(fixture.ledger.total_supply(), supply);
        let events = fixture.ok(funder, Call::ClaimRewards { pool: 1 });
        let paid: Amount = events.iter().filter_map(|event| match event {
            Event::RevenuePaid { amount, .. } => Some(*amount),
            _ => None,
        }).sum();
        prop_assert_eq!(paid, amount);
        // Each asset's allocation is within one unit of its exact share.
        for event in &events {
            if let Event::RewardAllocated { share_bps, amount: allocated, .. } = event {
                let exact = amount * Amount::from(*share_bps) / 10_000;
                prop_assert!(*allocated == exact || *allocated == exact + 1);
            }
        }
        prop_assert_eq!(fixture.ledger.total_supply(), supply);
    }
}

#[test]
fn default_terms_register_and_license() {
    let mut fixture = Fixture::new(&genesis());
    fixture.ok(addr(1), register(asset_id(1), vec![], Terms::default()));
    let token = fixture.buy(addr(2), asset_id(1));
    fixture.fails(
        addr(2),
        register(asset_id(2), vec![(asset_id(1), token)], Terms::default()),
        "derivatives_not_allowed",
    );
}
