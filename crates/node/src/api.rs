//! The HTTP API (axum), JSON, versioned under `/v1`.
//!
//! Reads come from the node's finalized ledger; `POST /v1/transactions` admits a signed
//! transaction into the mempool after the ledger's admission checks. Every error is JSON,
//! `{"error": {"code": "...", "message": "..."}}`, with a stable code and a 4xx status for bad
//! input. Request bodies are capped at [`limits::API_BODY_BYTES_MAX`] (shard uploads at
//! [`limits::API_SHARD_BYTES_MAX`], key deliveries at [`limits::API_KEY_DELIVERY_BODY_BYTES_MAX`]).
//! The OpenAPI document is served at `/v1/openapi.json`.

use axum::{
    Json, Router,
    extract::{
        DefaultBodyLimit, FromRequest, Path, Query, Request, State, rejection::JsonRejection,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tributary_chain::{BlockRecord, ChainState, SubmitError, TransactionStatus};
use tributary_types::{
    AccountView, Address, AssetId, AssetView, DealView, LicenseTokenView, LineageView,
    ProviderView, Receipt, ReceiptStatus, RewardPoolView, SignedTransaction, TxHash, limits,
};
use utoipa::{OpenApi, ToSchema};

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The node's chain state.
    pub chain: ChainState,
    /// Number of validators (shown in status).
    pub validators: usize,
    /// Storage providers this node runs, by address (their upload and read endpoints).
    pub providers: ProviderSet,
}

/// Storage providers served by one HTTP server, by address: the node's own, or those of a
/// `tributary storage provide` process ([`storage_router`]).
pub type ProviderSet = std::sync::Arc<
    std::collections::BTreeMap<Address, std::sync::Arc<crate::provider::StorageProvider>>,
>;

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The error body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code and a human message.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// `Json` whose rejections are JSON errors too.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match &rejection {
                    JsonRejection::JsonDataError(_) => "invalid_body",
                    JsonRejection::JsonSyntaxError(_) => "malformed_json",
                    JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
                    JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                        "body_too_large"
                    }
                    _ => "bad_request",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// `POST /v1/transactions` body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubmitRequest {
    /// The signed transaction's canonical encoding, hex.
    pub transaction: String,
}

/// `POST /v1/transactions` response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubmitResponse {
    /// The transaction's hash (BLAKE3 of its signed encoding), hex.
    pub tx_hash: String,
    /// Always `pending` on success.
    pub status: String,
}

/// `GET /v1/status` response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// The chain id transactions must carry.
    pub chain_id: String,
    /// Finalized height.
    pub height: u64,
    /// Digest of the last finalized block, hex.
    pub last_block_hash: String,
    /// State root after the last finalized block, hex.
    pub state_root: String,
    /// Minimum transaction fee, base units (decimal string).
    pub min_fee: String,
    /// Total supply, base units (decimal string).
    pub total_supply: String,
    /// Number of validators.
    pub validators: usize,
    /// Transactions waiting in the mempool.
    pub mempool: usize,
}

/// `GET /v1/transactions/{hash}` response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TransactionResponse {
    /// The transaction's hash, hex.
    pub tx_hash: String,
    /// `pending`, `finalized` (its call succeeded) or `failed` (its call broke a rule; the fee
    /// and nonce were still used).
    pub status: String,
    /// Why it failed (`code: message`), when it did.
    pub reason: Option<String>,
    /// Height of the block that includes it.
    pub block: Option<u64>,
    /// The receipt (events: payments, royalties, mints), once finalized.
    #[schema(value_type = Object)]
    pub receipt: Option<Receipt>,
}

/// Paging for list endpoints.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// Items to skip.
    #[serde(default)]
    pub offset: usize,
    /// Items to return (at most `limits::QUERY_PAGE_MAX`).
    pub limit: Option<usize>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary node API",
        version = "1",
        description = "Ledger of IP assets, licenses and royalties."
    ),
    paths(
        submit_transaction,
        status,
        block_latest,
        block_by_height,
        account,
        account_licenses,
        account_bonds,
        asset,
        asset_lineage,
        assets,
        license,
        reward_pool,
        reward_pools,
        training_session,
        training_sessions,
        bill_of_materials,
        providers,
        params,
        provider,
        deals,
        deal,
        asset_storage,
        upload_shard,
        blob_address,
        read_shard,
        deliver_keys,
        envelope_listing,
        read_key,
        licenses,
        asset_reader,
        transaction
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        SubmitRequest,
        SubmitResponse,
        StatusResponse,
        TransactionResponse,
        BlockRecord,
        ReaderResponse
    ))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The router with every `/v1` route.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit_transaction))
        .route(
            "/v1/transactions/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(limits::API_BATCH_BODY_BYTES_MAX)),
        )
        .route("/v1/transactions/{hash}", get(transaction))
        .route("/v1/status", get(status))
        .route("/v1/blocks/latest", get(block_latest))
        .route("/v1/blocks/{height}", get(block_by_height))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/accounts/{address}/licenses", get(account_licenses))
        .route("/v1/accounts/{address}/bonds", get(account_bonds))
        .route("/v1/assets", get(assets))
        .route("/v1/assets/{id}", get(asset))
        .route("/v1/assets/{id}/lineage", get(asset_lineage))
        .route("/v1/licenses", get(licenses))
        .route("/v1/licenses/{id}", get(license))
        .route("/v1/pools", get(reward_pools))
        .route("/v1/pools/{id}", get(reward_pool))
        .route("/v1/training/sessions", get(training_sessions))
        .route("/v1/training/sessions/{id}", get(training_session))
        .route("/v1/models/{id}/bom", get(bill_of_materials))
        .route("/v1/params", get(params))
        .route("/v1/providers", get(providers))
        .route("/v1/providers/{address}", get(provider))
        .route("/v1/deals", get(deals))
        .route("/v1/deals/{id}", get(deal))
        .route("/v1/assets/{id}/storage", get(asset_storage))
        .route("/v1/assets/{id}/readers/{address}", get(asset_reader))
        .route("/v1/evidence", get(evidence))
        .route("/v1/openapi.json", get(|| async { Json(openapi()) }))
        .fallback(|| async {
            ApiError::not_found("not_found", "no such endpoint; see /v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(limits::API_BODY_BYTES_MAX))
        .with_state(state.clone())
        .merge(storage_router(state.providers))
}

/// The routes of storage providers: shard upload and read, key delivery and key read. Served by
/// the node for the providers it runs ([`router`]), and by `tributary storage provide`.
pub fn storage_router(providers: ProviderSet) -> Router {
    storage_router_with(
        providers,
        UploadIdleTimeout(Duration::from_millis(limits::API_UPLOAD_IDLE_TIMEOUT_MS)),
    )
}

/// How long a shard upload may send nothing before the provider gives it up (see
/// [`limits::API_UPLOAD_IDLE_TIMEOUT_MS`], the default).
#[derive(Clone, Copy, Debug)]
pub struct UploadIdleTimeout(pub Duration);

/// [`storage_router`] with another upload idle timeout (tests use a short one).
pub fn storage_router_with(
    providers: ProviderSet,
    upload_idle_timeout: UploadIdleTimeout,
) -> Router {
    Router::new()
        .route(
            "/v1/storage/{provider}/deals/{deal}/shard",
            axum::routing::put(upload_shard)
                .layer(DefaultBodyLimit::max(limits::API_SHARD_BYTES_MAX)),
        )
        .route("/v1/storage/{provider}/blobs", get(blob_address))
        .route("/v1/storage/{provider}/read", post(read_shard))
        .route(
            "/v1/storage/{provider}/assets/{asset}/envelopes",
            get(envelope_listing)
                .put(deliver_keys)
                .layer(DefaultBodyLimit::max(
                    limits::API_KEY_DELIVERY_BODY_BYTES_MAX,
                )),
        )
        .route("/v1/storage/{provider}/assets/{asset}/key", post(read_key))
        .layer(DefaultBodyLimit::max(limits::API_BODY_BYTES_MAX))
        .layer(axum::Extension(upload_idle_timeout))
        .with_state(providers)
}

fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse().map_err(|error| {
        ApiError::bad_request(
            "invalid_address",
            format!("`{text}` is not a trib1... address: {error}"),
        )
    })
}

fn parse_hash(text: &str, what: &'static str) -> Result<tributary_types::Hash32, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_hash",
            format!("`{text}` is not a {what}: expected 64 lowercase hex characters"),
        )
    })
}

/// Submit a signed transaction.
#[utoipa::path(post, path = "/v1/transactions", request_body = SubmitRequest,
    responses((status = 202, body = SubmitResponse), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_transaction(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<SubmitRequest>,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    let hash = admit_hex(&state, &request.transaction)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmitResponse {
            tx_hash: hash.to_string(),
            status: "pending".into(),
        }),
    ))
}

/// Chain status.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusResponse)))]
async fn status(State(state): State<ApiState>) -> Json<StatusResponse> {
    let inner = state.chain.lock();
    let ledger = &inner.finalized;
    Json(StatusResponse {
        chain_id: ledger.params().chain_id.clone(),
        height: ledger.height(),
        last_block_hash: hex::encode(inner.finalized_digest),
        state_root: ledger.state_root().to_string(),
        min_fee: ledger.params().min_fee.to_string(),
        total_supply: ledger.total_supply().to_string(),
        validators: state.validators,
        mempool: inner.mempool.len(),
    })
}

/// The last finalized block.
#[utoipa::path(get, path = "/v1/blocks/latest", responses((status = 200, body = BlockRecord)))]
async fn block_latest(State(state): State<ApiState>) -> Result<Json<BlockRecord>, ApiError> {
    let inner = state.chain.lock();
    inner
        .blocks
        .last_key_value()
        .map(|(_, record)| Json(record.clone()))
        .ok_or_else(|| ApiError::not_found("block_not_found", "no block yet"))
}

/// A finalized block by height.
#[utoipa::path(get, path = "/v1/blocks/{height}", params(("height" = u64, Path)),
    responses((status = 200, body = BlockRecord), (status = 404, body = ErrorBody)))]
async fn block_by_height(
    State(state): State<ApiState>,
    Path(height): Path<String>,
) -> Result<Json<BlockRecord>, ApiError> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_height",
            format!("`{height}` is not a block height"),
        )
    })?;
    let inner = state.chain.lock();
    inner
        .blocks
        .get(&height)
        .map(|record| Json(record.clone()))
        .ok_or_else(|| {
            ApiError::not_found(
                "block_not_found",
                format!(
                    "no finalized block at height {height} (finalized height is {})",
                    inner.finalized.height()
                ),
            )
        })
}

/// An account's balance and nonce.
#[utoipa::path(get, path = "/v1/accounts/{address}", params(("address" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn account(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let address = parse_address(&address)?;
    Ok(Json(state.chain.lock().finalized.account(&address)))
}

/// An account's bonds, by role.
#[utoipa::path(get, path = "/v1/accounts/{address}/bonds", params(("address" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn account_bonds(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<Vec<tributary_types::BondView>>, ApiError> {
    let address = parse_address(&address)?;
    Ok(Json(state.chain.lock().finalized.bonds_of(&address)))
}

/// License tokens an account holds.
#[utoipa::path(get, path = "/v1/accounts/{address}/licenses", params(("address" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn account_licenses(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<Vec<LicenseTokenView>>, ApiError> {
    let address = parse_address(&address)?;
    Ok(Json(state.chain.lock().finalized.licenses_of(&address)))
}

/// An asset.
#[utoipa::path(get, path = "/v1/assets/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn asset(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, ApiError> {
    let id: AssetId = parse_hash(&id, "asset id")?;
    state
        .chain
        .lock()
        .finalized
        .asset(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("asset_not_found", format!("no asset {id}")))
}

/// An asset's ancestors and descendants.
#[utoipa::path(get, path = "/v1/assets/{id}/lineage", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn asset_lineage(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<LineageView>, ApiError> {
    let id: AssetId = parse_hash(&id, "asset id")?;
    state
        .chain
        .lock()
        .finalized
        .lineage(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("asset_not_found", format!("no asset {id}")))
}

/// Registered assets, in id order.
#[utoipa::path(get, path = "/v1/assets", params(Page), responses((status = 200, body = Object)))]
async fn assets(State(state): State<ApiState>, Query(page): Query<Page>) -> Json<Vec<AssetView>> {
    let limit = page
        .limit
        .unwrap_or(limits::QUERY_PAGE_MAX)
        .min(limits::QUERY_PAGE_MAX);
    Json(state.chain.lock().finalized.assets(page.offset, limit))
}

/// A license token.
#[utoipa::path(get, path = "/v1/licenses/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn license(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<LicenseTokenView>, ApiError> {
    let token: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_license_token",
            format!("`{id}` is not a license token id"),
        )
    })?;
    state
        .chain
        .lock()
        .finalized
        .license(token)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found("license_not_found", format!("no license token {token}"))
        })
}

/// Paging of `/v1/licenses` by token id.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct LicensePage {
    /// Tokens with ids above this.
    #[serde(default)]
    pub after: u64,
    /// At most this many (capped at `QUERY_PAGE_MAX`).
    pub limit: Option<usize>,
}

/// License tokens by id (consumed ones and training sessions' included): how an owner's key
/// agent learns of new licensees.
#[utoipa::path(get, path = "/v1/licenses", params(LicensePage),
    responses((status = 200, body = Object)))]
async fn licenses(
    State(state): State<ApiState>,
    Query(page): Query<LicensePage>,
) -> Json<Vec<LicenseTokenView>> {
    let limit = page
        .limit
        .unwrap_or(limits::QUERY_PAGE_MAX)
        .min(limits::QUERY_PAGE_MAX);
    Json(state.chain.lock().finalized.licenses(page.after, limit))
}

/// `GET /v1/assets/{id}/readers/{address}` response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReaderResponse {
    /// The asset.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// The account.
    #[schema(value_type = String)]
    pub reader: Address,
    /// Whether the ledger lets it read the asset's data: an owner, or the holder of an unexpired
    /// license that is not a training session's.
    pub may_read: bool,
}

/// Whether an account may read an asset's data (the rule storage providers apply).
#[utoipa::path(get, path = "/v1/assets/{id}/readers/{address}",
    params(("id" = String, Path), ("address" = String, Path)),
    responses((status = 200, body = ReaderResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn asset_reader(
    State(state): State<ApiState>,
    Path((id, address)): Path<(String, String)>,
) -> Result<Json<ReaderResponse>, ApiError> {
    let asset: AssetId = parse_hash(&id, "asset id")?;
    let reader = parse_address(&address)?;
    let inner = state.chain.lock();
    if inner.finalized.asset(&asset).is_none() {
        return Err(ApiError::not_found(
            "asset_not_found",
            format!("no asset {asset}"),
        ));
    }
    Ok(Json(ReaderResponse {
        asset,
        reader,
        may_read: inner.finalized.may_read(&reader, &asset),
    }))
}

/// A reward pool: its assets, standing valuation, open challenge (with the drawn committee and
/// votes) and payout.
#[utoipa::path(get, path = "/v1/pools/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reward_pool(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RewardPoolView>, ApiError> {
    let pool: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_pool",
            format!("`{id}` is not a reward pool id (a positive integer)"),
        )
    })?;
    state
        .chain
        .lock()
        .finalized
        .reward_pool(pool)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("pool_not_found", format!("no reward pool {pool}")))
}

/// A federated training session: its spec, participants, committed rounds and model.
#[utoipa::path(get, path = "/v1/training/sessions/{id}", responses((status = 200, body = Object)))]
async fn training_session(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<tributary_types::views::TrainingSessionView>, ApiError> {
    let session: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_session",
            format!("`{id}` is not a training session id (a positive integer)"),
        )
    })?;
    state
        .chain
        .lock()
        .finalized
        .training_session(session)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "session_not_found",
                format!("no training session {session}"),
            )
        })
}

/// Training sessions by id: `offset` skips that many ids (sessions are numbered from 1), at most
/// `limit` (capped at `QUERY_PAGE_MAX`).
#[utoipa::path(get, path = "/v1/training/sessions", params(Page),
    responses((status = 200, body = Object)))]
async fn training_sessions(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Json<Vec<tributary_types::views::TrainingSessionView>> {
    let limit = page
        .limit
        .unwrap_or(limits::QUERY_PAGE_MAX)
        .min(limits::QUERY_PAGE_MAX);
    let after = u64::try_from(page.offset).unwrap_or(u64::MAX);
    Json(state.chain.lock().finalized.training_sessions(after, limit))
}

/// A model's bill of materials: the data, licenses, rounds, privacy and shares that made it.
#[utoipa::path(get, path = "/v1/models/{id}/bom", responses((status = 200, body = Object)))]
async fn bill_of_materials(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<tributary_types::views::BillOfMaterialsView>, ApiError> {
    let model: AssetId = parse_hash(&id, "asset id")?;
    state
        .chain
        .lock()
        .finalized
        .bill_of_materials(&model)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "bill_not_found",
                format!("asset {model} has no bill of materials (it was not trained in a session)"),
            )
        })
}

/// Reward pools by id: `offset` skips that many ids (pools are numbered from 1), at most
/// `limit` (capped at `QUERY_PAGE_MAX`).
#[utoipa::path(get, path = "/v1/pools", params(Page),
    responses((status = 200, body = Object)))]
async fn reward_pools(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Json<Vec<RewardPoolView>> {
    let limit = page
        .limit
        .unwrap_or(limits::QUERY_PAGE_MAX)
        .min(limits::QUERY_PAGE_MAX);
    let after = u64::try_from(page.offset).unwrap_or(u64::MAX);
    Json(state.chain.lock().finalized.reward_pools(after, limit))
}

/// Storage providers: capacity, committed bytes, price per GiB-epoch, endpoint.
#[utoipa::path(get, path = "/v1/providers", responses((status = 200, body = Object)))]
async fn providers(State(state): State<ApiState>) -> Json<Vec<ProviderView>> {
    Json(
        state
            .chain
            .lock()
            .finalized
            .providers(None, limits::QUERY_PAGE_MAX),
    )
}

/// One storage provider.
#[utoipa::path(get, path = "/v1/providers/{address}", params(("address" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn provider(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<ProviderView>, ApiError> {
    let address = parse_address(&address)?;
    state
        .chain
        .lock()
        .finalized
        .provider(&address)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "provider_not_found",
                format!("{address} is not a registered storage provider"),
            )
        })
}

/// The ledger's parameters, fixed at genesis (fees, epochs, bonds, slashing).
#[utoipa::path(get, path = "/v1/params", responses((status = 200, body = Object)))]
async fn params(State(state): State<ApiState>) -> Json<tributary_types::Params> {
    Json(state.chain.lock().finalized.params().clone())
}

/// Filter and paging for `/v1/deals`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct DealQuery {
    /// Only deals of this asset.
    pub asset: Option<String>,
    /// Only deals with this provider (not closed).
    pub provider: Option<String>,
    /// Only deals with this status: `proposed`, `active`, `failed` or `closed`.
    pub status: Option<String>,
    /// Deals with ids above this.
    #[serde(default)]
    pub after: u64,
    /// At most this many (capped at `QUERY_PAGE_MAX`).
    pub limit: Option<usize>,
}

/// Storage deals (by id), optionally of one asset.
#[utoipa::path(get, path = "/v1/deals", params(DealQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn deals(
    State(state): State<ApiState>,
    Query(query): Query<DealQuery>,
) -> Result<Json<Vec<DealView>>, ApiError> {
    let asset = query
        .asset
        .as_deref()
        .map(|text| parse_hash(text, "asset id"))
        .transpose()?;
    let provider = query.provider.as_deref().map(parse_address).transpose()?;
    if let Some(status) = query.status.as_deref()
        && !DEAL_STATUSES.contains(&status)
    {
        return Err(ApiError::bad_request(
            "invalid_status",
            format!(
                "`{status}` is not a deal status; use one of {}",
                DEAL_STATUSES.join(", ")
            ),
        ));
    }
    let limit = query
        .limit
        .unwrap_or(limits::QUERY_PAGE_MAX)
        .min(limits::QUERY_PAGE_MAX);
    let inner = state.chain.lock();
    let ledger = &inner.finalized;
    let deals = match (provider, query.status.as_deref()) {
        (Some(provider), _) => ledger
            .provider_deals(&provider)
            .into_iter()
            .filter(|deal| {
                deal.id > query.after
                    && asset.is_none_or(|asset| deal.asset == asset)
                    && query
                        .status
                        .as_deref()
                        .is_none_or(|status| deal.status == status)
            })
            .take(limit)
            .collect(),
        (None, Some(status)) => {
            ledger.deals_with_status(status, query.after, limit, asset.as_ref())
        }
        (None, None) => ledger.deals(query.after, limit, asset.as_ref()),
    };
    Ok(Json(deals))
}

/// The statuses a deal can have.
const DEAL_STATUSES: [&str; 4] = ["proposed", "active", "failed", "closed"];

/// A storage deal: status, escrow, the open challenge.
#[utoipa::path(get, path = "/v1/deals/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn deal(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DealView>, ApiError> {
    let deal: u64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_deal",
            format!("`{id}` is not a deal id (a positive integer)"),
        )
    })?;
    state
        .chain
        .lock()
        .finalized
        .deal(deal)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("deal_not_found", format!("no storage deal {deal}")))
}

/// An asset's storage layout: manifest root, k + m, shard size and roots.
#[utoipa::path(get, path = "/v1/assets/{id}/storage", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn asset_storage(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<tributary_types::StorageLayout>, ApiError> {
    let asset = parse_hash(&id, "asset id")?;
    state
        .chain
        .lock()
        .finalized
        .storage_layout(&asset)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found("not_stored", format!("asset {asset} has no storage layout"))
        })
}

fn provider_of(
    providers: &ProviderSet,
    provider: &str,
) -> Result<std::sync::Arc<crate::provider::StorageProvider>, ApiError> {
    let address = parse_address(provider)?;
    providers.get(&address).cloned().ok_or_else(|| {
        ApiError::not_found(
            "provider_not_here",
            format!("this node runs no storage provider {address}"),
        )
    })
}

fn provider_error(error: crate::provider::ProviderError) -> ApiError {
    use crate::provider::ProviderError;
    let status = match &error {
        ProviderError::DealNotFound(_)
        | ProviderError::NoShard { .. }
        | ProviderError::NotStored(_)
        | ProviderError::AssetNotHeld(_)
        | ProviderError::NoEnvelope { .. } => StatusCode::NOT_FOUND,
        ProviderError::BadSignature(_) => StatusCode::UNAUTHORIZED,
        ProviderError::NotAuthorised { .. } | ProviderError::NotOwner { .. } => {
            StatusCode::FORBIDDEN
        }
        ProviderError::AssetMismatch { .. } => StatusCode::BAD_REQUEST,
        ProviderError::TooManyEnvelopes { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ProviderError::Store(_) | ProviderError::RecordDamaged { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, error.code(), error.to_string())
}

/// Upload the shard of a storage deal proposed to this node's provider (raw bytes). Checked
/// against the deal's shard root and size before anything is stored.
#[utoipa::path(put, path = "/v1/storage/{provider}/deals/{deal}/shard",
    params(("provider" = String, Path), ("deal" = u64, Path)),
    request_body(content = String, content_type = "application/octet-stream", description = "the shard's bytes"),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_shard(
    State(state): State<ProviderSet>,
    Path((provider, deal)): Path<(String, String)>,
    axum::Extension(UploadIdleTimeout(idle_timeout)): axum::Extension<UploadIdleTimeout>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<StatusCode, ApiError> {
    let provider = provider_of(&state, &provider)?;
    let deal: u64 = deal
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_deal", format!("`{deal}` is not a deal id")))?;
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(announced) = announced
        && announced > limits::API_SHARD_BYTES_MAX as u64
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "shard_too_large",
            format!(
                "{announced} bytes, more than the limit of {} for a shard",
                limits::API_SHARD_BYTES_MAX
            ),
        ));
    }
    // The body streams to the provider's thread, which writes it to disk as it hashes it; the
    // provider reads no more than the deal's shard size (and one byte to see it ends there).
    // An uploader that sends nothing for `idle_timeout` fails the upload, which stores nothing.
    let (frames, receiver) = tokio::sync::mpsc::channel(UPLOAD_FRAMES_IN_FLIGHT);
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stalled_seen = stalled.clone();
    tokio::spawn(async move {
        use futures::StreamExt as _;
        let mut stream = body.into_data_stream();
        loop {
            let frame = match tokio::time::timeout(idle_timeout, stream.next()).await {
                Ok(None) => break,
                Ok(Some(frame)) => frame.map_err(std::io::Error::other),
                Err(_) => {
                    stalled.store(true, std::sync::atomic::Ordering::Relaxed);
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the upload sent nothing for too long",
                    ))
                }
            };
            let failed = frame.is_err();
            // The provider stopped reading (it refused the shard): stop receiving.
            if frames.send(frame).await.is_err() || failed {
                break;
            }
        }
    });
    let uploaded = on_provider(move || {
        provider.upload_from_reader(
            deal,
            BodyReader {
                frames: receiver,
                current: axum::body::Bytes::new(),
            },
            announced,
        )
    })
    .await;
    match uploaded {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(_) if stalled_seen.load(std::sync::atomic::Ordering::Relaxed) => {
            tracing::info!(target: "tributary::provider", deal, idle_timeout_ms = idle_timeout.as_millis(), "gave up a stalled upload");
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "upload_stalled",
                format!(
                    "the upload of deal {deal}'s shard sent nothing for {} ms, so it was given up and nothing was stored; send the shard again",
                    idle_timeout.as_millis()
                ),
            ))
        }
        Err(error) => Err(error),
    }
}

/// How many body frames of a shard upload wait for the provider's thread at most.
const UPLOAD_FRAMES_IN_FLIGHT: usize = 16;

/// A request body, read on a blocking thread from the frames an async task receives.
struct BodyReader {
    frames: tokio::sync::mpsc::Receiver<std::io::Result<axum::body::Bytes>>,
    current: axum::body::Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.frames.blocking_recv() {
                None => return Ok(0),
                Some(frame) => self.current = frame?,
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// Where to fetch this provider's shards over iroh-blobs: its endpoint id (its address's public
/// key, hex) and socket addresses. 404 if it serves over HTTP only.
#[utoipa::path(get, path = "/v1/storage/{provider}/blobs",
    params(("provider" = String, Path)),
    responses((status = 200, description = "`{\"id\": HEX, \"addresses\": [\"IP:PORT\"]}`"), (status = 404, body = ErrorBody)))]
async fn blob_address(
    State(state): State<ProviderSet>,
    Path(provider): Path<String>,
) -> Result<Json<tributary_blobs::BlobAddress>, ApiError> {
    let provider = provider_of(&state, &provider)?;
    provider.blob_address().map(Json).ok_or_else(|| {
        ApiError::not_found(
            "no_blob_endpoint",
            format!(
                "provider {} serves shards over HTTP only; use /read",
                provider.address()
            ),
        )
    })
}

/// Read a shard: the request is signed by the reader, whom the ledger must allow (an owner, or
/// the holder of an unexpired license). Returns the shard's bytes.
#[utoipa::path(post, path = "/v1/storage/{provider}/read",
    params(("provider" = String, Path)), request_body = crate::provider::ReadRequest,
    responses((status = 200), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn read_shard(
    State(state): State<ProviderSet>,
    Path(provider): Path<String>,
    ApiJson(request): ApiJson<crate::provider::ReadRequest>,
) -> Result<Vec<u8>, ApiError> {
    let provider = provider_of(&state, &provider)?;
    let now_ms = now_ms();
    on_provider(move || provider.read(&request, now_ms)).await
}

/// Unix time in milliseconds (0 if the clock is before 1970).
fn now_ms() -> u64 {
    use crate::provider::Clock as _;
    crate::provider::SystemClock.now_ms()
}

/// Checks that a body's asset is the path's.
fn same_asset(path: &str, body: AssetId) -> Result<(), ApiError> {
    let path = parse_hash(path, "asset id")?;
    if path != body {
        return Err(provider_error(
            crate::provider::ProviderError::AssetMismatch { path, body },
        ));
    }
    Ok(())
}

/// Deliver key envelopes for an asset this provider holds a shard of: the data key wrapped to
/// readers, signed by an owner of the asset, with the asset's manifest (checked against the
/// ledger's manifest root; optional once the provider has it). Merged by reader.
#[utoipa::path(put, path = "/v1/storage/{provider}/assets/{asset}/envelopes",
    params(("provider" = String, Path), ("asset" = String, Path)),
    request_body = crate::provider::KeyDelivery,
    responses((status = 200, body = crate::provider::DeliveryReceipt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn deliver_keys(
    State(state): State<ProviderSet>,
    Path((provider, asset)): Path<(String, String)>,
    ApiJson(delivery): ApiJson<crate::provider::KeyDelivery>,
) -> Result<Json<crate::provider::DeliveryReceipt>, ApiError> {
    let provider = provider_of(&state, &provider)?;
    same_asset(&asset, delivery.asset)?;
    let now_ms = now_ms();
    on_provider(move || provider.deliver_keys(&delivery, now_ms))
        .await
        .map(Json)
}

/// Which readers this provider keeps key envelopes for, and whether it has the manifest.
#[utoipa::path(get, path = "/v1/storage/{provider}/assets/{asset}/envelopes",
    params(("provider" = String, Path), ("asset" = String, Path)),
    responses((status = 200, body = crate::provider::EnvelopeListing), (status = 404, body = ErrorBody)))]
async fn envelope_listing(
    State(state): State<ProviderSet>,
    Path((provider, asset)): Path<(String, String)>,
) -> Result<Json<crate::provider::EnvelopeListing>, ApiError> {
    let provider = provider_of(&state, &provider)?;
    let asset = parse_hash(&asset, "asset id")?;
    on_provider(move || provider.envelope_listing(&asset))
        .await
        .map(Json)
}

/// A reader's key envelope and the asset's manifest: the request is signed by the reader, whom
/// the ledger must allow (an owner, or the holder of an unexpired license).
#[utoipa::path(post, path = "/v1/storage/{provider}/assets/{asset}/key",
    params(("provider" = String, Path), ("asset" = String, Path)),
    request_body = crate::provider::KeyRequest,
    responses((status = 200, body = crate::provider::KeyResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn read_key(
    State(state): State<ProviderSet>,
    Path((provider, asset)): Path<(String, String)>,
    ApiJson(request): ApiJson<crate::provider::KeyRequest>,
) -> Result<Json<crate::provider::KeyResponse>, ApiError> {
    let provider = provider_of(&state, &provider)?;
    same_asset(&asset, request.asset)?;
    let now_ms = now_ms();
    on_provider(move || provider.key(&request, now_ms))
        .await
        .map(Json)
}

/// Runs a provider's (disk-bound) work off the async runtime, mapping its errors.
async fn on_provider<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::provider::ProviderError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                error.to_string(),
            )
        })?
        .map_err(provider_error)
}

/// A transaction's receipt: pending, finalized or failed.
#[utoipa::path(get, path = "/v1/transactions/{hash}", params(("hash" = String, Path)),
    responses((status = 200, body = TransactionResponse), (status = 404, body = ErrorBody)))]
async fn transaction(
    State(state): State<ApiState>,
    Path(hash): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let hash: TxHash = parse_hash(&hash, "transaction hash")?;
    match state.chain.transaction_status(&hash) {
        None => Err(ApiError::not_found(
            "transaction_not_found",
            format!("no pending or finalized transaction {hash}"),
        )),
        Some(TransactionStatus::Pending) => Ok(Json(TransactionResponse {
            tx_hash: hash.to_string(),
            status: "pending".into(),
            reason: None,
            block: None,
            receipt: None,
        })),
        Some(TransactionStatus::Finalized(receipt)) => {
            let (status, reason) = match &receipt.status {
                ReceiptStatus::Success => ("finalized", None),
                ReceiptStatus::Failed { reason } => ("failed", Some(reason.clone())),
            };
            Ok(Json(TransactionResponse {
                tx_hash: hash.to_string(),
                status: status.into(),
                reason,
                block: Some(receipt.height),
                receipt: Some(receipt),
            }))
        }
    }
}

/// Proven validator misbehaviour this node saw (conflicting votes), oldest first.
#[utoipa::path(get, path = "/v1/evidence", responses((status = 200, body = [tributary_chain::evidence::Evidence])))]
async fn evidence(State(state): State<ApiState>) -> Json<Vec<tributary_chain::evidence::Evidence>> {
    Json(state.chain.lock().evidence.iter().cloned().collect())
}

/// Decodes and admits one hex-encoded signed transaction.
fn admit_hex(state: &ApiState, transaction_hex: &str) -> Result<TxHash, ApiError> {
    if transaction_hex.len() > 2 * limits::TRANSACTION_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the transaction is larger than {} bytes",
                limits::TRANSACTION_BYTES_MAX
            ),
        ));
    }
    let bytes = hex::decode(transaction_hex).map_err(|_| {
        ApiError::bad_request(
            "invalid_hex",
            "`transaction` must be the hex of a signed transaction",
        )
    })?;
    let transaction = SignedTransaction::from_bytes(&bytes).map_err(|error| {
        ApiError::bad_request(
            "malformed_transaction",
            format!("the transaction does not decode: {error}"),
        )
    })?;
    let hash = state.chain.submit(transaction).map_err(|error| {
        let status = match &error {
            SubmitError::Admission(_) | SubmitError::Evidence(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SubmitError::Mempool(tributary_chain::mempool::MempoolError::Full(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, error.code(), error.to_string())
    })?;
    Ok(hash)
}

/// `POST /v1/transactions/batch` body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Signed transactions, hex of their canonical encodings, admitted in order.
    pub transactions: Vec<String>,
}

/// One transaction's outcome in a batch.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// Its hash, when it decoded.
    pub tx_hash: Option<String>,
    /// `pending` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/transactions/batch` response.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// One result per submitted transaction, in order.
    pub results: Vec<BatchResult>,
}

/// Submit up to `limits::API_BATCH_TRANSACTIONS_MAX` signed transactions at once; each is
/// admitted or rejected on its own.
#[utoipa::path(post, path = "/v1/transactions/batch", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn submit_batch(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if request.transactions.len() > limits::API_BATCH_TRANSACTIONS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch holds at most {} transactions; split it",
                limits::API_BATCH_TRANSACTIONS_MAX
            ),
        ));
    }
    let results = request
        .transactions
        .iter()
        .map(|transaction| match admit_hex(&state, transaction) {
            Ok(hash) => BatchResult {
                tx_hash: Some(hash.to_string()),
                status: "pending".into(),
                error: None,
            },
            Err(error) => BatchResult {
                tx_hash: None,
                status: "rejected".into(),
                error: Some(ErrorDetail {
                    code: error.code.to_string(),
                    message: error.message,
                }),
            },
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

#[cfg(test)]
mod tests;
