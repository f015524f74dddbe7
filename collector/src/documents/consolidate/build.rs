//! Assembles a [`Consolidated`] report of one period from the database: compliance, figures and
//! officers of every reporting unit, tallied per group and for the province.
//!
//! Units that ended before the due date keep their row ("Không phải nộp") with a note, while
//! their reports, incidents and machines count in the row of the unit answering for them on the
//! due date ([`reports::attribution`]), so nothing an officer did is dropped and nothing is
//! counted twice. Groups follow the hierarchy in force on the due date ([`reports::group_of`]).

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{
    mean_share, Consolidated, DistrictRate, DocumentHeader, Extension, SubmissionState, UnitRow,
};
use crate::domain::periods::{Period, VIETNAM};
use crate::services::reports::{self, Settings, Standing};
use crate::store::{from_millis, millis, Store, Unit};

/// The file name of the consolidated report of `period` in `format` (`xlsx` or `docx`).
pub fn file_name(period: &Period, format: &str) -> String {
    format!(
        "bao-cao-tong-hop-{}-{}.{format}",
        period.scheme, period.label
    )
}

fn state(standing: Standing) -> SubmissionState {
    match standing {
        Standing::OnTime => SubmissionState::OnTime,
        Standing::Late => SubmissionState::Late,
        Standing::Missing => SubmissionState::Missing,
        Standing::Pending => SubmissionState::Pending,
        Standing::NotRequired => SubmissionState::NotRequired,
    }
}

/// Number of the section "difficulties and proposals" in the officer's report.
const DIFFICULTIES: &str = "difficulties";

/// What the officer wrote under "difficulties and proposals" in report version `id`, if it reads.
async fn difficulties(store: &Store, id: &str) -> anyhow::Result<String> {
    let Some((_, document)) = store.report(id).await? else {
        return Ok(String::new());
    };
    let Ok(report) = cntt_common::report::parse(&document) else {
        return Ok(String::new());
    };
    Ok(report.section(DIFFICULTIES).unwrap_or_default().to_owned())
}

/// The consolidated report of `period` as of `now`.
///
/// # Errors
///
/// On a database error.
pub async fn build(
    store: &Store,
    settings: &Settings,
    period: &Period,
    now: OffsetDateTime,
) -> anyhow::Result<Consolidated> {
    let units = store.units_all().await?;
    let standings = reports::compliance(store, settings, period, now).await?;
    let attributed = reports::attribution(&units, &period.due.to_string());
    let by_id: HashMap<i64, &Unit> = units.iter().map(|unit| (unit.id, unit)).collect();
    let listed: Vec<Unit> = units
        .iter()
        .filter(|unit| standings.iter().any(|row| row.unit_id == unit.id))
        .cloned()
        .collect();
    let figures = reports::unit_figures(store, &listed, period, now, &attributed).await?;
    let agents = store.agents_list(None).await?;
    let officers = store.officers_all().await?;
    let today = now.to_offset(VIETNAM).date();
    // Officers are judged as they were at the end of the data window, or today if earlier.
    let officer_day = today.min(period.data_to).to_string();
    let mut rows = Vec::new();
    let mut districts: Vec<(String, DistrictRate, Vec<f64>)> = Vec::new();
    let mut province = DistrictRate {
        name: "Toàn tỉnh".to_owned(),
        ..DistrictRate::default()
    };
    let mut province_wan = Vec::new();
    for standing in &standings {
        let unit_figures = figures.get(&standing.unit_id);
        let active = reports::active_officers(&officers, standing.unit_id, &officer_day);
        let gap = crate::domain::officers::unit_gaps(&standing.unit_kind, &active);
        let name_of = |code: &str| {
            units
                .iter()
                .find(|unit| unit.code == code)
                .map_or_else(|| code.to_owned(), |unit| unit.name.clone())
        };
        // Ended units counted here: those listed by the compliance, and those with machines.
        let mut includes = standing.includes.clone();
        for (from, _) in attributed.iter().filter(|(_, to)| **to == standing.unit_id) {
            let has_agents = agents.iter().any(|agent| agent.unit_id == *from);
            if let Some(unit) = by_id.get(from).filter(|_| has_agents) {
                if !includes.contains(&unit.code) {
                    includes.push(unit.code.clone());
                }
            }
        }
        includes.sort();
        let note = match (&standing.counted_for, includes.is_empty()) {
            (Some(code), _) => super::vi::counted_for(&name_of(code), code),
            (None, false) => super::vi::includes(
                &includes
                    .iter()
                    .map(|code| (name_of(code), code.clone()))
                    .collect::<Vec<_>>(),
            ),
            (None, true) => String::new(),
        };
        let difficulties = match &standing.latest_report {
            Some(id) => difficulties(store, id).await?,
            None => String::new(),
        };
        let row = UnitRow {
            code: standing.unit_code.clone(),
            name: standing.unit_name.clone(),
            kind: standing.unit_kind.clone(),
            district: standing.district_name.clone(),
            state: state(standing.standing),
            submitted_at: standing.first_submitted_at.map(from_millis),
            versions: standing.versions,
            officer: active.first().map(|officer| officer.full_name.clone()),
            officer_qualified: (!active.is_empty()).then_some(gap.is_none()),
            qualification_gap: gap.unwrap_or_default(),
            agents: unit_figures.map_or(0, |(f, _)| f.machines),
            incidents: unit_figures.map_or(0, |(f, _)| f.incidents),
            incidents_by_kind: unit_figures
                .map(|(f, _)| f.incidents_by_kind.clone().into_iter().collect())
                .unwrap_or_default(),
            availability_lan: unit_figures
                .and_then(|(f, _)| f.availability_lan_percent)
                .map(|p| p / 100.0),
            availability_wan: unit_figures
                .and_then(|(f, _)| f.availability_wan_percent)
                .map(|p| p / 100.0),
            mean_time_to_recover_minutes: unit_figures
                .and_then(|(f, _)| f.mean_time_to_recover_minutes),
            note,
            difficulties,
        };
        let index = match districts
            .iter()
            .position(|(code, _, _)| code == &standing.district_code)
        {
            Some(index) => index,
            None => {
                districts.push((
                    standing.district_code.clone(),
                    DistrictRate {
                        name: standing.district_name.clone(),
                        ..DistrictRate::default()
                    },
                    Vec::new(),
                ));
                districts.len() - 1
            }
        };
        count(&mut districts[index].1, standing.standing, &row);
        count(&mut province, standing.standing, &row);
        if let Some(value) = row.availability_wan {
            districts[index].2.push(value);
            province_wan.push(value);
        }
        rows.push(row);
    }
    province.availability_wan = mean_share(&province_wan);
    let districts = districts
        .into_iter()
        .map(|(_, mut rate, wan)| {
            rate.availability_wan = mean_share(&wan);
            rate
        })
        .collect();
    // "Extended" only when an override moved the due date later than the scheme's rule.
    let rule_due = settings
        .period(&period.label, Some(&period.scheme), &[])
        .map_or(period.nominal_due, |by_rule| by_rule.due);
    let extension = store
        .period_overrides()
        .await?
        .into_iter()
        .find(|o| o.scheme == period.scheme && o.period == period.label)
        .filter(|o| o.due > rule_due)
        .map(|o| Extension {
            rule_due,
            reason: o.reason,
        });
    let organisation = settings.organisation.at(today);
    Ok(Consolidated {
        period: period.label.clone(),
        period_vi: period.label_vi.clone(),
        scheme: period.scheme.clone(),
        data_from: period.data_from,
        data_to: period.data_to,
        due: period.due,
        generated_at: now,
        header: DocumentHeader {
            parent_agency: organisation.header_parent(),
            agency: organisation.header_agency(),
            number: organisation.number("BC"),
            place: organisation.place.clone(),
            date: today,
            addressee: organisation.governing_body.clone(),
            recipients: vec![
                "Như trên;".to_owned(),
                "Lãnh đạo Sở;".to_owned(),
                organisation.archive_line(),
            ],
            signer_title: organisation.signer.title_lines(),
            signer_name: organisation.signer.name.clone(),
        },
        rows,
        districts,
        province,
        deadline_passed: millis(now) > millis(period.deadline()),
        extension,
    })
}

fn count(rate: &mut DistrictRate, standing: Standing, row: &UnitRow) {
    rate.incidents += row.incidents;
    if row.availability_wan.is_some() {
        rate.measured_units += 1;
        rate.measured_agents += row.agents;
    }
    match standing {
        Standing::OnTime => rate.on_time += 1,
        Standing::Late => rate.late += 1,
        Standing::Missing => rate.missing += 1,
        Standing::Pending => rate.pending += 1,
        Standing::NotRequired => return,
    }
    rate.required += 1;
}
