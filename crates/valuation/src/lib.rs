//! Data valuation for Tributary: how much each training row, and each contributor, adds to a model.
//!
//! # Methods
//!
//! * **Closed-form nearest-neighbour Shapley** ([`knn`]): exact KNN-Shapley (Jia et al. 2019), its soft-label
//!   variant (Wang & Jia 2023), threshold KNN-Shapley (O(N) per test point, no sort) and the truncated
//!   variant. These are exact (or have a stated error bound) and fast: one blocked GEMM for distances, one
//!   sort per test point.
//! * **Retraining methods** ([`retrain`]) over a pluggable [`utility::Utility`] (a model trained on a subset,
//!   scored on the test set): TMC Shapley, Data Banzhaf (maximum-sample-reuse), Beta Shapley and
//!   leave-one-out. Seeded, so the same inputs give the same values.
//!
//! # Design choices
//!
//! * **Determinism over speed.** Values are bit-identical on one machine whatever the thread count: work is
//!   split into blocks whose size depends only on the input, each block is computed sequentially, and
//!   partial sums are folded in block order (never through rayon's reduction, whose association order
//!   depends on scheduling). Random streams are derived per sample from the seed ([`rng`]).
//! * **Floats never reach the ledger.** Contributor totals are converted to integer basis points
//!   ([`shares`]) with an exact integer largest-remainder rule; verifiers compare shares with ±1 bps.
//! * **Bounded memory.** Test points stream through in blocks; the largest allocation besides the training
//!   matrix is one block of distances per thread (≤ 64 MiB) and one partial-sum vector per block in flight.
//! * **Duplicates earn nothing twice** ([`dedup`]): an exact or near copy of an earlier row is flagged and
//!   its value is moved to the row it copies, so the first contributor keeps it.
//! * **Reports are re-executable** ([`report`]): they commit to every input file by BLAKE3 root and record
//!   every parameter, so [`report::verify`] can recompute them.
//! * **Limits everywhere** ([`limits`]), checked while reading input.
//!
//! # Input
//!
//! Training and test files are CSV or Parquet, chosen by extension ([`data::read_table`]). Parquet is read
//! without Arrow, through the `parquet` crate's column readers; files compressed with Snappy or Zstandard
//! (or uncompressed) are read, other codecs are rejected with a clear error.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod data;
pub mod dedup;
pub mod distance;
pub mod error;
pub mod knn;
pub mod limits;
pub mod removal;
pub mod report;
pub mod retrain;
pub mod rng;
pub mod shares;
pub mod split;
pub mod utility;

pub use data::{
    CsvOptions, Matrix, Problem, Table, TableFormat, read_csv, read_parquet, read_table,
};
pub use error::{Result, ValuationError};
pub use knn::{KnnInput, KnnVariant, knn_shapley};
pub use report::{Method, ModelKind, Parameters, ValuationReport, VerifyOutcome, verify};

/// Receives progress from long computations (a progress bar in the CLI). Must be cheap and thread-safe:
/// `advance` is called from worker threads.
pub trait Progress: Sync {
    /// The total amount of work (test points, samples, ...) about to be done.
    fn start(&self, _total: u64) {}
    /// `done` more units finished.
    fn advance(&self, _done: u64) {}
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Emits a `tracing` debug event when the `tracing` feature is on; compiles to nothing otherwise.
macro_rules! debug_event {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            tracing::debug!(target: "tributary::valuation", $($arg)*);
        }
    };
}
pub(crate) use debug_event;
