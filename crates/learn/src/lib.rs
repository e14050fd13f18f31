//! Federated learning for Tributary: several contributors train one model without any of them, or the
//! trainer, seeing another's data or individual update.
//!
//! - [`data`], [`model`], [`train`]: tabular datasets, candle models (softmax regression, MLP, CNN) and
//!   local training with SGD+momentum or Adam; weights as safetensors.
//! - [`federated`]: FedAvg and FedProx rounds over flat parameter vectors, client sampling, and a seeded
//!   Dirichlet non-IID partitioner for experiments.
//! - [`secagg`]: SecAgg+ secure aggregation; the aggregator only ever holds masked vectors and their sum.
//! - [`privacy`]: DP-FedAvg clipping and noise, and the Rényi-DP accountant for the subsampled Gaussian.
//! - [`robust`]: coordinate median, trimmed mean, Krum and Multi-Krum.
//!
//! Everything that draws randomness takes a seed, so experiments and tests replay exactly.

pub mod data;
pub mod error;
pub mod federated;
pub mod limits;
pub mod model;
pub mod privacy;
pub mod protocol;
pub mod robust;
pub mod secagg;
pub mod session;
pub mod train;

pub use data::{Dataset, Standardizer};
pub use error::{LearnError, Result};
pub use model::{Architecture, Evaluation, Model, ModelSpec};
pub use train::{OptimizerSpec, TrainConfig, train};
