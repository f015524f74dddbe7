//! Assembles a [`Consolidated`] report of one period from the database: compliance, figures and
//! officers of every reporting unit, tallied per district and for the province.

use time::OffsetDateTime;

use super::{Consolidated, DistrictRate, DocumentHeader, SubmissionState, UnitRow};
use crate::periods::{Period, VIETNAM};
use crate::reports::{self, Settings, Standing};
use crate::store::{from_millis, Store, Unit};

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
    let listed: Vec<Unit> = units
        .iter()
        .filter(|unit| standings.iter().any(|row| row.unit_id == unit.id))
        .cloned()
        .collect();
    let figures = reports::unit_figures(store, &listed, period, now).await?;
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
        let gap = crate::officers::unit_gaps(&standing.unit_kind, &active);
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
        for (rate, wan) in [
            (&mut districts[index].1, None),
            (&mut province, Some(&mut province_wan)),
        ] {
            count(rate, standing.standing, row.incidents);
            if let (Some(wan), Some(value)) = (wan, row.availability_wan) {
                wan.push(value);
            }
        }
        if let Some(value) = row.availability_wan {
            districts[index].2.push(value);
        }
        rows.push(row);
    }
    province.availability_wan = mean(&province_wan);
    let districts = districts
        .into_iter()
        .map(|(_, mut rate, wan)| {
            rate.availability_wan = mean(&wan);
            rate
        })
        .collect();
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
    })
}

fn count(rate: &mut DistrictRate, standing: Standing, incidents: u32) {
    rate.incidents += incidents;
    match standing {
        Standing::OnTime => rate.on_time += 1,
        Standing::Late => rate.late += 1,
        Standing::Missing => rate.missing += 1,
        Standing::Pending => rate.pending += 1,
        Standing::NotRequired => return,
    }
    rate.required += 1;
}

/// Unweighted mean of units' availability; none without any.
fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
