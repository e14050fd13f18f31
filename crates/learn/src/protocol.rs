//! The federated protocol between one aggregator and contributor processes, as two transport-agnostic
//! state machines: the [`Aggregator`] answers each participant's poll with a [`Downlink`] and takes its
//! [`Uplink`]s; a [`Participant`] turns each downlink into at most one uplink. A transport (HTTP in the
//! CLI) carries them and authenticates who sent what; time enters only through [`Aggregator::tick`].
//!
//! A session runs as a series of *jobs*, each one SecAgg+ secure sum among a group of participants:
//! 1. **Moments** (one job over everyone): each participant uploads its row count and per-feature sums and
//!    sums of squares, so the aggregator can standardise features over all the data without seeing any.
//! 2. **Rounds**: the sampled participants are split into groups (see [`crate::session`]); each trains the
//!    round's global model locally, clips and noises its change (DP), quantises `[w, w·Δ]`, and the
//!    group's secure sum gives the aggregator the group's mean change. The groups are combined by the
//!    aggregation rule, contribution is credited, and the next round starts.
//!
//! Within a job the stages are SecAgg+'s: keys → shares → masked input → unmasking. A stage closes when
//! every expected participant has answered or its deadline passes; whoever is missing is a dropout and
//! secure aggregation recovers (or abandons the group if fewer than its threshold remain). Local training
//! happens before a participant advertises its keys, so the first stage's deadline is the training
//! deadline.
//!
//! What crosses the wire: public keys, sealed shares, masked vectors, unmasking shares, and, from the
//! aggregator, the global parameters and the standardisation statistics. A participant's rows and its
//! individual update never leave its process.

use crate::data::{Dataset, Moments, Standardizer};
use crate::error::{LearnError, Result};
use crate::federated::{FederatedClient, sample_clients};
use crate::model::{Model, ModelSpec};
use crate::privacy::RdpAccountant;
use crate::secagg::{
    AdvertisedKeys, Client, KeyAdvertisement, MaskedInput, Quantizer, RoundConfig, RoutedShares,
    SecAggError, Server, SharedKeys, UnmaskRequest, UnmaskResponse,
};
use crate::session::{
    Behaviour, Contributions, GroupResult, RoundReport, SessionConfig, SessionReport,
    account_round, combine_groups, deal_groups, decode_group, epsilon_spent, prepare_upload,
    secure_round_config,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Everything both sides agree on before the first job: fixed by the session on the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The session id (bound into every secure-aggregation key and ciphertext).
    pub session: [u8; 32],
    /// The model.
    pub spec: ModelSpec,
    /// Class names, so every participant numbers labels alike.
    pub classes: Vec<String>,
    /// How the session trains.
    pub config: SessionConfig,
    /// The participants' ids, ascending.
    pub participants: Vec<u32>,
    /// Deadline of a local training step (the first stage of a round's jobs), in milliseconds.
    pub training_timeout_ms: u64,
    /// Deadline of every other stage, in milliseconds.
    pub stage_timeout_ms: u64,
}

/// Range of the quantised moments (counts and sums are divided by the examples cap first).
const MOMENTS_RANGE: f32 = 1.0e6;
/// Modulus of the moments' secure sum.
const MOMENTS_MODULUS_BITS: u32 = 64;

/// Which secure sum: the moments (`phase` 0) or round `phase − 1`, and the group in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId {
    /// 0 for the moments, `r + 1` for round `r`.
    pub phase: u32,
    /// The group within the phase.
    pub group: u32,
}

/// What the aggregator tells a participant when it polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Externally tagged: an internally tagged enum would lose the integer keys of its maps.
#[serde(rename_all = "snake_case")]
pub enum Downlink {
    /// Nothing to do yet.
    Wait,
    /// Upload your moments in this secure sum.
    Moments {
        /// The job.
        job: JobId,
        /// Its secure-aggregation parameters.
        secagg: RoundConfig,
    },
    /// Train the round's global model and upload your change in this secure sum.
    Train {
        /// The job.
        job: JobId,
        /// The round.
        round: u32,
        /// The global parameters.
        global: Vec<f32>,
        /// Feature statistics over all participants.
        standardizer: Standardizer,
        /// Its secure-aggregation parameters.
        secagg: RoundConfig,
    },
    /// Stage 1: the advertised keys of your group.
    Keys {
        /// The job.
        job: JobId,
        /// The keys.
        keys: AdvertisedKeys,
    },
    /// Stage 2: the shares addressed to you.
    Shares {
        /// The job.
        job: JobId,
        /// The shares.
        shares: RoutedShares,
    },
    /// Stage 3: who survived and who dropped.
    Unmask {
        /// The job.
        job: JobId,
        /// The request.
        request: UnmaskRequest,
    },
    /// The session is over.
    Finished {
        /// Rounds completed.
        rounds: u32,
    },
}

/// What a participant sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Externally tagged: an internally tagged enum would lose the integer keys of its maps.
#[serde(rename_all = "snake_case")]
pub enum Uplink {
    /// Stage 0.
    Advertise {
        /// The job.
        job: JobId,
        /// The message.
        message: KeyAdvertisement,
    },
    /// Stage 1.
    Share {
        /// The job.
        job: JobId,
        /// The message.
        message: SharedKeys,
    },
    /// Stage 2.
    Masked {
        /// The job.
        job: JobId,
        /// The message.
        message: MaskedInput,
    },
    /// Stage 3.
    Unmask {
        /// The job.
        job: JobId,
        /// The message.
        message: UnmaskResponse,
    },
}

impl Uplink {
    fn job(&self) -> JobId {
        match self {
            Self::Advertise { job, .. }
            | Self::Share { job, .. }
            | Self::Masked { job, .. }
            | Self::Unmask { job, .. } => *job,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Keys,
    Shares,
    Masked,
    Unmask,
    Done,
    Abandoned,
}

#[derive(Debug)]
struct Job {
    id: JobId,
    members: Vec<u32>,
    server: Server,
    stage: Stage,
    deadline_ms: u64,
    answered: BTreeSet<u32>,
    keys: Option<AdvertisedKeys>,
    routed: BTreeMap<u32, RoutedShares>,
    request: Option<UnmaskRequest>,
    result: Option<(Vec<u64>, Vec<u32>)>,
}

impl Job {
    fn expected(&self) -> BTreeSet<u32> {
        match self.stage {
            Stage::Keys => self.members.iter().copied().collect(),
            Stage::Shares => self
                .keys
                .as_ref()
                .map(|keys| keys.keys.keys().copied().collect())
                .unwrap_or_default(),
            Stage::Masked => self.routed.keys().copied().collect(),
            Stage::Unmask => self
                .request
                .as_ref()
                .map(|request| request.surviving.clone())
                .unwrap_or_default(),
            Stage::Done | Stage::Abandoned => BTreeSet::new(),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.stage, Stage::Done | Stage::Abandoned)
    }
}

/// The aggregator's side of a session.
pub struct Aggregator {
    plan: Plan,
    phase: u32,
    jobs: Vec<Job>,
    standardizer: Option<Standardizer>,
    global: Vec<f32>,
    model: Model,
    validation: Option<Dataset>,
    test: Option<Dataset>,
    contributions: Contributions,
    accountant: RdpAccountant,
    reports: Vec<RoundReport>,
    finished: bool,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Aggregator")
            .field("phase", &self.phase)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Aggregator {
    /// An aggregator for `plan`, holding its own held-out rows (raw; standardised once the moments
    /// are in): `validation` measures contribution, `test` accuracy.
    ///
    /// # Errors
    ///
    /// An invalid plan, or held-out data that does not fit the model.
    pub fn new(
        plan: Plan,
        validation: Option<Dataset>,
        test: Option<Dataset>,
        now_ms: u64,
    ) -> Result<Self> {
        plan.config.validate(plan.participants.len())?;
        // Between nodes every update goes through a secure sum: refuse a plan that asks for
        // plain updates rather than run it differently from what it says.
        if !plan.config.secure_aggregation {
            return Err(LearnError::invalid(
                "plan",
                "the networked protocol always aggregates with SecAgg+ in groups: set secure_aggregation = true and groups >= 1 (plain FedAvg over raw updates runs only in-process)",
            ));
        }
        if plan.participants.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(LearnError::invalid(
                "plan",
                "participant ids must be ascending without repeats",
            ));
        }
        if plan.classes.len() != plan.spec.classes {
            return Err(LearnError::invalid(
                "plan",
                format!(
                    "{} class names for a model of {} classes",
                    plan.classes.len(),
                    plan.spec.classes
                ),
            ));
        }
        for data in validation.iter().chain(&test) {
            plan.spec.check_data(data)?;
        }
        let model = Model::new(plan.spec.clone(), plan.config.seed)?;
        let global = model.parameters()?;
        let contributions = Contributions::new(&plan.participants);
        let mut aggregator = Self {
            plan,
            phase: 0,
            jobs: Vec::new(),
            standardizer: None,
            global,
            model,
            validation,
            test,
            contributions,
            accountant: RdpAccountant::new(),
            reports: Vec::new(),
            finished: false,
        };
        aggregator.start_phase(now_ms)?;
        Ok(aggregator)
    }

    /// Whether every round is done.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The rounds reported so far.
    #[must_use]
    pub fn reports(&self) -> &[RoundReport] {
        &self.reports
    }

    /// The current global parameters.
    #[must_use]
    pub fn parameters(&self) -> &[f32] {
        &self.global
    }

    /// The standardiser agreed from the moments, once known.
    #[must_use]
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// The model with the current global parameters.
    ///
    /// # Errors
    ///
    /// Only on a tensor-library failure.
    pub fn model(&self) -> Result<&Model> {
        self.model.set_parameters(&self.global)?;
        Ok(&self.model)
    }

    fn vector_length(&self) -> usize {
        if self.phase == 0 {
            1 + 2 * self.plan.spec.features
        } else {
            1 + self.global.len()
        }
    }

    fn start_phase(&mut self, now_ms: u64) -> Result<()> {
        let config = &self.plan.config;
        let groups: Vec<Vec<u32>> = if self.phase == 0 {
            vec![self.plan.participants.clone()]
        } else {
            let round = self.phase - 1;
            let count = config.sampled(self.plan.participants.len());
            let sampled = sample_clients(&self.plan.participants, count, config.seed, round);
            let group_count = config.groups.clamp(1, sampled.len());
            deal_groups(&sampled, group_count, config.seed, round)
        };
        let deadline_ms = now_ms.saturating_add(if self.phase == 0 {
            self.plan.stage_timeout_ms
        } else {
            self.plan.training_timeout_ms
        });
        let vector_length = self.vector_length();
        let mut jobs = Vec::with_capacity(groups.len());
        for (group, members) in groups.into_iter().enumerate() {
            let mut secagg = secure_round_config(config, 0, group, &members, vector_length);
            secagg.tag.session = self.plan.session;
            secagg.tag.round = u64::from(self.phase) << 16 | group as u64;
            if self.phase == 0 {
                secagg.modulus_bits = MOMENTS_MODULUS_BITS;
            }
            let server = Server::new(secagg).map_err(secagg_error)?;
            jobs.push(Job {
                id: JobId {
                    phase: self.phase,
                    group: group as u32,
                },
                members,
                server,
                stage: Stage::Keys,
                deadline_ms,
                answered: BTreeSet::new(),
                keys: None,
                routed: BTreeMap::new(),
                request: None,
                result: None,
            });
        }
        self.jobs = jobs;
        Ok(())
    }

    /// What `participant` should do now.
    #[must_use]
    pub fn downlink(&self, participant: u32) -> Downlink {
        if self.finished {
            return Downlink::Finished {
                rounds: self.reports.len() as u32,
            };
        }
        let Some(job) = self
            .jobs
            .iter()
            .find(|job| job.members.contains(&participant))
        else {
            return Downlink::Wait;
        };
        if job.answered.contains(&participant) || !job.expected().contains(&participant) {
            return Downlink::Wait;
        }
        let secagg = job.server.config().clone();
        match job.stage {
            Stage::Keys if self.phase == 0 => Downlink::Moments {
                job: job.id,
                secagg,
            },
            Stage::Keys => match &self.standardizer {
                Some(standardizer) => Downlink::Train {
                    job: job.id,
                    round: self.phase - 1,
                    global: self.global.clone(),
                    standardizer: standardizer.clone(),
                    secagg,
                },
                None => Downlink::Wait,
            },
            Stage::Shares => match &job.keys {
                Some(keys) => Downlink::Keys {
                    job: job.id,
                    keys: keys.clone(),
                },
                None => Downlink::Wait,
            },
            Stage::Masked => match job.routed.get(&participant) {
                Some(shares) => Downlink::Shares {
                    job: job.id,
                    shares: shares.clone(),
                },
                None => Downlink::Wait,
            },
            Stage::Unmask => match &job.request {
                Some(request) => Downlink::Unmask {
                    job: job.id,
                    request: request.clone(),
                },
                None => Downlink::Wait,
            },
            Stage::Done | Stage::Abandoned => Downlink::Wait,
        }
    }

    /// Takes `participant`'s uplink. The transport has authenticated the sender as `participant`.
    ///
    /// # Errors
    ///
    /// A message for another job or stage (late, replayed or out of order), from a client that is not
    /// expected, or one secure aggregation rejects. The state is unchanged and the session goes on.
    pub fn receive(&mut self, participant: u32, uplink: Uplink) -> Result<()> {
        let job_id = uplink.job();
        let job = self
            .jobs
            .iter_mut()
            .find(|job| job.id == job_id)
            .ok_or_else(|| {
                LearnError::invalid(
                    "uplink",
                    format!(
                        "job {job_id:?} is not running (the session is at phase {}); a late or replayed message",
                        self.phase
                    ),
                )
            })?;
        if !job.expected().contains(&participant) || job.answered.contains(&participant) {
            return Err(LearnError::invalid(
                "uplink",
                format!(
                    "participant {participant} is not expected to answer this stage of job {job_id:?}"
                ),
            ));
        }
        let sender_matches = match &uplink {
            Uplink::Advertise { message, .. } => message.sender == participant,
            Uplink::Share { message, .. } => message.sender == participant,
            Uplink::Masked { message, .. } => message.sender == participant,
            Uplink::Unmask { message, .. } => message.sender == participant,
        };
        if !sender_matches {
            return Err(LearnError::invalid(
                "uplink",
                format!("a message signed by participant {participant} names another sender"),
            ));
        }
        match (job.stage, uplink) {
            (Stage::Keys, Uplink::Advertise { message, .. }) => {
                job.server.receive_key_advertisement(&message)
            }
            (Stage::Shares, Uplink::Share { message, .. }) => {
                job.server.receive_shared_keys(message)
            }
            (Stage::Masked, Uplink::Masked { message, .. }) => {
                job.server.receive_masked_input(&message)
            }
            (Stage::Unmask, Uplink::Unmask { message, .. }) => {
                job.server.receive_unmask_response(message)
            }
            (stage, uplink) => {
                return Err(LearnError::invalid(
                    "uplink",
                    format!(
                        "a {} message while job {job_id:?} is at {stage:?}",
                        uplink_name(&uplink)
                    ),
                ));
            }
        }
        .map_err(secagg_error)?;
        job.answered.insert(participant);
        Ok(())
    }

    /// Closes the stages that are complete or past their deadline, and finishes phases whose jobs are
    /// all done. Returns the reports of rounds completed by this call.
    ///
    /// # Errors
    ///
    /// Aggregation or evaluation failing (not dropouts: those abandon a group and the session goes on).
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<RoundReport>> {
        let mut completed = Vec::new();
        if self.finished {
            return Ok(completed);
        }
        let stage_timeout_ms = self.plan.stage_timeout_ms;
        for job in &mut self.jobs {
            loop {
                if job.finished() {
                    break;
                }
                let expected = job.expected();
                let complete = !expected.is_empty() && expected.is_subset(&job.answered);
                if !complete && now_ms < job.deadline_ms {
                    break;
                }
                advance(job, now_ms.saturating_add(stage_timeout_ms));
            }
        }
        if self.jobs.iter().all(Job::finished) {
            if let Some(report) = self.finish_phase()? {
                completed.push(report);
            }
            if self.phase >= self.plan.config.rounds {
                self.finished = true;
            } else {
                self.phase += 1;
                self.start_phase(now_ms)?;
            }
        }
        Ok(completed)
    }

    fn finish_phase(&mut self) -> Result<Option<RoundReport>> {
        let config = self.plan.config.clone();
        if self.phase == 0 {
            let job = self
                .jobs
                .first()
                .ok_or_else(|| LearnError::invalid("moments", "no secure sum for the moments"))?;
            let Some((sum, contributors)) = &job.result else {
                return Err(LearnError::invalid(
                    "moments",
                    "too few participants answered to compute the feature statistics; the session \
                     cannot start (check that the participants are running)",
                ));
            };
            let quantizer = Quantizer::new(MOMENTS_RANGE, job.members.len(), MOMENTS_MODULUS_BITS)
                .map_err(secagg_error)?;
            let decoded = quantizer
                .decode_sum(sum, contributors.len())
                .map_err(secagg_error)?;
            let scale = config.examples_cap as f64;
            let features = self.plan.spec.features;
            let moments = Moments {
                count: (decoded[0] * scale).round().max(0.0) as u64,
                sum: decoded[1..=features]
                    .iter()
                    .map(|value| value * scale)
                    .collect(),
                sum_of_squares: decoded[features + 1..]
                    .iter()
                    .map(|value| value * scale)
                    .collect(),
            };
            let standardizer = Standardizer::from_moments(&moments)?;
            for data in self.validation.iter_mut().chain(self.test.iter_mut()) {
                data.standardize(&standardizer)?;
            }
            self.standardizer = Some(standardizer);
            return Ok(None);
        }
        let round = self.phase - 1;
        let quantizer_for = |members: usize| {
            Quantizer::new(config.update_range, members, config.modulus_bits).map_err(secagg_error)
        };
        let mut groups: Vec<GroupResult> = Vec::new();
        let mut abandoned_groups = 0;
        let mut group_sizes = Vec::new();
        for job in &self.jobs {
            let Some((sum, contributors)) = &job.result else {
                abandoned_groups += 1;
                continue;
            };
            match decode_group(
                &quantizer_for(job.members.len())?,
                sum,
                contributors.clone(),
            )? {
                Some(group) => {
                    group_sizes.push((job.members.len(), group.members.len()));
                    groups.push(group);
                }
                None => abandoned_groups += 1,
            }
        }
        let mut aggregated: Vec<u32> = groups
            .iter()
            .flat_map(|group| group.members.iter().copied())
            .collect();
        aggregated.sort_unstable();
        let evaluation = self.validation.as_ref().map(|data| (&self.model, data));
        let aggregate_root = combine_groups(
            &config,
            &groups,
            &mut self.global,
            evaluation,
            round,
            &mut self.contributions,
        )?;
        let participant_count = self.plan.participants.len();
        account_round(
            &config,
            &mut self.accountant,
            config.sampled(participant_count) as f64 / participant_count as f64,
            &group_sizes,
        )?;
        let accuracy = match &self.test {
            Some(test) => {
                self.model.set_parameters(&self.global)?;
                Some(self.model.evaluate(test)?.accuracy)
            }
            None => None,
        };
        let mut participants: Vec<u32> = self
            .jobs
            .iter()
            .flat_map(|job| job.members.iter().copied())
            .collect();
        participants.sort_unstable();
        let report = RoundReport {
            round,
            participants,
            aggregated,
            abandoned_groups,
            accuracy,
            aggregate_root,
        };
        self.reports.push(report.clone());
        Ok(Some(report))
    }

    /// The session's outcome so far: rounds, parameters, contribution shares and privacy spent.
    ///
    /// # Errors
    ///
    /// Contribution or privacy accounting failing.
    pub fn report(&self) -> Result<SessionReport> {
        let contribution_bps = self.contributions.shares()?;
        let privacy = epsilon_spent(&self.plan.config, &self.accountant)?;
        Ok(SessionReport {
            rounds: self.reports.clone(),
            parameters: self.global.clone(),
            accuracy: self.reports.last().and_then(|report| report.accuracy),
            contribution_bps,
            privacy,
        })
    }
}

/// Moves a job one stage on (everyone expected answered, or the deadline passed).
fn advance(job: &mut Job, next_deadline_ms: u64) {
    let abandon = |job: &mut Job, error: SecAggError| {
        tracing::warn!(job = ?job.id, %error, "secure sum abandoned");
        job.stage = Stage::Abandoned;
    };
    job.answered.clear();
    job.deadline_ms = next_deadline_ms;
    match job.stage {
        Stage::Keys => match job.server.close_key_advertisement() {
            Ok(keys) => {
                job.keys = Some(keys);
                job.stage = Stage::Shares;
            }
            Err(error) => abandon(job, error),
        },
        Stage::Shares => match job.server.close_key_sharing() {
            Ok(routed) => {
                job.routed = routed;
                job.stage = Stage::Masked;
            }
            Err(error) => abandon(job, error),
        },
        Stage::Masked => match job.server.close_masked_input() {
            Ok(request) => {
                job.request = Some(request);
                job.stage = Stage::Unmask;
            }
            Err(error) => abandon(job, error),
        },
        Stage::Unmask => match job.server.aggregate() {
            Ok(aggregate) => {
                job.result = Some((aggregate.sum, aggregate.contributors.into_iter().collect()));
                job.stage = Stage::Done;
            }
            Err(error) => abandon(job, error),
        },
        Stage::Done | Stage::Abandoned => {}
    }
}

fn uplink_name(uplink: &Uplink) -> &'static str {
    match uplink {
        Uplink::Advertise { .. } => "key advertisement",
        Uplink::Share { .. } => "shared keys",
        Uplink::Masked { .. } => "masked input",
        Uplink::Unmask { .. } => "unmask response",
    }
}

fn secagg_error(error: SecAggError) -> LearnError {
    LearnError::invalid("secure aggregation", error.to_string())
}

/// A contributor's side of a session: its raw rows stay here.
pub struct Participant {
    id: u32,
    plan: Plan,
    raw: Dataset,
    behaviour: Behaviour,
    client: Option<(JobId, Client)>,
    pending: Option<Vec<u64>>,
    trained: Option<(Standardizer, FederatedClient)>,
    answered: BTreeSet<(JobId, u8)>,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Participant")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Participant {
    /// A participant with id `id` holding `raw` (unstandardised) rows. `secret_seed` seeds its key
    /// pairs, mask seeds and DP noise: it must come from a secure source (the OS) and never be shared.
    ///
    /// # Errors
    ///
    /// Data that does not fit the plan's model, or an id not in the plan.
    pub fn new(id: u32, plan: Plan, raw: Dataset, secret_seed: [u8; 32]) -> Result<Self> {
        plan.spec.check_data(&raw)?;
        if raw.classes() != plan.classes.as_slice() {
            return Err(LearnError::invalid(
                "participant",
                "the data's classes are not the plan's; read it with the plan's class list",
            ));
        }
        if !plan.participants.contains(&id) {
            return Err(LearnError::invalid(
                "participant",
                format!("{id} is not a participant of the plan"),
            ));
        }
        Ok(Self {
            id,
            plan,
            raw,
            behaviour: Behaviour::Honest,
            client: None,
            pending: None,
            trained: None,
            answered: BTreeSet::new(),
            rng: ChaCha20Rng::from_seed(secret_seed),
        })
    }

    /// Makes this participant misbehave (for fault tests).
    pub fn set_behaviour(&mut self, behaviour: Behaviour) {
        self.behaviour = behaviour;
    }

    /// Handles a downlink; returns the uplink to send, if any. A downlink already answered is ignored.
    ///
    /// # Errors
    ///
    /// A downlink that does not fit the plan (wrong session, sizes, a job this participant is not in),
    /// or local training failing.
    pub fn handle(&mut self, downlink: &Downlink) -> Result<Option<Uplink>> {
        let stage = match downlink {
            Downlink::Wait | Downlink::Finished { .. } => return Ok(None),
            Downlink::Moments { .. } | Downlink::Train { .. } => 0,
            Downlink::Keys { .. } => 1,
            Downlink::Shares { .. } => 2,
            Downlink::Unmask { .. } => 3,
        };
        let job = match downlink {
            Downlink::Moments { job, .. }
            | Downlink::Train { job, .. }
            | Downlink::Keys { job, .. }
            | Downlink::Shares { job, .. }
            | Downlink::Unmask { job, .. } => *job,
            Downlink::Wait | Downlink::Finished { .. } => return Ok(None),
        };
        if self.answered.contains(&(job, stage)) {
            return Ok(None);
        }
        let uplink = match downlink {
            Downlink::Moments { job, secagg } => {
                self.check_secagg(secagg, 1 + 2 * self.plan.spec.features)?;
                let moments = self.raw.moments();
                let scale = self.plan.config.examples_cap as f64;
                let mut values = Vec::with_capacity(1 + 2 * moments.sum.len());
                values.push((moments.count as f64 / scale) as f32);
                values.extend(moments.sum.iter().map(|value| (value / scale) as f32));
                values.extend(
                    moments
                        .sum_of_squares
                        .iter()
                        .map(|value| (value / scale) as f32),
                );
                let quantizer = Quantizer::new(
                    MOMENTS_RANGE,
                    secagg.participants.len(),
                    MOMENTS_MODULUS_BITS,
                )
                .map_err(secagg_error)?;
                self.pending = Some(
                    quantizer
                        .quantize(&values, &mut self.rng)
                        .map_err(secagg_error)?,
                );
                self.advertise(*job, secagg)?
            }
            Downlink::Train {
                job,
                round,
                global,
                standardizer,
                secagg,
            } => {
                self.check_secagg(secagg, 1 + global.len())?;
                if standardizer.mean.len() != self.plan.spec.features {
                    return Err(LearnError::invalid(
                        "downlink",
                        "the standardizer does not match the model's features",
                    ));
                }
                let reuse = matches!(&self.trained, Some((known, _)) if known == standardizer);
                if !reuse {
                    let mut data = self.raw.clone();
                    data.standardize(standardizer)?;
                    let client = FederatedClient::new(self.id, data, self.plan.spec.clone())?;
                    self.trained = Some((standardizer.clone(), client));
                }
                let Some((_, client)) = &self.trained else {
                    return Err(LearnError::invalid("participant", "no local model"));
                };
                let (weight, delta) = prepare_upload(
                    &self.plan.config,
                    client,
                    self.behaviour,
                    global,
                    *round,
                    secagg.participants.len(),
                    &mut self.rng,
                )?;
                let quantizer = Quantizer::new(
                    self.plan.config.update_range,
                    secagg.participants.len(),
                    self.plan.config.modulus_bits,
                )
                .map_err(secagg_error)?;
                self.pending = Some(
                    quantizer
                        .quantize_weighted(weight, &delta, &mut self.rng)
                        .map_err(secagg_error)?,
                );
                self.advertise(*job, secagg)?
            }
            Downlink::Keys { job, keys } => {
                let client = client_for(&mut self.client, *job)?;
                let message = client
                    .share_keys(keys, &mut self.rng)
                    .map_err(secagg_error)?;
                Uplink::Share { job: *job, message }
            }
            Downlink::Shares { job, shares } => {
                let input = self.pending.take().ok_or_else(|| {
                    LearnError::invalid("participant", "no prepared input for this job")
                })?;
                let client = client_for(&mut self.client, *job)?;
                let message = client.masked_input(shares, &input).map_err(secagg_error)?;
                Uplink::Masked { job: *job, message }
            }
            Downlink::Unmask { job, request } => {
                let client = client_for(&mut self.client, *job)?;
                let message = client.unmask(request).map_err(secagg_error)?;
                Uplink::Unmask { job: *job, message }
            }
            Downlink::Wait | Downlink::Finished { .. } => return Ok(None),
        };
        self.answered.insert((job, stage));
        Ok(Some(uplink))
    }

    fn check_secagg(&self, secagg: &RoundConfig, vector_length: usize) -> Result<()> {
        if secagg.tag.session != self.plan.session {
            return Err(LearnError::invalid(
                "downlink",
                "a secure sum for another session",
            ));
        }
        if secagg.vector_length != vector_length {
            return Err(LearnError::invalid(
                "downlink",
                format!(
                    "a secure sum of {} values; this model needs {vector_length}",
                    secagg.vector_length
                ),
            ));
        }
        if !secagg.participants.contains(&self.id) {
            return Err(LearnError::invalid(
                "downlink",
                "a secure sum this participant is not in",
            ));
        }
        Ok(())
    }

    fn advertise(&mut self, job: JobId, secagg: &RoundConfig) -> Result<Uplink> {
        let (client, message) =
            Client::new(secagg.clone(), self.id, &mut self.rng).map_err(secagg_error)?;
        self.client = Some((job, client));
        Ok(Uplink::Advertise { job, message })
    }
}

fn client_for(client: &mut Option<(JobId, Client)>, job: JobId) -> Result<&mut Client> {
    match client {
        Some((current, client)) if *current == job => Ok(client),
        _ => Err(LearnError::invalid(
            "downlink",
            format!("job {job:?} is not the one this participant joined"),
        )),
    }
}

#[cfg(test)]
mod tests;
