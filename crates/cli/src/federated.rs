//! `tributary train federated` (the trainer, which opens the session on the ledger and runs the
//! aggregator) and `tributary train join` (a contributor): the federated protocol of
//! `tributary_learn::protocol` carried over HTTP.
//!
//! Transport: the aggregator serves a small HTTP API at the endpoint it published in `OpenSession`;
//! contributors poll it for their next [`Downlink`] and post each [`Uplink`] signed with their account
//! key (ed25519 over the session id, their participant id and the BLAKE3 of the message), which the
//! aggregator checks against the address that joined on the ledger. HTTP rather than commonware p2p
//! because contributors are clients that come and go (often behind NAT) and only ever talk to one
//! server, whose address is on the ledger; the node already speaks HTTP, and signing each message with
//! the account key gives the authentication secure aggregation needs without a peer-set handshake.

use crate::client::Client;
use crate::commands::{client, keystore};
use crate::{Cli, output};
use anyhow::{Context, Result, anyhow, bail};
use axum::extract::{Path as AxumPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use commonware_cryptography::{Signer as _, ed25519};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_learn::protocol::{Aggregator, Downlink, Participant, Plan, Uplink};
use tributary_learn::robust::AggregationRule;
use tributary_learn::session::SessionConfig;
use tributary_learn::{Architecture, Dataset, ModelSpec};
use tributary_node::keystore::Key;
use tributary_node::provider::{sign_hex, signature_verifies};
use tributary_types::training::{Aggregation, DifferentialPrivacy, FinalizeSession, OpenSession};
use tributary_types::views::TrainingSessionView;
use tributary_types::{Address, AssetId, Call, Event, Hash32, Terms, limits};

/// Namespace of the signatures on uplinks.
const UPLINK_NAMESPACE: &[u8] = b"tributary-federated-uplink-v1";
/// Largest uplink body the aggregator accepts, in bytes.
const UPLINK_BODY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// How often a contributor polls while waiting, in milliseconds.
const POLL_INTERVAL_MS: u64 = 2;
/// How often the aggregator closes stages, in milliseconds.
const TICK_INTERVAL_MS: u64 = 2;

/// A session spec file (TOML) for `train federated`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// What is trained (recorded on the ledger).
    pub task: String,
    /// `softmax`, `mlp` or `cnn`.
    pub model: String,
    /// MLP hidden widths.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// The trainer's held-out table (relative to the spec file): half measures contribution, half
    /// accuracy.
    pub test: PathBuf,
    /// The label column.
    #[serde(default = "default_label")]
    pub label: String,
    /// Asset ids that may join.
    pub eligible: Vec<String>,
    /// Reward paid to the participants by contribution, in base units.
    pub reward: u128,
    /// Stake backing the contribution shares during the challenge window, in base units (positive).
    #[serde(default = "default_evaluator_stake")]
    pub evaluator_stake: u128,
    /// Blocks the shares can be challenged.
    #[serde(default = "default_challenge_window")]
    pub challenge_window_blocks: u64,
    /// Fewest participants.
    pub participants_min: u16,
    /// Most participants.
    pub participants_max: u16,
    /// Where the aggregator listens; published on the ledger.
    pub endpoint: SocketAddr,
    /// How long to wait for more joins once the minimum is reached, in milliseconds.
    #[serde(default = "default_join_wait_ms")]
    pub join_wait_ms: u64,
    /// Longest wait for the minimum number of joins, in milliseconds.
    #[serde(default = "default_join_timeout_ms")]
    pub join_timeout_ms: u64,
    /// Deadline of a local training step, in milliseconds.
    #[serde(default = "default_training_timeout_ms")]
    pub training_timeout_ms: u64,
    /// Deadline of every other protocol stage, in milliseconds.
    #[serde(default = "default_stage_timeout_ms")]
    pub stage_timeout_ms: u64,
    /// The model asset's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The model asset's license price, in base units.
    #[serde(default)]
    pub model_price: u128,
    /// The model asset's royalty rate, in basis points.
    #[serde(default)]
    pub model_royalty_bps: u16,
    /// How the session trains.
    pub training: SessionConfig,
}

fn default_label() -> String {
    "label".into()
}
fn default_evaluator_stake() -> u128 {
    1_000
}
fn default_challenge_window() -> u64 {
    5
}
fn default_join_wait_ms() -> u64 {
    2_000
}
fn default_join_timeout_ms() -> u64 {
    600_000
}
fn default_training_timeout_ms() -> u64 {
    60_000
}
fn default_stage_timeout_ms() -> u64 {
    10_000
}

/// An uplink with its sender's signature.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignedUplink {
    /// The participant id in the plan.
    pub participant: u32,
    /// The message.
    pub uplink: Uplink,
    /// ed25519 signature (hex) by the participant's account key.
    pub signature: String,
}

fn uplink_message(session: &[u8; 32], participant: u32, uplink: &Uplink) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(uplink)?;
    let mut message = Vec::with_capacity(32 + 4 + 32);
    message.extend_from_slice(session);
    message.extend_from_slice(&participant.to_be_bytes());
    message.extend_from_slice(blake3::hash(&body).as_bytes());
    Ok(message)
}

/// What `GET /v1/federated/plan` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanResponse {
    /// `gathering` (waiting for joins), `running` or `finished`.
    pub status: String,
    /// The plan, once running.
    pub plan: Option<Plan>,
    /// The asking address's participant id, if it is one.
    pub participant: Option<u32>,
}

#[derive(Deserialize)]
struct PlanQuery {
    address: Option<String>,
}

enum Phase {
    Gathering,
    Running {
        plan: Box<Plan>,
        addresses: Vec<Address>,
        aggregator: Box<Aggregator>,
    },
}

struct Shared {
    phase: Mutex<Phase>,
    started: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn error_response(status: StatusCode, message: String) -> axum::response::Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn plan_route(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<PlanQuery>,
) -> axum::response::Response {
    let Ok(phase) = shared.phase.lock() else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned".into());
    };
    match &*phase {
        Phase::Gathering => Json(PlanResponse {
            status: "gathering".into(),
            plan: None,
            participant: None,
        })
        .into_response(),
        Phase::Running {
            plan,
            addresses,
            aggregator,
        } => {
            let participant = query
                .address
                .and_then(|address| address.parse::<Address>().ok())
                .and_then(|address| addresses.iter().position(|known| *known == address))
                .map(|index| index as u32);
            Json(PlanResponse {
                status: if aggregator.is_finished() {
                    "finished".into()
                } else {
                    "running".into()
                },
                plan: Some(plan.as_ref().clone()),
                participant,
            })
            .into_response()
        }
    }
}

async fn downlink_route(
    State(shared): State<Arc<Shared>>,
    AxumPath(participant): AxumPath<u32>,
) -> axum::response::Response {
    let Ok(phase) = shared.phase.lock() else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned".into());
    };
    match &*phase {
        Phase::Gathering => Json(Downlink::Wait).into_response(),
        Phase::Running { aggregator, .. } => Json(aggregator.downlink(participant)).into_response(),
    }
}

async fn uplink_route(
    State(shared): State<Arc<Shared>>,
    Json(signed): Json<SignedUplink>,
) -> axum::response::Response {
    let Ok(mut phase) = shared.phase.lock() else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned".into());
    };
    let Phase::Running {
        plan,
        addresses,
        aggregator,
    } = &mut *phase
    else {
        return error_response(
            StatusCode::CONFLICT,
            "the session has not started; wait for the plan".into(),
        );
    };
    let Some(address) = addresses.get(signed.participant as usize) else {
        return error_response(
            StatusCode::FORBIDDEN,
            format!("participant {} is not in this session", signed.participant),
        );
    };
    let verified = uplink_message(&plan.session, signed.participant, &signed.uplink)
        .ok()
        .is_some_and(|message| {
            signature_verifies(address, UPLINK_NAMESPACE, &message, &signed.signature)
        });
    if !verified {
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "the signature is not participant {}'s ({address})",
                signed.participant
            ),
        );
    }
    match aggregator.receive(signed.participant, signed.uplink) {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(error) => error_response(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

fn sign_uplink(
    key: &Key,
    session: &[u8; 32],
    participant: u32,
    uplink: Uplink,
) -> Result<SignedUplink> {
    let message = uplink_message(session, participant, &uplink)?;
    let signature = sign_hex(&key.signer, UPLINK_NAMESPACE, &message);
    Ok(SignedUplink {
        participant,
        uplink,
        signature,
    })
}

/// The aggregator's HTTP server, running on its own thread with its own runtime.
pub struct AggregatorServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AggregatorServer {
    /// Binds `endpoint` and serves until dropped.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(endpoint: SocketAddr) -> Result<Self> {
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::Gathering),
            started: Instant::now(),
        });
        let listener = std::net::TcpListener::bind(endpoint)
            .with_context(|| format!("cannot listen on {endpoint} (is it in use?)"))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new()
            .route("/v1/federated/plan", get(plan_route))
            .route("/v1/federated/downlink/{participant}", get(downlink_route))
            .route("/v1/federated/uplink", post(uplink_route))
            .layer(axum::extract::DefaultBodyLimit::max(UPLINK_BODY_BYTES_MAX))
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("aggregator-http".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the aggregator's runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        tracing::error!("cannot use the aggregator's listener");
                        return;
                    };
                    let served = axum::serve(listener, router).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                    if let Err(error) = served.await {
                        tracing::error!(%error, "the aggregator's HTTP server stopped");
                    }
                });
            })?;
        Ok(Self {
            shared,
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Starts the session: from now on participants get the plan and their jobs.
    ///
    /// # Errors
    ///
    /// An invalid plan.
    pub fn run(
        &self,
        plan: Plan,
        addresses: Vec<Address>,
        validation: Option<Dataset>,
        test: Option<Dataset>,
    ) -> Result<()> {
        let now_ms = self.shared.now_ms();
        let aggregator = Aggregator::new(plan.clone(), validation, test, now_ms)?;
        let mut phase = self
            .shared
            .phase
            .lock()
            .map_err(|_| anyhow!("aggregator state poisoned"))?;
        *phase = Phase::Running {
            plan: Box::new(plan),
            addresses,
            aggregator: Box::new(aggregator),
        };
        Ok(())
    }

    /// Closes due stages; returns the rounds completed and whether the session is over.
    ///
    /// # Errors
    ///
    /// Aggregation failing.
    pub fn tick(&self) -> Result<(Vec<tributary_learn::session::RoundReport>, bool)> {
        let now_ms = self.shared.now_ms();
        let mut phase = self
            .shared
            .phase
            .lock()
            .map_err(|_| anyhow!("aggregator state poisoned"))?;
        match &mut *phase {
            Phase::Gathering => Ok((Vec::new(), false)),
            Phase::Running { aggregator, .. } => {
                let reports = aggregator.tick(now_ms)?;
                Ok((reports, aggregator.is_finished()))
            }
        }
    }

    /// Runs `f` on the aggregator.
    ///
    /// # Errors
    ///
    /// The session not running.
    pub fn with_aggregator<T>(&self, f: impl FnOnce(&Aggregator) -> Result<T>) -> Result<T> {
        let phase = self
            .shared
            .phase
            .lock()
            .map_err(|_| anyhow!("aggregator state poisoned"))?;
        match &*phase {
            Phase::Running { aggregator, .. } => f(aggregator),
            Phase::Gathering => bail!("the session has not started"),
        }
    }
}

impl Drop for AggregatorServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the aggregator until the session is over, calling `on_round` for each completed round.
///
/// # Errors
///
/// Aggregation failing.
pub fn drive(
    server: &AggregatorServer,
    mut on_round: impl FnMut(&tributary_learn::session::RoundReport) -> Result<()>,
) -> Result<()> {
    loop {
        let (reports, finished) = server.tick()?;
        for report in &reports {
            on_round(report)?;
        }
        if finished {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(TICK_INTERVAL_MS));
    }
}

/// A contributor's loop: polls the aggregator at `base` and answers until the session is over.
/// `on_downlink` sees every job it takes part in (for progress).
///
/// # Errors
///
/// The aggregator unreachable for too long, or a downlink that does not fit the plan.
pub fn participate(
    base: &str,
    key: &Key,
    load: impl FnOnce(&[String]) -> Result<Dataset>,
    secret_seed: [u8; 32],
    mut on_downlink: impl FnMut(&Downlink),
) -> Result<u32> {
    let aggregator = Client::new(base);
    let address = key.address();
    let (plan, participant) = loop {
        let response: PlanResponse = aggregator
            .get(&format!("/v1/federated/plan?address={address}"))
            .with_context(|| format!("cannot reach the aggregator at {base}"))?;
        match (
            response.status.as_str(),
            response.plan,
            response.participant,
        ) {
            ("gathering", _, _) => std::thread::sleep(Duration::from_millis(50)),
            (_, Some(plan), Some(participant)) => break (plan, participant),
            (_, Some(_), None) => bail!(
                "{address} is not a participant of the running session: it joined too late or not at all"
            ),
            (status, _, _) => bail!("the aggregator answered {status:?} without a plan"),
        }
    };
    let data = load(&plan.classes)?;
    let session = plan.session;
    let mut state = Participant::new(participant, plan, data, secret_seed)?;
    let rounds = loop {
        let downlink: Downlink =
            aggregator.get(&format!("/v1/federated/downlink/{participant}"))?;
        if let Downlink::Finished { rounds } = downlink {
            break rounds;
        }
        match state.handle(&downlink) {
            Ok(Some(uplink)) => {
                on_downlink(&downlink);
                let signed = sign_uplink(key, &session, participant, uplink)?;
                if let Err(error) =
                    aggregator.post::<_, serde_json::Value>("/v1/federated/uplink", &signed)
                {
                    tracing::warn!(%error, "the aggregator refused an uplink");
                }
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS)),
            Err(error) => {
                tracing::warn!(%error, "ignoring a downlink that does not fit the plan");
                std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
            }
        }
    };
    Ok(rounds)
}

/// A fresh secret seed from the operating system.
pub fn secret_seed() -> Result<[u8; 32]> {
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|error| anyhow!("no OS randomness: {error}"))?;
    Ok(seed)
}

/// The ledger's aggregation method for a rule.
pub fn ledger_aggregation(rule: &AggregationRule) -> Result<Aggregation> {
    Ok(match *rule {
        AggregationRule::Mean => Aggregation::FedAvg,
        AggregationRule::Median => Aggregation::Median,
        AggregationRule::TrimmedMean { trim_fraction } => Aggregation::TrimmedMean {
            trim_bps: (trim_fraction * 10_000.0).round() as u16,
        },
        AggregationRule::Krum { byzantine } => Aggregation::Krum {
            byzantine: u16::try_from(byzantine)?,
        },
        AggregationRule::MultiKrum {
            byzantine,
            selected,
        } => Aggregation::MultiKrum {
            byzantine: u16::try_from(byzantine)?,
            selected: u16::try_from(selected)?,
        },
    })
}

/// δ in the ledger's 10⁻¹⁸ units.
pub fn delta_atto(delta: f64) -> u64 {
    (delta * limits::ATTO_PER_UNIT as f64).round() as u64
}

/// What `train federated --json` prints.
#[derive(Debug, Serialize)]
pub struct FederatedOutput {
    /// Final held-out accuracy, 0..1.
    pub accuracy: Option<f64>,
    /// The model asset.
    pub model: String,
    /// The session id on the ledger.
    pub session: u64,
    /// Accuracy after each round.
    pub rounds: Vec<Option<f64>>,
    /// ε spent at δ, when DP was on.
    pub epsilon: Option<f64>,
    /// δ.
    pub delta: f64,
    /// Contribution shares by asset, in basis points.
    pub shares: BTreeMap<String, u16>,
    /// The weights file.
    pub file: PathBuf,
    /// Wall time of the training rounds, in seconds.
    pub training_seconds: f64,
}

/// `train federated`.
pub fn federated(cli: &Cli, spec_path: &Path, from: &str, out: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let spec: SessionSpec = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid session spec", spec_path.display()))?;
    let directory = spec_path.parent().unwrap_or(Path::new("."));
    let key = keystore(cli).load(from)?;
    let quiet = cli.json;
    let output = run_session(
        &client(cli),
        &key,
        &spec,
        &text,
        directory,
        out,
        |session_id, address| {
            if !quiet {
                println!(
                    "session {session_id} open; aggregator at http://{address} — contributors: tributary train join {session_id} --from NAME --asset ID --data FILE"
                );
            }
        },
        |line| {
            if !quiet {
                println!("{line}");
            }
        },
    )?;
    if cli.json {
        return output::json(&output);
    }
    println!(
        "model {} registered with its bill of materials (tributary model show {})",
        output.model, output.model
    );
    println!(
        "held-out accuracy {} after {} rounds in {:.1} s{}",
        output
            .accuracy
            .map_or("-".into(), |accuracy| format!("{accuracy:.4}")),
        output.rounds.len(),
        output.training_seconds,
        match output.epsilon {
            Some(epsilon) => format!("; ε = {epsilon:.3} at δ = {}", output.delta),
            None => String::new(),
        }
    );
    let mut table = output::table(&["asset", "contribution (bps)"]);
    for (asset, bps) in &output.shares {
        table.add_row(vec![asset.clone(), bps.to_string()]);
    }
    println!("{table}");
    Ok(())
}

/// Opens the session `spec` on the ledger as `key`, gathers joins, runs every round over HTTP,
/// commits each round, saves the model, and finalizes the session. `on_open` sees the session id and
/// the aggregator's address as soon as it is open (to start contributors); `on_line` gets progress
/// lines for people.
///
/// # Errors
///
/// A spec that does not fit the data, a ledger step failing, or aggregation failing.
#[allow(clippy::too_many_arguments)]
pub fn run_session(
    node: &Client,
    key: &Key,
    spec: &SessionSpec,
    text: &str,
    directory: &Path,
    out: Option<&Path>,
    on_open: impl FnOnce(u64, SocketAddr),
    mut on_line: impl FnMut(String),
) -> Result<FederatedOutput> {
    let test_path = directory.join(&spec.test);
    let held_out = Dataset::read(&test_path, &spec.label, None)
        .with_context(|| format!("cannot load the held-out set {}", test_path.display()))?;
    let architecture = match spec.model.as_str() {
        "mlp" if !spec.hidden.is_empty() => Architecture::Mlp {
            hidden: spec.hidden.clone(),
        },
        name => Architecture::named(name, held_out.feature_count())?,
    };
    let model_spec = ModelSpec {
        architecture,
        features: held_out.feature_count(),
        classes: held_out.classes().len(),
    };
    model_spec.validate()?;
    spec.training
        .validate(usize::from(spec.participants_max.max(1)))
        .context("the [training] table")?;
    let (validation, test) = held_out.stratified_split(0.5, spec.training.seed)?;

    let mut eligible = spec
        .eligible
        .iter()
        .map(|id| crate::commands::parse_asset_id(id))
        .collect::<Result<Vec<AssetId>>>()?;
    eligible.sort();
    eligible.dedup();
    let privacy = spec.training.privacy.map(|privacy| DifferentialPrivacy {
        noise_multiplier_milli: (privacy.noise_multiplier * 1_000.0).round() as u32,
        clip_norm_milli: (f64::from(privacy.clip_norm) * 1_000.0).round() as u32,
        delta_atto: delta_atto(spec.training.delta),
    });
    let server = AggregatorServer::start(spec.endpoint)?;
    let open = OpenSession {
        model_spec_root: Hash32::blake3(text.as_bytes()),
        task: spec.task.clone(),
        eligible_assets: eligible,
        reward: spec.reward,
        evaluator_stake: spec.evaluator_stake,
        challenge_window_blocks: spec.challenge_window_blocks,
        rounds: spec.training.rounds,
        privacy,
        aggregation: ledger_aggregation(&spec.training.aggregation)?,
        secure_aggregation: spec.training.secure_aggregation,
        aggregator: key.address(),
        endpoint: server.address().to_string(),
        participants_min: spec.participants_min,
        participants_max: spec.participants_max,
    };
    let response = node.send(key, Call::OpenSession(open), None)?;
    if response.status != "finalized" {
        bail!(
            "opening the session failed: {}",
            response.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    let session_id = response
        .receipt
        .as_ref()
        .and_then(|receipt| {
            receipt.events.iter().find_map(|event| match event {
                Event::SessionOpened { session, .. } => Some(*session),
                _ => None,
            })
        })
        .ok_or_else(|| anyhow!("the receipt names no session"))?;
    on_open(session_id, server.address());

    // Gather joins.
    let started = Instant::now();
    let mut minimum_reached: Option<Instant> = None;
    let view = loop {
        let view: TrainingSessionView = node.get(&format!("/v1/training/sessions/{session_id}"))?;
        let joined = view.participants.len();
        if joined >= usize::from(spec.participants_max) {
            break view;
        }
        if joined >= usize::from(spec.participants_min) {
            let since = *minimum_reached.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(spec.join_wait_ms) {
                break view;
            }
        } else if started.elapsed() >= Duration::from_millis(spec.join_timeout_ms) {
            bail!(
                "only {joined} of the {} participants needed joined within {} ms",
                spec.participants_min,
                spec.join_timeout_ms
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut participants = view.participants.clone();
    participants.sort_by_key(|participant| participant.owner);
    let addresses: Vec<Address> = participants.iter().map(|p| p.owner).collect();
    let assets: Vec<AssetId> = participants.iter().map(|p| p.asset).collect();
    let mut session = [0_u8; 32];
    session.copy_from_slice(
        blake3::Hasher::new_derive_key("tributary federated session v1")
            .update(&session_id.to_be_bytes())
            .update(text.as_bytes())
            .finalize()
            .as_bytes(),
    );
    let plan = Plan {
        session,
        spec: model_spec,
        classes: held_out.classes().to_vec(),
        config: spec.training.clone(),
        participants: (0..participants.len() as u32).collect(),
        training_timeout_ms: spec.training_timeout_ms,
        stage_timeout_ms: spec.stage_timeout_ms,
    };
    on_line(format!(
        "{} participants: {}",
        participants.len(),
        assets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    server.run(plan, addresses, Some(validation), Some(test))?;

    // Rounds; commitments go to the ledger from a thread of their own, in order, without holding up
    // the next round.
    let (commit_sender, commit_receiver) = std::sync::mpsc::channel::<Call>();
    let commit_node = Client::new(node.base());
    let commit_key = key.clone();
    let committer = std::thread::spawn(move || -> Result<()> {
        for call in commit_receiver {
            let response = commit_node.send(&commit_key, call, None)?;
            if response.status != "finalized" {
                bail!(
                    "committing a round failed: {}",
                    response.reason.as_deref().unwrap_or("unknown reason")
                );
            }
        }
        Ok(())
    });
    let training_started = Instant::now();
    let mut accuracies = Vec::new();
    let mut committed = 0_u32;
    drive(&server, |report| {
        accuracies.push(report.accuracy);
        on_line(format!(
            "round {:>3}: {} of {} aggregated{} · held-out accuracy {}",
            report.round + 1,
            report.aggregated.len(),
            report.participants.len(),
            if report.abandoned_groups > 0 {
                format!(" ({} groups abandoned)", report.abandoned_groups)
            } else {
                String::new()
            },
            report
                .accuracy
                .map_or("-".into(), |accuracy| format!("{accuracy:.4}"))
        ));
        if report.aggregated.len() >= usize::from(spec.participants_min) {
            let mut round_assets: Vec<AssetId> = report
                .aggregated
                .iter()
                .filter_map(|&id| assets.get(id as usize).copied())
                .collect();
            round_assets.sort();
            committed += 1;
            commit_sender
                .send(Call::CommitRound {
                    session: session_id,
                    round: committed,
                    aggregate_root: Hash32(report.aggregate_root),
                    participants: round_assets,
                })
                .map_err(|_| anyhow!("the commit thread stopped"))?;
        }
        Ok(())
    })?;
    let training_seconds = training_started.elapsed().as_secs_f64();
    drop(commit_sender);
    committer
        .join()
        .map_err(|_| anyhow!("the commit thread panicked"))??;

    // The model, its file and the shares.
    let (report, standardizer) = server.with_aggregator(|aggregator| {
        Ok((
            aggregator.report()?,
            aggregator
                .standardizer()
                .cloned()
                .ok_or_else(|| anyhow!("no standardizer agreed"))?,
        ))
    })?;
    let file = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("federated-session-{session_id}.safetensors")));
    server.with_aggregator(|aggregator| {
        aggregator
            .model()?
            .save(&file, held_out.classes(), &standardizer)?;
        Ok(())
    })?;
    let (model_root, byte_size) = crate::commands::hash_file(&file)?;
    let mut shares: BTreeMap<AssetId, u16> = assets.iter().map(|asset| (*asset, 0)).collect();
    for (participant, bps) in &report.contribution_bps {
        if let Some(asset) = assets.get(*participant as usize) {
            shares.insert(*asset, u16::try_from(*bps)?);
        }
    }
    if shares.values().all(|&bps| bps == 0) {
        // No contribution measured (e.g. one group): equal shares, remainder to the first.
        let count = shares.len().max(1) as u16;
        let each = 10_000 / count;
        let mut left = 10_000 - each * count;
        for bps in shares.values_mut() {
            *bps = each + u16::from(left > 0);
            left = left.saturating_sub(1);
        }
    }
    let epsilon = report.privacy.map(|privacy| privacy.epsilon);
    let finalize = FinalizeSession {
        session: session_id,
        model_root,
        model_name: spec
            .name
            .clone()
            .unwrap_or_else(|| format!("federated-{}", spec.task)),
        byte_size,
        epsilon_milli: epsilon
            .filter(|epsilon| epsilon.is_finite())
            .map(|epsilon| (epsilon * 1_000.0).ceil() as u64),
        delta_atto: if spec.training.privacy.is_some() {
            delta_atto(spec.training.delta)
        } else {
            0
        },
        shares: shares.iter().map(|(asset, bps)| (*asset, *bps)).collect(),
        report_root: None,
        terms: Terms {
            commercial_use: true,
            ai_training: true,
            derivatives: true,
            attribution_required: true,
            royalty_bps: spec.model_royalty_bps,
            price: spec.model_price,
            expiry_height: None,
            license_cap: None,
        },
    };
    let response = node.send(key, Call::FinalizeSession(finalize), None)?;
    if response.status != "finalized" {
        bail!(
            "finalizing the session failed: {}",
            response.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    Ok(FederatedOutput {
        accuracy: report.accuracy,
        model: model_root.to_string(),
        session: session_id,
        rounds: accuracies,
        epsilon,
        delta: spec.training.delta,
        shares: shares
            .iter()
            .map(|(asset, bps)| (asset.to_string(), *bps))
            .collect(),
        file,
        training_seconds,
    })
}

/// `train join`.
pub fn join(
    cli: &Cli,
    session_id: u64,
    from: &str,
    asset: &str,
    data: &Path,
    label: &str,
) -> Result<()> {
    let key = keystore(cli).load(from)?;
    let asset = crate::commands::parse_asset_id(asset)?;
    let quiet = cli.json;
    let load = |classes: &[String]| {
        Dataset::read(data, label, Some(classes))
            .with_context(|| format!("cannot load {}", data.display()))
    };
    let rounds = join_session(&client(cli), &key, session_id, asset, load, |line| {
        if !quiet {
            println!("{line}");
        }
    })?;
    if cli.json {
        return output::json(&serde_json::json!({
            "session": session_id,
            "asset": asset.to_string(),
            "rounds": rounds,
        }));
    }
    println!("session {session_id} finished after {rounds} rounds");
    Ok(())
}

/// Joins `session_id` with `asset` on the ledger (unless it already has), then takes part until the
/// session is over; `load` reads the contributor's rows with the plan's class names. Returns the rounds
/// completed.
///
/// # Errors
///
/// The join refused, the aggregator unreachable, or the data not fitting the plan.
pub fn join_session(
    node: &Client,
    key: &Key,
    session_id: u64,
    asset: AssetId,
    load: impl FnOnce(&[String]) -> Result<Dataset>,
    mut on_line: impl FnMut(String),
) -> Result<u32> {
    let view: TrainingSessionView = node
        .get(&format!("/v1/training/sessions/{session_id}"))
        .with_context(|| format!("cannot read training session {session_id}"))?;
    if !view
        .participants
        .iter()
        .any(|participant| participant.asset == asset)
    {
        let response = node.send(
            key,
            Call::JoinSession {
                session: session_id,
                asset,
            },
            None,
        )?;
        if response.status != "finalized" {
            bail!(
                "joining session {session_id} failed: {}",
                response.reason.as_deref().unwrap_or("unknown reason")
            );
        }
    }
    let base = format!("http://{}", view.spec.endpoint);
    on_line(format!(
        "joined session {session_id} with asset {asset}; training with the aggregator at {base} (rows stay here)"
    ));
    let mut last_round = None;
    participate(&base, key, load, secret_seed()?, |downlink| {
        if let Downlink::Train { round, .. } = downlink
            && last_round != Some(*round)
        {
            last_round = Some(*round);
            on_line(format!(
                "round {:>3}: trained locally, uploading a masked update",
                round + 1
            ));
        }
    })
}

/// `tributary bench federated` options.
#[derive(Debug, clap::Args)]
pub struct FederatedBenchArgs {
    /// Rounds.
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    /// Contributors.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Partition seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The digits table (a header row with a `label` column).
    #[arg(long, default_value = "data/digits.csv")]
    pub data: PathBuf,
    /// A Python with `flwr[simulation]` installed (see scripts/bench_flower.py): runs the same task in
    /// Flower's simulation engine in the same run, for comparison.
    #[arg(long)]
    pub flower_python: Option<PathBuf>,
}

/// One bench row.
#[derive(Debug, Serialize)]
struct BenchRow {
    system: String,
    accuracy: f64,
    wall_seconds: f64,
    per_round_ms: f64,
}

/// `bench federated`: the federated protocol over loopback HTTP with SecAgg+ (the aggregator and each
/// contributor on their own threads, talking through real sockets), beside Flower's simulation.
pub fn bench(cli: &Cli, args: &FederatedBenchArgs) -> Result<()> {
    let data = Dataset::read(&args.data, "label", None)
        .with_context(|| format!("cannot load {}", args.data.display()))?;
    let (training, held_out) = data.stratified_split(0.2, 42)?;
    let parts = tributary_learn::data::partition_iid(training.rows(), args.clients, args.seed)?;
    let config = SessionConfig::reference(args.rounds, args.seed);
    let plan = Plan {
        session: *blake3::hash(b"tributary federated bench").as_bytes(),
        spec: ModelSpec {
            architecture: Architecture::Softmax,
            features: training.feature_count(),
            classes: training.classes().len(),
        },
        classes: training.classes().to_vec(),
        config,
        participants: (0..args.clients as u32).collect(),
        training_timeout_ms: 60_000,
        stage_timeout_ms: 10_000,
    };
    let keys: Vec<Key> = (0..args.clients)
        .map(|index| Key {
            name: format!("bench-{index}"),
            signer: ed25519::PrivateKey::from_seed(index as u64 + 1),
        })
        .collect();
    let server = AggregatorServer::start("127.0.0.1:0".parse()?)?;
    let base = format!("http://{}", server.address());
    let started = Instant::now();
    server.run(
        plan,
        keys.iter().map(Key::address).collect(),
        None,
        Some(held_out),
    )?;
    let mut workers = Vec::new();
    for (index, rows) in parts.into_iter().enumerate() {
        let key = keys[index].clone();
        let base = base.clone();
        let rows = training.select(&rows)?;
        workers.push(std::thread::spawn(move || {
            participate(&base, &key, |_| Ok(rows), secret_seed()?, |_| {})
        }));
    }
    drive(&server, |_| Ok(()))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a contributor thread panicked"))??;
    }
    let accuracy = server
        .with_aggregator(|aggregator| Ok(aggregator.report()?.accuracy))?
        .unwrap_or_default();
    let mut rows = vec![BenchRow {
        system: format!(
            "tributary (HTTP on loopback, SecAgg+, {} contributors)",
            args.clients
        ),
        accuracy,
        wall_seconds,
        per_round_ms: wall_seconds * 1_000.0 / f64::from(args.rounds),
    }];
    if let Some(python) = &args.flower_python {
        let output = std::process::Command::new(python)
            .arg("scripts/bench_flower.py")
            .arg("--data")
            .arg(&args.data)
            .args(["--rounds", &args.rounds.to_string()])
            .args(["--clients", &args.clients.to_string()])
            .args(["--seed", &args.seed.to_string(), "--split-seed", "42"])
            .stderr(std::process::Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", python.display()))?;
        if !output.status.success() {
            bail!("the Flower bench failed; run scripts/bench_flower.py by hand to see why");
        }
        let flower: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("the Flower bench printed no JSON")?;
        rows.push(BenchRow {
            system: format!(
                "Flower {} simulation (Ray)",
                flower["flwr_version"].as_str().unwrap_or("?")
            ),
            accuracy: flower["accuracy"].as_f64().unwrap_or_default(),
            wall_seconds: flower["wall_seconds"].as_f64().unwrap_or_default(),
            per_round_ms: flower["per_round_ms"].as_f64().unwrap_or_default(),
        });
    }
    if cli.json {
        return output::json(&rows);
    }
    let mut table = output::table(&["system", "held-out accuracy", "wall (s)", "per round (ms)"]);
    for row in &rows {
        table.add_row(vec![
            row.system.clone(),
            format!("{:.4}", row.accuracy),
            format!("{:.2}", row.wall_seconds),
            format!("{:.1}", row.per_round_ms),
        ]);
    }
    println!("{table}");
    if let [ours, flower] = rows.as_slice() {
        println!(
            "Flower / tributary wall time: {:.1}×",
            flower.wall_seconds / ours.wall_seconds
        );
    }
    Ok(())
}
