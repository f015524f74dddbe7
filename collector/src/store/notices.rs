//! Contacts and notices (issue 5): notices are planned into the database, then claimed and sent.
//!
//! Design note. Delivery must never send a notice twice nor drop one, with collectors restarting
//! or several sharing one PostgreSQL:
//!
//! - Planning runs under the `notify` row of `job_locks`, in one transaction, and the unique key
//!   (incident, contact, channel, kind, step) makes each notice exist once. The words are rendered
//!   when the notice is written, so every attempt sends the same message.
//! - A sender claims due notices with one conditional `UPDATE … RETURNING`: a notice is pending,
//!   due, and unclaimed or its claim ran out. Two senders never hold the same notice.
//! - After sending, the sender records `sent` only if it still holds the claim. A sender that dies
//!   before sending leaves a claim that runs out, and the notice is sent by the next sender: none is
//!   dropped. A sender that dies after the server accepted the message but before recording it
//!   leaves the same claim, so that message is sent again: delivery is at least once, and a
//!   duplicate can only follow a crash in that window of milliseconds (the repeated message has the
//!   same `Message-ID`, which most mail clients fold).
//! - Failures back off (10 s, doubling, at most 10 minutes) until `max_attempts`, then the notice
//!   is `failed`, visible in the API and the metrics.
//! - Order per recipient: a notice is claimed only when no earlier pending notice to the same
//!   channel and address (an e-mail address, a webhook, a Zalo user id, a phone number) waits
//!   for a later attempt, so one recipient's notices arrive in the order they were written.
//! - Zalo and SMS (issue 17) carry short texts (`documents::short_notice`): the head is written
//!   here, the link to the console is added by the sender. A contact's quiet hours set a notice's
//!   first attempt to their end when it is not urgent (`urgent`); an urgent one written for a
//!   recipient brings that recipient's waiting notices forward with it, so the order holds.

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};
use crate::documents::notice::{self as render, Facts, NoticeKind, Person};
use crate::documents::short_notice::{self, Form};
use crate::domain::channels::{self, QuietHours};
use crate::domain::maintenance;
use crate::domain::notice_rules::{self as rules, Contact, NoticeKey, Subject, Timing};

/// How far back a security incident that ended before anyone was told is still announced.
const LATE_SECURITY_WINDOW_MS: i64 = 7 * 86_400_000;

/// How far back maintenance windows are read when planning: an incident begun inside a window
/// this long ago still counts its escalations from the window's end.
const MAINTENANCE_LOOKBACK_MS: i64 = 31 * 86_400_000;

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredContact {
    /// Id.
    pub id: i64,
    /// Unit code.
    pub unit_code: String,
    /// Internal unit id.
    #[serde(skip)]
    pub unit_id: i64,
    /// Full name.
    pub name: String,
    /// `leadership`, `it_officer`, `so_on_duty` or `so_leadership`.
    pub role: String,
    /// Position, e.g. "Phó Chủ tịch UBND huyện".
    pub position: String,
    /// Phone.
    pub phone: String,
    /// Email address.
    pub email: Option<String>,
    /// Webhook name.
    pub webhook: Option<String>,
    /// Whether it receives the daily digest (0 or 1).
    pub digest: i64,
    /// Its user id on the province's Zalo bot.
    pub zalo_id: Option<String>,
    /// The channel families it chose, comma-separated (`email,sms`); none: every one it has an
    /// address for.
    pub channels: Option<String>,
    /// Quiet hours' first minute after midnight, Vietnam time.
    pub quiet_start: Option<i64>,
    /// The minute quiet hours end.
    pub quiet_end: Option<i64>,
}

impl StoredContact {
    /// Its quiet hours, if it has any.
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        QuietHours::from_columns(self.quiet_start, self.quiet_end)
    }
}

/// The columns of [`StoredContact`], from `contacts c JOIN units u`.
const CONTACT_COLUMNS: &str =
    "c.id, u.code AS unit_code, c.unit_id, c.name, c.role, c.position, c.phone, c.email,
     c.webhook, c.digest, c.zalo_id, c.channels, c.quiet_start, c.quiet_end";

/// A contact to create or update (by unit, name and role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    /// Unit code.
    pub unit_code: String,
    /// Full name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Position.
    pub position: String,
    /// Phone.
    pub phone: String,
    /// Email.
    pub email: Option<String>,
    /// Webhook name.
    pub webhook: Option<String>,
    /// Whether it receives the daily digest.
    pub digest: bool,
    /// Its user id on the province's Zalo bot.
    pub zalo_id: Option<String>,
    /// Channel families chosen (checked, `email,sms`); none: every one it has an address for.
    pub channels: Option<String>,
    /// Quiet hours.
    pub quiet_hours: Option<QuietHours>,
    /// Which of the three settings above the record gives; a contact already stored keeps the
    /// others as they are (a file without those columns does not wipe them).
    pub given: ContactSettings,
}

/// Which of a contact's channel settings an imported record sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactSettings {
    /// The Zalo user id.
    pub zalo_id: bool,
    /// The choice of channels.
    pub channels: bool,
    /// The quiet hours.
    pub quiet_hours: bool,
}

/// A change to one contact's channel settings (`cntt-collector contacts set`): each `Some` sets
/// that setting, to nothing when it holds `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactChange {
    /// New Zalo user id.
    pub zalo_id: Option<Option<String>>,
    /// New choice of channels (checked).
    pub channels: Option<Option<String>>,
    /// New quiet hours.
    pub quiet_hours: Option<Option<QuietHours>>,
}

/// A notice as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Notice {
    /// Id.
    pub id: String,
    /// Its incident; none for a test notice.
    pub incident_id: Option<String>,
    /// Its contact.
    pub contact_id: Option<i64>,
    /// `email`, `webhook:<name>`, `zalo` or `sms`.
    pub channel: String,
    /// Email address, webhook name, Zalo user id or phone number (digits).
    pub address: String,
    /// `opening`, `escalation`, `reminder`, `resolution`, `closing`, `test`.
    pub kind: String,
    /// 0, the escalation delay or the reminder number.
    pub step: i64,
    /// Subject.
    pub subject: String,
    /// Plain text; on Zalo and SMS the short text without its link.
    pub body_text: String,
    /// HTML; empty on Zalo and SMS.
    pub body_html: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt, Unix ms.
    pub next_attempt_at: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// Written, Unix ms.
    pub created_at: i64,
    /// Sent, Unix ms.
    pub sent_at: Option<i64>,
}

/// A notice delivered, with the unit of its incident (for scoping), as the console's overview
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentNotice {
    /// Id.
    pub id: String,
    /// Its incident; none for a test notice or a report reminder.
    pub incident_id: Option<String>,
    /// The incident's number.
    pub incident_number: Option<String>,
    /// The incident's unit.
    pub unit_id: Option<i64>,
    /// `email` or `webhook:<name>`.
    pub channel: String,
    /// Email address or webhook name.
    pub address: String,
    /// `opening`, `escalation`, … (see [`Notice::kind`]).
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// Sent, Unix ms.
    pub sent_at: i64,
}

const NOTICE_COLUMNS: &str =
    "id, incident_id, contact_id, channel, address, kind, step, subject, body_text, body_html,
     state, attempts, next_attempt_at, last_error, created_at, sent_at";

/// A routing rule as stored (`notify rules-import`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredRule {
    /// Id, in the order rules were imported.
    pub id: i64,
    /// The unit whose subtree it covers; none for every unit.
    pub unit_code: Option<String>,
    /// Incident kinds, comma-separated, or `*`.
    pub kinds: String,
    /// Lowest severity it applies to.
    pub min_severity: String,
    /// Contact role told.
    pub role: String,
    /// Delay after the incident opens, ms.
    pub after_ms: i64,
}

/// What planning needs of the collector's settings.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Subject prefix.
    pub prefix: String,
    /// Grace and reminders.
    pub timing: Timing,
    /// Channels set up: `email`, `webhook:<name>`, `zalo`, `sms`.
    pub channels: BTreeSet<String>,
    /// Acknowledgement links in notices (issue 17), when the console's address is known.
    pub ack_links: Option<AckLinks>,
}

/// Where acknowledgement links lead and how long they work.
#[derive(Debug, Clone)]
pub struct AckLinks {
    /// The console's address as people reach it: `https://giamsat.example.gov.vn`.
    pub console_url: String,
    /// How long a link works, ms.
    pub lifetime_ms: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct DigestRow {
    number: Option<String>,
    unit_id: i64,
    unit_name: String,
    kind: String,
    title: String,
    started_at: i64,
    ended_at: Option<i64>,
    state: String,
}

#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    id: String,
    number: Option<String>,
    unit_id: i64,
    unit_name: String,
    kind: String,
    severity: String,
    source: String,
    state: String,
    title: String,
    description: String,
    target: Option<String>,
    systems_affected: String,
    started_at: i64,
    ended_at: Option<i64>,
    created_at: i64,
    parent_id: Option<String>,
    scope: Option<String>,
    agent_id: Option<String>,
    system_code: Option<String>,
    cause: String,
    resolution: String,
    lessons: String,
}

impl Store {
    /// Creates or updates contacts by (unit, name, role), all or nothing.
    ///
    /// # Errors
    ///
    /// When a unit code is unknown (nothing is then stored), or on a database error.
    pub async fn contacts_import(
        &self,
        records: &[ContactRecord],
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let now = millis(now);
        let mut tx = self
            .begin_write()
            .await
            .context("starting contact import")?;
        for record in records {
            let unit: Option<i64> = sqlx::query_scalar("SELECT id FROM units WHERE code = $1")
                .bind(&record.unit_code)
                .fetch_optional(&mut *tx)
                .await
                .context("looking up a contact's unit")?;
            let Some(unit_id) = unit else {
                anyhow::bail!(
                    "nothing was imported: contact {} names unit {}, which is not in the units list",
                    record.name,
                    record.unit_code
                );
            };
            sqlx::query(
                "INSERT INTO contacts (unit_id, name, role, position, phone, email, webhook, active, created_at, updated_at, digest,
                                       zalo_id, channels, quiet_start, quiet_end)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (unit_id, name, role) DO UPDATE SET position = $4, phone = $5, email = $6, webhook = $7,
                     active = 1, updated_at = $8, digest = $9,
                     zalo_id = CASE WHEN $14 = 1 THEN $10 ELSE contacts.zalo_id END,
                     channels = CASE WHEN $15 = 1 THEN $11 ELSE contacts.channels END,
                     quiet_start = CASE WHEN $16 = 1 THEN $12 ELSE contacts.quiet_start END,
                     quiet_end = CASE WHEN $16 = 1 THEN $13 ELSE contacts.quiet_end END",
            )
            .bind(unit_id)
            .bind(&record.name)
            .bind(&record.role)
            .bind(&record.position)
            .bind(&record.phone)
            .bind(&record.email)
            .bind(&record.webhook)
            .bind(now)
            .bind(i64::from(record.digest))
            .bind(&record.zalo_id)
            .bind(&record.channels)
            .bind(record.quiet_hours.map(|quiet| quiet.start))
            .bind(record.quiet_hours.map(|quiet| quiet.end))
            .bind(i64::from(record.given.zalo_id))
            .bind(i64::from(record.given.channels))
            .bind(i64::from(record.given.quiet_hours))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing contact {}", record.name))?;
        }
        tx.commit().await.context("committing contact import")?;
        Ok(records.len())
    }

    /// Every active contact, by unit code and name.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn contacts_list(&self) -> anyhow::Result<Vec<StoredContact>> {
        let contacts = sqlx::query_as::<_, StoredContact>(&format!(
            "SELECT {CONTACT_COLUMNS}
             FROM contacts c JOIN units u ON u.id = c.unit_id WHERE c.active = 1 ORDER BY u.code, c.name, c.role"
        ))
        .fetch_all(&self.pool)
        .await
        .context("listing contacts")?;
        Ok(contacts)
    }

    /// Changes one active contact's channel settings; returns whether there was such a contact.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn contact_change(
        &self,
        id: i64,
        change: &ContactChange,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let quiet = change.quiet_hours.flatten();
        let res = sqlx::query(
            "UPDATE contacts SET
                 zalo_id = CASE WHEN $1 = 1 THEN $2 ELSE zalo_id END,
                 channels = CASE WHEN $3 = 1 THEN $4 ELSE channels END,
                 quiet_start = CASE WHEN $5 = 1 THEN $6 ELSE quiet_start END,
                 quiet_end = CASE WHEN $5 = 1 THEN $7 ELSE quiet_end END,
                 updated_at = $8
             WHERE id = $9 AND active = 1",
        )
        .bind(i64::from(change.zalo_id.is_some()))
        .bind(change.zalo_id.clone().flatten())
        .bind(i64::from(change.channels.is_some()))
        .bind(change.channels.clone().flatten())
        .bind(i64::from(change.quiet_hours.is_some()))
        .bind(quiet.map(|quiet| quiet.start))
        .bind(quiet.map(|quiet| quiet.end))
        .bind(millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("changing contact {id}"))?;
        Ok(res.rows_affected() == 1)
    }

    /// Replaces the routing rules with `records`, all or nothing.
    ///
    /// # Errors
    ///
    /// When a unit code is unknown (nothing changes), or on a database error.
    pub async fn notify_rules_replace(
        &self,
        records: &[rules::RuleRecord],
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let mut tx = self.begin_write().await.context("starting rules import")?;
        sqlx::query("DELETE FROM notify_rules")
            .execute(&mut *tx)
            .await
            .context("clearing rules")?;
        for record in records {
            let unit_id: Option<i64> = match &record.unit_code {
                None => None,
                Some(code) => {
                    let id: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM units WHERE code = $1")
                            .bind(code)
                            .fetch_optional(&mut *tx)
                            .await
                            .context("looking up a rule's unit")?;
                    Some(id.ok_or_else(|| {
                        anyhow::anyhow!("nothing was imported: a rule names unit {code}, which is not in the units list")
                    })?)
                }
            };
            sqlx::query(
                "INSERT INTO notify_rules (unit_id, kinds, min_severity, role, after_ms, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(unit_id)
            .bind(&record.kinds)
            .bind(&record.min_severity)
            .bind(&record.role)
            .bind(record.after_ms)
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .context("storing a rule")?;
        }
        tx.commit().await.context("committing rules")?;
        Ok(records.len())
    }

    /// The routing rules as stored, in order, with their unit's code (none: every unit). Empty
    /// when none were imported (the built-in defaults then apply: `jobs::notify::rules::defaults`).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notify_rules_list(&self) -> anyhow::Result<Vec<StoredRule>> {
        sqlx::query_as::<_, StoredRule>(
            "SELECT r.id, u.code AS unit_code, r.kinds, r.min_severity, r.role, r.after_ms
             FROM notify_rules r LEFT JOIN units u ON u.id = r.unit_id ORDER BY r.id",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing notify rules")
    }

    /// Plans the notices owed at `now`, under the `notify` lock, and returns how many it wrote.
    ///
    /// # Errors
    ///
    /// On a database error; nothing is then written.
    pub async fn notices_plan(
        &self,
        settings: &PlanSettings,
        holder: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let now = millis(now);
        // Candidates: top incidents open past the grace period, and any incident already
        // announced that has not had its last notice (closing) yet. Read without the lock first.
        let candidates_sql = "SELECT i.id, i.number, i.unit_id, u.name AS unit_name, i.kind, i.severity, i.source, i.state,
                    i.title, i.description, i.target, i.systems_affected, i.started_at, i.ended_at, i.created_at,
                    i.parent_id, i.scope, i.agent_id, i.system_code, i.cause, i.resolution, i.lessons
             FROM incidents i JOIN units u ON u.id = i.unit_id
             WHERE (i.parent_id IS NULL AND i.state IN ('open', 'acknowledged') AND i.created_at <= $1)
                OR (i.parent_id IS NULL AND i.kind = 'security' AND i.created_at <= $1 AND i.created_at > $2
                    AND NOT EXISTS (SELECT 1 FROM notices s WHERE s.incident_id = i.id))
                OR i.id IN (SELECT n.incident_id FROM notices n WHERE n.kind IN ('opening', 'escalation')
                            AND NOT EXISTS (SELECT 1 FROM notices c WHERE c.incident_id = n.incident_id AND c.kind = 'closing'))
             ORDER BY i.created_at, i.id";
        let grace_line = now - settings.timing.grace_ms;
        // Security incidents that ended before anyone was told are still reported (Điều 12.2),
        // but only recent ones: an upgrade does not announce years of history.
        let security_line = now - LATE_SECURITY_WINDOW_MS;
        let precheck: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT id FROM ({candidates_sql}) c LIMIT 1"))
                .bind(grace_line)
                .bind(security_line)
                .fetch_all(&self.pool)
                .await
                .context("looking for incidents to announce")?;
        if precheck.is_empty() {
            return Ok(0);
        }
        // Windows that may cover an incident still being planned for (one started a month ago
        // inside a window is still counted from that window's end).
        let windows = self
            .maintenance_live(now - MAINTENANCE_LOOKBACK_MS)
            .await
            .context("reading maintenance windows")?;
        // Read (or made) before the transaction: on SQLite the pool's other connections wait
        // while it holds the writer.
        let link_key = match &settings.ack_links {
            Some(_) => Some(self.ack_link_key().await?),
            None => None,
        };
        let mut tx = self
            .begin_write()
            .await
            .context("starting notice planning")?;
        sqlx::query("UPDATE job_locks SET holder = $1, at = $2 WHERE name = 'notify'")
            .bind(holder)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("taking the notify lock")?;
        let candidates = sqlx::query_as::<_, Candidate>(candidates_sql)
            .bind(grace_line)
            .bind(security_line)
            .fetch_all(&mut *tx)
            .await
            .context("reading incidents to announce")?;
        let units: Vec<(i64, Option<i64>)> = sqlx::query_as("SELECT id, parent_id FROM units")
            .fetch_all(&mut *tx)
            .await
            .context("reading units")?;
        let parent_of: std::collections::HashMap<i64, Option<i64>> = units.into_iter().collect();
        let stored_rules: Vec<(Option<i64>, String, String, String, i64)> = sqlx::query_as(
            "SELECT unit_id, kinds, min_severity, role, after_ms FROM notify_rules ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .context("reading notify rules")?;
        let rules: Vec<rules::Rule> = if stored_rules.is_empty() {
            rules::defaults()
        } else {
            stored_rules
                .into_iter()
                .map(
                    |(unit_id, kinds, min_severity, role, after_ms)| rules::Rule {
                        unit_id,
                        kinds: kinds
                            .split(',')
                            .map(str::trim)
                            .filter(|kind| !kind.is_empty() && *kind != "*")
                            .map(str::to_owned)
                            .collect(),
                        min_severity: rules::severity_rank(&min_severity),
                        role,
                        after_ms,
                    },
                )
                .collect()
        };
        let stored_contacts = sqlx::query_as::<_, StoredContact>(&format!(
            "SELECT {CONTACT_COLUMNS}
             FROM contacts c JOIN units u ON u.id = c.unit_id WHERE c.active = 1 ORDER BY c.id"
        ))
        .fetch_all(&mut *tx)
        .await
        .context("reading contacts")?;
        let contacts: Vec<Contact> = stored_contacts
            .iter()
            .map(|contact| Contact {
                id: contact.id,
                unit_id: contact.unit_id,
                role: contact.role.clone(),
                channels: channels_of(contact, &settings.channels),
            })
            .collect();
        let mut written = 0;
        let mut written_in_round = 0usize;
        for incident in candidates {
            let mut chain = vec![incident.unit_id];
            while let Some(Some(up)) = parent_of.get(chain.last().expect("starts non-empty")) {
                if chain.contains(up) || chain.len() > 64 {
                    break;
                }
                chain.push(*up);
            }
            let existing_rows: Vec<(Option<i64>, String, String, i64)> = sqlx::query_as(
                "SELECT contact_id, channel, kind, step FROM notices WHERE incident_id = $1",
            )
            .bind(&incident.id)
            .fetch_all(&mut *tx)
            .await
            .context("reading an incident's notices")?;
            let existing: BTreeSet<NoticeKey> = existing_rows
                .into_iter()
                .filter_map(|(contact, channel, kind, step)| {
                    Some((contact?, channel, NoticeKind::parse(&kind)?, step))
                })
                .collect();
            let hold = maintenance::hold(
                &windows,
                &maintenance::Covered {
                    unit_chain: chain.clone(),
                    agent_id: incident.agent_id.clone(),
                    target: incident.target.clone(),
                    system_code: incident.system_code.clone(),
                },
                &incident.kind,
                incident.started_at,
                now,
            );
            let subject = Subject {
                held_until: hold.until,
                counted_from: hold.counted_from,
                unit_chain: chain.clone(),
                kind: incident.kind.clone(),
                severity: incident.severity.clone(),
                state: incident.state.clone(),
                folded: incident.parent_id.is_some(),
                started_at: incident.started_at,
                created_at: incident.created_at,
                silent_agent: incident.scope.as_deref() == Some("agent"),
            };
            let new = rules::plan(&subject, &rules, &contacts, &existing, settings.timing, now);
            if new.is_empty() {
                continue;
            }
            let grouped: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM incidents WHERE parent_id = $1")
                    .bind(&incident.id)
                    .fetch_one(&mut *tx)
                    .await
                    .context("counting grouped incidents")?;
            let mut told_ids: BTreeSet<i64> = existing.iter().map(|key| key.0).collect();
            told_ids.extend(new.iter().map(|key| key.0));
            let told: Vec<String> = stored_contacts
                .iter()
                .filter(|contact| told_ids.contains(&contact.id))
                .map(|contact| format!("{} ({})", contact.name, role_text(&contact.role)))
                .collect();
            let officer = chain.iter().find_map(|unit| {
                stored_contacts
                    .iter()
                    .find(|contact| contact.unit_id == *unit && contact.role == "it_officer")
            });
            let mut systems: Vec<String> =
                serde_json::from_str(&incident.systems_affected).unwrap_or_default();
            if systems.is_empty() {
                systems.extend(incident.target.clone());
            }
            let facts = Facts {
                number: incident.number.clone().unwrap_or_default(),
                unit_name: incident.unit_name.clone(),
                contact: officer.map(|contact| Person {
                    name: contact.name.clone(),
                    position: contact.position.clone(),
                    phone: contact.phone.clone(),
                    email: contact.email.clone().unwrap_or_default(),
                }),
                kind: incident.kind.clone(),
                severity: incident.severity.clone(),
                source: incident.source.clone(),
                title: incident.title.clone(),
                description: incident.description.clone(),
                systems,
                started_at: incident.started_at,
                discovered_at: incident.created_at,
                ended_at: incident.ended_at,
                state: incident.state.clone(),
                grouped: usize::try_from(grouped).unwrap_or_default(),
                told,
                cause: incident.cause.clone(),
                resolution: incident.resolution.clone(),
                lessons: incident.lessons.clone(),
                open_for_ms: now - incident.started_at,
            };
            for (contact_id, channel, kind, step) in new {
                written_in_round += 1;
                let Some(contact) = stored_contacts.iter().find(|c| c.id == contact_id) else {
                    continue;
                };
                let address = address_of(contact, &channel);
                let notice_id = ordered_notice_id(now, written_in_round);
                let mut rendered = render::render(kind, &facts, &settings.prefix);
                if let Some(form) = Form::of(&channel) {
                    rendered.text = short_notice::incident(
                        kind,
                        &facts,
                        &rendered.subject,
                        &settings.prefix,
                        form,
                    );
                    rendered.html = String::new();
                } else if let (Some(links), Some(key)) = (&settings.ack_links, &link_key) {
                    // Those asked to act get a link to acknowledge from the notice (e-mail and
                    // webhooks; Zalo and SMS carry the incident's link, added when sent).
                    if matches!(
                        kind,
                        NoticeKind::Opening | NoticeKind::Escalation | NoticeKind::Reminder
                    ) {
                        let token =
                            crate::domain::ack_link::sign(key, &notice_id, now + links.lifetime_ms);
                        let url =
                            format!("{}/ack/{token}", links.console_url.trim_end_matches('/'));
                        render::add_ack_link(&mut rendered, &url, now + links.lifetime_ms);
                    }
                }
                // A critical incident is told at once, quiet hours or not.
                let urgent = incident.severity == "critical";
                let due = due_at(contact, &channel, urgent, now);
                let res = sqlx::query(
                    "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                          body_html, state, attempts, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $12)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&notice_id)
                .bind(&incident.id)
                .bind(contact_id)
                .bind(&channel)
                .bind(&address)
                .bind(kind.as_str())
                .bind(step)
                .bind(&rendered.subject)
                .bind(&rendered.text)
                .bind(&rendered.html)
                .bind(due)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("writing a notice")?;
                written += usize::try_from(res.rows_affected()).unwrap_or_default();
                if urgent && channels::is_short(&channel) {
                    // Woken anyway: what waited for the quiet hours to end goes first, in order.
                    sqlx::query(
                        "UPDATE notices SET next_attempt_at = $1
                         WHERE channel = $2 AND address = $3 AND state = 'pending' AND attempts = 0
                           AND next_attempt_at > $1 AND (claimed_until IS NULL OR claimed_until < $1)",
                    )
                    .bind(now)
                    .bind(&channel)
                    .bind(&address)
                    .execute(&mut *tx)
                    .await
                    .context("bringing waiting notices forward")?;
                }
            }
        }
        tx.commit().await.context("committing notice planning")?;
        Ok(written)
    }

    /// Writes a test notice to each of a contact's channels, already claimed by `holder`, who sends
    /// it at once.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notice_test(
        &self,
        contact: &StoredContact,
        channels: &BTreeSet<String>,
        prefix: &str,
        holder: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<Notice>> {
        let now = millis(now);
        let full = render::render(NoticeKind::Test, &Facts::default(), prefix);
        let mut ids = Vec::new();
        for channel in channels_of(contact, channels) {
            let id = uuid::Uuid::new_v4().to_string();
            let address = address_of(contact, &channel);
            let rendered = match Form::of(&channel) {
                Some(_) => render::Rendered {
                    subject: full.subject.clone(),
                    text: short_notice::test(prefix),
                    html: String::new(),
                },
                None => full.clone(),
            };
            let notice = sqlx::query_as::<_, Notice>(&format!(
                "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                      body_html, state, attempts, next_attempt_at, created_at, claimed_by, claimed_until)
                 VALUES ($1, NULL, $2, $3, $4, 'test', $5, $6, $7, $8, 'pending', 0, $9, $9, $10, $11)
                 RETURNING {NOTICE_COLUMNS}"
            ))
            .bind(&id)
            .bind(contact.id)
            .bind(&channel)
            .bind(&address)
            .bind(now)
            .bind(&rendered.subject)
            .bind(&rendered.text)
            .bind(&rendered.html)
            .bind(now)
            .bind(holder)
            .bind(now + 120_000)
            .fetch_one(&self.pool)
            .await
            .context("writing a test notice")?;
            ids.push(notice);
        }
        Ok(ids)
    }

    /// Writes the alarm that channel family `down` (`email`, `webhook`, `zalo` or `sms`) has
    /// failed since `since`, to the Sở's on-duty contacts on their other channels, at once (quiet
    /// hours or not); at most once per contact and channel per outage. Returns how many it wrote.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_channel_down(
        &self,
        down: &str,
        since: OffsetDateTime,
        error: &str,
        channels: &BTreeSet<String>,
        prefix: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let rendered = render::render_channel_down(down, millis(since), error, prefix);
        let contacts = self.contacts_list().await?;
        let mut written = 0;
        for contact in contacts.iter().filter(|c| c.role == "so_on_duty") {
            for channel in channels_of(contact, channels) {
                if channels::family(&channel) == down {
                    continue;
                }
                let res = self
                    .insert_once(
                        "channel_down",
                        contact,
                        &channel,
                        millis(since),
                        &rendered,
                        (millis(now), millis(now)),
                    )
                    .await
                    .context("writing a channel alarm")?;
                written += res;
            }
        }
        Ok(written)
    }

    /// Writes today's digest for every contact that asked for one, once `at_minute` (minutes
    /// after midnight, Vietnam time) has passed: the top incidents of the last 24 hours it may
    /// see (its unit and those below; everything for the Sở's roles). Returns how many it wrote.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_digest(
        &self,
        channels: &BTreeSet<String>,
        prefix: &str,
        at_minute: i64,
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let local = now.to_offset(crate::domain::vi::VIETNAM);
        if i64::from(local.hour()) * 60 + i64::from(local.minute()) < at_minute {
            return Ok(0);
        }
        let day = i64::from(local.date().to_julian_day());
        let now_ms = millis(now);
        let contacts: Vec<StoredContact> = self
            .contacts_list()
            .await?
            .into_iter()
            .filter(|contact| contact.digest == 1)
            .collect();
        if contacts.is_empty() {
            return Ok(0);
        }
        let units = self.units_all().await?;
        let rows = sqlx::query_as::<_, DigestRow>(
            "SELECT i.number, i.unit_id, u.name AS unit_name, i.kind, i.title, i.started_at, i.ended_at, i.state
             FROM incidents i JOIN units u ON u.id = i.unit_id
             WHERE i.parent_id IS NULL
               AND (i.state IN ('open', 'acknowledged') OR i.started_at >= $1 OR i.ended_at >= $1)
             ORDER BY i.started_at, i.id",
        )
        .bind(now_ms - 86_400_000)
        .fetch_all(&self.pool)
        .await
        .context("reading the day's incidents")?;
        let mut written = 0;
        for contact in contacts {
            let scope: Option<std::collections::HashSet<i64>> = if contact.role.starts_with("so_") {
                None
            } else {
                Some(crate::domain::auth::subtree(contact.unit_id, &units))
            };
            let lines: Vec<render::DigestLine> = rows
                .iter()
                .filter(|row| {
                    scope
                        .as_ref()
                        .is_none_or(|units| units.contains(&row.unit_id))
                })
                .map(|row| render::DigestLine {
                    number: row.number.clone().unwrap_or_default(),
                    unit_name: row.unit_name.clone(),
                    kind: row.kind.clone(),
                    title: row.title.clone(),
                    started_at: row.started_at,
                    ended_at: row.ended_at,
                    state: row.state.clone(),
                })
                .collect();
            let rendered = render::render_digest(&lines, now_ms, prefix);
            for channel in channels_of(&contact, channels) {
                let due = due_at(&contact, &channel, false, now_ms);
                let res = self
                    .insert_once("digest", &contact, &channel, day, &rendered, (now_ms, due))
                    .await
                    .context("writing a digest")?;
                written += res;
            }
        }
        Ok(written)
    }

    /// Writes a notice that is not about one incident (a digest, a channel alarm) unless one of
    /// that kind, contact, channel and step exists (its `dedup_key`, unique, holds this also when
    /// two collectors write at the same instant); returns how many it wrote (0 or 1). `at` is
    /// (written, first attempt), Unix ms; on Zalo and SMS the notice is its short form.
    async fn insert_once(
        &self,
        kind: &str,
        contact: &StoredContact,
        channel: &str,
        step: i64,
        rendered: &render::Rendered,
        at: (i64, i64),
    ) -> anyhow::Result<usize> {
        let (text, html) = match Form::of(channel) {
            Some(form) => (
                short_notice::other(&rendered.subject, &rendered.text, form),
                String::new(),
            ),
            None => (rendered.text.clone(), rendered.html.clone()),
        };
        let contact_id = contact.id;
        let res = sqlx::query(
            "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                  body_html, state, attempts, next_attempt_at, created_at, dedup_key)
             SELECT $1, NULL, $2, $3, $4, $10, $5, $6, $7, $8, 'pending', 0, $12, $9, $11
             WHERE NOT EXISTS (SELECT 1 FROM notices WHERE kind = $10 AND contact_id = $2
                               AND channel = $3 AND step = $5)
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(contact_id)
        .bind(channel)
        .bind(address_of(contact, channel))
        .bind(step)
        .bind(&rendered.subject)
        .bind(&text)
        .bind(&html)
        .bind(at.0)
        .bind(kind)
        .bind(format!("{kind}:{contact_id}:{channel}:{step}"))
        .bind(at.1)
        .execute(&self.pool)
        .await?;
        Ok(usize::try_from(res.rows_affected()).unwrap_or_default())
    }

    /// Claims up to `limit` due notices for `holder` until `until` (Unix ms), oldest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_claim(
        &self,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: i64,
    ) -> anyhow::Result<Vec<Notice>> {
        let now = millis(now);
        // Look before writing: most rounds find nothing due, and on SQLite a write takes the
        // database's one writer slot.
        let due: Option<String> = sqlx::query_scalar(
            "SELECT id FROM notices WHERE state = 'pending' AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until < $1) LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .context("looking for due notices")?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let claimed = sqlx::query_as::<_, Notice>(&format!(
            "UPDATE notices SET claimed_by = $1, claimed_until = $2
             WHERE id IN (SELECT n.id FROM notices n WHERE n.state = 'pending' AND n.next_attempt_at <= $3
                            AND (n.claimed_until IS NULL OR n.claimed_until < $3)
                            AND NOT EXISTS (SELECT 1 FROM notices o
                                            WHERE o.channel = n.channel AND o.address = n.address AND o.state = 'pending'
                                              AND (o.created_at < n.created_at OR (o.created_at = n.created_at AND o.id < n.id))
                                              AND o.next_attempt_at > $3)
                          ORDER BY n.created_at, n.id LIMIT $4)
               AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < $3)
             RETURNING {NOTICE_COLUMNS}"
        ))
        .bind(holder)
        .bind(millis(until))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("claiming notices")?;
        let mut claimed = claimed;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    /// Records a notice as sent, if `holder` still holds it. Returns whether it did.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notice_sent(
        &self,
        id: &str,
        holder: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let res = sqlx::query(
            "UPDATE notices SET state = 'sent', sent_at = $1, attempts = attempts + 1, claimed_until = NULL,
                 last_error = NULL
             WHERE id = $2 AND claimed_by = $3 AND state = 'pending'",
        )
        .bind(millis(now))
        .bind(id)
        .bind(holder)
        .execute(&self.pool)
        .await
        .context("recording a sent notice")?;
        Ok(res.rows_affected() == 1)
    }

    /// Records a failed attempt: retried at `retry_at`, or `failed` when `give_up`.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notice_failed(
        &self,
        id: &str,
        holder: &str,
        error: &str,
        retry_at: OffsetDateTime,
        give_up: bool,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE notices SET state = CASE WHEN $1 = 1 THEN 'failed' ELSE 'pending' END, attempts = attempts + 1,
                 last_error = $2, next_attempt_at = $3, claimed_until = NULL
             WHERE id = $4 AND claimed_by = $5 AND state = 'pending'",
        )
        .bind(i64::from(give_up))
        .bind(error)
        .bind(millis(retry_at))
        .bind(id)
        .bind(holder)
        .execute(&self.pool)
        .await
        .context("recording a failed notice")?;
        Ok(())
    }

    /// Gives a claimed notice back untried, due again at `retry_at` (it waits behind an earlier
    /// notice of its channel that failed).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notice_release(
        &self,
        id: &str,
        holder: &str,
        retry_at: OffsetDateTime,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE notices SET next_attempt_at = $1, claimed_until = NULL
             WHERE id = $2 AND claimed_by = $3 AND state = 'pending'",
        )
        .bind(millis(retry_at))
        .bind(id)
        .bind(holder)
        .execute(&self.pool)
        .await
        .context("releasing a notice")?;
        Ok(())
    }

    /// Notices, newest first, optionally of one incident and state.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_list(
        &self,
        incident_id: Option<&str>,
        state: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<Notice>> {
        let notices = sqlx::query_as::<_, Notice>(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices
             WHERE ($1 IS NULL OR incident_id = $1) AND ($2 IS NULL OR state = $2)
             ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(incident_id)
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("listing notices")?;
        Ok(notices)
    }

    /// Notices sent in `[since, until)` (Unix ms), latest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_sent_between(
        &self,
        since: i64,
        until: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<SentNotice>> {
        let notices = sqlx::query_as::<_, SentNotice>(
            "SELECT n.id, n.incident_id, i.number AS incident_number, i.unit_id, n.channel, n.address,
                    n.kind, n.subject, n.sent_at
             FROM notices n LEFT JOIN incidents i ON i.id = n.incident_id
             WHERE n.state = 'sent' AND n.sent_at >= $1 AND n.sent_at < $2
             ORDER BY n.sent_at DESC, n.id LIMIT $3",
        )
        .bind(since)
        .bind(until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("listing notices sent")?;
        Ok(notices)
    }

    /// How many notices are in each state, for the metrics.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn notices_count(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let counts =
            sqlx::query_as("SELECT state, COUNT(*) FROM notices GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await
                .context("counting notices")?;
        Ok(counts)
    }
}

/// Where a notice on `channel` goes for `contact`: its email address, the webhook's name, its
/// Zalo user id or its phone number (digits only). The claim keeps notices in order per channel
/// and address, so each of these is a recipient.
fn address_of(contact: &StoredContact, channel: &str) -> String {
    match channel {
        "email" => contact.email.clone().unwrap_or_default(),
        "zalo" => contact.zalo_id.clone().unwrap_or_default(),
        "sms" => channels::phone_digits(&contact.phone),
        _ => channel.trim_start_matches("webhook:").to_owned(),
    }
}

/// The channels of a contact that the collector has set up and the contact has an address for,
/// among those it chose (all of them when it chose none), in the order email, webhook, Zalo, SMS.
fn channels_of(contact: &StoredContact, set_up: &BTreeSet<String>) -> Vec<String> {
    let choice = contact.channels.as_deref();
    let has = |value: &Option<String>| value.as_deref().is_some_and(|text| !text.trim().is_empty());
    let mut found = Vec::new();
    if has(&contact.email) && set_up.contains("email") && channels::chosen(choice, "email") {
        found.push("email".to_owned());
    }
    if let Some(webhook) = &contact.webhook {
        let channel = format!("webhook:{webhook}");
        if set_up.contains(&channel) && channels::chosen(choice, "webhook") {
            found.push(channel);
        }
    }
    if has(&contact.zalo_id) && set_up.contains("zalo") && channels::chosen(choice, "zalo") {
        found.push("zalo".to_owned());
    }
    if !channels::phone_digits(&contact.phone).is_empty()
        && set_up.contains("sms")
        && channels::chosen(choice, "sms")
    {
        found.push("sms".to_owned());
    }
    found
}

/// The first attempt of a notice to `contact` on `channel` written at `now` (Unix ms): at once,
/// unless it is a Zalo or SMS notice that is not urgent, written during the contact's quiet
/// hours, which then waits until they end.
fn due_at(contact: &StoredContact, channel: &str, urgent: bool, now: i64) -> i64 {
    if urgent || !channels::is_short(channel) {
        return now;
    }
    contact
        .quiet_hours()
        .and_then(|quiet| quiet.release_at(now))
        .unwrap_or(now)
}

/// The id of the `index`-th notice written in one planning round at `now` (Unix ms): ordered
/// like (`now`, `index`) as text, so notices written together (say, a resolution and a closing
/// planned in one round) are claimed and sent in the order they were planned, which the claim's
/// `ORDER BY created_at, id` relies on. The low 64 bits are random.
pub(super) fn ordered_notice_id(now: i64, index: usize) -> String {
    let high = (u128::from(now.max(0).unsigned_abs()) & ((1 << 48) - 1)) << 80;
    let middle = (u128::try_from(index).unwrap_or(u128::MAX) & 0xffff) << 64;
    let low = uuid::Uuid::new_v4().as_u128() & u128::from(u64::MAX);
    uuid::Uuid::from_u128(high | middle | low).to_string()
}

/// A role as people say it.
fn role_text(role: &str) -> &'static str {
    match role {
        "leadership" => "Lãnh đạo đơn vị",
        "it_officer" => "Cán bộ chuyên trách CNTT",
        "so_on_duty" => "Trực ứng cứu sự cố của Sở",
        "so_leadership" => "Lãnh đạo Sở",
        "police" => "Công an tỉnh",
        _ => "Liên hệ",
    }
}
