//! Enrollment tokens: one function that creates a unit's token and audits it, behind both
//! `cntt-collector enroll-token create` (`admin/`) and the console's "Đơn vị và máy" page.
//!
//! The secret is returned once and stored only as its hash; the caller shows it once.

use std::time::Duration;

use cntt_common::Secret;
use time::OffsetDateTime;

use crate::domain::auth::{hash_secret, new_secret, SecretKind};
use crate::store::{NewAuditEntry, NewEnrollToken, Store, Unit};

/// A token just created.
#[derive(Debug)]
pub struct Created {
    /// Its id (for `enroll-token list|revoke`).
    pub id: i64,
    /// The secret, to show once.
    pub secret: Secret,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// Time as the audit details and people read it: `dd/mm/yyyy HH:MM:SS` in Vietnam.
pub fn local_time(at: OffsetDateTime) -> String {
    // Vietnam has had UTC+7 without daylight saving since 1975.
    let offset = time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset");
    let format = time::macros::format_description!("[day]/[month]/[year] [hour]:[minute]:[second]");
    at.to_offset(offset).format(&format).expect("dates format")
}

/// Creates an enrollment token of `unit` for `uses` enrollments within `ttl`, audited as
/// `enroll_token.create` by `actor`.
///
/// # Errors
///
/// When `uses` is 0 or the database fails.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    store: &Store,
    unit: &Unit,
    uses: u32,
    ttl: Duration,
    note: &str,
    actor: &str,
    remote_addr: Option<String>,
    now: OffsetDateTime,
) -> anyhow::Result<Created> {
    anyhow::ensure!(uses > 0, "an enrollment token needs at least 1 use");
    let expires_at = now + ttl;
    let secret = new_secret(SecretKind::Enroll);
    let token = NewEnrollToken {
        token_hash: hash_secret(secret.expose()),
        unit_id: unit.id,
        uses_allowed: i64::from(uses),
        expires_at,
        created_by: actor.to_owned(),
        note: note.to_owned(),
    };
    let id = store.enroll_token_create(&token, now).await?;
    let entry = NewAuditEntry {
        actor: actor.to_owned(),
        action: "enroll_token.create".into(),
        target: unit.code.clone(),
        outcome: "ok",
        remote_addr,
        details: serde_json::json!({ "id": id, "uses": uses, "expires_at": local_time(expires_at) }),
    };
    store.audit(&entry, now).await?;
    Ok(Created {
        id,
        secret,
        expires_at,
    })
}
