//! Local training: mini-batch epochs over a dataset with SGD (with momentum) or Adam, an optional FedProx
//! proximal term, and seeded shuffling so a run replays exactly.

use crate::data::Dataset;
use crate::error::{LearnError, Result};
use crate::limits;
use crate::model::Model;
use candle_core::{Tensor, Var, backprop::GradStore};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

/// The optimizer and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// Stochastic gradient descent with (heavy-ball) momentum and L2 weight decay.
    Sgd {
        /// Step size.
        learning_rate: f64,
        /// Momentum coefficient in [0, 1); 0 is plain SGD.
        #[serde(default)]
        momentum: f64,
        /// L2 penalty added to the gradient (`weight_decay × w`).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam (Kingma & Ba), with decoupled weight decay (AdamW) when `weight_decay` > 0.
    Adam {
        /// Step size.
        learning_rate: f64,
        /// First-moment decay.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Second-moment decay.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// Denominator guard.
        #[serde(default = "default_adam_epsilon")]
        epsilon: f64,
        /// Decoupled weight decay.
        #[serde(default)]
        weight_decay: f64,
    },
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_adam_epsilon() -> f64 {
    1e-8
}

impl OptimizerSpec {
    /// Checks the hyper-parameters.
    ///
    /// # Errors
    ///
    /// A value out of its range.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(LearnError::invalid("optimizer", message.to_string()))
            }
        };
        match *self {
            Self::Sgd {
                learning_rate,
                momentum,
                weight_decay,
            } => {
                check(
                    learning_rate.is_finite() && learning_rate > 0.0,
                    "the learning rate must be a positive number",
                )?;
                check((0.0..1.0).contains(&momentum), "momentum must be in [0, 1)")?;
                check(
                    weight_decay.is_finite() && weight_decay >= 0.0,
                    "weight decay must be a non-negative number",
                )
            }
            Self::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                check(
                    learning_rate.is_finite() && learning_rate > 0.0,
                    "the learning rate must be a positive number",
                )?;
                check(
                    (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2),
                    "beta1 and beta2 must be in [0, 1)",
                )?;
                check(
                    epsilon.is_finite() && epsilon > 0.0,
                    "epsilon must be a positive number",
                )?;
                check(
                    weight_decay.is_finite() && weight_decay >= 0.0,
                    "weight decay must be a non-negative number",
                )
            }
        }
    }
}

/// How to train locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: u32,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// FedProx proximal coefficient μ: adds `μ/2 · ‖w − w_start‖²` to the loss, keeping a client near the
    /// round's global model. 0 is FedAvg.
    #[serde(default)]
    pub proximal_mu: f64,
    /// Seed of the shuffling.
    #[serde(default)]
    pub seed: u64,
}

impl TrainConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// A value out of range.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > limits::EPOCHS_MAX {
            return Err(LearnError::invalid(
                "training",
                format!(
                    "{} epochs; between 1 and {} are supported",
                    self.epochs,
                    limits::EPOCHS_MAX
                ),
            ));
        }
        if self.batch_size == 0 || self.batch_size > limits::BATCH_SIZE_MAX {
            return Err(LearnError::invalid(
                "training",
                format!(
                    "batch size {}; between 1 and {} are supported",
                    self.batch_size,
                    limits::BATCH_SIZE_MAX
                ),
            ));
        }
        if !(self.proximal_mu.is_finite() && self.proximal_mu >= 0.0) {
            return Err(LearnError::invalid(
                "training",
                "the proximal coefficient μ must be a non-negative number",
            ));
        }
        self.optimizer.validate()
    }
}

/// The mean training loss of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: u32,
    /// Mean mini-batch loss (cross-entropy, plus the proximal term under FedProx).
    pub loss: f32,
}

/// Trains `model` on `data` in place; `on_epoch` sees each epoch's report as it ends.
///
/// # Errors
///
/// An invalid configuration, data that does not fit the model, or divergence (a non-finite loss).
pub fn train(
    model: &Model,
    data: &Dataset,
    config: &TrainConfig,
    mut on_epoch: impl FnMut(EpochReport),
) -> Result<Vec<EpochReport>> {
    config.validate()?;
    model.spec().check_data(data)?;
    if data.rows() == 0 {
        return Err(LearnError::invalid("training", "no rows to train on"));
    }
    let variables = model.variables();
    let anchor: Vec<Tensor> = if config.proximal_mu > 0.0 {
        variables
            .iter()
            .map(|variable| variable.as_tensor().copy().map(|tensor| tensor.detach()))
            .collect::<candle_core::Result<_>>()?
    } else {
        Vec::new()
    };
    let mut optimizer = LocalOptimizer::new(&config.optimizer, variables.clone())?;
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..data.rows()).collect();
    let features = data.feature_count();
    let mut batch_features = Vec::with_capacity(config.batch_size * features);
    let mut batch_labels = Vec::with_capacity(config.batch_size);
    let mut reports = Vec::with_capacity(config.epochs as usize);
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0_f64;
        let mut batches = 0_u32;
        for chunk in order.chunks(config.batch_size) {
            batch_features.clear();
            batch_labels.clear();
            for &row in chunk {
                batch_features
                    .extend_from_slice(&data.features()[row * features..(row + 1) * features]);
                batch_labels.push(data.labels()[row]);
            }
            let input =
                Tensor::from_slice(&batch_features, (chunk.len(), features), model.device())?;
            let targets = Tensor::from_slice(&batch_labels, chunk.len(), model.device())?;
            let logits = model.forward(&input)?;
            let mut loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            if config.proximal_mu > 0.0 {
                let mut proximal = Tensor::zeros((), candle_core::DType::F32, model.device())?;
                for (variable, start) in variables.iter().zip(&anchor) {
                    proximal = (proximal + variable.as_tensor().sub(start)?.sqr()?.sum_all()?)?;
                }
                loss = (loss + (proximal * (config.proximal_mu / 2.0))?)?;
            }
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(LearnError::Diverged {
                    epoch,
                    detail: format!("the loss is {value}"),
                });
            }
            loss_sum += f64::from(value);
            batches += 1;
            optimizer.step(&loss.backward()?)?;
        }
        if let Some(value) = variables.iter().find_map(|variable| {
            let finite = variable
                .as_tensor()
                .abs()
                .and_then(|magnitude| magnitude.max_all())
                .and_then(|largest| largest.to_scalar::<f32>());
            match finite {
                Ok(largest) if largest.is_finite() => None,
                Ok(largest) => Some(Ok(largest)),
                Err(error) => Some(Err(error)),
            }
        }) {
            return Err(LearnError::Diverged {
                epoch,
                detail: format!("a weight reached {}", value?),
            });
        }
        let report = EpochReport {
            epoch,
            loss: (loss_sum / f64::from(batches.max(1))) as f32,
        };
        on_epoch(report);
        reports.push(report);
    }
    Ok(reports)
}

/// SGD with momentum (ours: candle's `SGD` has none) or candle's AdamW.
enum LocalOptimizer {
    Sgd {
        variables: Vec<Var>,
        velocities: Vec<Option<Tensor>>,
        learning_rate: f64,
        momentum: f64,
        weight_decay: f64,
    },
    Adam(Box<AdamW>),
}

impl LocalOptimizer {
    fn new(spec: &OptimizerSpec, variables: Vec<Var>) -> Result<Self> {
        Ok(match *spec {
            OptimizerSpec::Sgd {
                learning_rate,
                momentum,
                weight_decay,
            } => Self::Sgd {
                velocities: vec![None; variables.len()],
                variables,
                learning_rate,
                momentum,
                weight_decay,
            },
            OptimizerSpec::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => Self::Adam(Box::new(AdamW::new(
                variables,
                ParamsAdamW {
                    lr: learning_rate,
                    beta1,
                    beta2,
                    eps: epsilon,
                    weight_decay,
                },
            )?)),
        })
    }

    fn step(&mut self, gradients: &GradStore) -> Result<()> {
        match self {
            Self::Sgd {
                variables,
                velocities,
                learning_rate,
                momentum,
                weight_decay,
            } => {
                for (variable, velocity) in variables.iter().zip(velocities.iter_mut()) {
                    let Some(gradient) = gradients.get(variable) else {
                        continue;
                    };
                    let mut gradient = gradient.clone();
                    if *weight_decay > 0.0 {
                        gradient = (gradient + (variable.as_tensor() * *weight_decay)?)?;
                    }
                    let update = match velocity.take() {
                        Some(previous) if *momentum > 0.0 => ((previous * *momentum)? + gradient)?,
                        _ => gradient,
                    };
                    variable.set(&variable.as_tensor().sub(&(&update * *learning_rate)?)?)?;
                    if *momentum > 0.0 {
                        *velocity = Some(update);
                    }
                }
                Ok(())
            }
            Self::Adam(adam) => Ok(adam.step(gradients)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Standardizer;
    use crate::model::{Architecture, ModelSpec};
    use std::path::Path;

    fn digits() -> (Dataset, Dataset) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
        let data = Dataset::read(&path, "label", None).unwrap();
        let (mut train, mut test) = data.stratified_split(0.2, 42).unwrap();
        let standardizer = Standardizer::fit(&train).unwrap();
        train.standardize(&standardizer).unwrap();
        test.standardize(&standardizer).unwrap();
        (train, test)
    }

    fn sgd(learning_rate: f64) -> OptimizerSpec {
        OptimizerSpec::Sgd {
            learning_rate,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }

    #[test]
    fn softmax_learns_digits() {
        let (training, test) = digits();
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 64,
            classes: 10,
        };
        let model = Model::new(spec, 1).unwrap();
        let config = TrainConfig {
            epochs: 20,
            batch_size: 32,
            optimizer: sgd(0.01),
            proximal_mu: 0.0,
            seed: 1,
        };
        let reports = train_local(&model, &training, &config);
        assert!(reports.last().unwrap().loss < reports[0].loss);
        let accuracy = model.evaluate(&test).unwrap().accuracy;
        assert!(accuracy > 0.94, "accuracy {accuracy}");
    }

    fn train_local(model: &Model, data: &Dataset, config: &TrainConfig) -> Vec<EpochReport> {
        train(model, data, config, |_| {}).unwrap()
    }

    #[test]
    fn mlp_and_cnn_learn_digits_with_adam() {
        let (training, test) = digits();
        for architecture in [
            Architecture::Mlp { hidden: vec![32] },
            Architecture::Cnn {
                side: 8,
                channels: [16, 32],
            },
        ] {
            let spec = ModelSpec {
                architecture: architecture.clone(),
                features: 64,
                classes: 10,
            };
            let model = Model::new(spec, 2).unwrap();
            let config = TrainConfig {
                epochs: 8,
                batch_size: 32,
                optimizer: OptimizerSpec::Adam {
                    learning_rate: 0.01,
                    beta1: 0.9,
                    beta2: 0.999,
                    epsilon: 1e-8,
                    weight_decay: 0.0,
                },
                proximal_mu: 0.0,
                seed: 2,
            };
            train_local(&model, &training, &config);
            let accuracy = model.evaluate(&test).unwrap().accuracy;
            assert!(accuracy > 0.9, "{architecture:?}: accuracy {accuracy}");
        }
    }

    #[test]
    fn training_replays_from_its_seed() {
        let (training, _) = digits();
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 64,
            classes: 10,
        };
        let config = TrainConfig {
            epochs: 1,
            batch_size: 64,
            optimizer: sgd(0.05),
            proximal_mu: 0.1,
            seed: 9,
        };
        let first = Model::new(spec.clone(), 3).unwrap();
        let second = Model::new(spec, 3).unwrap();
        train_local(&first, &training, &config);
        train_local(&second, &training, &config);
        assert_eq!(first.parameters().unwrap(), second.parameters().unwrap());
    }

    #[test]
    fn proximal_term_keeps_the_model_closer_to_its_start() {
        let (training, _) = digits();
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 64,
            classes: 10,
        };
        let distance = |mu: f64| {
            let model = Model::new(spec.clone(), 4).unwrap();
            let start = model.parameters().unwrap();
            let config = TrainConfig {
                epochs: 3,
                batch_size: 32,
                optimizer: sgd(0.05),
                proximal_mu: mu,
                seed: 4,
            };
            train_local(&model, &training, &config);
            let end = model.parameters().unwrap();
            start
                .iter()
                .zip(&end)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
        };
        let (free, held) = (distance(0.0), distance(1.0));
        assert!(held < free * 0.9, "free {free}, held {held}");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let (training, _) = digits();
        let model = Model::new(
            ModelSpec {
                architecture: Architecture::Softmax,
                features: 64,
                classes: 10,
            },
            1,
        )
        .unwrap();
        let good = TrainConfig {
            epochs: 1,
            batch_size: 8,
            optimizer: sgd(0.1),
            proximal_mu: 0.0,
            seed: 0,
        };
        for config in [
            TrainConfig {
                epochs: 0,
                ..good.clone()
            },
            TrainConfig {
                batch_size: 0,
                ..good.clone()
            },
            TrainConfig {
                optimizer: sgd(-1.0),
                ..good.clone()
            },
            TrainConfig {
                proximal_mu: f64::NAN,
                ..good.clone()
            },
        ] {
            assert!(train(&model, &training, &config, |_| {}).is_err());
        }
        let wrong = Model::new(
            ModelSpec {
                architecture: Architecture::Softmax,
                features: 63,
                classes: 10,
            },
            1,
        )
        .unwrap();
        assert!(train(&wrong, &training, &good, |_| {}).is_err());
        // A learning rate far too high diverges and says so.
        let diverging = TrainConfig {
            epochs: 30,
            optimizer: sgd(1e38),
            ..good
        };
        let result = train(&model, &training, &diverging, |_| {});
        assert!(
            matches!(result, Err(LearnError::Diverged { .. })),
            "{result:?}"
        );
    }
}
