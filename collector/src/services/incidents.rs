//! People's work on incidents, shared by the API (`http/api/incidents.rs`) and the console
//! (`http/console/incidents.rs`): which units a list may show, filing an incident by hand, and the
//! lifecycle actions (acknowledge, note, resolve, close) with their checks, in one place so both
//! doors refuse and record the same things.
//!
//! Refusals come back as [`Refusal`] values with the English text the API answers and the
//! Vietnamese text the console shows; the caller audits a [`Refusal::Forbidden`] through its own
//! `forbid` (the API's token or the console's person). Issuing the incident reports at closing is
//! a document's business (`documents::issue::Issuer::at_closing`), done by the caller after
//! [`act`] says the incident was closed.

use time::OffsetDateTime;

use crate::domain::auth::{subtree, Principal, Scope};
use crate::store::{
    millis, Action, ActionRefusal, ManualIncident, NewAuditEntry, Store, StoredIncident, Unit,
};

/// Kinds a person may file: everything but what only the collector infers.
pub const MANUAL_KINDS: &[&str] = &[
    "lan", "wan", "internet", "server", "host", "security", "other",
];

/// Severities.
pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// How an incident filed by hand was discovered (the keys of `documents::incident::DISCOVERY`).
pub const DISCOVERIES: &[&str] = &["monitoring", "logs", "third_party", "officer"];

/// Longest title.
pub const MAX_TITLE: usize = cntt_common::wire::MAX_INCIDENT_TITLE;

/// Longest note or closing field.
pub const MAX_TEXT: usize = 10_000;

/// Why a request about incidents was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No such incident or unit.
    #[error("{0}")]
    NotFound(String),
    /// Outside the person's role or scope; the reason (English) goes into the audit entry.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A field that does not make sense.
    #[error("{en}")]
    Invalid {
        /// The API's error code: `missing_field`, `field_too_long` or `invalid_field`.
        code: &'static str,
        /// What the API says.
        en: String,
        /// What the console says.
        vi: String,
    },
    /// Not allowed in the incident's state (the store's words, English).
    #[error("{0}")]
    WrongState(String),
    /// A database failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn invalid(code: &'static str, en: impl Into<String>, vi: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        code,
        en: en.into(),
        vi: vi.into(),
    }
}

/// The units a list may show: the unit `code` with its descendants, else everything `principal`
/// may see; `None` means every unit. A unit outside the scope is [`Refusal::Forbidden`].
///
/// # Errors
///
/// An unknown unit, or one outside the scope.
pub fn unit_filter(
    units: &[Unit],
    principal: &Principal,
    code: Option<&str>,
) -> Result<Option<Vec<i64>>, Refusal> {
    let scope = Scope::of(principal, units);
    match (code, &scope) {
        (Some(code), _) => {
            let unit = units.iter().find(|unit| unit.code == code).ok_or_else(|| {
                Refusal::NotFound(format!(
                    "no unit with code {code:?}; GET /api/v1/units lists them"
                ))
            })?;
            if !scope.contains(unit.id) {
                return Err(Refusal::Forbidden("this token may not read that unit"));
            }
            let mut ids: Vec<i64> = subtree(unit.id, units).into_iter().collect();
            ids.sort_unstable();
            Ok(Some(ids))
        }
        (None, Scope::All) => Ok(None),
        (None, Scope::Units(ids)) => {
            let mut ids: Vec<i64> = ids.iter().copied().collect();
            ids.sort_unstable();
            Ok(Some(ids))
        }
    }
}

/// A text field trimmed and checked for emptiness and length.
///
/// # Errors
///
/// Empty when required, or longer than [`MAX_TEXT`].
pub fn text_field(name: &str, label: &str, value: &str, required: bool) -> Result<String, Refusal> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(invalid(
            "missing_field",
            format!("{name} must not be empty"),
            format!("Xin ghi {label}."),
        ));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(invalid(
            "field_too_long",
            format!("{name} is longer than {MAX_TEXT} characters"),
            format!("{label} dài quá {MAX_TEXT} ký tự."),
        ));
    }
    Ok(value.to_owned())
}

/// An incident to file, as a person gave it (checked by [`file`]).
#[derive(Debug, Clone, Default)]
pub struct Filing {
    /// Unit code.
    pub unit: String,
    /// One of [`MANUAL_KINDS`].
    pub kind: String,
    /// One of [`SEVERITIES`].
    pub severity: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// When it started; now when absent.
    pub started_at: Option<OffsetDateTime>,
    /// When it was discovered; now when absent.
    pub discovered_at: Option<OffsetDateTime>,
    /// Names of affected systems.
    pub systems_affected: Vec<String>,
    /// Code of the affected system in the register.
    pub system: Option<String>,
    /// One of [`DISCOVERIES`]; `officer` when absent.
    pub discovery: Option<String>,
}

/// Files an incident by hand for `principal` (admins, and officers of the unit's scope), audited
/// as `incident.file`; returns the incident as stored.
///
/// # Errors
///
/// A refused or invalid filing, or a database failure.
pub async fn file(
    store: &Store,
    principal: &Principal,
    filing: Filing,
    remote_addr: Option<String>,
    now: OffsetDateTime,
) -> Result<StoredIncident, Refusal> {
    if !MANUAL_KINDS.contains(&filing.kind.as_str()) {
        return Err(invalid(
            "invalid_field",
            format!(
                "kind {:?} is not valid; use one of {}",
                filing.kind,
                MANUAL_KINDS.join(", ")
            ),
            "Loại sự cố không hợp lệ.",
        ));
    }
    if !SEVERITIES.contains(&filing.severity.as_str()) {
        return Err(invalid(
            "invalid_field",
            format!(
                "severity {:?} is not valid; use one of {}",
                filing.severity,
                SEVERITIES.join(", ")
            ),
            "Mức độ không hợp lệ.",
        ));
    }
    let title = text_field("title", "tiêu đề", &filing.title, true)?;
    if title.chars().count() > MAX_TITLE {
        return Err(invalid(
            "invalid_field",
            format!("title is longer than {MAX_TITLE} characters; put the rest in description"),
            format!("Tiêu đề dài quá {MAX_TITLE} ký tự; phần còn lại xin ghi vào mô tả."),
        ));
    }
    let description = text_field("description", "mô tả", &filing.description, false)?;
    let at = |name: &str, label: &str, value: Option<OffsetDateTime>| {
        let at = value.unwrap_or(now);
        if at > now + time::Duration::minutes(5) {
            return Err(invalid(
                "invalid_field",
                format!("{name} is in the future"),
                format!("{label} ở tương lai."),
            ));
        }
        if at.year() < 2000 {
            return Err(invalid(
                "invalid_field",
                format!("{name} is before the year 2000"),
                format!("{label} trước năm 2000."),
            ));
        }
        Ok(at)
    };
    let started_at = at("started_at", "Thời điểm bắt đầu", filing.started_at)?;
    let discovered_at = at("discovered_at", "Thời điểm phát hiện", filing.discovered_at)?;
    if discovered_at < started_at {
        return Err(invalid(
            "invalid_field",
            "discovered_at is before started_at",
            "Thời điểm phát hiện trước thời điểm bắt đầu.",
        ));
    }
    if filing.systems_affected.len() > 50
        || filing
            .systems_affected
            .iter()
            .any(|system| system.chars().count() > MAX_TITLE)
    {
        return Err(invalid(
            "invalid_field",
            format!("systems_affected takes at most 50 names of at most {MAX_TITLE} characters"),
            format!("Tối đa 50 hệ thống bị ảnh hưởng, mỗi tên tối đa {MAX_TITLE} ký tự."),
        ));
    }
    if !principal.role.can_act() {
        return Err(Refusal::Forbidden(
            "a viewer token may read incidents but not file them",
        ));
    }
    let units = store.units_all().await?;
    let Some(unit) = units.iter().find(|unit| unit.code == filing.unit) else {
        return Err(Refusal::NotFound(format!(
            "no unit with code {:?}; GET /api/v1/units lists them",
            filing.unit
        )));
    };
    if !Scope::of(principal, &units).contains(unit.id) {
        return Err(Refusal::Forbidden(
            "this token may not file incidents for that unit",
        ));
    }
    let discovery = filing.discovery.unwrap_or_else(|| "officer".to_owned());
    if !DISCOVERIES.contains(&discovery.as_str()) {
        return Err(invalid(
            "invalid_field",
            format!(
                "discovery {discovery:?} is not valid; use monitoring, logs, third_party or officer"
            ),
            "Cách phát hiện không hợp lệ.",
        ));
    }
    if let Some(code) = &filing.system {
        if store.info_system(code).await?.is_none() {
            return Err(invalid(
                "invalid_field",
                format!(
                    "system {code:?} is not in the register; `cntt-collector systems list` shows it"
                ),
                format!("Hệ thống {code} không có trong danh mục hệ thống thông tin."),
            ));
        }
    }
    let actor = principal.actor();
    let manual = ManualIncident {
        system_code: filing.system,
        discovery,
        unit_id: unit.id,
        kind: filing.kind,
        severity: filing.severity,
        title,
        description,
        started_at,
        discovered_at,
        systems_affected: filing.systems_affected,
    };
    let id = store.incident_file(&manual, &actor, now).await?;
    let Some(incident) = store.incident(&id).await? else {
        return Err(Refusal::Internal(anyhow::anyhow!(
            "incident {id} vanished after filing"
        )));
    };
    audit(
        store,
        NewAuditEntry {
            actor,
            action: "incident.file".into(),
            target: incident.number.clone().unwrap_or_else(|| id.clone()),
            outcome: "ok",
            remote_addr,
            details: serde_json::json!({ "incident": id, "unit": unit.code, "kind": manual.kind }),
        },
        now,
    )
    .await;
    Ok(incident)
}

/// A lifecycle action as a person asked for it (fields checked by [`act`]).
#[derive(Debug, Clone)]
pub enum Request {
    /// Acknowledge.
    Acknowledge,
    /// Add a note.
    Note {
        /// The note.
        text: String,
    },
    /// Resolve a manual (or inferred) incident by hand.
    Resolve {
        /// How.
        resolution: String,
        /// When service came back; now when absent.
        restored_at: Option<OffsetDateTime>,
    },
    /// Close a resolved incident with the closing report's fields.
    Close {
        /// Cause.
        cause: String,
        /// How it was resolved.
        resolution: String,
        /// Lessons learned.
        lessons: String,
        /// When service came back, for an incident filed by a person.
        restored_at: Option<OffsetDateTime>,
    },
}

impl Request {
    /// The verb of the URL and of the audit action (`incident.<verb>`).
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Acknowledge => "acknowledge",
            Request::Note { .. } => "notes",
            Request::Resolve { .. } => "resolve",
            Request::Close { .. } => "close",
        }
    }
}

/// What [`act`] did.
#[derive(Debug, Clone)]
pub struct Acted {
    /// The incident after the action.
    pub incident: StoredIncident,
    /// Whether it was closed (the caller then issues the reports and audits).
    pub closed: bool,
}

/// A stated restoration time: not in the future, not before the start.
fn restored_at(
    at: Option<OffsetDateTime>,
    started_at: i64,
    now: i64,
) -> Result<Option<i64>, Refusal> {
    let Some(at) = at else {
        return Ok(None);
    };
    let at = millis(at);
    if at > now + 300_000 {
        return Err(invalid(
            "invalid_field",
            "restored_at is in the future",
            "Thời điểm khôi phục ở tương lai.",
        ));
    }
    if at < started_at {
        return Err(invalid(
            "invalid_field",
            "restored_at is before the incident started",
            "Thời điểm khôi phục trước khi sự cố bắt đầu.",
        ));
    }
    Ok(Some(at))
}

/// Applies `request` to incident `id` for `principal` (admins, and officers of the incident's
/// unit scope), audited as `incident.<verb>`. Closing with a stated restoration first corrects
/// the end, then closes.
///
/// # Errors
///
/// A refused or invalid action, or a database failure.
pub async fn act(
    store: &Store,
    principal: &Principal,
    id: &str,
    request: Request,
    remote_addr: Option<String>,
    now: OffsetDateTime,
) -> Result<Acted, Refusal> {
    let verb = request.verb();
    let (action, restored) = match request {
        Request::Acknowledge => (Action::Acknowledge, None),
        Request::Note { text } => (
            Action::Note(text_field("text", "nội dung ghi chú", &text, true)?),
            None,
        ),
        Request::Resolve {
            resolution,
            restored_at,
        } => (
            Action::Resolve {
                resolution: text_field("resolution", "cách khắc phục", &resolution, false)?,
                restored_at: None,
            },
            restored_at,
        ),
        Request::Close {
            cause,
            resolution,
            lessons,
            restored_at,
        } => (
            Action::Close {
                cause: text_field("cause", "nguyên nhân", &cause, false)?,
                resolution: text_field("resolution", "cách khắc phục", &resolution, true)?,
                lessons: text_field("lessons", "bài học kinh nghiệm", &lessons, true)?,
            },
            restored_at,
        ),
    };
    let not_found = || {
        Refusal::NotFound(format!(
            "no incident with id {id:?}; GET /api/v1/incidents lists them"
        ))
    };
    let Some(incident) = store.incident(id).await? else {
        return Err(not_found());
    };
    if !principal.role.can_act() {
        return Err(Refusal::Forbidden(
            "a viewer token may read incidents but not change them",
        ));
    }
    let units = store.units_all().await?;
    if !Scope::of(principal, &units).contains(incident.unit_id) {
        return Err(Refusal::Forbidden(
            "this token may not change incidents of that unit",
        ));
    }
    let actor = principal.actor();
    let restored = restored_at(restored, incident.started_at, millis(now))?;
    let mut action = action;
    if let Action::Resolve { restored_at, .. } = &mut action {
        *restored_at = restored;
    }
    let mut actions = Vec::new();
    if let (Action::Close { .. }, Some(at)) = (&action, restored) {
        actions.push(Action::Restore { at });
    }
    let closed = matches!(action, Action::Close { .. });
    actions.push(action);
    for action in &actions {
        match store.incident_act(id, action, &actor, now).await? {
            Ok(()) => {}
            Err(ActionRefusal::NotFound) => return Err(not_found()),
            Err(ActionRefusal::WrongState(why)) => return Err(Refusal::WrongState(why)),
        }
    }
    audit(
        store,
        NewAuditEntry {
            actor,
            action: format!("incident.{verb}"),
            target: incident.number.clone().unwrap_or_else(|| id.to_owned()),
            outcome: "ok",
            remote_addr,
            details: serde_json::json!({ "incident": id }),
        },
        now,
    )
    .await;
    let Some(incident) = store.incident(id).await? else {
        return Err(not_found());
    };
    Ok(Acted { incident, closed })
}

/// Writes an audit entry; a failure is logged, never shown (like `AppState::audit`).
async fn audit(store: &Store, entry: NewAuditEntry, now: OffsetDateTime) {
    if let Err(err) = store.audit(&entry, now).await {
        tracing::error!(error = %format!("{err:#}"), action = %entry.action, "could not write audit entry");
    }
}
