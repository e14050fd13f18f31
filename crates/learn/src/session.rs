//! A federated session's rounds, end to end in one process: sampling, local training, DP clipping and
//! noise, secure aggregation over groups, robust or weighted combination, contribution credit, and privacy
//! accounting. The quality experiments, tests and the in-process benchmark baseline run sessions here;
//! the networked protocol runs the same steps with each client in its own process.
//!
//! # Groups
//!
//! Each round the sampled clients are split into `groups` groups by a seeded shuffle. Each group's
//! `[w, w·Δ…]` vectors are summed with secure aggregation (so the aggregator learns only group sums), and
//! the group means are combined by the aggregation rule:
//! - `groups = 1`: one secure sum over everyone, the plain SecAgg FedAvg;
//! - `groups > 1`: several group sums, which makes the robust rules (median, trimmed mean, Krum) usable
//!   under secure aggregation, over group means, and lets contribution be measured (below). A group needs
//!   at least 3 members (with 2, each learns the other's input from the sum);
//! - `groups = 0`, only without secure aggregation: every client is its own group (individual updates).
//!
//! Under [`AggregationRule::Mean`] the group means weighted by their total weights give exactly the
//! FedAvg of all updates, whatever the grouping.
//!
//! # Weights
//!
//! Without DP a client's weight is `min(examples, examples_cap) / examples_cap`, FedAvg's example count
//! scaled into `[0, 1]` so it quantises like the update (the cap also bounds one client's say). With DP every
//! weight is 1 (DP-FedAvg's uniform weighting, so one client's influence is bounded by the clip norm).
//!
//! # Differential privacy
//!
//! Each client clips its update to `clip_norm` S and adds Gaussian noise of standard deviation
//! `σ·S/√m`, `m` its group's size, so every sum the aggregator sees carries noise `σ·S` and is
//! `(ε, δ)`-DP towards the aggregator itself. Clients that drop out leave less noise: the accountant is
//! fed the effective multiplier `σ·√(survivors/m)` of the worst group of the round. Sampling `c` of `N`
//! clients per round is accounted as Poisson sampling at `q = c/N` (the usual approximation).
//!
//! # Contribution
//!
//! No individual update is ever unmasked, so each client is credited with its group's effect: the drop
//! in validation loss from applying the group's mean alone to the round's global model, split equally
//! among the group's members (negative effects count as zero). Regrouping every round at random
//! separates the clients over the session, as in group testing. The credits become basis points summing
//! to 10000 ([`tributary_valuation::shares::basis_points`]). With one group everyone present is credited
//! equally per round; without secure aggregation and `groups = 0` each client is measured alone.

use crate::data::Dataset;
use crate::error::{LearnError, Result};
use crate::federated::{ClientUpdate, FederatedClient, apply_update, derive_seed, sample_clients};
use crate::limits;
use crate::model::{Model, ModelSpec};
use crate::privacy::{DpConfig, EpsilonReport, RdpAccountant, effective_noise_multiplier};
use crate::robust::AggregationRule;
use crate::secagg::{Quantizer, RoundConfig, RoundTag, SecAggError, run_round};
use crate::train::TrainConfig;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Everything that fixes how a session trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Rounds to run.
    pub rounds: u32,
    /// Clients sampled per round (all when absent or larger than the number of clients).
    #[serde(default)]
    pub clients_per_round: Option<usize>,
    /// Local training per round (epochs E, batch size, optimizer, FedProx μ).
    pub local: TrainConfig,
    /// How group means are combined.
    #[serde(default)]
    pub aggregation: AggregationRule,
    /// Sum updates with SecAgg+ so the aggregator never sees one.
    #[serde(default = "default_true")]
    pub secure_aggregation: bool,
    /// Groups per round (see the module documentation); 0 means one per client (no secure aggregation).
    #[serde(default = "default_groups")]
    pub groups: usize,
    /// DP-FedAvg clipping and noise.
    #[serde(default)]
    pub privacy: Option<DpConfig>,
    /// δ at which ε is reported.
    #[serde(default = "default_delta")]
    pub delta: f64,
    /// Quantised values are clipped to `[−update_range, update_range]`.
    #[serde(default = "default_update_range")]
    pub update_range: f32,
    /// Secure sums are taken modulo `2^modulus_bits`.
    #[serde(default = "default_modulus_bits")]
    pub modulus_bits: u32,
    /// The example count at which a client's weight saturates at 1.
    #[serde(default = "default_examples_cap")]
    pub examples_cap: u64,
    /// The server's step along the aggregated change (1 is plain FedAvg).
    #[serde(default = "default_server_learning_rate")]
    pub server_learning_rate: f32,
    /// Seed of the initial model, the sampling, the grouping and every client's randomness.
    #[serde(default)]
    pub seed: u64,
}

fn default_true() -> bool {
    true
}
fn default_groups() -> usize {
    1
}
fn default_delta() -> f64 {
    1e-5
}
fn default_update_range() -> f32 {
    4.0
}
fn default_modulus_bits() -> u32 {
    48
}
fn default_examples_cap() -> u64 {
    1_000
}
fn default_server_learning_rate() -> f32 {
    1.0
}

impl SessionConfig {
    /// Defaults for everything but the rounds and local training.
    #[must_use]
    pub fn new(rounds: u32, local: TrainConfig) -> Self {
        Self {
            rounds,
            clients_per_round: None,
            local,
            aggregation: AggregationRule::Mean,
            secure_aggregation: true,
            groups: 1,
            privacy: None,
            delta: default_delta(),
            update_range: default_update_range(),
            modulus_bits: default_modulus_bits(),
            examples_cap: default_examples_cap(),
            server_learning_rate: 1.0,
            seed: 0,
        }
    }

    /// The settings of the project's quality bar on digits: `rounds` rounds, every client every round,
    /// E = 5 local epochs of SGD (batch 32, learning rate 0.05, no momentum), SecAgg on, one group.
    #[must_use]
    pub fn reference(rounds: u32, seed: u64) -> Self {
        let mut config = Self::new(
            rounds,
            TrainConfig {
                epochs: 5,
                batch_size: 32,
                optimizer: crate::train::OptimizerSpec::Sgd {
                    learning_rate: 0.05,
                    momentum: 0.0,
                    weight_decay: 0.0,
                },
                proximal_mu: 0.0,
                seed,
            },
        );
        config.seed = seed;
        config
    }

    /// Checks the settings against each other and the limits for `clients` clients.
    ///
    /// # Errors
    ///
    /// A setting out of range, or a combination that cannot work (robust rules needing individual updates
    /// with one secure group, groups of fewer than 3 under secure aggregation, ...).
    pub fn validate(&self, clients: usize) -> Result<()> {
        let invalid = |message: String| Err(LearnError::invalid("session", message));
        if self.rounds == 0 || self.rounds > limits::ROUNDS_MAX {
            return invalid(format!(
                "{} rounds; between 1 and {} are supported",
                self.rounds,
                limits::ROUNDS_MAX
            ));
        }
        if clients == 0 || clients > limits::CLIENTS_MAX {
            return invalid(format!(
                "{clients} clients; between 1 and {} are supported",
                limits::CLIENTS_MAX
            ));
        }
        self.local.validate()?;
        if let Some(privacy) = &self.privacy {
            privacy
                .validate()
                .map_err(|error| LearnError::invalid("privacy", error.to_string()))?;
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return invalid(format!(
                "δ = {} must be strictly between 0 and 1",
                self.delta
            ));
        }
        if !(self.update_range.is_finite() && self.update_range > 0.0) {
            return invalid("the update range must be a positive number".into());
        }
        if !(self.server_learning_rate.is_finite() && self.server_learning_rate > 0.0) {
            return invalid("the server learning rate must be a positive number".into());
        }
        if self.examples_cap == 0 {
            return invalid("the examples cap must be at least 1".into());
        }
        let sampled = self.sampled(clients);
        if sampled == 0 {
            return invalid("no client is sampled per round".into());
        }
        if self.secure_aggregation {
            if self.groups == 0 {
                return invalid(
                    "groups = 0 (one per client) would reveal individual updates; it needs \
                     secure_aggregation = false"
                        .into(),
                );
            }
            if sampled / self.groups < SECURE_GROUP_MEMBERS_MIN {
                return invalid(format!(
                    "{sampled} clients per round in {} groups leaves groups under {SECURE_GROUP_MEMBERS_MIN} \
                     members; use fewer groups",
                    self.groups
                ));
            }
            if self.aggregation.needs_individual_updates() && self.groups < 3 {
                return invalid(format!(
                    "{:?} under secure aggregation runs over group means and needs at least 3 groups",
                    self.aggregation
                ));
            }
        }
        if self.groups > sampled {
            return invalid(format!(
                "{} groups for {sampled} clients per round",
                self.groups
            ));
        }
        Ok(())
    }

    /// Clients sampled per round out of `clients`.
    #[must_use]
    pub fn sampled(&self, clients: usize) -> usize {
        self.clients_per_round
            .map_or(clients, |count| count.min(clients))
    }
}

/// The fewest members of a securely aggregated group.
pub const SECURE_GROUP_MEMBERS_MIN: usize = 3;

/// How a simulated client behaves (faults for experiments and tests).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Behaviour {
    /// Follows the protocol.
    #[default]
    Honest,
    /// Sends its update multiplied by `-scale` (a sign-flipping attacker).
    SignFlip {
        /// How much it amplifies the flipped update.
        scale: f32,
    },
}

/// When a client disappears during a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dropout {
    /// Killed while training: it never sends its masked input (left out of the sum).
    BeforeMaskedInput,
    /// Killed after sending its masked input: still in the sum, recovered from its neighbours' shares.
    BeforeUnmasking,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// 0-based round.
    pub round: u32,
    /// Clients sampled.
    pub participants: Vec<u32>,
    /// Clients whose updates are in the aggregate.
    pub aggregated: Vec<u32>,
    /// Groups whose secure sum was abandoned (too few survivors); their members are not in the aggregate.
    pub abandoned_groups: usize,
    /// Held-out accuracy after the round, when a test set was given.
    pub accuracy: Option<f64>,
    /// BLAKE3 of the aggregate change (little-endian `f32`s), the round's commitment.
    pub aggregate_root: [u8; 32],
}

/// What a whole session produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    /// Per round.
    pub rounds: Vec<RoundReport>,
    /// The final parameters.
    pub parameters: Vec<f32>,
    /// Final held-out accuracy, when a test set was given.
    pub accuracy: Option<f64>,
    /// Each client's contribution in basis points (sums to 10000), when any was measured.
    pub contribution_bps: BTreeMap<u32, u32>,
    /// Privacy spent, when DP was on.
    pub privacy: Option<EpsilonReport>,
}

/// An in-process federated session.
pub struct Session {
    config: SessionConfig,
    spec: ModelSpec,
    clients: BTreeMap<u32, (FederatedClient, Behaviour)>,
    dropouts: BTreeMap<(u32, u32), Dropout>,
    validation: Option<Dataset>,
    test: Option<Dataset>,
}

impl Session {
    /// A session over `clients` (id → rows) for a model of `spec`.
    ///
    /// `validation` (held by the aggregator) measures contribution; `test` measures accuracy per round.
    ///
    /// # Errors
    ///
    /// An invalid configuration or data that does not fit the spec.
    pub fn new(
        config: SessionConfig,
        spec: ModelSpec,
        clients: BTreeMap<u32, Dataset>,
        validation: Option<Dataset>,
        test: Option<Dataset>,
    ) -> Result<Self> {
        config.validate(clients.len())?;
        spec.validate()?;
        for data in validation.iter().chain(&test) {
            spec.check_data(data)?;
        }
        let clients = clients
            .into_iter()
            .map(|(id, data)| {
                Ok((
                    id,
                    (
                        FederatedClient::new(id, data, spec.clone())?,
                        Behaviour::Honest,
                    ),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            spec,
            clients,
            dropouts: BTreeMap::new(),
            validation,
            test,
        })
    }

    /// Makes `client` behave as `behaviour` from now on.
    ///
    /// # Errors
    ///
    /// An unknown client.
    pub fn set_behaviour(&mut self, client: u32, behaviour: Behaviour) -> Result<()> {
        let entry = self
            .clients
            .get_mut(&client)
            .ok_or_else(|| LearnError::invalid("session", format!("no client {client}")))?;
        entry.1 = behaviour;
        Ok(())
    }

    /// Makes `client` disappear in `round` at `when` (it is back the next round).
    pub fn drop_client(&mut self, round: u32, client: u32, when: Dropout) {
        self.dropouts.insert((round, client), when);
    }

    /// Runs every round; `on_round` sees each round's report as it ends.
    ///
    /// # Errors
    ///
    /// A client's training failing, or an aggregation error other than an abandoned group.
    pub fn run(&self, mut on_round: impl FnMut(&RoundReport)) -> Result<SessionReport> {
        let config = &self.config;
        let global_model = Model::new(self.spec.clone(), config.seed)?;
        let evaluation_model = Model::new(self.spec.clone(), config.seed)?;
        let mut global = global_model.parameters()?;
        let ids: Vec<u32> = self.clients.keys().copied().collect();
        let sampled_count = config.sampled(ids.len());
        let mut contributions = Contributions::new(&ids);
        let mut accountant = RdpAccountant::new();
        let mut reports = Vec::with_capacity(config.rounds as usize);
        for round in 0..config.rounds {
            let participants = sample_clients(&ids, sampled_count, config.seed, round);
            let groups = self.groups(&participants, round);
            let mut group_results = Vec::new();
            let mut aggregated = Vec::new();
            let mut abandoned_groups = 0;
            let mut group_sizes = Vec::new();
            for (group_index, members) in groups.iter().enumerate() {
                match self.group_mean(&global, round, group_index, members)? {
                    Some(result) => {
                        group_sizes.push((members.len(), result.members.len()));
                        aggregated.extend_from_slice(&result.members);
                        group_results.push(result);
                    }
                    None => abandoned_groups += 1,
                }
            }
            aggregated.sort_unstable();
            let aggregate_root = combine_groups(
                config,
                &group_results,
                &mut global,
                self.validation
                    .as_ref()
                    .map(|validation| (&evaluation_model, validation)),
                round,
                &mut contributions,
            )?;
            account_round(
                config,
                &mut accountant,
                sampled_count as f64 / ids.len() as f64,
                &group_sizes,
            )?;
            let accuracy = match &self.test {
                Some(test) => {
                    global_model.set_parameters(&global)?;
                    Some(global_model.evaluate(test)?.accuracy)
                }
                None => None,
            };
            let report = RoundReport {
                round,
                participants,
                aggregated,
                abandoned_groups,
                accuracy,
                aggregate_root,
            };
            on_round(&report);
            reports.push(report);
        }
        let contribution_bps = contributions.shares()?;
        let privacy = epsilon_spent(config, &accountant)?;
        Ok(SessionReport {
            accuracy: reports.last().and_then(|report| report.accuracy),
            rounds: reports,
            parameters: global,
            contribution_bps,
            privacy,
        })
    }

    /// The round's groups ([`deal_groups`]); `groups = 0` makes one per participant.
    fn groups(&self, participants: &[u32], round: u32) -> Vec<Vec<u32>> {
        let count = match self.config.groups {
            0 => participants.len(),
            groups => groups.min(participants.len()),
        };
        deal_groups(participants, count, self.config.seed, round)
    }

    /// One group's mean change and total weight, or `None` when its secure sum was abandoned.
    fn group_mean(
        &self,
        global: &[f32],
        round: u32,
        group_index: usize,
        members: &[u32],
    ) -> Result<Option<GroupResult>> {
        let config = &self.config;
        let mut uploads: BTreeMap<u32, (f32, Vec<f32>)> = BTreeMap::new();
        let mut before_masked_input = BTreeSet::new();
        let mut before_unmasking = BTreeSet::new();
        for &id in members {
            let (client, behaviour) = &self.clients[&id];
            match self.dropouts.get(&(round, id)) {
                Some(Dropout::BeforeMaskedInput) => {
                    before_masked_input.insert(id);
                }
                Some(Dropout::BeforeUnmasking) => {
                    before_unmasking.insert(id);
                }
                None => {}
            }
            // Simulated clients draw their DP noise from the session seed so experiments replay; a real
            // client draws it from its own secret randomness (see `protocol`).
            let mut noise_rng =
                ChaCha20Rng::seed_from_u64(derive_seed(config.seed ^ NOISE_SEED_MIX, id, round));
            let upload = prepare_upload(
                config,
                client,
                *behaviour,
                global,
                round,
                members.len(),
                &mut noise_rng,
            )?;
            uploads.insert(id, upload);
        }
        let sent: Vec<u32> = members
            .iter()
            .copied()
            .filter(|id| !before_masked_input.contains(id))
            .collect();
        if !config.secure_aggregation {
            let total: f32 = sent.iter().map(|id| uploads[id].0).sum();
            if sent.is_empty() || total <= 0.0 {
                return Ok(None);
            }
            let mut mean = vec![0.0_f32; global.len()];
            for id in &sent {
                let (weight, delta) = &uploads[id];
                for (sum, value) in mean.iter_mut().zip(delta) {
                    *sum += weight * value / total;
                }
            }
            return Ok(Some(GroupResult {
                members: sent,
                mean,
                weight: total,
            }));
        }
        let secagg_error =
            |error: SecAggError| LearnError::invalid("secure aggregation", error.to_string());
        let quantizer = Quantizer::new(config.update_range, members.len(), config.modulus_bits)
            .map_err(secagg_error)?;
        let mut rng =
            ChaCha20Rng::seed_from_u64(derive_seed(config.seed, group_index as u32, round));
        let mut inputs = BTreeMap::new();
        for (&id, (weight, delta)) in &uploads {
            inputs.insert(
                id,
                quantizer
                    .quantize_weighted(*weight, delta, &mut rng)
                    .map_err(secagg_error)?,
            );
        }
        let round_config =
            secure_round_config(config, round, group_index, members, global.len() + 1);
        let sum = match run_round(
            &round_config,
            &inputs,
            &before_masked_input,
            &before_unmasking,
            &mut rng,
        ) {
            Ok(sum) => sum,
            Err(SecAggError::NotEnoughShares { .. } | SecAggError::NotEnoughClients { .. }) => {
                tracing::warn!(
                    round,
                    group = group_index,
                    "secure sum abandoned: too few survivors"
                );
                return Ok(None);
            }
            Err(error) => return Err(secagg_error(error)),
        };
        decode_group(&quantizer, &sum, sent)
    }
}

/// Deals a round's participants into `count` groups: a shuffle seeded by `(seed, round)`, dealt
/// round-robin, each group sorted. The in-process session and the networked aggregator both use it, so
/// the same seed gives the same groups.
#[must_use]
pub fn deal_groups(participants: &[u32], count: usize, seed: u64, round: u32) -> Vec<Vec<u32>> {
    let count = count.max(1);
    let mut shuffled = participants.to_vec();
    shuffled.shuffle(&mut ChaCha20Rng::seed_from_u64(derive_seed(
        seed,
        u32::MAX - 1,
        round,
    )));
    let mut groups = vec![Vec::new(); count];
    for (position, client) in shuffled.into_iter().enumerate() {
        groups[position % count].push(client);
    }
    for group in &mut groups {
        group.sort_unstable();
    }
    groups
}

/// Adds one round to the privacy accountant (when DP is on): Poisson sampling at `sampling_rate` with
/// the noise multiplier of the round's weakest group, each group given as (planned, surviving) sizes
/// (dropouts leave less noise); the configured multiplier when no group was aggregated.
///
/// # Errors
///
/// Sizes or rates the accountant refuses.
pub fn account_round(
    config: &SessionConfig,
    accountant: &mut RdpAccountant,
    sampling_rate: f64,
    group_sizes: &[(usize, usize)],
) -> Result<()> {
    let Some(privacy) = &config.privacy else {
        return Ok(());
    };
    let privacy_error =
        |error: crate::privacy::PrivacyError| LearnError::invalid("privacy", error.to_string());
    let mut noise_multiplier = f64::INFINITY;
    for &(planned, surviving) in group_sizes {
        noise_multiplier = noise_multiplier.min(
            effective_noise_multiplier(privacy.noise_multiplier, planned, surviving)
                .map_err(privacy_error)?,
        );
    }
    if !noise_multiplier.is_finite() {
        noise_multiplier = privacy.noise_multiplier;
    }
    accountant
        .compose_poisson_subsampled_gaussian(sampling_rate, noise_multiplier, 1)
        .map_err(privacy_error)
}

/// The privacy spent so far at the configured δ, or `None` without DP.
///
/// # Errors
///
/// The accountant refusing δ.
pub fn epsilon_spent(
    config: &SessionConfig,
    accountant: &RdpAccountant,
) -> Result<Option<EpsilonReport>> {
    match &config.privacy {
        Some(_) => accountant
            .epsilon(config.delta)
            .map(Some)
            .map_err(|error| LearnError::invalid("privacy", error.to_string())),
        None => Ok(None),
    }
}

/// Mixed into the seed of clients' DP noise so it is independent of their other randomness.
const NOISE_SEED_MIX: u64 = 0x6e6f_6973_6520_7631;

/// The secure-aggregation parameters of one group: the complete graph up to 16 members, else SecAgg+'s
/// logarithmic degree; the threshold is a strict majority of each neighbourhood (so a neighbourhood
/// tolerates just under half its members dropping).
#[must_use]
pub fn secure_round_config(
    config: &SessionConfig,
    round: u32,
    group_index: usize,
    members: &[u32],
    vector_length: usize,
) -> RoundConfig {
    let count = members.len();
    let mut degree = if count <= COMPLETE_GRAPH_MEMBERS_MAX {
        count.saturating_sub(1)
    } else {
        (2 * (usize::BITS - count.leading_zeros()) as usize).min(count - 1)
    };
    if degree < count - 1 && degree % 2 == 1 && count % 2 == 1 {
        degree += 1;
    }
    let threshold = (degree / 2 + 1).max(2).min(degree);
    let mut session = [0_u8; 32];
    session.copy_from_slice(
        blake3::Hasher::new_derive_key("tributary-learn session id v1")
            .update(&config.seed.to_le_bytes())
            .finalize()
            .as_bytes(),
    );
    RoundConfig {
        tag: RoundTag {
            session,
            round: u64::from(round) << 16 | group_index as u64,
        },
        participants: members.to_vec(),
        threshold,
        degree,
        vector_length,
        modulus_bits: config.modulus_bits,
    }
}

/// Groups up to this size use the complete graph.
const COMPLETE_GRAPH_MEMBERS_MAX: usize = 16;

/// One group's securely summed result: who is in it, their mean change and their total weight.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResult {
    /// Clients whose uploads are in the sum.
    pub members: Vec<u32>,
    /// The weighted mean change of the group.
    pub mean: Vec<f32>,
    /// The group's total weight.
    pub weight: f32,
}

/// A client's upload for a round: its weight and its (attacked, clipped and noised) change, computed
/// from the round's global parameters. `group_size` is the planned size of its secure group (the DP noise
/// is calibrated to it). The DP noise is drawn from `noise_rng`, which must be secret to the client:
/// an aggregator that could replay it could subtract the noise.
///
/// # Errors
///
/// Local training failing or bad DP settings.
pub fn prepare_upload(
    config: &SessionConfig,
    client: &FederatedClient,
    behaviour: Behaviour,
    global: &[f32],
    round: u32,
    group_size: usize,
    noise_rng: &mut impl rand_core::Rng,
) -> Result<(f32, Vec<f32>)> {
    let ClientUpdate {
        mut delta,
        examples,
        ..
    } = client.local_update(global, round, &config.local)?;
    if let Behaviour::SignFlip { scale } = behaviour {
        for value in &mut delta {
            *value *= -scale;
        }
    }
    let weight = match &config.privacy {
        Some(privacy) => {
            privacy
                .privatize(&mut delta, group_size, noise_rng)
                .map_err(|error| LearnError::invalid("privacy", error.to_string()))?;
            1.0
        }
        None => examples.min(config.examples_cap) as f32 / config.examples_cap as f32,
    };
    Ok((weight, delta))
}

/// Decodes a group's secure sum of `[w, w·Δ…]` uploads from the clients in `sent` into its mean change,
/// or `None` when the total weight is zero.
///
/// # Errors
///
/// A sum that does not decode with this quantizer.
pub fn decode_group(
    quantizer: &Quantizer,
    sum: &[u64],
    sent: Vec<u32>,
) -> Result<Option<GroupResult>> {
    let decoded = quantizer
        .decode_sum(sum, sent.len())
        .map_err(|error| LearnError::invalid("secure aggregation", error.to_string()))?;
    let weight = decoded.first().copied().unwrap_or_default();
    if weight <= 0.0 {
        return Ok(None);
    }
    let mean = decoded[1..]
        .iter()
        .map(|value| (value / weight) as f32)
        .collect();
    Ok(Some(GroupResult {
        members: sent,
        mean,
        weight: weight as f32,
    }))
}

/// Combines a round's group results into the change applied to `global`, crediting contribution when
/// a validation set is given; returns the change (already applied) and its commitment.
///
/// # Errors
///
/// The aggregation rule failing on the groups, or evaluation failing.
pub fn combine_groups(
    config: &SessionConfig,
    groups: &[GroupResult],
    global: &mut [f32],
    evaluation: Option<(&Model, &Dataset)>,
    round: u32,
    contributions: &mut Contributions,
) -> Result<[u8; 32]> {
    if groups.is_empty() {
        return Ok([0; 32]);
    }
    let means: Vec<&[f32]> = groups.iter().map(|group| group.mean.as_slice()).collect();
    let weights: Vec<f32> = groups.iter().map(|group| group.weight).collect();
    let change = config
        .aggregation
        .aggregate(&means, &weights)
        .map_err(|error| LearnError::invalid("aggregation", error.to_string()))?;
    if let Some((model, validation)) = evaluation {
        credit_groups(
            model,
            validation,
            global,
            groups,
            config.server_learning_rate,
            round,
            contributions,
        )?;
    }
    let root = commitment(&change);
    apply_update(global, &change, config.server_learning_rate)?;
    Ok(root)
}

/// Credits each group's members with the validation-loss drop of applying the group's mean alone.
fn credit_groups(
    model: &Model,
    validation: &Dataset,
    global: &[f32],
    groups: &[GroupResult],
    server_learning_rate: f32,
    round: u32,
    contributions: &mut Contributions,
) -> Result<()> {
    model.set_parameters(global)?;
    let before = model.evaluate(validation)?.loss;
    for group in groups {
        let mut candidate = global.to_vec();
        apply_update(&mut candidate, &group.mean, server_learning_rate)?;
        model.set_parameters(&candidate)?;
        let after = model.evaluate(validation)?.loss;
        let improvement = if (before - after).is_finite() {
            (before - after).max(0.0)
        } else {
            0.0
        };
        contributions.record(round, &group.members, improvement);
    }
    Ok(())
}

/// Rounds on each side of a round whose group effects form its baseline.
const CONTRIBUTION_WINDOW_ROUNDS: u32 = 2;

/// The evidence contribution shares are computed from: each round's groups and the drop in validation
/// loss each caused alone.
///
/// A group's effect shrinks as the model converges, so raw effects would pay whoever happened to be
/// sampled early. Each effect is therefore divided by a baseline, the mean positive effect of all
/// groups within [`CONTRIBUTION_WINDOW_ROUNDS`] rounds of it: a group that helped as much as its
/// contemporaries scores 1, a group with a poisoned or noisy member scores less. Each member gets its
/// group's score divided by the group's size, summed over the rounds it took part in (so taking part
/// more often, usefully, earns more).
#[derive(Debug, Clone, Default)]
pub struct Contributions {
    participants: Vec<u32>,
    records: Vec<(u32, Vec<u32>, f64)>,
}

impl Contributions {
    /// No evidence yet for these participants.
    #[must_use]
    pub fn new(participants: &[u32]) -> Self {
        Self {
            participants: participants.to_vec(),
            records: Vec::new(),
        }
    }

    /// Records that `members`' group lowered the validation loss by `improvement` in `round`.
    pub fn record(&mut self, round: u32, members: &[u32], improvement: f64) {
        let improvement = if improvement.is_finite() {
            improvement.max(0.0)
        } else {
            0.0
        };
        self.records.push((round, members.to_vec(), improvement));
    }

    /// Basis points per participant summing to 10000 (every participant listed), or empty when no
    /// group ever helped.
    ///
    /// # Errors
    ///
    /// Only if the conversion to basis points fails.
    pub fn shares(&self) -> Result<BTreeMap<u32, u32>> {
        let mut credits: BTreeMap<u32, f64> =
            self.participants.iter().map(|&id| (id, 0.0)).collect();
        for (round, members, improvement) in &self.records {
            let nearby: Vec<f64> = self
                .records
                .iter()
                .filter(|(other, _, _)| other.abs_diff(*round) <= CONTRIBUTION_WINDOW_ROUNDS)
                .map(|(_, _, effect)| *effect)
                .collect();
            let baseline = nearby.iter().sum::<f64>() / nearby.len().max(1) as f64;
            if baseline <= f64::EPSILON {
                continue;
            }
            let score = improvement / baseline / members.len().max(1) as f64;
            for member in members {
                *credits.entry(*member).or_default() += score;
            }
        }
        if !credits.values().any(|&credit| credit > 0.0) {
            return Ok(BTreeMap::new());
        }
        tributary_valuation::shares::basis_points(&credits)
            .map_err(|error| LearnError::invalid("contribution", error.to_string()))
    }
}

/// BLAKE3 of a change vector's little-endian bytes.
#[must_use]
pub fn commitment(values: &[f32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for value in values {
        hasher.update(&value.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}
