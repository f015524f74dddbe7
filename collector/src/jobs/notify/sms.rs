//! SMS as a notification channel (issue 17), through a carrier's HTTP gateway (SMS công vụ,
//! brandname SMS). Gateways differ in everything, so the request is configured: URL, method, a
//! body template with its content type, a header carrying the credential, and the rule that says
//! an answer means "sent".
//!
//! Placeholders (`{{phone}}`, `{{phone_intl}}`, `{{text}}`, `{{notice}}`) are filled escaped for
//! where they stand: percent-encoded in the URL, and in the body as its content type needs (JSON,
//! form, XML or as they are). `{{notice}}` is the notice's id: a gateway that takes a request id
//! can use it to drop the repeat a collector's crash between sending and recording may cause.
//!
//! The credential is read from a file, sent only in its header, and taken out of any answer
//! quoted in an error.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::Secret;

use super::{fill, Escaping};
use crate::config::SmsConfig;
use crate::domain::channels::phone_international;

/// The SMS gateway, checked.
#[derive(Debug, Clone)]
pub struct Sms {
    /// URL template.
    pub url: String,
    /// `GET`, `POST` or `PUT`.
    pub method: reqwest::Method,
    /// The body's content type.
    pub content_type: String,
    /// Body template; none for `GET`.
    pub body: Option<String>,
    /// The credential's header and value.
    pub auth: Option<(reqwest::header::HeaderName, Secret)>,
    /// What an answer must show for a message to count as sent.
    pub success: SuccessRule,
    /// Longest text, in characters.
    pub max_chars: usize,
    /// Extra CA to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

/// What an answer must show, besides a 2xx status, for a message to count as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuccessRule {
    /// Text the answer must contain.
    pub contains: Option<String>,
    /// A JSON pointer into the answer and the value it must have, as text.
    pub json_field: Option<(String, String)>,
}

impl SuccessRule {
    /// Whether an answer (its status and body) means the message was sent; if not, why.
    pub fn judge(&self, status: u16, body: &str) -> Result<(), String> {
        let quoted = || body.chars().take(200).collect::<String>();
        if !(200..300).contains(&status) {
            return Err(format!("the SMS gateway answered {status}: {}", quoted()));
        }
        if let Some(text) = &self.contains {
            if !body.contains(text.as_str()) {
                return Err(format!(
                    "the SMS gateway answered {status} without {text:?}: {}",
                    quoted()
                ));
            }
        }
        if let Some((pointer, expected)) = &self.json_field {
            let value = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|answer| answer.pointer(pointer).cloned());
            let found = match &value {
                Some(serde_json::Value::String(text)) => Some(text.clone()),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            if found.as_deref() != Some(expected.as_str()) {
                return Err(format!(
                    "the SMS gateway answered {status} with {pointer} = {}, not {expected:?}: {}",
                    found.map_or_else(|| "nothing".to_owned(), |found| format!("{found:?}")),
                    quoted()
                ));
            }
        }
        Ok(())
    }
}

/// The request for one message: its URL and body, placeholders filled.
pub fn request(sms: &Sms, phone: &str, text: &str, notice: &str) -> (String, Option<String>) {
    let international = phone_international(phone);
    let values = [
        ("phone", phone),
        ("phone_intl", international.as_str()),
        ("text", text),
        ("notice", notice),
    ];
    let url = fill(&sms.url, &values, Escaping::Percent);
    let body = sms
        .body
        .as_ref()
        .map(|body| fill(body, &values, Escaping::of_content_type(&sms.content_type)));
    (url, body)
}

/// Checks `[notify.sms]` and reads its credential file (relative to `base`).
///
/// # Errors
///
/// When a value is unusable; the message names the key.
pub(super) fn check(raw: SmsConfig, base: &Path) -> anyhow::Result<Sms> {
    let method = match raw.method.to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        _ => bail!(
            "notify.sms.method must be POST, PUT or GET, not {:?}",
            raw.method
        ),
    };
    let is_get = method == reqwest::Method::GET;
    if is_get && raw.body.is_some() {
        bail!("notify.sms.body: a GET request has no body; put the placeholders in the url");
    }
    if !is_get && raw.body.is_none() {
        bail!("notify.sms.body is needed for a {method} request");
    }
    let sample = Sms {
        url: raw.url.clone(),
        method: method.clone(),
        content_type: raw.content_type.clone(),
        body: raw.body.clone(),
        auth: None,
        success: SuccessRule::default(),
        max_chars: raw.max_chars,
        ca_pem: None,
    };
    let (url, body) = request(&sample, "0912345678", "Sự cố \"thử\" & <kiểm tra>", "n-1");
    let parsed = reqwest::Url::parse(&url)
        .with_context(|| format!("notify.sms.url {:?} is not a URL once filled", raw.url))?;
    let local = parsed.host_str().is_some_and(super::is_loopback);
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        bail!(
            "notify.sms.url must be https:// (http:// only to this machine), not {:?}",
            raw.url
        );
    }
    let everything = format!("{}{}", raw.url, raw.body.as_deref().unwrap_or_default());
    if !everything.contains("{{text}}")
        || !(everything.contains("{{phone}}") || everything.contains("{{phone_intl}}"))
    {
        bail!("notify.sms: the url or the body must hold {{{{text}}}} and {{{{phone}}}} (or {{{{phone_intl}}}})");
    }
    if Escaping::of_content_type(&raw.content_type) == Escaping::Json {
        if let Some(body) = &body {
            serde_json::from_str::<serde_json::Value>(body).with_context(|| {
                "notify.sms.body is not JSON once its placeholders are filled (content_type is JSON)"
            })?;
        }
    }
    reqwest::header::HeaderValue::from_str(&raw.content_type).with_context(|| {
        format!(
            "notify.sms.content_type {:?} is not a header value",
            raw.content_type
        )
    })?;
    let auth = match (raw.auth_header, raw.auth_file) {
        (Some(name), Some(file)) => {
            let header = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("notify.sms.auth_header {name:?} is not a header name"))?;
            let value = super::read_secret(&base.join(file), "notify.sms.auth_file")?;
            if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
                bail!("notify.sms.auth_file does not hold a header value (one line of visible characters)");
            }
            Some((header, value))
        }
        (None, None) => None,
        _ => bail!("notify.sms.auth_header and notify.sms.auth_file go together"),
    };
    let json_field = match (raw.success_json_field, raw.success_json_equals) {
        (Some(field), Some(value)) => {
            if !field.starts_with('/') {
                bail!("notify.sms.success_json_field {field:?} must be a JSON pointer like \"/status\"");
            }
            Some((field, value))
        }
        (None, None) => None,
        _ => bail!("notify.sms.success_json_field and notify.sms.success_json_equals go together"),
    };
    if raw.max_chars < 70 {
        bail!("notify.sms.max_chars must be at least 70 (one SMS with diacritics)");
    }
    Ok(Sms {
        url: raw.url,
        method,
        content_type: raw.content_type,
        body: raw.body,
        auth,
        success: SuccessRule {
            contains: raw.success_contains,
            json_field,
        },
        max_chars: raw.max_chars,
        ca_pem: raw
            .ca_file
            .map(|file| super::read_ca(&base.join(file), "notify.sms.ca_file"))
            .transpose()?,
    })
}

/// The gateway, ready to send.
#[derive(Clone)]
pub struct Gateway {
    sms: Sms,
    client: reqwest::Client,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("method", &self.sms.method)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway's HTTPS client.
    ///
    /// # Errors
    ///
    /// When the CA file is unusable.
    pub fn new(sms: &Sms, timeout: Duration) -> anyhow::Result<Gateway> {
        Ok(Gateway {
            sms: sms.clone(),
            client: super::deliver::http_client(sms.ca_pem.as_deref(), timeout)?,
        })
    }

    /// The longest text, in characters.
    pub fn max_chars(&self) -> usize {
        self.sms.max_chars
    }

    /// Sends `text` to `phone` as notice `notice`.
    ///
    /// # Errors
    ///
    /// When the gateway cannot be reached or its answer does not meet the success rule; the
    /// message says why, never the credential.
    pub async fn send(&self, phone: &str, text: &str, notice: &str) -> anyhow::Result<()> {
        if phone.is_empty() {
            bail!("the contact has no phone number");
        }
        let (url, body) = request(&self.sms, phone, text, notice);
        let mut builder = self.client.request(self.sms.method.clone(), url);
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, &self.sms.content_type)
                .body(body);
        }
        if let Some((header, value)) = &self.sms.auth {
            builder = builder.header(header.clone(), value.expose());
        }
        let response = builder
            .send()
            .await
            // A gateway's URL may hold a key in its query.
            .map_err(reqwest::Error::without_url)
            .context("sending to the SMS gateway")?;
        let status = response.status().as_u16();
        let answer = response
            .text()
            .await
            .map_err(reqwest::Error::without_url)
            .context("reading the SMS gateway's answer")?;
        self.sms.success.judge(status, &answer).map_err(|reason| {
            let reason = match &self.sms.auth {
                Some((_, value)) => reason.replace(value.expose(), "[credential]"),
                None => reason,
            };
            anyhow::Error::msg(reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks what `rule` says of each answer: sent, or the start of why not.
    fn judged(rule: &SuccessRule, cases: &[(u16, &str, Result<(), &str>)]) {
        for (status, body, expected) in cases {
            let res = rule.judge(*status, body);
            match (expected, &res) {
                (Ok(()), Ok(())) => {}
                (Err(start), Err(reason)) if reason.starts_with(start) => {}
                _ => panic!("{status} {body}: {res:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn the_success_rule_wants_a_2xx_and_what_it_names() {
        judged(
            &SuccessRule::default(),
            &[
                (200, "", Ok(())),
                (202, "queued", Ok(())),
                (500, "down", Err("the SMS gateway answered 500: down")),
            ],
        );
        judged(
            &SuccessRule {
                contains: Some("OK".into()),
                json_field: None,
            },
            &[
                (200, "OK:123", Ok(())),
                (
                    200,
                    "ERR:7",
                    Err("the SMS gateway answered 200 without \"OK\""),
                ),
            ],
        );
        let json = SuccessRule {
            contains: None,
            json_field: Some(("/result/code".into(), "100".into())),
        };
        judged(
            &json,
            &[
                (200, r#"{"result":{"code":"100"}}"#, Ok(())),
                (200, r#"{"result":{"code":100}}"#, Ok(())),
                (
                    200,
                    r#"{"result":{"code":"99","message":"Sai mật khẩu"}}"#,
                    Err("the SMS gateway answered 200 with /result/code = \"99\", not \"100\""),
                ),
                (
                    200,
                    "not json",
                    Err("the SMS gateway answered 200 with /result/code = nothing"),
                ),
                (
                    401,
                    r#"{"result":{"code":"100"}}"#,
                    Err("the SMS gateway answered 401"),
                ),
            ],
        );
    }

    fn gateway(url: &str, content_type: &str, body: Option<&str>) -> Sms {
        Sms {
            url: url.into(),
            method: reqwest::Method::POST,
            content_type: content_type.into(),
            body: body.map(str::to_owned),
            auth: None,
            success: SuccessRule::default(),
            max_chars: 268,
            ca_pem: None,
        }
    }

    #[test]
    fn placeholders_are_escaped_for_where_they_stand() {
        let text = "Sự cố \"SC-2026-0042\" & <WAN>: 50% mất gói";
        let json = gateway(
            "https://sms.example.vn/send?to={{phone_intl}}",
            "application/json; charset=utf-8",
            Some(r#"{"to": "{{phone}}", "message": "{{text}}", "ref": "{{notice}}"}"#),
        );
        let (url, body) = request(&json, "0912345678", text, "n-1");
        assert_eq!(url, "https://sms.example.vn/send?to=84912345678");
        let body: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(body["message"], text);
        assert_eq!(body["ref"], "n-1");
        let form = gateway(
            "https://sms.example.vn/send",
            "application/x-www-form-urlencoded",
            Some("phone={{phone}}&message={{text}}"),
        );
        let (_, body) = request(&form, "0912345678", "Sự cố & 50%", "n-1");
        assert_eq!(
            body.unwrap(),
            "phone=0912345678&message=S%E1%BB%B1%20c%E1%BB%91%20%26%2050%25"
        );
        let xml = gateway(
            "https://sms.example.vn/soap",
            "text/xml; charset=utf-8",
            Some("<send><to>{{phone}}</to><msg>{{text}}</msg></send>"),
        );
        let (_, body) = request(&xml, "0912345678", "A & <B> \"C\" 'D'", "n-1");
        assert_eq!(
            body.unwrap(),
            "<send><to>0912345678</to><msg>A &amp; &lt;B&gt; &quot;C&quot; &apos;D&apos;</msg></send>"
        );
        let mut get = gateway(
            "https://sms.example.vn/send?to={{phone}}&text={{text}}",
            "text/plain",
            None,
        );
        get.method = reqwest::Method::GET;
        let (url, body) = request(&get, "0912345678", "Sự cố?&=", "n-1");
        assert_eq!(
            url,
            "https://sms.example.vn/send?to=0912345678&text=S%E1%BB%B1%20c%E1%BB%91%3F%26%3D"
        );
        assert_eq!(body, None);
    }

    #[test]
    fn the_example_s_gateway_is_valid_and_shows_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sms-auth"), "Bearer bi-mat\n").unwrap();
        std::fs::write(
            dir.path().join("sms-ca.pem"),
            "-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();
        let raw: SmsConfig =
            toml::from_str(&super::super::tests::example_table("notify.sms")).unwrap();
        assert_eq!(raw.method, "POST");
        assert_eq!(raw.content_type, "application/json");
        let sms = check(raw, dir.path()).unwrap();
        assert_eq!(sms.max_chars, 268);
        assert!(sms.auth.is_some() && sms.success.json_field.is_some());
    }

    #[test]
    fn the_gateway_settings_are_checked_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "Bearer bi-mat\n").unwrap();
        let parse = |text: &str| -> anyhow::Result<Sms> {
            let raw: SmsConfig = toml::from_str(text)?;
            check(raw, dir.path())
        };
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert!(err("url = \"http://sms.example.vn/send\"\nbody = '{\"t\": \"{{text}}\", \"p\": \"{{phone}}\"}'\n")
            .contains("must be https://"));
        assert!(
            err("url = \"https://sms.example.vn/send\"\nbody = '{\"t\": \"{{text}}\"}'\n")
                .contains("must hold {{text}} and {{phone}}")
        );
        assert!(err("url = \"https://sms.example.vn/send\"\nbody = '{\"t\": {{text}}, \"p\": \"{{phone}}\"}'\n")
            .contains("is not JSON"));
        assert!(
            err("url = \"https://sms.example.vn/send\"\nmethod = \"GET\"\nbody = 'x'\n")
                .contains("a GET request has no body")
        );
        assert!(err("url = \"https://sms.example.vn/send\"\nbody = '{\"t\": \"{{text}}\", \"p\": \"{{phone}}\"}'\nauth_header = \"Authorization\"\n")
            .contains("go together"));
        assert!(err("url = \"https://sms.example.vn/send\"\nbody = '{\"t\": \"{{text}}\", \"p\": \"{{phone}}\"}'\nsuccess_json_field = \"status\"\nsuccess_json_equals = \"0\"\n")
            .contains("must be a JSON pointer"));
        let sms = parse("url = \"https://sms.example.vn/send\"\nbody = '{\"t\": \"{{text}}\", \"p\": \"{{phone_intl}}\"}'\nauth_header = \"Authorization\"\nauth_file = \"key\"\n").unwrap();
        assert_eq!(sms.max_chars, 268);
        assert_eq!(sms.method, reqwest::Method::POST);
        assert!(!format!("{sms:?}").contains("bi-mat"));
        let get =
            parse("url = \"http://127.0.0.1:9/send?p={{phone}}&t={{text}}\"\nmethod = \"get\"\n")
                .unwrap();
        assert_eq!(get.method, reqwest::Method::GET);
    }
}
