//! training: federated-learning sessions. Contributors' assets train one model without leaving
//! their owners; the ledger records who took part and how, registers the model with them as its
//! parents, and pays them from the session's reward by contribution share.
//!
//! # Flow
//! 1. `OpenSession` (the **trainer**, who funds the session and will own the model): the spec (BLAKE3
//!    of the spec file, task, eligible assets, planned rounds, differential privacy, aggregation,
//!    secure aggregation, the aggregator's account and endpoint, participant bounds). The reward
//!    moves into a new reward pool (`rewards::create`) paying the eligible assets, named
//!    `training session {id}: {task}`, whose test-set root is the spec root, with the session's
//!    evaluator stake and challenge window. That pool takes its valuation only from this
//!    session's `FinalizeSession` (`SubmitValuation` refuses it).
//! 2. `JoinSession` (an **owner** of an eligible asset), while joins are open: **joins close with
//!    the first `CommitRound`** (the first round fixes who trains). The asset's terms must allow
//!    `ai_training` and `derivatives`, must carry no expiry height (the license has to stay valid
//!    until the model is registered, whenever that is) and must not have reached their license
//!    cap; the session must be below `participants_max`. A license token under a snapshot of the
//!    terms is minted to the trainer for no price (the reward pays for the contribution), counted
//!    against the cap like a sale, and reserved for the session: only its `FinalizeSession` may
//!    consume it, and it does not let the trainer read the data (`Ledger::may_read`): the data
//!    stays with its owners. Each join also keeps the model registrable — the joined assets' royalty rates
//!    sum to at most 10000 bps and their lineage stays within `ASSET_ANCESTORS_MAX` — so
//!    finalization cannot fail on what participants brought.
//! 3. `CommitRound` (the **aggregator**): round `last + 1`, at most the planned rounds, naming the
//!    participants it aggregated (strictly ascending, joined, at least `participants_min`) and the
//!    BLAKE3 root of the aggregate. Rounds do not wait for finality: the off-chain protocol goes
//!    on, so several commits may share a block, ordered by the aggregator's nonces.
//! 4. `FinalizeSession` (the **aggregator** only, after at least one round, once), atomically:
//!    - registers the model through the registry's own path (`registry::register_for_session`):
//!      owned by the trainer, its parents every participant with its reserved token, which is
//!      consumed (`consumed_by` = the model), each parent link's royalty rate the token's;
//!    - narrows the pool to the participants' assets and posts the shares as its valuation
//!      (`rewards::post_valuation`) with the aggregator as evaluator, putting up
//!      `evaluator_stake`; the report root is the valuation report's, or all zeros without one;
//!    - stores the bill of materials under the model's id: each input (asset = content root,
//!      contributor, license token, royalty rate, share), every round's aggregate root, ε, δ and the
//!      report root; the session names the rest (spec root, aggregation, privacy).
//! 5. From then on it is a reward pool like any other: during the challenge window anyone may
//!    `ChallengeValuation` (a committee decides; a challenge can only re-split among the
//!    participants), and `ClaimRewards` pays each participant's asset its share as revenue — to
//!    its owners and, by royalty, up its lineage — and returns the aggregator's stake. Revenue the
//!    model earns later flows to the participants at their parent links' rates.
//!
//! # Decisions
//! - **Only the aggregator finalizes.** It ran the rounds and computed the shares, so it is the one
//!   who stakes on them; a trainer that runs the session alone names itself the aggregator.
//! - **Fixed point, no floats** (see `tributary_types::training`): `_milli` values are thousandths
//!   (σ, clipping norm, ε), `_atto` values 10⁻¹⁸ units (δ), `_bps` basis points.
//! - **Privacy accounting is checked for consistency, not recomputed**: without differential
//!   privacy a finalization reports no ε and `delta_atto = 0`; with it, an ε and a `delta_atto`
//!   that is positive and at most the session's.
//! - **Aggregation settings must be meaningful for `participants_min`** (the fewest updates a
//!   round aggregates): trimmed mean trims below 5000 bps per end; Krum and Multi-Krum need
//!   `participants_min ≥ 2 × byzantine + 3`; Multi-Krum selects `1..=participants_min − byzantine`;
//!   secure aggregation needs `participants_min ≥ 2` (a sum of one update is the update).
//! - There is no cancellation: a session that is never finalized keeps its reward in escrow.

use crate::{
    error::ExecutionError,
    licensing, registry, rewards,
    state::{BillOfMaterials, MaterialInput, Participant, RoundCommitment, State, TrainingSession},
};
use tributary_types::{
    Address, Aggregation, AssetId, AssetKind, CreateRewardPool, DifferentialPrivacy, Event,
    FinalizeSession, Hash32, OpenSession, RegisterAsset, TrainingSessionId, ValuationClaim,
    limits::{
        ASSET_ANCESTORS_MAX, ATTO_PER_UNIT, BASIS_POINTS_TOTAL, ENDPOINT_BYTES_MAX,
        TRAINING_ELIGIBLE_ASSETS_MAX, TRAINING_PARTICIPANTS_MAX, TRAINING_ROUNDS_MAX,
        TRAINING_TASK_BYTES_MAX,
    },
};

/// The session, when it exists and is not finalized.
fn open_session(state: &State, id: TrainingSessionId) -> Result<TrainingSession, ExecutionError> {
    let session = state
        .training_sessions
        .get(&id)
        .cloned()
        .ok_or(ExecutionError::TrainingSessionNotFound(id))?;
    if session.model.is_some() {
        return Err(ExecutionError::SessionFinalized(id));
    }
    Ok(session)
}

fn require_aggregator(session: &TrainingSession, account: Address) -> Result<(), ExecutionError> {
    if account != session.spec.aggregator {
        return Err(ExecutionError::NotAggregator {
            session: session.id,
            account,
        });
    }
    Ok(())
}

fn check_privacy(privacy: &DifferentialPrivacy) -> Result<(), ExecutionError> {
    if privacy.noise_multiplier_milli == 0 {
        return Err(ExecutionError::BadPrivacy(
            "noise_multiplier_milli must be positive",
        ));
    }
    if privacy.clip_norm_milli == 0 {
        return Err(ExecutionError::BadPrivacy(
            "clip_norm_milli must be positive",
        ));
    }
    if privacy.delta_atto == 0 || privacy.delta_atto >= ATTO_PER_UNIT {
        return Err(ExecutionError::BadPrivacy(
            "delta_atto must be in 1..10^18 (0 < δ < 1)",
        ));
    }
    Ok(())
}

fn check_aggregation(
    aggregation: Aggregation,
    participants_min: u16,
) -> Result<(), ExecutionError> {
    let min = u32::from(participants_min);
    let krum_needs = |byzantine: u16| 2 * u32::from(byzantine) + 3;
    match aggregation {
        Aggregation::FedAvg | Aggregation::Median => Ok(()),
        Aggregation::TrimmedMean { trim_bps } => {
            if 2 * u32::from(trim_bps) >= u32::from(BASIS_POINTS_TOTAL) {
                return Err(ExecutionError::BadAggregation(
                    "trim_bps must be below 5000 so values are left after trimming both ends",
                ));
            }
            Ok(())
        }
        Aggregation::Krum { byzantine } => {
            if min < krum_needs(byzantine) {
                return Err(ExecutionError::BadAggregation(
                    "Krum needs participants_min of at least 2 × byzantine + 3",
                ));
            }
            Ok(())
        }
        Aggregation::MultiKrum {
            byzantine,
            selected,
        } => {
            if min < krum_needs(byzantine) {
                return Err(ExecutionError::BadAggregation(
                    "Multi-Krum needs participants_min of at least 2 × byzantine + 3",
                ));
            }
            if selected == 0 || u32::from(selected) > min - u32::from(byzantine) {
                return Err(ExecutionError::BadAggregation(
                    "Multi-Krum selects 1..=participants_min - byzantine updates",
                ));
            }
            Ok(())
        }
    }
}

fn check_participant_bounds(open: &OpenSession) -> Result<(), ExecutionError> {
    let (min, max) = (open.participants_min, open.participants_max);
    let reason = if min == 0 {
        Some("participants_min must be at least 1")
    } else if min > max {
        Some("participants_min is above participants_max")
    } else if usize::from(max) > TRAINING_PARTICIPANTS_MAX {
        Some("participants_max is above TRAINING_PARTICIPANTS_MAX")
    } else if usize::from(min) > open.eligible_assets.len() {
        Some("participants_min is above the number of eligible assets")
    } else if open.secure_aggregation && min < 2 {
        Some("secure aggregation needs participants_min of at least 2")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ExecutionError::BadParticipantBounds { min, max, reason }),
        None => Ok(()),
    }
}

/// `OpenSession`.
pub(crate) fn open(
    state: &mut State,
    trainer: Address,
    open: &OpenSession,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    if open.task.is_empty() || open.task.len() > TRAINING_TASK_BYTES_MAX {
        return Err(ExecutionError::BadTask {
            len: open.task.len(),
            max: TRAINING_TASK_BYTES_MAX,
        });
    }
    if open.eligible_assets.is_empty() || open.eligible_assets.len() > TRAINING_ELIGIBLE_ASSETS_MAX
    {
        return Err(ExecutionError::BadPoolAssets {
            count: open.eligible_assets.len(),
            max: TRAINING_ELIGIBLE_ASSETS_MAX,
        });
    }
    if open.rounds == 0 || open.rounds > TRAINING_ROUNDS_MAX {
        return Err(ExecutionError::BadRounds {
            rounds: open.rounds,
            max: TRAINING_ROUNDS_MAX,
        });
    }
    check_participant_bounds(open)?;
    if let Some(privacy) = &open.privacy {
        check_privacy(privacy)?;
    }
    check_aggregation(open.aggregation, open.participants_min)?;
    if open.endpoint.is_empty() || open.endpoint.len() > ENDPOINT_BYTES_MAX {
        return Err(ExecutionError::BadEndpoint {
            len: open.endpoint.len(),
            max: ENDPOINT_BYTES_MAX,
        });
    }
    let id = state.next_training_session_id()?;
    // The pool checks the assets (ascending, registered), the amounts and the window, and takes
    // the reward from the trainer.
    let pool = rewards::create(
        state,
        trainer,
        &CreateRewardPool {
            task: format!("training session {id}: {}", open.task),
            test_set_root: open.model_spec_root,
            assets: open.eligible_assets.clone(),
            amount: open.reward,
            evaluator_stake: open.evaluator_stake,
            challenge_window_blocks: open.challenge_window_blocks,
        },
        events,
    )?;
    state.set_session_pool(pool, id);
    state.set_training_session(TrainingSession {
        id,
        trainer,
        spec: open.clone(),
        pool,
        created_height: state.height,
        participants: Vec::new(),
        rounds_committed: 0,
        model: None,
        finalized_height: None,
    });
    events.push(Event::SessionOpened {
        session: id,
        trainer,
        aggregator: open.aggregator,
        pool,
        reward: open.reward,
    });
    Ok(())
}

/// `JoinSession`.
pub(crate) fn join(
    state: &mut State,
    owner: Address,
    session_id: TrainingSessionId,
    asset_id: AssetId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut session = open_session(state, session_id)?;
    if session.rounds_committed > 0 {
        return Err(ExecutionError::JoinsClosed(session_id));
    }
    registry::require_owner(state, owner, asset_id)?;
    if session
        .spec
        .eligible_assets
        .binary_search(&asset_id)
        .is_err()
    {
        return Err(ExecutionError::AssetNotEligible {
            session: session_id,
            asset: asset_id,
        });
    }
    let position = match session
        .participants
        .binary_search_by(|participant| participant.asset.cmp(&asset_id))
    {
        Ok(_) => {
            return Err(ExecutionError::AlreadyJoined {
                session: session_id,
                asset: asset_id,
            });
        }
        Err(position) => position,
    };
    if session.participants.len() >= usize::from(session.spec.participants_max) {
        return Err(ExecutionError::SessionFull {
            session: session_id,
            max: session.spec.participants_max,
        });
    }
    let asset = licensing::offered(state, asset_id)?;
    if !asset.terms.ai_training {
        return Err(ExecutionError::TermsForbidTraining {
            asset: asset_id,
            right: "ai_training",
        });
    }
    if !asset.terms.derivatives {
        return Err(ExecutionError::TermsForbidTraining {
            asset: asset_id,
            right: "derivatives",
        });
    }
    if let Some(expiry_height) = asset.terms.expiry_height {
        return Err(ExecutionError::TermsExpire {
            asset: asset_id,
            expiry_height,
        });
    }
    // The model will link every participant at its token's rate: keep the sum registrable.
    let mut rate_sum = u64::from(asset.terms.royalty_bps);
    for participant in &session.participants {
        if let Some(token) = state.licenses.get(&participant.license_token) {
            rate_sum += u64::from(token.terms.royalty_bps);
        }
    }
    if rate_sum > u64::from(BASIS_POINTS_TOTAL) {
        return Err(ExecutionError::RoyaltyRatesAboveTotal { sum: rate_sum });
    }
    // And its lineage within the ancestor limit.
    let mut inputs: Vec<AssetId> = session
        .participants
        .iter()
        .map(|participant| participant.asset)
        .collect();
    inputs.push(asset_id);
    let mut lineage = registry::ancestors_of(state, &inputs, ASSET_ANCESTORS_MAX);
    lineage.extend(inputs);
    if lineage.len() > ASSET_ANCESTORS_MAX {
        return Err(ExecutionError::TooManyAncestors {
            count: lineage.len(),
            max: ASSET_ANCESTORS_MAX,
        });
    }
    let license_token = licensing::mint(state, asset, session.trainer, 0, events)?;
    state.set_session_license(license_token, session_id);
    session.participants.insert(
        position,
        Participant {
            asset: asset_id,
            owner,
            license_token,
            joined_height: state.height,
        },
    );
    state.set_training_session(session);
    events.push(Event::SessionJoined {
        session: session_id,
        asset: asset_id,
        owner,
        license_token,
    });
    Ok(())
}

/// `CommitRound`.
pub(crate) fn commit_round(
    state: &mut State,
    aggregator: Address,
    session_id: TrainingSessionId,
    round: u32,
    aggregate_root: Hash32,
    participants: &[AssetId],
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut session = open_session(state, session_id)?;
    require_aggregator(&session, aggregator)?;
    let expected = session
        .rounds_committed
        .checked_add(1)
        .ok_or(ExecutionError::Overflow)?;
    if round != expected {
        return Err(ExecutionError::RoundOutOfOrder {
            session: session_id,
            round,
            expected,
        });
    }
    if round > session.spec.rounds {
        return Err(ExecutionError::RoundBeyondPlan {
            session: session_id,
            round,
            rounds: session.spec.rounds,
        });
    }
    if participants.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(ExecutionError::AssetsNotAscending);
    }
    for asset in participants {
        if session.participant(asset).is_none() {
            return Err(ExecutionError::NotParticipant {
                session: session_id,
                asset: *asset,
            });
        }
    }
    if participants.len() < usize::from(session.spec.participants_min) {
        return Err(ExecutionError::TooFewRoundParticipants {
            session: session_id,
            count: participants.len(),
            min: session.spec.participants_min,
        });
    }
    state.set_training_round(
        session_id,
        round,
        RoundCommitment {
            aggregate_root,
            participants: participants.to_vec(),
            committed_height: state.height,
        },
    );
    session.rounds_committed = round;
    state.set_training_session(session);
    events.push(Event::RoundCommitted {
        session: session_id,
        round,
        aggregate_root,
        participants: participants.to_vec(),
    });
    Ok(())
}

/// ε and δ must match the session's privacy settings.
fn check_privacy_report(
    session: &TrainingSession,
    finalize: &FinalizeSession,
) -> Result<(), ExecutionError> {
    let reason = match (&session.spec.privacy, finalize.epsilon_milli) {
        (None, None) if finalize.delta_atto != 0 => {
            Some("a session without differential privacy reports delta_atto = 0")
        }
        (None, None) => None,
        (None, Some(_)) => Some("a session without differential privacy reports no ε"),
        (Some(_), None) => Some("a session with differential privacy must report the ε it spent"),
        (Some(privacy), Some(_))
            if finalize.delta_atto == 0 || finalize.delta_atto > privacy.delta_atto =>
        {
            Some("delta_atto must be positive and at most the session's delta_atto")
        }
        (Some(_), Some(_)) => None,
    };
    match reason {
        Some(reason) => Err(ExecutionError::BadPrivacyReport {
            session: session.id,
            reason,
        }),
        None => Ok(()),
    }
}

/// `FinalizeSession`: lands whole or not at all.
pub(crate) fn finalize(
    state: &mut State,
    aggregator: Address,
    finalize: &FinalizeSession,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    state.atomically(events, |state, events| {
        finalize_session(state, aggregator, finalize, events)
    })
}

fn finalize_session(
    state: &mut State,
    aggregator: Address,
    finalize: &FinalizeSession,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let mut session = open_session(state, finalize.session)?;
    require_aggregator(&session, aggregator)?;
    if session.rounds_committed == 0 {
        return Err(ExecutionError::NoRoundsCommitted(session.id));
    }
    check_privacy_report(&session, finalize)?;
    for (asset, _) in &finalize.shares {
        if session.participant(asset).is_none() {
            return Err(ExecutionError::NotParticipant {
                session: session.id,
                asset: *asset,
            });
        }
    }
    let claim = ValuationClaim {
        report_root: finalize.report_root.unwrap_or(Hash32::ZERO),
        shares: finalize.shares.clone(),
    };
    let pool = state
        .reward_pools
        .get(&session.pool)
        .cloned()
        .ok_or(ExecutionError::PoolNotFound(session.pool))?;
    // Ascending, summing to exactly 10000 (the pool's assets include every participant).
    rewards::check_claim(&pool, &claim)?;

    // The model, through the registry's own rules, consuming the session's reserved tokens.
    registry::register_for_session(
        state,
        session.trainer,
        &RegisterAsset {
            content_root: finalize.model_root,
            kind: AssetKind::Model,
            name: finalize.model_name.clone(),
            byte_size: finalize.byte_size,
            owners: Vec::new(),
            parents: session
                .participants
                .iter()
                .map(|participant| (participant.asset, participant.license_token))
                .collect(),
            terms: finalize.terms.clone(),
        },
        session.id,
        events,
    )?;

    // The shares become the pool's valuation, backed by the aggregator's stake.
    let participant_assets: Vec<AssetId> = session
        .participants
        .iter()
        .map(|participant| participant.asset)
        .collect();
    rewards::narrow_assets(state, session.pool, participant_assets)?;
    rewards::post_valuation(state, aggregator, session.pool, &claim, events)?;

    // The bill of materials.
    let model = state
        .assets
        .get(&finalize.model_root)
        .cloned()
        .ok_or(ExecutionError::AssetNotFound(finalize.model_root))?;
    let inputs = session
        .participants
        .iter()
        .map(|participant| MaterialInput {
            asset: participant.asset,
            contributor: participant.owner,
            license_token: participant.license_token,
            royalty_bps: model
                .parents
                .iter()
                .find(|link| link.asset == participant.asset)
                .map_or(0, |link| link.royalty_bps),
            share_bps: finalize
                .shares
                .iter()
                .find(|(asset, _)| *asset == participant.asset)
                .map_or(0, |(_, bps)| *bps),
        })
        .collect();
    let round_roots = state
        .training_rounds
        .range((session.id, 0)..=(session.id, u32::MAX))
        .map(|(_, round)| round.aggregate_root)
        .collect();
    state.set_bill_of_materials(BillOfMaterials {
        model: finalize.model_root,
        session: session.id,
        inputs,
        round_roots,
        epsilon_milli: finalize.epsilon_milli,
        delta_atto: finalize.delta_atto,
        report_root: finalize.report_root,
        finalized_height: state.height,
    });
    session.model = Some(finalize.model_root);
    session.finalized_height = Some(state.height);
    let (id, pool, rounds_committed) = (session.id, session.pool, session.rounds_committed);
    state.set_training_session(session);
    events.push(Event::SessionFinalized {
        session: id,
        model: finalize.model_root,
        pool,
        rounds_committed,
    });
    Ok(())
}

/// The module through blocks: open, joins, rounds, finalization, the pool's window and payout.
#[cfg(test)]
mod flow_tests {
    use super::*;
    use crate::tests::{Fixture, addr, asset_id, derivative_terms, register};
    use tributary_types::{Amount, Call, PayoutKind, Role, Terms};

    const TRAINER: u8 = 1;
    const AGGREGATOR: u8 = 2;
    const CHALLENGER: u8 = 3;
    const OUTSIDER: u8 = 4;
    const VERIFIERS: [u8; 4] = [10, 11, 12, 13];
    /// Owners of the three assets that train.
    const OWNERS: [u8; 3] = [20, 21, 22];
    /// Owner of the asset the first training asset derives from.
    const UPSTREAM_OWNER: u8 = 30;
    /// Owner of the assets whose terms keep them out.
    const RESTRICTED_OWNER: u8 = 31;
    const STAKE: Amount = 5_000;
    const REWARD: Amount = 1_000_000;
    /// δ = 10⁻⁵.
    const DELTA_ATTO: u64 = 10_000_000_000_000;
    /// The royalty rates the three training assets offer.
    const RATES: [u16; 3] = [500, 1_000, 0];

    struct Setup {
        fixture: Fixture,
        /// The parent of `training[0]`.
        upstream: AssetId,
        /// Owned by `OWNERS[i]`, offering `RATES[i]`; `training[0]` derives from `upstream`.
        training: [AssetId; 3],
        no_training: AssetId,
        no_derivatives: AssetId,
        expiring: AssetId,
        capped: AssetId,
        /// Joinable terms, but not eligible.
        not_eligible: AssetId,
        /// Every asset above but `upstream` and `not_eligible`, ascending.
        eligible: Vec<AssetId>,
    }

    fn setup() -> Setup {
        let mut allocations: Vec<(Address, Amount)> = vec![
            (addr(TRAINER), 10_000_000),
            (addr(AGGREGATOR), 100_000),
            (addr(CHALLENGER), 100_000),
            (addr(OUTSIDER), 100_000),
            (addr(UPSTREAM_OWNER), 1_000),
            (addr(RESTRICTED_OWNER), 1_000),
        ];
        for verifier in VERIFIERS {
            allocations.push((addr(verifier), 100_000));
        }
        for owner in OWNERS {
            allocations.push((addr(owner), 1_000));
        }
        let mut fixture = Fixture::new(&allocations);
        let upstream = asset_id(100);
        fixture.ok(
            addr(UPSTREAM_OWNER),
            register(upstream, vec![], derivative_terms(1_000, 5)),
        );
        let token = fixture.buy(addr(OWNERS[0]), upstream);
        let training = [asset_id(1), asset_id(2), asset_id(3)];
        for (index, asset) in training.iter().enumerate() {
            let parents = if index == 0 {
                vec![(upstream, token)]
            } else {
                vec![]
            };
            fixture.ok(
                addr(OWNERS[index]),
                register(*asset, parents, derivative_terms(RATES[index], 10)),
            );
        }
        let (no_training, no_derivatives, expiring, capped) =
            (asset_id(4), asset_id(5), asset_id(6), asset_id(7));
        for (asset, terms) in [
            (
                no_training,
                Terms {
                    derivatives: true,
                    ..Terms::default()
                },
            ),
            (
                no_derivatives,
                Terms {
                    ai_training: true,
                    ..Terms::default()
                },
            ),
            (
                expiring,
                Terms {
                    expiry_height: Some(1_000),
                    ..derivative_terms(0, 0)
                },
            ),
            (
                capped,
                Terms {
                    license_cap: Some(0),
                    ..derivative_terms(0, 0)
                },
            ),
        ] {
            fixture.ok(addr(RESTRICTED_OWNER), register(asset, vec![], terms));
        }
        let not_eligible = asset_id(8);
        fixture.ok(
            addr(OWNERS[0]),
            register(not_eligible, vec![], derivative_terms(0, 0)),
        );
        for verifier in VERIFIERS {
            fixture.ok(
                addr(verifier),
                Call::Bond {
                    role: Role::Verifier,
                    amount: 10_000,
                },
            );
        }
        let mut eligible = vec![
            training[0],
            training[1],
            training[2],
            no_training,
            no_derivatives,
            expiring,
            capped,
        ];
        eligible.sort();
        Setup {
            fixture,
            upstream,
            training,
            no_training,
            no_derivatives,
            expiring,
            capped,
            not_eligible,
            eligible,
        }
    }

    fn spec(eligible: &[AssetId]) -> OpenSession {
        OpenSession {
            model_spec_root: Hash32([7; 32]),
            task: "digits MLP, 3 rounds".into(),
            eligible_assets: eligible.to_vec(),
            reward: REWARD,
            evaluator_stake: STAKE,
            challenge_window_blocks: 5,
            rounds: 3,
            privacy: Some(DifferentialPrivacy {
                noise_multiplier_milli: 1_100,
                clip_norm_milli: 1_000,
                delta_atto: DELTA_ATTO,
            }),
            aggregation: Aggregation::FedAvg,
            secure_aggregation: true,
            aggregator: addr(AGGREGATOR),
            endpoint: "127.0.0.1:7400".into(),
            participants_min: 2,
            participants_max: 3,
        }
    }

    fn join(session: TrainingSessionId, asset: AssetId) -> Call {
        Call::JoinSession { session, asset }
    }

    fn commit(session: TrainingSessionId, round: u32, participants: &[AssetId]) -> Call {
        Call::CommitRound {
            session,
            round,
            aggregate_root: Hash32([round as u8; 32]),
            participants: participants.to_vec(),
        }
    }

    const MODEL: u64 = 500;

    fn finalization(session: TrainingSessionId, shares: Vec<(AssetId, u16)>) -> FinalizeSession {
        FinalizeSession {
            session,
            model_root: asset_id(MODEL),
            model_name: "digits-mlp".into(),
            byte_size: 4_096,
            epsilon_milli: Some(2_500),
            delta_atto: DELTA_ATTO,
            shares,
            report_root: Some(Hash32([9; 32])),
            terms: derivative_terms(300, 50),
        }
    }

    fn finalize_call(finalize: FinalizeSession) -> Call {
        Call::FinalizeSession(finalize)
    }

    /// The three training assets, ascending, and the share each gets (by its index in `training`).
    fn participants(setup: &Setup) -> Vec<AssetId> {
        let mut assets = setup.training.to_vec();
        assets.sort();
        assets
    }

    /// 5000 / 3000 / 2000 bps to `training[0..3]`, ascending by asset.
    fn default_shares(setup: &Setup) -> Vec<(AssetId, u16)> {
        let mut shares: Vec<(AssetId, u16)> = setup
            .training
            .iter()
            .copied()
            .zip([5_000, 3_000, 2_000])
            .collect();
        shares.sort();
        shares
    }

    /// Opens session 1 over `eligible` and joins the three training assets.
    fn opened_and_joined(setup: &mut Setup) {
        let spec = spec(&setup.eligible);
        setup.fixture.ok(addr(TRAINER), Call::OpenSession(spec));
        for (index, asset) in setup.training.iter().enumerate() {
            setup.fixture.ok(addr(OWNERS[index]), join(1, *asset));
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
    fn session_registers_the_model_and_pays_contributors_by_share() {
        let mut setup = setup();
        let supply = setup.fixture.ledger.total_supply();
        let trainer_before = balance(&setup.fixture, TRAINER);
        let events = setup
            .fixture
            .ok(addr(TRAINER), Call::OpenSession(spec(&setup.eligible)));
        assert!(events.iter().any(|event| matches!(
            event,
            Event::SessionOpened { session: 1, pool: 1, reward: REWARD, aggregator, .. }
                if *aggregator == addr(AGGREGATOR)
        )));
        assert_eq!(setup.fixture.ledger.total_supply(), supply);
        assert_eq!(
            balance(&setup.fixture, TRAINER),
            trainer_before - REWARD - 1
        );
        let pool = setup.fixture.ledger.reward_pool(1).unwrap();
        assert_eq!(pool.task, "training session 1: digits MLP, 3 rounds");
        assert_eq!(pool.assets, setup.eligible);
        assert_eq!(pool.test_set_root, Hash32([7; 32]));
        assert_eq!(pool.status, "open");
        assert_eq!(
            setup.fixture.ledger.training_session(1).unwrap().status,
            "open"
        );

        // Joins mint the trainer a token per asset, for no price, counted against the cap.
        for (index, asset) in setup.training.iter().enumerate() {
            let events = setup.fixture.ok(addr(OWNERS[index]), join(1, *asset));
            assert!(events.iter().any(|event| matches!(
                event,
                Event::LicenseMinted { asset: minted, holder, price: 0, .. }
                    if minted == asset && *holder == addr(TRAINER)
            )));
            assert!(events.iter().any(|event| matches!(
                event,
                Event::SessionJoined { session: 1, asset: joined, owner, .. }
                    if joined == asset && *owner == addr(OWNERS[index])
            )));
            assert_eq!(
                setup.fixture.ledger.asset(asset).unwrap().licenses_minted,
                1
            );
        }
        let session = setup.fixture.ledger.training_session(1).unwrap();
        let joined: Vec<AssetId> = session.participants.iter().map(|p| p.asset).collect();
        assert_eq!(joined, participants(&setup));
        let tokens: Vec<u64> = session
            .participants
            .iter()
            .map(|p| p.license_token)
            .collect();
        for token in &tokens {
            let view = setup.fixture.ledger.license(*token).unwrap();
            assert_eq!(view.holder, addr(TRAINER));
            assert_eq!(view.consumed_by, None);
        }
        // The data stays with its owners: a session token grants no reading.
        for (index, asset) in setup.training.iter().enumerate() {
            assert!(!setup.fixture.ledger.may_read(&addr(TRAINER), asset));
            assert!(setup.fixture.ledger.may_read(&addr(OWNERS[index]), asset));
        }
        // The session's pool and tokens are reserved for its finalization.
        setup.fixture.fails(
            addr(OUTSIDER),
            Call::SubmitValuation {
                pool: 1,
                valuation: ValuationClaim {
                    report_root: Hash32([1; 32]),
                    shares: vec![(setup.training[0], 10_000)],
                },
            },
            "pool_reserved_for_session",
        );
        setup.fixture.fails(
            addr(TRAINER),
            register(
                asset_id(600),
                vec![(session.participants[0].asset, tokens[0])],
                Terms::default(),
            ),
            "license_reserved",
        );

        // Rounds: the second and third in one block.
        let all = participants(&setup);
        setup.fixture.ok(addr(AGGREGATOR), commit(1, 1, &all[..2]));
        let outcome = setup.fixture.block(vec![
            (addr(AGGREGATOR), commit(1, 2, &all)),
            (addr(AGGREGATOR), commit(1, 3, &all)),
        ]);
        for receipt in &outcome.receipts {
            assert_eq!(receipt.status, tributary_types::ReceiptStatus::Success);
        }
        let session = setup.fixture.ledger.training_session(1).unwrap();
        assert_eq!(session.status, "training");
        assert_eq!(session.rounds_committed, 3);
        assert_eq!(session.rounds.len(), 3);
        assert_eq!(session.rounds[0].participants, all[..2].to_vec());

        // Finalization: model, tokens, valuation, bill of materials.
        let aggregator_before = balance(&setup.fixture, AGGREGATOR);
        let events = setup.fixture.ok(
            addr(AGGREGATOR),
            finalize_call(finalization(1, default_shares(&setup))),
        );
        let model = asset_id(MODEL);
        assert!(events.iter().any(|event| matches!(
            event,
            Event::SessionFinalized { session: 1, model: m, pool: 1, rounds_committed: 3 }
                if *m == model
        )));
        assert!(events.iter().any(|event| matches!(
            event,
            Event::ValuationSubmitted { pool: 1, evaluator, report_root, .. }
                if *evaluator == addr(AGGREGATOR) && *report_root == Hash32([9; 32])
        )));
        assert_eq!(
            events
                .iter()
                .filter(|event| matches!(event, Event::LicenseConsumed { .. }))
                .count(),
            3
        );
        assert_eq!(
            balance(&setup.fixture, AGGREGATOR),
            aggregator_before - STAKE - 1
        );
        assert_eq!(setup.fixture.ledger.total_supply(), supply);
        let asset = setup.fixture.ledger.asset(&model).unwrap();
        assert_eq!(asset.kind, AssetKind::Model);
        assert_eq!(asset.registrant, addr(TRAINER));
        assert_eq!(asset.owners.len(), 1);
        assert_eq!(
            (asset.owners[0].address, asset.owners[0].bps),
            (addr(TRAINER), 10_000)
        );
        let parents: Vec<AssetId> = asset.parents.iter().map(|link| link.asset).collect();
        assert_eq!(parents, all);
        for link in &asset.parents {
            let index = setup
                .training
                .iter()
                .position(|a| *a == link.asset)
                .unwrap();
            assert_eq!(link.royalty_bps, RATES[index]);
            assert_eq!(
                setup
                    .fixture
                    .ledger
                    .license(link.license_token)
                    .unwrap()
                    .consumed_by,
                Some(model)
            );
        }
        let lineage = setup.fixture.ledger.lineage(&model).unwrap();
        assert!(lineage.ancestors.contains(&setup.upstream));
        let bill = setup.fixture.ledger.bill_of_materials(&model).unwrap();
        assert_eq!(bill.session, 1);
        assert_eq!(bill.trainer, addr(TRAINER));
        assert_eq!(bill.aggregator, addr(AGGREGATOR));
        assert_eq!(bill.model_spec_root, Hash32([7; 32]));
        assert_eq!(bill.epsilon_milli, Some(2_500));
        assert_eq!(bill.delta_atto, DELTA_ATTO);
        assert_eq!(bill.report_root, Some(Hash32([9; 32])));
        assert_eq!(bill.pool, 1);
        assert!(bill.secure_aggregation);
        assert_eq!(bill.privacy, spec(&setup.eligible).privacy);
        let rounds: Vec<Hash32> = bill.rounds.iter().map(|r| r.aggregate_root).collect();
        assert_eq!(
            rounds,
            vec![Hash32([1; 32]), Hash32([2; 32]), Hash32([3; 32])]
        );
        let shares = default_shares(&setup);
        for (input, (asset, bps)) in bill.inputs.iter().zip(&shares) {
            assert_eq!(input.asset, *asset);
            assert_eq!(input.share_bps, *bps);
            let index = setup.training.iter().position(|a| a == asset).unwrap();
            assert_eq!(input.contributor, addr(OWNERS[index]));
            assert_eq!(input.royalty_bps, RATES[index]);
        }
        assert_eq!(bill.inputs.len(), 3);
        let session = setup.fixture.ledger.training_session(1).unwrap();
        assert_eq!(session.status, "finalized");
        assert_eq!(session.model, Some(model));
        let pool = setup.fixture.ledger.reward_pool(1).unwrap();
        assert_eq!(pool.status, "valuated");
        assert_eq!(pool.assets, all, "the pool now pays only the participants");
        setup.fixture.fails(
            addr(AGGREGATOR),
            finalize_call(finalization(1, default_shares(&setup))),
            "session_finalized",
        );

        // The window, then the ordinary claim pays by share (and up the first asset's lineage).
        setup.fixture.fails(
            addr(OUTSIDER),
            Call::ClaimRewards { pool: 1 },
            "challenge_window_open",
        );
        for _ in 0..5 {
            setup.fixture.block(vec![]);
        }
        let aggregator_before = balance(&setup.fixture, AGGREGATOR);
        let events = setup
            .fixture
            .ok(addr(OUTSIDER), Call::ClaimRewards { pool: 1 });
        assert_eq!(paid_to(&events, addr(OWNERS[0])), 450_000);
        assert_eq!(paid_to(&events, addr(UPSTREAM_OWNER)), 50_000);
        assert_eq!(paid_to(&events, addr(OWNERS[1])), 300_000);
        assert_eq!(paid_to(&events, addr(OWNERS[2])), 200_000);
        assert_eq!(
            balance(&setup.fixture, AGGREGATOR),
            aggregator_before + STAKE
        );
        assert_eq!(setup.fixture.ledger.total_supply(), supply);

        // Later revenue of the model flows to the participants at their rates.
        let events = setup.fixture.ok(
            addr(OUTSIDER),
            Call::PayRevenue {
                asset: model,
                amount: 10_000,
            },
        );
        assert_eq!(paid_to(&events, addr(TRAINER)), 8_500);
        assert_eq!(paid_to(&events, addr(OWNERS[0])), 450);
        assert_eq!(paid_to(&events, addr(UPSTREAM_OWNER)), 50);
        assert_eq!(paid_to(&events, addr(OWNERS[1])), 1_000);
        assert_eq!(paid_to(&events, addr(OWNERS[2])), 0);
        assert!(events.iter().any(|event| matches!(
            event,
            Event::RevenuePaid { kind: PayoutKind::RoyaltyFromDescendant, source_asset, .. }
                if *source_asset == model
        )));
        assert_eq!(setup.fixture.ledger.total_supply(), supply);
    }

    #[test]
    fn challenge_re_splits_the_reward_among_participants_only() {
        let mut setup = setup();
        let supply = setup.fixture.ledger.total_supply();
        opened_and_joined(&mut setup);
        let all = participants(&setup);
        setup.fixture.ok(addr(AGGREGATOR), commit(1, 1, &all));
        setup.fixture.ok(
            addr(AGGREGATOR),
            finalize_call(finalization(1, default_shares(&setup))),
        );
        let challenge = |shares: Vec<(AssetId, u16)>| Call::ChallengeValuation {
            pool: 1,
            valuation: ValuationClaim {
                report_root: Hash32([8; 32]),
                shares,
            },
        };
        // Eligible, but it did not take part.
        setup.fixture.fails(
            addr(CHALLENGER),
            challenge(vec![(setup.no_training, 10_000)]),
            "asset_not_in_pool",
        );
        setup.fixture.ok(
            addr(CHALLENGER),
            challenge(vec![(setup.training[1], 10_000)]),
        );
        let outcome = setup.fixture.block(vec![]);
        let members = outcome
            .block_events
            .iter()
            .find_map(|event| match event {
                Event::CommitteeDrawn { members, .. } => Some(members.clone()),
                _ => None,
            })
            .expect("the committee is drawn at the next block");
        for member in &members[..2] {
            setup.fixture.ok(
                *member,
                Call::VoteValuation {
                    pool: 1,
                    for_challenger: true,
                },
            );
        }
        assert_eq!(
            setup
                .fixture
                .ledger
                .reward_pool(1)
                .unwrap()
                .valuation
                .unwrap()
                .evaluator,
            addr(CHALLENGER)
        );
        for _ in 0..5 {
            setup.fixture.block(vec![]);
        }
        let events = setup
            .fixture
            .ok(addr(OUTSIDER), Call::ClaimRewards { pool: 1 });
        assert_eq!(paid_to(&events, addr(OWNERS[1])), REWARD);
        assert_eq!(setup.fixture.ledger.total_supply(), supply);
        // The bill of materials keeps the shares as the aggregator posted them.
        let bill = setup
            .fixture
            .ledger
            .bill_of_materials(&asset_id(MODEL))
            .unwrap();
        assert_eq!(bill.inputs.iter().map(|i| i.share_bps).sum::<u16>(), 10_000);
    }

    #[test]
    fn open_errors_leave_state_unchanged() {
        let mut setup = setup();
        let eligible = setup.eligible.clone();
        let fixture = &mut setup.fixture;
        let mut bad = |change: &dyn Fn(&mut OpenSession), code: &str| {
            let mut open = spec(&eligible);
            change(&mut open);
            fixture.fails(addr(TRAINER), Call::OpenSession(open), code);
        };
        bad(&|open| open.task = String::new(), "bad_task");
        bad(&|open| open.task = "t".repeat(121), "bad_task");
        bad(&|open| open.eligible_assets = vec![], "bad_pool_assets");
        bad(
            &|open| open.eligible_assets.reverse(),
            "assets_not_ascending",
        );
        bad(
            &|open| open.eligible_assets.insert(0, Hash32::ZERO),
            "asset_not_found",
        );
        bad(&|open| open.reward = 0, "zero_amount");
        bad(&|open| open.evaluator_stake = 0, "zero_amount");
        bad(&|open| open.reward = 1 << 100, "insufficient_balance");
        bad(
            &|open| open.challenge_window_blocks = 0,
            "bad_challenge_window",
        );
        bad(&|open| open.rounds = 0, "bad_rounds");
        bad(&|open| open.rounds = 1_001, "bad_rounds");
        bad(&|open| open.participants_min = 0, "bad_participant_bounds");
        bad(&|open| open.participants_min = 4, "bad_participant_bounds");
        bad(&|open| open.participants_max = 33, "bad_participant_bounds");
        bad(
            &|open| open.eligible_assets.truncate(1),
            "bad_participant_bounds",
        );
        bad(&|open| open.participants_min = 1, "bad_participant_bounds");
        let privacy = |change: fn(&mut DifferentialPrivacy)| {
            move |open: &mut OpenSession| {
                if let Some(privacy) = open.privacy.as_mut() {
                    change(privacy);
                }
            }
        };
        bad(&privacy(|p| p.noise_multiplier_milli = 0), "bad_privacy");
        bad(&privacy(|p| p.clip_norm_milli = 0), "bad_privacy");
        bad(&privacy(|p| p.delta_atto = 0), "bad_privacy");
        bad(&privacy(|p| p.delta_atto = ATTO_PER_UNIT), "bad_privacy");
        bad(
            &|open| open.aggregation = Aggregation::TrimmedMean { trim_bps: 5_000 },
            "bad_aggregation",
        );
        bad(
            &|open| open.aggregation = Aggregation::Krum { byzantine: 0 },
            "bad_aggregation",
        );
        bad(
            &|open| {
                open.participants_min = 3;
                open.aggregation = Aggregation::MultiKrum {
                    byzantine: 0,
                    selected: 0,
                };
            },
            "bad_aggregation",
        );
        bad(
            &|open| {
                open.participants_min = 3;
                open.aggregation = Aggregation::MultiKrum {
                    byzantine: 0,
                    selected: 4,
                };
            },
            "bad_aggregation",
        );
        bad(&|open| open.endpoint = String::new(), "bad_endpoint");
        bad(&|open| open.endpoint = "e".repeat(201), "bad_endpoint");
        assert!(fixture.ledger.training_session(1).is_none());
        assert!(fixture.ledger.reward_pool(1).is_none());
        // The edges that are allowed.
        let mut open = spec(&eligible);
        open.participants_min = 3;
        open.aggregation = Aggregation::MultiKrum {
            byzantine: 0,
            selected: 3,
        };
        fixture.ok(addr(TRAINER), Call::OpenSession(open));
        let mut open = spec(&eligible);
        open.aggregation = Aggregation::TrimmedMean { trim_bps: 4_999 };
        open.privacy = None;
        open.secure_aggregation = false;
        open.participants_min = 1;
        open.rounds = 1_000;
        fixture.ok(addr(TRAINER), Call::OpenSession(open));
        assert_eq!(fixture.ledger.training_session(2).unwrap().pool, 2);
    }

    #[test]
    fn join_errors_leave_state_unchanged() {
        let mut setup = setup();
        setup
            .fixture
            .ok(addr(TRAINER), Call::OpenSession(spec(&setup.eligible)));
        let fixture = &mut setup.fixture;
        let restricted = addr(RESTRICTED_OWNER);
        fixture.fails(
            addr(OWNERS[0]),
            join(9, setup.training[0]),
            "training_session_not_found",
        );
        fixture.fails(addr(OUTSIDER), join(1, setup.training[0]), "not_an_owner");
        fixture.fails(addr(OWNERS[0]), join(1, asset_id(999)), "asset_not_found");
        fixture.fails(
            addr(OWNERS[0]),
            join(1, setup.not_eligible),
            "asset_not_eligible",
        );
        let reason = fixture.fails(
            restricted,
            join(1, setup.no_training),
            "terms_forbid_training",
        );
        assert!(reason.contains("ai_training"), "{reason}");
        let reason = fixture.fails(
            restricted,
            join(1, setup.no_derivatives),
            "terms_forbid_training",
        );
        assert!(reason.contains("derivatives"), "{reason}");
        fixture.fails(restricted, join(1, setup.expiring), "terms_expire");
        fixture.fails(restricted, join(1, setup.capped), "license_cap_reached");
        fixture.ok(addr(OWNERS[0]), join(1, setup.training[0]));
        fixture.fails(
            addr(OWNERS[0]),
            join(1, setup.training[0]),
            "already_joined",
        );
        fixture.ok(addr(OWNERS[1]), join(1, setup.training[1]));
        // Joins close with the first round.
        let mut two = vec![setup.training[0], setup.training[1]];
        two.sort();
        fixture.ok(addr(AGGREGATOR), commit(1, 1, &two));
        fixture.fails(addr(OWNERS[2]), join(1, setup.training[2]), "joins_closed");
        // A full session.
        let mut open = spec(&setup.eligible);
        open.participants_max = 2;
        fixture.ok(addr(TRAINER), Call::OpenSession(open));
        fixture.ok(addr(OWNERS[0]), join(2, setup.training[0]));
        fixture.ok(addr(OWNERS[1]), join(2, setup.training[1]));
        fixture.fails(addr(OWNERS[2]), join(2, setup.training[2]), "session_full");
        // Royalty rates the model could not carry.
        let (high, higher) = (asset_id(40), asset_id(41));
        fixture.ok(
            addr(OWNERS[2]),
            register(high, vec![], derivative_terms(6_000, 0)),
        );
        fixture.ok(
            addr(OWNERS[2]),
            register(higher, vec![], derivative_terms(4_001, 0)),
        );
        let mut pair = vec![high, higher];
        pair.sort();
        fixture.ok(addr(TRAINER), Call::OpenSession(spec(&pair)));
        fixture.ok(addr(OWNERS[2]), join(3, high));
        fixture.fails(
            addr(OWNERS[2]),
            join(3, higher),
            "royalty_rates_above_total",
        );
        // A finalized session.
        fixture.ok(
            addr(AGGREGATOR),
            finalize_call(finalization(1, vec![(two[0], 10_000)])),
        );
        fixture.fails(
            addr(OWNERS[2]),
            join(1, setup.training[2]),
            "session_finalized",
        );
    }

    #[test]
    fn join_refuses_a_lineage_past_the_ancestor_limit() {
        let mut fixture = Fixture::new(&[(addr(TRAINER), 10_000_000)]);
        fixture.ok(
            addr(TRAINER),
            register(asset_id(0), vec![], derivative_terms(0, 0)),
        );
        // A chain: asset i has parent i-1, so asset i has i ancestors.
        let last = ASSET_ANCESTORS_MAX as u64;
        for i in 1..=last {
            let parent = asset_id(i - 1);
            let token = fixture.ledger.license_count() + 1;
            let outcome = fixture.block(vec![
                (addr(TRAINER), Call::BuyLicense { asset: parent }),
                (
                    addr(TRAINER),
                    register(asset_id(i), vec![(parent, token)], derivative_terms(0, 0)),
                ),
            ]);
            assert!(
                outcome
                    .receipts
                    .iter()
                    .all(|r| r.status == tributary_types::ReceiptStatus::Success)
            );
        }
        let mut open = spec(&[asset_id(last)]);
        open.participants_min = 1;
        open.participants_max = 1;
        open.secure_aggregation = false;
        fixture.ok(addr(TRAINER), Call::OpenSession(open));
        fixture.fails(addr(TRAINER), join(1, asset_id(last)), "too_many_ancestors");
    }

    #[test]
    fn commit_errors_leave_state_unchanged() {
        let mut setup = setup();
        opened_and_joined(&mut setup);
        let all = participants(&setup);
        let fixture = &mut setup.fixture;
        let aggregator = addr(AGGREGATOR);
        fixture.fails(aggregator, commit(9, 1, &all), "training_session_not_found");
        fixture.fails(addr(TRAINER), commit(1, 1, &all), "not_aggregator");
        fixture.fails(aggregator, commit(1, 0, &all), "round_out_of_order");
        fixture.fails(aggregator, commit(1, 2, &all), "round_out_of_order");
        fixture.fails(
            aggregator,
            commit(1, 1, &[all[1], all[0]]),
            "assets_not_ascending",
        );
        fixture.fails(
            aggregator,
            commit(1, 1, &[all[0], all[0]]),
            "assets_not_ascending",
        );
        let mut with_outsider = vec![all[0], setup.no_training];
        with_outsider.sort();
        fixture.fails(aggregator, commit(1, 1, &with_outsider), "not_participant");
        fixture.fails(
            aggregator,
            commit(1, 1, &all[..1]),
            "too_few_round_participants",
        );
        for round in 1..=3 {
            fixture.ok(aggregator, commit(1, round, &all));
        }
        fixture.fails(aggregator, commit(1, 4, &all), "round_beyond_plan");
        fixture.ok(
            aggregator,
            finalize_call(finalization(1, vec![(all[0], 10_000)])),
        );
        fixture.fails(aggregator, commit(1, 4, &all), "session_finalized");
    }

    #[test]
    fn finalize_errors_leave_state_unchanged() {
        let mut setup = setup();
        opened_and_joined(&mut setup);
        let all = participants(&setup);
        let shares = default_shares(&setup);
        let no_training = setup.no_training;
        let fixture = &mut setup.fixture;
        let aggregator = addr(AGGREGATOR);
        let with = |change: &dyn Fn(&mut FinalizeSession)| {
            let mut finalize = finalization(1, shares.clone());
            change(&mut finalize);
            finalize_call(finalize)
        };
        fixture.fails(aggregator, with(&|_| {}), "no_rounds_committed");
        fixture.ok(aggregator, commit(1, 1, &all));
        fixture.fails(
            aggregator,
            with(&|f| f.session = 9),
            "training_session_not_found",
        );
        fixture.fails(addr(TRAINER), with(&|_| {}), "not_aggregator");
        fixture.fails(
            aggregator,
            with(&|f| f.epsilon_milli = None),
            "bad_privacy_report",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.delta_atto = 0),
            "bad_privacy_report",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.delta_atto = DELTA_ATTO + 1),
            "bad_privacy_report",
        );
        let reason = fixture.fails(
            aggregator,
            with(&|f| {
                f.shares.push((no_training, 0));
                f.shares.sort();
            }),
            "not_participant",
        );
        assert!(reason.contains(&no_training.to_string()), "{reason}");
        fixture.fails(
            aggregator,
            with(&|f| f.shares[0].1 -= 1),
            "shares_not_total",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.shares.reverse()),
            "assets_not_ascending",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.model_root = all[0]),
            "already_registered",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.model_name = String::new()),
            "bad_name",
        );
        fixture.fails(
            aggregator,
            with(&|f| f.terms.royalty_bps = 10_001),
            "bad_royalty_rate",
        );
        // Without the stake, nothing at all happens: no model, tokens unconsumed, no valuation.
        let stake_holder = addr(OUTSIDER);
        let spare = fixture.ledger.balance(&aggregator) - 10;
        fixture.ok(
            aggregator,
            Call::Transfer {
                to: stake_holder,
                amount: spare,
            },
        );
        fixture.fails(aggregator, with(&|_| {}), "insufficient_balance");
        assert!(fixture.ledger.asset(&asset_id(MODEL)).is_none());
        assert!(fixture.ledger.bill_of_materials(&asset_id(MODEL)).is_none());
        for participant in fixture.ledger.training_session(1).unwrap().participants {
            let token = fixture.ledger.license(participant.license_token).unwrap();
            assert_eq!(token.consumed_by, None);
        }
        assert_eq!(fixture.ledger.reward_pool(1).unwrap().status, "open");
        fixture.ok(
            stake_holder,
            Call::Transfer {
                to: aggregator,
                amount: spare,
            },
        );
        fixture.ok(aggregator, with(&|_| {}));
        fixture.fails(aggregator, with(&|_| {}), "session_finalized");
    }

    #[test]
    fn session_without_privacy_reports_no_epsilon_and_paging_works() {
        let mut setup = setup();
        let mut open = spec(&setup.eligible);
        open.privacy = None;
        open.secure_aggregation = false;
        open.participants_min = 3;
        open.aggregation = Aggregation::Krum { byzantine: 0 };
        setup.fixture.ok(addr(TRAINER), Call::OpenSession(open));
        for (index, asset) in setup.training.iter().enumerate() {
            setup.fixture.ok(addr(OWNERS[index]), join(1, *asset));
        }
        let all = participants(&setup);
        setup.fixture.ok(addr(AGGREGATOR), commit(1, 1, &all));
        let favourite = setup.training[1];
        let plain = |epsilon_milli: Option<u64>, delta_atto: u64| {
            finalize_call(FinalizeSession {
                epsilon_milli,
                delta_atto,
                report_root: None,
                ..finalization(1, vec![(favourite, 10_000)])
            })
        };
        setup
            .fixture
            .fails(addr(AGGREGATOR), plain(Some(1), 0), "bad_privacy_report");
        setup
            .fixture
            .fails(addr(AGGREGATOR), plain(None, 1), "bad_privacy_report");
        setup.fixture.ok(addr(AGGREGATOR), plain(None, 0));
        let bill = setup
            .fixture
            .ledger
            .bill_of_materials(&asset_id(MODEL))
            .unwrap();
        assert_eq!(bill.epsilon_milli, None);
        assert_eq!(bill.delta_atto, 0);
        assert_eq!(bill.report_root, None);
        assert_eq!(bill.privacy, None);
        assert_eq!(bill.aggregation, Aggregation::Krum { byzantine: 0 });
        for input in &bill.inputs {
            let expected = if input.asset == favourite { 10_000 } else { 0 };
            assert_eq!(input.share_bps, expected);
        }
        let valuation = setup
            .fixture
            .ledger
            .reward_pool(1)
            .unwrap()
            .valuation
            .unwrap();
        assert_eq!(valuation.report_root, Hash32::ZERO, "no report");
        // Paging and absent records.
        setup
            .fixture
            .ok(addr(TRAINER), Call::OpenSession(spec(&setup.eligible)));
        let ids: Vec<u64> = setup
            .fixture
            .ledger
            .training_sessions(0, 10)
            .iter()
            .map(|session| session.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(setup.fixture.ledger.training_sessions(1, 10).len(), 1);
        assert_eq!(setup.fixture.ledger.training_sessions(0, 1).len(), 1);
        assert!(setup.fixture.ledger.training_session(3).is_none());
        assert!(
            setup
                .fixture
                .ledger
                .bill_of_materials(&setup.training[0])
                .is_none()
        );
        let json =
            serde_json::to_string(&setup.fixture.ledger.training_session(1).unwrap()).unwrap();
        assert!(json.contains("\"method\":\"krum\""), "{json}");
        assert!(json.contains(&format!("\"reward\":\"{REWARD}\"")), "{json}");
    }
}
