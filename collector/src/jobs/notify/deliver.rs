//! Sending one notice on its channel: email over SMTP (lettre, TLS required off this machine), a
//! webhook (JSON POST signed with HMAC-SHA256), Zalo (`zalo`) or SMS (`sms`). A Zalo or SMS notice
//! is its stored short text with the incident's link added and cut to the channel's limit
//! (`documents::short_notice::fit`). A failure is a value the engine retries, never a reason to
//! stop. Secrets are used here and never logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use lettre::message::{header, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use sha2::Sha256;

use super::{fill_template, incident_link, sms, zalo, Email, Settings, Webhook};
use crate::config::SmtpTls;
use crate::documents::short_notice::{self, Form};
use crate::store::Notice;

/// Header carrying the webhook signature: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-cntt-signature";

/// The channels, built once from the settings.
#[derive(Clone)]
pub struct Channels {
    email: Option<(Arc<AsyncSmtpTransport<Tokio1Executor>>, Mailbox)>,
    webhooks: Vec<(Webhook, reqwest::Client)>,
    zalo: Option<zalo::Bot>,
    sms: Option<sms::Gateway>,
    /// For the links short texts carry.
    settings: Arc<Settings>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field(
                "email",
                &self.email.as_ref().map(|(_, from)| from.to_string()),
            )
            .field(
                "webhooks",
                &self
                    .webhooks
                    .iter()
                    .map(|(w, _)| &w.name)
                    .collect::<Vec<_>>(),
            )
            .field("zalo", &self.zalo.is_some())
            .field("sms", &self.sms.is_some())
            .finish()
    }
}

impl Channels {
    /// Builds the SMTP transport and the webhook clients.
    ///
    /// # Errors
    ///
    /// When a CA file or the sender address is unusable.
    pub fn new(settings: &Settings) -> anyhow::Result<Channels> {
        let timeout = settings.attempt_timeout;
        let email = settings
            .email
            .as_ref()
            .map(|email| smtp(email, timeout))
            .transpose()?;
        let webhooks = settings
            .webhooks
            .iter()
            .map(|webhook| {
                Ok((
                    webhook.clone(),
                    http_client(webhook.ca_pem.as_deref(), timeout)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let zalo = settings
            .zalo
            .as_ref()
            .map(|zalo| zalo::Bot::new(zalo, timeout))
            .transpose()?;
        let sms = settings
            .sms
            .as_ref()
            .map(|sms| sms::Gateway::new(sms, timeout))
            .transpose()?;
        Ok(Channels {
            email,
            webhooks,
            zalo,
            sms,
            settings: Arc::new(settings.clone()),
        })
    }

    /// The text a Zalo or SMS notice sends: its stored short text and, for an incident, the
    /// link (or the word that there is none), within `limit` characters.
    fn short_text(&self, notice: &Notice, form: Form, limit: usize) -> String {
        let tail = match &notice.incident_id {
            Some(id) => short_notice::link_line(incident_link(&self.settings, id).as_deref(), form),
            None => String::new(),
        };
        short_notice::fit(&notice.body_text, &tail, limit, form)
    }

    /// Sends one notice.
    ///
    /// # Errors
    ///
    /// When the server refuses it or cannot be reached; the message says which.
    pub async fn send(&self, notice: &Notice) -> anyhow::Result<()> {
        if notice.channel == "zalo" {
            let Some(bot) = &self.zalo else {
                bail!("Zalo is not set up in [notify.zalo]");
            };
            let text = self.short_text(notice, Form::Message, zalo::MAX_CHARS);
            return bot.send(&notice.address, &text).await;
        }
        if notice.channel == "sms" {
            let Some(gateway) = &self.sms else {
                bail!("SMS is not set up in [notify.sms]");
            };
            let text = self.short_text(notice, Form::Compact, gateway.max_chars());
            return gateway.send(&notice.address, &text, &notice.id).await;
        }
        if notice.channel == "email" {
            let Some((transport, from)) = &self.email else {
                bail!("email is not set up in [notify.email]");
            };
            let to: Mailbox = notice
                .address
                .parse()
                .with_context(|| format!("{:?} is not an email address", notice.address))?;
            let message = Message::builder()
                .from(from.clone())
                .to(to)
                .subject(&notice.subject)
                .message_id(Some(format!("<{}@cntt-collector>", notice.id)))
                .multipart(
                    MultiPart::alternative()
                        .singlepart(
                            SinglePart::builder()
                                .header(header::ContentType::TEXT_PLAIN)
                                .body(notice.body_text.clone()),
                        )
                        .singlepart(
                            SinglePart::builder()
                                .header(header::ContentType::TEXT_HTML)
                                .body(notice.body_html.clone()),
                        ),
                )
                .context("building the message")?;
            transport.send(message).await.context("sending by SMTP")?;
            return Ok(());
        }
        let name = notice.channel.trim_start_matches("webhook:");
        let Some((webhook, client)) = self.webhooks.iter().find(|(w, _)| w.name == name) else {
            bail!("no webhook named {name:?} in [notify]");
        };
        let body = webhook_body(webhook, notice);
        let mut request = client
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-cntt-notice", &notice.id);
        if let Some(secret) = &webhook.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose(), body.as_bytes()),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .with_context(|| format!("posting to webhook {name}"))?;
        if !response.status().is_success() {
            bail!("webhook {name} answered {}", response.status());
        }
        Ok(())
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// The JSON body of a webhook: its template filled in, or the default document.
fn webhook_body(webhook: &Webhook, notice: &Notice) -> String {
    let values = [
        ("subject", notice.subject.as_str()),
        ("text", notice.body_text.as_str()),
        ("kind", notice.kind.as_str()),
        ("notice", notice.id.as_str()),
        (
            "incident",
            notice.incident_id.as_deref().unwrap_or_default(),
        ),
    ];
    match &webhook.template {
        Some(template) => fill_template(template, &values),
        None => serde_json::json!({
            "notice": notice.id,
            "incident": notice.incident_id,
            "kind": notice.kind,
            "subject": notice.subject,
            "text": notice.body_text,
        })
        .to_string(),
    }
}

fn smtp(
    email: &Email,
    timeout: Duration,
) -> anyhow::Result<(Arc<AsyncSmtpTransport<Tokio1Executor>>, Mailbox)> {
    let from: Mailbox = email
        .from
        .parse()
        .with_context(|| format!("notify.email.from {:?} is not an address", email.from))?;
    let tls = if email.tls == SmtpTls::None {
        Tls::None
    } else {
        let mut parameters = TlsParameters::builder(email.host.clone());
        if let Some(pem) = &email.ca_pem {
            parameters = parameters.add_root_certificate(
                Certificate::from_pem(pem).context("reading notify.email.ca_file")?,
            );
        }
        let parameters = parameters
            .build_rustls()
            .context("setting up TLS for SMTP")?;
        match email.tls {
            SmtpTls::Implicit => Tls::Wrapper(parameters),
            _ => Tls::Required(parameters),
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
        .port(email.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &email.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok((Arc::new(builder.build()), from))
}

/// An HTTPS client trusting the Web's roots and `ca_pem`, for webhooks, Zalo and SMS.
pub(super) fn http_client(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.context("reading a ca_file")?)
                .context("adding a CA from a ca_file")?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("choosing TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .user_agent(concat!("cntt-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building an HTTPS client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
