//! Who is asking: the [`Person`] behind a console request, and [`Posted`], the only way a
//! console handler receives a form.
//!
//! Sessions live on the server (`sessions` table): the cookie `__Host-cntt_session` holds a random
//! secret of which the database keeps only the SHA-256, with the session's form token, its
//! person, the last request (idle timeout, `console.idle_timeout`) and the absolute end
//! (`console.session_lifetime`). Every request through [`Person`] resolves the cookie, ends an
//! expired session (audited as `session.expired` with the reason, the first time it is seen) and
//! records the request. A person who must change their password is sent to `/password` from every
//! page until they do. The cookie is `Secure`, `HttpOnly`, `SameSite=Strict` and `Path=/`; the
//! `__Host-` prefix makes browsers refuse it from any other host or path.
//!
//! Forms are defended three times against cross-site requests ([`Posted`]): the browser does not
//! send a `SameSite=Strict` cookie on a post from another site, the `Origin` (or
//! `Sec-Fetch-Site`) must be this server, and the form's `csrf` field must be the session's token.
//!
//! Single sign-on later: an OpenID Connect login would end in the same place as `POST /login`
//! (`login.rs`): after the code flow, map the claims to a person (role and unit) and create the
//! same server-side session; [`resolve_session`] and everything after it stay as they are.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::ConsoleError;
use crate::domain::auth::{hash_secret, Principal, Role};
use crate::http::api::{peer, AppState};
use crate::store::{millis, NewAuditEntry};

/// The name of the session cookie. The `__Host-` prefix makes browsers accept it only when set
/// by this host over HTTPS with `Path=/` and no `Domain`.
pub const SESSION_COOKIE: &str = "__Host-cntt_session";

/// A person logged in to the console.
#[derive(Debug, Clone)]
pub struct Person {
    /// Account id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Full name, as shown.
    pub full_name: String,
    /// Role.
    pub role: Role,
    /// Scope: this unit and its subtree; none means the whole province.
    pub unit_id: Option<i64>,
    /// The session's form token: every form carries it as the field `csrf`.
    pub csrf_token: String,
    /// Client address.
    pub address: Option<String>,
}

impl Person {
    /// The same principal the API's scope checks and store functions take.
    pub fn principal(&self) -> Principal {
        Principal {
            actor: format!("person:{}", self.username),
            name: self.full_name.clone(),
            role: self.role,
            unit_id: self.unit_id,
        }
    }

    /// Whether this person administers the whole console.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this person may change anything.
    pub fn can_act(&self) -> bool {
        self.role.can_act()
    }
}

/// The session cookie's value, if any.
fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// A live session and its person, whether or not they must first change their password. Only
/// the login pages (`login.rs`) take this directly; every other page takes a [`Person`].
#[derive(Debug, Clone)]
pub(super) struct Current {
    /// Who.
    pub(super) person: Person,
    /// The session's id.
    pub(super) session_id: i64,
    /// Whether every page leads to `/password` until a new password is set.
    pub(super) must_change_password: bool,
}

/// What a session cookie turned out to be.
enum Resolved {
    /// A live session.
    Live(Current),
    /// A session that ended just now or earlier, by timeout.
    Expired,
    /// No such session, or one ended by logout, a password change or a disabled account.
    Unknown,
}

/// The session a cookie belongs to, if it is live now; ends (and audits) one that has timed out,
/// and records the request of a live one.
async fn resolve_session(
    state: &AppState,
    cookie: &str,
    address: Option<String>,
) -> Result<Resolved, ConsoleError> {
    let Some(session) = state.store.session_by_hash(&hash_secret(cookie)).await? else {
        return Ok(Resolved::Unknown);
    };
    let now = OffsetDateTime::now_utc();
    let now_ms = millis(now);
    if let Some(_ended) = session.ended_at {
        return Ok(Resolved::Unknown);
    }
    if session.disabled_at.is_some() {
        state.store.session_end(session.id, "disabled", now).await?;
        return Ok(Resolved::Unknown);
    }
    let idle_ms = i64::try_from(state.console.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    let expiry = if now_ms >= session.expires_at {
        Some("absolute")
    } else if now_ms.saturating_sub(session.last_seen_at) >= idle_ms {
        Some("idle")
    } else {
        None
    };
    if let Some(reason) = expiry {
        if state.store.session_end(session.id, reason, now).await? {
            tracing::info!(username = %session.username, reason, "console session expired");
            state
                .audit(NewAuditEntry {
                    actor: format!("person:{}", session.username),
                    action: "session.expired".into(),
                    target: format!("session:{}", session.id),
                    outcome: "ok",
                    remote_addr: address,
                    details: serde_json::json!({
                        "reason": reason,
                        "last_seen_at": session.last_seen_at,
                        "expires_at": session.expires_at,
                    }),
                })
                .await;
        }
        return Ok(Resolved::Expired);
    }
    let Ok(role) = session.role.parse::<Role>() else {
        return Ok(Resolved::Unknown);
    };
    state.store.session_touch(session.id, now).await?;
    Ok(Resolved::Live(Current {
        person: Person {
            id: session.person_id,
            username: session.username,
            full_name: session.full_name,
            role,
            unit_id: session.unit_id,
            csrf_token: session.csrf_token,
            address,
        },
        session_id: session.id,
        must_change_password: session.must_change_password != 0,
    }))
}

/// The `Set-Cookie` value of a new session, valid for `max_age`.
pub(super) fn session_cookie_value(secret: &str, max_age: std::time::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    ))
    .expect("session secrets are hex")
}

/// The `Set-Cookie` value that removes the session cookie.
pub(super) fn session_cookie_removal() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-cntt_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

impl FromRequestParts<AppState> for Current {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let address = peer(parts);
        let resolved = match session_cookie(parts) {
            Some(cookie) => resolve_session(state, &cookie, address)
                .await
                .map_err(IntoResponse::into_response)?,
            None => Resolved::Unknown,
        };
        let expired = match resolved {
            Resolved::Live(current) => return Ok(current),
            Resolved::Expired => true,
            Resolved::Unknown => false,
        };
        let mut target = "/login".to_owned();
        if parts.method == Method::GET {
            let next = parts.uri.path_and_query().map_or("/", |path| path.as_str());
            target = format!("/login?next={}", form_urlencoded_component(next));
        }
        if expired {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str("expired=1");
        }
        let mut response = Redirect::to(&target).into_response();
        if expired {
            response
                .headers_mut()
                .insert(SET_COOKIE, session_cookie_removal());
        }
        Err(response)
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let current = Current::from_request_parts(parts, state).await?;
        if current.must_change_password {
            return Err(Redirect::to("/password").into_response());
        }
        Ok(current.person)
    }
}

/// Percent-encodes a path for the `next` parameter.
fn form_urlencoded_component(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A form posted by a logged-in person from the console itself: the `Origin` (when the browser
/// sends one) is this server and the form's `csrf` field is the session's token. Anything else is
/// refused, audited, before the handler runs.
#[derive(Debug)]
pub struct Posted<T> {
    /// Who posted.
    pub person: Person,
    /// The form's fields (without `csrf`).
    pub form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form posted from the console by a live session, before any password change is forced:
/// the same checks as [`Posted`]. Only the login pages (`login.rs`) take this directly.
#[derive(Debug)]
pub(super) struct SessionPosted<T> {
    /// The session that posted.
    pub(super) current: Current,
    /// The form's fields (without `csrf`).
    pub(super) form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let posted = SessionPosted::<T>::from_request(request, state).await?;
        if posted.current.must_change_password {
            return Err(Redirect::to("/password").into_response());
        }
        Ok(Posted {
            person: posted.current.person,
            form: posted.form,
        })
    }
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for SessionPosted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let current = Current::from_request_parts(&mut parts, state).await?;
        let person = &current.person;
        let same_origin = same_origin(&parts);
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| ConsoleError::BadRequest("Biểu mẫu quá lớn.".into()).into_response())?;
        let token_ok = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .is_ok_and(|field| constant_time_eq(&field.csrf, &person.csrf_token));
        if !same_origin || !token_ok {
            let why = if same_origin {
                "form token missing or wrong"
            } else {
                "form posted from another origin"
            };
            let target = parts.uri.path().to_owned();
            return Err(person.forbid(state, &target, why).await.into_response());
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|err| {
            ConsoleError::BadRequest(format!("Biểu mẫu chưa hợp lệ: {err}.")).into_response()
        })?;
        Ok(SessionPosted { current, form })
    }
}

/// The largest form the console accepts (a periodic report's text fits many times over).
const FORM_LIMIT: usize = 1024 * 1024;

/// Whether the request's `Origin` (or, lacking it, `Sec-Fetch-Site`) says it came from a page of
/// this server.
pub(super) fn same_origin(parts: &Parts) -> bool {
    if let Some(origin) = parts.headers.get(ORIGIN) {
        let host = parts.headers.get(HOST).and_then(|host| host.to_str().ok());
        let origin = origin.to_str().unwrap_or("");
        return host.is_some_and(|host| origin == format!("https://{host}"));
    }
    match parts.headers.get("sec-fetch-site") {
        Some(site) => matches!(site.to_str(), Ok("same-origin") | Ok("none")),
        // Old browsers and scripts send neither; the form token still has to match.
        None => true,
    }
}

/// Compares two secrets in time independent of where they differ.
pub(super) fn constant_time_eq(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
