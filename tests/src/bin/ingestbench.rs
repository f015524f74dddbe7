//! The parts of `scripts/ingestbench` (issue 15) that need Rust: load for wrk, the plain batched
//! insert that is the database's limit, and the count of what was stored.
//!
//! - `bodies`: enrolls agents through a running collector's real API (`POST /api/v1/enroll`), then
//!   writes request bodies as agents send them — one batch of 1 heartbeat and 39 probe results, every
//!   event id new (UUIDv7, as `Event::new` makes them), gzip-compressed — into one file that the
//!   wrk script reads: per request a line `<length> <credential>` and the body's bytes.
//! - `pushgateway`: the same for the Prometheus Pushgateway: text bodies of 20 samples (~1.2 KB).
//! - `plain`: the limit of the engine: the rows of those batches (probe results with the
//!   collector's own schema and indexes, after its migrations) inserted by one connection, 1,000
//!   rows per transaction in multi-row statements of 10, through the driver's own types; prints
//!   rows per second.
//! - `count`: probe results and events stored in a database, to check what wrk says was accepted.
//!
//! Usage: see `ingestbench --help`.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};
use cntt_common::wire::{
    Batch, CheckKind, EnrollRequest, EnrollResponse, Event, Payload, ProbeResult, TargetKind,
    PROTOCOL_VERSION,
};
use flate2::write::GzEncoder;
use sqlx::{Connection, Executor};
use time::OffsetDateTime;

const HELP: &str = "ingestbench: load and limits for scripts/ingestbench (issue 15)

  ingestbench bodies --server URL --ca CA.pem --token-file F --agents N [--warmup W] --requests R --out FILE
      enrolls N agents with the enrollment token in F (its first line), writes W gzip batch bodies
      to FILE.warmup and R more to FILE
  ingestbench pushgateway --requests R [--groups G] --out FILE
      writes R Pushgateway bodies of 20 samples, pushed to G groups (default 1)
  ingestbench plain --db URL --rows N
      inserts N probe-result rows into a fresh database of the collector's schema; prints rows/s
  ingestbench count --db URL
      prints the probe results and events stored";

/// Probe results per batch: an agent with 20 targets sends 39 results and a heartbeat a minute.
const PROBES_PER_BATCH: usize = 39;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        say(HELP);
        return Ok(());
    };
    let option = |name: &str| -> anyhow::Result<String> {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .cloned()
            .with_context(|| format!("{name} is required; see ingestbench --help"))
    };
    let number = |name: &str| -> anyhow::Result<usize> {
        option(name)?
            .parse()
            .with_context(|| format!("{name} must be a number"))
    };
    let runtime = tokio::runtime::Runtime::new().context("starting tokio")?;
    match command.as_str() {
        "bodies" => runtime.block_on(bodies(
            &option("--server")?,
            &option("--ca")?,
            &option("--token-file")?,
            number("--agents")?,
            number("--warmup").unwrap_or(0),
            number("--requests")?,
            &option("--out")?,
        )),
        "pushgateway" => pushgateway(
            number("--requests")?,
            number("--groups").unwrap_or(1),
            &option("--out")?,
        ),
        "plain" => runtime.block_on(plain(&option("--db")?, number("--rows")?)),
        "count" => runtime.block_on(count(&option("--db")?)),
        "-h" | "--help" | "help" => {
            say(HELP);
            Ok(())
        }
        other => bail!("unknown command {other:?}; see ingestbench --help"),
    }
}

/// Writes a line to standard output (the figure the script reads).
fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The 20 targets of a typical agent and how each is checked.
fn targets() -> Vec<(String, TargetKind, CheckKind, String)> {
    (0..20)
        .map(|i| {
            let (kind, check, address) = match i % 4 {
                0 => (TargetKind::Lan, CheckKind::Icmp, format!("10.0.{i}.1")),
                1 => (TargetKind::Wan, CheckKind::Tcp, format!("10.1.{i}.1:443")),
                2 => (
                    TargetKind::Server,
                    CheckKind::Http,
                    format!("https://may-chu-{i}.example.gov.vn/"),
                ),
                _ => (TargetKind::Internet, CheckKind::Dns, "gov.vn".to_owned()),
            };
            (format!("muc-tieu-{i:02}"), kind, check, address)
        })
        .collect()
}

/// One agent's batch: a heartbeat and 39 probe results, sequence numbers from `seq`.
fn batch(seq: u64, round: u64, at: OffsetDateTime) -> Batch {
    let targets = targets();
    let mut events = vec![e2e::heartbeat_event(seq, 60)];
    for i in 0..PROBES_PER_BATCH {
        let (target, target_kind, check, address) = &targets[(i + round as usize) % targets.len()];
        let ok = !(i + round as usize).is_multiple_of(17);
        let result = ProbeResult {
            target: target.clone(),
            target_kind: *target_kind,
            check: *check,
            address: address.clone(),
            ok,
            rtt_ms: ok.then_some(1.5 + i as f64),
            error: (!ok).then(|| "không phản hồi trong 3 giây".to_owned()),
            http_status: (*check == CheckKind::Http && ok).then_some(200),
            cert_not_after: None,
        };
        events.push(Event::new(
            seq + 1 + i as u64,
            at,
            &Payload::ProbeResult(result),
        ));
    }
    Batch {
        version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        sent_at: at,
        events,
    }
}

async fn bodies(
    server: &str,
    ca: &str,
    token_file: &str,
    agents: usize,
    warmup: usize,
    requests: usize,
    out: &str,
) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {token_file}"))?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let ca = std::fs::read(ca).with_context(|| format!("reading {ca}"))?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).context("reading the CA")?)
        .build()
        .context("building the HTTPS client")?;
    let started = Instant::now();
    let mut credentials = Vec::with_capacity(agents);
    for chunk_start in (0..agents).step_by(32) {
        let mut enrolling = Vec::new();
        for i in chunk_start..(chunk_start + 32).min(agents) {
            let request = EnrollRequest {
                version: PROTOCOL_VERSION,
                token: cntt_common::Secret::new(token.clone()),
                hostname: format!("may-{i:05}"),
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            };
            let client = client.clone();
            let url = format!("{server}/api/v1/enroll");
            enrolling.push(tokio::spawn(async move {
                let response = client.post(url).json(&request).send().await?;
                let status = response.status();
                if !status.is_success() {
                    bail!("enrollment refused ({status}): {}", response.text().await?);
                }
                let enrolled: EnrollResponse = response.json().await?;
                anyhow::Ok(enrolled.credential.expose().to_owned())
            }));
        }
        for task in enrolling {
            credentials.push(task.await??);
        }
    }
    eprintln!(
        "enrolled {agents} agents through the API in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let warmup_out = format!("{out}.warmup");
    let create = |path: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
        Ok(std::io::BufWriter::new(file))
    };
    let mut warmup_writer = create(&warmup_out)?;
    let mut main_writer = create(out)?;
    let started = Instant::now();
    let mut bytes_raw = 0usize;
    let mut bytes_gzip = 0usize;
    let now = OffsetDateTime::now_utc();
    let requests = warmup + requests;
    for request in 0..requests {
        let writer = if request < warmup {
            &mut warmup_writer
        } else {
            &mut main_writer
        };
        let agent = request % agents;
        let round = (request / agents) as u64;
        let body = serde_json::to_vec(&batch(1 + round * 40, round, now))?;
        let mut gzip = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&body)?;
        let gzip = gzip.finish()?;
        bytes_raw += body.len();
        bytes_gzip += gzip.len();
        writeln!(writer, "{} {}", gzip.len(), credentials[agent])?;
        writer.write_all(&gzip)?;
        if request > 0 && request % 20_000 == 0 {
            eprintln!("  {request} of {requests} bodies written");
        }
    }
    warmup_writer.flush()?;
    main_writer.flush()?;
    eprintln!(
        "wrote {requests} bodies (the first {warmup} for the warm-up) in {:.1} s: {} bytes of JSON and {} gzip-compressed per request on average",
        started.elapsed().as_secs_f64(),
        bytes_raw / requests.max(1),
        bytes_gzip / requests.max(1)
    );
    Ok(())
}

fn pushgateway(requests: usize, groups: usize, out: &str) -> anyhow::Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {out}"))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut total = 0;
    for request in 0..requests {
        let mut body = String::new();
        body.push_str("# TYPE cntt_probe_rtt_milliseconds gauge\n");
        for sample in 0..20 {
            body.push_str(&format!(
                "cntt_probe_rtt_milliseconds{{target=\"muc-tieu-{sample:02}\",kind=\"lan\"}} {}.{}\n",
                request % 97,
                sample
            ));
        }
        total += body.len();
        // The group (instance) in the path. The Pushgateway checks each push against every group it
        // holds, so its rate falls with their number: one group by default, as it is fastest.
        writeln!(writer, "{} i{}", body.len(), request % groups.max(1))?;
        writer.write_all(body.as_bytes())?;
    }
    writer.flush()?;
    eprintln!(
        "wrote {requests} Pushgateway bodies of {} bytes on average",
        total / requests.max(1)
    );
    Ok(())
}

/// Inserts `rows` probe results like the benchmark's into a fresh database of the collector's
/// schema, the way a program that only inserts would: one connection, 1,000 rows per
/// transaction, multi-row INSERT of 100 rows (anonymous `?` placeholders on SQLite, which binds them by
/// position), the driver's own types.
async fn plain(url: &str, rows: usize) -> anyhow::Result<()> {
    // The collector's migrations make the schema, indexes included.
    let store = cntt_collector::store::Store::connect(&cntt_collector::config::DatabaseConfig {
        url: url.to_owned(),
        ..Default::default()
    })
    .await?;
    store.close().await;
    let agent = uuid::Uuid::now_v7().to_string();
    let now = OffsetDateTime::now_utc();
    let at = i64::try_from(now.unix_timestamp_nanos() / 1_000_000)?;
    const ROWS_PER_STATEMENT: usize = 100;
    const STATEMENTS_PER_TRANSACTION: usize = 10;
    let sql = |placeholder: &dyn Fn(usize) -> String| {
        let mut sql = String::from(
            "INSERT INTO probe_results (id, agent_id, unit_id, target, target_kind, check_kind, address, at, ok, rtt_ms, error, http_status, cert_not_after) VALUES ",
        );
        for row in 0..ROWS_PER_STATEMENT {
            if row > 0 {
                sql.push_str(", ");
            }
            let p: Vec<String> = (0..13).map(|c| placeholder(row * 13 + c + 1)).collect();
            sql.push_str(&format!("({})", p.join(", ")));
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
        sql
    };
    let targets = targets();
    let started;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        conn.execute(agent_rows(&agent, at).as_str()).await?;
        let unit_id: i64 = sqlx::query_scalar("SELECT id FROM units WHERE code = 'BENCH'")
            .fetch_one(&mut conn)
            .await?;
        let sql = sql(&|_| "?".to_owned());
        started = Instant::now();
        let mut done = 0;
        while done < rows {
            let mut tx = conn.begin().await?;
            for _ in 0..STATEMENTS_PER_TRANSACTION {
                let mut query = sqlx::query(&sql);
                for row in 0..ROWS_PER_STATEMENT {
                    let (target, kind, check, address) = &targets[(done + row) % targets.len()];
                    query = query
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&agent)
                        .bind(unit_id)
                        .bind(target)
                        .bind(wire(kind))
                        .bind(wire(check))
                        .bind(address)
                        .bind(at)
                        .bind(1_i64)
                        .bind(2.5_f64)
                        .bind(None::<String>)
                        .bind(None::<i64>)
                        .bind(None::<i64>);
                }
                query.execute(&mut *tx).await?;
                done += ROWS_PER_STATEMENT;
            }
            tx.commit().await?;
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        conn.execute(agent_rows(&agent, at).as_str()).await?;
        let unit_id: i64 = sqlx::query_scalar("SELECT id FROM units WHERE code = 'BENCH'")
            .fetch_one(&mut conn)
            .await?;
        let sql = sql(&|i| format!("${i}"));
        started = Instant::now();
        let mut done = 0;
        while done < rows {
            let mut tx = conn.begin().await?;
            for _ in 0..STATEMENTS_PER_TRANSACTION {
                let mut query = sqlx::query(&sql);
                for row in 0..ROWS_PER_STATEMENT {
                    let (target, kind, check, address) = &targets[(done + row) % targets.len()];
                    query = query
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&agent)
                        .bind(unit_id)
                        .bind(target)
                        .bind(wire(kind))
                        .bind(wire(check))
                        .bind(address)
                        .bind(at)
                        .bind(1_i64)
                        .bind(2.5_f64)
                        .bind(None::<String>)
                        .bind(None::<i64>)
                        .bind(None::<i64>);
                }
                query.execute(&mut *tx).await?;
                done += ROWS_PER_STATEMENT;
            }
            tx.commit().await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    say(&format!("{:.0}", rows as f64 / seconds));
    eprintln!("plain batched insert: {rows} rows in {seconds:.2} s");
    Ok(())
}

/// The unit and agent rows the probe results refer to, as plain SQL both engines read.
fn agent_rows(agent: &str, at: i64) -> String {
    format!(
        "INSERT INTO units (code, name, kind, created_at, updated_at) VALUES ('BENCH', 'Đơn vị đo', 'commune', {at}, {at});
         INSERT INTO agents (id, unit_id, hostname, agent_version, credential_hash, enrolled_at)
         SELECT '{agent}', id, 'bench', '0', '{agent}', {at} FROM units WHERE code = 'BENCH';"
    )
}

/// The text a wire enum travels as.
fn wire<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

async fn count(url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let probes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM probe_results")
        .fetch_one(&mut conn)
        .await?;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await?;
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT id) FROM probe_results")
        .fetch_one(&mut conn)
        .await?;
    say(&format!("{probes} {events} {distinct}"));
    Ok(())
}
