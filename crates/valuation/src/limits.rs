//! Named limits on every input the crate accepts.
//!
//! Valuation inputs arrive from contributors and from the network, so every dimension has a maximum that is
//! checked while reading (before anything is allocated from it), not after. The relations between the limits
//! are checked at compile time at the bottom of this file.

/// Largest input file (CSV or Parquet) accepted, in bytes.
pub const FILE_BYTES_MAX: u64 = 8 * 1024 * 1024 * 1024;

/// Most data rows in one file, and in the training set as a whole.
pub const ROWS_MAX: usize = 20_000_000;

/// Most test rows (test points are streamed in blocks, but each still costs a pass over the training set).
pub const TEST_ROWS_MAX: usize = 1_000_000;

/// Most feature columns.
pub const FEATURES_MAX: usize = 4_096;

/// Most cells (rows × features) held in memory for one set: 3 GiB of `f64`.
pub const CELLS_MAX: usize = 400_000_000;

/// Largest `K` for the nearest-neighbour methods.
pub const K_MAX: usize = 1_024;

/// Most distinct labels (classes).
pub const CLASSES_MAX: usize = 65_536;

/// Most distinct contributors in one valuation.
pub const CONTRIBUTORS_MAX: usize = 1_000_000;

/// Longest label, contributor name or column name, in bytes.
pub const NAME_BYTES_MAX: usize = 256;

/// Most training files in one valuation.
pub const FILES_MAX: usize = 10_000;

/// Most Monte Carlo samples (permutations or subsets) for the retraining methods.
pub const SAMPLES_MAX: usize = 1_000_000;

/// Most training rows for the retraining methods (TMC, Banzhaf, Beta, leave-one-out), whose cost grows with
/// the number of rows times the number of samples.
pub const RETRAIN_ROWS_MAX: usize = 200_000;

/// Most (test rows × training rows) entries a retraining KNN utility precomputes (ranks, `u32` each).
pub const RETRAIN_RANK_ENTRIES_MAX: usize = 400_000_000;

/// Most training rows for near-duplicate detection, which compares every pair (blocked, but quadratic).
pub const NEAR_DUPLICATE_ROWS_MAX: usize = 200_000;

/// Most gradient-descent epochs for the logistic-regression utility.
pub const EPOCHS_MAX: usize = 10_000;

/// Bytes of pairwise distances one block of test points may hold (the block size adapts to this).
pub const DISTANCE_BLOCK_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most test points in one distance block (one GEMM).
pub const DISTANCE_BLOCK_ROWS_MAX: usize = 64;

/// Blocks computed in parallel before their partial sums are folded (in block order) into the total.
pub const BLOCKS_IN_FLIGHT_MAX: usize = 8;

/// Largest Parquet footer (the file's metadata, parsed into memory before any data), in bytes. A footer
/// costs roughly 100 bytes per column chunk with statistics, so this covers the widest file
/// ([`FEATURES_MAX`] columns) with several hundred row groups.
pub const PARQUET_FOOTER_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Most row groups in one Parquet file (each costs one reader per column, however few rows it holds).
pub const PARQUET_ROW_GROUPS_MAX: usize = 100_000;

/// Largest valuation report accepted by `verify`, in bytes.
pub const REPORT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// The shares of all contributors sum to exactly this many basis points.
pub const BASIS_POINTS_TOTAL: u32 = 10_000;

const _: () = assert!(TEST_ROWS_MAX <= ROWS_MAX);
const _: () = assert!(RETRAIN_ROWS_MAX <= ROWS_MAX);
const _: () = assert!(NEAR_DUPLICATE_ROWS_MAX <= ROWS_MAX);
const _: () = assert!(K_MAX <= RETRAIN_ROWS_MAX);
const _: () = assert!(CONTRIBUTORS_MAX <= ROWS_MAX);
const _: () = assert!(PARQUET_FOOTER_BYTES_MAX <= FILE_BYTES_MAX);
// Row indices are stored as u32 in the sort keys.
const _: () = assert!(ROWS_MAX < u32::MAX as usize);
// Class ids are stored as u32.
const _: () = assert!(CLASSES_MAX < u32::MAX as usize);
// One distance block must fit at least one test point against the largest training set... in rows of f64
// the block holds `DISTANCE_BLOCK_BYTES_MAX / 8` entries; a single test row always gets a block, so this is
// only a target. The block row cap must be positive.
const _: () = assert!(DISTANCE_BLOCK_ROWS_MAX >= 1 && BLOCKS_IN_FLIGHT_MAX >= 1);
