//! A small blocking client for the node's HTTP API, and transaction submission that waits for
//! finality.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Serialize, de::DeserializeOwned};
use std::time::{Duration, Instant};
use tributary_node::api::{
    ErrorBody, StatusResponse, SubmitRequest, SubmitResponse, TransactionResponse,
};
use tributary_node::keystore::Key;
use tributary_types::{Amount, Call, SignedTransaction, Transaction};

/// How long a transaction command waits for finality.
pub const FINALITY_WAIT_MS_MAX: u64 = 60_000;
/// The first pause between two polls; each pause doubles, up to [`POLL_INTERVAL_MS`] (a devnet
/// finalizes a block in a few milliseconds, a network in hundreds).
const POLL_INTERVAL_FIRST_MS: u64 = 5;
/// The longest pause between two polls.
const POLL_INTERVAL_MS: u64 = 100;
/// How many times [`Client::send_retrying_nonce`] sends again after a `wrong_nonce` refusal.
const NONCE_RETRIES: u32 = 3;
/// How long it waits before each of those.
const NONCE_RETRY_INTERVAL_MS: u64 = 500;

/// The node API client.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8645`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T> {
        let mut response = response.with_context(|| {
            format!(
                "cannot reach the node at {}; is `tributary devnet` running? (set --node or TRIBUTARY_NODE)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the response of {path}"))?;
        if status.is_success() {
            serde_json::from_str(&text)
                .with_context(|| format!("unexpected response from {path}: {text}"))
        } else {
            Err(anyhow!(
                "{}",
                error_message(&text).unwrap_or_else(|| format!("{path}: HTTP {status}: {text}"))
            ))
        }
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.agent.get(&self.url(path)).call();
        self.decode(path, response)
    }

    /// `POST path` with a JSON body.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self.agent.post(&self.url(path)).send_json(body);
        self.decode(path, response)
    }

    /// The chain's status.
    pub fn status(&self) -> Result<StatusResponse> {
        self.get("/v1/status")
    }

    /// Signs `call` from `key` with the next nonce and `fee` (default: the minimum), submits it
    /// and waits until it is finalized or failed.
    pub fn send(&self, key: &Key, call: Call, fee: Option<Amount>) -> Result<TransactionResponse> {
        self.send_all(key, vec![call], fee)?
            .pop()
            .ok_or_else(|| anyhow!("the node returned no outcome for the transaction"))
    }

    /// Submits `signed`; returns its hash once the node has admitted it. The request may have
    /// reached the node although its answer did not (the HTTP client sends a request again when
    /// its connection closes, and the second copy is refused as a wrong nonce or a duplicate): if
    /// the node knows this very transaction, it is ours, and admitted.
    fn submit(&self, signed: &SignedTransaction) -> Result<String> {
        let hash = signed.hash().to_string();
        let submitted: Result<SubmitResponse> = self.post(
            "/v1/transactions",
            &SubmitRequest {
                transaction: hex::encode(signed.to_bytes()),
            },
        );
        match submitted {
            Ok(submitted) => Ok(submitted.tx_hash),
            Err(error) => {
                match self.get::<TransactionResponse>(&format!("/v1/transactions/{hash}")) {
                    Ok(_) => Ok(hash),
                    Err(_) => Err(error),
                }
            }
        }
    }

    /// Signs `calls` from `key` with consecutive nonces from its next one (the finalized nonce:
    /// commands wait for their transactions) and `fee` (default: the minimum), submits them all
    /// without waiting in between, then waits for each; the responses are in `calls`' order. The
    /// chain executes one sender's transactions in nonce order, so a call may depend on the ones
    /// before it (each still succeeds or fails on its own: check every response). Fails with the
    /// node's refusal if a submission is refused (`wrong_nonce` when the sender has another
    /// transaction pending), after waiting for those already admitted.
    pub fn send_all(
        &self,
        key: &Key,
        calls: Vec<Call>,
        fee: Option<Amount>,
    ) -> Result<Vec<TransactionResponse>> {
        let status = self.status()?;
        let min_fee: Amount = status
            .min_fee
            .parse()
            .context("node reported a bad min_fee")?;
        let fee = fee.unwrap_or(min_fee);
        let account: tributary_types::AccountView =
            self.get(&format!("/v1/accounts/{}", key.address()))?;
        let mut admitted = Vec::with_capacity(calls.len());
        let mut refused = None;
        for (offset, call) in calls.into_iter().enumerate() {
            let transaction = Transaction {
                chain_id: status.chain_id.clone(),
                sender: key.address(),
                nonce: account.nonce + offset as u64,
                fee,
                call,
            };
            match self.submit(&SignedTransaction::sign(&key.signer, transaction)) {
                Ok(hash) => admitted.push(hash),
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        let responses = admitted
            .iter()
            .map(|hash| self.wait(hash))
            .collect::<Result<Vec<_>>>()?;
        match refused {
            Some(error) => Err(error),
            None => Ok(responses),
        }
    }

    /// [`Client::send`], sent again (up to [`NONCE_RETRIES`] times, half a second apart) when the
    /// node refuses its nonce (`wrong_nonce`) because another transaction of the sender is
    /// pending. [`Client::send`] already waits for its own transaction when the node admitted it,
    /// so a refusal here means this call was never admitted and sending it again cannot do it
    /// twice. Not for steps another process may be doing at the same time (`asset add` resuming
    /// checks the ledger instead).
    pub fn send_retrying_nonce(
        &self,
        key: &Key,
        call: Call,
        fee: Option<Amount>,
    ) -> Result<TransactionResponse> {
        let mut attempt = 0;
        loop {
            match self.send(key, call.clone(), fee) {
                Err(error)
                    if attempt < NONCE_RETRIES && error.to_string().contains("(wrong_nonce)") =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, %error, "the node refused the nonce; sending again");
                    std::thread::sleep(Duration::from_millis(NONCE_RETRY_INTERVAL_MS));
                }
                outcome => return outcome,
            }
        }
    }

    /// Waits until the transaction is finalized (or failed).
    pub fn wait(&self, tx_hash: &str) -> Result<TransactionResponse> {
        let started = Instant::now();
        let mut pause_ms = POLL_INTERVAL_FIRST_MS;
        loop {
            let response: TransactionResponse = self.get(&format!("/v1/transactions/{tx_hash}"))?;
            if response.status != "pending" {
                return Ok(response);
            }
            if started.elapsed() > Duration::from_millis(FINALITY_WAIT_MS_MAX) {
                bail!(
                    "transaction {tx_hash} is still pending after {} s; check later with its hash",
                    FINALITY_WAIT_MS_MAX / 1000
                );
            }
            std::thread::sleep(Duration::from_millis(pause_ms));
            pause_ms = (pause_ms * 2).min(POLL_INTERVAL_MS);
        }
    }
}

/// `message (code)` of an API error body (`{"error": {"code", "message"}}`), if `text` is one.
pub fn error_message(text: &str) -> Option<String> {
    serde_json::from_str::<ErrorBody>(text)
        .ok()
        .map(|error| format!("{} ({})", error.error.message, error.error.code))
}

/// Calls `check` until it returns a value, pausing [`POLL_INTERVAL_FIRST_MS`] at first and twice
/// as long each time after, up to [`POLL_INTERVAL_MS`]; fails with
/// "waited N s for `what`" after `timeout_ms`, or with `check`'s own error.
pub fn poll_until<T>(
    what: &str,
    timeout_ms: u64,
    check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    poll(timeout_ms, check)?.ok_or_else(|| anyhow!("waited {} s for {what}", timeout_ms / 1000))
}

/// [`poll_until`] for a caller that goes on after the timeout: `None` once `timeout_ms` has
/// passed without a value.
pub fn poll<T>(timeout_ms: u64, mut check: impl FnMut() -> Result<Option<T>>) -> Result<Option<T>> {
    let started = Instant::now();
    let mut pause_ms = POLL_INTERVAL_FIRST_MS;
    loop {
        if let Some(value) = check()? {
            return Ok(Some(value));
        }
        if started.elapsed() >= Duration::from_millis(timeout_ms) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
        pause_ms = (pause_ms * 2).min(POLL_INTERVAL_MS);
    }
}
