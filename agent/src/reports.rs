//! Periodic reports on the agent: the prefill context kept on disk, drafting and submitting.
//!
//! The running agent fetches its unit's [`ReportContext`] from the collector a while after it
//! starts (at most a minute) and then every `uplink.report_context_every`, and keeps the last one
//! in `reports/context.json` (written to a temporary file, synced, renamed). `cntt-agent report draft` asks the collector first and falls
//! back to that file, so an officer can draft while the WAN is down; `report submit` checks the
//! document (the same [`cntt_common::report::parse`] the collector uses, plus the agent's unit and
//! the known periods) and hands it to the spool, so it reaches the outbox and is sent when the link
//! returns. The submission time travels with it: timeliness is judged by it, not by arrival.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::report::{ReportContext, CONTEXT_PATH};
use cntt_common::wire::{Event, Payload, PeriodicReport};
use cntt_common::Secret;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Where the last context is kept.
pub fn context_path(state_dir: &Path) -> PathBuf {
    state_dir.join("reports").join("context.json")
}

/// Asks the collector for the unit's report context.
///
/// # Errors
///
/// When the collector cannot be reached or answers with an error.
pub async fn fetch_context(
    client: &reqwest::Client,
    server: &str,
    credential: &Secret,
) -> anyhow::Result<ReportContext> {
    let url = format!("{server}{CONTEXT_PATH}");
    let response = client
        .get(&url)
        .bearer_auth(credential.expose())
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    let status = response.status();
    // A context is a few KiB; the limit keeps a hostile answer from growing memory (issue 13, L3).
    let body = crate::identity::read_reply(response, 4 * crate::identity::MAX_REPLY_BYTES)
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    serde_json::from_slice::<ReportContext>(&body)
        .with_context(|| format!("reading the answer of {url}"))
}

/// Keeps `context` on disk, replacing the previous one atomically.
///
/// # Errors
///
/// When the folder cannot be written.
pub fn save_context(state_dir: &Path, context: &ReportContext) -> anyhow::Result<()> {
    use std::io::Write;
    let path = context_path(state_dir);
    let dir = path.parent().expect("the context path has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join("context.json.tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(context).context("encoding the context")?)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The context kept on disk, if any.
///
/// # Errors
///
/// When the file exists but cannot be read or parsed.
pub fn load_context(state_dir: &Path) -> anyhow::Result<Option<ReportContext>> {
    let path = context_path(state_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("reading {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The daemon's task: fetch and keep the context at start and every `every`.
pub async fn refresh(
    client: reqwest::Client,
    server: String,
    credential: Secret,
    state_dir: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // The first fetch waits a little (at most a minute), so it never competes with the uplink's
    // first uploads after a start, when the outbox may hold a backlog.
    let first = tokio::time::Instant::now() + every.min(Duration::from_secs(60));
    let mut ticker = tokio::time::interval_at(first, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        match fetch_context(&client, &server, &credential).await {
            Ok(context) => match save_context(&state_dir, &context) {
                Ok(()) => {
                    tracing::debug!(periods = context.periods.len(), "report context refreshed")
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "could not keep the report context")
                }
            },
            Err(err) => {
                tracing::debug!(error = %format!("{err:#}"), "report context not refreshed; the last one stays")
            }
        }
    }
}

/// Where the context of a draft came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetched just now.
    Live,
    /// The copy on disk, because the collector could not be reached (the error).
    Kept(String),
}

/// Writes a draft of `period` to `out`, from `context`; refuses to overwrite unless `force`.
/// Returns a message for the officer.
///
/// # Errors
///
/// When the period is not one the unit reports on now, or the file exists or cannot be written.
pub fn write_draft(
    context: &ReportContext,
    source: &Source,
    label: &str,
    scheme: Option<&str>,
    out: &Path,
    force: bool,
) -> anyhow::Result<String> {
    let matching: Vec<_> = context
        .periods
        .iter()
        .filter(|p| p.label == label && scheme.is_none_or(|s| s == p.scheme))
        .collect();
    let period = match matching.as_slice() {
        [one] => *one,
        [] => bail!(
            "kỳ {label} không nằm trong các kỳ đơn vị đang báo cáo ({}); kiểm tra lại --period",
            context
                .periods
                .iter()
                .map(|p| format!("{} ({})", p.label, p.scheme))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!("kỳ {label} thuộc nhiều chế độ báo cáo; chọn một bằng --scheme"),
    };
    if out.exists() && !force {
        bail!(
            "tệp {} đã có; dùng --force để ghi đè hoặc --out để chọn tên khác",
            out.display()
        );
    }
    let text = cntt_common::report::draft(context, period);
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    let origin = match source {
        Source::Live => "số liệu lấy trực tiếp từ máy chủ giám sát của Sở".to_owned(),
        Source::Kept(_) => format!(
            "không kết nối được máy chủ giám sát của Sở; số liệu theo bản lưu lúc {}",
            cntt_common::report::time_vi(context.generated_at)
        ),
    };
    let versions = if period.versions > 0 {
        format!(
            "\nĐơn vị đã nộp {} phiên bản cho kỳ này; nộp lại sẽ lưu thêm một phiên bản.",
            period.versions
        )
    } else {
        String::new()
    };
    Ok(format!(
        "Đã tạo bản nháp báo cáo {} của {}: {}\n({origin}; hạn nộp {}.){versions}\nMở tệp, điền các mục 1–8, rồi nộp: cntt-agent report submit {}\n",
        period.label_vi,
        context.unit_name,
        out.display(),
        cntt_common::report::day_vi(&period.due),
        out.display()
    ))
}

/// Checks a report document for `unit_code` (and, when a context is kept, that its period is one
/// the unit reports on) and returns the event to queue.
///
/// # Errors
///
/// Every problem, in Vietnamese.
pub fn prepare_submission(
    document: &str,
    unit_code: &str,
    context: Option<&ReportContext>,
    now: OffsetDateTime,
) -> anyhow::Result<(Event, String)> {
    let report =
        cntt_common::report::parse(document).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    let front = &report.front;
    let mut problems = Vec::new();
    if front.unit != unit_code {
        problems.push(format!(
            "báo cáo ghi mã đơn vị {}, nhưng máy này thuộc đơn vị {unit_code}",
            front.unit
        ));
    }
    let mut label_vi = front.period.clone();
    if let Some(context) = context {
        match context
            .periods
            .iter()
            .find(|p| p.label == front.period && p.scheme == front.scheme)
        {
            Some(period) => label_vi = period.label_vi.clone(),
            None => problems.push(format!(
                "kỳ {} ({}) không nằm trong các kỳ đơn vị đang báo cáo: {}",
                front.period,
                front.scheme,
                context
                    .periods
                    .iter()
                    .map(|p| format!("{} ({})", p.label, p.scheme))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if !problems.is_empty() {
        bail!("báo cáo chưa hợp lệ:\n  - {}", problems.join("\n  - "));
    }
    let payload = PeriodicReport {
        scheme: front.scheme.clone(),
        period: front.period.clone(),
        unit_code: front.unit.clone(),
        officer: front.officer.clone(),
        submitted_at: now,
        document: document.to_owned(),
    };
    Ok((
        Event::new(0, now, &Payload::PeriodicReport(Box::new(payload))),
        label_vi,
    ))
}

/// `cntt-agent report draft`: the context from the collector, or the copy kept on disk when it
/// cannot be reached, written as a draft to `out`. Returns the message for the officer.
///
/// # Errors
///
/// When the agent is not enrolled, neither source has a context, or the draft cannot be written.
pub async fn draft_command(
    config: &crate::config::Config,
    period: &str,
    scheme: Option<&str>,
    out: &Path,
    force: bool,
) -> anyhow::Result<String> {
    let identity = crate::identity::Identity::load(&config.state_dir)?;
    let server = config.uplink.url.clone().unwrap_or(identity.server.clone());
    let client = crate::identity::pinned_client(
        &crate::identity::ca_path(&config.state_dir),
        Duration::from_secs(15),
    )?;
    let (context, source) = match fetch_context(&client, &server, &identity.credential).await {
        Ok(context) => {
            if let Err(err) = save_context(&config.state_dir, &context) {
                tracing::warn!(error = %format!("{err:#}"), "could not keep the report context");
            }
            (context, Source::Live)
        }
        Err(err) => match load_context(&config.state_dir)? {
            Some(context) => (context, Source::Kept(format!("{err:#}"))),
            None => bail!(
                "không kết nối được máy chủ giám sát của Sở và máy này chưa lưu số liệu báo cáo nào ({err:#}); thử lại khi có mạng"
            ),
        },
    };
    write_draft(&context, &source, period, scheme, out, force)
}

/// `cntt-agent report submit FILE`: checks the report and queues it (spool, then the outbox when
/// no agent is running). Returns the message for the officer.
///
/// # Errors
///
/// When the agent is not enrolled, the file cannot be read, the report is invalid (every problem
/// listed), or the spool cannot be written.
pub fn submit_command(
    config: &crate::config::Config,
    file: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<String> {
    let identity = crate::identity::Identity::load(&config.state_dir)?;
    let document =
        std::fs::read_to_string(file).with_context(|| format!("đọc tệp {}", file.display()))?;
    let context = load_context(&config.state_dir).unwrap_or(None);
    let (event, label_vi) =
        prepare_submission(&document, &identity.unit_code, context.as_ref(), now)?;
    crate::spool::submit(&config.state_dir, &event)?;
    // With no agent running, record it now so it is in the outbox for the next run.
    if let Ok(_lock) = crate::lock_state_dir(&config.state_dir) {
        let (mut outbox, _report) =
            crate::outbox::Outbox::open(&config.state_dir.join("outbox"), config.outbox.clone())?;
        crate::spool::drain(&config.state_dir, &mut outbox)?;
    }
    Ok(format!(
        "Đã ghi nhận báo cáo {label_vi} của {} (mã {}), nộp lúc {}.\nBáo cáo sẽ được gửi về máy chủ giám sát của Sở ngay khi có kết nối và được tính theo thời điểm nộp này.\n",
        identity.unit_name,
        event.id,
        cntt_common::report::time_vi(now)
    ))
}
