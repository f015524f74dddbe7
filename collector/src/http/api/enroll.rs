//! `POST /api/v1/enroll`: an agent trades a one-time enrollment token for its own credential.

use axum::extract::{Request, State};
use axum::response::Response;
use cntt_common::wire::{EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ok, read_json, ApiError, AppState, PeerAddr, SMALL_BODY_LIMIT};
use crate::config::EndedUnits;
use crate::domain::auth::{hash_secret, new_secret, SecretKind};
use crate::store::{EnrollRefusal, NewAgent, NewAuditEntry};

/// Longest host name accepted (DNS limit).
const MAX_HOSTNAME_LEN: usize = 253;

/// Enrolls an agent: spends one use of the token and returns a fresh credential, shown only once.
pub(super) async fn enroll_create(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let address = request
        .extensions()
        .get::<PeerAddr>()
        .map(|peer| peer.0.to_string());
    let body: EnrollRequest = read_json(request, SMALL_BODY_LIMIT).await?;
    if body.version != PROTOCOL_VERSION {
        return Err(ApiError::bad_request(
            "unsupported_version",
            format!("protocol version {} is not supported; this collector speaks version {PROTOCOL_VERSION}", body.version),
        ));
    }
    let hostname = body.hostname.trim();
    if hostname.is_empty()
        || hostname.len() > MAX_HOSTNAME_LEN
        || hostname.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(
            "invalid_hostname",
            format!("hostname must be 1 to {MAX_HOSTNAME_LEN} printable characters"),
        ));
    }
    if body.agent_version.len() > 64 {
        return Err(ApiError::unprocessable(
            "invalid_agent_version",
            "agent_version is longer than 64 characters",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let credential = new_secret(SecretKind::Agent);
    let agent = NewAgent {
        id: Uuid::new_v4(),
        hostname: hostname.to_owned(),
        agent_version: body.agent_version.clone(),
        credential_hash: hash_secret(credential.expose()),
        address: address.clone(),
    };
    let token_hash = hash_secret(body.token.expose());
    // A unit that has ended: refused or warned about by `[units] ended`, before the token is spent.
    let mut warning = None;
    if let Some(unit) = state.store.unit_of_enroll_token(&token_hash).await? {
        let today = now
            .to_offset(crate::domain::periods::VIETNAM)
            .date()
            .to_string();
        if let Some(ended) = state.store.unit_ended(&unit, &today).await? {
            let message = ended.describe(&unit);
            if state.units.ended == EndedUnits::Refuse {
                let entry = NewAuditEntry {
                    actor: "anonymous".into(),
                    action: "agent.enroll".into(),
                    target: unit.code.clone(),
                    outcome: "denied",
                    remote_addr: address,
                    details: serde_json::json!({ "reason": "unit_ended", "hostname": hostname }),
                };
                return Err(state
                    .refuse(
                        "enroll",
                        entry,
                        ApiError::unprocessable("unit_ended", message),
                    )
                    .await);
            }
            tracing::warn!(unit = %unit.code, hostname = %hostname, "enrolling an agent of an ended unit: {message}");
            warning = Some(message);
        }
    }
    match state.store.agent_enroll(&token_hash, &agent, now).await? {
        Err(refusal) => {
            let code = match refusal {
                EnrollRefusal::Unknown => "enroll_token_unknown",
                EnrollRefusal::Revoked => "enroll_token_revoked",
                EnrollRefusal::Expired => "enroll_token_expired",
                EnrollRefusal::UsedUp => "enroll_token_used_up",
            };
            let entry = NewAuditEntry {
                actor: "anonymous".into(),
                action: "agent.enroll".into(),
                target: hostname.to_owned(),
                outcome: "denied",
                remote_addr: address,
                details: serde_json::json!({ "reason": code }),
            };
            let issuer = &state.organisation.current(now).short_name;
            let message = format!("{refusal}; ask the {issuer} for a new enrollment token");
            Err(state
                .refuse("enroll", entry, ApiError::unauthorized(code, message))
                .await)
        }
        Ok(unit_id) => {
            let unit = state
                .store
                .units_all()
                .await?
                .into_iter()
                .find(|unit| unit.id == unit_id);
            let unit =
                unit.ok_or_else(|| anyhow::anyhow!("unit {unit_id} of a fresh agent vanished"))?;
            state
                .audit(NewAuditEntry {
                    actor: format!("agent:{}", agent.id),
                    action: "agent.enroll".into(),
                    target: unit.code.clone(),
                    outcome: "ok",
                    remote_addr: address,
                    details: serde_json::json!({ "hostname": agent.hostname, "agent_version": agent.agent_version }),
                })
                .await;
            tracing::info!(agent = %agent.id, unit = %unit.code, hostname = %agent.hostname, "agent enrolled");
            Ok(ok(EnrollResponse {
                agent_id: agent.id,
                unit_code: unit.code,
                unit_name: unit.name,
                credential,
                warning,
            }))
        }
    }
}
