//! TCP connect, the check for services that speak something other than HTTP (mail, remote
//! desktop, databases): the target is up when it completes the handshake.
//!
//! The connection is closed right away without sending anything, so the service sees at most an
//! empty connection. A name resolving to several addresses is tried in order, like
//! `TcpStream::connect`; the caller's timeout bounds the whole check.

use std::io;
use std::time::Instant;

use tokio::net::TcpStream;

use super::{io_error_text, Outcome};

/// Connects to `address` (`host:port`) once; the round-trip time is the time to connect to the
/// address that answered, without name resolution.
pub(super) async fn connect(address: &str) -> Outcome {
    let addresses: Vec<_> = match tokio::net::lookup_host(address).await {
        Ok(addresses) => addresses.collect(),
        Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
            return Outcome::down("invalid address, expected host:port")
        }
        Err(_) => return Outcome::down("cannot resolve host"),
    };
    let mut last_error = "cannot resolve host".to_owned();
    for socket_address in addresses {
        let start = Instant::now();
        match TcpStream::connect(socket_address).await {
            Ok(_stream) => return Outcome::up(start.elapsed()),
            Err(err) => last_error = io_error_text(&err),
        }
    }
    Outcome::down(last_error)
}
