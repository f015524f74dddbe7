//! The collector's own health: request and batch latency, database latency, requests in flight,
//! how late events arrive, and how the scrape-time refresh went.

use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Opts, Registry,
};

/// Latency buckets, in seconds, for requests and database writes.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Delay buckets, in seconds, from an event's time to its arrival: seconds when the line is up,
/// hours or days after an outage.
const DELAY_BUCKETS: &[f64] = &[
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    6.0 * 3600.0,
    86400.0,
    7.0 * 86400.0,
];

/// Health metrics.
#[derive(Debug, Clone)]
pub struct Health {
    request_duration: HistogramVec,
    requests_in_flight: IntGauge,
    ingest_write_duration: Histogram,
    event_delay: Histogram,
    database_ping: Gauge,
    refresh_duration: Gauge,
    refresh_errors: IntCounter,
    audit_forward_dropped: IntCounter,
}

impl Health {
    /// Creates and registers the family.
    pub(super) fn new(registry: &Registry) -> Health {
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "cntt_collector_http_request_duration_seconds",
                "Time to answer HTTP requests, by route",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("metric definition is valid");
        let requests_in_flight = IntGauge::new(
            "cntt_collector_http_requests_in_flight",
            "HTTP requests being answered now",
        )
        .expect("metric definition is valid");
        let ingest_write_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cntt_collector_ingest_write_duration_seconds",
                "Time the database took to store one batch, queueing for the write included",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("metric definition is valid");
        let event_delay = Histogram::with_opts(
            HistogramOpts::new(
                "cntt_collector_ingest_event_delay_seconds",
                "Time from an event on the agent to its arrival, showing backlogs after outages",
            )
            .buckets(DELAY_BUCKETS.to_vec()),
        )
        .expect("metric definition is valid");
        let database_ping = Gauge::new(
            "cntt_collector_database_ping_seconds",
            "Time a trivial query took at the last scrape",
        )
        .expect("metric definition is valid");
        let refresh_duration = Gauge::new(
            "cntt_collector_scrape_refresh_seconds",
            "Time reading the database for the gauges of the previous scrape took",
        )
        .expect("metric definition is valid");
        let refresh_errors = IntCounter::with_opts(Opts::new(
            "cntt_collector_scrape_errors_total",
            "Scrapes whose database reads failed",
        ))
        .expect("metric definition is valid");
        let audit_forward_dropped = IntCounter::with_opts(Opts::new(
            "cntt_collector_audit_forward_dropped_total",
            "Audit entries not forwarded to syslog because the queue was full (the server away too long); they are in the database",
        ))
        .expect("metric definition is valid");
        let start_time = Gauge::new(
            "cntt_collector_start_time_seconds",
            "When this collector process started, Unix seconds",
        )
        .expect("metric definition is valid");
        start_time.set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
        for collector in [
            Box::new(request_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests_in_flight.clone()),
            Box::new(ingest_write_duration.clone()),
            Box::new(event_delay.clone()),
            Box::new(database_ping.clone()),
            Box::new(refresh_duration.clone()),
            Box::new(refresh_errors.clone()),
            Box::new(audit_forward_dropped.clone()),
            Box::new(start_time),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Health {
            request_duration,
            requests_in_flight,
            ingest_write_duration,
            event_delay,
            database_ping,
            refresh_duration,
            refresh_errors,
            audit_forward_dropped,
        }
    }

    /// The counter of audit entries the syslog forwarder dropped, for `audit_forward::attach`.
    pub fn audit_forward_dropped(&self) -> IntCounter {
        self.audit_forward_dropped.clone()
    }

    /// A request starts being answered.
    pub fn request_started(&self) {
        self.requests_in_flight.inc();
    }

    /// A request on `route` was answered after `elapsed`.
    pub fn request_finished(&self, route: &str, elapsed: Duration) {
        self.requests_in_flight.dec();
        self.request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// A batch was written to the database in `elapsed`.
    pub fn ingest_written(&self, elapsed: Duration) {
        self.ingest_write_duration.observe(elapsed.as_secs_f64());
    }

    /// An event made on the agent `delay` ago has arrived.
    pub fn event_arrived(&self, delay: Duration) {
        self.event_delay.observe(delay.as_secs_f64());
    }

    pub(super) fn set_database_ping(&self, seconds: f64) {
        self.database_ping.set(seconds);
    }

    pub(super) fn observe_refresh(&self, elapsed: Duration, ok: bool) {
        self.refresh_duration.set(elapsed.as_secs_f64());
        if !ok {
            self.refresh_errors.inc();
        }
    }
}
