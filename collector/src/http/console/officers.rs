//! Cán bộ: the IT officers' registry in the person's scope and the check against QĐ 02/2017
//! Điều 4 (qualifications) and 14.1 (the assignment decision sent to the Sở), through the same
//! functions as `cntt-collector officers list|check` (`domain::officers::gaps`,
//! `services::reports::unqualified_units`). Read only: the registry is imported by the Sở
//! (`cntt-collector officers import`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;

use super::reports::day;
use super::{render, ConsoleError, Layout, Person, Section};
use crate::domain::auth::Scope;
use crate::domain::periods::{parse_date, show_date, VIETNAM};
use crate::http::api::AppState;
use crate::services::reports;

/// The routes of this part of the console.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/officers", get(officers_show))
}

/// A degree level as people say it.
fn degree_label(level: &str) -> &'static str {
    match level {
        "intermediate" => "Trung cấp",
        "college" => "Cao đẳng",
        "university" => "Đại học",
        "master" => "Thạc sĩ",
        "doctorate" => "Tiến sĩ",
        _ => "Chưa qua đào tạo",
    }
}

/// One officer in the table.
struct OfficerRow {
    unit: String,
    unit_code: String,
    name: String,
    position: String,
    contact: String,
    degree: String,
    english: String,
    certificates: String,
    decision: String,
    period: String,
    active: bool,
    gaps: Vec<String>,
}

/// A unit without a qualified officer.
struct GapRow {
    unit: String,
    unit_code: String,
    who: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "officers.html")]
struct OfficersPage {
    layout: Layout,
    date: String,
    date_iso: String,
    officers: Vec<OfficerRow>,
    gaps: Vec<GapRow>,
    reporting: usize,
    missing_decision: Vec<String>,
}

/// Query: the day of the check, `YYYY-MM-DD` (today by default).
#[derive(Debug, Default, Deserialize)]
struct OfficersQuery {
    #[serde(default)]
    at: Option<String>,
}

/// `/officers[?at=YYYY-MM-DD]`.
async fn officers_show(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<OfficersQuery>,
) -> Result<Response, ConsoleError> {
    let date = match query.at.as_deref().filter(|text| !text.is_empty()) {
        Some(text) => parse_date(text).map_err(|_| {
            ConsoleError::BadRequest("Ngày kiểm tra phải có dạng năm-tháng-ngày.".into())
        })?,
        None => OffsetDateTime::now_utc().to_offset(VIETNAM).date(),
    };
    let on = date.to_string();
    let units = state.store.units_all().await?;
    let scope = Scope::of(&person.principal(), &units);
    let in_scope: Vec<_> = units
        .iter()
        .filter(|unit| scope.contains(unit.id))
        .cloned()
        .collect();
    let officers: Vec<_> = state
        .store
        .officers_all()
        .await?
        .into_iter()
        .filter(|officer| scope.contains(officer.unit_id))
        .collect();
    let rows = officers
        .iter()
        .map(|officer| {
            let record = &officer.record;
            let unit = units.iter().find(|unit| unit.id == officer.unit_id);
            let kind = unit.map_or("", |unit| unit.kind.as_str());
            let contact = [record.phone.as_str(), record.email.as_str()]
                .into_iter()
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join(" · ");
            let mut degree = degree_label(&record.degree_level).to_owned();
            if !record.degree_field.is_empty() {
                degree = format!("{degree}, {}", record.degree_field);
            }
            if record.it_degree {
                degree.push_str(" (CNTT)");
            }
            let decision = match (&record.decision_number, &record.decision_date) {
                (number, _) if number.is_empty() => String::new(),
                (number, Some(date)) => format!("{number} ngày {}", day(date)),
                (number, None) => number.clone(),
            };
            let period = match (&record.active_from, &record.active_to) {
                (Some(from), Some(to)) => format!("{} – {}", day(from), day(to)),
                (Some(from), None) => format!("từ {}", day(from)),
                (None, Some(to)) => format!("đến {}", day(to)),
                (None, None) => String::new(),
            };
            OfficerRow {
                unit: unit.map_or_else(|| record.unit_code.clone(), |unit| unit.name.clone()),
                unit_code: record.unit_code.clone(),
                name: record.full_name.clone(),
                position: record.position.clone(),
                contact,
                degree,
                english: record.english_level.clone(),
                certificates: record.certificates.clone(),
                decision,
                period,
                active: record.active_on(&on),
                gaps: crate::domain::officers::gaps(kind, record),
            }
        })
        .collect();
    let gaps = reports::unqualified_units(&in_scope, &officers, &state.reports.unit_kinds, &on)
        .into_iter()
        .map(|(unit, reason)| {
            // The reason never names the officer when there is one; name them here.
            let names: Vec<&str> = reports::active_officers(&officers, unit.id, &on)
                .iter()
                .map(|officer| officer.full_name.as_str())
                .collect();
            GapRow {
                unit: unit.name.clone(),
                unit_code: unit.code.clone(),
                who: names.join(", "),
                reason,
            }
        })
        .collect();
    let reporting = in_scope
        .iter()
        .filter(|unit| state.reports.unit_kinds.contains(&unit.kind) && unit.valid_on(&on))
        .count();
    let missing_decision = officers
        .iter()
        .filter(|officer| {
            officer.record.active_on(&on) && officer.record.decision_number.is_empty()
        })
        .map(|officer| {
            format!(
                "{} ({})",
                officer.record.full_name, officer.record.unit_code
            )
        })
        .collect();
    Ok(render(&OfficersPage {
        layout: Layout::new(&person, Section::Officers, "Cán bộ chuyên trách CNTT"),
        date: show_date(date),
        date_iso: on,
        officers: rows,
        gaps,
        reporting,
        missing_decision,
    }))
}
