//! `cntt-collector`: the central server at the Sở TT&TT.
//!
//! Data path: agents post batches over HTTPS ([`server`], [`api`]) → checked and stored exactly
//! once ([`store`]) → read back by the API, the administration commands ([`admin`]) and Prometheus
//! ([`exposition`]). `main.rs` only parses the command line; everything else is here so tests can
//! reach it.

pub mod admin;
pub mod api;
pub mod audit_forward;
pub mod auth;
pub mod availability;
pub mod config;
pub mod consolidate;
pub mod contacts;
mod csv_import;
pub mod documents;
pub mod evaluation;
pub mod exposition;
pub mod inference;
pub mod notify;
pub mod officers;
pub mod organisation;
pub mod periods;
pub mod reports;
pub mod retention;
pub mod server;
pub mod store;
pub mod systems;
pub mod tls;
pub mod units;
pub mod vi;

use std::sync::Arc;

use anyhow::Context;

use crate::api::AppState;
use crate::config::Config;
use crate::exposition::Metrics;
use crate::server::Server;
use crate::store::Store;

/// Opens the database, loads the certificate and binds the listener: everything `serve` needs
/// before it can answer. Returns the server (not yet running) and the store it uses.
///
/// # Errors
///
/// When the database, the certificate files or the address are unusable; the message says which.
pub async fn build(config: &Config) -> anyhow::Result<(Server, Store)> {
    let metrics = Arc::new(Metrics::default());
    let store = audit_forward::attach(
        Store::connect(&config.database).await?,
        &config.audit,
        metrics.health.audit_forward_dropped(),
    )
    .context("starting the audit log's forwarding (see [audit.syslog] in the config)")?;
    let tls = tls::server_config(&config.tls)
        .context("loading the server certificate (see [tls] in the config)")?;
    let state = AppState {
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
        guard: Arc::new(api::Guard::new(config.limits.clone())),
    };
    let server = Server::bind(config.listen, tls, state).await?;
    Ok((server, store))
}
