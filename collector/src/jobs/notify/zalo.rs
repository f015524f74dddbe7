//! Zalo as a notification channel (issue 17): the province's bot on the Zalo Bot Platform sends
//! each contact, by its Zalo user id, the short text of a notice.
//!
//! The bot API, as its documentation gives it (bot.zaloplatforms.com/docs): every method is a
//! `POST` of JSON to `https://bot-api.zaloplatforms.com/bot{BOT_TOKEN}/{method}`, the token
//! (`{bot_id}:{access_token}`, issued when the bot is created) being part of the path.
//! `sendMessage` takes `{"chat_id": …, "text": …}`, the text 1 to 2,000 characters, and answers
//! `{"ok": true, "result": {"message_id": …, "date": …}}`; a refusal is
//! `{"ok": false, "error_code": …, "description": …}`. A message counts as sent only on a 2xx
//! answer whose `ok` is true.
//!
//! The token is a secret: it is read from a file, kept in a `Secret`, and the URL that holds it
//! is taken out of every error before the error is logged, stored or put in a channel alarm.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::Secret;
use serde::Deserialize;

use crate::config::ZaloConfig;

/// The longest text `sendMessage` takes, in characters.
pub const MAX_CHARS: usize = 2000;

/// The Zalo bot, checked.
#[derive(Debug, Clone)]
pub struct Zalo {
    /// The bot API, without a trailing slash.
    pub base_url: String,
    /// The bot token.
    pub token: Secret,
    /// Extra CA to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

/// Checks `[notify.zalo]` and reads its token file (relative to `base`).
///
/// # Errors
///
/// When the address is not https:// (http:// only to this machine), or the token file cannot be
/// read or holds something that is not a token.
pub(super) fn check(raw: ZaloConfig, base: &Path) -> anyhow::Result<Zalo> {
    let url = reqwest::Url::parse(&raw.base_url)
        .with_context(|| format!("notify.zalo.base_url {:?} is not a URL", raw.base_url))?;
    let local = url.host_str().is_some_and(super::is_loopback);
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        bail!(
            "notify.zalo.base_url must be https:// (http:// only to this machine), not {:?}",
            raw.base_url
        );
    }
    let token = super::read_secret(&base.join(&raw.token_file), "notify.zalo.token_file")?;
    if token
        .expose()
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%'))
    {
        // Said without the token itself, which is never written anywhere.
        bail!(
            "notify.zalo.token_file {} does not hold a bot token like \"123456789:abc-xyz\"",
            raw.token_file.display()
        );
    }
    Ok(Zalo {
        base_url: raw.base_url.trim_end_matches('/').to_owned(),
        token,
        ca_pem: raw
            .ca_file
            .map(|file| super::read_ca(&base.join(file), "notify.zalo.ca_file"))
            .transpose()?,
    })
}

/// The bot, ready to send.
#[derive(Clone)]
pub struct Bot {
    zalo: Zalo,
    client: reqwest::Client,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("base_url", &self.zalo.base_url)
            .finish_non_exhaustive()
    }
}

/// The envelope of every answer of the bot API.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    error_code: Option<serde_json::Value>,
    description: Option<String>,
}

/// Whether an answer of `sendMessage` (its status and body) says the message was sent; if not,
/// why, in words fit for the log and the channel alarm (`token` taken out).
pub fn judge(status: u16, body: &str, token: &str) -> Result<(), String> {
    let answer = serde_json::from_str::<Answer>(body);
    let res = match answer {
        Ok(answer) if answer.ok && (200..300).contains(&status) => Ok(()),
        Ok(answer) => Err(format!(
            "the Zalo bot API answered {status}, error_code {}: {}",
            answer
                .error_code
                .map_or_else(|| "none".to_owned(), |code| code.to_string()),
            answer.description.unwrap_or_default()
        )),
        Err(_) => Err(format!(
            "the Zalo bot API answered {status} without its JSON envelope: {}",
            body.chars().take(200).collect::<String>()
        )),
    };
    res.map_err(|reason| {
        if token.is_empty() {
            reason
        } else {
            reason.replace(token, "[token]")
        }
    })
}

impl Bot {
    /// The bot's HTTPS client.
    ///
    /// # Errors
    ///
    /// When the CA file is unusable.
    pub fn new(zalo: &Zalo, timeout: Duration) -> anyhow::Result<Bot> {
        Ok(Bot {
            zalo: zalo.clone(),
            client: super::deliver::http_client(zalo.ca_pem.as_deref(), timeout)?,
        })
    }

    /// Sends `text` (at most [`MAX_CHARS`]) to the Zalo user `chat_id`.
    ///
    /// # Errors
    ///
    /// When the API cannot be reached or refuses the message; the message says why, never the
    /// token.
    pub async fn send(&self, chat_id: &str, text: &str) -> anyhow::Result<()> {
        if chat_id.is_empty() {
            bail!("the contact has no Zalo user id");
        }
        let url = format!(
            "{}/bot{}/sendMessage",
            self.zalo.base_url,
            self.zalo.token.expose()
        );
        let response = self
            .client
            .post(url)
            .json(&serde_json::json!({ "chat_id": chat_id, "text": text }))
            .send()
            .await
            // The error's URL holds the token.
            .map_err(reqwest::Error::without_url)
            .context("posting to the Zalo bot API")?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(reqwest::Error::without_url)
            .context("reading the Zalo bot API's answer")?;
        judge(status, &body, self.zalo.token.expose()).map_err(anyhow::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ok_envelope_is_a_sent_message() {
        assert_eq!(
            judge(
                200,
                r#"{"ok":true,"result":{"message_id":"82599fa32f56d00e8941","date":1749632637199}}"#,
                "1:abc"
            ),
            Ok(())
        );
        assert_eq!(
            judge(
                200,
                r#"{"ok":false,"error_code":400,"description":"chat_id 1:abc is invalid"}"#,
                "1:abc"
            ),
            Err("the Zalo bot API answered 200, error_code 400: chat_id [token] is invalid".into())
        );
        assert_eq!(
            judge(502, "<html>Bad Gateway</html>", "1:abc"),
            Err(
                "the Zalo bot API answered 502 without its JSON envelope: <html>Bad Gateway</html>"
                    .into()
            )
        );
        assert!(judge(500, r#"{"ok":true}"#, "").is_err());
    }

    #[test]
    fn the_example_s_bot_is_valid_and_shows_the_default_address() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zalo-token"), "123456789:abc-xyz\n").unwrap();
        std::fs::write(
            dir.path().join("zalo-ca.pem"),
            "-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();
        let raw: ZaloConfig =
            toml::from_str(&super::super::tests::example_table("notify.zalo")).unwrap();
        let zalo = check(raw, dir.path()).unwrap();
        assert_eq!(zalo.base_url, "https://bot-api.zaloplatforms.com");
    }

    #[test]
    fn the_token_is_checked_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "987 bi-mat/../x\n").unwrap();
        let raw = |base_url: &str| ZaloConfig {
            base_url: base_url.into(),
            token_file: "token".into(),
            ca_file: None,
        };
        let err = format!(
            "{:#}",
            check(raw("https://bot-api.zaloplatforms.com"), dir.path()).unwrap_err()
        );
        assert!(
            err.contains("does not hold a bot token") && !err.contains("bi-mat"),
            "{err}"
        );
        std::fs::write(dir.path().join("token"), "123456789:abc-xyz\n").unwrap();
        let zalo = check(raw("http://127.0.0.1:9/"), dir.path()).unwrap();
        assert_eq!(zalo.base_url, "http://127.0.0.1:9");
        assert!(!format!("{zalo:?}").contains("abc-xyz"));
        let err = format!(
            "{:#}",
            check(raw("http://bot.example.vn"), dir.path()).unwrap_err()
        );
        assert!(err.contains("must be https://"), "{err}");
    }
}
