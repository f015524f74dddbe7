//! Prometheus metrics of the collector: the only module that knows the exposition format.
//!
//! Names follow `cntt_collector_<noun>_<unit>[_total]`. Counters are updated where things happen;
//! gauges that mirror the database (agents, incidents, availability, host health, notices) are
//! refreshed when `/metrics` is scraped ([`Metrics::refresh`]), so several collectors on one
//! database report the same figures.
//!
//! One file per family: `units.rs` (per unit and district, from the database), `probes.rs` (probe
//! results by target kind, counted at ingest), `health.rs` (the collector's own health),
//! `labels.rs` (the `district` and `unit` labels of a unit). Labels are bounded by the number of
//! units, never by agents, events or incidents; `dashboards/README.md` lists every metric and
//! `docs/metrics.md` the expected series count.

mod health;
mod labels;
mod probes;
mod reports;
mod units;

use std::sync::RwLock;

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use time::OffsetDateTime;

pub use health::Health;
pub use labels::{UnitLabel, UnitLabels};
pub use probes::{ProbeMetrics, ProbeTally};
pub use units::Silence;

use crate::config::IncidentsConfig;
use crate::store::{Store, INCIDENT_KINDS, INCIDENT_STATES};

/// Every metric the collector exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by matched route and status code.
    pub http_requests: IntCounterVec,
    /// Ingested events by result: `accepted`, `duplicate`, `unknown_kind`, `invalid`.
    pub ingest_events: IntCounterVec,
    /// Ingest requests by outcome: `ok`, `rejected`, `rate_limited`, `error`.
    pub ingest_batches: IntCounterVec,
    /// Refused authentications by kind: `agent`, `api`, `enroll`.
    pub auth_failures: IntCounterVec,
    /// TLS handshakes that failed, e.g. plain HTTP sent to the HTTPS port.
    pub tls_handshake_failures: IntCounter,
    /// Connections open now (`http/server.rs`).
    pub connections_open: IntGauge,
    /// Connections accepted while `limits.keep_alive_connections` were open, so served one
    /// request without keep-alive.
    pub connections_without_keep_alive: IntCounter,
    /// Agents by state: `active`, `revoked`.
    pub agents: IntGaugeVec,
    /// Probe results stored, by `ok` = `true` or `false`.
    pub probe_results: IntCounterVec,
    /// Incidents by `kind` and `state`; set by [`Metrics::set_incidents`].
    incidents: IntGaugeVec,
    /// Notice delivery attempts by `channel` (`email`, `webhook`, `zalo`, `sms`) and `result`
    /// (`sent`, `failed`).
    pub notice_attempts: IntCounterVec,
    /// 1 while a channel's last attempt succeeded, 0 while it fails, by `channel`.
    pub notify_channel_up: IntGaugeVec,
    /// Notices by `state` (`pending`, `sent`, `failed`); set when `/metrics` is scraped.
    pub notices: IntGaugeVec,
    /// Maintenance windows by `state`: `active` (an occurrence going on) or `planned` (one to
    /// come), from the database at each scrape (issue 17).
    pub maintenance_windows: IntGaugeVec,
    /// Rows the retention job removed, by `table` (probe results are rolled up first).
    pub retention_rows: IntCounterVec,
    /// Probe results by unit and target kind, counted at ingest.
    pub probes: ProbeMetrics,
    /// The collector's own health: latencies, queues, errors.
    pub health: Health,
    /// Per unit and district gauges, set by [`Metrics::refresh`].
    units: units::UnitMetrics,
    /// Periodic reports and officers, set by [`Metrics::refresh`].
    reports: reports::ReportMetrics,
    /// The labels of every unit, reloaded at each refresh and when ingest meets an unknown unit.
    labels: RwLock<UnitLabels>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "cntt_collector_http_requests_total",
                "HTTP requests by route and status code",
            ),
            &["route", "status"],
        )
        .expect("metric definition is valid");
        let ingest_events = IntCounterVec::new(
            Opts::new(
                "cntt_collector_ingest_events_total",
                "Events received from agents by result",
            ),
            &["result"],
        )
        .expect("metric definition is valid");
        let ingest_batches = IntCounterVec::new(
            Opts::new(
                "cntt_collector_ingest_batches_total",
                "Ingest requests by outcome",
            ),
            &["outcome"],
        )
        .expect("metric definition is valid");
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "cntt_collector_auth_failures_total",
                "Refused authentications by credential kind",
            ),
            &["kind"],
        )
        .expect("metric definition is valid");
        let tls_handshake_failures = IntCounter::new(
            "cntt_collector_tls_handshake_failures_total",
            "TLS handshakes that failed, such as plain HTTP sent to the HTTPS port",
        )
        .expect("metric definition is valid");
        let connections_open = IntGauge::new(
            "cntt_collector_connections_open",
            "TCP connections open now",
        )
        .expect("metric definition is valid");
        let connections_without_keep_alive = IntCounter::new(
            "cntt_collector_connections_without_keep_alive_total",
            "Connections served one request without keep-alive, accepted while limits.keep_alive_connections were open",
        )
        .expect("metric definition is valid");
        let agents = IntGaugeVec::new(
            Opts::new("cntt_collector_agents", "Enrolled agents by state"),
            &["state"],
        )
        .expect("metric definition is valid");
        let probe_results = IntCounterVec::new(
            Opts::new(
                "cntt_collector_probe_results_total",
                "Probe results stored, by whether the check passed",
            ),
            &["ok"],
        )
        .expect("metric definition is valid");
        let incidents = IntGaugeVec::new(
            Opts::new("cntt_collector_incidents", "Incidents by kind and state"),
            &["kind", "state"],
        )
        .expect("metric definition is valid");
        let notice_attempts = IntCounterVec::new(
            Opts::new(
                "cntt_collector_notice_attempts_total",
                "Attempts to deliver notices, by channel and result",
            ),
            &["channel", "result"],
        )
        .expect("metric definition is valid");
        let notify_channel_up = IntGaugeVec::new(
            Opts::new(
                "cntt_collector_notify_channel_up",
                "1 while a notification channel's last attempt succeeded, 0 while it fails",
            ),
            &["channel"],
        )
        .expect("metric definition is valid");
        let notices = IntGaugeVec::new(
            Opts::new("cntt_collector_notices", "Notices by delivery state"),
            &["state"],
        )
        .expect("metric definition is valid");
        let maintenance_windows = IntGaugeVec::new(
            Opts::new(
                "cntt_collector_maintenance_windows",
                "Planned maintenance windows with an occurrence going on (active) or to come (planned)",
            ),
            &["state"],
        )
        .expect("metric definition is valid");
        for state in ["active", "planned"] {
            maintenance_windows.with_label_values(&[state]);
        }
        for channel in crate::domain::channels::FAMILIES {
            for result in ["sent", "failed"] {
                notice_attempts.with_label_values(&[channel, result]);
            }
        }
        for state in ["pending", "sent", "failed"] {
            notices.with_label_values(&[state]);
        }
        let retention_rows = IntCounterVec::new(
            Opts::new(
                "cntt_collector_retention_rows_total",
                "Rows removed by the retention job, by table; probe results are rolled up first",
            ),
            &["table"],
        )
        .expect("metric definition is valid");
        for table in [
            "probe_results",
            "events",
            "audit_log",
            "incidents",
            "incident_timeline",
        ] {
            retention_rows.with_label_values(&[table]);
        }
        let build_info = IntGauge::with_opts(
            Opts::new(
                "cntt_collector_build_info",
                "Always 1; the version label tells the collector's version",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("metric definition is valid");
        build_info.set(1);
        // Series with known labels exist from the start, so dashboards show 0 instead of nothing.
        for result in ["accepted", "duplicate", "unknown_kind", "invalid"] {
            ingest_events.with_label_values(&[result]);
        }
        for outcome in ["ok", "rejected", "error"] {
            ingest_batches.with_label_values(&[outcome]);
        }
        for kind in ["agent", "api", "console", "enroll", "rate_limited"] {
            auth_failures.with_label_values(&[kind]);
        }
        for state in ["active", "revoked"] {
            agents.with_label_values(&[state]);
        }
        for ok in ["true", "false"] {
            probe_results.with_label_values(&[ok]);
        }
        for kind in INCIDENT_KINDS {
            for state in INCIDENT_STATES {
                incidents.with_label_values(&[kind, state]);
            }
        }
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ingest_events.clone()),
            Box::new(ingest_batches.clone()),
            Box::new(auth_failures.clone()),
            Box::new(tls_handshake_failures.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_without_keep_alive.clone()),
            Box::new(agents.clone()),
            Box::new(probe_results.clone()),
            Box::new(incidents.clone()),
            Box::new(notice_attempts.clone()),
            Box::new(notify_channel_up.clone()),
            Box::new(notices.clone()),
            Box::new(maintenance_windows.clone()),
            Box::new(retention_rows.clone()),
            Box::new(build_info.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        let probes = ProbeMetrics::new(&registry);
        let health = Health::new(&registry);
        let units = units::UnitMetrics::new(&registry);
        let reports = reports::ReportMetrics::new(&registry);
        Metrics {
            registry,
            probes,
            health,
            units,
            reports,
            labels: RwLock::default(),
            http_requests,
            ingest_events,
            ingest_batches,
            auth_failures,
            tls_handshake_failures,
            connections_open,
            connections_without_keep_alive,
            agents,
            probe_results,
            incidents,
            notice_attempts,
            notify_channel_up,
            notices,
            maintenance_windows,
            retention_rows,
        }
    }
}

impl Metrics {
    /// Sets the incident gauge from `(kind, state, count)` rows; every known kind and state not
    /// among them reads 0, and a series of a kind that no longer exists disappears.
    pub fn set_incidents<'a>(&self, counts: impl IntoIterator<Item = (&'a str, &'a str, i64)>) {
        self.incidents.reset();
        for kind in INCIDENT_KINDS {
            for state in INCIDENT_STATES {
                self.incidents.with_label_values(&[kind, state]).set(0);
            }
        }
        for (kind, state, count) in counts {
            self.incidents.with_label_values(&[kind, state]).set(count);
        }
    }

    /// Refreshes every gauge that mirrors the database, as of `now`; called before each scrape.
    ///
    /// # Errors
    ///
    /// When the database cannot be read; the failure is also counted in
    /// `cntt_collector_scrape_errors_total`.
    pub async fn refresh(
        &self,
        store: &Store,
        incidents: &IncidentsConfig,
        reports: &crate::services::reports::Settings,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let res = self.refresh_from(store, incidents, reports, now).await;
        self.health.observe_refresh(started.elapsed(), res.is_ok());
        res
    }

    async fn refresh_from(
        &self,
        store: &Store,
        incidents_config: &IncidentsConfig,
        report_settings: &crate::services::reports::Settings,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.health
            .set_database_ping(store.metrics_ping_seconds().await?);
        let units = store.units_all().await?;
        let labels = UnitLabels::new(&units);
        *self.labels.write().expect("labels lock is never poisoned") = labels.clone();
        let silence = units::Silence::of(incidents_config);
        let now_ms = crate::store::millis(now);
        let mut agents = Vec::new();
        store
            .agents_for_each(|agent| agents.push(units::AgentFigures::of(&agent, silence, now_ms)))
            .await?;
        let revoked = agents.iter().filter(|agent| agent.revoked).count();
        self.agents
            .with_label_values(&["active"])
            .set((agents.len() - revoked) as i64);
        self.agents
            .with_label_values(&["revoked"])
            .set(revoked as i64);
        let incident_counts = store.incidents_count().await?;
        self.set_incidents(
            incident_counts
                .iter()
                .map(|count| (count.kind.as_str(), count.state.as_str(), count.count)),
        );
        for notice_state in ["pending", "sent", "failed"] {
            self.notices.with_label_values(&[notice_state]).set(0);
        }
        for (notice_state, count) in store.notices_count().await? {
            self.notices
                .with_label_values(&[notice_state.as_str()])
                .set(count);
        }
        let (mut active, mut planned) = (0, 0);
        for window in store.maintenance_live(now_ms).await? {
            if window.occurrence_at(now_ms).is_some() {
                active += 1;
            } else if window.next_occurrence(now_ms).is_some() {
                planned += 1;
            }
        }
        self.maintenance_windows
            .with_label_values(&["active"])
            .set(active);
        self.maintenance_windows
            .with_label_values(&["planned"])
            .set(planned);
        let open = store.metrics_open_incidents().await?;
        let longest = units::WINDOWS
            .iter()
            .map(|(_, length)| *length)
            .max()
            .unwrap_or_default();
        let outages = store
            .incident_outages(now_ms - longest.whole_milliseconds() as i64, now_ms)
            .await?;
        self.units.set(&units::Snapshot {
            labels: &labels,
            units: &units,
            agents: &agents,
            open: &open,
            outages: &outages,
            now,
        });
        let overrides = store.period_overrides().await?;
        let mut report_rows = std::collections::BTreeMap::new();
        for period in reports::ReportMetrics::periods(report_settings, &overrides, now) {
            let rows = store
                .reports_of_period(&period.scheme, &period.label)
                .await?;
            report_rows.insert((period.scheme, period.label), rows);
        }
        let officers = store.officers_all().await?;
        self.reports.set(&reports::Snapshot {
            labels: &labels,
            units: &units,
            settings: report_settings,
            overrides: &overrides,
            reports: &report_rows,
            officers: &officers,
            now,
        });
        Ok(())
    }

    /// The labels of a unit by internal id; reloads the units once when it is not known yet (a
    /// unit imported since the last scrape).
    ///
    /// # Errors
    ///
    /// When the units cannot be read.
    pub async fn unit_label(&self, store: &Store, unit_id: i64) -> anyhow::Result<UnitLabel> {
        if let Some(label) = self
            .labels
            .read()
            .expect("labels lock is never poisoned")
            .get(unit_id)
        {
            return Ok(label.clone());
        }
        let labels = UnitLabels::new(&store.units_all().await?);
        let label = labels
            .get(unit_id)
            .cloned()
            .unwrap_or_else(UnitLabel::unknown);
        *self.labels.write().expect("labels lock is never poisoned") = labels;
        Ok(label)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding metrics into memory cannot fail");
        String::from_utf8(buffer).expect("the text encoder writes UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_help() {
        let metrics = Metrics::default();
        metrics
            .ingest_events
            .with_label_values(&["accepted"])
            .inc_by(3);
        metrics.agents.with_label_values(&["active"]).set(2);
        metrics.tls_handshake_failures.inc();
        metrics.probe_results.with_label_values(&["false"]).inc();
        metrics.set_incidents([("wan", "open", 2)]);
        let text = metrics.render();
        for line in [
            "cntt_collector_ingest_events_total{result=\"accepted\"} 3",
            "cntt_collector_agents{state=\"active\"} 2",
            "cntt_collector_tls_handshake_failures_total 1",
            "cntt_collector_build_info{version=\"0.1.0\"} 1",
            "cntt_collector_ingest_events_total{result=\"duplicate\"} 0",
            "cntt_collector_auth_failures_total{kind=\"enroll\"} 0",
            "cntt_collector_probe_results_total{ok=\"false\"} 1",
            "cntt_collector_probe_results_total{ok=\"true\"} 0",
            "cntt_collector_incidents{kind=\"wan\",state=\"open\"} 2",
            "cntt_collector_incidents{kind=\"security\",state=\"resolved\"} 0",
            "cntt_collector_retention_rows_total{table=\"audit_log\"} 0",
            "# HELP cntt_collector_tls_handshake_failures_total TLS handshakes that failed",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
