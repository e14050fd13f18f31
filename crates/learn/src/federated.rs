//! Federated averaging: the client step (train the round's global model locally, return the change), client
//! sampling, and the server step (average the changes weighted by example counts, apply them).
//!
//! FedAvg (McMahan et al. 2017) is `proximal_mu = 0`; FedProx (Li et al. 2020) adds `μ/2 · ‖w − w_global‖²`
//! to each client's loss ([`TrainConfig::proximal_mu`]). Updates travel as flat `f32` vectors in the
//! order of [`Model::parameters`], so secure aggregation, clipping and robust rules work on plain vectors.

use crate::data::Dataset;
use crate::error::{LearnError, Result};
use crate::model::{Model, ModelSpec};
use crate::train::{TrainConfig, train};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

/// One client's result for a round: the change to the global model and how many examples made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientUpdate {
    /// `w_local − w_global`, in [`Model::parameters`] order.
    pub delta: Vec<f32>,
    /// Training rows behind it (the FedAvg weight).
    pub examples: u64,
    /// Mean training loss of the last local epoch.
    pub loss: f32,
}

/// A contributor's side of federated training: its own rows (never sent anywhere) and a model to train.
#[derive(Debug)]
pub struct FederatedClient {
    id: u32,
    data: Dataset,
    model: Model,
}

impl FederatedClient {
    /// A client holding `data` for a model of `spec`.
    ///
    /// # Errors
    ///
    /// Data that does not fit the spec, or no rows.
    pub fn new(id: u32, data: Dataset, spec: ModelSpec) -> Result<Self> {
        spec.check_data(&data)?;
        if data.rows() == 0 {
            return Err(LearnError::invalid(
                format!("client {id}"),
                "has no rows to train on",
            ));
        }
        Ok(Self {
            id,
            data,
            model: Model::new(spec, 0)?,
        })
    }

    /// The client's id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Number of rows it holds.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.data.rows()
    }

    /// Trains the round's global parameters on the local rows and returns the change. The shuffling seed
    /// is derived from `(config.seed, client id, round)`, so a round replays exactly.
    ///
    /// # Errors
    ///
    /// Global parameters of the wrong length or not finite, a bad configuration, or divergence.
    pub fn local_update(
        &self,
        global: &[f32],
        round: u32,
        config: &TrainConfig,
    ) -> Result<ClientUpdate> {
        self.model.set_parameters(global)?;
        let config = TrainConfig {
            seed: derive_seed(config.seed, self.id, round),
            ..config.clone()
        };
        let reports = train(&self.model, &self.data, &config, |_| {})?;
        let trained = self.model.parameters()?;
        let delta = trained
            .iter()
            .zip(global)
            .map(|(after, before)| after - before)
            .collect();
        Ok(ClientUpdate {
            delta,
            examples: self.data.rows() as u64,
            loss: reports.last().map_or(f32::NAN, |report| report.loss),
        })
    }
}

/// Mixes a session seed, a client and a round into one seed (BLAKE3, so nearby inputs give unrelated
/// seeds).
#[must_use]
pub fn derive_seed(seed: u64, client: u32, round: u32) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key("tributary-learn client seed v1");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&client.to_le_bytes());
    hasher.update(&round.to_le_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// The clients taking part in `round`: `count` of `clients` drawn without replacement from a stream seeded
/// by `(seed, round)`, returned sorted. All of them when `count ≥ clients.len()`.
#[must_use]
pub fn sample_clients(clients: &[u32], count: usize, seed: u64, round: u32) -> Vec<u32> {
    let mut chosen = clients.to_vec();
    if count < chosen.len() {
        let mut rng = ChaCha20Rng::seed_from_u64(derive_seed(seed, u32::MAX, round));
        chosen.shuffle(&mut rng);
        chosen.truncate(count);
    }
    chosen.sort_unstable();
    chosen
}

/// FedAvg: the mean of the clients' changes weighted by their example counts.
///
/// # Errors
///
/// No updates, updates of different lengths or with non-finite values, or no examples at all.
pub fn weighted_mean(updates: &[ClientUpdate]) -> Result<Vec<f32>> {
    let deltas: Vec<&[f32]> = updates
        .iter()
        .map(|update| update.delta.as_slice())
        .collect();
    let examples: Vec<f32> = updates
        .iter()
        .map(|update| update.examples as f32)
        .collect();
    crate::robust::weighted_mean(&deltas, &examples)
        .map_err(|error| LearnError::invalid("aggregation", error.to_string()))
}

/// Checks one update vector: the expected length and only finite values.
///
/// # Errors
///
/// [`LearnError::Invalid`] naming the update.
pub fn check_update(delta: &[f32], length: usize, index: usize) -> Result<()> {
    if delta.len() != length {
        return Err(LearnError::invalid(
            format!("update {index}"),
            format!(
                "has {} values; the model has {length} parameters",
                delta.len()
            ),
        ));
    }
    if let Some(position) = delta.iter().position(|value| !value.is_finite()) {
        return Err(LearnError::invalid(
            format!("update {index}"),
            format!("value {position} is not a finite number"),
        ));
    }
    Ok(())
}

/// Applies an aggregated change to the global parameters: `w ← w + learning_rate · Δ`.
///
/// # Errors
///
/// Vectors of different lengths or a non-finite change.
pub fn apply_update(global: &mut [f32], delta: &[f32], server_learning_rate: f32) -> Result<()> {
    check_update(delta, global.len(), 0)?;
    for (weight, change) in global.iter_mut().zip(delta) {
        *weight += server_learning_rate * change;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Standardizer, partition_iid};
    use crate::model::Architecture;
    use crate::train::OptimizerSpec;
    use std::path::Path;

    #[test]
    fn sampling_is_seeded_and_sorted() {
        let clients: Vec<u32> = (0..10).collect();
        let first = sample_clients(&clients, 4, 1, 3);
        assert_eq!(first.len(), 4);
        assert!(first.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(first, sample_clients(&clients, 4, 1, 3));
        assert_ne!(first, sample_clients(&clients, 4, 1, 4));
        assert_eq!(sample_clients(&clients, 20, 1, 3), clients);
    }

    #[test]
    fn weighted_mean_weights_by_examples() {
        let updates = [
            ClientUpdate {
                delta: vec![1.0, 0.0],
                examples: 3,
                loss: 0.0,
            },
            ClientUpdate {
                delta: vec![-1.0, 4.0],
                examples: 1,
                loss: 0.0,
            },
        ];
        assert_eq!(weighted_mean(&updates).unwrap(), vec![0.5, 1.0]);
        assert!(weighted_mean(&[]).is_err());
        let mut bad = updates.clone();
        bad[1].delta.push(1.0);
        assert!(weighted_mean(&bad).is_err());
        bad[1].delta = vec![f32::NAN, 1.0];
        assert!(weighted_mean(&bad).is_err());
    }

    #[test]
    fn fedavg_trains_digits_across_clients() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
        let data = Dataset::read(&path, "label", None).unwrap();
        let (mut training, mut test) = data.stratified_split(0.2, 42).unwrap();
        let standardizer = Standardizer::fit(&training).unwrap();
        training.standardize(&standardizer).unwrap();
        test.standardize(&standardizer).unwrap();
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 64,
            classes: 10,
        };
        let clients: Vec<FederatedClient> = partition_iid(training.rows(), 10, 1)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(id, rows)| {
                FederatedClient::new(id as u32, training.select(&rows).unwrap(), spec.clone())
                    .unwrap()
            })
            .collect();
        let config = TrainConfig {
            epochs: 5,
            batch_size: 32,
            optimizer: OptimizerSpec::Sgd {
                learning_rate: 0.05,
                momentum: 0.0,
                weight_decay: 0.0,
            },
            proximal_mu: 0.0,
            seed: 1,
        };
        let global_model = Model::new(spec, 1).unwrap();
        let mut global = global_model.parameters().unwrap();
        for round in 0..10 {
            let updates: Vec<ClientUpdate> = clients
                .iter()
                .map(|client| client.local_update(&global, round, &config).unwrap())
                .collect();
            apply_update(&mut global, &weighted_mean(&updates).unwrap(), 1.0).unwrap();
        }
        global_model.set_parameters(&global).unwrap();
        let accuracy = global_model.evaluate(&test).unwrap().accuracy;
        assert!(accuracy > 0.93, "accuracy {accuracy}");
    }
}
