//! What a storage provider needs from the chain, and the two ways it gets it.
//!
//! [`ProviderChain`] is the provider's whole view of the chain: reads of the finalized ledger
//! (deals, layouts, who may read) and submitting its own transactions. A provider run inside a
//! node (the devnet's) reads the node's [`ChainState`] directly; a provider run as its own
//! process (`tributary storage provide`) uses [`RemoteChain`], the node's HTTP API. The provider's
//! logic is the same either way, so a provider process can be killed, restarted or cut off
//! without touching any validator.

use commonware_cryptography::ed25519;
use serde::de::DeserializeOwned;
use std::{
    collections::BTreeSet,
    sync::Mutex,
    time::{Duration, Instant},
};
use tributary_chain::ChainState;
use tributary_types::{
    AccountView, Address, AssetId, AssetView, Call, DealId, DealView, Params, ProviderView,
    SignedTransaction, StorageLayout, Transaction, TxHash, limits::QUERY_PAGE_MAX,
};

/// How long one request to a node may take.
pub const REMOTE_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Largest response body read from a node, in bytes.
pub const REMOTE_RESPONSE_BYTES_MAX: u64 = 16 << 20;
/// How long cached ledger parameters are reused before they are read again.
const PARAMS_CACHE_MS: u64 = 60_000;

/// Why the chain could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node did not answer.
    #[error("cannot reach the node at {node}: {reason}")]
    Unreachable {
        /// The node's API address.
        node: String,
        /// What failed.
        reason: String,
    },
    /// The node answered with an error.
    #[error("the node refused {what}: {message}")]
    Refused {
        /// The request.
        what: String,
        /// The node's message.
        message: String,
    },
}

/// The chain as a storage provider sees it: the finalized ledger and transaction submission.
pub trait ProviderChain: Send + Sync {
    /// The ledger's parameters.
    fn params(&self) -> Result<Params, ChainError>;
    /// The finalized height.
    fn height(&self) -> Result<u64, ChainError>;
    /// A deal.
    fn deal(&self, id: DealId) -> Result<Option<DealView>, ChainError>;
    /// Deals of `provider` that are not closed.
    fn provider_deals(&self, provider: &Address) -> Result<Vec<DealView>, ChainError>;
    /// Every failed deal (awaiting repair).
    fn failed_deals(&self) -> Result<Vec<DealView>, ChainError>;
    /// Every deal of `asset`.
    fn asset_deals(&self, asset: &AssetId) -> Result<Vec<DealView>, ChainError>;
    /// A registered provider.
    fn provider(&self, address: &Address) -> Result<Option<ProviderView>, ChainError>;
    /// The registered providers (at most a page of `QUERY_PAGE_MAX`).
    fn providers(&self) -> Result<Vec<ProviderView>, ChainError>;
    /// An asset.
    fn asset(&self, asset: &AssetId) -> Result<Option<AssetView>, ChainError>;
    /// An asset's storage layout.
    fn storage_layout(&self, asset: &AssetId) -> Result<Option<StorageLayout>, ChainError>;
    /// Whether `reader` may read `asset`'s data (an owner, or an unexpired licensee).
    fn may_read(&self, reader: &Address, asset: &AssetId) -> Result<bool, ChainError>;
    /// Whether a transaction is pending or finalized (`false`: unknown or dropped).
    fn transaction_known(&self, hash: &TxHash) -> Result<bool, ChainError>;
    /// Signs `call` with `signer` (next nonce, minimum fee) and submits it.
    fn submit(&self, signer: &ed25519::PrivateKey, call: Call) -> Result<TxHash, ChainError>;
}

impl ProviderChain for ChainState {
    fn params(&self) -> Result<Params, ChainError> {
        Ok(self.lock().finalized.params().clone())
    }

    fn height(&self) -> Result<u64, ChainError> {
        Ok(self.lock().finalized.height())
    }

    fn deal(&self, id: DealId) -> Result<Option<DealView>, ChainError> {
        Ok(self.lock().finalized.deal(id))
    }

    fn provider_deals(&self, provider: &Address) -> Result<Vec<DealView>, ChainError> {
        Ok(self.lock().finalized.provider_deals(provider))
    }

    fn failed_deals(&self) -> Result<Vec<DealView>, ChainError> {
        let inner = self.lock();
        let mut deals: Vec<DealView> = Vec::new();
        loop {
            let after = deals.last().map_or(0, |deal| deal.id);
            let page = inner
                .finalized
                .deals_with_status("failed", after, QUERY_PAGE_MAX, None);
            if page.is_empty() {
                return Ok(deals);
            }
            deals.extend(page);
        }
    }

    fn asset_deals(&self, asset: &AssetId) -> Result<Vec<DealView>, ChainError> {
        let inner = self.lock();
        let mut deals = Vec::new();
        let mut after = 0;
        loop {
            let page = inner.finalized.deals(after, QUERY_PAGE_MAX, Some(asset));
            let Some(last) = page.last() else {
                return Ok(deals);
            };
            after = last.id;
            deals.extend(page);
        }
    }

    fn provider(&self, address: &Address) -> Result<Option<ProviderView>, ChainError> {
        Ok(self.lock().finalized.provider(address))
    }

    fn providers(&self) -> Result<Vec<ProviderView>, ChainError> {
        Ok(self.lock().finalized.providers(None, QUERY_PAGE_MAX))
    }

    fn asset(&self, asset: &AssetId) -> Result<Option<AssetView>, ChainError> {
        Ok(self.lock().finalized.asset(asset))
    }

    fn storage_layout(&self, asset: &AssetId) -> Result<Option<StorageLayout>, ChainError> {
        Ok(self.lock().finalized.storage_layout(asset))
    }

    fn may_read(&self, reader: &Address, asset: &AssetId) -> Result<bool, ChainError> {
        Ok(self.lock().finalized.may_read(reader, asset))
    }

    fn transaction_known(&self, hash: &TxHash) -> Result<bool, ChainError> {
        Ok(self.transaction_status(hash).is_some())
    }

    fn submit(&self, signer: &ed25519::PrivateKey, call: Call) -> Result<TxHash, ChainError> {
        use commonware_cryptography::Signer as _;
        let sender = Address::from_public_key(&signer.public_key());
        // One statement per lock: a guard held across `next_nonce` would deadlock.
        let (chain_id, fee) = {
            let inner = self.lock();
            let params = inner.finalized.params();
            (params.chain_id.clone(), params.min_fee)
        };
        let transaction = Transaction {
            chain_id,
            sender,
            nonce: self.next_nonce(&sender),
            fee,
            call,
        };
        ChainState::submit(self, SignedTransaction::sign(signer, transaction)).map_err(|error| {
            ChainError::Refused {
                what: "a transaction".into(),
                message: error.to_string(),
            }
        })
    }
}

/// A node's HTTP API as a [`ProviderChain`], for providers that run as their own process.
///
/// Nonces: the API reports the finalized nonce only, so the provider's own transactions still
/// pending are counted here; once none is pending the finalized nonce is used again (a dropped
/// transaction cannot leave a gap that blocks every later one).
pub struct RemoteChain {
    base: String,
    agent: ureq::Agent,
    nonces: Mutex<Nonces>,
    params: Mutex<Option<(Instant, Params)>>,
}

#[derive(Default)]
struct Nonces {
    next: u64,
    pending: BTreeSet<TxHash>,
}

/// The body of `POST /v1/transactions`.
#[derive(serde::Serialize)]
struct SubmitBody {
    transaction: String,
}

/// What `POST /v1/transactions` and `GET /v1/transactions/{hash}` answer (the fields used here).
#[derive(serde::Deserialize)]
struct TransactionStatusBody {
    tx_hash: String,
    status: String,
}

/// What `GET /v1/assets/{id}/readers/{address}` answers (the field used here).
#[derive(serde::Deserialize)]
struct ReaderBody {
    may_read: bool,
}

/// What `GET /v1/status` answers (the field used here).
#[derive(serde::Deserialize)]
struct StatusBody {
    height: u64,
}

/// The error body of the API (the field used here).
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl RemoteChain {
    /// The node whose API is at `base` (e.g. `http://127.0.0.1:8645`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(REMOTE_REQUEST_TIMEOUT_MS)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            nonces: Mutex::new(Nonces::default()),
            params: Mutex::new(None),
        }
    }

    /// The node's API address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, error: impl std::fmt::Display) -> ChainError {
        ChainError::Unreachable {
            node: self.base.clone(),
            reason: error.to_string(),
        }
    }

    /// Reads a response: `Ok(None)` for a 404, the decoded body for a success.
    fn decode<T: DeserializeOwned>(
        &self,
        what: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Option<T>, ChainError> {
        let mut response = response.map_err(|error| self.unreachable(error))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(REMOTE_RESPONSE_BYTES_MAX)
            .read_to_string()
            .map_err(|error| self.unreachable(error))?;
        if status == ureq::http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|body| format!("{} ({})", body.error.message, body.error.code))
                .unwrap_or_else(|_| format!("HTTP {status}: {text}"));
            return Err(ChainError::Refused {
                what: what.to_string(),
                message,
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| ChainError::Refused {
                what: what.to_string(),
                message: format!("unexpected response ({error}): {text}"),
            })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ChainError> {
        let response = self.agent.get(format!("{}{path}", self.base)).call();
        self.decode(path, response)
    }

    fn get_required<T: DeserializeOwned>(&self, path: &str) -> Result<T, ChainError> {
        self.get(path)?.ok_or_else(|| ChainError::Refused {
            what: path.to_string(),
            message: "not found".into(),
        })
    }

    /// Every deal `query` (a `/v1/deals` query string) selects, page by page.
    fn all_deals(&self, query: &str) -> Result<Vec<DealView>, ChainError> {
        let mut deals: Vec<DealView> = Vec::new();
        loop {
            let after = deals.last().map_or(0, |deal| deal.id);
            let page: Vec<DealView> = self.get_required(&format!(
                "/v1/deals?{query}&after={after}&limit={QUERY_PAGE_MAX}"
            ))?;
            let full = page.len() >= QUERY_PAGE_MAX;
            deals.extend(page);
            if !full {
                return Ok(deals);
            }
        }
    }
}

impl ProviderChain for RemoteChain {
    fn params(&self) -> Result<Params, ChainError> {
        let mut cached = self.params.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((read_at, params)) = cached.as_ref()
            && read_at.elapsed() < Duration::from_millis(PARAMS_CACHE_MS)
        {
            return Ok(params.clone());
        }
        let params: Params = self.get_required("/v1/params")?;
        *cached = Some((Instant::now(), params.clone()));
        Ok(params)
    }

    fn height(&self) -> Result<u64, ChainError> {
        Ok(self.get_required::<StatusBody>("/v1/status")?.height)
    }

    fn deal(&self, id: DealId) -> Result<Option<DealView>, ChainError> {
        self.get(&format!("/v1/deals/{id}"))
    }

    fn provider_deals(&self, provider: &Address) -> Result<Vec<DealView>, ChainError> {
        self.all_deals(&format!("provider={provider}"))
    }

    fn failed_deals(&self) -> Result<Vec<DealView>, ChainError> {
        self.all_deals("status=failed")
    }

    fn asset_deals(&self, asset: &AssetId) -> Result<Vec<DealView>, ChainError> {
        self.all_deals(&format!("asset={asset}"))
    }

    fn provider(&self, address: &Address) -> Result<Option<ProviderView>, ChainError> {
        self.get(&format!("/v1/providers/{address}"))
    }

    fn providers(&self) -> Result<Vec<ProviderView>, ChainError> {
        self.get_required("/v1/providers")
    }

    fn asset(&self, asset: &AssetId) -> Result<Option<AssetView>, ChainError> {
        self.get(&format!("/v1/assets/{asset}"))
    }

    fn storage_layout(&self, asset: &AssetId) -> Result<Option<StorageLayout>, ChainError> {
        self.get(&format!("/v1/assets/{asset}/storage"))
    }

    fn may_read(&self, reader: &Address, asset: &AssetId) -> Result<bool, ChainError> {
        Ok(self
            .get::<ReaderBody>(&format!("/v1/assets/{asset}/readers/{reader}"))?
            .is_some_and(|body| body.may_read))
    }

    fn transaction_known(&self, hash: &TxHash) -> Result<bool, ChainError> {
        let body: Option<TransactionStatusBody> = self.get(&format!("/v1/transactions/{hash}"))?;
        Ok(body.is_some_and(|body| body.status != "unknown"))
    }

    fn submit(&self, signer: &ed25519::PrivateKey, call: Call) -> Result<TxHash, ChainError> {
        use commonware_cryptography::Signer as _;
        let sender = Address::from_public_key(&signer.public_key());
        let params = self.params()?;
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        // Forget transactions that are no longer pending.
        let pending: Vec<TxHash> = nonces.pending.iter().copied().collect();
        for hash in pending {
            let body: Option<TransactionStatusBody> =
                self.get(&format!("/v1/transactions/{hash}"))?;
            if body.is_none_or(|body| body.status != "pending") {
                nonces.pending.remove(&hash);
            }
        }
        let account: AccountView = self.get_required(&format!("/v1/accounts/{sender}"))?;
        let nonce = if nonces.pending.is_empty() {
            account.nonce
        } else {
            nonces.next.max(account.nonce)
        };
        let transaction = Transaction {
            chain_id: params.chain_id,
            sender,
            nonce,
            fee: params.min_fee,
            call,
        };
        let signed = SignedTransaction::sign(signer, transaction);
        let response = self
            .agent
            .post(format!("{}/v1/transactions", self.base))
            .send_json(SubmitBody {
                transaction: hex::encode(signed.to_bytes()),
            });
        let body: TransactionStatusBody =
            self.decode("a transaction", response)?
                .ok_or_else(|| ChainError::Refused {
                    what: "a transaction".into(),
                    message: "not found".into(),
                })?;
        let hash: TxHash = body.tx_hash.parse().map_err(|_| ChainError::Refused {
            what: "a transaction".into(),
            message: format!("the node answered a malformed hash `{}`", body.tx_hash),
        })?;
        nonces.next = nonce + 1;
        nonces.pending.insert(hash);
        Ok(hash)
    }
}
