//! `cntt-collector maintenance add|list|cancel`: planned maintenance windows from the command line,
//! through `services::maintenance` like the API and the console (same checks, same audit; the
//! actor is `cli:<user>` with the administrator's reach).

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::cli_actor;
use crate::config::MaintenanceConfig;
use crate::domain::auth::{Principal, Role};
use crate::domain::maintenance::{duration_text, local_text};
use crate::services::incidents::Refusal;
use crate::services::maintenance::{self as services, WindowRequest};
use crate::store::{millis, Store, StoredWindow};

fn principal() -> Principal {
    let actor = cli_actor();
    Principal {
        name: actor.clone(),
        actor,
        role: Role::Admin,
        unit_id: None,
    }
}

fn refusal(refusal: Refusal) -> anyhow::Error {
    match refusal {
        Refusal::Invalid { en, .. } => anyhow::anyhow!("{en}"),
        Refusal::Internal(err) => err,
        other => anyhow::anyhow!("{other}"),
    }
}

/// `maintenance add`.
///
/// # Errors
///
/// A request the rules refuse (the message says which field), or a database error.
pub async fn add(
    store: &Store,
    settings: &MaintenanceConfig,
    request: &WindowRequest,
) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let window = services::create(store, &principal(), request, settings, None, now)
        .await
        .map_err(refusal)?;
    let mut out = format!("planned maintenance window {}\n", window.id);
    describe(&mut out, &window, millis(now));
    Ok(out)
}

/// `maintenance cancel ID`.
///
/// # Errors
///
/// No such window, already cancelled, or a database error.
pub async fn cancel(store: &Store, id: &str) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let window = services::cancel(store, &principal(), id, None, now)
        .await
        .map_err(refusal)?;
    Ok(format!(
        "cancelled maintenance window {} ({})\n",
        window.id,
        window.scope_text()
    ))
}

/// `maintenance list [--all]`: active and planned windows (with `all`, ended and cancelled ones too).
///
/// # Errors
///
/// On a database error.
pub async fn list(store: &Store, all: bool) -> anyhow::Result<String> {
    let now = millis(OffsetDateTime::now_utc());
    let windows = store.maintenance_list().await?;
    let mut out = String::new();
    for window in &windows {
        let (state, _) = services::standing(window, now);
        if !all && !matches!(state, "active" | "planned") {
            continue;
        }
        describe(&mut out, window, now);
        out.push('\n');
    }
    if out.is_empty() {
        out = if all {
            "no maintenance windows yet; plan one with `cntt-collector maintenance add`\n".into()
        } else {
            "no active or planned maintenance windows (`--all` shows ended and cancelled ones)\n"
                .into()
        };
    }
    Ok(out)
}

fn describe(out: &mut String, window: &StoredWindow, now: i64) {
    let (state, occurrence) = services::standing(window, now);
    let _ = writeln!(out, "{}  [{state}]", window.id);
    let _ = writeln!(out, "  covers:   {}", window.scope_text());
    let _ = writeln!(
        out,
        "  when:     from {} for {}, {}{}",
        local_text(window.starts_at),
        duration_text(window.duration_ms),
        window.recurrence,
        window
            .until_at
            .map(|until| format!(
                " until {}",
                local_text(until - 86_400_000)
                    .split(' ')
                    .next()
                    .unwrap_or_default()
            ))
            .unwrap_or_default()
    );
    if let Some((start, end)) = occurrence {
        let label = if state == "active" { "now" } else { "next" };
        let _ = writeln!(
            out,
            "  {label}:     {} to {} (Vietnam time)",
            local_text(start),
            local_text(end)
        );
    }
    let _ = writeln!(out, "  reason:   {}", window.reason);
    let _ = writeln!(
        out,
        "  planned:  by {} at {}",
        window.planned_by,
        local_text(window.created_at)
    );
    if let Some(at) = window.cancelled_at {
        let _ = writeln!(
            out,
            "  cancelled: by {} at {}",
            window.cancelled_by.as_deref().unwrap_or("?"),
            local_text(at)
        );
    }
}
