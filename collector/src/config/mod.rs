//! The collector's configuration file: what to serve, where to store, which certificates.
//!
//! [`CollectorConfig`] is what we deserialize from TOML (unknown keys are errors naming the key);
//! [`Config`] is the checked value the rest of the collector receives. Every default is written out
//! in `collector/collector.example.toml`, which a test keeps in step with this file.

pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// HTTPS listener.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Database.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Server certificate.
    pub tls: TlsConfig,
    /// Limits of the ingest endpoint.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Incidents the collector infers itself.
    #[serde(default)]
    pub incidents: IncidentsConfig,
    /// Notices to leadership by email and webhook.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// How long stored data is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Periodic reports of the IT officers: schemes, reminders, the consolidated report.
    #[serde(default)]
    pub reports: ReportsConfig,
    /// What happens to agents of units that have ended (merged, dissolved).
    #[serde(default)]
    pub units: UnitsConfig,
    /// Incident reports to leadership: forms, recipients, closing deadline.
    #[serde(default)]
    pub incident_reports: crate::documents::incident::Scheme,
    /// Who issues the documents, as dated entries; none means the shipped ones
    /// (`collector/data/organisation.toml`).
    #[serde(default)]
    pub organisation: Vec<crate::domain::organisation::Organisation>,
    /// What a hostile network may cost the collector: connections, timeouts, unauthenticated
    /// requests, audit rows of refusals, token lifetime (issue 13).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The audit log: a copy of every entry to a syslog server.
    #[serde(default)]
    pub audit: AuditConfig,
    /// People's sessions and logins on the web console (issue 14).
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Planned maintenance windows (issue 17).
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
}

/// `[audit]`: the audit log. Its entries are chained by hashes (`cntt-collector audit verify`);
/// `[audit.syslog]` sends a copy of each off the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A syslog server that receives every entry as it is written; none by default.
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
}

/// `[audit.syslog]`: forwarding of audit entries to a syslog server (RFC 5424), done by
/// `audit_forward.rs`. Forwarding never delays or fails the database write: entries wait in a
/// bounded queue while the server is away, and past the bound they are dropped and counted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the syslog server.
    pub address: String,
    /// `udp` (RFC 5426), `tcp` (RFC 6587 octet counting) or `tls` (RFC 5425, needs `ca_file`).
    #[serde(default)]
    pub transport: SyslogTransport,
    /// Syslog facility by name: `kern`, `user`, … `auth`, `authpriv`, `local0` … `local7`.
    #[serde(default = "default_syslog_facility")]
    pub facility: String,
    /// APP-NAME of every message.
    #[serde(default = "default_syslog_app_name")]
    pub app_name: String,
    /// HOSTNAME of every message; empty means this machine's name.
    #[serde(default)]
    pub hostname: String,
    /// CA certificate (PEM) that signed the syslog server's certificate, for `tls`; relative to
    /// the config file's folder.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Entries waiting for the server at most; more are dropped and counted
    /// (`cntt_collector_audit_forward_dropped_total`).
    #[serde(default = "default_syslog_queue")]
    pub queue: usize,
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// One datagram per message.
    #[default]
    Udp,
    /// A TCP stream, each message preceded by its length in bytes.
    Tcp,
    /// As `tcp`, inside TLS.
    Tls,
}

/// Syslog facilities by name, in their numeric order (RFC 5424, section 6.2.1); `local0` to
/// `local7` are 16 to 23.
pub const SYSLOG_FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

fn default_syslog_facility() -> String {
    "authpriv".to_owned()
}

fn default_syslog_app_name() -> String {
    "cntt-collector".to_owned()
}

fn default_syslog_queue() -> usize {
    10_000
}

/// Checks `[audit.syslog]` and resolves its CA file against `base`.
fn check_audit(mut audit: AuditConfig, base: &Path) -> anyhow::Result<AuditConfig> {
    let Some(syslog) = &mut audit.syslog else {
        return Ok(audit);
    };
    let port = syslog
        .address
        .rsplit_once(':')
        .and_then(|(host, port)| (!host.is_empty()).then_some(port))
        .and_then(|port| port.parse::<u16>().ok());
    if port.is_none() {
        bail!(
            "audit.syslog.address {:?} must be host:port, like syslog.example:514",
            syslog.address
        );
    }
    if !SYSLOG_FACILITIES.contains(&syslog.facility.as_str()) {
        bail!(
            "audit.syslog.facility {:?} is not one of {}",
            syslog.facility,
            SYSLOG_FACILITIES.join(", ")
        );
    }
    let printable = |text: &str| text.bytes().all(|byte| (33..=126).contains(&byte));
    if syslog.app_name.is_empty() || syslog.app_name.len() > 48 || !printable(&syslog.app_name) {
        bail!("audit.syslog.app_name must be 1 to 48 printable ASCII characters without spaces");
    }
    if syslog.hostname.len() > 255 || !printable(&syslog.hostname) {
        bail!(
            "audit.syslog.hostname must be at most 255 printable ASCII characters without spaces"
        );
    }
    if syslog.queue == 0 {
        bail!("audit.syslog.queue must be at least 1");
    }
    match (syslog.transport, &syslog.ca_file) {
        (SyslogTransport::Tls, None) => {
            bail!("audit.syslog.transport = \"tls\" needs ca_file, the CA that signed the syslog server's certificate")
        }
        (_, Some(file)) => syslog.ca_file = Some(base.join(file)),
        _ => {}
    }
    Ok(audit)
}

/// `[console]`: sessions and logins of people on the web console. Every default is in
/// `collector.example.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session with no request for this long ends.
    #[serde(default = "default_idle_timeout", with = "duration_text")]
    pub idle_timeout: Duration,
    /// A session ends this long after its login, however busy.
    #[serde(default = "default_session_lifetime", with = "duration_text")]
    pub session_lifetime: Duration,
    /// Wrong passwords in a row that lock an account…
    #[serde(default = "default_lockout_attempts")]
    pub lockout_attempts: u32,
    /// …for this long.
    #[serde(default = "default_lockout_duration", with = "duration_text")]
    pub lockout_duration: Duration,
    /// The console's address as people reach it (`https://giamsat.example.gov.vn`), for the
    /// links in notices; none: notices carry no link.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long the acknowledgement link in a notice works.
    #[serde(default = "default_ack_link_lifetime", with = "duration_text")]
    pub ack_link_lifetime: Duration,
}

fn default_ack_link_lifetime() -> Duration {
    Duration::from_secs(7 * 86_400)
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            idle_timeout: default_idle_timeout(),
            session_lifetime: default_session_lifetime(),
            lockout_attempts: default_lockout_attempts(),
            lockout_duration: default_lockout_duration(),
            public_url: None,
            ack_link_lifetime: default_ack_link_lifetime(),
        }
    }
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_session_lifetime() -> Duration {
    Duration::from_secs(12 * 3600)
}

fn default_lockout_attempts() -> u32 {
    5
}

fn default_lockout_duration() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Refuses console settings that would lock everyone out or keep sessions forever.
fn check_console(console: &ConsoleConfig) -> anyhow::Result<()> {
    if console.lockout_attempts == 0 {
        bail!("console.lockout_attempts must be at least 1");
    }
    for (name, value) in [
        ("idle_timeout", console.idle_timeout),
        ("session_lifetime", console.session_lifetime),
        ("lockout_duration", console.lockout_duration),
    ] {
        if value < Duration::from_secs(1) {
            bail!("console.{name} must be at least 1s");
        }
    }
    if console.idle_timeout > console.session_lifetime {
        bail!("console.idle_timeout must not exceed console.session_lifetime");
    }
    if console.session_lifetime > Duration::from_secs(7 * 86_400) {
        bail!("console.session_lifetime must be at most 7d: people log in again at least weekly");
    }
    Ok(())
}

/// `[units]`: how the collector treats agents of units no longer valid today (`valid_to` in the
/// past, see `collector/data/README.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsConfig {
    /// `warn` (default): enrollment and reports are accepted, the enrollment answer and the log
    /// name the successor; `refuse`: enrollment with a token of such a unit, and batches of its
    /// agents, are refused with the successor named.
    #[serde(default)]
    pub ended: EndedUnits,
}

/// `[maintenance]`: planned maintenance windows (issue 17, `domain::maintenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Whether down time during a window counts against the unit's availability (it is shown
    /// apart either way).
    #[serde(default)]
    pub planned_counts_against: bool,
    /// A window whose occurrences last longer than this reminds its planner before it ends.
    #[serde(default = "default_remind_longer_than", with = "duration_text")]
    pub remind_longer_than: Duration,
    /// How long before the end the reminder goes.
    #[serde(default = "default_remind_before", with = "duration_text")]
    pub remind_before: Duration,
    /// Longest occurrence a window may have.
    #[serde(default = "default_longest_window", with = "duration_text")]
    pub longest: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> MaintenanceConfig {
        MaintenanceConfig {
            planned_counts_against: false,
            remind_longer_than: default_remind_longer_than(),
            remind_before: default_remind_before(),
            longest: default_longest_window(),
        }
    }
}

fn default_remind_longer_than() -> Duration {
    Duration::from_secs(8 * 3600)
}

fn default_remind_before() -> Duration {
    Duration::from_secs(3600)
}

fn default_longest_window() -> Duration {
    Duration::from_secs(7 * 86_400)
}

/// The rule for units that have ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndedUnits {
    /// Accept, with a warning naming the successor.
    #[default]
    Warn,
    /// Refuse, naming the successor.
    Refuse,
}

/// Periodic reports (QĐ 02/2017 Điều 12.1): which schemes units follow and reminders. The
/// consolidated report's letterhead comes from `[[organisation]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Schemes every reporting unit must report on.
    #[serde(default = "default_required_schemes")]
    pub required: Vec<String>,
    /// Kinds of unit that report.
    #[serde(default = "default_reporting_kinds")]
    pub unit_kinds: Vec<String>,
    /// Reminders to officers who have not submitted, this long before the due date.
    #[serde(default = "default_report_reminders", with = "duration_list")]
    pub reminders: Vec<Duration>,
    /// Tell the unit's leadership when its report is overdue.
    #[serde(default = "default_true")]
    pub overdue_notice: bool,
    /// A holiday calendar replacing the shipped one (`date,name,note`).
    #[serde(default)]
    pub holidays_file: Option<PathBuf>,
    /// Schemes added to, or replacing by name, the built-in ones.
    #[serde(default)]
    pub schemes: Vec<crate::domain::periods::SchemeConfig>,
}

impl Default for ReportsConfig {
    fn default() -> ReportsConfig {
        ReportsConfig {
            required: default_required_schemes(),
            unit_kinds: default_reporting_kinds(),
            reminders: default_report_reminders(),
            overdue_notice: true,
            holidays_file: None,
            schemes: Vec::new(),
        }
    }
}

fn default_required_schemes() -> Vec<String> {
    ["quarterly", "half-year", "yearly"]
        .map(String::from)
        .to_vec()
}

fn default_reporting_kinds() -> Vec<String> {
    ["department", "district", "commune"]
        .map(String::from)
        .to_vec()
}

fn default_report_reminders() -> Vec<Duration> {
    vec![Duration::from_secs(5 * 86_400), Duration::from_secs(86_400)]
}

fn default_true() -> bool {
    true
}

/// The legal floor of the audit log's retention (12 months); the database enforces it too.
pub const AUDIT_FLOOR: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long stored data is kept, and how often the retention job runs (`retention.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Probe results and raw heartbeat and probe_result events older than this are removed; probe
    /// results are first rolled up into hourly figures, which stay.
    #[serde(default = "default_retention_raw", with = "duration_text")]
    pub raw: Duration,
    /// Audit entries older than this are deleted; never below [`AUDIT_FLOOR`].
    #[serde(default = "default_retention_audit", with = "duration_text")]
    pub audit: Duration,
    /// Closed incidents closed longer ago than this are deleted with their timeline; kept forever
    /// when absent.
    #[serde(default, with = "duration_text_option")]
    pub incidents: Option<Duration>,
    /// How often the job runs; it also runs once when the server starts.
    #[serde(default = "default_retention_run_every", with = "duration_text")]
    pub run_every: Duration,
}

impl Default for RetentionConfig {
    fn default() -> RetentionConfig {
        RetentionConfig {
            raw: default_retention_raw(),
            audit: default_retention_audit(),
            incidents: None,
            run_every: default_retention_run_every(),
        }
    }
}

fn default_retention_raw() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_retention_audit() -> Duration {
    AUDIT_FLOOR
}

fn default_retention_run_every() -> Duration {
    Duration::from_secs(3600)
}

/// Notices to leadership: timing, wording and channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Put before every subject, e.g. `[TBSC]`.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// How long an incident must last before anyone is told, so flaps are not announced.
    #[serde(default = "default_grace", with = "duration_text")]
    pub grace: Duration,
    /// Reminders to those told, while an incident lasts; `0s` for none.
    #[serde(default = "default_reminder_every", with = "duration_text")]
    pub reminder_every: Duration,
    /// How often notices are planned and due ones sent.
    #[serde(default = "default_notify_every", with = "duration_text")]
    pub evaluate_every: Duration,
    /// Give up on a notice after this many failed attempts.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Longest time one delivery attempt may take; a sender's claim on a notice lasts three times
    /// this, so a notice held by a collector that died is taken over after that.
    #[serde(default = "default_attempt_timeout", with = "duration_text")]
    pub attempt_timeout: Duration,
    /// When the daily digest goes out, `HH:MM` in Vietnam's time, to contacts that asked for it.
    #[serde(default = "default_digest_at")]
    pub digest_at: String,
    /// A channel failing this long is reported to the Sở's on-duty officer through the other
    /// channel, when one is set up.
    #[serde(default = "default_channel_alarm_after", with = "duration_text")]
    pub channel_alarm_after: Duration,
    /// Wait before the first retry; it doubles per failed attempt.
    #[serde(default = "default_retry_first", with = "duration_text")]
    pub retry_first: Duration,
    /// Longest wait between attempts.
    #[serde(default = "default_retry_max", with = "duration_text")]
    pub retry_max: Duration,
    /// The console's address as people open it, e.g. `https://cntt.example.gov.vn`: Zalo and SMS
    /// texts link to the incident there. None: they say there is no link.
    #[serde(default)]
    pub console_url: Option<String>,
    /// Email over SMTP; none: no email.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// Webhooks, each with a name that contacts refer to.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    /// The province's Zalo bot; none: no Zalo.
    #[serde(default)]
    pub zalo: Option<ZaloConfig>,
    /// An SMS gateway over HTTP; none: no SMS.
    #[serde(default)]
    pub sms: Option<SmsConfig>,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            subject_prefix: default_subject_prefix(),
            grace: default_grace(),
            reminder_every: default_reminder_every(),
            evaluate_every: default_notify_every(),
            max_attempts: default_max_attempts(),
            attempt_timeout: default_attempt_timeout(),
            channel_alarm_after: default_channel_alarm_after(),
            digest_at: default_digest_at(),
            retry_first: default_retry_first(),
            retry_max: default_retry_max(),
            console_url: None,
            email: None,
            webhooks: Vec::new(),
            zalo: None,
            sms: None,
        }
    }
}

fn default_subject_prefix() -> String {
    "[TBSC]".to_owned()
}

fn default_grace() -> Duration {
    Duration::from_secs(120)
}

fn default_reminder_every() -> Duration {
    Duration::from_secs(4 * 3600)
}

fn default_notify_every() -> Duration {
    Duration::from_secs(5)
}

fn default_digest_at() -> String {
    "07:30".to_owned()
}

fn default_channel_alarm_after() -> Duration {
    Duration::from_secs(600)
}

fn default_attempt_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_retry_first() -> Duration {
    Duration::from_secs(10)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(600)
}

fn default_max_attempts() -> u32 {
    // With backoff capped at 10 minutes, about two days of trying.
    300
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587), required.
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on this machine (127.0.0.1 or localhost).
    None,
}

/// The SMTP server notices go through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Server name or address.
    pub host: String,
    /// Port; default 587 for STARTTLS, 465 for implicit TLS, 25 without TLS.
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default = "default_smtp_tls")]
    pub tls: SmtpTls,
    /// User name for AUTH; none: no authentication.
    pub username: Option<String>,
    /// File holding the password (first line), readable only by the collector.
    pub password_file: Option<PathBuf>,
    /// Sender, e.g. `Giám sát CNTT <giamsat@stttt.daknong.gov.vn>`.
    pub from: String,
    /// Extra CA certificate (PEM) to trust for the server, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
}

fn default_smtp_tls() -> SmtpTls {
    SmtpTls::Starttls
}

/// A webhook: JSON POSTed with an HMAC-SHA256 signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The name contacts use.
    pub name: String,
    /// Where to POST; `https://` (or `http://` to this machine only).
    pub url: String,
    /// File holding the signing secret (first line); none: unsigned.
    pub secret_file: Option<PathBuf>,
    /// Body template: JSON text with `{{subject}}`, `{{text}}`, `{{number}}`, `{{kind}}`,
    /// `{{unit}}`, `{{state}}`, `{{notice}}` placeholders (values are JSON-escaped); none: the
    /// default JSON document.
    pub template: Option<String>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
}

/// The province's bot on the Zalo Bot Platform: messages go to `{base_url}/bot{token}/sendMessage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZaloConfig {
    /// The bot API; `https://` (or `http://` to this machine only).
    #[serde(default = "default_zalo_base_url")]
    pub base_url: String,
    /// File holding the bot token (first line, `{bot_id}:{secret}`), readable only by the
    /// collector; it is part of every request's path and never logged.
    pub token_file: PathBuf,
    /// Extra CA certificate (PEM) to trust, e.g. for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

fn default_zalo_base_url() -> String {
    "https://bot-api.zaloplatforms.com".to_owned()
}

/// An SMS gateway over HTTP (a carrier's brandname or official SMS service): one request per
/// message, its body (or URL) filled from a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Where to send; `https://` (or `http://` to this machine only). May hold placeholders,
    /// filled percent-encoded.
    pub url: String,
    /// `POST` (default), `PUT` or `GET`.
    #[serde(default = "default_sms_method")]
    pub method: String,
    /// The body's content type, which says how placeholders are escaped: JSON
    /// (`application/json`, the default), form (`application/x-www-form-urlencoded`), XML (any
    /// type ending in `xml`, e.g. a SOAP gateway) or as they are (`text/plain`).
    #[serde(default = "default_sms_content_type")]
    pub content_type: String,
    /// Body template with `{{phone}}`, `{{phone_intl}}` (84…), `{{text}}` and `{{notice}}` (the
    /// notice's id, usable as the gateway's request id); none for `GET`.
    pub body: Option<String>,
    /// Header carrying the gateway's credential, e.g. `Authorization`.
    pub auth_header: Option<String>,
    /// File holding that header's value (first line), readable only by the collector.
    pub auth_file: Option<PathBuf>,
    /// A sent message's answer must contain this text (besides a 2xx status).
    pub success_contains: Option<String>,
    /// A sent message's answer must be JSON with this field (a JSON pointer, e.g. `/status` or
    /// `/result/code`) equal to `success_json_equals`.
    pub success_json_field: Option<String>,
    /// The value `success_json_field` must have, as text (`"0"` matches `0` and `"0"`).
    pub success_json_equals: Option<String>,
    /// Longest text, in characters.
    #[serde(default = "default_sms_max_chars")]
    pub max_chars: usize,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
}

fn default_sms_method() -> String {
    "POST".to_owned()
}

fn default_sms_content_type() -> String {
    "application/json".to_owned()
}

fn default_sms_max_chars() -> usize {
    // Four parts of a concatenated SMS with Vietnamese diacritics (UCS-2, 67 characters each).
    268
}

/// When the collector declares an agent unreachable, and how often it looks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Missed heartbeat intervals (of the agent's own interval) before it is unreachable.
    #[serde(default = "default_silence_intervals")]
    pub silence_intervals: u32,
    /// Never declare an agent unreachable sooner than this.
    #[serde(default = "default_silence_min", with = "duration_text")]
    pub silence_min: Duration,
    /// How often silent agents are looked for and outages inferred.
    #[serde(default = "default_evaluate_every", with = "duration_text")]
    pub evaluate_every: Duration,
    /// Share of a unit's agents (or of the units behind an uplink) that must be silent together
    /// for the collector to infer that the connection is down, from 0 (exclusive) to 1.
    #[serde(default = "default_share")]
    pub outage_share: f64,
    /// A unit needs at least this many agents for its own outage incident; with fewer, a silent
    /// agent stays an "agent unreachable" incident (it may just be switched off).
    #[serde(default = "default_two")]
    pub unit_min_agents: u32,
    /// An uplink needs at least this many silent units behind it for an incident at its level.
    #[serde(default = "default_two")]
    pub uplink_min_units: u32,
    /// How far before or after an inferred outage an agent's WAN/LAN incident may lie and still
    /// be linked to it as evidence.
    #[serde(default = "default_merge_slack", with = "duration_text")]
    pub merge_slack: Duration,
    /// After an inferred outage ends, how long its agents may take to come back (their retries
    /// are spread out) before one still silent is treated as a problem of its own.
    #[serde(default = "default_settle", with = "duration_text")]
    pub settle: Duration,
    /// How long an outage's condition must hold before it opens: agents cut off together are
    /// found silent over about one heartbeat interval, and a unit should not get its own incident
    /// just before its whole district turns out to be dark.
    #[serde(default = "default_gather", with = "duration_text")]
    pub gather: Duration,
}

impl Default for IncidentsConfig {
    fn default() -> IncidentsConfig {
        IncidentsConfig {
            silence_intervals: default_silence_intervals(),
            silence_min: default_silence_min(),
            evaluate_every: default_evaluate_every(),
            outage_share: default_share(),
            unit_min_agents: default_two(),
            uplink_min_units: default_two(),
            merge_slack: default_merge_slack(),
            settle: default_settle(),
            gather: default_gather(),
        }
    }
}

fn default_share() -> f64 {
    1.0
}

fn default_two() -> u32 {
    2
}

fn default_gather() -> Duration {
    // One and a half of the agents' default heartbeat interval (60 s).
    Duration::from_secs(90)
}

fn default_settle() -> Duration {
    // Above the agents' longest retry wait (uplink.max_backoff, 5 minutes by default).
    Duration::from_secs(600)
}

fn default_merge_slack() -> Duration {
    Duration::from_secs(600)
}

fn default_silence_intervals() -> u32 {
    3
}

fn default_silence_min() -> Duration {
    Duration::from_secs(180)
}

fn default_evaluate_every() -> Duration {
    Duration::from_secs(15)
}

/// Where the HTTPS API listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Socket address, e.g. `0.0.0.0:8443`.
    #[serde(default = "default_listen_address")]
    pub address: String,
    /// Whether `GET /metrics` may be read without a token (for a Prometheus on a trusted network).
    #[serde(default)]
    pub public_metrics: bool,
    /// A file holding the token Prometheus sends (`Authorization: Bearer …`) to read `/metrics`;
    /// API tokens are accepted too.
    #[serde(default)]
    pub scrape_token_file: Option<PathBuf>,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            address: default_listen_address(),
            public_metrics: false,
            scrape_token_file: None,
        }
    }
}

fn default_listen_address() -> String {
    "0.0.0.0:8443".to_owned()
}

/// Which database to use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:///path/to/file.db` (default, one file in WAL mode) or `postgres://user@host/db`.
    #[serde(default = "default_database_url")]
    pub url: String,
    /// Most connections to keep open.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            url: default_database_url(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_database_url() -> String {
    "sqlite:///var/lib/cntt-collector/collector.db".to_owned()
}

fn default_max_connections() -> u32 {
    8
}

/// PEM files of the server certificate; `cntt-collector tls init` makes a set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate.
    pub key: PathBuf,
}

/// Limits that keep one agent from hurting the collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How far ahead of the collector's clock an event may be dated, e.g. `1h`.
    #[serde(default = "default_max_clock_skew", with = "duration_text")]
    pub max_future_skew: Duration,
    /// On PostgreSQL, how many group-commit writers store batches side by side (SQLite has one).
    #[serde(default = "default_postgres_writers")]
    pub postgres_writers: usize,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            max_body_bytes: default_max_body_bytes(),
            max_future_skew: default_max_clock_skew(),
            postgres_writers: default_postgres_writers(),
        }
    }
}

fn default_postgres_writers() -> usize {
    4
}

fn default_max_body_bytes() -> usize {
    8 << 20
}

fn default_max_clock_skew() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// Limits against a hostile network (issue 13). Every default is in `collector.example.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most TCP connections open at once; more are closed at accept. `LimitNOFILE` in the shipped
    /// systemd unit is sized to twice this.
    #[serde(default = "default_max_connections_total")]
    pub max_connections: usize,
    /// Most TCP connections open at once from one client address (an agency's NAT counts once).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Most connections kept open between requests: a connection accepted while this many are
    /// open serves one request and is closed (`Connection: close`), so that idle connections (about
    /// 20 KiB each) cannot fill memory when many agents send; 0 keeps none open.
    #[serde(default = "default_keep_alive_connections")]
    pub keep_alive_connections: usize,
    /// Time allowed for the TLS handshake.
    #[serde(default = "default_handshake_timeout", with = "duration_text")]
    pub handshake_timeout: Duration,
    /// Time allowed for a request's headers, and for an idle kept-alive connection.
    #[serde(default = "default_header_timeout", with = "duration_text")]
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body included, until the answer; a slower one gets 408
    /// and its connection is closed.
    #[serde(default = "default_request_timeout", with = "duration_text")]
    pub request_timeout: Duration,
    /// Once `body_rate_grace` has passed since a request body began, it must have arrived at
    /// this many bytes a second on average, else 408 and the connection is closed; 0 turns the
    /// check off.
    #[serde(default = "default_min_body_rate")]
    pub min_body_rate: u64,
    /// Time a request body may take before `min_body_rate` applies.
    #[serde(default = "default_body_rate_grace", with = "duration_text")]
    pub body_rate_grace: Duration,
    /// Unauthenticated requests (enrollment, no or a refused token) one client address may make in
    /// a burst…
    #[serde(default = "default_unauthenticated_burst")]
    pub unauthenticated_burst: u32,
    /// …and then per minute; more get 429 with `Retry-After`.
    #[serde(default = "default_unauthenticated_per_minute")]
    pub unauthenticated_per_minute: u32,
    /// Refusals of unauthenticated clients are written to the audit log once per client address,
    /// action and reason per this interval, with a count.
    #[serde(default = "default_audit_interval", with = "duration_text")]
    pub audit_interval: Duration,
    /// Most client addresses with their own audit rows per interval; the rest share one row
    /// (address `*`).
    #[serde(default = "default_audit_addresses")]
    pub audit_addresses: usize,
    /// Batches one agent may post in a burst…
    #[serde(default = "default_agent_batches_burst")]
    pub agent_batches_burst: u32,
    /// …and then per second; more get 429 with `Retry-After`, audited in aggregate.
    #[serde(default = "default_agent_batches_per_second")]
    pub agent_batches_per_second: u32,
    /// Lifetime of a new API token when `api-token create` has no `--ttl`.
    #[serde(default = "default_api_token_ttl", with = "duration_text")]
    pub api_token_ttl: Duration,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_connections: default_max_connections_total(),
            max_connections_per_address: default_max_connections_per_address(),
            keep_alive_connections: default_keep_alive_connections(),
            handshake_timeout: default_handshake_timeout(),
            header_timeout: default_header_timeout(),
            request_timeout: default_request_timeout(),
            min_body_rate: default_min_body_rate(),
            body_rate_grace: default_body_rate_grace(),
            unauthenticated_burst: default_unauthenticated_burst(),
            unauthenticated_per_minute: default_unauthenticated_per_minute(),
            audit_interval: default_audit_interval(),
            audit_addresses: default_audit_addresses(),
            agent_batches_burst: default_agent_batches_burst(),
            agent_batches_per_second: default_agent_batches_per_second(),
            api_token_ttl: default_api_token_ttl(),
        }
    }
}

fn default_max_connections_total() -> usize {
    8192
}

fn default_max_connections_per_address() -> usize {
    512
}

fn default_keep_alive_connections() -> usize {
    1024
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_min_body_rate() -> u64 {
    1024
}

fn default_body_rate_grace() -> Duration {
    Duration::from_secs(10)
}

fn default_unauthenticated_burst() -> u32 {
    30
}

fn default_unauthenticated_per_minute() -> u32 {
    60
}

fn default_audit_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_audit_addresses() -> usize {
    200
}

fn default_agent_batches_burst() -> u32 {
    40
}

fn default_agent_batches_per_second() -> u32 {
    20
}

fn default_api_token_ttl() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

/// Refuses limits that would stop the collector from serving at all.
fn check_limits(limits: &LimitsConfig) -> anyhow::Result<()> {
    if limits.max_connections == 0 || limits.max_connections_per_address == 0 {
        bail!("limits.max_connections and limits.max_connections_per_address must be at least 1");
    }
    if limits.max_connections_per_address > limits.max_connections {
        bail!("limits.max_connections_per_address must not exceed limits.max_connections");
    }
    if limits.unauthenticated_burst == 0 || limits.unauthenticated_per_minute == 0 {
        bail!(
            "limits.unauthenticated_burst and limits.unauthenticated_per_minute must be at least 1"
        );
    }
    if limits.agent_batches_burst == 0 || limits.agent_batches_per_second == 0 {
        bail!("limits.agent_batches_burst and limits.agent_batches_per_second must be at least 1");
    }
    for (name, value) in [
        ("handshake_timeout", limits.handshake_timeout),
        ("header_timeout", limits.header_timeout),
        ("request_timeout", limits.request_timeout),
        ("audit_interval", limits.audit_interval),
        ("api_token_ttl", limits.api_token_ttl),
    ] {
        if value < Duration::from_millis(100) {
            bail!("limits.{name} must be at least 100ms");
        }
    }
    if limits.audit_addresses == 0 {
        bail!("limits.audit_addresses must be at least 1");
    }
    Ok(())
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Whether `/metrics` is readable without a token.
    pub public_metrics: bool,
    /// SHA-256 (hex) of the scrape token read from `listen.scrape_token_file`.
    pub scrape_token_hash: Option<String>,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Certificate files.
    pub tls: TlsConfig,
    /// Ingest limits.
    pub ingest: IngestConfig,
    /// Inferred incidents.
    pub incidents: IncidentsConfig,
    /// Notices, with secrets read from their files.
    pub notify: crate::jobs::notify::Settings,
    /// Retention of stored data.
    pub retention: RetentionConfig,
    /// Periodic reports, checked.
    pub reports: crate::services::reports::Settings,
    /// Units that have ended.
    pub units: UnitsConfig,
    /// Incident reports, checked.
    pub incident_reports: crate::documents::incident::Scheme,
    /// Who issues the documents, by date.
    pub organisation: crate::domain::organisation::Organisations,
    /// Limits against a hostile network.
    pub limits: LimitsConfig,
    /// The audit log's forwarding, checked (CA file resolved).
    pub audit: AuditConfig,
    /// Console sessions and logins.
    pub console: ConsoleConfig,
    /// Planned maintenance.
    pub maintenance: MaintenanceConfig,
}

impl Config {
    /// Reads and checks a configuration file. Relative certificate paths are resolved against the
    /// file's folder, so a config and its certificates can move together.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not valid TOML, has an unknown key (named in the message) or
    /// a value out of range.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
        let raw: CollectorConfig = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
        let listen: SocketAddr = raw.listen.address.parse().with_context(|| {
            format!(
                "listen.address {:?} is not an address like 0.0.0.0:8443",
                raw.listen.address
            )
        })?;
        let url = &raw.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!("database.url {url:?} must start with sqlite: or postgres://");
        }
        if raw.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        if raw.ingest.max_body_bytes < 1024 {
            bail!("ingest.max_body_bytes must be at least 1024");
        }
        let share = raw.incidents.outage_share;
        if !(share > 0.0 && share <= 1.0) {
            bail!("incidents.outage_share must be above 0 and at most 1, like 0.8; found {share}");
        }
        if raw.incidents.unit_min_agents == 0 || raw.incidents.uplink_min_units == 0 {
            bail!("incidents.unit_min_agents and incidents.uplink_min_units must be at least 1");
        }
        check_retention(&raw.retention)?;
        check_limits(&raw.limits)?;
        let audit = check_audit(raw.audit, base)?;
        check_console(&raw.console)?;
        let tls = TlsConfig {
            cert: base.join(&raw.tls.cert),
            key: base.join(&raw.tls.key),
        };
        let notify = crate::jobs::notify::Settings::check(raw.notify, base)?;
        let incident_reports = raw.incident_reports.check()?;
        let organisation = if raw.organisation.is_empty() {
            crate::domain::organisation::Organisations::shipped()
        } else {
            crate::domain::organisation::Organisations::check(raw.organisation)?
        };
        let reports =
            crate::services::reports::Settings::check(raw.reports, base, organisation.clone())?;
        let scrape_token_hash = match &raw.listen.scrape_token_file {
            None => None,
            Some(file) => Some(read_scrape_token(&base.join(file))?),
        };
        if let Some(url) = &raw.console.public_url {
            if !url.starts_with("https://") || url.len() <= "https://".len() {
                anyhow::bail!(
                    "console.public_url {url:?} must be the console's https:// address, e.g. \"https://giamsat.example.gov.vn\""
                );
            }
        }
        Ok(Config {
            listen,
            public_metrics: raw.listen.public_metrics,
            scrape_token_hash,
            database: raw.database,
            tls,
            ingest: raw.ingest,
            incidents: raw.incidents,
            notify,
            retention: raw.retention,
            reports,
            units: raw.units,
            incident_reports,
            organisation,
            limits: raw.limits,
            audit,
            console: raw.console,
            maintenance: raw.maintenance,
        })
    }
}

/// Reads the scrape token file and returns the token's hash; the token itself is not kept.
fn read_scrape_token(path: &Path) -> anyhow::Result<String> {
    crate::config::tls::refuse_readable_by_others(path, "listen.scrape_token_file")?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading listen.scrape_token_file {}", path.display()))?;
    let token = text.trim();
    if token.len() < 16 {
        bail!(
            "listen.scrape_token_file {} must hold a token of at least 16 characters, e.g. from `openssl rand -hex 32`",
            path.display()
        );
    }
    Ok(crate::domain::auth::hash_secret(token))
}

/// Refuses retention settings that would break the law or the job.
fn check_retention(retention: &RetentionConfig) -> anyhow::Result<()> {
    if retention.audit < AUDIT_FLOOR {
        bail!(
            "retention.audit = {:?} is below the legal floor of 365d: the audit log is kept at least 12 months",
            duration_text::format(retention.audit)
        );
    }
    if retention.raw < Duration::from_secs(3600) {
        bail!("retention.raw must be at least 1h");
    }
    if retention
        .incidents
        .is_some_and(|keep| keep < Duration::from_secs(24 * 3600))
    {
        bail!("retention.incidents must be at least 1d");
    }
    if retention.run_every < Duration::from_secs(1) {
        bail!("retention.run_every must be at least 1s");
    }
    Ok(())
}

/// A list of durations written as text: `["5d", "1d"]`.
pub(crate) mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                humantime::parse_duration(text).map_err(|err| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not a duration like 5d or 12h: {err}"
                    ))
                })
            })
            .collect()
    }
}

/// Durations written as text in config files: `90s`, `5m`, `2h`, `7d`.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like 90s, 5m or 7d: {err}"
            ))
        })
    }

    /// Writes a duration back as text: whole days as `30d`, anything else as humantime does.
    pub(crate) fn format(duration: Duration) -> String {
        let secs = duration.as_secs();
        if secs > 0 && secs.is_multiple_of(86_400) && duration.subsec_nanos() == 0 {
            format!("{}d", secs / 86_400)
        } else {
            humantime::format_duration(duration).to_string()
        }
    }
}

/// Optional durations written as text: absent means none.
pub(crate) mod duration_text_option {
    use std::time::Duration;

    use serde::Deserializer;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: &str) {
        let err = format!(
            "{:#}",
            Config::parse(text, Path::new("/etc/cntt")).unwrap_err()
        );
        assert!(
            err.contains(expected),
            "error {err:?} should contain {expected:?}"
        );
    }

    #[test]
    fn example_file_parses_with_defaults() {
        let text = include_str!("../../collector.example.toml");
        let config = Config::parse(text, Path::new("/etc/cntt-collector")).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(
            config.tls.cert,
            Path::new("/etc/cntt-collector/tls/server.pem")
        );
        assert_eq!(config.ingest.max_body_bytes, default_max_body_bytes());
        assert_eq!(config.database.url, default_database_url());
        assert_eq!(config.retention, RetentionConfig::default());
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.console, ConsoleConfig::default());
        assert_eq!(config.maintenance, MaintenanceConfig::default());
        let reports = crate::services::reports::Settings::default();
        assert_eq!(config.reports.required, reports.required);
        assert_eq!(config.reports.unit_kinds, reports.unit_kinds);
        assert_eq!(config.reports.reminders, reports.reminders);
        assert_eq!(config.reports.schemes, reports.schemes);
        assert_eq!(
            config.organisation,
            crate::domain::organisation::Organisations::shipped()
        );
        assert_eq!(config.audit, AuditConfig::default());
        // `[audit.syslog]`, shown commented out, holds every default.
        let syslog = text
            .split("\n# [audit.syslog]\n")
            .nth(1)
            .expect("example shows [audit.syslog]")
            .lines()
            .take_while(|line| line.starts_with('#'))
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| {
                let key = line.split(" = ").next().unwrap_or_default();
                line.contains(" = ")
                    && key != "ca_file"
                    && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: SyslogConfig = toml::from_str(&syslog).unwrap();
        assert_eq!(parsed.transport, SyslogTransport::default());
        assert_eq!(parsed.facility, default_syslog_facility());
        assert_eq!(parsed.app_name, default_syslog_app_name());
        assert_eq!(parsed.hostname, "");
        assert_eq!(parsed.queue, default_syslog_queue());
        // The one setting without a value by default is shown commented out.
        assert!(
            text.contains("\n# incidents = "),
            "example shows retention.incidents"
        );
    }

    #[test]
    fn bad_limits_name_the_problem() {
        let base = "[tls]\ncert='a'\nkey='b'\n[limits]\n";
        check_error(
            &format!("{base}max_connections = 0"),
            "limits.max_connections",
        );
        check_error(
            &format!("{base}max_connections = 10\nmax_connections_per_address = 20"),
            "must not exceed",
        );
        check_error(
            &format!("{base}request_timeout = \"1ms\""),
            "limits.request_timeout",
        );
        check_error(
            &format!("{base}unauthenticated_burst = 0"),
            "limits.unauthenticated_burst",
        );
        check_error(&format!("{base}colour = 1"), "unknown field `colour`");
        check_error(
            &format!("{base}agent_batches_per_second = 0"),
            "limits.agent_batches_burst",
        );
    }

    #[test]
    fn bad_syslog_settings_name_the_problem() {
        let base = "[tls]\ncert='a'\nkey='b'\n[audit.syslog]\n";
        check_error(&format!("{base}address = 'syslog'"), "host:port");
        check_error(
            &format!("{base}address = 'syslog:514'\nfacility = 'security'"),
            "audit.syslog.facility",
        );
        check_error(
            &format!("{base}address = 'syslog:6514'\ntransport = 'tls'"),
            "needs ca_file",
        );
        check_error(
            &format!("{base}address = 'syslog:514'\ntransport = 'smoke'"),
            "unknown variant",
        );
        let config = Config::parse(
            &format!("{base}address = 'syslog:6514'\ntransport = 'tls'\nca_file = 'ca.pem'"),
            Path::new("/etc/cntt"),
        )
        .unwrap();
        let syslog = config.audit.syslog.unwrap();
        assert_eq!(syslog.ca_file.unwrap(), Path::new("/etc/cntt/ca.pem"));
    }

    #[test]
    fn bad_console_settings_name_the_problem() {
        let base = "[tls]\ncert='a'\nkey='b'\n[console]\n";
        check_error(
            &format!("{base}lockout_attempts = 0"),
            "console.lockout_attempts",
        );
        check_error(
            &format!("{base}idle_timeout = \"500ms\""),
            "console.idle_timeout must be at least 1s",
        );
        check_error(
            &format!("{base}idle_timeout = \"13h\""),
            "must not exceed console.session_lifetime",
        );
        check_error(&format!("{base}session_lifetime = \"30d\""), "at most 7d");
        let config = Config::parse(
            &format!("{base}idle_timeout = \"3s\"\nlockout_duration = \"2s\""),
            Path::new("/etc"),
        )
        .unwrap();
        assert_eq!(config.console.idle_timeout, Duration::from_secs(3));
        assert_eq!(config.console.lockout_attempts, 5);
    }

    #[test]
    fn bad_files_name_the_problem() {
        check_error("", "missing field `tls`");
        check_error(
            "[tls]\ncert='a'\nkey='b'\ncolour='red'",
            "unknown field `colour`",
        );
        check_error(
            "[tls]\ncert='a'\nkey='b'\n[listen]\naddress='localhost'",
            "listen.address",
        );
        check_error(
            "[tls]\ncert='a'\nkey='b'\n[database]\nurl='mysql://x'",
            "must start with sqlite:",
        );
        check_error(
            "[tls]\ncert='a'\nkey='b'\n[ingest]\nmax_future_skew='soon'",
            "not a duration",
        );
    }

    #[test]
    fn retention_defaults_and_values() {
        let tls = "[tls]\ncert='a'\nkey='b'\n";
        let parse = |retention: &str| {
            Config::parse(
                &format!("{tls}[retention]\n{retention}"),
                Path::new("/etc/cntt"),
            )
            .unwrap()
            .retention
        };
        let days = |n: u64| Duration::from_secs(n * 86_400);
        let defaults = parse("");
        assert_eq!(
            (
                defaults.raw,
                defaults.audit,
                defaults.incidents,
                defaults.run_every
            ),
            (days(30), days(365), None, Duration::from_secs(3600))
        );
        let set = parse("raw = '7d'\naudit = '8760h'\nincidents = '1825d'\nrun_every = '15m'");
        assert_eq!(
            (set.raw, set.audit, set.incidents, set.run_every),
            (
                days(7),
                days(365),
                Some(days(1825)),
                Duration::from_secs(900)
            )
        );
    }

    #[test]
    fn audit_retention_below_the_legal_floor_is_refused() {
        let tls = "[tls]\ncert='a'\nkey='b'\n";
        check_error(
            &format!("{tls}[retention]\naudit = '364d'"),
            "retention.audit = \"364d\" is below the legal floor of 365d",
        );
        check_error(
            &format!("{tls}[retention]\naudit = '90d'"),
            "retention.audit = \"90d\" is below the legal floor of 365d",
        );
        check_error(
            &format!("{tls}[retention]\naudit = '8759h'"),
            "is below the legal floor of 365d",
        );
        check_error(
            &format!("{tls}[retention]\nraw = '10m'"),
            "retention.raw must be at least 1h",
        );
        check_error(
            &format!("{tls}[retention]\nincidents = '2h'"),
            "retention.incidents must be at least 1d",
        );
        check_error(
            &format!("{tls}[retention]\nrun_every = '0s'"),
            "retention.run_every",
        );
        check_error(
            &format!("{tls}[retention]\nkeep = '1d'"),
            "unknown field `keep`",
        );
        check_error(
            &format!("{tls}[retention]\nraw = 'a month'"),
            "not a duration",
        );
    }
}
