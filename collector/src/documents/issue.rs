//! Issuing incident reports: gathers the [`Facts`] of one incident from the store (the unit's
//! reporting profile, its IT officer, the registered system, who has been told, the initial
//! report a closing report refers to) and stores them as a numbered version.
//!
//! When reports are issued: the initial report the first time it is read, when the opening notice
//! is planned, or at the latest when the incident is closed; the closing report when the incident
//! is closed. A correction (`reissue`) is the next version with the facts of now.

use anyhow::Context;
use time::OffsetDateTime;

use super::incident::{Authority, Facts, Form, Person, Reference, Scheme, INTERRUPTING_KINDS};
use crate::services::systems::letterhead_agency;
use crate::services::units::body_name;
use crate::store::{IssuedReport, Store, StoredIncident};

/// What issuing a report needs besides the incident.
#[derive(Debug, Clone)]
pub struct Issuer<'a> {
    /// The database.
    pub store: &'a Store,
    /// The scheme.
    pub scheme: &'a Scheme,
    /// The provincial IT authority and the province.
    pub authority: &'a Authority,
}

/// How a role of contact reads in "who has been told".
fn role_text(role: &str) -> &'static str {
    match role {
        "leadership" => "lãnh đạo đơn vị",
        "it_officer" => "cán bộ chuyên trách CNTT",
        "so_on_duty" => "trực ứng cứu sự cố cấp tỉnh",
        "so_leadership" => "lãnh đạo cơ quan chuyên trách CNTT cấp tỉnh",
        _ => "người nhận thông báo",
    }
}

/// `monitoring` for incidents the monitoring found; what the person said for manual ones.
fn discovery(incident: &StoredIncident) -> String {
    match incident.source.as_str() {
        "agent_detected" | "inferred" => "monitoring".to_owned(),
        _ => incident
            .discovery
            .clone()
            .unwrap_or_else(|| "officer".to_owned()),
    }
}

impl Issuer<'_> {
    /// Issues `form` of `incident` (or returns the one issued, without `reissue`).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn issue(
        &self,
        incident: &StoredIncident,
        form: Form,
        actor: &str,
        reason: &str,
        reissue: bool,
        now: OffsetDateTime,
    ) -> anyhow::Result<IssuedReport> {
        if !reissue {
            if let Some(last) = self.store.incident_reports(&incident.id, form).await?.pop() {
                return Ok(last);
            }
        }
        let facts = self.gather(incident, form, now).await?;
        let initial = if form == Form::Closing {
            self.store
                .incident_reports(&incident.id, Form::Initial)
                .await?
                .into_iter()
                .next()
                .map(|report| Reference {
                    number: report.number,
                    issued_at: report.issued_at,
                })
        } else {
            None
        };
        let profile = self.store.unit_profile(incident.unit_id).await?;
        let symbol = profile
            .map(|profile| profile.symbol)
            .filter(|symbol| !symbol.trim().is_empty())
            .unwrap_or_else(|| incident.unit_code.to_uppercase());
        let offset = time::UtcOffset::from_hms(7, 0, 0).context("Vietnam's offset")?;
        self.store
            .incident_report_issue(
                &incident.id,
                form,
                incident.unit_id,
                now.to_offset(offset).year(),
                &symbol,
                actor,
                reason,
                reissue,
                |number, version| Facts {
                    number,
                    version,
                    reason: reason.to_owned(),
                    initial,
                    ..facts
                },
            )
            .await
    }

    /// At closing: the initial report exists by now at the latest (with the facts of the closing
    /// moment when nobody read it before), then the closing report is issued. The API's and the
    /// console's close actions both call this.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn at_closing(
        &self,
        incident: &StoredIncident,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.issue(incident, Form::Initial, "system", "", false, now)
            .await?;
        self.issue(incident, Form::Closing, "system", "", false, now)
            .await?;
        Ok(())
    }

    /// The report `form` of `incident` to read: version `version`, else the latest. The initial
    /// report is issued the first time it is read; a closed incident without its closing report
    /// (closed before reports were issued, an upgrade) gets it now, as closing would have. Served
    /// by `GET /api/v1/incidents/{id}/report` and by the console's download.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn to_read(
        &self,
        incident: &StoredIncident,
        form: Form,
        version: Option<u32>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<IssuedReport, Unreadable>> {
        let mut issued = self.store.incident_reports(&incident.id, form).await?;
        if issued.is_empty() {
            if form == Form::Closing && incident.state != "closed" {
                return Ok(Err(Unreadable::NotClosed(incident.state.clone())));
            }
            if form == Form::Closing {
                self.issue(incident, Form::Initial, "system", "", false, now)
                    .await?;
            }
            issued.push(self.issue(incident, form, "system", "", false, now).await?);
        }
        let report = match version {
            None => issued.pop(),
            Some(version) => issued.into_iter().find(|report| report.version == version),
        };
        Ok(report.ok_or(Unreadable::NoSuchVersion))
    }

    /// The facts of `incident` now; number and version are filled in when stored.
    async fn gather(
        &self,
        incident: &StoredIncident,
        form: Form,
        now: OffsetDateTime,
    ) -> anyhow::Result<Facts> {
        let units = self.store.units_all().await?;
        let unit_kind = units
            .iter()
            .find(|unit| unit.id == incident.unit_id)
            .map(|unit| unit.kind.clone())
            .unwrap_or_default();
        let profile = self
            .store
            .unit_profile(incident.unit_id)
            .await?
            .unwrap_or_default();
        let reporting = if profile.reporting_name.trim().is_empty() {
            body_name(&unit_kind, &incident.unit_name)
        } else {
            profile.reporting_name.trim().to_owned()
        };
        // A department's letterhead names the province's People's Committee; a commune's People's
        // Committee has none.
        let parent_agency = if !profile.governing_body.trim().is_empty() {
            profile.governing_body.trim().to_owned()
        } else if reporting.starts_with("UBND ") {
            String::new()
        } else {
            self.authority.header_parent.clone()
        };
        let contacts = self.store.contacts_list().await?;
        let contact = contacts
            .iter()
            .find(|contact| contact.unit_id == incident.unit_id && contact.role == "it_officer")
            .map(|contact| Person {
                name: contact.name.clone(),
                position: contact.position.clone(),
                phone: contact.phone.clone(),
                email: contact.email.clone().unwrap_or_default(),
            });
        let mut told: Vec<String> = Vec::new();
        for notice in self
            .store
            .notices_list(Some(&incident.id), Some("sent"), 1000)
            .await?
        {
            let Some(contact) = contacts
                .iter()
                .find(|contact| Some(contact.id) == notice.contact_id)
            else {
                continue;
            };
            let who = format!("{} ({})", contact.name, role_text(&contact.role));
            if !told.contains(&who) {
                told.push(who);
            }
        }
        let named: Vec<String> =
            serde_json::from_str(&incident.systems_affected).unwrap_or_default();
        let mut system = None;
        let codes = incident.system_code.iter().chain(named.iter());
        for code in codes {
            if let Some(found) = self.store.info_system(code).await? {
                system = Some(found);
                break;
            }
        }
        // What a person named; a detected incident's target is a config name, not a system, and
        // is shown apart.
        let systems_named: Vec<String> = named
            .into_iter()
            .filter(|name| system.as_ref().is_none_or(|found| &found.code != name))
            .collect();
        Ok(Facts {
            form,
            number: String::new(),
            version: 1,
            reason: String::new(),
            issued_at: crate::store::millis(now),
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            parent_agency,
            agency: letterhead_agency(&reporting),
            reporting_name: reporting,
            address: profile.address,
            phone: profile.phone,
            email: profile.email,
            contact,
            system,
            systems_named,
            incident_number: incident.number.clone().unwrap_or_default(),
            kind: incident.kind.clone(),
            severity: incident.severity.clone(),
            title: incident.title.clone(),
            description: incident.description.clone(),
            started_at: incident.started_at,
            discovered_at: incident.discovered_at.unwrap_or(incident.created_at),
            ended_at: incident.ended_at,
            interrupts: INTERRUPTING_KINDS.contains(&incident.kind.as_str())
                || incident.interrupted == Some(1),
            closed_at: incident.closed_at,
            state: incident.state.clone(),
            discovery: discovery(incident),
            told,
            hostname: incident.hostname.clone(),
            target: incident.target.clone(),
            initial: None,
            cause: incident.cause.clone(),
            resolution: incident.resolution.clone(),
            lessons: incident.lessons.clone(),
        })
    }
}

/// Why a report cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The closing report of an incident not closed (its state).
    NotClosed(String),
    /// No such version.
    NoSuchVersion,
}

/// The file name of a report's DOCX: `SC-2026-0001-closing-v1.docx`.
pub fn file_name(incident: &StoredIncident, form: Form, version: u32) -> String {
    format!(
        "{}-{}-v{}.docx",
        incident.number.as_deref().unwrap_or("incident"),
        form.as_str(),
        version
    )
}

/// How long after the deadline the reminder may still be written (a collector that was down
/// catches up; older incidents are left alone).
const REMINDER_WINDOW_MS: i64 = 7 * 86_400_000;

/// Runs in the notifier's loop: issues the initial report of every incident whose opening notice
/// was written, and writes once (by a dedup key) a reminder to the unit's IT officer when the
/// closing report of an ended incident is due within `scheme.closing_reminder_days` and not
/// issued. Returns how many reminders were written.
///
/// # Errors
///
/// On a database error.
pub async fn plan_notices(
    store: &Store,
    scheme: &Scheme,
    authority: &Authority,
    prefix: &str,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let issuer = Issuer {
        store,
        scheme,
        authority,
    };
    for id in store.incidents_told_without_initial_report().await? {
        if let Some(incident) = store.incident(&id).await? {
            issuer
                .issue(&incident, Form::Initial, "system", "", false, now)
                .await?;
        }
    }
    let now_ms = crate::store::millis(now);
    let due_after = i64::from(scheme.closing_due_days) * 86_400_000;
    let remind_before = i64::from(scheme.closing_reminder_days) * 86_400_000;
    // Ended so that now is between (due - remind_before) and (due + window).
    let since = now_ms - due_after - REMINDER_WINDOW_MS;
    let until = now_ms - due_after + remind_before + 1;
    let mut written = 0;
    let mut contacts = None;
    for id in store
        .incidents_awaiting_closing_report(since, until)
        .await?
    {
        let Some(incident) = store.incident(&id).await? else {
            continue;
        };
        let Some(ended_at) = incident.ended_at else {
            continue;
        };
        if contacts.is_none() {
            contacts = Some(store.contacts_list().await?);
        }
        let due = scheme.closing_due(ended_at);
        for contact in contacts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|contact| contact.unit_id == incident.unit_id && contact.role == "it_officer")
        {
            let Some(email) = &contact.email else {
                continue;
            };
            let number = incident.number.clone().unwrap_or_default();
            let rendered = crate::documents::notice::render_closing_report_reminder(
                &contact.name,
                &number,
                &incident.title,
                &incident.unit_name,
                ended_at,
                due,
                prefix,
            );
            let key = format!("closing-report-reminder:{}:{email}", incident.id);
            written += store
                .incident_notice_keyed(
                    &key,
                    &incident.id,
                    contact.id,
                    email,
                    "closing_report_reminder",
                    &rendered,
                    now_ms,
                )
                .await?;
        }
    }
    Ok(written)
}
