//! Administration commands run on the collector's host (`cntt-collector units|enroll-token|...`).
//!
//! They talk to the database directly, like the server does, and write every change to the audit
//! log with the operating-system user as the actor. Each returns the text to print, so `main` stays
//! a thin parser and tests can check the output.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use time::OffsetDateTime;

use crate::config::RetentionConfig;
use crate::domain::auth::{hash_secret, new_secret, Role, SecretKind};
use crate::services::units::{read_csv, render_tree, TreeOptions};
use crate::store::{
    from_millis, AuditFilter, BreakKind, ChainReport, NewApiToken, NewAuditEntry, RetentionPolicy,
    RetentionSummary, Store, Unit,
};

pub mod maintenance;
pub mod people;
pub mod reports;

/// Who is running a command, for the audit log: `cli:<user>`, the name of the process's real user
/// id (from `/proc/self/status` and `/etc/passwd`), or `cli:uid:<n>` when the id has no name.
/// Environment variables such as `$USER` or `$SUDO_USER` are not used: anyone can set them
/// (issue 13, L4). Under `sudo` this is `cli:root`; the system's own log names who ran sudo.
pub fn cli_actor() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(uid) = real_uid(&status) else {
        return "cli:unknown".to_owned();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    match user_name(&passwd, uid) {
        Some(name) => format!("cli:{name}"),
        None => format!("cli:uid:{uid}"),
    }
}

/// The real user id in the text of `/proc/self/status` (`Uid:\treal\teffective\t…`).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The name of `uid` in the text of `/etc/passwd` (`name:x:uid:gid:…`).
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        (uid_field.parse::<u32>().ok() == Some(uid) && !name.is_empty()).then(|| name.to_owned())
    })
}

async fn audit_ok(
    store: &Store,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = NewAuditEntry {
        actor: cli_actor(),
        action: action.into(),
        target: target.into(),
        outcome: "ok",
        remote_addr: None,
        details,
    };
    store.audit(&entry, OffsetDateTime::now_utc()).await
}

async fn unit(store: &Store, code: &str) -> anyhow::Result<Unit> {
    match store.unit_by_code(code).await? {
        Some(unit) => Ok(unit),
        None => bail!("no unit with code {code:?}; `cntt-collector units list` shows them"),
    }
}

fn local_time(at: OffsetDateTime) -> String {
    // Vietnam has had UTC+7 without daylight saving since 1975.
    let offset = time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset");
    let format = time::macros::format_description!("[day]/[month]/[year] [hour]:[minute]:[second]");
    at.to_offset(offset).format(&format).expect("dates format")
}

/// `units import FILE.csv`.
///
/// # Errors
///
/// When the file is bad (nothing is imported) or the database fails.
pub async fn units_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let records = read_csv(path)?;
    let summary = store
        .units_import(&records, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "unit.import",
        &path.display().to_string(),
        serde_json::to_value(&summary)?,
    )
    .await?;
    Ok(format!(
        "imported {} units from {}: {} created, {} updated, {} unchanged\n",
        records.len(),
        path.display(),
        summary.created,
        summary.updated,
        summary.unchanged
    ))
}

/// `units list`.
///
/// # Errors
///
/// When the root is unknown or the database fails.
pub async fn units_list(store: &Store, options: &TreeOptions) -> anyhow::Result<String> {
    render_tree(&store.units_all().await?, options)
}

/// `enroll-token create`.
///
/// # Errors
///
/// When the unit is unknown, `uses` is 0, or the database fails.
pub async fn enroll_token_create(
    store: &Store,
    unit_code: &str,
    uses: u32,
    ttl: Duration,
    note: &str,
) -> anyhow::Result<String> {
    if uses == 0 {
        bail!("--uses must be at least 1");
    }
    let unit = unit(store, unit_code).await?;
    let crate::services::enrollment::Created {
        id,
        secret,
        expires_at,
    } = crate::services::enrollment::create(
        store,
        &unit,
        uses,
        ttl,
        note,
        &cli_actor(),
        None,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(format!(
        "{}\n\nEnrollment token {id} for {} ({}): {uses} use(s), valid until {} (giờ Việt Nam).\n\
         It is shown only once. On the agent's machine run the command below and paste the token\n\
         when asked (or pipe it in, or set CNTT_ENROLL_TOKEN); never put it on the command line,\n\
         where other users see it in `ps`:\n  \
         cntt-agent enroll --server https://COLLECTOR:8443 --ca ca.pem\n",
        secret.expose(),
        unit.code,
        unit.name,
        local_time(expires_at),
    ))
}

/// `enroll-token list`.
///
/// # Errors
///
/// When the database fails.
pub async fn enroll_tokens_list(store: &Store) -> anyhow::Result<String> {
    let now = crate::store::millis(OffsetDateTime::now_utc());
    let mut out = String::from("ID\tUNIT\tUSES\tEXPIRES\tSTATE\tNOTE\n");
    for token in store.enroll_tokens_list().await? {
        let state = match token.revoked_at {
            Some(_) => "revoked",
            None if token.expires_at <= now => "expired",
            None if token.uses >= token.uses_allowed => "used up",
            None => "active",
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}/{}\t{}\t{state}\t{}",
            token.id,
            token.unit_code,
            token.uses,
            token.uses_allowed,
            local_time(from_millis(token.expires_at)),
            token.note
        );
    }
    Ok(out)
}

/// `enroll-token revoke ID`.
///
/// # Errors
///
/// When no active token has that id, or the database fails.
pub async fn enroll_token_revoke(store: &Store, id: i64) -> anyhow::Result<String> {
    if !store
        .enroll_token_revoke(id, OffsetDateTime::now_utc())
        .await?
    {
        bail!("no active enrollment token with id {id}; `cntt-collector enroll-token list` shows them");
    }
    audit_ok(
        store,
        "enroll_token.revoke",
        &id.to_string(),
        serde_json::Value::Null,
    )
    .await?;
    Ok(format!("enrollment token {id} revoked\n"))
}

/// `api-token create`.
///
/// # Errors
///
/// When an officer token has no unit, the unit is unknown, or the database fails.
pub async fn api_token_create(
    store: &Store,
    role: Role,
    unit_code: Option<&str>,
    name: &str,
    ttl: Option<Duration>,
) -> anyhow::Result<String> {
    if role == Role::Officer && unit_code.is_none() {
        bail!("an officer token needs --unit CODE: officers see their unit and its children only");
    }
    if role == Role::Admin && unit_code.is_some() {
        bail!("an admin token covers the whole province; drop --unit or use --role officer");
    }
    let unit = match unit_code {
        Some(code) => Some(unit(store, code).await?),
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let secret = new_secret(SecretKind::Api);
    let token = NewApiToken {
        token_hash: hash_secret(secret.expose()),
        name: name.to_owned(),
        role: role.to_string(),
        unit_id: unit.as_ref().map(|unit| unit.id),
        // Tokens expire by default (issue 13): `limits.api_token_ttl`, a year.
        expires_at: Some(
            now + ttl.unwrap_or_else(|| crate::config::LimitsConfig::default().api_token_ttl),
        ),
        created_by: cli_actor(),
    };
    let id = store.api_token_create(&token, now).await?;
    let scope = unit.as_ref().map_or_else(
        || "toàn tỉnh".to_owned(),
        |unit| format!("{} {}", unit.code, unit.name),
    );
    audit_ok(
        store,
        "api_token.create",
        &id.to_string(),
        serde_json::json!({ "role": role, "unit": unit.as_ref().map(|unit| &unit.code), "name": name }),
    )
    .await?;
    Ok(format!(
        "{}\n\nAPI token {id} ({role}, {scope}) for {name:?}, valid until {} (giờ Việt Nam). It is shown only once; use it as\n  \
         Authorization: Bearer <token>\n",
        secret.expose(),
        local_time(token.expires_at.expect("new API tokens always expire")),
    ))
}

/// `api-token list`.
///
/// # Errors
///
/// When the database fails.
pub async fn api_tokens_list(store: &Store) -> anyhow::Result<String> {
    let mut out = String::from("ID\tROLE\tUNIT\tNAME\tSTATE\tEXPIRES\tLAST USED\n");
    let now = crate::store::millis(OffsetDateTime::now_utc());
    for token in store.api_tokens_list().await? {
        let state = match (token.revoked_at, token.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{state}\t{}\t{}",
            token.id,
            token.role,
            token.unit_code.as_deref().unwrap_or("-"),
            token.name,
            token
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| local_time(from_millis(at))),
            token
                .last_used_at
                .map_or_else(|| "-".to_owned(), |at| local_time(from_millis(at))),
        );
    }
    Ok(out)
}

/// `api-token revoke ID`.
///
/// # Errors
///
/// When no active token has that id, or the database fails.
pub async fn api_token_revoke(store: &Store, id: i64) -> anyhow::Result<String> {
    if !store
        .api_token_revoke(id, OffsetDateTime::now_utc())
        .await?
    {
        bail!("no active API token with id {id}; `cntt-collector api-token list` shows them");
    }
    audit_ok(
        store,
        "api_token.revoke",
        &id.to_string(),
        serde_json::Value::Null,
    )
    .await?;
    Ok(format!("API token {id} revoked\n"))
}

/// `agents list`.
///
/// # Errors
///
/// When the database fails.
pub async fn agents_list(store: &Store) -> anyhow::Result<String> {
    let mut out = String::from("ID\tUNIT\tHOST\tVERSION\tLAST SEEN\tSTATE\n");
    for agent in store.agents_list(None).await? {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            agent.id,
            agent.unit_code,
            agent.hostname,
            agent.agent_version,
            agent
                .last_seen_at
                .map_or_else(|| "never".to_owned(), |at| local_time(from_millis(at))),
            if agent.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            },
        );
    }
    Ok(out)
}

/// `agents revoke ID`.
///
/// # Errors
///
/// When no active agent has that id, or the database fails.
pub async fn agent_revoke(store: &Store, id: &str) -> anyhow::Result<String> {
    if !store.agent_revoke(id, OffsetDateTime::now_utc()).await? {
        bail!("no active agent with id {id}; `cntt-collector agents list` shows them");
    }
    audit_ok(store, "agent.revoke", id, serde_json::Value::Null).await?;
    Ok(format!(
        "agent {id} revoked; its credential is refused from now on\n"
    ))
}

/// `audit list`.
///
/// # Errors
///
/// When the database fails.
pub async fn audit_list(store: &Store, action: Option<&str>, limit: u32) -> anyhow::Result<String> {
    let filter = AuditFilter {
        action: action.map(str::to_owned),
        limit: i64::from(limit),
    };
    let mut out = String::from("TIME (+07)\tACTOR\tACTION\tTARGET\tOUTCOME\tFROM\tDETAILS\n");
    for entry in store
        .audit_list(&filter)
        .await
        .context("reading the audit log")?
    {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            local_time(from_millis(entry.at)),
            entry.actor,
            entry.action,
            entry.target,
            entry.outcome,
            entry.remote_addr.as_deref().unwrap_or("-"),
            entry.details
        );
    }
    Ok(out)
}

/// `audit verify`: recomputes the audit log's hash chain and says, in Vietnamese, how many
/// entries were checked and the first broken one. Returns the text and whether the chain is intact.
///
/// # Errors
///
/// When the database fails.
pub async fn audit_verify(store: &Store) -> anyhow::Result<(String, bool)> {
    let report = store
        .audit_verify()
        .await
        .context("verifying the audit log's hash chain")?;
    Ok((render_chain_report(&report), report.broken.is_none()))
}

/// What `audit verify` prints; every sentence of it is here.
fn render_chain_report(report: &ChainReport) -> String {
    let mut out = String::new();
    let range = match (report.first_id, report.last_id) {
        (Some(first), Some(last)) => format!(" (từ mục #{first} đến mục #{last})"),
        _ => String::new(),
    };
    match &report.broken {
        None if report.checked == 0 => {
            out.push_str("Nhật ký kiểm toán chưa có mục nào để kiểm tra.\n");
        }
        None => {
            let _ = writeln!(
                out,
                "Chuỗi băm của nhật ký kiểm toán nguyên vẹn: đã kiểm tra {} mục{range}.",
                report.checked
            );
        }
        Some(broken) => {
            let _ = writeln!(
                out,
                "CHUỖI BĂM BỊ PHÁ VỠ: nhật ký kiểm toán đã bị sửa ngoài cntt-collector.\n\
                 Đã kiểm tra {} mục nguyên vẹn{range} trước chỗ hỏng.",
                report.checked
            );
            if let Some(entry) = &broken.entry {
                let _ = writeln!(
                    out,
                    "Mục hỏng đầu tiên: #{} lúc {} — {} {} {} ({}).",
                    entry.id,
                    local_time(from_millis(entry.at)),
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.outcome
                );
            }
            let why = match &broken.kind {
                BreakKind::Mismatch { stored, computed } => format!(
                    "Mã băm lưu trong mục ({stored}) khác mã băm tính lại ({computed}): mục này, \
                     hoặc mục ngay trước nó, đã bị sửa, chèn thêm hoặc xoá."
                ),
                BreakKind::MissingHash => "Mục này không có mã băm dù được ghi sau khi chuỗi băm \
                     bắt đầu: nó đã được chèn ngoài cntt-collector."
                    .to_owned(),
                BreakKind::BeforeBase => format!(
                    "Mục này lẽ ra đã bị xoá theo thời hạn lưu giữ (mốc neo là mục #{}): bảng \
                     audit_chain đã bị sửa.",
                    report.base_id
                ),
                BreakKind::Head { head_id, last_id } => format!(
                    "Mục mới nhất còn lại là #{last_id}, nhưng mục mới nhất đã được ghi là \
                     #{head_id}: các mục cuối đã bị xoá, hoặc bảng audit_chain đã bị sửa."
                ),
            };
            let _ = writeln!(out, "{why}");
            out.push_str(
                "Hãy giữ nguyên cơ sở dữ liệu, đối chiếu với bản sao trên máy chủ syslog \
                 ([audit.syslog]) và báo cho bộ phận phụ trách an toàn thông tin.\n",
            );
        }
    }
    if report.base_id > 0 {
        let _ = writeln!(
            out,
            "Các mục đến #{} đã được xoá theo thời hạn lưu giữ (retention.audit); chuỗi được kiểm \
             từ mã băm neo của mục đó: {}.",
            report.base_id, report.base_hash
        );
    }
    if report.unhashed > 0 {
        let _ = writeln!(
            out,
            "{} mục được ghi trước khi có chuỗi băm (không có mã băm riêng); chúng được bảo vệ qua \
             mục có mã băm đầu tiên sau chúng.",
            report.unhashed
        );
    }
    out
}

/// `retention run [--dry-run]`: applies the retention policy once, as the server's job does every
/// `retention.run_every`, or with `dry_run` only counts what it would remove.
///
/// # Errors
///
/// When the database fails; batches committed before the failure stay done.
pub async fn retention_run(
    store: &Store,
    config: &RetentionConfig,
    dry_run: bool,
) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let policy = RetentionPolicy::from(config);
    let summary = if dry_run {
        store.retention_preview(now, &policy).await?
    } else {
        let summary = store.retention_run(now, &policy, &cli_actor()).await?;
        if !summary.is_empty() {
            crate::jobs::retention::audit(store, &cli_actor(), &summary).await;
        }
        summary
    };
    Ok(render_retention(now, config, &summary, dry_run))
}

/// The table `retention run` prints.
fn render_retention(
    now: OffsetDateTime,
    config: &RetentionConfig,
    summary: &RetentionSummary,
    dry_run: bool,
) -> String {
    let before = |keep: Duration| local_time(now - keep);
    let mut out = if dry_run {
        format!(
            "dry run at {} (+07): nothing changed; a run now would remove:\n",
            local_time(now)
        )
    } else {
        format!(
            "retention run at {} (+07) in {} transaction(s):\n",
            local_time(now),
            summary.transactions
        )
    };
    out.push_str("ROWS\tWHAT\tOLDER THAN (+07)\n");
    let _ = writeln!(
        out,
        "{}\tprobe results rolled up into {} agent-target-hours, then deleted\t{}",
        summary.probe_results_rolled_up,
        summary.rollup_hours,
        before(config.raw)
    );
    let _ = writeln!(
        out,
        "{}\theartbeat and probe_result events deleted\t{}",
        summary.events_deleted,
        before(config.raw)
    );
    let _ = writeln!(
        out,
        "{}\taudit entries deleted\t{}",
        summary.audit_deleted,
        before(config.audit)
    );
    match config.incidents {
        Some(keep) => {
            let _ = writeln!(
                out,
                "{}\tclosed incidents deleted, with {} timeline entries\t{}",
                summary.incidents_deleted,
                summary.timeline_deleted,
                before(keep)
            );
        }
        None => {
            out.push_str("-\tclosed incidents: kept forever (retention.incidents is not set)\t-\n")
        }
    }
    out
}

/// `contacts import FILE`.
///
/// # Errors
///
/// When the file is bad (nothing is imported) or names an unknown unit.
pub async fn contacts_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let records = crate::services::contacts::read_csv(path)?;
    let n = store
        .contacts_import(&records, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "contact.import",
        &path.display().to_string(),
        serde_json::json!({ "contacts": n }),
    )
    .await?;
    Ok(format!("imported {n} contacts from {}\n", path.display()))
}

/// `systems import FILE`: creates or updates information systems, all or nothing; audited.
///
/// # Errors
///
/// When the file is bad, a unit is unknown, or on a database error.
pub async fn systems_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let systems = crate::services::systems::read_systems(path)?;
    let n = store
        .info_systems_import(&systems, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "system.import",
        &path.display().to_string(),
        serde_json::json!({ "systems": n }),
    )
    .await?;
    Ok(format!("imported {n} systems from {}\n", path.display()))
}

/// `systems profiles FILE`: creates or updates units' reporting profiles; audited.
///
/// # Errors
///
/// When the file is bad, a unit is unknown, or on a database error.
pub async fn profiles_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let profiles = crate::services::systems::read_profiles(path)?;
    let n = store
        .unit_profiles_import(&profiles, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "unit_profile.import",
        &path.display().to_string(),
        serde_json::json!({ "profiles": n }),
    )
    .await?;
    Ok(format!(
        "imported {n} unit profiles from {}\n",
        path.display()
    ))
}

/// `systems list`.
///
/// # Errors
///
/// On a database error.
pub async fn systems_list(store: &Store) -> anyhow::Result<String> {
    let systems = store.info_systems_list().await?;
    if systems.is_empty() {
        return Ok(
            "no systems yet; import some with `cntt-collector systems import FILE`\n".into(),
        );
    }
    let mut out = format!(
        "{:<12} {:<20} {:<6} {:<40} {}\n",
        "UNIT", "CODE", "LEVEL", "NAME", "DOMAINS"
    );
    for system in systems {
        let _ = writeln!(
            out,
            "{:<12} {:<20} {:<6} {:<40} {}",
            system.unit_code, system.code, system.security_level, system.name, system.domains
        );
    }
    Ok(out)
}

/// `contacts list`.
///
/// # Errors
///
/// On a database error.
pub async fn contacts_list(store: &Store) -> anyhow::Result<String> {
    let contacts = store.contacts_list().await?;
    if contacts.is_empty() {
        return Ok(
            "no contacts yet; import some with `cntt-collector contacts import FILE`\n".into(),
        );
    }
    let mut out = format!(
        "{:<5} {:<12} {:<14} {:<28} {:<34} {:<12} {:<14} {:<16} {:<18} {}\n",
        "ID", "UNIT", "ROLE", "NAME", "EMAIL", "WEBHOOK", "PHONE", "ZALO", "CHANNELS", "QUIET"
    );
    for contact in contacts {
        let phone = crate::domain::channels::phone_digits(&contact.phone);
        let _ = writeln!(
            out,
            "{:<5} {:<12} {:<14} {:<28} {:<34} {:<12} {:<14} {:<16} {:<18} {}",
            contact.id,
            contact.unit_code,
            contact.role,
            contact.name,
            contact.email.as_deref().unwrap_or("-"),
            contact.webhook.as_deref().unwrap_or("-"),
            if phone.is_empty() {
                "-"
            } else {
                phone.as_str()
            },
            contact.zalo_id.as_deref().unwrap_or("-"),
            contact.channels.as_deref().unwrap_or("default"),
            contact
                .quiet_hours()
                .map_or_else(|| "-".to_owned(), |quiet| quiet.show()),
        );
    }
    Ok(out)
}

/// What `contacts set` changes; each `Some` sets that setting (see [`contacts_set`]).
#[derive(Debug, Clone, Default)]
pub struct ContactSet {
    /// The Zalo user id; `-` or empty for none.
    pub zalo: Option<String>,
    /// The channels chosen (`email,sms`); `default` for every channel it has an address for.
    pub channels: Option<String>,
    /// Quiet hours (`22:00-06:00`, Vietnam time); `none` for none.
    pub quiet_hours: Option<String>,
}

/// `contacts set ID [--zalo ID] [--channels LIST] [--quiet-hours HH:MM-HH:MM]`: changes one
/// contact's Zalo user id, choice of channels or quiet hours; audited.
///
/// # Errors
///
/// When a value is bad, nothing is to change, the contact is unknown, or on a database error.
pub async fn contacts_set(store: &Store, id: i64, set: &ContactSet) -> anyhow::Result<String> {
    use crate::domain::channels::{parse_choice, QuietHours};
    let zalo_id = set.zalo.as_deref().map(|zalo| {
        let zalo = zalo.trim();
        (!zalo.is_empty() && zalo != "-").then(|| zalo.to_owned())
    });
    if zalo_id.as_ref().is_some_and(|zalo| {
        zalo.as_deref()
            .is_some_and(|zalo| zalo.contains(char::is_whitespace))
    }) {
        bail!("a Zalo user id has no spaces");
    }
    let change = crate::store::ContactChange {
        zalo_id,
        channels: set
            .channels
            .as_deref()
            .map(parse_choice)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        quiet_hours: set
            .quiet_hours
            .as_deref()
            .map(QuietHours::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    if change == crate::store::ContactChange::default() {
        bail!("nothing to change: give --zalo, --channels or --quiet-hours");
    }
    if !store
        .contact_change(id, &change, OffsetDateTime::now_utc())
        .await?
    {
        bail!("no contact {id}; `cntt-collector contacts list` shows their ids");
    }
    audit_ok(
        store,
        "contact.update",
        &format!("contact:{id}"),
        serde_json::json!({
            "zalo_id": change.zalo_id,
            "channels": change.channels,
            "quiet_hours": change.quiet_hours.map(|quiet| quiet.map(|quiet| quiet.show())),
        }),
    )
    .await?;
    let contacts = store.contacts_list().await?;
    let Some(contact) = contacts.iter().find(|contact| contact.id == id) else {
        bail!("contact {id} vanished while it was changed");
    };
    Ok(format!(
        "contact {id} ({}): zalo {}, channels {}, quiet hours {}\n",
        contact.name,
        contact.zalo_id.as_deref().unwrap_or("-"),
        contact.channels.as_deref().unwrap_or("default"),
        contact
            .quiet_hours()
            .map_or_else(|| "none".to_owned(), |quiet| quiet.show()),
    ))
}

/// `notify test --contact ID|EMAIL`: writes a test notice to each of the contact's channels and
/// sends it now, so an administrator sees on day one whether the setup works.
///
/// # Errors
///
/// When the contact is unknown, has no channel that is set up, or every send failed.
pub async fn notify_test(
    store: &Store,
    settings: &crate::jobs::notify::Settings,
    contact: &str,
) -> anyhow::Result<String> {
    let contacts = store.contacts_list().await?;
    let Some(found) = contacts
        .iter()
        .find(|c| c.id.to_string() == contact || c.email.as_deref() == Some(contact))
    else {
        bail!("no contact {contact:?}; `cntt-collector contacts list` shows their ids and emails");
    };
    let set_up = settings.channels_set_up();
    let channels = crate::jobs::notify::deliver::Channels::new(settings)?;
    let holder = format!("cli-{}", uuid::Uuid::new_v4());
    let now = OffsetDateTime::now_utc();
    let notices = store
        .notice_test(found, &set_up, &settings.subject_prefix, &holder, now)
        .await?;
    if notices.is_empty() {
        bail!(
            "{} has no channel the collector has set up among those it chose: add [notify.email], [notify.zalo], [notify.sms] or a [[notify.webhook]] named {:?} to the config",
            found.name,
            found.webhook.as_deref().unwrap_or("…")
        );
    }
    let mut out = String::new();
    let mut sent = 0;
    for notice in &notices {
        match channels.send(notice).await {
            Ok(()) => {
                store
                    .notice_sent(&notice.id, &holder, OffsetDateTime::now_utc())
                    .await?;
                sent += 1;
                let _ = writeln!(
                    out,
                    "sent a test notice to {} by {}",
                    notice.address, notice.channel
                );
            }
            Err(err) => {
                store
                    .notice_failed(
                        &notice.id,
                        &holder,
                        &format!("{err:#}"),
                        OffsetDateTime::now_utc(),
                        true,
                    )
                    .await?;
                let _ = writeln!(
                    out,
                    "FAILED to send to {} by {}: {err:#}",
                    notice.address, notice.channel
                );
            }
        }
    }
    audit_ok(
        store,
        "notify.test",
        &found.name,
        serde_json::json!({ "contact": found.id, "sent": sent, "channels": notices.len() }),
    )
    .await?;
    if sent == 0 {
        bail!("{}no test notice could be sent", out);
    }
    Ok(out)
}

/// `notify rules import FILE`: replaces the routing rules.
///
/// # Errors
///
/// When the file is bad or names an unknown unit; nothing changes then.
pub async fn notify_rules_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let records = crate::domain::notice_rules::parse_rules_csv(&bytes)
        .with_context(|| format!("in {}", path.display()))?;
    let n = store
        .notify_rules_replace(&records, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "notify.rules.import",
        &path.display().to_string(),
        serde_json::json!({ "rules": n }),
    )
    .await?;
    Ok(format!(
        "imported {n} routing rules from {}; they replace the previous ones\n",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn retention_table_says_what_went_and_what_stays() {
        let now = datetime!(2026-11-23 03:00 UTC);
        let summary = RetentionSummary {
            probe_results_rolled_up: 8640,
            rollup_hours: 72,
            events_deleted: 10080,
            audit_deleted: 3,
            incidents_deleted: 2,
            timeline_deleted: 7,
            transactions: 9,
        };
        let mut config = RetentionConfig::default();
        expect![[r#"
            retention run at 23/11/2026 10:00:00 (+07) in 9 transaction(s):
            ROWS	WHAT	OLDER THAN (+07)
            8640	probe results rolled up into 72 agent-target-hours, then deleted	24/10/2026 10:00:00
            10080	heartbeat and probe_result events deleted	24/10/2026 10:00:00
            3	audit entries deleted	23/11/2025 10:00:00
            -	closed incidents: kept forever (retention.incidents is not set)	-
        "#]]
        .assert_eq(&render_retention(now, &config, &summary, false));
        config.incidents = Some(Duration::from_secs(1825 * 86_400));
        expect![[r#"
            dry run at 23/11/2026 10:00:00 (+07): nothing changed; a run now would remove:
            ROWS	WHAT	OLDER THAN (+07)
            8640	probe results rolled up into 72 agent-target-hours, then deleted	24/10/2026 10:00:00
            10080	heartbeat and probe_result events deleted	24/10/2026 10:00:00
            3	audit entries deleted	23/11/2025 10:00:00
            2	closed incidents deleted, with 7 timeline entries	24/11/2021 10:00:00
        "#]]
        .assert_eq(&render_retention(now, &config, &summary, true));
    }

    #[test]
    fn the_actor_comes_from_the_user_id_not_the_environment() {
        let status = "Name:\tcntt-collector\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(real_uid(status), Some(1000));
        assert_eq!(real_uid("Name:\tx\n"), None);
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnguyenvana:x:1000:1000:Nguyễn Văn A:/home/nguyenvana:/bin/bash\n";
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("nguyenvana"));
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 4242), None);
        // Setting $USER changes nothing (issue 13, L4).
        let before = cli_actor();
        assert!(
            before.starts_with("cli:") && before != "cli:unknown",
            "{before}"
        );
    }
}
