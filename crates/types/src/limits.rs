//! Every size and count the ledger accepts has a named limit here.
//!
//! Decoders enforce the structural limits (lengths of strings and lists) so that no untrusted input can make
//! a node allocate more than these bounds; the ledger enforces the semantic ones (ancestors, shares). The
//! `const _: () = assert!(..)` checks below state how the limits relate, so changing one that would break
//! another fails the build.

/// Basis points in a whole (100%). Owner shares sum to exactly this; royalty rates never exceed it.
pub const BASIS_POINTS_TOTAL: u16 = 10_000;

/// Longest chain id, in bytes (UTF-8).
pub const CHAIN_ID_BYTES_MAX: usize = 64;

/// Longest asset name, in bytes (UTF-8).
pub const ASSET_NAME_BYTES_MAX: usize = 128;

/// Most owners one asset may list.
pub const ASSET_OWNERS_MAX: usize = 16;

/// Most direct parents one asset may list.
pub const ASSET_PARENTS_MAX: usize = 32;

/// Most transitive ancestors (parents, their parents, ...; each counted once) one asset may have.
pub const ASSET_ANCESTORS_MAX: usize = 128;

/// Most transactions in one block.
pub const BLOCK_TRANSACTIONS_MAX: usize = 10_000;

/// Largest encoded signed transaction, in bytes.
pub const TRANSACTION_BYTES_MAX: usize = 4_096;

/// Most descendants a lineage query returns (ancestors are bounded by [`ASSET_ANCESTORS_MAX`]).
pub const LINEAGE_DESCENDANTS_MAX: usize = 1_024;

/// Most items one paged query returns.
pub const QUERY_PAGE_MAX: usize = 1_000;

/// Most events one transaction's royalty split can emit: one owner payout per owner of the asset and of
/// each ancestor, plus one forward per parent link walked.
pub const ROYALTY_EVENTS_MAX: usize =
    (ASSET_ANCESTORS_MAX + 1) * ASSET_OWNERS_MAX + ASSET_ANCESTORS_MAX * ASSET_PARENTS_MAX;

/// Largest transaction header: version, chain id (length byte and text), sender, nonce and fee.
pub const TRANSACTION_HEADER_BYTES_MAX: usize =
    1 /* version */ + 1 + CHAIN_ID_BYTES_MAX + 32 /* sender */ + 8 /* nonce */ + 16 /* fee */;

/// Encoded size of license terms with both options present.
pub const TERMS_BYTES_MAX: usize =
    4 /* bools */ + 2 /* royalty */ + 16 /* price */ + 9 /* expiry */ + 9 /* cap */;

/// Largest encoded `RegisterAsset` call (tag included), with every list full.
pub const REGISTER_ASSET_CALL_BYTES_MAX: usize = 1 /* tag */ + 32 /* content root */ + 1 /* kind */
    + 1 + ASSET_NAME_BYTES_MAX + 8 /* byte size */ + 1 + ASSET_OWNERS_MAX * (32 + 2)
    + 1 + ASSET_PARENTS_MAX * (32 + 8) + TERMS_BYTES_MAX;

/// Encoded size of the largest possible signed transaction: the header, the largest of the calls
/// whose size depends on limits (each with every string and list at its limit), and the signature.
pub const TRANSACTION_BYTES_WORST_CASE: usize = {
    let calls = [
        REGISTER_ASSET_CALL_BYTES_MAX,
        // ReportMisbehaviour.
        1 /* tag */ + 32 /* validator */ + 8 /* view */ + 2 + EVIDENCE_PROOF_BYTES_MAX,
        // CreateRewardPool (its amount, stake and window last).
        1 /* tag */ + 1 + REWARD_TASK_BYTES_MAX + 32 /* test set */ + 1
            + REWARD_POOL_ASSETS_MAX * 32 + 16 + 16 + 8,
        // SubmitValuation and ChallengeValuation.
        1 /* tag */ + 8 /* pool */ + 32 /* report */ + 1 + REWARD_POOL_ASSETS_MAX * (32 + 2),
        // RegisterProvider.
        1 /* tag */ + 8 /* capacity */ + 16 /* price */ + 1 + ENDPOINT_BYTES_MAX,
        // StoreAsset.
        1 /* tag */ + 32 /* asset */ + 32 /* manifest */ + 1 + 1 + 8 + 1 + STORAGE_SHARDS_MAX * 32,
        // SubmitProof.
        1 /* tag */ + 8 /* deal */ + 8 /* epoch */ + 2 + STORAGE_PROOF_BYTES_MAX,
        OPEN_SESSION_CALL_BYTES_MAX,
        COMMIT_ROUND_CALL_BYTES_MAX,
        FINALIZE_SESSION_CALL_BYTES_MAX,
    ];
    let mut largest = 0;
    let mut index = 0;
    while index < calls.len() {
        if calls[index] > largest {
            largest = calls[index];
        }
        index += 1;
    }
    TRANSACTION_HEADER_BYTES_MAX + largest + 64 /* signature */
};

const _: () = assert!(TRANSACTION_BYTES_WORST_CASE <= TRANSACTION_BYTES_MAX);
const _: () = assert!(ASSET_PARENTS_MAX <= ASSET_ANCESTORS_MAX);
// Each parent link carries a royalty rate; even all parents at their maximum fit in u32 arithmetic.
const _: () = assert!(ASSET_PARENTS_MAX * (BASIS_POINTS_TOTAL as usize) < u32::MAX as usize);
// Length prefixes are single bytes.
const _: () = assert!(CHAIN_ID_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(ASSET_NAME_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(ASSET_OWNERS_MAX <= u8::MAX as usize);
const _: () = assert!(ASSET_PARENTS_MAX <= u8::MAX as usize);
// One owner per basis point at most: every owner holds at least 1 bps.
const _: () = assert!(ASSET_OWNERS_MAX <= BASIS_POINTS_TOTAL as usize);
const _: () = assert!(QUERY_PAGE_MAX <= LINEAGE_DESCENDANTS_MAX);
const _: () = assert!(ROYALTY_EVENTS_MAX < 1 << 16);
const _: () = assert!(BLOCK_TRANSACTIONS_MAX <= u32::MAX as usize);

/// Most validators in a validator set.
pub const VALIDATORS_MAX: usize = 128;

/// Most transactions waiting in a node's mempool.
pub const MEMPOOL_TRANSACTIONS_MAX: usize = 100_000;

/// Largest HTTP request body the API accepts, in bytes.
pub const API_BODY_BYTES_MAX: usize = 64 * 1024;

/// Longest key name in a keystore, in bytes.
pub const KEY_NAME_BYTES_MAX: usize = 64;

// An API body holds at least two transactions; a mempool holds at least a full block.
const _: () = assert!(API_BODY_BYTES_MAX > 2 * TRANSACTION_BYTES_MAX + 64);
const _: () = assert!(MEMPOOL_TRANSACTIONS_MAX >= BLOCK_TRANSACTIONS_MAX);

/// Most proven validator faults a node keeps for its API.
pub const EVIDENCE_RECORDS_MAX: usize = 1_024;

/// Most transactions in one `POST /v1/transactions/batch`.
pub const API_BATCH_TRANSACTIONS_MAX: usize = 2_000;

/// Largest batch request body, in bytes (hex doubles each transaction's size).
pub const API_BATCH_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(API_BATCH_TRANSACTIONS_MAX <= BLOCK_TRANSACTIONS_MAX);
const _: () = assert!(API_BATCH_BODY_BYTES_MAX >= API_BODY_BYTES_MAX);

/// Largest misbehaviour proof in a `ReportMisbehaviour` transaction, in bytes (two signed votes).
pub const EVIDENCE_PROOF_BYTES_MAX: usize = 1_024;

const _: () = assert!(EVIDENCE_PROOF_BYTES_MAX + 256 <= TRANSACTION_BYTES_MAX);

/// Most times a proposer re-executes its candidate block after dropping a transaction that fails
/// at block level; past it, the block is cut before the failing transaction.
pub const PROPOSAL_BUILD_ATTEMPTS_MAX: usize = 8;

/// Most full (non-voting) nodes a genesis lists.
pub const FOLLOWERS_MAX: usize = 64;

/// Most consensus-round seeds a node keeps (newest views win) for building blocks on notarized
/// parents.
pub const CONSENSUS_SEEDS_KEPT_MAX: usize = 1_024;

/// Most assets a reward pool may pay, and most entries in a valuation's shares.
pub const REWARD_POOL_ASSETS_MAX: usize = 64;

/// Longest reward-pool task description, in bytes.
pub const REWARD_TASK_BYTES_MAX: usize = 160;

/// Longest challenge window of a reward pool, in blocks.
pub const CHALLENGE_WINDOW_BLOCKS_MAX: u64 = 1_000_000;

/// Largest valuation committee.
pub const COMMITTEE_SIZE_MAX: u16 = 64;

// A valuation (pool id, report root, one byte of count, 34 bytes per share) and a pool creation
// fit in a transaction beside its header.
const _: () = assert!(8 + 32 + 1 + REWARD_POOL_ASSETS_MAX * 34 + 256 <= TRANSACTION_BYTES_MAX);
const _: () = assert!(
    1 + REWARD_TASK_BYTES_MAX + 32 + 1 + REWARD_POOL_ASSETS_MAX * 32 + 16 + 16 + 8 + 256
        <= TRANSACTION_BYTES_MAX
);
const _: () = assert!(REWARD_POOL_ASSETS_MAX <= u8::MAX as usize);

/// Most shards (k + m) an asset is coded into.
pub const STORAGE_SHARDS_MAX: usize = 32;

/// Longest provider endpoint, in bytes.
pub const ENDPOINT_BYTES_MAX: usize = 200;

/// Largest storage proof in a `SubmitProof` transaction, in bytes.
pub const STORAGE_PROOF_BYTES_MAX: usize = 3_072;

/// Most epochs one storage deal pays for.
pub const DEAL_EPOCHS_MAX: u32 = 1_000_000;

const _: () = assert!(STORAGE_PROOF_BYTES_MAX + 256 <= TRANSACTION_BYTES_MAX);
const _: () = assert!(STORAGE_SHARDS_MAX <= u8::MAX as usize);
const _: () = assert!(32 + 32 + 3 + 8 + 1 + STORAGE_SHARDS_MAX * 32 + 256 <= TRANSACTION_BYTES_MAX);

/// Largest shard the API moves, in bytes. An upload streams to disk, but a repair or a reader
/// fetching a whole shard holds it in memory, so this bounds that memory. 512 MiB takes a 2 GiB
/// asset at 4+2.
pub const API_SHARD_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Longest a provider waits for the next bytes of a shard upload before it gives the upload up
/// (stores nothing, answers 408 `upload_stalled`), so a stalled uploader cannot hold a provider's
/// thread and a temporary file for ever.
pub const API_UPLOAD_IDLE_TIMEOUT_MS: u64 = 30_000;

/// Longest training-session task description, in bytes. The session's reward pool is named
/// `training session {id}: {task}`, which must fit [`REWARD_TASK_BYTES_MAX`].
pub const TRAINING_TASK_BYTES_MAX: usize = 120;

/// Longest prefix of a training session's pool task: `"training session "`, a u64 in decimal
/// (at most 20 digits) and `": "`.
pub const TRAINING_POOL_TASK_PREFIX_BYTES_MAX: usize = 17 + 20 + 2;

/// Most assets a training session may name as eligible (they become its reward pool's assets).
pub const TRAINING_ELIGIBLE_ASSETS_MAX: usize = REWARD_POOL_ASSETS_MAX;

/// Most participants (joined assets) of a training session: each becomes a parent of the model.
pub const TRAINING_PARTICIPANTS_MAX: usize = ASSET_PARENTS_MAX;

/// Most rounds a training session may plan (each committed round is kept on the ledger).
pub const TRAINING_ROUNDS_MAX: u32 = 1_000;

/// 10¹⁸: one whole in the `_atto` fixed point (δ of differential privacy is below it).
pub const ATTO_PER_UNIT: u64 = 1_000_000_000_000_000_000;

/// Largest encoded `OpenSession` call (tag included).
pub const OPEN_SESSION_CALL_BYTES_MAX: usize = 1 /* tag */ + 32 /* spec root */
    + 1 + TRAINING_TASK_BYTES_MAX + 1 + TRAINING_ELIGIBLE_ASSETS_MAX * 32
    + 16 /* reward */ + 16 /* stake */ + 8 /* window */ + 4 /* rounds */
    + 1 + 16 /* privacy */ + 1 + 4 /* aggregation */ + 1 /* secure aggregation */
    + 32 /* aggregator */ + 1 + ENDPOINT_BYTES_MAX + 2 + 2 /* participant bounds */;

/// Largest encoded `CommitRound` call (tag included).
pub const COMMIT_ROUND_CALL_BYTES_MAX: usize = 1 /* tag */ + 8 /* session */ + 4 /* round */
    + 32 /* aggregate root */ + 1 + TRAINING_PARTICIPANTS_MAX * 32;

/// Largest encoded `FinalizeSession` call (tag included).
pub const FINALIZE_SESSION_CALL_BYTES_MAX: usize = 1 /* tag */ + 8 /* session */
    + 32 /* model root */ + 1 + ASSET_NAME_BYTES_MAX + 8 /* byte size */ + 9 /* epsilon */
    + 8 /* delta */ + 1 + TRAINING_PARTICIPANTS_MAX * (32 + 2) + 1 + 32 /* report root */
    + TERMS_BYTES_MAX;

const _: () =
    assert!(TRAINING_TASK_BYTES_MAX + TRAINING_POOL_TASK_PREFIX_BYTES_MAX <= REWARD_TASK_BYTES_MAX);
const _: () = assert!(TRAINING_TASK_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(TRAINING_ELIGIBLE_ASSETS_MAX <= REWARD_POOL_ASSETS_MAX);
const _: () = assert!(TRAINING_ELIGIBLE_ASSETS_MAX <= u8::MAX as usize);
// The model lists every participant as a parent, and participants are among the eligible assets.
const _: () = assert!(TRAINING_PARTICIPANTS_MAX <= ASSET_PARENTS_MAX);
const _: () = assert!(TRAINING_PARTICIPANTS_MAX <= TRAINING_ELIGIBLE_ASSETS_MAX);
const _: () = assert!(TRAINING_PARTICIPANTS_MAX <= u16::MAX as usize);
// A session's view and bill of materials list every committed round within one page.
const _: () = assert!(TRAINING_ROUNDS_MAX as usize <= QUERY_PAGE_MAX);

/// Most key envelopes (an asset's data key wrapped to one reader) a storage provider keeps for
/// one asset.
pub const KEY_ENVELOPES_PER_ASSET_MAX: usize = 4_096;

/// Most key envelopes in one delivery to a storage provider.
pub const KEY_ENVELOPES_PER_DELIVERY_MAX: usize = 256;

/// Largest key delivery body the API accepts, in bytes: the asset's manifest (JSON, escaped as a
/// JSON string: at most twice its size) and the envelopes.
pub const API_KEY_DELIVERY_BODY_BYTES_MAX: usize = 112 * 1024 * 1024;

/// Longest a signed key delivery or key request stays valid, in milliseconds from now.
pub const KEY_REQUEST_LIFETIME_MS_MAX: u64 = 10 * 60 * 1_000;

const _: () = assert!(KEY_ENVELOPES_PER_DELIVERY_MAX <= KEY_ENVELOPES_PER_ASSET_MAX);
const _: () = assert!(KEY_ENVELOPES_PER_ASSET_MAX <= u32::MAX as usize);
const _: () = assert!(API_KEY_DELIVERY_BODY_BYTES_MAX >= API_BODY_BYTES_MAX);
