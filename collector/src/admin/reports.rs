//! Administration of periodic reports: officers, periods and due dates, compliance, and the
//! consolidated report (`cntt-collector officers|periods|report`). Output for people is Vietnamese.

use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Context};
use time::OffsetDateTime;

use super::{audit_ok, local_time};
use crate::domain::periods::{self, show_date};
use crate::services::reports::{self, tallies, Settings};
use crate::store::{from_millis, Store};

/// `officers import FILE.csv`.
///
/// # Errors
///
/// When the file is bad or names unknown units (nothing is imported), or the database fails.
pub async fn officers_import(store: &Store, path: &Path) -> anyhow::Result<String> {
    let records = crate::domain::officers::read_csv(path)?;
    let n = store
        .officers_import(&records, OffsetDateTime::now_utc())
        .await?;
    audit_ok(
        store,
        "officer.import",
        &path.display().to_string(),
        serde_json::json!({ "officers": n }),
    )
    .await?;
    Ok(format!("imported {n} officers from {}\n", path.display()))
}

/// `officers list [--unit CODE]`.
///
/// # Errors
///
/// On a database error.
pub async fn officers_list(store: &Store, unit: Option<&str>) -> anyhow::Result<String> {
    let officers = store.officers_all().await?;
    let units = store.units_all().await?;
    let mut out = String::new();
    for officer in officers
        .iter()
        .filter(|o| unit.is_none_or(|code| o.record.unit_code == code))
    {
        let record = &officer.record;
        let kind = units
            .iter()
            .find(|u| u.id == officer.unit_id)
            .map_or("", |u| u.kind.as_str());
        let gaps = crate::domain::officers::gaps(kind, record);
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  {}{}  tiếng Anh {}  QĐ {} {}  {}",
            record.unit_code,
            record.full_name,
            or_dash(&record.position),
            or_dash(&record.email),
            record.degree_level,
            if record.it_degree { " (CNTT)" } else { "" },
            or_dash(&record.english_level),
            or_dash(&record.decision_number),
            record.decision_date.as_deref().unwrap_or(""),
            if gaps.is_empty() {
                "đạt chuẩn".to_owned()
            } else {
                format!("chưa đạt: {}", gaps.join(", "))
            }
        );
    }
    if out.is_empty() {
        out.push_str("no officers; add them with `cntt-collector officers import FILE.csv`\n");
    }
    Ok(out)
}

/// `officers check [--at DATE]`: units with no qualified officer, with the reason.
///
/// # Errors
///
/// On a database error or a bad date.
pub async fn officers_check(
    store: &Store,
    settings: &Settings,
    at: Option<&str>,
) -> anyhow::Result<String> {
    let date = match at {
        Some(text) => periods::parse_date(text)?,
        None => OffsetDateTime::now_utc().to_offset(periods::VIETNAM).date(),
    };
    let units = store.units_all().await?;
    let officers = store.officers_all().await?;
    let gaps =
        reports::unqualified_units(&units, &officers, &settings.unit_kinds, &date.to_string());
    let reporting = units
        .iter()
        .filter(|u| settings.unit_kinds.contains(&u.kind) && u.valid_on(&date.to_string()))
        .count();
    let mut out = format!(
        "Đơn vị chưa có cán bộ chuyên trách CNTT đạt chuẩn (QĐ 02/2017 Điều 4) ngày {}: {} / {} đơn vị\n",
        show_date(date),
        gaps.len(),
        reporting
    );
    for (unit, reason) in &gaps {
        // The reason never names the officer when there is one; name them here, as written.
        let names: Vec<&str> = reports::active_officers(&officers, unit.id, &date.to_string())
            .iter()
            .map(|officer| officer.full_name.as_str())
            .collect();
        let who = match names.as_slice() {
            [name] => format!(" (cán bộ: {name})"),
            _ => String::new(),
        };
        let _ = writeln!(out, "{}  {}{who}: {reason}", unit.code, unit.name);
    }
    let missing_decision: Vec<&str> = officers
        .iter()
        .filter(|o| o.record.active_on(&date.to_string()) && o.record.decision_number.is_empty())
        .map(|o| o.record.full_name.as_str())
        .collect();
    if !missing_decision.is_empty() {
        let _ = writeln!(
            out,
            "Chưa gửi quyết định phân công về Sở (Điều 14.1): {}",
            missing_decision.join(", ")
        );
    }
    Ok(out)
}

/// `periods --scheme NAME --year YYYY`.
///
/// # Errors
///
/// When the scheme is unknown or the database fails.
pub async fn periods_show(
    store: &Store,
    settings: &Settings,
    scheme: &str,
    year: i32,
) -> anyhow::Result<String> {
    let Some(scheme) = settings.scheme(scheme) else {
        bail!(
            "no reporting scheme is named {scheme:?}; known: {}",
            settings
                .schemes
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let overrides = store.period_overrides().await?;
    let list = scheme.periods(year, &settings.holidays, &overrides);
    Ok(periods::table(scheme, &list))
}

/// `periods override --scheme NAME --period LABEL --due DATE --reason TEXT`.
///
/// # Errors
///
/// When the period or date is bad, the reason empty, or the database fails.
pub async fn period_override(
    store: &Store,
    settings: &Settings,
    scheme: &str,
    period: &str,
    due: &str,
    reason: &str,
) -> anyhow::Result<String> {
    if reason.trim().is_empty() {
        bail!("--reason must say why the due date changes (e.g. the letter that set it)");
    }
    let (found, manual) = reports::override_due(
        store,
        settings,
        scheme,
        period,
        due,
        reason,
        &super::cli_actor(),
        OffsetDateTime::now_utc(),
    )
    .await?;
    audit_ok(
        store,
        "period.override",
        &format!("{}:{}", manual.scheme, manual.period),
        serde_json::json!({ "due": manual.due.to_string(), "rule_due": found.due.to_string(), "reason": manual.reason }),
    )
    .await?;
    Ok(format!(
        "hạn nộp {} ({}) đặt thành {} thay cho {}: {}\n",
        found.label,
        found.scheme,
        show_date(manual.due),
        show_date(found.due),
        manual.reason
    ))
}

/// `report status --period LABEL [--scheme NAME]`: each unit's standing and the rates.
///
/// # Errors
///
/// When the period is unknown or the database fails.
pub async fn report_status(
    store: &Store,
    settings: &Settings,
    period: &str,
    scheme: Option<&str>,
) -> anyhow::Result<String> {
    let period = reports::find_period(store, settings, period, scheme).await?;
    let rows = reports::compliance(store, settings, &period, OffsetDateTime::now_utc()).await?;
    let mut out = format!(
        "Báo cáo {} ({}): số liệu {} – {}, hạn nộp {}\n",
        period.label_vi,
        period.scheme,
        show_date(period.data_from),
        show_date(period.data_to),
        show_date(period.due)
    );
    for row in &rows {
        // An ended unit's report counts for the unit answering for it, and both lines say so.
        let mut note = String::new();
        if let Some(code) = &row.counted_for {
            let _ = write!(note, "; đã kết thúc, tính cho {code}");
        }
        if !row.includes.is_empty() {
            let _ = write!(note, "; gồm báo cáo của {}", row.includes.join(", "));
        }
        let _ = writeln!(
            out,
            "{}  {}  {}{}{note}",
            row.unit_code,
            row.unit_name,
            row.standing.vi(),
            row.first_submitted_at.map_or(String::new(), |at| format!(
                " (nộp {}, {} phiên bản)",
                local_time(from_millis(at)),
                row.versions
            ))
        );
    }
    let (districts, province) = tallies(&rows);
    let _ = writeln!(out, "Tỷ lệ nộp:");
    for (code, (name, tally)) in districts.iter().chain(std::iter::once((
        &"*".to_owned(),
        &("Toàn tỉnh".to_owned(), province.clone()),
    ))) {
        let _ = writeln!(
            out,
            "  {name} ({code}): {} / {} đơn vị ({}), đúng hạn {}, trễ hạn {}, chưa nộp {}, chưa đến hạn {}",
            tally.on_time + tally.late,
            tally.required,
            tally
                .rate()
                .map_or("—".to_owned(), |rate| format!("{:.1}%", rate * 100.0).replace('.', ",")),
            tally.on_time,
            tally.late,
            tally.missing,
            tally.pending
        );
    }
    Ok(out)
}

/// `report consolidate --period LABEL [--scheme NAME] --out DIR`: writes the XLSX and DOCX.
///
/// # Errors
///
/// When the period is unknown, the folder cannot be written, or the database fails.
pub async fn report_consolidate(
    store: &Store,
    settings: &Settings,
    period: &str,
    scheme: Option<&str>,
    out: &Path,
) -> anyhow::Result<String> {
    let period = reports::find_period(store, settings, period, scheme).await?;
    let report =
        crate::documents::consolidate::build(store, settings, &period, OffsetDateTime::now_utc())
            .await?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for format in ["xlsx", "docx"] {
        let bytes = if format == "xlsx" {
            crate::documents::consolidate::xlsx(&report)?
        } else {
            crate::documents::consolidate::docx(&report)?
        };
        let path = out.join(crate::documents::consolidate::file_name(&period, format));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    audit_ok(
        store,
        "report.consolidate",
        &format!("{}:{}", period.scheme, period.label),
        serde_json::json!({ "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>() }),
    )
    .await?;
    let mut text = format!(
        "Báo cáo tổng hợp {}: {} đơn vị, tỷ lệ nộp toàn tỉnh {}\n",
        period.label_vi,
        report.rows.len(),
        rate_text(&report.province)
    );
    for path in written {
        let _ = writeln!(text, "  {}", path.display());
    }
    Ok(text)
}

fn rate_text(rate: &crate::documents::consolidate::DistrictRate) -> String {
    if rate.required == 0 {
        return "—".to_owned();
    }
    let share = f64::from(rate.on_time + rate.late) / f64::from(rate.required) * 100.0;
    format!("{share:.1}%").replace('.', ",")
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "—"
    } else {
        text
    }
}
