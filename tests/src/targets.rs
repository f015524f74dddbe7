//! Real local services for agents to probe, which tests stop and start: a TCP listener and a tiny
//! HTTP/1.1 server (optionally answering 200 and 503 in turn, to make a flapping service).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What a [`Service`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts TCP connections and closes them.
    Tcp,
    /// Answers every HTTP request with 200.
    Http,
    /// Answers HTTP requests with 200 and 503 in turn.
    FlappingHttp,
}

/// A service on 127.0.0.1 that can be stopped (connections refused) and started again on the same
/// port.
#[derive(Debug)]
pub struct Service {
    address: SocketAddr,
    behaviour: Behaviour,
    task: Option<JoinHandle<()>>,
    /// Requests answered so far (HTTP), across restarts.
    pub requests: Arc<AtomicU64>,
}

impl Service {
    /// Starts a service on a free port.
    pub async fn start_new(behaviour: Behaviour) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a test service");
        let address = listener.local_addr().expect("bound address");
        let mut service = Service {
            address,
            behaviour,
            task: None,
            requests: Arc::new(AtomicU64::new(0)),
        };
        service.serve(listener);
        service
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Stops listening: new connections are refused.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn start(&mut self) {
        if self.task.is_none() {
            let listener = TcpListener::bind(self.address)
                .await
                .expect("rebinding a test service");
            self.serve(listener);
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let (behaviour, requests) = (self.behaviour, self.requests.clone());
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                if behaviour == Behaviour::Tcp {
                    continue;
                }
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    let mut read = 0;
                    // Read until the end of the request headers.
                    while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                        if read == buffer.len() {
                            return;
                        }
                    }
                    let n = requests.fetch_add(1, Ordering::SeqCst);
                    let status = if behaviour == Behaviour::FlappingHttp && n % 2 == 1 {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    let body = "Cổng thông tin điện tử";
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }));
    }
}

/// A unit's WAN link in miniature: a TCP relay on 127.0.0.1 to the collector. Agents whose uplink
/// URL and WAN probe point at it lose both when it is cut: new connections are refused and the
/// ones open are torn down, as when a line drops.
#[derive(Debug)]
pub struct Link {
    address: SocketAddr,
    upstream: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Link {
    /// Opens a link to `upstream` (`127.0.0.1:PORT`) on a free port.
    pub async fn open_new(upstream: &str) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a test link");
        let mut link = Link {
            address: listener.local_addr().expect("bound address"),
            upstream: upstream.parse().expect("upstream is an address"),
            task: None,
        };
        link.serve(listener);
        link
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// `https://127.0.0.1:PORT`: the collector through this link.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Cuts the link: connections open are dropped, new ones refused.
    pub async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Restores the link on the same port.
    pub async fn restore(&mut self) {
        if self.task.is_none() {
            let listener = TcpListener::bind(self.address)
                .await
                .expect("rebinding a test link");
            self.serve(listener);
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Relays live in this set, so aborting the accept task drops (closes) them all.
            let mut relays = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        relays.spawn(async move {
                            let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        });
                    }
                    Some(_) = relays.join_next(), if !relays.is_empty() => {}
                }
            }
        }));
    }
}
