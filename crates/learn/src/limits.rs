//! Named limits on every size and count the `learn` crate accepts.
//!
//! Model specs, updates and protocol messages arrive from other parties (contributors, the aggregator, the
//! ledger), so every dimension is bounded here and checked before anything is allocated from it.

// ---- models and local training ----

/// Most trainable parameters in one model (40 MiB of `f32`).
pub const MODEL_PARAMETERS_MAX: usize = 10_000_000;

/// Largest model weights file read, in bytes.
pub const MODEL_FILE_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// Most hidden layers in an MLP.
pub const MLP_HIDDEN_LAYERS_MAX: usize = 8;

/// Widest hidden layer of an MLP, and most channels of a CNN layer.
pub const LAYER_WIDTH_MAX: usize = 4_096;

/// Most feature columns a model takes.
pub const FEATURES_MAX: usize = 65_536;

/// Most classes a classifier may have.
pub const CLASSES_MAX: usize = 1_024;

/// Most local epochs in one round (or in one local training run).
pub const EPOCHS_MAX: u32 = 10_000;

/// Largest mini-batch.
pub const BATCH_SIZE_MAX: usize = 65_536;

// ---- federated sessions ----

/// Most rounds in one federated session.
pub const ROUNDS_MAX: u32 = 100_000;

/// Most clients (contributors) in one federated session or one secure-aggregation round.
pub const CLIENTS_MAX: usize = 1_000;

// ---- secure aggregation ----

/// Longest vector one secure-aggregation round sums: a whole model plus one weight element.
pub const SECAGG_VECTOR_LENGTH_MAX: usize = MODEL_PARAMETERS_MAX + 1;

// ---- differential privacy and robust aggregation ----

/// Most steps (federated rounds or DP-SGD iterations) the privacy accountant composes in one call.
pub const PRIVACY_STEPS_MAX: u64 = 1_000_000_000;

/// Most Rényi orders one privacy accountant tracks.
pub const RENYI_ORDER_COUNT_MAX: usize = 1_024;

/// Largest Rényi order a privacy accountant accepts (an integer order sums `order + 1` terms).
pub const RENYI_ORDER_VALUE_MAX: f64 = 100_000.0;

/// Largest noise multiplier the search for a target epsilon tries before giving up.
pub const NOISE_MULTIPLIER_SEARCH_MAX: f64 = 1_000_000.0;

/// Most updates (clients, or client groups) one robust aggregation takes.
pub const AGGREGATION_UPDATES_MAX: usize = CLIENTS_MAX;

/// Most coordinate comparisons Krum and Multi-Krum may make: pairs of updates times update length
/// (`n(n-1)/2 · length`), which bounds their quadratic cost.
pub const KRUM_PAIRWISE_COORDINATES_MAX: u64 = 20_000_000_000;
