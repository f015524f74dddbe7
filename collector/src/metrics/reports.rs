//! Periodic reports and IT officers, read from the database at each scrape: units required to
//! report and units that did (by timeliness) per scheme, period and district; each unit's standing
//! on the latest periods; officers by qualification and units without a qualified officer.
//!
//! Only the latest [`PERIODS_PER_SCHEME`] periods of each required scheme whose data window has
//! begun are exported, so the series count is bounded by units × schemes × 4, whatever the history.

use std::collections::BTreeMap;

use prometheus::{IntGaugeVec, Opts, Registry};
use time::OffsetDateTime;

use super::UnitLabels;
use crate::domain::periods::{Override, VIETNAM};
use crate::services::reports::{standings, Settings, Standing};
use crate::store::{StoredOfficer, StoredReport, Unit};

/// Periods exported per scheme: the current one and the three before it.
pub(super) const PERIODS_PER_SCHEME: usize = 4;

/// The report and officer gauges.
#[derive(Debug)]
pub(super) struct ReportMetrics {
    required: IntGaugeVec,
    submitted: IntGaugeVec,
    state: IntGaugeVec,
    officers: IntGaugeVec,
    unqualified: IntGaugeVec,
}

/// What a refresh reads.
pub(super) struct Snapshot<'a> {
    pub(super) labels: &'a UnitLabels,
    pub(super) units: &'a [Unit],
    pub(super) settings: &'a Settings,
    pub(super) overrides: &'a [Override],
    /// Report versions per (scheme, period).
    pub(super) reports: &'a BTreeMap<(String, String), Vec<StoredReport>>,
    pub(super) officers: &'a [StoredOfficer],
    pub(super) now: OffsetDateTime,
}

impl ReportMetrics {
    pub(super) fn new(registry: &Registry) -> ReportMetrics {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let gauge = IntGaugeVec::new(Opts::new(name, help), labels)
                .expect("metric definition is valid");
            registry
                .register(Box::new(gauge.clone()))
                .expect("metric registered once");
            gauge
        };
        ReportMetrics {
            required: gauge(
                "cntt_collector_reports_required",
                "Units that must submit the periodic report of a period, by district",
                &["scheme", "period", "district"],
            ),
            submitted: gauge(
                "cntt_collector_reports_submitted",
                "Units that submitted the periodic report of a period, by district and timeliness (on_time, late)",
                &["scheme", "period", "district", "timeliness"],
            ),
            state: gauge(
                "cntt_collector_report_state",
                "1 for the standing of a unit on a period (on_time, late, missing, pending, not_required)",
                &["scheme", "period", "district", "unit", "state"],
            ),
            officers: gauge(
                "cntt_collector_officers",
                "IT officers in post today by district and whether they meet the standard of QĐ 02/2017 Điều 4",
                &["district", "qualified"],
            ),
            unqualified: gauge(
                "cntt_collector_units_without_qualified_officer",
                "Reporting units with no IT officer meeting the standard of QĐ 02/2017 Điều 4, by district",
                &["district"],
            ),
        }
    }

    /// The periods exported now: the latest ones of each required scheme whose data window began.
    pub(super) fn periods(
        settings: &Settings,
        overrides: &[Override],
        now: OffsetDateTime,
    ) -> Vec<crate::domain::periods::Period> {
        let today = now.to_offset(VIETNAM).date();
        let mut out = Vec::new();
        for scheme in settings.required_schemes() {
            let mut periods: Vec<_> = (today.year() - 2..=today.year())
                .flat_map(|year| scheme.periods(year, &settings.holidays, overrides))
                .filter(|period| period.data_from <= today)
                .collect();
            let keep = periods.len().saturating_sub(PERIODS_PER_SCHEME);
            out.extend(periods.drain(keep..));
        }
        out
    }

    pub(super) fn set(&self, snapshot: &Snapshot<'_>) {
        for gauge in [
            &self.required,
            &self.submitted,
            &self.state,
            &self.officers,
            &self.unqualified,
        ] {
            gauge.reset();
        }
        let now_ms = crate::store::millis(snapshot.now);
        let district = |unit_id: i64| {
            snapshot
                .labels
                .get(unit_id)
                .map_or_else(|| "unknown".to_owned(), |label| label.district.clone())
        };
        let empty = Vec::new();
        for period in Self::periods(snapshot.settings, snapshot.overrides, snapshot.now) {
            let reports = snapshot
                .reports
                .get(&(period.scheme.clone(), period.label.clone()))
                .unwrap_or(&empty);
            for row in standings(snapshot.units, reports, snapshot.settings, &period, now_ms) {
                let district = district(row.unit_id);
                let labels = [
                    period.scheme.as_str(),
                    period.label.as_str(),
                    district.as_str(),
                ];
                let required = self.required.with_label_values(&labels);
                if row.standing != Standing::NotRequired {
                    required.inc();
                }
                for timeliness in ["on_time", "late"] {
                    let submitted = self
                        .submitted
                        .with_label_values(&[labels[0], labels[1], labels[2], timeliness]);
                    if row.standing.as_str() == timeliness {
                        submitted.inc();
                    }
                }
                self.state
                    .with_label_values(&[
                        labels[0],
                        labels[1],
                        labels[2],
                        row.unit_code.as_str(),
                        row.standing.as_str(),
                    ])
                    .set(1);
            }
        }
        let today = snapshot.now.to_offset(VIETNAM).date().to_string();
        for unit in snapshot.units.iter().filter(|unit| {
            snapshot.settings.unit_kinds.contains(&unit.kind) && unit.valid_on(&today)
        }) {
            let district = district(unit.id);
            let active =
                crate::services::reports::active_officers(snapshot.officers, unit.id, &today);
            for officer in &active {
                let qualified = crate::domain::officers::gaps(&unit.kind, officer).is_empty();
                self.officers
                    .with_label_values(&[
                        district.as_str(),
                        if qualified { "true" } else { "false" },
                    ])
                    .inc();
            }
            let gauge = self.unqualified.with_label_values(&[district.as_str()]);
            if crate::domain::officers::unit_gaps(&unit.kind, &active).is_some() {
                gauge.inc();
            }
        }
    }
}
