//! Who is asking: the [`Person`] behind a console request, and [`Posted`], the only way a
//! console handler receives a form.
//!
//! FIXME(issue 14): people accounts are being built; until then a session cookie holds an API
//! token (`resolve_session`), which lets the pages be built and tested. The real sessions
//! (server-side, idle and absolute timeouts, argon2id passwords, lockout) replace
//! `resolve_session` and the login pages without changing `Person` or `Posted`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::ConsoleError;
use crate::domain::auth::{hash_secret, Principal, Role};
use crate::http::api::{peer, AppState};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "cntt_session";

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

/// The person a session cookie belongs to, if it is valid now.
async fn resolve_session(
    state: &AppState,
    cookie: &str,
    address: Option<String>,
) -> Result<Option<Person>, ConsoleError> {
    let Some(token) = state.store.api_token_by_hash(&hash_secret(cookie)).await? else {
        return Ok(None);
    };
    if token.revoked_at.is_some() {
        return Ok(None);
    }
    let Ok(role) = token.role.parse::<Role>() else {
        return Ok(None);
    };
    let csrf_token = Sha256::digest(format!("csrf:{cookie}").as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(Some(Person {
        id: token.id,
        username: format!("token{}", token.id),
        full_name: token.name,
        role,
        unit_id: token.unit_id,
        csrf_token,
        address,
    }))
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let address = peer(parts);
        let person = match session_cookie(parts) {
            Some(cookie) => resolve_session(state, &cookie, address)
                .await
                .map_err(IntoResponse::into_response)?,
            None => None,
        };
        match person {
            Some(person) => Ok(person),
            None if parts.method == Method::GET => {
                let next = parts.uri.path_and_query().map_or("/", |path| path.as_str());
                let target = format!("/login?next={}", form_urlencoded_component(next));
                Err(Redirect::to(&target).into_response())
            }
            None => Err(Redirect::to("/login").into_response()),
        }
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

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let person = Person::from_request_parts(&mut parts, state).await?;
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
        Ok(Posted { person, form })
    }
}

/// The largest form the console accepts (a periodic report's text fits many times over).
const FORM_LIMIT: usize = 1024 * 1024;

/// Whether the request's `Origin` (or, lacking it, `Sec-Fetch-Site`) says it came from a page of
/// this server.
fn same_origin(parts: &Parts) -> bool {
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
fn constant_time_eq(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
