//! Property tests: conservation, exact royalty splits on random lineage DAGs, deterministic replay, and
//! failed calls changing nothing but fee and nonce — with training sessions in the mix. Transactions are unsigned here (signature checks are
//! covered by the signed tests), which keeps these fast.

use crate::tests::{Fixture, addr, asset_id, derivative_terms, register};
use proptest::prelude::*;
use std::collections::BTreeSet;
use tributary_types::{
    Address, Aggregation, Amount, AssetId, AssetKind, Call, Event, FinalizeSession, Hash32,
    OpenSession, ReceiptStatus, RegisterAsset, Role, Terms,
};

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::StorageProvider),
        Just(Role::Verifier),
        Just(Role::ComputeProvider)
    ]
}

/// Assets among the 6 of `call`, as a strictly ascending list.
fn asset_set(size: std::ops::Range<usize>) -> impl Strategy<Value = Vec<AssetId>> {
    proptest::collection::btree_set(0u64..6, size).prop_map(|picks| {
        picks
            .into_iter()
            .map(asset_id)
            .collect::<BTreeSet<AssetId>>()
            .into_iter()
            .collect()
    })
}

/// A session spec over some of the 6 assets, aggregated by one of the 4 accounts.
fn open_session() -> impl Strategy<Value = OpenSession> {
    (
        asset_set(1..4),
        prop_oneof![4 => 1u128..2_000, 1 => Just(u128::MAX)],
        1u128..50,
        1u64..3,
        1u32..4,
        1u8..=2,
        1u16..3,
    )
        .prop_map(
            |(eligible_assets, reward, evaluator_stake, window, rounds, aggregator, max)| {
                OpenSession {
                    model_spec_root: Hash32([7; 32]),
                    task: "task".into(),
                    eligible_assets,
                    reward,
                    evaluator_stake,
                    challenge_window_blocks: window,
                    rounds,
                    privacy: None,
                    aggregation: Aggregation::FedAvg,
                    secure_aggregation: false,
                    aggregator: addr(aggregator),
                    endpoint: "127.0.0.1:7400".into(),
                    participants_min: 1,
                    participants_max: max,
                }
            },
        )
}

/// Training calls on sessions 1..=2: opens, joins, rounds, finalizations (all the reward to one
/// asset, or split between two) and claims of their pools.
fn training_call() -> impl Strategy<Value = (u8, Call)> {
    let sender = 1u8..=4;
    let session = 1u64..=2;
    let asset = (0u64..6).prop_map(asset_id);
    prop_oneof![
        (sender.clone(), open_session()).prop_map(|(s, open)| (s, Call::OpenSession(open))),
        (sender.clone(), session.clone(), asset.clone())
            .prop_map(|(s, session, asset)| (s, Call::JoinSession { session, asset })),
        (sender.clone(), session.clone(), 1u32..4, asset_set(1..3)).prop_map(
            |(s, session, round, participants)| (
                s,
                Call::CommitRound {
                    session,
                    round,
                    aggregate_root: Hash32([round as u8; 32]),
                    participants,
                }
            )
        ),
        (
            sender.clone(),
            session,
            6u64..9,
            asset_set(1..3),
            0u16..=10_000
        )
            .prop_map(|(s, session, model, assets, first_bps)| {
                let shares = match assets.as_slice() {
                    [only] => vec![(*only, 10_000)],
                    [first, second, ..] => vec![(*first, first_bps), (*second, 10_000 - first_bps)],
                    [] => vec![],
                };
                (
                    s,
                    Call::FinalizeSession(FinalizeSession {
                        session,
                        model_root: asset_id(model),
                        model_name: "model".into(),
                        byte_size: 1,
                        epsilon_milli: None,
                        delta_atto: 0,
                        shares,
                        report_root: None,
                        terms: derivative_terms(100, 1),
                    }),
                )
            }),
        (sender, 1u64..=2).prop_map(|(s, pool)| (s, Call::ClaimRewards { pool })),
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
        training_call(),
        training_call(),
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

/// Genesis plus the 6 assets of `call`, asset `i` owned by account `1 + i % 4`, all allowing
/// training and derivatives at a 5% royalty.
fn training_fixture() -> Fixture {
    let mut fixture = Fixture::new(&genesis());
    for index in 0..6u64 {
        fixture.ok(
            addr(1 + (index % 4) as u8),
            register(asset_id(index), vec![], derivative_terms(500, 3)),
        );
    }
    fixture
}

/// One step of a random training history. The `*Joined` and `Join*` steps are completed from the
/// ledger when they run (an eligible asset and its owner, the next round, the participants, the
/// session's aggregator when `sender` is `None`), so histories reach finalization and payout
/// often; each completed call is kept for the replay.
#[derive(Clone, Debug)]
enum TrainingStep {
    /// A call as generated.
    Call(u8, Box<Call>),
    /// The owner of the session's eligible asset number `pick` (modulo their count) joins it.
    JoinEligible { session: u64, pick: usize },
    /// `sender` (`None`: the aggregator) commits the session's next round over every participant.
    CommitJoined { sender: Option<u8>, session: u64 },
    /// `sender` (`None`: the aggregator) finalizes the session: `first_bps` to its first
    /// participant, the rest to its last.
    FinalizeJoined {
        sender: Option<u8>,
        session: u64,
        model: u64,
        first_bps: u16,
    },
    /// An empty block (challenge windows pass).
    Wait,
}

fn training_step() -> impl Strategy<Value = TrainingStep> {
    let sender = proptest::option::weighted(0.2, 1u8..=4);
    let session = 1u64..=2;
    prop_oneof![
        3 => training_call().prop_map(|(sender, call)| TrainingStep::Call(sender, Box::new(call))),
        3 => (session.clone(), 0usize..4)
            .prop_map(|(session, pick)| TrainingStep::JoinEligible { session, pick }),
        3 => (sender.clone(), session.clone())
            .prop_map(|(sender, session)| TrainingStep::CommitJoined { sender, session }),
        2 => (sender, session, 6u64..9, 0u16..=10_000).prop_map(
            |(sender, session, model, first_bps)| TrainingStep::FinalizeJoined {
                sender,
                session,
                model,
                first_bps,
            }
        ),
        2 => Just(TrainingStep::Wait),
    ]
}

/// The call a step makes in `fixture`'s current state (`None`: an empty block).
fn resolve(fixture: &Fixture, step: &TrainingStep) -> Option<(u8, Call)> {
    let session_of = |session: u64| fixture.ledger.training_session(session);
    let joined = |session: u64| {
        session_of(session)
            .map(|view| {
                let assets: Vec<AssetId> = view.participants.iter().map(|p| p.asset).collect();
                (assets, view.rounds_committed)
            })
            .unwrap_or_default()
    };
    // Accounts are `addr(i)` for i in 1..=4: the byte of an address is its index.
    let sender_or_aggregator = |sender: Option<u8>, session: u64| {
        sender.unwrap_or_else(|| session_of(session).map_or(1, |view| view.spec.aggregator.0[0]))
    };
    match step {
        TrainingStep::Call(sender, call) => Some((*sender, (**call).clone())),
        TrainingStep::JoinEligible { session, pick } => {
            let eligible = session_of(*session)
                .map(|view| view.spec.eligible_assets)
                .unwrap_or_default();
            let asset = eligible
                .get(pick % eligible.len().max(1))
                .copied()
                .unwrap_or(asset_id(0));
            let owner = fixture
                .ledger
                .asset(&asset)
                .map_or(1, |view| view.owners[0].address.0[0]);
            Some((
                owner,
                Call::JoinSession {
                    session: *session,
                    asset,
                },
            ))
        }
        TrainingStep::CommitJoined { sender, session } => {
            let (participants, rounds_committed) = joined(*session);
            let round = rounds_committed + 1;
            Some((
                sender_or_aggregator(*sender, *session),
                Call::CommitRound {
                    session: *session,
                    round,
                    aggregate_root: Hash32([round as u8; 32]),
                    participants,
                },
            ))
        }
        TrainingStep::FinalizeJoined {
            sender,
            session,
            model,
            first_bps,
        } => {
            let (participants, _) = joined(*session);
            let shares = match participants.as_slice() {
                [] => vec![],
                [only] => vec![(*only, 10_000)],
                [first, .., last] => vec![(*first, *first_bps), (*last, 10_000 - first_bps)],
            };
            Some((
                sender_or_aggregator(*sender, *session),
                Call::FinalizeSession(FinalizeSession {
                    session: *session,
                    model_root: asset_id(*model),
                    model_name: "model".into(),
                    byte_size: 1,
                    epsilon_milli: None,
                    delta_atto: 0,
                    shares,
                    report_root: None,
                    terms: derivative_terms(100, 1),
                }),
            ))
        }
        TrainingStep::Wait => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random training histories (opens, joins, rounds, finalizations, claims, empty blocks) on
    /// assets that allow training: total supply is conserved, failed calls change only fee and
    /// nonce, and replaying the same calls gives the same roots.
    #[test]
    fn random_training_calls_conserve_supply_and_replay(
        steps in proptest::collection::vec(training_step(), 1..80),
    ) {
        let mut fixture = training_fixture();
        let supply = fixture.ledger.total_supply();
        let mut history = Vec::new();
        for step in &steps {
            let call = resolve(&fixture, step);
            match &call {
                Some((sender, call)) => {
                    let before = fixture.ledger.clone();
                    let receipt = fixture.call(addr(*sender), call.clone());
                    if let ReceiptStatus::Failed { .. } = receipt.status {
                        let mut noop = Fixture { ledger: before };
                        noop.ok(addr(*sender), Call::Transfer { to: addr(*sender), amount: 0 });
                        prop_assert_eq!(noop.ledger.state_root(), fixture.ledger.state_root());
                    }
                }
                None => {
                    fixture.block(vec![]);
                }
            }
            prop_assert_eq!(fixture.ledger.total_supply(), supply);
            history.push((call, fixture.ledger.state_root()));
        }
        let mut replay = training_fixture();
        for (call, root) in &history {
            match call {
                Some((sender, call)) => {
                    replay.call(addr(*sender), call.clone());
                }
                None => {
                    replay.block(vec![]);
                }
            }
            prop_assert_eq!(replay.ledger.state_root(), *root);
        }
    }

    /// A training session pays its reward exactly by the posted shares (zeros included) through
    /// the rewards module, consumes every session token for the model, and never changes the
    /// total supply.
    #[test]
    fn training_session_pays_exactly_and_conserves_supply(
        contributors in proptest::collection::vec((0u16..1_000, 0u16..1_250), 1..8),
        reward in prop_oneof![1u128..10_000, (1u128 << 90)..(1u128 << 100)],
        rounds in 1u32..4,
        revenue in 1u128..1_000_000,
    ) {
        prop_assume!(contributors.iter().any(|(weight, _)| *weight > 0));
        let trainer = addr(200);
        let aggregator = addr(201);
        let mut allocations = vec![(trainer, 1u128 << 110), (aggregator, 1 << 40)];
        for index in 0..contributors.len() {
            allocations.push((addr(10 + index as u8), 1_000));
        }
        let mut fixture = Fixture::new(&allocations);
        let mut assets = Vec::new();
        for (index, (_, rate)) in contributors.iter().enumerate() {
            let asset = asset_id(index as u64);
            fixture.ok(addr(10 + index as u8), register(asset, vec![], derivative_terms(*rate, 3)));
            assets.push((asset, index));
        }
        assets.sort();
        let supply = fixture.ledger.total_supply();
        fixture.ok(trainer, Call::OpenSession(OpenSession {
            model_spec_root: Hash32([7; 32]),
            task: "task".into(),
            eligible_assets: assets.iter().map(|(asset, _)| *asset).collect(),
            reward,
            evaluator_stake: 11,
            challenge_window_blocks: 2,
            rounds,
            privacy: None,
            aggregation: Aggregation::Median,
            secure_aggregation: false,
            aggregator,
            endpoint: "127.0.0.1:7400".into(),
            participants_min: 1,
            participants_max: contributors.len() as u16,
        }));
        for (asset, index) in &assets {
            fixture.ok(addr(10 + *index as u8), Call::JoinSession { session: 1, asset: *asset });
            prop_assert_eq!(fixture.ledger.total_supply(), supply);
        }
        let participants: Vec<AssetId> = assets.iter().map(|(asset, _)| *asset).collect();
        for round in 1..=rounds {
            fixture.ok(aggregator, Call::CommitRound {
                session: 1,
                round,
                aggregate_root: Hash32([round as u8; 32]),
                participants: participants.clone(),
            });
        }
        let total: u32 = contributors.iter().map(|(weight, _)| u32::from(*weight)).sum();
        let mut shares: Vec<(AssetId, u16)> = assets
            .iter()
            .map(|(asset, index)| (*asset, (u32::from(contributors[*index].0) * 10_000 / total) as u16))
            .collect();
        let assigned: u16 = shares.iter().map(|(_, bps)| *bps).sum();
        let first_positive = shares
            .iter()
            .position(|(_, bps)| *bps > 0)
            .unwrap_or(0);
        shares[first_positive].1 += 10_000 - assigned;
        let model = asset_id(1_000);
        fixture.ok(aggregator, Call::FinalizeSession(FinalizeSession {
            session: 1,
            model_root: model,
            model_name: "model".into(),
            byte_size: 1,
            epsilon_milli: None,
            delta_atto: 0,
            shares: shares.clone(),
            report_root: None,
            terms: Terms::default(),
        }));
        prop_assert_eq!(fixture.ledger.total_supply(), supply);
        let bill = fixture.ledger.bill_of_materials(&model).unwrap();
        prop_assert_eq!(bill.rounds.len(), rounds as usize);
        let posted: Vec<(AssetId, u16)> = bill.inputs.iter().map(|input| (input.asset, input.share_bps)).collect();
        prop_assert_eq!(&posted, &shares);
        for input in &bill.inputs {
            let token = fixture.ledger.license(input.license_token).unwrap();
            prop_assert_eq!(token.consumed_by, Some(model));
        }
        let parents: Vec<AssetId> = fixture.ledger.asset(&model).unwrap().parents.iter().map(|link| link.asset).collect();
        prop_assert_eq!(&parents, &participants);
        fixture.block(vec![]);
        fixture.block(vec![]);
        let events = fixture.ok(trainer, Call::ClaimRewards { pool: 1 });
        let paid: Amount = events.iter().filter_map(|event| match event {
            Event::RevenuePaid { amount, .. } => Some(*amount),
            _ => None,
        }).sum();
        prop_assert_eq!(paid, reward);
        for event in &events {
            if let Event::RewardAllocated { share_bps, amount: allocated, .. } = event {
                let exact = reward / 10_000 * Amount::from(*share_bps)
                    + reward % 10_000 * Amount::from(*share_bps) / 10_000;
                prop_assert!(*allocated == exact || *allocated == exact + 1);
            }
        }
        prop_assert_eq!(fixture.ledger.total_supply(), supply);
        // The model's revenue reaches its owner and the participants, unit for unit.
        let events = fixture.ok(trainer, Call::PayRevenue { asset: model, amount: revenue });
        let paid: Amount = events.iter().filter_map(|event| match event {
            Event::RevenuePaid { amount, .. } => Some(*amount),
            _ => None,
        }).sum();
        prop_assert_eq!(paid, revenue);
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
