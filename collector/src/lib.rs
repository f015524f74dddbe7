//! `cntt-collector`: the central server at the Sở TT&TT.
//!
//! Data path: agents post batches over HTTPS ([`http::server`], [`http::api`]) → checked and stored
//! exactly once ([`store`]) → read back by the API, the console, the administration commands
//! ([`admin`]) and Prometheus ([`metrics`]). `main.rs` only parses the command line; everything else
//! is here so tests can reach it.
//!
//! The folders are the layers, top to bottom; each may use those below it, never those above:
//! [`http`] and [`admin`] → [`jobs`] → [`documents`] → [`services`] → [`metrics`] → [`store`] →
//! [`config`] → [`domain`] (pure, no I/O).

pub mod admin;
pub mod config;
pub mod documents;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod services;
pub mod store;

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::http::api::AppState;
use crate::http::server::Server;
use crate::metrics::Metrics;
use crate::store::Store;

/// Opens the database, loads the certificate and binds the listener: everything `serve` needs
/// before it can answer. Returns the server (not yet running) and the store it uses.
///
/// # Errors
///
/// When the database, the certificate files or the address are unusable; the message says which.
pub async fn build(config: &Config) -> anyhow::Result<(Server, Store)> {
    let metrics = Arc::new(Metrics::default());
    let store = jobs::audit_forward::attach(
        Store::connect(&config.database).await?,
        &config.audit,
        metrics.health.audit_forward_dropped(),
    )
    .context("starting the audit log's forwarding (see [audit.syslog] in the config)")?;
    let tls = config::tls::server_config(&config.tls)
        .context("loading the server certificate (see [tls] in the config)")?;
    let state = AppState::new(http::api::Shared {
        committer: crate::store::Committer::start(store.clone(), config.ingest.postgres_writers),
        store: store.clone(),
        metrics,
        ingest: config.ingest.clone(),
        public_metrics: config.public_metrics,
        scrape_token_hash: config.scrape_token_hash.clone(),
        incidents: config.incidents.clone(),
        notify: config.notify.clone(),
        retention: config.retention.clone(),
        reports: Arc::new(config.reports.clone()),
        units: config.units,
        incident_reports: Arc::new(config.incident_reports.clone()),
        organisation: Arc::new(config.organisation.clone()),
        guard: Arc::new(http::api::Guard::new(config.limits.clone())),
        console: config.console.clone(),
        maintenance: config.maintenance,
    });
    let server = Server::bind(config.listen, tls, state).await?;
    Ok((server, store))
}
