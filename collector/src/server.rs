//! The HTTPS server: accepts TCP, completes TLS, serves the router, shuts down gracefully.
//!
//! We run our own accept loop instead of a packaged one so that a failed TLS handshake (a scanner,
//! or plain HTTP sent to the HTTPS port) is counted and audited instead of vanishing, and so each
//! request knows its peer address ([`PeerAddr`]) for the audit log.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{app, AppState, PeerAddr};
use crate::store::NewAuditEntry;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many failed handshakes a minute reach the audit log; the metric counts them all.
const HANDSHAKE_AUDITS_PER_MINUTE: u32 = 20;

/// A bound, not yet running, HTTPS server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: AppState,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listener. Binding port 0 picks a free port; [`Server::local_addr`] tells which.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn bind(
        address: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        state: AppState,
    ) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding HTTPS listener on {address}"))?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(tls),
            state,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// When the OS cannot tell.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading listener address")
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (up to 30 s).
    ///
    /// # Errors
    ///
    /// Never after start: accept errors (such as running out of file descriptors) are logged and
    /// retried, because the collector must keep serving.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let router = app(self.state.clone());
        // The sender tells connections to finish; dropping it after the loop has the same effect.
        let (stop_tx, stop_rx) = watch::channel(false);
        let audit_budget = Arc::new(Mutex::new((Instant::now(), 0u32)));
        let mut connections = JoinSet::new();
        let sweeper = tokio::spawn(crate::evaluation::run(
            self.state.store.clone(),
            self.state.incidents.clone(),
            stop_rx.clone(),
        ));
        let notifier = tokio::spawn(crate::notify::run(
            self.state.store.clone(),
            self.state.notify.clone(),
            self.state.incidents.gather,
            self.state.reports.clone(),
            (
                self.state.incident_reports.clone(),
                self.state.organisation.clone(),
            ),
            self.state.metrics.clone(),
            stop_rx.clone(),
        ));
        let retention = tokio::spawn(crate::retention::run(
            self.state.store.clone(),
            self.state.retention.clone(),
            self.state.metrics.clone(),
            stop_rx.clone(),
        ));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            tracing::warn!(error = %err, "accept failed; retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let connection = Connection {
                        acceptor: self.acceptor.clone(),
                        router: router.clone(),
                        state: self.state.clone(),
                        audit_budget: audit_budget.clone(),
                        stop: stop_rx.clone(),
                    };
                    connections.spawn(connection.serve(tcp, peer));
                }
            }
        }
        tracing::info!(
            connections = connections.len(),
            "shutting down; draining connections"
        );
        let _ = stop_tx.send(true);
        let _ = sweeper.await;
        let _ = notifier.await;
        let _ = retention.await;
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "connections still open after the drain timeout; closing them"
            );
        }
        Ok(())
    }
}

/// One accepted TCP connection and what it needs.
struct Connection {
    acceptor: TlsAcceptor,
    router: Router,
    state: AppState,
    audit_budget: Arc<Mutex<(Instant, u32)>>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream, peer: SocketAddr) {
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return self.handshake_failed(peer, &err.to_string()).await,
            Err(_) => return self.handshake_failed(peer, "handshake timed out").await,
        };
        let service =
            self.router
                .clone()
                .map_request(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    request
                });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(err) = res {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            }
            _ = self.stop.changed() => {
                conn.as_mut().graceful_shutdown();
                if let Err(err) = conn.await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error during shutdown");
                }
            }
        }
    }

    async fn handshake_failed(&self, peer: SocketAddr, reason: &str) {
        self.state.metrics.tls_handshake_failures.inc();
        tracing::info!(%peer, reason, "TLS handshake failed");
        let audit = {
            let mut budget = self
                .audit_budget
                .lock()
                .expect("audit budget lock is never poisoned");
            if budget.0.elapsed() > Duration::from_secs(60) {
                *budget = (Instant::now(), 0);
            }
            budget.1 += 1;
            budget.1 <= HANDSHAKE_AUDITS_PER_MINUTE
        };
        if audit {
            let entry = NewAuditEntry {
                actor: "anonymous".into(),
                action: "tls.handshake_failed".into(),
                target: String::new(),
                outcome: "denied",
                remote_addr: Some(peer.to_string()),
                details: serde_json::json!({ "reason": reason }),
            };
            if let Err(err) = self
                .state
                .store
                .audit(&entry, OffsetDateTime::now_utc())
                .await
            {
                tracing::error!(error = %format!("{err:#}"), "could not write audit entry");
            }
        }
    }
}
