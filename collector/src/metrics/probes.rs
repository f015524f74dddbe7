//! Probe results by target kind, counted when ingest stores them.
//!
//! Cardinality is bounded by units × target kinds (`lan`, `wan`, `internet`, `server`): no agent,
//! target or address label. Round-trip times go into one histogram per district and target kind,
//! and into a sum and a count per unit, from which dashboards take the mean by unit.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::UnitLabel;

/// Buckets of round-trip times, in seconds: from a LAN hop to a slow WAN line.
const RTT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The probe results of one batch, reduced to what the metrics need.
#[derive(Debug, Clone, Default)]
pub struct ProbeTally {
    /// `(target kind, passed, round-trip time in ms)` of each result.
    pub results: Vec<(String, bool, Option<f64>)>,
}

/// Probe metrics.
#[derive(Debug, Clone)]
pub struct ProbeMetrics {
    checks: IntCounterVec,
    rtt: HistogramVec,
    unit_rtt_sum: prometheus::CounterVec,
    unit_rtt_count: IntCounterVec,
}

impl ProbeMetrics {
    /// Creates and registers the family.
    pub(super) fn new(registry: &Registry) -> ProbeMetrics {
        let checks = IntCounterVec::new(
            Opts::new(
                "cntt_collector_probe_checks_total",
                "Probe results received, by unit, target kind and result (up or down)",
            ),
            &["district", "unit", "target_kind", "result"],
        )
        .expect("metric definition is valid");
        let rtt = HistogramVec::new(
            HistogramOpts::new(
                "cntt_collector_probe_rtt_seconds",
                "Round-trip times of passed probes, by district and target kind",
            )
            .buckets(RTT_BUCKETS.to_vec()),
            &["district", "target_kind"],
        )
        .expect("metric definition is valid");
        let unit_rtt_sum = prometheus::CounterVec::new(
            Opts::new(
                "cntt_collector_unit_probe_rtt_seconds_total",
                "Sum of the round-trip times of passed probes, by unit and target kind",
            ),
            &["district", "unit", "target_kind"],
        )
        .expect("metric definition is valid");
        let unit_rtt_count = IntCounterVec::new(
            Opts::new(
                "cntt_collector_unit_probe_rtt_measurements_total",
                "Round-trip times measured, by unit and target kind",
            ),
            &["district", "unit", "target_kind"],
        )
        .expect("metric definition is valid");
        for collector in [
            Box::new(checks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rtt.clone()),
            Box::new(unit_rtt_sum.clone()),
            Box::new(unit_rtt_count.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        ProbeMetrics {
            checks,
            rtt,
            unit_rtt_sum,
            unit_rtt_count,
        }
    }

    /// Counts the results of one stored batch of a unit's agent.
    pub fn record(&self, label: &UnitLabel, tally: &ProbeTally) {
        for (target_kind, ok, rtt_ms) in &tally.results {
            let result = if *ok { "up" } else { "down" };
            self.checks
                .with_label_values(&[&label.district, &label.unit, target_kind, result])
                .inc();
            let Some(rtt_ms) = rtt_ms.filter(|rtt| *ok && rtt.is_finite() && *rtt >= 0.0) else {
                continue;
            };
            let seconds = rtt_ms / 1000.0;
            self.rtt
                .with_label_values(&[&label.district, target_kind])
                .observe(seconds);
            self.unit_rtt_sum
                .with_label_values(&[&label.district, &label.unit, target_kind])
                .inc_by(seconds);
            self.unit_rtt_count
                .with_label_values(&[&label.district, &label.unit, target_kind])
                .inc();
        }
    }
}
