//! Deterministic multi-validator simulation of Tributary.
//!
//! N validators run the production engine ([`tributary_chain::engine::start_engine`]) in one
//! process on commonware's deterministic runtime and simulated network, driven by a seed: the
//! same seed replays the same run, message for message. A workload submits random valid and
//! invalid transactions to random validators; faults are links that drop and delay messages,
//! validators that never start, and (in later scenarios) partitions, crashes and Byzantine peers.
//!
//! After a run, [`Report::check`] verifies the invariants every scenario must hold: all honest
//! validators finalized the same prefix with the same state roots, total supply is conserved,
//! every valid transaction was finalized exactly once, and every invalid one was refused.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod storage;

use commonware_cryptography::{Signer, ed25519};
use commonware_p2p::simulated::{self, Link};
use commonware_runtime::{Clock, Quota, Runner, Supervisor, deterministic};
use commonware_utils::NZUsize;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::{collections::BTreeMap, num::NonZeroU32, time::Duration};
use tributary_chain::{
    Block, ChainState, EngineConfig, NodeIdentity, ValidatorSet,
    engine::{CHANNEL_QUOTAS, Channels, max_message_size, start_engine},
    genesis::deal,
};
use tributary_ledger::Ledger;
use tributary_types::{Address, Amount, Call, Genesis, SignedTransaction, Transaction, TxHash};

/// The simulated chain's id.
pub const CHAIN_ID: &str = "tributary-sim";
/// The account address of simulated validator `index`.
pub fn validator_address(index: u64) -> String {
    Address::from_public_key(&ed25519::PrivateKey::from_seed(index).public_key()).to_string()
}

/// Accounts funded at genesis that the workload spends from.
pub const ACCOUNTS: u64 = 8;
/// Each account's starting balance.
pub const ACCOUNT_BALANCE: Amount = 1_000_000_000;

/// Each validator's genesis bond (its stake, slashed for proven misbehaviour).
pub const VALIDATOR_BOND: Amount = 1_000_000;

/// A scenario's knobs.
#[derive(Clone)]
pub struct Scenario {
    /// The seed everything derives from.
    pub seed: u64,
    /// Validators in the genesis.
    pub validators: usize,
    /// Validators that never start (crashed for the whole run), counted from the last.
    pub offline: usize,
    /// Link between every pair of running validators.
    pub link: Link,
    /// Stop once every running validator finalized this height.
    pub target_height: u64,
    /// Transactions the workload submits (about a quarter of them invalid).
    pub transactions: usize,
    /// Simulated time allowed before the run counts as stalled.
    pub timeout: Duration,
    /// Faults injected while the workload runs, keyed by workload step.
    pub faults: Vec<Fault>,
}

/// A fault injected at a workload step (the step counts submitted transactions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut every link between the first half of the running validators and the second half
    /// at step `at`, and restore them at step `heal`.
    Partition {
        /// Step that cuts the links.
        at: usize,
        /// Step that restores them.
        heal: usize,
    },
    /// Validator `validator` is Byzantine for the whole run: instead of the honest engine it runs
    /// commonware's `Conflicter`, which signs conflicting votes (notarize and finalize for
    /// random payloads) in every view. The checkers must still see one chain.
    Byzantine {
        /// Which validator.
        validator: usize,
    },
    /// Validator `validator` runs the honest engine but proposes blocks whose state root its
    /// transactions do not produce; honest validators must refuse them and finalize without.
    WrongStateRoot {
        /// Which validator.
        validator: usize,
    },
    /// Validator `validator` sends random bytes of random lengths on every channel to every
    /// peer instead of running the engine; nobody may crash or stall.
    Garbage {
        /// Which validator.
        validator: usize,
    },
    /// A peer outside the validator set joins the network and floods it with votes signed under
    /// another validator set's keys; nobody may accept them, crash or stall.
    Outsider,
    /// From step `at` until step `until`, every write and sync of every node may fail with
    /// probability `percent`% (the deterministic runtime's fault injection; a failed write may
    /// leave a prefix of its bytes). A node whose storage fails stops (its actors fail-stop, as
    /// a process would crash); at `until` every node that is up is restarted from its storage,
    /// as a supervisor would. The checkers still require one chain, nothing finalized lost.
    StorageFaults {
        /// Step that turns faults on.
        at: usize,
        /// Step that turns them off.
        until: usize,
        /// Failure probability of each write and sync, in percent.
        percent: u8,
    },
    /// Stop validator `validator` abruptly at step `at` (its tasks are aborted; its storage
    /// keeps whatever it had synced) and start it again from that storage at step `restart`.
    Crash {
        /// Which validator.
        validator: usize,
        /// Step that kills it.
        at: usize,
        /// Step that restarts it.
        restart: usize,
    },
}

/// What a run produced, per running validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Finalized block digests by height, per validator.
    pub chains: Vec<BTreeMap<u64, String>>,
    /// State roots by height, per validator.
    pub roots: Vec<BTreeMap<u64, String>>,
    /// Total supply at the end, per validator.
    pub supplies: Vec<Amount>,
    /// Genesis total supply.
    pub genesis_supply: Amount,
    /// Valid transactions the workload submitted and the count of finalized receipts for each,
    /// as seen by validator 0.
    pub valid: BTreeMap<TxHash, usize>,
    /// Invalid transactions that some validator admitted (must be empty).
    pub invalid_admitted: Vec<TxHash>,
    /// The proposer of each finalized block (validator 0's view), by height.
    pub proposers: BTreeMap<u64, String>,
    /// Validators whose misbehaviour validator 0 reported on chain (`ReportMisbehaviour`
    /// finalized), after a forged report (wrong view) was refused.
    pub misbehaviour_on_chain: Vec<String>,
    /// Stake slashed from each validator by those reports (address, amount).
    pub slashed_on_chain: Vec<(String, Amount)>,
    /// Whether the forged report was refused at admission.
    pub forged_report_refused: bool,
    /// Validators each honest validator holds proof of misbehaviour against (addresses).
    pub accused: Vec<std::collections::BTreeSet<String>>,
    /// The runtime's auditor state: a digest of every event of the run.
    pub auditor: String,
}

impl Report {
    /// Checks the invariants; returns every violation.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let common = self
            .chains
            .iter()
            .map(|chain| chain.len())
            .min()
            .unwrap_or(0) as u64;
        for height in 0..common {
            let digests: Vec<_> = self.chains.iter().map(|c| c.get(&height)).collect();
            if digests.windows(2).any(|w| w[0] != w[1]) {
                problems.push(format!(
                    "validators finalized different blocks at height {height}"
                ));
            }
            let roots: Vec<_> = self.roots.iter().map(|r| r.get(&height)).collect();
            if roots.windows(2).any(|w| w[0] != w[1]) {
                problems.push(format!(
                    "validators have different state roots at height {height}"
                ));
            }
        }
        for (index, supply) in self.supplies.iter().enumerate() {
            if *supply != self.genesis_supply {
                problems.push(format!(
                    "validator {index}: total supply {supply}, genesis {}",
                    self.genesis_supply
                ));
            }
        }
        for (hash, count) in &self.valid {
            if *count != 1 {
                problems.push(format!("valid transaction {hash} finalized {count} times"));
            }
        }
        for hash in &self.invalid_admitted {
            problems.push(format!("invalid transaction {hash} was admitted"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A link that delivers everything quickly.
pub const GOOD_LINK: Link = Link {
    latency: Duration::from_millis(10),
    jitter: Duration::from_millis(1),
    success_rate: commonware_utils::probability!(1.0),
};

/// A link that drops 10% of messages with jitter.
pub const LOSSY_LINK: Link = Link {
    latency: Duration::from_millis(50),
    jitter: Duration::from_millis(30),
    success_rate: commonware_utils::probability!(0.9),
};

fn account_key(index: u64) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(1_000 + index)
}

/// Runs a scenario and returns what it produced.
pub fn run(scenario: &Scenario) -> Report {
    // Under storage faults a node's actors fail-stop (commonware treats storage errors as fatal):
    // catch those panics per task, as a process supervisor would see a crash, and restart nodes.
    let storage_faults = scenario
        .faults
        .iter()
        .any(|fault| matches!(fault, Fault::StorageFaults { .. }));
    let config = deterministic::Config::new()
        .with_seed(scenario.seed)
        .with_timeout(Some(scenario.timeout))
        .with_catch_panics(storage_faults);
    let runner = deterministic::Runner::new(config);
    let scenario = scenario.clone();
    runner.start(|context| async move { simulate(context, scenario).await })
}

async fn simulate(context: deterministic::Context, scenario: Scenario) -> Report {
    let mut rng = ChaCha20Rng::seed_from_u64(scenario.seed);
    let signers: Vec<ed25519::PrivateKey> = (0..scenario.validators as u64)
        .map(ed25519::PrivateKey::from_seed)
        .collect();
    let public_keys: Vec<ed25519::PublicKey> = signers.iter().map(|s| s.public_key()).collect();
    let (polynomial_hex, shares) = deal(
        ChaCha20Rng::seed_from_u64(scenario.seed ^ 0xdea1),
        &public_keys,
    )
    .unwrap_or_else(|error| panic!("dealing keys: {error}"));
    let mut ledger_genesis = Genesis::devnet(
        CHAIN_ID,
        (0..ACCOUNTS).map(|i| {
            (
                Address::from_public_key(&account_key(i).public_key()),
                ACCOUNT_BALANCE,
            )
        }),
    );
    ledger_genesis.bonds = public_keys
        .iter()
        .map(|key| tributary_types::GenesisBond {
            address: Address::from_public_key(key),
            role: tributary_types::Role::Validator,
            amount: VALIDATOR_BOND,
        })
        .collect();
    let genesis = tributary_chain::ChainGenesis {
        followers: Vec::new(),
        ledger: ledger_genesis,
        validators: public_keys
            .iter()
            .enumerate()
            .map(|(index, key)| tributary_chain::GenesisValidator {
                name: format!("validator-{index}"),
                public_key: hex::encode(commonware_codec::Encode::encode(key)),
                address: Address::from_public_key(key),
                p2p: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            })
            .collect(),
        polynomial: polynomial_hex,
    };
    let set: ValidatorSet = genesis
        .validator_set()
        .unwrap_or_else(|error| panic!("validator set: {error}"));
    let ledger = Ledger::from_genesis(&genesis.ledger).unwrap_or_else(|error| panic!("{error}"));
    let genesis_supply = ledger.total_supply();
    let genesis_block = Block::genesis(ledger.state_root().0, public_keys[0].clone());

    // The simulated network (with the outsider among its peers, if the scenario has one).
    let outsider = scenario
        .faults
        .contains(&Fault::Outsider)
        .then(|| ed25519::PrivateKey::from_seed(10_000));
    let mut peers = public_keys.clone();
    peers.extend(outsider.iter().map(|key| key.public_key()));
    let (network, oracle) = simulated::Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: max_message_size(scenario.validators),
            max_peers_per_set: NZUsize!(peers.len()),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers,
    )
    .await;
    network.start();
    let running = scenario.validators - scenario.offline;
    if let Some(outsider) = &outsider {
        start_outsider(
            &context,
            &oracle,
            outsider,
            &public_keys[..running],
            &scenario,
        )
        .await;
    }
    for a in &public_keys[..running] {
        for b in &public_keys[..running] {
            if a != b {
                let _ = oracle
                    .add_link(a.clone(), b.clone(), scenario.link.clone())
                    .await;
            }
        }
    }

    // The validators.
    let node = SimNode {
        context: context.child("nodes"),
        oracle: oracle.clone(),
        signers: signers.clone(),
        shares: shares.clone(),
        set: set.clone(),
        genesis_ledger: ledger.clone(),
        genesis_block: genesis_block.clone(),
    };
    let mut states = Vec::new();
    let mut handles = Vec::new();
    let byzantine: Vec<usize> = scenario
        .faults
        .iter()
        .filter_map(|fault| match fault {
            Fault::Byzantine { validator } => Some(*validator),
            _ => None,
        })
        .collect();
    for index in 0..running {
        if byzantine.contains(&index) {
            node.start_byzantine(index).await;
            continue;
        }
        if scenario
            .faults
            .contains(&Fault::Garbage { validator: index })
        {
            node.start_garbage(index, scenario.seed).await;
            continue;
        }
        let fault = scenario
            .faults
            .contains(&Fault::WrongStateRoot { validator: index })
            .then_some(tributary_chain::application::ProposalFault::WrongStateRoot);
        let (state, started) = node.start_with(index, 0, fault).await;
        states.push(state);
        handles.push(started);
    }
    // From here on, indices are over honest running validators.
    let running = states.len();
    let mut up = vec![true; running];
    let mut incarnations = vec![0usize; running];
    let half = running / 2;

    // The workload: random transfers, some deliberately invalid, to random validators.
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    let mut valid = BTreeMap::new();
    let mut submitted: BTreeMap<TxHash, SignedTransaction> = BTreeMap::new();
    let mut invalid_admitted = Vec::new();
    for step in 0..scenario.transactions {
        for fault in &scenario.faults {
            match *fault {
                Fault::Partition { at, heal } if at == step || heal == step => {
                    for a in 0..running {
                        for b in 0..running {
                            if (a < half) != (b < half) {
                                let (from, to) = (public_keys[a].clone(), public_keys[b].clone());
                                if at == step {
                                    let _ = oracle.remove_link(from, to).await;
                                } else {
                                    let _ = oracle.add_link(from, to, scenario.link.clone()).await;
                                }
                            }
                        }
                    }
                }
                Fault::StorageFaults { at, until, percent } if at == step || until == step => {
                    let faults = if at == step {
                        let rate = commonware_utils::Probability::new(u64::from(percent), 100)
                            .unwrap_or_else(|| panic!("a storage fault rate of {percent}%"));
                        commonware_runtime::deterministic::FaultConfig::default()
                            .write(commonware_runtime::deterministic::WriteConfig {
                                failure_rate: rate,
                                retention_rate: rate,
                                mode: commonware_runtime::deterministic::PartialWriteMode::Prefix,
                            })
                            .sync(rate)
                    } else {
                        commonware_runtime::deterministic::FaultConfig::default()
                    };
                    *context.storage_fault_config().write() = faults;
                    if until == step {
                        // Power-cycle every node that is up: each recovers from whatever its
                        // storage durably holds after the faults.
                        for validator in 0..running {
                            if !up[validator] {
                                continue;
                            }
                            for handle in handles[validator].drain(..) {
                                handle.abort();
                            }
                            incarnations[validator] += 1;
                            let (state, started) =
                                node.start(validator, incarnations[validator]).await;
                            states[validator] = state;
                            handles[validator] = started;
                        }
                    }
                }
                Fault::Crash { validator, at, .. } if at == step && up[validator] => {
                    for handle in handles[validator].drain(..) {
                        handle.abort();
                    }
                    up[validator] = false;
                }
                Fault::Crash {
                    validator, restart, ..
                } if restart == step && !up[validator] => {
                    incarnations[validator] += 1;
                    let (state, started) = node.start(validator, incarnations[validator]).await;
                    states[validator] = state;
                    handles[validator] = started;
                    up[validator] = true;
                }
                _ => {}
            }
        }
        context
            .sleep(Duration::from_millis(rng.random_range(5..60)))
            .await;
        let from = rng.random_range(0..ACCOUNTS) as usize;
        let to = rng.random_range(0..ACCOUNTS);
        let key = account_key(from as u64);
        let live: Vec<usize> = (0..running).filter(|index| up[*index]).collect();
        let target = &states[live[rng.random_range(0..live.len())]];
        let kind = rng.random_range(0..8u8);
        let mut transaction = Transaction {
            chain_id: CHAIN_ID.into(),
            sender: Address::from_public_key(&key.public_key()),
            nonce: nonces[from],
            fee: 1,
            call: Call::Transfer {
                to: Address::from_public_key(&account_key(to).public_key()),
                amount: rng.random_range(1..1_000),
            },
        };
        match kind {
            0 => transaction.chain_id = "another-chain".into(),
            1 => transaction.nonce += 5,
            2 => transaction.fee = ACCOUNT_BALANCE * 100,
            _ => {}
        }
        let mut signed = SignedTransaction::sign(&key, transaction);
        if kind == 3 {
            // Signed by another key: a bad signature.
            signed = SignedTransaction {
                signature: SignedTransaction::sign(
                    &account_key((from as u64 + 1) % ACCOUNTS),
                    signed.transaction.clone(),
                )
                .signature,
                ..signed
            };
        }
        let hash = signed.hash();
        let admitted = target.submit(signed.clone()).is_ok();
        if kind <= 3 {
            if admitted {
                invalid_admitted.push(hash);
            }
        } else if admitted {
            nonces[from] += 1;
            valid.insert(hash, 0usize);
            submitted.insert(hash, signed);
        }
    }

    // Wait until every running validator has finalized the target height and the workload. A
    // transaction admitted only by a validator that crashed before relaying it is lost, as it
    // would be in production; like a real client, the workload submits such a transaction again
    // (to validator 0) once nothing is pending anywhere. "Finalized exactly once" then checks
    // that no resubmission, replay or restart ever executes a transaction twice.
    loop {
        let done = states.iter().all(|state| {
            let inner = state.lock();
            inner.finalized.height() >= scenario.target_height && inner.mempool.is_empty()
        });
        if done {
            let lost: Vec<&SignedTransaction> = {
                let inner = states[0].lock();
                submitted
                    .iter()
                    .filter(|(hash, _)| !inner.receipts.contains_key(hash))
                    .map(|(_, transaction)| transaction)
                    .collect()
            };
            if lost.is_empty() {
                break;
            }
            for transaction in lost {
                let _ = states[0].submit(transaction.clone());
            }
        }
        context.sleep(Duration::from_millis(100)).await;
    }

    // Put the first proven fault on chain: a forged report must be refused, a true one finalized.
    let mut misbehaviour_on_chain = Vec::new();
    let mut slashed_on_chain = Vec::new();
    let mut forged_report_refused = false;
    let first = states[0].lock().evidence.front().cloned();
    if let Some(evidence) = first {
        let key = account_key(0);
        let sender = Address::from_public_key(&key.public_key());
        let validator: Address = evidence
            .validator
            .parse()
            .unwrap_or_else(|error| panic!("evidence names a bad address: {error}"));
        let proof = hex::decode(&evidence.proof).unwrap_or_default();
        let nonce = states[0].lock().finalized.nonce(&sender);
        let report = |view: u64| {
            SignedTransaction::sign(
                &key,
                Transaction {
                    chain_id: CHAIN_ID.into(),
                    sender,
                    nonce,
                    fee: 1,
                    call: Call::ReportMisbehaviour {
                        validator,
                        view,
                        proof: proof.clone(),
                    },
                },
            )
        };
        forged_report_refused = states[0].submit(report(evidence.view + 1)).is_err();
        let hash = states[0]
            .submit(report(evidence.view))
            .unwrap_or_else(|error| panic!("a true misbehaviour report was refused: {error}"));
        loop {
            let receipt = states[0].lock().receipts.get(&hash).cloned();
            if let Some(receipt) = receipt {
                for event in receipt.events {
                    match event {
                        tributary_types::Event::MisbehaviourReported { validator, .. } => {
                            misbehaviour_on_chain.push(validator.to_string());
                        }
                        tributary_types::Event::Slashed {
                            account, amount, ..
                        } => slashed_on_chain.push((account.to_string(), amount)),
                        _ => {}
                    }
                }
                break;
            }
            context.sleep(Duration::from_millis(100)).await;
        }
    }

    let mut chains = Vec::new();
    let mut roots = Vec::new();
    let mut supplies = Vec::new();
    let mut accused = Vec::new();
    for state in &states {
        let inner = state.lock();
        accused.push(inner.evidence.iter().map(|e| e.validator.clone()).collect());
        chains.push(
            inner
                .blocks
                .iter()
                .map(|(height, record)| (*height, record.hash.clone()))
                .collect(),
        );
        roots.push(
            inner
                .blocks
                .iter()
                .map(|(height, record)| (*height, record.state_root.clone()))
                .collect(),
        );
        supplies.push(inner.finalized.total_supply());
    }
    let proposers: BTreeMap<u64, String> = states[0]
        .lock()
        .blocks
        .iter()
        .map(|(height, record)| (*height, record.proposer.clone()))
        .collect();
    {
        let inner = states[0].lock();
        for (hash, count) in valid.iter_mut() {
            *count = usize::from(inner.receipts.contains_key(hash));
        }
        // Each receipt is recorded once per finalized block that contains the transaction:
        // count inclusions across the chain to catch a transaction finalized twice.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for record in inner.blocks.values() {
            for hash in &record.transactions {
                *seen.entry(hash.clone()).or_default() += 1;
            }
        }
        for (hash, count) in valid.iter_mut() {
            if let Some(times) = seen.get(&hash.to_string()) {
                *count = *times;
            }
        }
    }
    Report {
        chains,
        roots,
        supplies,
        genesis_supply,
        valid,
        invalid_admitted,
        accused,
        misbehaviour_on_chain,
        slashed_on_chain,
        forged_report_refused,
        proposers,
        auditor: context.auditor().state(),
    }
}

/// What it takes to start (and restart) one simulated validator.
struct SimNode {
    context: deterministic::Context,
    oracle: simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    signers: Vec<ed25519::PrivateKey>,
    shares: Vec<commonware_cryptography::bls12381::primitives::group::Share>,
    set: ValidatorSet,
    genesis_ledger: Ledger,
    genesis_block: Block,
}

impl SimNode {
    /// Starts validator `index` as a Byzantine conflicter on the vote channel.
    async fn start_byzantine(&self, index: usize) {
        let public_key = self.signers[index].public_key();
        let control = self.oracle.control(public_key);
        let (channel, rate) = CHANNEL_QUOTAS[0];
        let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN));
        let votes = control
            .register(channel, quota)
            .await
            .unwrap_or_else(|error| panic!("registering the vote channel: {error}"));
        let config = self.engine_config(
            index,
            ChainState::new(self.genesis_ledger.clone(), &self.genesis_block),
        );
        let (_, scheme) = tributary_chain::engine::validate(&config)
            .unwrap_or_else(|error| panic!("byzantine validator {index}: {error}"));
        let conflicter = commonware_consensus::simplex::mocks::conflicter::Conflicter::<
            _,
            _,
            commonware_cryptography::Sha256,
        >::new(
            self.context
                .child("byzantine")
                .with_attribute("index", index),
            commonware_consensus::simplex::mocks::conflicter::Config { scheme },
        );
        conflicter.start(votes);
    }

    fn engine_config(&self, index: usize, state: ChainState) -> EngineConfig {
        EngineConfig {
            identity: NodeIdentity {
                signer: self.signers[index].clone(),
                share: Some(self.shares[index].clone()),
            },
            set: self.set.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            partition_prefix: format!("validator-{index}"),
            genesis: self.genesis_block.clone(),
            state,
            proposal_fault: None,
        }
    }

    /// Starts validator `index` on its storage partitions (which survive a crash), with a fresh
    /// in-memory state rebuilt from them. `incarnation` distinguishes restarts in metrics labels.
    async fn start(
        &self,
        index: usize,
        incarnation: usize,
    ) -> (ChainState, Vec<commonware_runtime::Handle<()>>) {
        self.start_with(index, incarnation, None).await
    }

    /// Starts validator `index` as a sender of random bytes on every channel.
    async fn start_garbage(&self, index: usize, seed: u64) {
        use commonware_p2p::{Recipients, Sender};
        let public_key = self.signers[index].public_key();
        let control = self.oracle.control(public_key);
        let mut senders = Vec::new();
        for (channel, rate) in CHANNEL_QUOTAS {
            let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN));
            let (sender, _receiver) = control
                .register(channel, quota)
                .await
                .unwrap_or_else(|error| panic!("registering channel {channel}: {error}"));
            senders.push(sender);
        }
        let context = self.context.child("garbage").with_attribute("index", index);
        commonware_runtime::Spawner::spawn(context, move |context| async move {
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x9a7b);
            loop {
                for sender in &mut senders {
                    let length = rng.random_range(0..4_096usize);
                    let bytes: Vec<u8> = (0..length).map(|_| rng.random::<u8>()).collect();
                    sender.send(Recipients::All, bytes, false);
                }
                context.sleep(Duration::from_millis(20)).await;
            }
        });
    }

    async fn start_with(
        &self,
        index: usize,
        incarnation: usize,
        fault: Option<tributary_chain::application::ProposalFault>,
    ) -> (ChainState, Vec<commonware_runtime::Handle<()>>) {
        let public_key = self.signers[index].public_key();
        let state = ChainState::new(self.genesis_ledger.clone(), &self.genesis_block);
        let control = self.oracle.control(public_key);
        let mut registered = Vec::new();
        for (channel, rate) in CHANNEL_QUOTAS {
            let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN));
            registered.push(
                control
                    .register(channel, quota)
                    .await
                    .unwrap_or_else(|error| panic!("registering channel {channel}: {error}")),
            );
        }
        let mut registered = registered.into_iter();
        let mut next = || registered.next().unwrap_or_else(|| panic!("six channels"));
        let channels = Channels {
            vote: next(),
            certificate: next(),
            resolver: next(),
            broadcast: next(),
            backfill: next(),
            transactions: next(),
        };
        let mut config = self.engine_config(index, state.clone());
        config.proposal_fault = fault;
        let handles = start_engine(
            self.context
                .child("validator")
                .with_attribute("index", index)
                .with_attribute("incarnation", incarnation),
            config,
            self.oracle.manager(),
            control,
            channels,
        )
        .await
        .unwrap_or_else(|error| panic!("validator {index}: {error}"));
        (state, handles)
    }
}

/// Runs a peer outside the validator set that votes (conflicting votes, every view) under the keys
/// of a validator set of its own.
async fn start_outsider(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    outsider: &ed25519::PrivateKey,
    validators: &[ed25519::PublicKey],
    scenario: &Scenario,
) {
    let me = outsider.public_key();
    for validator in validators {
        let _ = oracle
            .add_link(me.clone(), validator.clone(), scenario.link.clone())
            .await;
        let _ = oracle
            .add_link(validator.clone(), me.clone(), scenario.link.clone())
            .await;
    }
    // A foreign validator set of the outsider and three others, with its own dealt keys.
    let mut foreign: Vec<ed25519::PublicKey> = (1..4u64)
        .map(|seed| ed25519::PrivateKey::from_seed(20_000 + seed).public_key())
        .collect();
    foreign.insert(0, me.clone());
    let (polynomial_hex, shares) =
        deal(ChaCha20Rng::seed_from_u64(scenario.seed ^ 0x0075), &foreign)
            .unwrap_or_else(|error| panic!("dealing the outsider's keys: {error}"));
    let genesis = tributary_chain::ChainGenesis {
        followers: Vec::new(),
        ledger: Genesis::devnet("elsewhere", std::iter::empty()),
        validators: foreign
            .iter()
            .enumerate()
            .map(|(index, key)| tributary_chain::GenesisValidator {
                name: format!("foreign-{index}"),
                public_key: hex::encode(commonware_codec::Encode::encode(key)),
                address: Address::from_public_key(key),
                p2p: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            })
            .collect(),
        polynomial: polynomial_hex,
    };
    let set = genesis
        .validator_set()
        .unwrap_or_else(|error| panic!("foreign set: {error}"));
    let ledger = Ledger::from_genesis(&genesis.ledger).unwrap_or_else(|error| panic!("{error}"));
    let block = Block::genesis(ledger.state_root().0, me.clone());
    let config = EngineConfig {
        identity: NodeIdentity {
            signer: outsider.clone(),
            share: Some(shares[0].clone()),
        },
        set,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        partition_prefix: "outsider".into(),
        genesis: block.clone(),
        state: ChainState::new(ledger, &block),
        proposal_fault: None,
    };
    let (_, scheme) = tributary_chain::engine::validate(&config)
        .unwrap_or_else(|error| panic!("outsider scheme: {error}"));
    let (channel, rate) = CHANNEL_QUOTAS[0];
    let votes = oracle
        .control(me)
        .register(
            channel,
            Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN)),
        )
        .await
        .unwrap_or_else(|error| panic!("registering the outsider's vote channel: {error}"));
    commonware_consensus::simplex::mocks::conflicter::Conflicter::<
        _,
        _,
        commonware_cryptography::Sha256,
    >::new(
        context.child("outsider"),
        commonware_consensus::simplex::mocks::conflicter::Config { scheme },
    )
    .start(votes);
}
