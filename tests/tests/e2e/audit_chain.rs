//! The audit log's tamper evidence and its copy off the machine (issue 13): entries chained by
//! hashes that `audit verify` recomputes (a row changed behind the collector's back, with its
//! trigger disabled as a database superuser could, is named), across concurrent writers, retention
//! and entries older than the chain; and every entry forwarded to real UDP, TCP and TLS syslog
//! listeners as RFC 5424 messages matching the rows.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cntt_collector::admin;
use cntt_collector::domain::auth::Role;
use cntt_collector::store::{
    AuditEntry, AuditFilter, BreakKind, NewAuditEntry, RetentionPolicy, Store,
};
use e2e::{eventually, spawn_collector, spawn_collector_with, test_db, CollectorOptions, Db};
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use crate::WAIT;

const DAY: Duration = Duration::from_secs(86_400);

fn entry(target: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: "cli:kiem-thu".into(),
        action: "unit.import".into(),
        target: target.into(),
        outcome: "ok",
        remote_addr: Some("10.0.0.7".into()),
        details: serde_json::json!({ "ghi chú": "Đắk Mil \"]\\" }),
    }
}

async fn all_entries(store: &Store) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        action: None,
        limit: 1_000_000,
    };
    let mut entries = store.audit_list(&filter).await.unwrap();
    entries.reverse();
    entries
}

/// A connection to the test database of its own, as an intruder with the database's rights.
async fn intruder(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnectOptions::from_str(url)
        .unwrap()
        .disable_statement_logging()
        .connect()
        .await
        .unwrap()
}

/// Rewrites one entry's target behind the collector's back: first the trigger goes (dropped on
/// SQLite, disabled on PostgreSQL, as its superuser can).
async fn tamper(url: &str, db: Db, id: i64, target: &str) {
    let mut conn = intruder(url).await;
    let unlock = match db {
        Db::Sqlite => "DROP TRIGGER audit_log_no_update",
        Db::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    };
    sqlx::query(unlock).execute(&mut conn).await.unwrap();
    let res = sqlx::query("UPDATE audit_log SET target = $1 WHERE id = $2")
        .bind(target)
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(res.rows_affected(), 1);
    conn.close().await.unwrap();
}

both_databases! {
    async fn a_tampered_entry_is_found_by_audit_verify(db: Db) {
        let test = test_db(db).await;
        let collector = spawn_collector(&test).await;
        let store = &collector.store;
        for i in 0..5 {
            store.audit(&entry(&format!("đơn vị {i}")), OffsetDateTime::now_utc()).await.unwrap();
        }
        // A flood of refusals adds aggregated rows; they are chained like the rest.
        let client = collector.client();
        for _ in 0..3 {
            client.get(format!("{}/api/v1/units", collector.base_url)).bearer_auth("forged")
                .send().await.unwrap();
        }
        let entries = all_entries(store).await;
        assert!(entries.len() >= 7, "{entries:#?}");
        assert!(entries.iter().all(|e| e.hash.as_deref().is_some_and(|h| h.len() == 64)));
        let (text, intact) = admin::audit_verify(store).await.unwrap();
        assert!(intact, "{text}");
        assert!(
            text.contains(&format!("nguyên vẹn: đã kiểm tra {} mục (từ mục #{} đến mục #{})",
                entries.len(), entries[0].id, entries[entries.len() - 1].id)),
            "{text}"
        );

        let victim = &entries[entries.len() - 3];
        tamper(&test.url, db, victim.id, "đơn vị khác").await;
        let report = store.audit_verify().await.unwrap();
        let broken = report.broken.clone().expect("the change is found");
        assert_eq!(broken.entry.as_ref().map(|e| e.id), Some(victim.id));
        assert!(matches!(broken.kind, BreakKind::Mismatch { ref stored, .. } if Some(stored) == victim.hash.as_ref()));
        assert_eq!(report.checked, entries.len() as u64 - 3, "entries before it are intact");
        let (text, intact) = admin::audit_verify(store).await.unwrap();
        assert!(!intact);
        assert!(text.starts_with("CHUỖI BĂM BỊ PHÁ VỠ"), "{text}");
        assert!(text.contains(&format!("Mục hỏng đầu tiên: #{}", victim.id)), "{text}");
        assert!(text.contains("đơn vị khác"), "{text}");

        // New entries still chain (to the stored hashes), and the break stays where it was.
        store.audit(&entry("sau"), OffsetDateTime::now_utc()).await.unwrap();
        let again = store.audit_verify().await.unwrap();
        assert_eq!(again.broken.and_then(|b| b.entry).map(|e| e.id), Some(victim.id));
        collector.stop().await;
        test.drop_database().await;
    }

    async fn collectors_writing_at_once_keep_one_chain(db: Db) {
        let test = test_db(db).await;
        // Two stores with pools of their own, as two collectors on one database.
        let stores = [test.store().await, test.store().await];
        let mut tasks = Vec::new();
        for (n, store) in stores.iter().enumerate() {
            for task in 0..3 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..15 {
                        store.audit(&entry(&format!("{n}-{task}-{i}")), OffsetDateTime::now_utc())
                            .await.unwrap();
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        let report = stores[0].audit_verify().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.checked, 90);
        assert_eq!(report.unhashed, 0);
        let entries = all_entries(&stores[1]).await;
        assert_eq!(entries.len(), 90);
        let mut previous = cntt_collector::store::GENESIS_HASH.to_owned();
        for entry in &entries {
            let hash = cntt_collector::store::chain_hash(&previous, entry);
            assert_eq!(entry.hash.as_ref(), Some(&hash), "entry {} links to the one before", entry.id);
            previous = hash;
        }
        for store in &stores {
            store.close().await;
        }
        test.drop_database().await;
    }

    async fn the_chain_survives_retention_and_shows_a_change_it_deleted(db: Db) {
        let now = OffsetDateTime::now_utc();
        let policy = RetentionPolicy {
            raw: 30 * DAY,
            audit: 365 * DAY,
            incidents: None,
            batch_rows: 4,
        };
        for tampered in [false, true] {
            let test = test_db(db).await;
            let store = test.store().await;
            for i in 0..10 {
                store.audit(&entry(&format!("cũ {i}")), now - 400 * DAY).await.unwrap();
            }
            for i in 0..5 {
                store.audit(&entry(&format!("mới {i}")), now).await.unwrap();
            }
            let entries = all_entries(&store).await;
            if tampered {
                tamper(&test.url, db, entries[3].id, "sửa").await;
            }
            let summary = store.retention_run(now, &policy, "test").await.unwrap();
            assert_eq!(summary.audit_deleted, 10);
            let report = store.audit_verify().await.unwrap();
            assert_eq!(report.base_id, entries[9].id);
            let (text, intact) = admin::audit_verify(&store).await.unwrap();
            if tampered {
                // The changed entry is gone, but the first one kept no longer links.
                let broken = report.broken.expect("the deleted change still shows");
                assert_eq!(broken.entry.map(|e| e.id), Some(entries[10].id));
                assert!(!intact, "{text}");
            } else {
                assert_eq!(report.broken, None, "{text}");
                assert_eq!(report.checked, 5);
                assert_eq!(report.base_hash, entries[9].hash.clone().unwrap());
                assert!(intact, "{text}");
                assert!(text.contains(&format!("Các mục đến #{} đã được xoá theo thời hạn lưu giữ", entries[9].id)), "{text}");
                // Retention again finds nothing, and new entries chain on.
                assert_eq!(store.retention_run(now, &policy, "test").await.unwrap().audit_deleted, 0);
                store.audit(&entry("tiếp"), now).await.unwrap();
                assert_eq!(store.audit_verify().await.unwrap().checked, 6);
            }
            store.close().await;
            test.drop_database().await;
        }
    }

    async fn entries_older_than_the_chain_are_covered_by_it(db: Db) {
        let test = test_db(db).await;
        let store = test.store().await;
        // Entries as a collector before migration 0010 wrote them: no hash.
        let mut conn = intruder(&test.url).await;
        for i in 0..3 {
            sqlx::query("INSERT INTO audit_log (at, actor, action, target, outcome, details)
                         VALUES ($1, 'cli:root', 'unit.import', $2, 'ok', '{}')")
                .bind(1_700_000_000_000_i64 + i)
                .bind(format!("trước {i}"))
                .execute(&mut conn).await.unwrap();
        }
        let report = store.audit_verify().await.unwrap();
        assert_eq!((report.checked, report.unhashed, report.broken), (3, 3, None));
        store.audit(&entry("đầu chuỗi"), OffsetDateTime::now_utc()).await.unwrap();
        store.audit(&entry("sau"), OffsetDateTime::now_utc()).await.unwrap();
        let (text, intact) = admin::audit_verify(&store).await.unwrap();
        assert!(intact, "{text}");
        assert!(text.contains("3 mục được ghi trước khi có chuỗi băm"), "{text}");
        let entries = all_entries(&store).await;
        // A change to an entry without a hash breaks the first chained entry.
        tamper(&test.url, db, entries[1].id, "sửa").await;
        let report = store.audit_verify().await.unwrap();
        assert_eq!(report.broken.and_then(|b| b.entry).map(|e| e.id), Some(entries[3].id));
        // An entry slipped in without a hash after the chain began is named.
        let mut conn = intruder(&test.url).await;
        let unlock = match db {
            Db::Sqlite => "DROP TRIGGER IF EXISTS audit_log_no_update",
            Db::Postgres => "SELECT 1",
        };
        sqlx::query(unlock).execute(&mut conn).await.unwrap();
        sqlx::query("UPDATE audit_log SET target = 'trước 1' WHERE id = $1")
            .bind(entries[1].id).execute(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO audit_log (at, actor, action, target, outcome, details)
                     VALUES (1, 'x', 'x', 'x', 'ok', '{}')")
            .execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let report = store.audit_verify().await.unwrap();
        let broken = report.broken.expect("the slipped-in entry is found");
        assert_eq!(broken.kind, BreakKind::MissingHash);
        assert_eq!(broken.entry.map(|e| e.target), Some("x".to_owned()));
        store.close().await;
        test.drop_database().await;
    }
}

/// A message parsed by the grammar of RFC 5424, section 6.
#[derive(Debug)]
struct Syslog {
    pri: u32,
    timestamp: OffsetDateTime,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    /// SD-ID → its parameters.
    sd: BTreeMap<String, BTreeMap<String, String>>,
    /// MSG, after its byte order mark.
    msg: String,
}

/// Parses `text` as SYSLOG-MSG, refusing anything the grammar does not allow.
fn parse_5424(text: &str) -> Result<Syslog, String> {
    let rest = text.strip_prefix('<').ok_or("no PRI")?;
    let (pri, rest) = rest.split_once('>').ok_or("PRI not closed")?;
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("PRI {pri:?}"));
    }
    let pri: u32 = pri.parse().map_err(|_| "PRI")?;
    if pri > 191 {
        return Err(format!("PRI {pri} out of range"));
    }
    let rest = rest.strip_prefix("1 ").ok_or("VERSION is not 1")?;
    let mut fields = rest.splitn(6, ' ');
    let mut next = |name: &str, max: usize| -> Result<String, String> {
        let field = fields.next().ok_or(format!("no {name}"))?;
        if field.is_empty() || field.len() > max || !field.bytes().all(|b| (33..=126).contains(&b))
        {
            return Err(format!("{name} {field:?}"));
        }
        Ok(field.to_owned())
    };
    let timestamp_text = next("TIMESTAMP", 32)?;
    let hostname = next("HOSTNAME", 255)?;
    let app_name = next("APP-NAME", 48)?;
    let procid = next("PROCID", 128)?;
    let msgid = next("MSGID", 32)?;
    let rest = fields.next().ok_or("no STRUCTURED-DATA")?;
    // FULL-DATE "T" FULL-TIME, TIME-SECFRAC of 1 to 6 digits.
    let secfrac = timestamp_text
        .split_once('.')
        .map(|(_, frac)| frac.bytes().take_while(u8::is_ascii_digit).count());
    if secfrac.is_some_and(|n| n == 0 || n > 6) || !timestamp_text.contains('T') {
        return Err(format!("TIMESTAMP {timestamp_text:?}"));
    }
    let timestamp = OffsetDateTime::parse(
        &timestamp_text,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|err| format!("TIMESTAMP {timestamp_text:?}: {err}"))?;
    let mut sd = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    if rest.starts_with('-') {
        chars.next();
    } else {
        while let Some((_, '[')) = chars.peek().copied() {
            chars.next();
            let mut id = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c == ' ' || c == ']' {
                    break;
                }
                if c == '=' || c == '"' || !c.is_ascii_graphic() {
                    return Err(format!("SD-ID character {c:?}"));
                }
                id.push(c);
                chars.next();
            }
            if id.is_empty() || id.len() > 32 {
                return Err(format!("SD-ID {id:?}"));
            }
            let mut params = BTreeMap::new();
            loop {
                match chars.next() {
                    Some((_, ']')) => break,
                    Some((_, ' ')) => {}
                    other => return Err(format!("in SD-ELEMENT {id}: {other:?}")),
                }
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    if c == ' ' || c == ']' || c == '"' || !c.is_ascii_graphic() {
                        return Err(format!("PARAM-NAME character {c:?}"));
                    }
                    name.push(c);
                }
                if name.is_empty() || name.len() > 32 || chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("SD-PARAM {name:?}"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or("PARAM-VALUE not closed")?.1 {
                        '\\' => {
                            let escaped = chars.next().ok_or("escape at end")?.1;
                            if !matches!(escaped, '"' | '\\' | ']') {
                                value.push('\\');
                            }
                            value.push(escaped);
                        }
                        '"' => break,
                        ']' => return Err("unescaped ] in PARAM-VALUE".into()),
                        c => value.push(c),
                    }
                }
                params.insert(name, value);
            }
            sd.insert(id, params);
        }
        if sd.is_empty() {
            return Err("STRUCTURED-DATA is neither - nor SD-ELEMENTs".into());
        }
    }
    let msg_start = match chars.next() {
        None => rest.len(),
        Some((i, ' ')) => i + 1,
        Some(other) => return Err(format!("after STRUCTURED-DATA: {other:?}")),
    };
    let msg = rest[msg_start..]
        .strip_prefix('\u{feff}')
        .ok_or("MSG does not start with a BOM")?
        .to_owned();
    Ok(Syslog {
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd,
        msg,
    })
}

/// Checks that `messages` are the entries of `store`, field by field.
async fn check_messages_match_rows(store: &Store, messages: &[String]) {
    let entries = all_entries(store).await;
    assert_eq!(
        messages.len(),
        entries.len(),
        "one message per entry: {messages:#?}"
    );
    for (text, entry) in messages.iter().zip(&entries) {
        let message = parse_5424(text).unwrap_or_else(|err| panic!("{err}: {text:?}"));
        let severity = if entry.outcome == "ok" { 5 } else { 4 };
        assert_eq!(message.pri, 10 * 8 + severity, "authpriv: {text}");
        assert_eq!(message.hostname, "collector.so-tttt");
        assert_eq!(message.app_name, "cntt-collector");
        assert_eq!(message.procid, std::process::id().to_string());
        assert_eq!(message.msgid, entry.action);
        assert_eq!(cntt_collector::store::millis(message.timestamp), entry.at);
        let sd = &message.sd["cntt-audit@32473"];
        let mut expected = BTreeMap::from([
            ("id".to_owned(), entry.id.to_string()),
            ("at".to_owned(), entry.at.to_string()),
            ("actor".to_owned(), entry.actor.clone()),
            ("action".to_owned(), entry.action.clone()),
            ("target".to_owned(), entry.target.clone()),
            ("outcome".to_owned(), entry.outcome.clone()),
            ("details".to_owned(), entry.details.clone()),
            ("hash".to_owned(), entry.hash.clone().unwrap()),
        ]);
        if let Some(address) = &entry.remote_addr {
            expected.insert("remote_addr".into(), address.clone());
        }
        assert_eq!(sd, &expected);
        assert!(
            message
                .msg
                .starts_with(&format!("{} {}", entry.actor, entry.action)),
            "{}",
            message.msg
        );
    }
}

/// A collector forwarding to `address` over `transport`, with more `[audit.syslog]` lines.
async fn forwarding_collector(
    db: &e2e::TestDb,
    address: &str,
    transport: &str,
    more: &str,
) -> e2e::TestCollector {
    let options = CollectorOptions {
        extra_config: format!(
            "[audit.syslog]\naddress = \"{address}\"\ntransport = \"{transport}\"\nhostname = \"collector.so-tttt\"\n{more}\n"
        ),
        ..CollectorOptions::default()
    };
    spawn_collector_with(db, &options).await
}

/// Makes a collector audit a few things: a token, a refusal, a command.
async fn audit_some(collector: &e2e::TestCollector) {
    collector.api_token(Role::Admin, None).await;
    collector
        .client()
        .get(format!("{}/api/v1/units", collector.base_url))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    collector
        .store
        .audit(&entry("Đắk Mil"), OffsetDateTime::now_utc())
        .await
        .unwrap();
}

/// Octet-counted frames (RFC 6587) read from `stream` into `frames` until it closes.
async fn read_frames<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    frames: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(space) = buffer.iter().position(|b| *b == b' ') {
            let length: usize = std::str::from_utf8(&buffer[..space])
                .unwrap()
                .parse()
                .expect("MSG-LEN");
            if buffer.len() < space + 1 + length {
                break;
            }
            let frame = buffer[space + 1..space + 1 + length].to_vec();
            buffer.drain(..space + 1 + length);
            frames
                .lock()
                .unwrap()
                .push(String::from_utf8(frame).expect("UTF-8 message"));
        }
    }
}

async fn wait_for(frames: &Arc<std::sync::Mutex<Vec<String>>>, store: &Store) -> Vec<String> {
    eventually(WAIT, "every audit entry at the syslog listener", || async {
        let n_entries = all_entries(store).await.len();
        let got = frames.lock().unwrap().clone();
        (got.len() >= n_entries).then_some(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_reach_syslog_over_udp_and_tcp_as_rfc_5424() {
    // UDP.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let udp_frames = frames.clone();
    let listener = tokio::spawn(async move {
        let mut datagram = vec![0_u8; 65_536];
        loop {
            let n = socket.recv(&mut datagram).await.unwrap();
            udp_frames
                .lock()
                .unwrap()
                .push(String::from_utf8(datagram[..n].to_vec()).unwrap());
        }
    });
    let db = e2e::sqlite_db();
    let collector = forwarding_collector(&db, &address, "udp", "").await;
    audit_some(&collector).await;
    let messages = wait_for(&frames, &collector.store).await;
    check_messages_match_rows(&collector.store, &messages).await;
    listener.abort();
    collector.stop().await;

    // TCP, octet counting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tcp_frames = frames.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(read_frames(stream, tcp_frames.clone()));
        }
    });
    let db = e2e::sqlite_db();
    let collector = forwarding_collector(&db, &address, "tcp", "").await;
    audit_some(&collector).await;
    let messages = wait_for(&frames, &collector.store).await;
    check_messages_match_rows(&collector.store, &messages).await;
    acceptor.abort();
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_reach_syslog_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let files = cntt_collector::config::tls::init(
        &dir.path().join("syslog"),
        &["localhost".to_owned()],
        false,
    )
    .unwrap();
    let tls = cntt_collector::config::tls::server_config(&cntt_collector::config::TlsConfig {
        cert: files.server_cert.clone(),
        key: files.server_key.clone(),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tls_frames = frames.clone();
    let acceptor = tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            if let Ok(stream) = acceptor.accept(stream).await {
                tokio::spawn(read_frames(stream, tls_frames.clone()));
            }
        }
    });
    let db = e2e::sqlite_db();
    let ca = format!("ca_file = \"{}\"", files.ca_cert.display());
    let collector = forwarding_collector(&db, &format!("localhost:{port}"), "tls", &ca).await;
    audit_some(&collector).await;
    let messages = wait_for(&frames, &collector.store).await;
    check_messages_match_rows(&collector.store, &messages).await;
    acceptor.abort();
    collector.stop().await;
}

/// The syslog server is away: the database writes go on, entries wait in the bounded queue, the
/// rest are dropped and counted in the metric; when it comes back, what waited arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_server_away_never_stops_the_audit_log() {
    // A port where nothing listens yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let db = e2e::sqlite_db();
    let collector = forwarding_collector(&db, &address, "tcp", "queue = 3").await;
    let before = all_entries(&collector.store).await.len();
    let started = std::time::Instant::now();
    for i in 0..20 {
        collector
            .store
            .audit(&entry(&format!("lúc vắng {i}")), OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "writes never wait for syslog"
    );
    let entries = all_entries(&collector.store).await;
    assert_eq!(entries.len(), before + 20, "every entry is in the database");
    let admin = collector.api_token(Role::Admin, None).await;
    let metrics = collector.metrics(&admin).await;
    let dropped: usize = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cntt_collector_audit_forward_dropped_total "))
        .expect("the metric is exported")
        .parse()
        .unwrap();
    assert!(
        dropped >= 16,
        "at most the queue and the entry in hand wait: {dropped} dropped"
    );

    // The server comes back on that port: what waited arrives, in order.
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tcp_frames = frames.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(read_frames(stream, tcp_frames.clone()));
        }
    });
    let n_entries = all_entries(&collector.store).await.len();
    let arrived = eventually(
        Duration::from_secs(40),
        "the queued entries at the listener",
        || async {
            let got = frames.lock().unwrap().clone();
            (got.len() + dropped >= n_entries).then_some(got)
        },
    )
    .await;
    assert_eq!(
        arrived.len() + dropped,
        n_entries,
        "every entry is forwarded or counted"
    );
    let ids: Vec<i64> = arrived
        .iter()
        .map(|text| {
            parse_5424(text).unwrap().sd["cntt-audit@32473"]["id"]
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "in order: {ids:?}"
    );
    // Once back, new entries go at once.
    collector
        .store
        .audit(&entry("đã về"), OffsetDateTime::now_utc())
        .await
        .unwrap();
    eventually(WAIT, "a new entry forwarded", || async {
        let got = frames.lock().unwrap().clone();
        got.last()
            .is_some_and(|text| text.contains("đã về"))
            .then_some(())
    })
    .await;
    acceptor.abort();
    collector.stop().await;
}
