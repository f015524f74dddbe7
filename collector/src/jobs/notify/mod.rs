//! Notices to leadership and the Sở (the provincial IT authority; issue 5): what to tell whom and
//! when, written to the database first and then delivered by email, webhook, Zalo or SMS (issue
//! 17).
//!
//! - `documents::notice` writes the notices' words (formal Vietnamese, Thông tư 20/2017 fields),
//!   `documents::short_notice` their short forms for Zalo and SMS;
//! - `domain::notice_rules` decides who is told of an incident and when (contacts and rules are data);
//!   `domain::channels` on which of a contact's channels, and when its quiet hours let them go;
//! - `store::notices` keeps the notices: planned once (a unique key), claimed by one sender at a
//!   time, retried with backoff, in order per recipient;
//! - `deliver` sends one notice on its channel (`zalo` and `sms` beside it).
//!
//! This module holds the checked settings, built once from `[notify]` of the config with the
//! secrets read from their files, the link a short text carries ([`incident_link`]) and the loop.

pub mod deliver;
pub mod sms;
pub mod zalo;
pub use crate::documents::notice as render;
pub use crate::domain::notice_rules as rules;

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::Secret;

use crate::config::{EmailConfig, NotifyConfig, SmtpTls, WebhookConfig};

/// The checked `[notify]` settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Before every subject.
    pub subject_prefix: String,
    /// Nobody is told of an incident younger than this.
    pub grace: Duration,
    /// Reminders while an incident lasts; zero for none.
    pub reminder_every: Duration,
    /// How often notices are planned and sent.
    pub evaluate_every: Duration,
    /// Attempts before a notice is given up.
    pub max_attempts: u32,
    /// Longest delivery attempt; claims last three times this.
    pub attempt_timeout: Duration,
    /// A channel failing this long is reported through the other one.
    pub channel_alarm_after: Duration,
    /// Minutes after midnight (Vietnam time) when the daily digest goes out.
    pub digest_minute: i64,
    /// First retry wait, doubling per attempt.
    pub retry_first: Duration,
    /// Longest retry wait.
    pub retry_max: Duration,
    /// The SMTP server, if email is set up.
    pub email: Option<Email>,
    /// The webhooks by name.
    pub webhooks: Vec<Webhook>,
    /// The console's address (`https://…`, no trailing slash), for links in short texts.
    pub console_url: Option<String>,
    /// The Zalo bot, if Zalo is set up.
    pub zalo: Option<zalo::Zalo>,
    /// The SMS gateway, if SMS is set up.
    pub sms: Option<sms::Sms>,
}

/// The SMTP server, checked.
#[derive(Debug, Clone)]
pub struct Email {
    /// Server name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: SmtpTls,
    /// AUTH user and password.
    pub credentials: Option<(String, Secret)>,
    /// Sender mailbox.
    pub from: String,
    /// Extra CA to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

/// A webhook, checked.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its name.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// Signing secret.
    pub secret: Option<Secret>,
    /// Body template.
    pub template: Option<String>,
    /// Extra CA to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::check(NotifyConfig::default(), Path::new("."))
            .expect("the default notify settings are valid")
    }
}

fn digest_minute(text: &str) -> anyhow::Result<i64> {
    let parsed = text.split_once(':').and_then(|(hour, minute)| {
        let (hour, minute) = (
            hour.trim().parse::<i64>().ok()?,
            minute.trim().parse::<i64>().ok()?,
        );
        ((0..24).contains(&hour) && (0..60).contains(&minute)).then_some(hour * 60 + minute)
    });
    parsed.ok_or_else(|| anyhow::anyhow!("notify.digest_at {text:?} is not a time like \"07:30\""))
}

/// Whether `host` is this machine (`localhost` or a loopback address).
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn read_secret(path: &Path, key: &str) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {key} {}", path.display()))?;
    let first = text.lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        bail!("{key} {} is empty", path.display());
    }
    Ok(Secret::new(first))
}

pub(crate) fn read_ca(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {key} {}", path.display()))?;
    if !pem.starts_with(b"-----BEGIN") {
        bail!("{key} {} is not a PEM certificate", path.display());
    }
    Ok(pem)
}

impl Settings {
    /// Checks `[notify]` and reads its secret files; relative paths are against `base`.
    ///
    /// # Errors
    ///
    /// When a value is out of range or a file cannot be read; the message names the key.
    pub fn check(raw: NotifyConfig, base: &Path) -> anyhow::Result<Settings> {
        if raw.evaluate_every < Duration::from_millis(10) {
            bail!("notify.evaluate_every must be at least 10ms");
        }
        if raw.max_attempts == 0 {
            bail!("notify.max_attempts must be at least 1");
        }
        let email = raw
            .email
            .map(|email| check_email(email, base))
            .transpose()?;
        let mut webhooks: Vec<Webhook> = Vec::new();
        for webhook in raw.webhooks {
            if webhooks.iter().any(|known| known.name == webhook.name) {
                bail!("notify.webhook name {:?} is used twice", webhook.name);
            }
            webhooks.push(check_webhook(webhook, base)?);
        }
        let console_url = raw
            .console_url
            .as_deref()
            .map(check_console_url)
            .transpose()?;
        let zalo = raw.zalo.map(|zalo| zalo::check(zalo, base)).transpose()?;
        let sms = raw.sms.map(|sms| sms::check(sms, base)).transpose()?;
        Ok(Settings {
            subject_prefix: raw.subject_prefix,
            grace: raw.grace,
            reminder_every: raw.reminder_every,
            evaluate_every: raw.evaluate_every,
            max_attempts: raw.max_attempts,
            attempt_timeout: raw.attempt_timeout.max(Duration::from_millis(100)),
            channel_alarm_after: raw.channel_alarm_after,
            digest_minute: digest_minute(&raw.digest_at)?,
            retry_first: raw.retry_first,
            retry_max: raw.retry_max.max(raw.retry_first),
            email,
            webhooks,
            console_url,
            zalo,
            sms,
        })
    }

    /// The webhook of that name.
    pub fn webhook(&self, name: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|webhook| webhook.name == name)
    }

    /// The channels set up, as notices name them: `email`, `webhook:<name>`, `zalo`, `sms`.
    pub fn channels_set_up(&self) -> BTreeSet<String> {
        let mut channels: BTreeSet<String> = self
            .webhooks
            .iter()
            .map(|webhook| format!("webhook:{}", webhook.name))
            .collect();
        for (family, set_up) in [
            ("email", self.email.is_some()),
            ("zalo", self.zalo.is_some()),
            ("sms", self.sms.is_some()),
        ] {
            if set_up {
                channels.insert(family.to_owned());
            }
        }
        channels
    }
}

/// The link to an incident on the console that Zalo and SMS texts carry; none without
/// `notify.console_url`. Every link a notice carries is made here.
pub fn incident_link(settings: &Settings, incident_id: &str) -> Option<String> {
    let base = settings.console_url.as_deref()?;
    Some(format!("{base}/incidents/{incident_id}"))
}

fn check_console_url(text: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(text.trim()).with_context(|| {
        format!(
            "notify.console_url {text:?} is not an address like \"https://cntt.example.gov.vn\""
        )
    })?;
    if url.scheme() != "https" || url.query().is_some() || url.fragment().is_some() {
        bail!("notify.console_url {text:?} must be an https:// address without ? or #, like \"https://cntt.example.gov.vn\"");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn check_email(email: EmailConfig, base: &Path) -> anyhow::Result<Email> {
    if email.host.trim().is_empty() {
        bail!("notify.email.host must not be empty");
    }
    if email.tls == SmtpTls::None && !is_loopback(&email.host) {
        bail!(
            "notify.email.tls = \"none\" is allowed only for a relay on this machine (127.0.0.1 or localhost), \
             not {:?}: use \"starttls\" or \"implicit\"",
            email.host
        );
    }
    if !email.from.contains('@') {
        bail!(
            "notify.email.from {:?} is not an address like \"Giám sát CNTT <giamsat@example.gov.vn>\"",
            email.from
        );
    }
    let credentials = match (email.username, email.password_file) {
        (Some(user), Some(file)) => Some((
            user,
            read_secret(&base.join(file), "notify.email.password_file")?,
        )),
        (None, None) => None,
        _ => bail!("notify.email.username and notify.email.password_file go together"),
    };
    if credentials.is_some() && email.tls == SmtpTls::None && !is_loopback(&email.host) {
        bail!("notify.email: a password is never sent without TLS");
    }
    let port = email.port.unwrap_or(match email.tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Implicit => 465,
        SmtpTls::None => 25,
    });
    let ca_pem = email
        .ca_file
        .map(|file| read_ca(&base.join(file), "notify.email.ca_file"))
        .transpose()?;
    Ok(Email {
        host: email.host,
        port,
        tls: email.tls,
        credentials,
        from: email.from,
        ca_pem,
    })
}

fn check_webhook(webhook: WebhookConfig, base: &Path) -> anyhow::Result<Webhook> {
    let name = &webhook.name;
    if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
        bail!("notify.webhook name {name:?} must be 1 to 64 characters without spaces");
    }
    let url = reqwest::Url::parse(&webhook.url)
        .with_context(|| format!("notify.webhook {name}: url {:?} is not a URL", webhook.url))?;
    let local = url.host_str().is_some_and(is_loopback);
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        bail!(
            "notify.webhook {name}: url must be https:// (http:// only to this machine), not {:?}",
            webhook.url
        );
    }
    if let Some(template) = &webhook.template {
        let sample = crate::jobs::notify::fill_template(template, &[("subject", "x")]);
        serde_json::from_str::<serde_json::Value>(&sample).with_context(|| {
            format!("notify.webhook {name}: template is not JSON once its placeholders are filled")
        })?;
    }
    Ok(Webhook {
        secret: webhook
            .secret_file
            .map(|file| read_secret(&base.join(file), "notify.webhook.secret_file"))
            .transpose()?,
        ca_pem: webhook
            .ca_file
            .map(|file| read_ca(&base.join(file), "notify.webhook.ca_file"))
            .transpose()?,
        name: webhook.name,
        url: webhook.url,
        template: webhook.template,
    })
}

/// Fills `{{name}}` placeholders with JSON-escaped values (without quotes, so a template writes
/// `"text": "{{text}}"`); unknown placeholders become empty.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    fill(template, values, Escaping::Json)
}

/// How placeholder values are escaped, by what the filled text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// Inside a JSON string, without its quotes.
    Json,
    /// Percent-encoded (RFC 3986: all but `A–Z a–z 0–9 - . _ ~`), for a URL or a form body.
    Percent,
    /// XML character data or an attribute value (`&`, `<`, `>`, `"`, `'`).
    Xml,
    /// As it is.
    Raw,
}

impl Escaping {
    /// The escaping a body of `content_type` needs: JSON, form, XML (`…xml`) or raw.
    pub fn of_content_type(content_type: &str) -> Escaping {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media == "application/json" || media.ends_with("+json") {
            Escaping::Json
        } else if media == "application/x-www-form-urlencoded" {
            Escaping::Percent
        } else if media.ends_with("xml") {
            Escaping::Xml
        } else {
            Escaping::Raw
        }
    }

    fn escape(self, value: &str, out: &mut String) {
        match self {
            Escaping::Json => {
                let quoted = serde_json::to_string(value).expect("strings always serialize");
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Escaping::Percent => {
                for byte in value.bytes() {
                    if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                        out.push(char::from(byte));
                    } else {
                        let _ = write!(out, "%{byte:02X}");
                    }
                }
            }
            Escaping::Xml => {
                for c in value.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '"' => out.push_str("&quot;"),
                        '\'' => out.push_str("&apos;"),
                        c => out.push(c),
                    }
                }
            }
            Escaping::Raw => out.push_str(value),
        }
    }
}

/// Fills `{{name}}` placeholders with values escaped as `escaping` says; unknown placeholders
/// become empty.
pub fn fill(template: &str, values: &[(&str, &str)], escaping: Escaping) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        if let Some((_, value)) = values.iter().find(|(name, _)| *name == key) {
            escaping.escape(value, &mut out);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The wait before attempt `attempts + 1`: `first`, doubling, at most `max`.
pub fn backoff(attempts: i64, first: Duration, max: Duration) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    first.saturating_mul(2u32.saturating_pow(exponent)).min(max)
}

/// The incident report scheme and the organisations, for the incident reports the loop issues
/// and the closing-report reminders it writes.
pub type IncidentReports = (
    std::sync::Arc<crate::documents::incident::Scheme>,
    std::sync::Arc<crate::domain::organisation::Organisations>,
);

/// What the loop needs beyond `[notify]`: from `[incidents]`, `[maintenance]` and `[console]`.
#[derive(Debug, Clone)]
pub struct Extras {
    /// The inference's gather time, which one agent's silence waits on top of the grace.
    pub gather: Duration,
    /// Maintenance windows' reminders.
    pub maintenance: crate::config::MaintenanceConfig,
    /// Acknowledgement links in notices, when the console's address is set.
    pub ack_links: Option<crate::store::AckLinks>,
}

/// Plans and sends notices every `settings.evaluate_every` until `stop` turns true. Every
/// collector runs it; the store's lock and claims keep each notice to one sender (see
/// `store::notices`).
pub async fn run(
    store: crate::store::Store,
    settings: Settings,
    reports: std::sync::Arc<crate::services::reports::Settings>,
    incident_reports: IncidentReports,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    extras: Extras,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Extras {
        gather,
        maintenance,
        ack_links,
    } = extras;
    let channels = match deliver::Channels::new(&settings) {
        Ok(channels) => channels,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "notification channels unusable; no notice will be sent");
            return;
        }
    };
    let set_up = settings.channels_set_up();
    let plan_settings = crate::store::PlanSettings {
        prefix: settings.subject_prefix.clone(),
        timing: rules::Timing {
            grace_ms: i64::try_from(settings.grace.as_millis()).unwrap_or(i64::MAX),
            reminder_ms: i64::try_from(settings.reminder_every.as_millis()).unwrap_or(0),
            silent_extra_ms: i64::try_from(gather.as_millis()).unwrap_or(0),
        },
        channels: set_up,
        ack_links,
    };
    let holder = format!("notify-{}", uuid::Uuid::new_v4());
    // Since when each channel family has failed, with its last error, in this process.
    let mut failing: Failing = std::collections::BTreeMap::new();
    let mut ticker = tokio::time::interval(settings.evaluate_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let now = time::OffsetDateTime::now_utc();
        match store.notices_plan(&plan_settings, &holder, now).await {
            Ok(0) => {}
            Ok(written) => tracing::info!(notices = written, "notices planned"),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "planning notices failed"),
        }
        match store
            .notices_digest(
                &plan_settings.channels,
                &settings.subject_prefix,
                settings.digest_minute,
                now,
            )
            .await
        {
            Ok(0) => {}
            Ok(written) => tracing::info!(digests = written, "daily digests written"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "writing daily digests failed")
            }
        }
        let authority = crate::documents::incident::Authority::of(incident_reports.1.current(now));
        match crate::documents::issue::plan_notices(
            &store,
            &incident_reports.0,
            &authority,
            &settings.subject_prefix,
            now,
        )
        .await
        {
            Ok(0) => {}
            Ok(written) => tracing::info!(notices = written, "closing report reminders written"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "planning incident reports failed")
            }
        }
        match store
            .maintenance_remind(
                i64::try_from(maintenance.remind_longer_than.as_millis()).unwrap_or(i64::MAX),
                i64::try_from(maintenance.remind_before.as_millis()).unwrap_or(0),
                &settings.subject_prefix,
                now,
            )
            .await
        {
            Ok(0) => {}
            Ok(written) => tracing::info!(notices = written, "maintenance reminders written"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "writing maintenance reminders failed")
            }
        }
        match crate::services::reports::plan_notices(
            &store,
            &reports,
            &settings.subject_prefix,
            now,
        )
        .await
        {
            Ok(0) => {}
            Ok(written) => tracing::info!(notices = written, "report reminders written"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "planning report reminders failed")
            }
        }
        deliver_due(
            &store,
            &channels,
            &settings,
            &metrics,
            &holder,
            &mut failing,
        )
        .await;
        let now = time::OffsetDateTime::now_utc();
        for (family, (since, error)) in &failing {
            if now - *since < settings.channel_alarm_after {
                continue;
            }
            let res = store
                .notices_channel_down(
                    family,
                    *since,
                    error,
                    &plan_settings.channels,
                    &settings.subject_prefix,
                    now,
                )
                .await;
            match res {
                Ok(0) => {}
                Ok(written) => {
                    tracing::error!(channel = family, since = %since, alarms = written, "notification channel down; alarm sent through the other channel")
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "writing a channel alarm failed")
                }
            }
        }
    }
}

/// Since when each channel family (`email`, `webhook`, `zalo`, `sms`) has been failing, with its
/// last error.
type Failing = std::collections::BTreeMap<&'static str, (time::OffsetDateTime, String)>;

/// Sends every due notice it can claim, oldest first; after a channel fails, its later notices
/// wait for the next round so they arrive in order.
async fn deliver_due(
    store: &crate::store::Store,
    channels: &deliver::Channels,
    settings: &Settings,
    metrics: &crate::metrics::Metrics,
    holder: &str,
    failing_since: &mut Failing,
) {
    loop {
        let now = time::OffsetDateTime::now_utc();
        let claim = settings.attempt_timeout * 3;
        let claimed = match store.notices_claim(holder, now, now + claim, 20).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "claiming notices failed");
                return;
            }
        };
        if claimed.is_empty() {
            return;
        }
        let mut failing: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for notice in &claimed {
            let family = crate::domain::channels::family(&notice.channel);
            if failing.contains(&notice.channel) {
                // Keep the order: wait behind the one that failed.
                let retry_at = time::OffsetDateTime::now_utc() + settings.retry_first;
                if let Err(err) = store.notice_release(&notice.id, holder, retry_at).await {
                    tracing::error!(notice = %notice.id, error = %format!("{err:#}"), "releasing a notice failed");
                }
                continue;
            }
            match channels.send(notice).await {
                Ok(()) => {
                    metrics
                        .notice_attempts
                        .with_label_values(&[family, "sent"])
                        .inc();
                    metrics
                        .notify_channel_up
                        .with_label_values(&[family])
                        .set(1);
                    failing_since.remove(family);
                    let now = time::OffsetDateTime::now_utc();
                    match store.notice_sent(&notice.id, holder, now).await {
                        Ok(true) => {
                            tracing::info!(notice = %notice.id, kind = %notice.kind, channel = %notice.channel, "notice sent")
                        }
                        Ok(false) => {
                            tracing::warn!(notice = %notice.id, "notice sent after its claim ran out; it may be sent twice")
                        }
                        Err(err) => {
                            tracing::error!(notice = %notice.id, error = %format!("{err:#}"), "recording a sent notice failed; it will be sent again")
                        }
                    }
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    metrics
                        .notice_attempts
                        .with_label_values(&[family, "failed"])
                        .inc();
                    metrics
                        .notify_channel_up
                        .with_label_values(&[family])
                        .set(0);
                    let since = failing_since
                        .entry(family)
                        .or_insert_with(|| (time::OffsetDateTime::now_utc(), String::new()));
                    since.1 = error.clone();
                    failing.insert(notice.channel.clone());
                    let give_up = notice.attempts + 1 >= i64::from(settings.max_attempts);
                    let retry_at = time::OffsetDateTime::now_utc()
                        + backoff(notice.attempts, settings.retry_first, settings.retry_max);
                    tracing::warn!(notice = %notice.id, channel = %notice.channel, attempts = notice.attempts + 1, give_up, error = %error, "notice not delivered");
                    if let Err(err) = store
                        .notice_failed(&notice.id, holder, &error, retry_at, give_up)
                        .await
                    {
                        tracing::error!(notice = %notice.id, error = %format!("{err:#}"), "recording a failed notice failed");
                    }
                }
            }
        }
        if !failing.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Settings> {
        let raw: NotifyConfig = toml::from_str(text)?;
        Settings::check(raw, Path::new("/nonexistent"))
    }

    #[test]
    fn settings_are_checked_with_the_key_named() {
        let defaults = parse("").unwrap();
        assert_eq!(defaults.grace, Duration::from_secs(120));
        assert_eq!(defaults.subject_prefix, "[TBSC]");
        assert!(defaults.email.is_none());
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert!(
            err("[email]\nhost = \"smtp.example.vn\"\ntls = \"none\"\nfrom = \"a@b.vn\"\n")
                .contains("only for a relay on this machine")
        );
        assert!(
            err("[email]\nhost = \"smtp.example.vn\"\nfrom = \"a@b.vn\"\nusername = \"u\"\n")
                .contains("go together")
        );
        assert!(
            err("[email]\nhost = \"smtp.example.vn\"\nfrom = \"giám sát\"\n")
                .contains("is not an address")
        );
        assert!(err("[email]\nhost = \"smtp.example.vn\"\nfrom = \"a@b.vn\"\nusername = \"u\"\npassword_file = \"pw\"\n")
            .contains("notify.email.password_file /nonexistent/pw"));
        assert!(
            err("[[webhook]]\nname = \"bot\"\nurl = \"http://chat.example.vn/hook\"\n")
                .contains("must be https://")
        );
        assert!(err("[[webhook]]\nname = \"bot\"\nurl = \"https://a.vn\"\n[[webhook]]\nname = \"bot\"\nurl = \"https://b.vn\"\n")
            .contains("used twice"));
        assert!(err(
            "[[webhook]]\nname = \"bot\"\nurl = \"https://a.vn\"\ntemplate = \"{{{subject}}\"\n"
        )
        .contains("template is not JSON"));
        let local =
            parse("[email]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@b.vn\"\n").unwrap();
        assert_eq!(local.email.unwrap().port, 25);
        let hook =
            parse("[[webhook]]\nname = \"bot\"\nurl = \"http://127.0.0.1:9/hook\"\n").unwrap();
        assert!(hook.webhook("bot").is_some());
    }

    /// The keys of a commented-out table of the example config, uncommented.
    pub(crate) fn example_table(table: &str) -> String {
        include_str!("../../../collector.example.toml")
            .split(&format!("\n# [{table}]\n"))
            .nth(1)
            .expect("the example shows the table")
            .lines()
            .take_while(|line| line.starts_with("# ") && line.contains(" = "))
            .filter_map(|line| line.strip_prefix("# "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn links_go_to_the_console_s_incident_page_or_nowhere() {
        let settings = parse("console_url = \"https://cntt.example.gov.vn/\"\n").unwrap();
        assert_eq!(
            incident_link(&settings, "0193b1d2").as_deref(),
            Some("https://cntt.example.gov.vn/incidents/0193b1d2")
        );
        assert_eq!(incident_link(&parse("").unwrap(), "0193b1d2"), None);
        for bad in [
            "cntt.example.gov.vn",
            "http://cntt.example.gov.vn",
            "https://a.vn/?x=1",
        ] {
            let err = format!(
                "{:#}",
                parse(&format!("console_url = {bad:?}\n")).unwrap_err()
            );
            assert!(err.contains("notify.console_url"), "{bad}: {err}");
        }
        assert_eq!(
            parse("").unwrap().channels_set_up(),
            BTreeSet::new(),
            "nothing is set up by default"
        );
    }

    #[test]
    fn escaping_follows_the_content_type() {
        for (content_type, escaping) in [
            ("application/json", Escaping::Json),
            ("application/json; charset=utf-8", Escaping::Json),
            ("application/x-www-form-urlencoded", Escaping::Percent),
            ("text/xml; charset=utf-8", Escaping::Xml),
            ("application/soap+xml", Escaping::Xml),
            ("text/plain", Escaping::Raw),
        ] {
            assert_eq!(
                Escaping::of_content_type(content_type),
                escaping,
                "{content_type}"
            );
        }
        let values = [("text", "Sự cố & <\"x\">")];
        assert_eq!(fill("{{text}}", &values, Escaping::Raw), "Sự cố & <\"x\">");
        assert_eq!(
            fill("t={{text}}", &values, Escaping::Percent),
            "t=S%E1%BB%B1%20c%E1%BB%91%20%26%20%3C%22x%22%3E"
        );
        assert_eq!(
            fill("<t>{{text}}</t>", &values, Escaping::Xml),
            "<t>Sự cố &amp; &lt;&quot;x&quot;&gt;</t>"
        );
    }

    #[test]
    fn retries_back_off_up_to_ten_minutes() {
        let first = Duration::from_secs(10);
        let max = Duration::from_secs(600);
        let waits: Vec<u64> = (0..8).map(|n| backoff(n, first, max).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600]);
    }

    #[test]
    fn templates_escape_values() {
        let body = fill_template(
            r#"{"text": "{{subject}}\n{{text}}", "x": "{{unknown}}"}"#,
            &[("subject", "Sự cố \"A\""), ("text", "dòng 1\ndòng 2")],
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["text"], "Sự cố \"A\"\ndòng 1\ndòng 2");
        assert_eq!(value["x"], "");
    }
}
