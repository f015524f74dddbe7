//! Issue 13, H2: a request body must keep arriving at a minimum rate, so a slow client is cut
//! long before the whole-request timeout, while a slow but honest one is served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{spawn_collector_with, sqlite_db, CollectorOptions};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a 4,000-byte enrollment body in chunks of `chunk` bytes every `every`, and returns the
/// status line of the answer and when it came.
async fn post_slowly(
    collector: &e2e::TestCollector,
    chunk: usize,
    every: Duration,
) -> (String, Duration) {
    let address = collector.base_url.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut tls =
        tokio_rustls::TlsConnector::from(Arc::new(e2e::tls_client_config(&collector.ca_pem)))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
    let body_len = 4000;
    let head = format!(
        "POST /api/v1/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
    );
    let started = Instant::now();
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut sent = 0;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            read = tls.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            },
            () = tokio::time::sleep(every), if sent < body_len => {
                let n = chunk.min(body_len - sent);
                if tls.write_all(&vec![b' '; n]).await.is_err() {
                    break;
                }
                sent += n;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer in a minute"
        );
    }
    let text = String::from_utf8_lossy(&answer);
    (
        text.lines().next().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_minimum_rate_is_cut_early_and_an_honest_slow_one_is_served() {
    let db = sqlite_db();
    let options = CollectorOptions {
        extra_config: "[limits]\nrequest_timeout = \"60s\"\nmin_body_rate = 500\nbody_rate_grace = \"2s\"\nunauthenticated_burst = 100\n".into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;

    // 10 bytes a second: cut once the grace is over and the average is under 500 bytes a second,
    // not after the 60 s request timeout.
    let (status, took) = post_slowly(&collector, 1, Duration::from_millis(100)).await;
    assert!(status.contains(" 408 "), "a slow body gets 408: {status:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "cut after the grace, long before the request timeout: {took:?}"
    );

    // 1,000 bytes a second (4 s for the body): over the minimum, served to its end (the empty
    // JSON is then refused as a bad request, not as too slow).
    let (status, took) = post_slowly(&collector, 100, Duration::from_millis(100)).await;
    assert!(
        !status.contains(" 408 "),
        "an honest slow body is read: {status:?}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "the whole body was sent: {took:?}"
    );
    collector.stop().await;
}
