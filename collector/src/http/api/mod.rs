//! The HTTP API: the router built by [`app`], its shared [`AppState`], and the extractors that
//! authenticate agents and people.
//!
//! Handlers are named `<resource>_<verb>` and live one resource per file. They contain no SQL: they
//! check input, ask [`crate::store::Store`], and answer. Every refusal of a credential or of access
//! is written to the audit log before the 401/403 leaves.
//!
//! Every request passes [`guard`] first: a per-address rate limit for unauthenticated requests
//! (429 with `Retry-After`), and refusals audited in aggregate so no flood can grow the audit log
//! faster than a known bound (issue 13, design note in `guard.rs`). Every answer carries
//! `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`, and every error, the
//! framework's own rejections included, is our JSON `{"error", "message"}`.
//!
//! JSON bodies may come gzip-compressed (`Content-Encoding: gzip`, which agents use for batches).
//! They are inflated here, in memory and never past the route's size limit, so the limit holds for
//! the JSON itself and a small "gzip bomb" is refused with 413 instead of filling memory.

mod availability;
mod enroll;
mod error;
pub mod guard;
mod incidents;
mod ingest;
mod maintenance;
mod notices;
mod params;
mod probe_results;
mod read;
pub(crate) mod reports;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub use error::ApiError;
pub use guard::Guard;

use crate::config::IngestConfig;
use crate::domain::auth::{hash_secret, Principal, Role};
use crate::metrics::Metrics;
use crate::store::{AgentAuth, NewAuditEntry, Store};

/// Largest body of requests other than ingest.
const SMALL_BODY_LIMIT: usize = 64 << 10;

/// What every handler shares: a handle, cloned for each request (axum hands every handler its own
/// copy), so cloning costs one reference count, not a copy of every setting.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps what the handlers share.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Where agents' batches are stored, many in one transaction (group commit).
    pub committer: crate::store::Committer,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// Ingest limits.
    pub ingest: IngestConfig,
    /// Whether `/metrics` needs no token.
    pub public_metrics: bool,
    /// SHA-256 of the token that may read `/metrics` (`listen.scrape_token_file`).
    pub scrape_token_hash: Option<String>,
    /// When agents count as unreachable.
    pub incidents: crate::config::IncidentsConfig,
    /// Notice settings, for the background notifier.
    pub notify: crate::jobs::notify::Settings,
    /// What the retention job keeps; read by the server loop that starts it.
    pub retention: crate::config::RetentionConfig,
    /// Periodic report settings.
    pub reports: Arc<crate::services::reports::Settings>,
    /// What happens to agents of units that have ended.
    pub units: crate::config::UnitsConfig,
    /// Incident report scheme.
    pub incident_reports: Arc<crate::documents::incident::Scheme>,
    /// Who issues the documents, by date.
    pub organisation: Arc<crate::domain::organisation::Organisations>,
    /// Rate limits and the aggregated audit of refusals (issue 13); the server loop flushes it.
    pub guard: Arc<Guard>,
    /// Console sessions and logins (`[console]`).
    pub console: crate::config::ConsoleConfig,
    /// Planned maintenance (`[maintenance]`).
    pub maintenance: crate::config::MaintenanceConfig,
}

/// The client's address, put into request extensions by the server loop. Absent in tests that call
/// the router directly.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Builds the router. It is complete without a socket, so tests drive it with `oneshot`.
pub fn app(state: AppState) -> Router {
    let ingest_limit = state.ingest.max_body_bytes;
    Router::new()
        .route("/healthz", get(read::healthz_show))
        .route("/metrics", get(read::metrics_show))
        .route("/api/v1/openapi.json", get(read::openapi_show))
        .route(
            "/api/v1/enroll",
            post(enroll::enroll_create).layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT)),
        )
        .route(
            "/api/v1/ingest",
            post(ingest::batches_create).layer(DefaultBodyLimit::max(ingest_limit)),
        )
        .route("/api/v1/units", get(read::units_list))
        .route("/api/v1/agents", get(read::agents_list))
        .route("/api/v1/availability", get(availability::availability_show))
        .route(
            "/api/v1/incidents",
            get(incidents::incidents_list).post(incidents::incidents_create),
        )
        .route("/api/v1/incidents/{id}", get(incidents::incidents_show))
        .route(
            "/api/v1/incidents/{id}/report",
            get(notices::incidents_report),
        )
        .route(
            "/api/v1/incidents/{id}/report/reissue",
            post(notices::incidents_report_reissue),
        )
        .route("/api/v1/notices", get(notices::notices_list))
        .route(
            "/api/v1/maintenance-windows",
            get(maintenance::windows_list).post(maintenance::windows_create),
        )
        .route(
            "/api/v1/maintenance-windows/{id}/cancel",
            post(maintenance::windows_cancel),
        )
        .route(
            "/api/v1/reports",
            get(reports::reports_list)
                .post(reports::reports_create)
                .layer(DefaultBodyLimit::max(
                    cntt_common::report::MAX_DOCUMENT_BYTES + 4096,
                )),
        )
        .route("/api/v1/reports/context", get(reports::reports_context))
        .route(
            "/api/v1/reports/consolidated",
            get(reports::reports_consolidated),
        )
        .route("/api/v1/reports/{id}", get(reports::reports_show))
        .route(
            "/api/v1/incidents/{id}/{action}",
            post(incidents::incidents_act),
        )
        .route(
            "/api/v1/probe-results",
            get(probe_results::probe_results_list),
        )
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; see GET /api/v1/openapi.json".into())
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_unauthenticated,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::map_response(security_headers))
        .with_state(state.clone())
        .merge(crate::http::console::router(state))
}

/// Paths anyone may read without a token and without being counted by the rate limit.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/api/v1/openapi.json"];

/// Charges the client's rate limit for enrollment and for requests without a credential, and
/// answers 429 with `Retry-After` once it is spent (issue 13, H1).
async fn limit_unauthenticated(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let unauthenticated = path == "/api/v1/enroll"
        || (!OPEN_PATHS.contains(&path) && !request.headers().contains_key(AUTHORIZATION));
    let peer = request.extensions().get::<PeerAddr>().copied();
    if let (true, Some(peer)) = (unauthenticated, peer) {
        if let Err(wait) = state.guard.limiter.take(peer.0.ip(), Instant::now()) {
            state
                .metrics
                .auth_failures
                .with_label_values(&["rate_limited"])
                .inc();
            let entry = NewAuditEntry {
                actor: "anonymous".into(),
                action: "auth.rate_limited".into(),
                target: path.to_owned(),
                outcome: "denied",
                remote_addr: Some(peer.0.to_string()),
                details: serde_json::json!({ "reason": "rate_limited" }),
            };
            if state.audit_refusal(entry).await {
                tracing::warn!(peer = %peer.0, "unauthenticated requests over the rate limit");
            }
            return ApiError::TooManyRequests {
                retry_after_seconds: wait.as_secs().max(1),
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// Adds the headers every answer carries: nothing is sniffed as another type, nothing is cached
/// (answers hold unit data and may pass through shared proxies).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Turns the framework's own plain-text rejections (a query with an unknown parameter, a path
/// that does not parse, a method not allowed) into our JSON error (issue 13, L5).
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json_media_type);
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, SMALL_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let code = match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        _ => "error",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    let body = cntt_common::wire::ErrorBody {
        error: code.to_owned(),
        message,
    };
    let mut response = (status, Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// Whether a `Content-Type` is exactly JSON: `application/json`, with optional parameters such
/// as `; charset=utf-8` (not `application/jsonx`).
fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// Counts every response by route and status.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    state.metrics.health.request_started();
    let response = next.run(request).await;
    state
        .metrics
        .health
        .request_finished(&route, started.elapsed());
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

/// The peer address of a request, as text, when known.
pub(crate) fn peer(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<PeerAddr>()
        .map(|peer| peer.0.to_string())
}

/// The bearer token of a request.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim())
}

impl AppState {
    /// Appends to the audit log; a failure to audit is logged, never hidden, but does not turn a
    /// refusal into a 500.
    pub(crate) async fn audit(&self, entry: NewAuditEntry) {
        if let Err(err) = self.store.audit(&entry, OffsetDateTime::now_utc()).await {
            tracing::error!(error = %format!("{err:#}"), action = %entry.action, "could not write audit entry");
        }
    }

    /// Audits a refusal of an unauthenticated client in aggregate: the first of its address,
    /// action and reason in the interval at once, the rest as a count (design note in
    /// `guard.rs`).
    ///
    /// Returns whether this refusal was the first of its kind in the interval (callers log those
    /// as warnings and the rest at debug level, so a flood does not flood the log either).
    pub(crate) async fn audit_refusal(&self, entry: NewAuditEntry) -> bool {
        let (first, due) = self.guard.failures.record(entry, OffsetDateTime::now_utc());
        let is_first = first.is_some();
        for row in due.into_iter().chain(first) {
            self.audit(row).await;
        }
        is_first
    }

    /// Counts, logs and audits (in aggregate) a refused credential, and charges the client's
    /// rate limit: once it is spent the answer is 429 with `Retry-After` instead of `err`.
    async fn refuse(&self, kind: &'static str, entry: NewAuditEntry, err: ApiError) -> ApiError {
        self.metrics.auth_failures.with_label_values(&[kind]).inc();
        let (action, actor, remote) = (
            entry.action.clone(),
            entry.actor.clone(),
            entry.remote_addr.clone(),
        );
        // Enrollment and requests without a credential were charged before the handler ran.
        let charged = kind == "enroll"
            || entry
                .details
                .get("reason")
                .and_then(serde_json::Value::as_str)
                == Some("missing");
        let address = entry
            .remote_addr
            .as_deref()
            .and_then(|address| address.parse::<SocketAddr>().ok());
        if self.audit_refusal(entry).await {
            tracing::warn!(%action, %actor, ?remote, reason = %err, "refused");
        } else {
            tracing::debug!(%action, %actor, ?remote, reason = %err, "refused again");
        }
        if let (false, Some(address)) = (charged, address) {
            if let Err(wait) = self.guard.limiter.take(address.ip(), Instant::now()) {
                return ApiError::TooManyRequests {
                    retry_after_seconds: wait.as_secs().max(1),
                };
            }
        }
        err
    }
}

/// An agent authenticated by its credential. Its id and unit come from the credential only.
#[derive(Debug, Clone)]
pub struct AuthenticatedAgent {
    /// The agent as stored.
    pub agent: AgentAuth,
    /// Client address.
    pub address: Option<String>,
}

/// One attempt to authenticate, remembered so every refusal is counted, logged and audited alike.
struct AuthAttempt<'a> {
    state: &'a AppState,
    /// Metric label and audit detail: `agent` or `api`.
    kind: &'static str,
    target: String,
    address: Option<String>,
}

impl AuthAttempt<'_> {
    /// Refuses with a 401 whose code and message the client sees, after auditing `reason`.
    async fn deny(
        &self,
        reason: &str,
        actor: String,
        code: &'static str,
        message: &str,
    ) -> ApiError {
        let entry = NewAuditEntry {
            actor,
            action: "auth.failed".into(),
            target: self.target.clone(),
            outcome: "denied",
            remote_addr: self.address.clone(),
            details: serde_json::json!({ "credential": self.kind, "reason": reason }),
        };
        self.state
            .refuse(self.kind, entry, ApiError::unauthorized(code, message))
            .await
    }
}

impl FromRequestParts<AppState> for AuthenticatedAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let attempt = AuthAttempt {
            state,
            kind: "agent",
            target: parts.uri.path().to_owned(),
            address: peer(parts),
        };
        let Some(token) = bearer(parts) else {
            let help = "send the agent credential as Authorization: Bearer <credential>; enroll first with cntt-agent enroll";
            return Err(attempt
                .deny("missing", "anonymous".into(), "missing_credential", help)
                .await);
        };
        match state.store.agent_by_credential(&hash_secret(token)).await? {
            None => Err(attempt
                .deny(
                    "unknown",
                    "anonymous".into(),
                    "invalid_credential",
                    "the agent credential is not known",
                )
                .await),
            Some(agent) if agent.revoked_at.is_some() => {
                let issuer = &state
                    .organisation
                    .current(time::OffsetDateTime::now_utc())
                    .short_name;
                let help =
                    format!("this agent was revoked; ask the {issuer} for a new enrollment token");
                Err(attempt
                    .deny(
                        "revoked",
                        format!("agent:{}", agent.id),
                        "agent_revoked",
                        &help,
                    )
                    .await)
            }
            Some(agent) => Ok(AuthenticatedAgent {
                agent,
                address: attempt.address,
            }),
        }
    }
}

/// A person authenticated by an API token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who they are and what they may do.
    pub principal: Principal,
    /// Client address.
    pub address: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let attempt = AuthAttempt {
            state,
            kind: "api",
            target: parts.uri.path().to_owned(),
            address: peer(parts),
        };
        let Some(token) = bearer(parts) else {
            let help = "send an API token as Authorization: Bearer <token>; an administrator creates one with cntt-collector api-token create";
            return Err(attempt
                .deny("missing", "anonymous".into(), "missing_credential", help)
                .await);
        };
        let now = OffsetDateTime::now_utc();
        let Some(token_row) = state.store.api_token_by_hash(&hash_secret(token)).await? else {
            return Err(attempt
                .deny(
                    "unknown",
                    "anonymous".into(),
                    "invalid_credential",
                    "the API token is not known",
                )
                .await);
        };
        let actor = format!("api-token:{}", token_row.id);
        if token_row.revoked_at.is_some() {
            return Err(attempt
                .deny(
                    "revoked",
                    actor,
                    "token_revoked",
                    "this API token was revoked",
                )
                .await);
        }
        if token_row
            .expires_at
            .is_some_and(|at| at <= crate::store::millis(now))
        {
            return Err(attempt
                .deny(
                    "expired",
                    actor,
                    "token_expired",
                    "this API token has expired; an administrator makes a new one with cntt-collector api-token create (tokens expire after limits.api_token_ttl, a year by default)",
                )
                .await);
        }
        let Ok(role) = token_row.role.parse::<Role>() else {
            let err = anyhow::anyhow!(
                "API token {} has unknown role {}",
                token_row.id,
                token_row.role
            );
            return Err(ApiError::Internal(err));
        };
        state.store.api_token_touch(token_row.id, now).await?;
        let principal = Principal {
            actor: format!("api-token:{}", token_row.id),
            name: token_row.name,
            role,
            unit_id: token_row.unit_id,
        };
        Ok(Caller {
            principal,
            address: attempt.address,
        })
    }
}

impl Caller {
    /// Refuses, with an audit entry, access to something outside the caller's scope.
    async fn forbid(&self, state: &AppState, target: &str, why: &str) -> ApiError {
        let entry = NewAuditEntry {
            actor: self.principal.actor(),
            action: "access.denied".into(),
            target: target.to_owned(),
            outcome: "denied",
            remote_addr: self.address.clone(),
            details: serde_json::json!({ "role": self.principal.role, "reason": why }),
        };
        tracing::warn!(actor = %entry.actor, target, why, "access denied");
        state.audit(entry).await;
        ApiError::Forbidden(why.to_owned())
    }
}

/// Reads a JSON body with our own errors: 415 without a JSON content type, 413 over `limit`, 400
/// with the parser's line and column for bad JSON or bad UTF-8.
async fn read_json<T: DeserializeOwned>(request: Request, limit: usize) -> Result<T, ApiError> {
    let bytes = json_bytes(request, limit).await?;
    parse_json(&bytes)
}

/// Parses JSON bytes into `T`, with a 400 that says where the text went wrong.
fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON of the expected shape: {err}"),
        )
    })
}

/// Reads a body that must be JSON and at most `limit` bytes, both as sent and, when it is
/// gzip-compressed, once inflated.
async fn json_bytes(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let encoding = Encoding::of(request.headers())?;
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::bad_request(
                    "unreadable_body",
                    format!("could not read the request body: {rejection}"),
                )
            }
        })?;
    match encoding {
        Encoding::Identity => Ok(bytes),
        Encoding::Gzip => {
            // An agent's usual batch inflates to a few tens of KiB in tens of microseconds: do it
            // here, as a hop to the blocking pool costs more than that (issue 15). Anything
            // bigger, up to a few MiB, is CPU work kept off the threads that serve requests.
            let inline_limit = limit.min(INLINE_GUNZIP_BYTES);
            match gunzip(&bytes, inline_limit) {
                Err(ApiError::PayloadTooLarge { .. }) if limit > inline_limit => {}
                inflated => return inflated.map(Bytes::from),
            }
            let inflated = tokio::task::spawn_blocking(move || gunzip(&bytes, limit))
                .await
                .map_err(|err| anyhow::anyhow!("inflating a gzip body: {err}"))??;
            Ok(Bytes::from(inflated))
        }
    }
}

/// How a request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Not at all.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
}

impl Encoding {
    /// Reads `Content-Encoding`; anything but none, `identity` and `gzip` is a 415.
    fn of(headers: &HeaderMap) -> Result<Encoding, ApiError> {
        let Some(value) = headers.get(CONTENT_ENCODING) else {
            return Ok(Encoding::Identity);
        };
        let text = value
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match text.as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            _ => Err(ApiError::UnsupportedEncoding(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )),
        }
    }
}

/// Inflates a gzip body, refusing with 413 as soon as it would grow past `limit` bytes, so a
/// small body that inflates to gigabytes costs at most `limit` bytes of memory.
/// Inflated size up to which a gzip body is inflated on the thread serving the request.
const INLINE_GUNZIP_BYTES: usize = 256 << 10;

fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut inflated)
        .map_err(|err| {
            ApiError::bad_request(
                "invalid_gzip",
                format!("the body says Content-Encoding: gzip but is not valid gzip: {err}"),
            )
        })?;
    if inflated.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(inflated)
}

/// Answers JSON with status 200.
fn ok<T: serde::Serialize>(value: T) -> Response {
    Json(value).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_bodies_inflate_within_the_limit_only() {
        let json = br#"{"version": 1}"#;
        assert_eq!(gunzip(&gzip(json), json.len()).unwrap(), json);
        let bomb = gzip(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 64 << 10, "compresses well: {}", bomb.len());
        assert!(matches!(
            gunzip(&bomb, 1 << 20),
            Err(ApiError::PayloadTooLarge { limit: 1_048_576 })
        ));
        let mut corrupt = gzip(json);
        corrupt.truncate(corrupt.len() / 2);
        assert!(matches!(
            gunzip(&corrupt, 1 << 20),
            Err(ApiError::BadRequest {
                code: "invalid_gzip",
                ..
            })
        ));
        assert!(matches!(
            gunzip(b"plain text", 1 << 20),
            Err(ApiError::BadRequest {
                code: "invalid_gzip",
                ..
            })
        ));
    }

    #[test]
    fn only_json_media_types_are_json() {
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/jsonx", false),
            ("application/json-seq", false),
            ("text/json", false),
            ("", false),
        ] {
            assert_eq!(is_json_media_type(value), expected, "{value}");
        }
    }

    #[test]
    fn content_encodings_are_identity_gzip_or_refused() {
        let check = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(CONTENT_ENCODING, value.parse().unwrap());
            }
            Encoding::of(&headers).map_err(|err| err.to_string())
        };
        assert_eq!(check(None), Ok(Encoding::Identity));
        assert_eq!(check(Some("identity")), Ok(Encoding::Identity));
        assert_eq!(check(Some("GZIP")), Ok(Encoding::Gzip));
        assert_eq!(
            check(Some("br")),
            Err("Content-Encoding \"br\" is not supported; send the body uncompressed or with Content-Encoding: gzip".into())
        );
    }
}
