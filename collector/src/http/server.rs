//! The HTTPS server: accepts TCP, completes TLS, serves the router, shuts down gracefully.
//!
//! We run our own accept loop instead of a packaged one so that a failed TLS handshake (a scanner,
//! or plain HTTP sent to the HTTPS port) is counted and audited instead of vanishing, and so each
//! request knows its peer address ([`PeerAddr`]) for the audit log.
//!
//! It also holds the connection-level limits against a hostile network (issue 13, H2), all in
//! `[limits]`: at most `max_connections` connections at once and `max_connections_per_address`
//! from one address (more are closed at accept, before TLS, costing one file descriptor for an
//! instant); at most `keep_alive_connections` kept open between requests (a connection accepted
//! while that many are open serves one request with `Connection: close`: an idle connection holds
//! about 20 KiB of buffers in hyper and rustls, and a fleet of 20,000 agents sending every 30 s
//! would otherwise hold 20,000 of them; the TLS session tickets of `config/tls.rs` make the
//! reconnection cheap); the TLS handshake within `handshake_timeout`; request headers (and the wait of an idle
//! kept-alive connection) within `header_timeout`; and a whole request, body included, within
//! `request_timeout`, else 408 and the connection is closed; and, sooner, a body that arrives
//! slower than `min_body_rate` bytes a second on average once `body_rate_grace` has passed since it
//! began ([`MinRateBody`]), also 408. So a slow-body client holds a
//! connection for a bounded time and many of them cannot starve the others; `LimitNOFILE` in the
//! shipped unit is twice `max_connections`. Failed handshakes are audited in aggregate like every
//! unauthenticated refusal (`api/guard.rs`), and this loop flushes the aggregate every interval.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

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

use crate::http::api::{app, ApiError, AppState, PeerAddr};
use crate::store::NewAuditEntry;

/// The most a connection's read buffer grows to, which also caps a request's headers. hyper's
/// default is about 400 KiB, and a buffer never shrinks once grown: a connection that once carried
/// a catching-up batch could keep that much while idle. TLS hands over at most a 16 KiB record at a
/// time, so a larger buffer saves no work.
const READ_BUFFER_BYTES: usize = 32 << 10;

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Open connections, overall and per client address, against the caps of `[limits]`.
///
/// Each accepted connection holds a [`Slot`]; dropping it (when the connection task ends, however
/// it ends) gives the place back.
#[derive(Debug)]
struct Occupancy {
    max_total: usize,
    max_per_address: usize,
    /// `cntt_collector_connections_open`, kept equal to the count.
    gauge: prometheus::IntGauge,
    /// Connections open overall and per address; an address leaves the map at zero.
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Occupancy {
    /// A place for a connection from `address`, with how many connections were open before it,
    /// or `None` when a cap is reached.
    fn enter(self: &Arc<Occupancy>, address: IpAddr) -> Option<(Slot, usize)> {
        let mut open = self.open.lock().expect("occupancy lock is never poisoned");
        let from_address = open.1.get(&address).copied().unwrap_or(0);
        if open.0 >= self.max_total || from_address >= self.max_per_address {
            return None;
        }
        let before = open.0;
        open.0 += 1;
        self.occupancy_gauge(open.0);
        open.1.insert(address, from_address + 1);
        let slot = Slot {
            occupancy: self.clone(),
            address,
        };
        Some((slot, before))
    }
}

impl Occupancy {
    /// Sets the gauge of open connections to `open`, under the occupancy lock.
    fn occupancy_gauge(&self, open: usize) {
        self.gauge.set(i64::try_from(open).unwrap_or(i64::MAX));
    }
}

/// One connection's place in [`Occupancy`].
#[derive(Debug)]
struct Slot {
    occupancy: Arc<Occupancy>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .occupancy
            .open
            .lock()
            .expect("occupancy lock is never poisoned");
        open.0 = open.0.saturating_sub(1);
        self.occupancy.occupancy_gauge(open.0);
        if let Some(count) = open.1.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

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
        let limits = self.state.guard.limits.clone();
        let occupancy = Arc::new(Occupancy {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            gauge: self.state.metrics.connections_open.clone(),
            open: Mutex::new((0, HashMap::new())),
        });
        let mut refused_connections: u64 = 0;
        let mut one_request_connections: u64 = 0;
        let mut connections = JoinSet::new();
        let sweeper = tokio::spawn(crate::jobs::evaluation::run(
            self.state.store.clone(),
            self.state.incidents.clone(),
            stop_rx.clone(),
        ));
        let notifier = tokio::spawn(crate::jobs::notify::run(
            self.state.store.clone(),
            self.state.notify.clone(),
            self.state.reports.clone(),
            (
                self.state.incident_reports.clone(),
                self.state.organisation.clone(),
            ),
            self.state.metrics.clone(),
            crate::jobs::notify::Extras {
                gather: self.state.incidents.gather,
                maintenance: self.state.maintenance,
                // The console's address from `[console] public_url`, else `[notify] console_url`.
                ack_links: self
                    .state
                    .console
                    .public_url
                    .clone()
                    .or_else(|| self.state.notify.console_url.clone())
                    .map(|console_url| crate::store::AckLinks {
                        console_url,
                        lifetime_ms: i64::try_from(
                            self.state.console.ack_link_lifetime.as_millis(),
                        )
                        .unwrap_or(i64::MAX),
                    }),
            },
            stop_rx.clone(),
        ));
        let retention = tokio::spawn(crate::jobs::retention::run(
            self.state.store.clone(),
            self.state.retention.clone(),
            self.state.metrics.clone(),
            stop_rx.clone(),
        ));
        let audit_flusher = tokio::spawn(flush_refusals(self.state.clone(), stop_rx.clone()));
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
                    let Some((slot, open)) = occupancy.enter(peer.ip()) else {
                        // Over a cap: close at once, before any TLS work. Logged sparingly, since
                        // a flood would otherwise flood the log too.
                        refused_connections += 1;
                        if refused_connections.is_power_of_two() {
                            tracing::warn!(%peer, refused = refused_connections, "connection limit reached; closing new connections");
                        }
                        drop(tcp);
                        continue;
                    };
                    // Over the keep-alive budget: this connection serves one request and closes,
                    // so idle connections cannot fill memory when tens of thousands of agents send.
                    let keep_alive = open < limits.keep_alive_connections;
                    if !keep_alive {
                        self.state.metrics.connections_without_keep_alive.inc();
                        one_request_connections += 1;
                        if one_request_connections.is_power_of_two() {
                            tracing::info!(
                                open,
                                keep_alive_connections = limits.keep_alive_connections,
                                connections = one_request_connections,
                                "many connections open; new ones serve one request without keep-alive"
                            );
                        }
                    }
                    let connection = Connection {
                        acceptor: self.acceptor.clone(),
                        router: router.clone(),
                        state: self.state.clone(),
                        limits: limits.clone(),
                        stop: stop_rx.clone(),
                        keep_alive,
                        _slot: slot,
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
        let _ = audit_flusher.await;
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

/// Writes the summary rows of aggregated refusals every interval, and once more at shutdown.
async fn flush_refusals(state: AppState, mut stop: watch::Receiver<bool>) {
    let failures = &state.guard.failures;
    let mut ticker = tokio::time::interval(failures.interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let rows = tokio::select! {
            _ = ticker.tick() => failures.flush(OffsetDateTime::now_utc()),
            _ = stop.changed() => failures.drain(OffsetDateTime::now_utc()),
        };
        for row in rows {
            if let Err(err) = state.store.audit(&row, OffsetDateTime::now_utc()).await {
                tracing::error!(error = %format!("{err:#}"), action = %row.action, "could not write audit entry");
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One accepted TCP connection and what it needs.
struct Connection {
    acceptor: TlsAcceptor,
    router: Router,
    state: AppState,
    limits: crate::config::LimitsConfig,
    stop: watch::Receiver<bool>,
    /// Whether the connection stays open between requests (`limits.keep_alive_connections`).
    keep_alive: bool,
    /// This connection's place under the connection caps, given back when the task ends.
    _slot: Slot,
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream, peer: SocketAddr) {
        let handshake = self.acceptor.accept(tcp);
        let tls = match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return self.handshake_failed(peer, &err.to_string()).await,
            Err(_) => return self.handshake_failed(peer, "handshake timed out").await,
        };
        let router = self.router.clone();
        let request_timeout = self.limits.request_timeout;
        let (min_rate, grace) = (self.limits.min_body_rate, self.limits.body_rate_grace);
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            let router = router.clone();
            let too_slow = Arc::new(AtomicBool::new(false));
            let request = request.map(|body| {
                axum::body::Body::new(MinRateBody::new(body, min_rate, grace, too_slow.clone()))
            });
            async move {
                // The whole request, body included, within the limit (issue 13, H2); dropping the
                // handler drops the unread body, so hyper closes the connection after the 408.
                let answer = tokio::time::timeout(request_timeout, router.oneshot(request)).await;
                let slow = too_slow.load(Ordering::Relaxed);
                match answer {
                    Ok(response) if !slow => response,
                    _ => {
                        if slow {
                            tracing::info!(%peer, min_rate, "request body slower than the minimum rate; closing the connection");
                        } else {
                            tracing::info!(%peer, "request not received in time; closing the connection");
                        }
                        let mut response =
                            axum::response::IntoResponse::into_response(ApiError::RequestTimeout {
                                seconds: request_timeout.as_secs().max(1),
                            });
                        let headers = response.headers_mut();
                        headers.insert(
                            hyper::header::X_CONTENT_TYPE_OPTIONS,
                            hyper::header::HeaderValue::from_static("nosniff"),
                        );
                        headers.insert(
                            hyper::header::CACHE_CONTROL,
                            hyper::header::HeaderValue::from_static("no-store"),
                        );
                        headers.insert(
                            hyper::header::CONNECTION,
                            hyper::header::HeaderValue::from_static("close"),
                        );
                        Ok(response)
                    }
                }
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(self.keep_alive)
            .max_buf_size(READ_BUFFER_BYTES);
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

    /// Counts and audits (in aggregate, per address and reason per interval) a failed handshake.
    async fn handshake_failed(&self, peer: SocketAddr, reason: &str) {
        self.state.metrics.tls_handshake_failures.inc();
        let entry = NewAuditEntry {
            actor: "anonymous".into(),
            action: "tls.handshake_failed".into(),
            target: String::new(),
            outcome: "denied",
            remote_addr: Some(peer.to_string()),
            details: serde_json::json!({ "reason": reason }),
        };
        if self.state.audit_refusal(entry).await {
            tracing::info!(%peer, reason, "TLS handshake failed");
        } else {
            tracing::debug!(%peer, reason, "TLS handshake failed again");
        }
    }
}

/// A request body that must keep arriving: once `grace` has passed since it began, the bytes
/// received must average at least `min_rate` a second, else reading it fails and `too_slow` is set
/// (the server then answers 408 and closes the connection). A client that stops sending is caught
/// too: while the body waits for data, a timer runs to the moment the average would fall below the
/// rate. A `min_rate` of 0 turns the check off.
///
/// The clock starts when the handler first reads the body, not when the request arrived: a large
/// ingest body may wait for its turn (`Committer::admit`) before it is read, and that wait is the
/// server's, not the client's. `request_timeout` still bounds the whole request.
struct MinRateBody {
    inner: Incoming,
    started: tokio::time::Instant,
    /// Whether the handler has read yet; `started` is reset at its first read.
    reading: bool,
    received: u64,
    min_rate: u64,
    grace: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    too_slow: Arc<AtomicBool>,
}

impl MinRateBody {
    fn new(inner: Incoming, min_rate: u64, grace: Duration, too_slow: Arc<AtomicBool>) -> Self {
        let started = tokio::time::Instant::now();
        MinRateBody {
            reading: false,
            inner,
            started,
            received: 0,
            min_rate,
            grace,
            deadline: Box::pin(tokio::time::sleep_until(started + grace)),
            too_slow,
        }
    }

    /// When the average rate would drop below the minimum if nothing more arrived.
    fn next_deadline(&self) -> tokio::time::Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate.max(1) as f64);
        self.started + earned.max(self.grace)
    }
}

impl hyper::body::Body for MinRateBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if !self.reading {
            self.reading = true;
            let started = tokio::time::Instant::now();
            self.started = started;
            let grace = self.grace;
            self.deadline.as_mut().reset(started + grace);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    let deadline = self.next_deadline();
                    self.deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if self.min_rate == 0 => Poll::Pending,
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.too_slow.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(
                        Err("request body slower than the minimum rate".into()),
                    ))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
