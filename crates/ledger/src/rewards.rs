//! rewards: pools that pay data by its value, with valuations that anyone can dispute.
//!
//! # Flow
//! 1. `CreateRewardPool`: a funder moves the reward into a pool naming the eligible assets, the test
//!    set's root, the stake an evaluator must put up and the challenge window.
//! 2. `SubmitValuation`: the first evaluator posts a report commitment (BLAKE3 of a
//!    `tributary value --report` file, which names every input by its root) and per-asset shares in
//!    basis points summing to 10000, putting up the stake. The window opens: it can be challenged
//!    until `submitted_height + challenge_window_blocks`.
//! 3. `ChallengeValuation`: anyone else who re-ran the report and got different shares posts theirs
//!    with the same stake. At least `committee_size` accounts must hold a `verifier` bond of
//!    `verifier_bond_min` besides the two parties.
//! 4. At the start of the first later block the committee is drawn: `committee_size` eligible
//!    verifiers, sampled without replacement by a ChaCha20 stream keyed with the block's beacon
//!    (the threshold-BLS seed of the parent's round, unknown when the challenge was included, so
//!    nobody can time a challenge to pick its judges).
//! 5. `VoteValuation`: members re-run both reports (`tributary value verify`) and vote. The challenge
//!    is decided as soon as one side has a majority of the committee, or at the start of the first
//!    block after the vote deadline by the votes cast; a tie keeps the standing valuation. The loser's
//!    stake goes to the winner; a member who did not vote loses `verifier_absence_slash` of its
//!    verifier bond to the winner. A voided valuation is replaced by the challenger's, whose window
//!    then starts afresh (so it can be challenged in turn).
//! 6. `ClaimRewards` (anyone, after the window, with no challenge open): the pool pays each asset
//!    `amount × bps / 10000` by largest remainder — `floor` first, then the units left one each to the
//!    largest remainders, ties to the lowest asset id — so the payouts sum to the reward exactly.
//!    Each asset's part is revenue arriving at that asset: it is split among its owners and flows up
//!    its lineage by the royalty rules. The evaluator's stake is returned.
//!
//! Pools opened by the training module (one per session) take their valuation only from the
//! session's `FinalizeSession`, through [`post_valuation`]; `SubmitValuation` refuses them. Their
//! challenges and claims go through the calls above like any pool's.
//!
//! No trusted oracle: the chain never runs the valuation; it holds stakes and lets a randomly drawn,
//! staked committee decide, which honest verifiers do by recomputation.

use crate::{
    bank,
    error::ExecutionError,
    royalty, stake,
    state::{OpenChallenge, PostedValuation, RewardPool, State},
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tributary_types::{
    Address, Amount, AssetId, CreateRewardPool, Event, Hash32, Params, RewardPoolId, Role,
    ValuationClaim,
    limits::{
        BASIS_POINTS_TOTAL, CHALLENGE_WINDOW_BLOCKS_MAX, COMMITTEE_SIZE_MAX,
        REWARD_POOL_ASSETS_MAX, REWARD_TASK_BYTES_MAX,
    },
};

/// Domain tag of the committee draw's key.
const COMMITTEE_DOMAIN: &[u8] = b"tributary-committee-v1";

/// `CreateRewardPool`; returns the new pool's id.
pub(crate) fn create(
    state: &mut State,
    funder: Address,
    create: &CreateRewardPool,
    events: &mut Vec<Event>,
) -> Result<RewardPoolId, ExecutionError> {
    if create.task.is_empty() || create.task.len() > REWARD_TASK_BYTES_MAX {
        return Err(ExecutionError::BadTask {
            len: create.task.len(),
            max: REWARD_TASK_BYTES_MAX,
        });
    }
    if create.assets.is_empty() || create.assets.len() > REWARD_POOL_ASSETS_MAX {
        return Err(ExecutionError::BadPoolAssets {
            count: create.assets.len(),
            max: REWARD_POOL_ASSETS_MAX,
        });
    }
    if create.assets.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(ExecutionError::AssetsNotAscending);
    }
    for asset in &create.assets {
        if !state.assets.contains_key(asset) {
            return Err(ExecutionError::AssetNotFound(*asset));
        }
    }
    if create.amount == 0 || create.evaluator_stake == 0 {
        return Err(ExecutionError::ZeroAmount);
    }
    if create.challenge_window_blocks == 0
        || create.challenge_window_blocks > CHALLENGE_WINDOW_BLOCKS_MAX
    {
        return Err(ExecutionError::BadChallengeWindow {
            blocks: create.challenge_window_blocks,
            max: CHALLENGE_WINDOW_BLOCKS_MAX,
        });
    }
    bank::debit(state, funder, create.amount)?;
    let id = state.next_reward_pool_id;
    let next = id.checked_add(1).ok_or(ExecutionError::Overflow)?;
    state.set_next_reward_pool_id(next);
    state.set_reward_pool(RewardPool {
        id,
        funder,
        task: create.task.clone(),
        test_set_root: create.test_set_root,
        assets: create.assets.clone(),
        amount: create.amount,
        evaluator_stake: create.evaluator_stake,
        challenge_window_blocks: create.challenge_window_blocks,
        created_height: state.height,
        valuation: None,
        challenge: None,
        paid_height: None,
    });
    events.push(Event::RewardPoolCreated {
        pool: id,
        funder,
        amount: create.amount,
    });
    Ok(id)
}

fn pool(state: &State, id: RewardPoolId) -> Result<RewardPool, ExecutionError> {
    let pool = state
        .reward_pools
        .get(&id)
        .cloned()
        .ok_or(ExecutionError::PoolNotFound(id))?;
    if pool.paid_height.is_some() {
        return Err(ExecutionError::PoolAlreadyPaid(id));
    }
    Ok(pool)
}

/// Shares must name only the pool's assets, strictly ascending, and sum to exactly 10000 bps.
pub(crate) fn check_claim(pool: &RewardPool, claim: &ValuationClaim) -> Result<(), ExecutionError> {
    if claim.shares.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err(ExecutionError::AssetsNotAscending);
    }
    let mut sum: u64 = 0;
    for (asset, bps) in &claim.shares {
        if pool.assets.binary_search(asset).is_err() {
            return Err(ExecutionError::AssetNotInPool {
                pool: pool.id,
                asset: *asset,
            });
        }
        sum += u64::from(*bps);
    }
    if sum != u64::from(BASIS_POINTS_TOTAL) {
        return Err(ExecutionError::SharesNotTotal { sum });
    }
    Ok(())
}

/// `SubmitValuation`: refused for a training session's pool, which only its `FinalizeSession` values.
pub(crate) fn submit(
    state: &mut State,
    evaluator: Address,
    id: RewardPoolId,
    claim: &ValuationClaim,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if let Some(session) = state.session_pools.get(&id) {
        return Err(ExecutionError::PoolReservedForSession {
            pool: id,
            session: *session,
        });
    }
    post_valuation(state, evaluator, id, claim, events)
}

/// Posts `claim` as pool `id`'s first valuation, taking the pool's evaluator stake from
/// `evaluator`; its challenge window opens now.
pub(crate) fn post_valuation(
    state: &mut State,
    evaluator: Address,
    id: RewardPoolId,
    claim: &ValuationClaim,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut pool = pool(state, id)?;
    if pool.valuation.is_some() {
        return Err(ExecutionError::ValuationAlreadySubmitted(id));
    }
    check_claim(&pool, claim)?;
    bank::debit(state, evaluator, pool.evaluator_stake)?;
    let challenge_deadline_height = state
        .height
        .checked_add(pool.challenge_window_blocks)
        .ok_or(ExecutionError::Overflow)?;
    pool.valuation = Some(PostedValuation {
        evaluator,
        claim: claim.clone(),
        submitted_height: state.height,
        challenge_deadline_height,
    });
    state.set_reward_pool(pool);
    events.push(Event::ValuationSubmitted {
        pool: id,
        evaluator,
        report_root: claim.report_root,
        challenge_deadline_height,
    });
    Ok(())
}

/// Narrows the assets pool `id` pays to `assets` (strictly ascending, a subset of its assets), before
/// any valuation: a training session's pool pays only the assets that took part, so a challenge can
/// only re-split the reward among them.
pub(crate) fn narrow_assets(
    state: &mut State,
    id: RewardPoolId,
    assets: Vec<AssetId>,
) -> Result<(), ExecutionError> {
    let mut pool = pool(state, id)?;
    if pool.valuation.is_some() {
        return Err(ExecutionError::ValuationAlreadySubmitted(id));
    }
    if assets.is_empty() || assets.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(ExecutionError::AssetsNotAscending);
    }
    for asset in &assets {
        if pool.assets.binary_search(asset).is_err() {
            return Err(ExecutionError::AssetNotInPool {
                pool: id,
                asset: *asset,
            });
        }
    }
    pool.assets = assets;
    state.set_reward_pool(pool);
    Ok(())
}

/// Accounts with a verifier bond of at least `verifier_bond_min`, other than `excluded`, ascending.
fn eligible_verifiers(state: &State, params: &Params, excluded: &[Address]) -> Vec<Address> {
    state
        .bonds
        .iter()
        .filter(|((address, role), amount)| {
            *role == Role::Verifier
                && **amount >= params.verifier_bond_min
                && !excluded.contains(address)
        })
        .map(|((address, _), _)| *address)
        .collect()
}

/// The pool's standing valuation, when no challenge of it is being decided.
fn unchallenged_valuation(pool: &RewardPool) -> Result<PostedValuation, ExecutionError> {
    let valuation = pool
        .valuation
        .clone()
        .ok_or(ExecutionError::NoValuation(pool.id))?;
    if pool.challenge.is_some() {
        return Err(ExecutionError::ChallengeOpen(pool.id));
    }
    Ok(valuation)
}

/// `ChallengeValuation`.
pub(crate) fn challenge(
    state: &mut State,
    params: &Params,
    challenger: Address,
    id: RewardPoolId,
    claim: &ValuationClaim,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut pool = pool(state, id)?;
    let valuation = unchallenged_valuation(&pool)?;
    if state.height > valuation.challenge_deadline_height {
        return Err(ExecutionError::ChallengeWindowClosed {
            pool: id,
            deadline_height: valuation.challenge_deadline_height,
        });
    }
    if challenger == valuation.evaluator {
        return Err(ExecutionError::OwnValuation(id));
    }
    check_claim(&pool, claim)?;
    if claim.shares == valuation.claim.shares {
        return Err(ExecutionError::SameShares(id));
    }
    let committee_size = params.committee_size.clamp(1, COMMITTEE_SIZE_MAX);
    let available = eligible_verifiers(state, params, &[valuation.evaluator, challenger]).len();
    if available < usize::from(committee_size) {
        return Err(ExecutionError::NotEnoughVerifiers {
            available,
            needed: committee_size,
        });
    }
    bank::debit(state, challenger, pool.evaluator_stake)?;
    pool.challenge = Some(OpenChallenge {
        challenger,
        claim: claim.clone(),
        filed_height: state.height,
        committee: Vec::new(),
        vote_deadline_height: 0,
        votes: Vec::new(),
    });
    state.set_reward_pool(pool);
    events.push(Event::ValuationChallenged {
        pool: id,
        challenger,
        report_root: claim.report_root,
    });
    Ok(())
}

/// `VoteValuation`.
pub(crate) fn vote(
    state: &mut State,
    params: &Params,
    verifier: Address,
    id: RewardPoolId,
    for_challenger: bool,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut pool = pool(state, id)?;
    let challenge = pool
        .challenge
        .as_mut()
        .ok_or(ExecutionError::NoChallenge(id))?;
    if challenge.committee.binary_search(&verifier).is_err() {
        return Err(ExecutionError::NotOnCommittee { pool: id, verifier });
    }
    if state.height > challenge.vote_deadline_height {
        return Err(ExecutionError::VoteClosed {
            pool: id,
            deadline_height: challenge.vote_deadline_height,
        });
    }
    if challenge
        .votes
        .iter()
        .any(|(member, _)| *member == verifier)
    {
        return Err(ExecutionError::AlreadyVoted { pool: id, verifier });
    }
    challenge.votes.push((verifier, for_challenger));
    let (for_challenger_count, for_valuation_count) = tally(challenge);
    let majority = challenge.committee.len() / 2 + 1;
    let decided = usize::from(for_challenger_count) >= majority
        || usize::from(for_valuation_count) >= majority;
    events.push(Event::ValuationVoted {
        pool: id,
        verifier,
        for_challenger,
    });
    if decided {
        // Decided before the deadline: members who have not voted yet still had time, so
        // nobody is slashed for absence.
        resolve(state, params, pool, false, events)
    } else {
        state.set_reward_pool(pool);
        Ok(())
    }
}

fn tally(challenge: &OpenChallenge) -> (u16, u16) {
    let for_challenger = challenge.votes.iter().filter(|(_, vote)| *vote).count();
    let for_valuation = challenge.votes.len() - for_challenger;
    (
        u16::try_from(for_challenger).unwrap_or(u16::MAX),
        u16::try_from(for_valuation).unwrap_or(u16::MAX),
    )
}

/// Decides `pool`'s open challenge by the votes cast (a tie keeps the standing valuation), moves
/// the loser's stake to the winner, slashes members who did not vote when `slash_absent` (the
/// deadline passed), and writes the pool.
fn resolve(
    state: &mut State,
    params: &Params,
    mut pool: RewardPool,
    slash_absent: bool,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let Some(challenge) = pool.challenge.take() else {
        return Ok(());
    };
    let Some(valuation) = pool.valuation.take() else {
        return Err(ExecutionError::NoValuation(pool.id));
    };
    let (votes_for_challenger, votes_for_valuation) = tally(&challenge);
    let challenger_won = votes_for_challenger > votes_for_valuation;
    let (winner, loser) = if challenger_won {
        (challenge.challenger, valuation.evaluator)
    } else {
        (valuation.evaluator, challenge.challenger)
    };
    bank::credit(state, winner, pool.evaluator_stake)?;
    for member in &challenge.committee {
        if slash_absent && !challenge.votes.iter().any(|(voter, _)| voter == member) {
            stake::slash(
                state,
                *member,
                Role::Verifier,
                params.verifier_absence_slash,
                winner,
                events,
            )?;
        }
    }
    events.push(Event::ChallengeResolved {
        pool: pool.id,
        challenger_won,
        winner,
        loser,
        amount: pool.evaluator_stake,
        votes_for_challenger,
        votes_for_valuation,
    });
    if challenger_won {
        let challenge_deadline_height = state
            .height
            .checked_add(pool.challenge_window_blocks)
            .ok_or(ExecutionError::Overflow)?;
        pool.valuation = Some(PostedValuation {
            evaluator: challenge.challenger,
            claim: challenge.claim.clone(),
            submitted_height: state.height,
            challenge_deadline_height,
        });
        events.push(Event::ValuationSubmitted {
            pool: pool.id,
            evaluator: challenge.challenger,
            report_root: challenge.claim.report_root,
            challenge_deadline_height,
        });
    } else {
        pool.valuation = Some(valuation);
    }
    state.set_reward_pool(pool);
    Ok(())
}

/// `count` distinct indices below `len`, drawn by a ChaCha20 stream keyed with `key` (partial
/// Fisher–Yates with rejection sampling, so every subset is equally likely). Ascending.
fn sample_indices(key: [u8; 32], len: usize, count: usize) -> Vec<usize> {
    let mut rng = ChaCha20Rng::from_seed(key);
    let mut indices: Vec<usize> = (0..len).collect();
    let count = count.min(len);
    for position in 0..count {
        let span = (len - position) as u64;
        // Reject the top partial range so `value % span` is uniform.
        let zone = u64::MAX - (u64::MAX % span);
        let value = loop {
            let value = rng.next_u64();
            if value < zone {
                break value;
            }
        };
        let pick = position + (value % span) as usize;
        indices.swap(position, pick);
    }
    let mut chosen = indices[..count].to_vec();
    chosen.sort_unstable();
    chosen
}

/// At the start of each block: draws committees for challenges filed in earlier blocks (when the
/// block has a beacon) and decides challenges whose vote deadline has passed.
pub(crate) fn begin_block(state: &mut State, params: &Params, events: &mut Vec<Event>) {
    let open: Vec<RewardPoolId> = state.open_challenges.keys().copied().collect();
    for id in open {
        let Some(pool) = state.reward_pools.get(&id).cloned() else {
            continue;
        };
        let Some(challenge) = pool.challenge.clone() else {
            continue;
        };
        // Each pool's step lands whole or not at all. A step that fails (an overflow crediting a
        // winner) leaves that pool as it was, to be retried next block, rather than invalidating
        // every block at this height and halting the chain.
        let step = state.atomically(events, |state, events| {
            if challenge.committee.is_empty() {
                match state.beacon {
                    Some(beacon) if challenge.filed_height < state.height => {
                        draw(state, params, pool, challenge, beacon, events)
                    }
                    _ => Ok(()),
                }
            } else if state.height > challenge.vote_deadline_height {
                resolve(state, params, pool, true, events)
            } else {
                Ok(())
            }
        });
        if let Err(error) = step {
            tracing::warn!(target: "tributary::ledger", pool = id, %error, "reward pool step failed; retrying next block");
        }
    }
}

fn draw(
    state: &mut State,
    params: &Params,
    mut pool: RewardPool,
    mut challenge: OpenChallenge,
    beacon: Hash32,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let evaluator = pool
        .valuation
        .as_ref()
        .map(|valuation| valuation.evaluator)
        .ok_or(ExecutionError::NoValuation(pool.id))?;
    let eligible = eligible_verifiers(state, params, &[evaluator, challenge.challenger]);
    if eligible.is_empty() {
        // Everyone unbonded since the challenge was filed: nobody can decide it.
        bank::credit(state, challenge.challenger, pool.evaluator_stake)?;
        events.push(Event::ChallengeDismissed {
            pool: pool.id,
            challenger: challenge.challenger,
        });
        state.set_reward_pool(pool);
        return Ok(());
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(COMMITTEE_DOMAIN);
    hasher.update(beacon.as_bytes());
    hasher.update(&pool.id.to_be_bytes());
    hasher.update(&challenge.filed_height.to_be_bytes());
    let size = usize::from(params.committee_size.clamp(1, COMMITTEE_SIZE_MAX));
    challenge.committee = sample_indices(*hasher.finalize().as_bytes(), eligible.len(), size)
        .into_iter()
        .map(|index| eligible[index])
        .collect();
    challenge.committee.sort_unstable();
    challenge.vote_deadline_height = state
        .height
        .checked_add(params.vote_window_blocks)
        .ok_or(ExecutionError::Overflow)?;
    events.push(Event::CommitteeDrawn {
        pool: pool.id,
        members: challenge.committee.clone(),
        vote_deadline_height: challenge.vote_deadline_height,
    });
    pool.challenge = Some(challenge);
    state.set_reward_pool(pool);
    Ok(())
}

/// `ClaimRewards`.
pub(crate) fn claim(
    state: &mut State,
    id: RewardPoolId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut pool = pool(state, id)?;
    let valuation = unchallenged_valuation(&pool)?;
    if state.height <= valuation.challenge_deadline_height {
        return Err(ExecutionError::ChallengeWindowOpen {
            pool: id,
            deadline_height: valuation.challenge_deadline_height,
        });
    }
    for (asset, share_bps, amount) in allocate(pool.amount, &valuation.claim.shares) {
        events.push(Event::RewardAllocated {
            pool: id,
            asset,
            share_bps,
            amount,
        });
        if amount > 0 {
            royalty::distribute(state, asset, amount, events)?;
        }
    }
    bank::credit(state, valuation.evaluator, pool.evaluator_stake)?;
    pool.paid_height = Some(state.height);
    let amount = pool.amount;
    state.set_reward_pool(pool);
    events.push(Event::RewardPoolPaid {
        pool: id,
        evaluator: valuation.evaluator,
        amount,
    });
    Ok(())
}

/// Splits `amount` by `shares` (bps summing to 10000, ascending by asset): floors, then the units
/// left one each to the largest remainders, ties to the lowest asset id. Sums to `amount` exactly.
pub fn allocate(amount: Amount, shares: &[(AssetId, u16)]) -> Vec<(AssetId, u16, Amount)> {
    royalty::split_by_shares(amount, shares)
        .into_iter()
        .zip(shares)
        .map(|((asset, amount), (_, bps))| (asset, *bps, amount))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_distinct_ascending_and_keyed() {
        let a = sample_indices([1; 32], 10, 3);
        assert_eq!(a.len(), 3);
        assert!(a.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(a.iter().all(|index| *index < 10));
        assert_eq!(a, sample_indices([1; 32], 10, 3));
        // Different keys draw different committees (over a few keys, not all equal).
        let draws: std::collections::BTreeSet<Vec<usize>> = (0u8..8)
            .map(|key| sample_indices([key; 32], 10, 3))
            .collect();
        assert!(draws.len() > 1);
        assert_eq!(sample_indices([1; 32], 2, 5), vec![0, 1]);
    }

    #[test]
    fn sample_is_close_to_uniform() {
        let mut counts = [0u32; 5];
        for key in 0u32..5_000 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&key.to_be_bytes());
            for index in sample_indices(seed, 5, 2) {
                counts[index] += 1;
            }
        }
        // Each index is picked with probability 2/5: 2000 expected of 5000.
        for count in counts {
            assert!((1_850..=2_150).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn allocation_sums_exactly_with_ties_to_lowest_asset() {
        let a = Hash32([1; 32]);
        let b = Hash32([2; 32]);
        let c = Hash32([3; 32]);
        let parts = allocate(10, &[(a, 3_333), (b, 3_333), (c, 3_334)]);
        let total: Amount = parts.iter().map(|(_, _, amount)| amount).sum();
        assert_eq!(total, 10);
        // 3.333, 3.333, 3.334: the largest remainder (c) gets the extra unit.
        assert_eq!(parts[0].2, 3);
        assert_eq!(parts[1].2, 3);
        assert_eq!(parts[2].2, 4);
        let parts = allocate(1, &[(a, 5_000), (b, 5_000)]);
        assert_eq!(parts[0].2, 1, "a tie goes to the lowest asset id");
        assert_eq!(parts[1].2, 0);
    }
}

/// The module through blocks: pool, valuation, challenge with a drawn committee, payout.
#[cfg(test)]
mod flow_tests {
    use super::*;
    use crate::tests::{Fixture, addr, asset_id, register};
    use tributary_types::{Call, ReceiptStatus, Terms};

    const FUNDER: u8 = 1;
    const EVALUATOR: u8 = 2;
    const CHALLENGER: u8 = 3;
    const VERIFIERS: [u8; 4] = [10, 11, 12, 13];
    const OWNERS: [u8; 3] = [20, 21, 22];
    const STAKE: Amount = 5_000;

    struct Setup {
        fixture: Fixture,
        assets: Vec<AssetId>,
    }

    fn setup() -> Setup {
        let mut allocations: Vec<(Address, Amount)> = vec![
            (addr(FUNDER), 10_000_000),
            (addr(EVALUATOR), 100_000),
            (addr(CHALLENGER), 100_000),
        ];
        for verifier in VERIFIERS {
            allocations.push((addr(verifier), 100_000));
        }
        for owner in OWNERS {
            allocations.push((addr(owner), 1_000));
        }
        let mut fixture = Fixture::new(&allocations);
        let mut assets = Vec::new();
        for (index, owner) in OWNERS.iter().enumerate() {
            let id = asset_id(index as u64 + 1);
            fixture.ok(addr(*owner), register(id, vec![], Terms::default()));
            assets.push(id);
        }
        assets.sort();
        for verifier in VERIFIERS {
            fixture.ok(
                addr(verifier),
                Call::Bond {
                    role: Role::Verifier,
                    amount: 10_000,
                },
            );
        }
        Setup { fixture, assets }
    }

    fn create_call(assets: &[AssetId], amount: Amount) -> Call {
        Call::CreateRewardPool(CreateRewardPool {
            task: "digits, KNN-Shapley K=5".into(),
            test_set_root: Hash32([7; 32]),
            assets: assets.to_vec(),
            amount,
            evaluator_stake: STAKE,
            challenge_window_blocks: 5,
        })
    }

    fn claim_of(root: u8, shares: Vec<(AssetId, u16)>) -> ValuationClaim {
        ValuationClaim {
            report_root: Hash32([root; 32]),
            shares,
        }
    }

    fn paid_to(events: &[Event], who: Address) -> Amount {
        events
            .iter()
            .map(|event| match event {
                Event::RevenuePaid { to, amount, .. } if *to == who => *amount,
                _ => 0,
            })
            .sum()
    }

    fn balance(fixture: &Fixture, who: u8) -> Amount {
        fixture.ledger.balance(&addr(who))
    }

    #[test]
    fn unchallenged_valuation_pays_exactly_after_the_window() {
        let Setup {
            mut fixture,
            assets,
        } = setup();
        let supply = fixture.ledger.total_supply();
        fixture.ok(addr(FUNDER), create_call(&assets, 1_000_001));
        assert_eq!(
            fixture.ledger.total_supply(),
            supply,
            "the pool holds the reward"
        );
        let shares = vec![(assets[0], 5_000), (assets[1], 3_000), (assets[2], 2_000)];
        fixture.ok(
            addr(EVALUATOR),
            Call::SubmitValuation {
                pool: 1,
                valuation: claim_of(9, shares),
            },
        );
        let evaluator_before = balance(&fixture, EVALUATOR);
        fixture.fails(
            addr(FUNDER),
            Call::ClaimRewards { pool: 1 },
            "challenge_window_open",
        );
        for _ in 0..5 {
            fixture.block(vec![]);
        }
        let events = fixture.ok(addr(FUNDER), Call::ClaimRewards { pool: 1 });
        let owner_of = |asset: AssetId| {
            let index = (1..=3u64).position(|i| asset_id(i) == asset).unwrap();
            addr(OWNERS[index])
        };
        let paid: Vec<Amount> = assets
            .iter()
            .map(|asset| paid_to(&events, owner_of(*asset)))
            .collect();
        assert_eq!(paid.iter().sum::<Amount>(), 1_000_001);
        // 500000.5, 300000.3, 200000.2: the largest remainder (the first) gets the extra unit.
        assert_eq!(paid, vec![500_001, 300_000, 200_000]);
        assert_eq!(balance(&fixture, EVALUATOR), evaluator_before + STAKE);
        assert_eq!(fixture.ledger.total_supply(), supply);
        let view = fixture.ledger.reward_pool(1).unwrap();
        assert_eq!(view.status, "paid");
        fixture.fails(
            addr(FUNDER),
            Call::ClaimRewards { pool: 1 },
            "pool_already_paid",
        );
    }

    /// Files a challenge and advances one block so the committee is drawn; returns it.
    fn challenged(fixture: &mut Fixture, assets: &[AssetId]) -> Vec<Address> {
        fixture.ok(addr(FUNDER), create_call(assets, 900));
        fixture.ok(
            addr(EVALUATOR),
            Call::SubmitValuation {
                pool: 1,
                valuation: claim_of(9, vec![(assets[0], 10_000)]),
            },
        );
        let events = fixture.ok(
            addr(CHALLENGER),
            Call::ChallengeValuation {
                pool: 1,
                valuation: claim_of(8, vec![(assets[1], 5_000), (assets[2], 5_000)]),
            },
        );
        assert!(matches!(events[0], Event::ValuationChallenged { .. }));
        let outcome = fixture.block(vec![]);
        let members = outcome
            .block_events
            .iter()
            .find_map(|event| match event {
                Event::CommitteeDrawn { members, .. } => Some(members.clone()),
                _ => None,
            })
            .expect("the committee is drawn at the next block");
        fixture.fails(
            addr(FUNDER),
            Call::ChallengeValuation {
                pool: 1,
                valuation: claim_of(8, vec![(assets[1], 10_000)]),
            },
            "challenge_open",
        );
        assert_eq!(members.len(), 3);
        assert!(members.windows(2).all(|pair| pair[0] < pair[1]));
        for member in &members {
            assert!(VERIFIERS.iter().any(|v| addr(*v) == *member));
        }
        members
    }

    #[test]
    fn challenger_wins_by_majority_and_its_valuation_pays() {
        let Setup {
            mut fixture,
            assets,
        } = setup();
        let supply = fixture.ledger.total_supply();
        let members = challenged(&mut fixture, &assets);
        let outsider = VERIFIERS
            .iter()
            .map(|v| addr(*v))
            .find(|v| !members.contains(v))
            .unwrap();
        fixture.fails(
            outsider,
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
            "not_on_committee",
        );
        fixture.ok(
            members[0],
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
        );
        fixture.fails(
            members[0],
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
            "already_voted",
        );
        let challenger_before = balance(&fixture, CHALLENGER);
        let events = fixture.ok(
            members[1],
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
        );
        assert!(events.iter().any(|event| matches!(
            event,
            Event::ChallengeResolved {
                challenger_won: true,
                amount: STAKE,
                votes_for_challenger: 2,
                ..
            }
        )));
        // The challenger got the evaluator's stake; its own stays behind its valuation.
        assert_eq!(balance(&fixture, CHALLENGER), challenger_before + STAKE);
        let view = fixture.ledger.reward_pool(1).unwrap();
        assert_eq!(view.status, "valuated");
        let valuation = view.valuation.unwrap();
        assert_eq!(valuation.evaluator, addr(CHALLENGER));
        assert_eq!(valuation.report_root, Hash32([8; 32]));
        // The window starts afresh from the resolution.
        fixture.fails(
            addr(FUNDER),
            Call::ClaimRewards { pool: 1 },
            "challenge_window_open",
        );
        for _ in 0..5 {
            fixture.block(vec![]);
        }
        let events = fixture.ok(addr(FUNDER), Call::ClaimRewards { pool: 1 });
        let total: Amount = events
            .iter()
            .map(|event| match event {
                Event::RevenuePaid { amount, .. } => *amount,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 900);
        assert_eq!(balance(&fixture, CHALLENGER), challenger_before + 2 * STAKE);
        assert_eq!(fixture.ledger.total_supply(), supply);
    }

    #[test]
    fn valuation_upheld_at_deadline_and_absent_members_slashed() {
        let Setup {
            mut fixture,
            assets,
        } = setup();
        let supply = fixture.ledger.total_supply();
        let members = challenged(&mut fixture, &assets);
        fixture.ok(
            members[0],
            Call::VoteValuation {
                pool: 1,
                for_challenger: false,
            },
        );
        fixture.ok(
            members[1],
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
        );
        let evaluator_before = balance(&fixture, EVALUATOR);
        // A 1-1 tie with one member absent: decided at the first block past the deadline.
        let deadline = fixture
            .ledger
            .reward_pool(1)
            .unwrap()
            .challenge
            .unwrap()
            .vote_deadline_height
            .unwrap();
        let mut resolution = None;
        while fixture.ledger.height() <= deadline {
            let outcome = fixture.block(vec![]);
            if outcome
                .block_events
                .iter()
                .any(|event| matches!(event, Event::ChallengeResolved { .. }))
            {
                resolution = Some(outcome);
            }
        }
        let outcome = resolution.expect("resolved after the deadline");
        assert_eq!(outcome.height, deadline + 1);
        let absent = members[2];
        let params = fixture.ledger.params().clone();
        assert!(outcome.block_events.iter().any(|event| matches!(
            event,
            Event::Slashed { account, role: Role::Verifier, amount, beneficiary }
                if *account == absent && *amount == params.verifier_absence_slash
                    && *beneficiary == addr(EVALUATOR)
        )));
        assert!(outcome.block_events.iter().any(|event| matches!(
            event,
            Event::ChallengeResolved {
                challenger_won: false,
                votes_for_challenger: 1,
                votes_for_valuation: 1,
                ..
            }
        )));
        assert_eq!(
            balance(&fixture, EVALUATOR),
            evaluator_before + STAKE + params.verifier_absence_slash
        );
        let view = fixture.ledger.reward_pool(1).unwrap();
        assert_eq!(view.status, "valuated");
        assert_eq!(view.valuation.unwrap().evaluator, addr(EVALUATOR));
        assert_eq!(fixture.ledger.total_supply(), supply);
    }

    #[test]
    fn error_paths_have_stable_codes() {
        let Setup {
            mut fixture,
            assets,
        } = setup();
        let funder = addr(FUNDER);
        let mut bad = |call: Call, code: &str| {
            fixture.fails(funder, call, code);
        };
        bad(
            Call::CreateRewardPool(CreateRewardPool {
                task: String::new(),
                ..match create_call(&assets, 10) {
                    Call::CreateRewardPool(create) => create,
                    _ => unreachable!(),
                }
            }),
            "bad_task",
        );
        bad(create_call(&[], 10), "bad_pool_assets");
        bad(
            create_call(&[assets[1], assets[0]], 10),
            "assets_not_ascending",
        );
        bad(
            create_call(&[assets[0], assets[0]], 10),
            "assets_not_ascending",
        );
        bad(create_call(&[Hash32([0; 32])], 10), "asset_not_found");
        bad(create_call(&assets, 0), "zero_amount");
        bad(create_call(&assets, 1 << 100), "insufficient_balance");
        bad(Call::ClaimRewards { pool: 9 }, "pool_not_found");
        fixture.ok(funder, create_call(&assets, 1_000));
        let evaluator = addr(EVALUATOR);
        let submit = |shares: Vec<(AssetId, u16)>| Call::SubmitValuation {
            pool: 1,
            valuation: claim_of(9, shares),
        };
        fixture.fails(evaluator, Call::ClaimRewards { pool: 1 }, "no_valuation");
        fixture.fails(
            evaluator,
            Call::VoteValuation {
                pool: 1,
                for_challenger: true,
            },
            "no_challenge",
        );
        fixture.fails(
            evaluator,
            submit(vec![(assets[0], 9_999)]),
            "shares_not_total",
        );
        fixture.fails(
            evaluator,
            submit(vec![(assets[1], 5_000), (assets[0], 5_000)]),
            "assets_not_ascending",
        );
        fixture.fails(
            evaluator,
            submit(vec![(Hash32([0; 32]), 10_000)]),
            "asset_not_in_pool",
        );
        // With three of four verifiers unbonded, no committee of three can be drawn.
        for verifier in &VERIFIERS[..3] {
            fixture.ok(
                addr(*verifier),
                Call::Unbond {
                    role: Role::Verifier,
                    amount: 10_000,
                },
            );
        }
        fixture.ok(evaluator, submit(vec![(assets[0], 10_000)]));
        fixture.fails(
            addr(CHALLENGER),
            submit(vec![(assets[1], 10_000)]),
            "valuation_already_submitted",
        );
        let challenge = |shares: Vec<(AssetId, u16)>| Call::ChallengeValuation {
            pool: 1,
            valuation: claim_of(8, shares),
        };
        fixture.fails(
            evaluator,
            challenge(vec![(assets[1], 10_000)]),
            "own_valuation",
        );
        fixture.fails(
            addr(CHALLENGER),
            challenge(vec![(assets[0], 10_000)]),
            "same_shares",
        );
        let receipt = fixture.call(addr(CHALLENGER), challenge(vec![(assets[1], 10_000)]));
        assert!(matches!(
            receipt.status,
            ReceiptStatus::Failed { ref reason } if reason.starts_with("not_enough_verifiers: ")
        ));
        for _ in 0..5 {
            fixture.block(vec![]);
        }
        fixture.fails(
            addr(CHALLENGER),
            challenge(vec![(assets[1], 10_000)]),
            "challenge_window_closed",
        );
    }

    #[test]
    fn committee_waits_for_a_beacon() {
        let Setup {
            mut fixture,
            assets,
        } = setup();
        fixture.ok(addr(FUNDER), create_call(&assets, 900));
        fixture.ok(
            addr(EVALUATOR),
            Call::SubmitValuation {
                pool: 1,
                valuation: claim_of(9, vec![(assets[0], 10_000)]),
            },
        );
        fixture.ok(
            addr(CHALLENGER),
            Call::ChallengeValuation {
                pool: 1,
                valuation: claim_of(8, vec![(assets[1], 10_000)]),
            },
        );
        let height = fixture.ledger.height() + 1;
        let outcome = fixture
            .ledger
            .execute_block_unchecked_signatures(&tributary_types::BlockInput {
                height,
                proposer: crate::tests::PROPOSER,
                transactions: vec![],
                beacon: None,
            })
            .unwrap();
        assert!(outcome.block_events.is_empty(), "no beacon, no draw");
        let outcome = fixture.block(vec![]);
        assert!(
            outcome
                .block_events
                .iter()
                .any(|event| matches!(event, Event::CommitteeDrawn { .. }))
        );
    }
}
