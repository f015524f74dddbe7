//! Logging in and out, and changing one's password: `GET|POST /login`, `POST /logout`,
//! `GET|POST /password`.
//!
//! A login answers the same for an unknown username, a wrong password, a locked or a disabled
//! account ("Tên đăng nhập hoặc mật khẩu không đúng"), and takes the same time: an unknown
//! username is checked against a dummy hash. Each attempt is charged to the address's rate
//! limit (`limits.unauthenticated_*`), so one address cannot try many accounts;
//! `console.lockout_attempts` wrong passwords in a row lock an account for
//! `console.lockout_duration`, so many addresses cannot try one account.
//!
//! Audit: `person.login` (ok, or denied with the reason, never the password), `person.locked`,
//! `person.logout`, `person.password_changed`, each with the person and the address. Failures
//! against an existing, unlocked account are written at once: the lockout bounds them to
//! `lockout_attempts` per account per lockout. Failures nothing bounds (an unknown username, a
//! locked or disabled account, the rate limit) go through the aggregated refusal log of
//! `http/api/guard.rs`, like the API's refused tokens.

use std::time::Instant;

use askama::Template;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use cntt_common::Secret;
use serde::Deserialize;
use time::OffsetDateTime;

use super::session::{
    same_origin, session_cookie_removal, session_cookie_value, Current, SessionPosted,
};
use super::{render, ConsoleError, Layout, Section};
use crate::domain::auth::{hash_secret, new_secret, SecretKind};
use crate::domain::password::{self, check_policy, verify_dummy, verify_password};
use crate::http::api::{peer, AppState};
use crate::store::{NewAuditEntry, NewSession, StoredPerson};

/// The routes of this file.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_show).post(login_create))
        .route("/logout", axum::routing::post(logout_create))
        .route("/password", get(password_show).post(password_update))
}

/// The answer to every failed login, whatever the cause.
const LOGIN_REFUSED: &str = "Tên đăng nhập hoặc mật khẩu không đúng. Sau nhiều lần sai liên tiếp, \
                             tài khoản bị tạm khóa; xin chờ rồi thử lại, hoặc liên hệ quản trị.";

/// The largest login or password form accepted.
const FORM_LIMIT: usize = 16 * 1024;

/// Where to go after logging in: a path of this console, never another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains(['\\', '\r', '\n', '\t'])
                && !path.starts_with("/login")
                && !path.starts_with("/logout") =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    username: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

async fn login_show(Query(query): Query<LoginQuery>) -> Response {
    render(&LoginPage {
        layout: Layout::anonymous("Đăng nhập"),
        next: local_path(query.next.as_deref()),
        username: String::new(),
        notice: query
            .expired
            .is_some()
            .then(|| "Phiên làm việc đã hết hạn; xin đăng nhập lại.".to_owned()),
        error: None,
    })
}

/// An absent password field reads as an empty password (refused like a wrong one).
fn no_secret() -> Secret {
    Secret::new("")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default = "no_secret")]
    password: Secret,
    next: Option<String>,
}

/// The login page again, with the refusal.
fn login_refused(status: StatusCode, username: &str, next: &str, error: &str) -> Response {
    let mut response = render(&LoginPage {
        layout: Layout::anonymous("Đăng nhập"),
        next: next.to_owned(),
        username: username.to_owned(),
        notice: None,
        error: Some(error.to_owned()),
    });
    *response.status_mut() = status;
    response
}

/// Checks a password against a stored hash off the async threads (argon2 takes tens of
/// milliseconds of CPU); `None` checks against the dummy hash and answers false.
async fn verify(password: Secret, stored: Option<String>) -> Result<bool, ConsoleError> {
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify_password(&password, &stored),
        None => {
            verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(|err| ConsoleError::Internal(anyhow::Error::new(err).context("checking a password")))
}

/// Hashes a password off the async threads.
async fn hash(password: Secret) -> Result<String, ConsoleError> {
    tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .map_err(|err| ConsoleError::Internal(anyhow::Error::new(err).context("hashing")))?
        .map_err(ConsoleError::Internal)
}

/// An audit entry about a person, from an address.
fn person_entry(
    username: &str,
    action: &str,
    outcome: &'static str,
    address: Option<&String>,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: format!("person:{username}"),
        action: action.into(),
        target: format!("person:{username}"),
        outcome,
        remote_addr: address.cloned(),
        details,
    }
}

async fn login_create(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address = peer(&parts);
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return ConsoleError::BadRequest("Biểu mẫu quá lớn.".into()).into_response();
    };
    let form: LoginForm = match serde_urlencoded::from_bytes(&bytes) {
        Ok(form) => form,
        Err(_) => {
            return ConsoleError::BadRequest("Biểu mẫu đăng nhập chưa hợp lệ.".into())
                .into_response()
        }
    };
    let next = local_path(form.next.as_deref());
    let typed = form.username.trim().chars().take(64).collect::<String>();
    if !same_origin(&parts) {
        let entry = NewAuditEntry {
            actor: "anonymous".into(),
            action: "person.login".into(),
            target: format!("person:{typed}"),
            outcome: "denied",
            remote_addr: address.clone(),
            details: serde_json::json!({ "reason": "cross_origin" }),
        };
        state.audit_refusal(entry).await;
        return ConsoleError::BadRequest(
            "Biểu mẫu đến từ trang khác; xin mở trang đăng nhập.".into(),
        )
        .into_response();
    }
    // Every attempt costs the address a token of the unauthenticated rate limit.
    if let Some(peer_address) = parts.extensions.get::<crate::http::api::PeerAddr>() {
        if let Err(wait) = state
            .guard
            .limiter
            .take(peer_address.0.ip(), Instant::now())
        {
            state
                .metrics
                .auth_failures
                .with_label_values(&["rate_limited"])
                .inc();
            let entry = NewAuditEntry {
                actor: "anonymous".into(),
                action: "person.login".into(),
                target: format!("person:{typed}"),
                outcome: "denied",
                remote_addr: address.clone(),
                details: serde_json::json!({ "reason": "rate_limited" }),
            };
            if state.audit_refusal(entry).await {
                tracing::warn!(peer = %peer_address.0, "console logins over the rate limit");
            }
            let seconds = wait.as_secs().max(1);
            let mut response = login_refused(
                StatusCode::TOO_MANY_REQUESTS,
                &typed,
                &next,
                &format!(
                    "Quá nhiều lần đăng nhập từ địa chỉ này; xin chờ {seconds} giây rồi thử lại."
                ),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
    }
    let password = form.password;
    let person = match password::normalise_username(&form.username) {
        Ok(username) => match state.store.person_by_username(&username).await {
            Ok(person) => person,
            Err(err) => return ConsoleError::Internal(err).into_response(),
        },
        Err(_) => None,
    };
    match log_in(&state, person, password, address.as_ref(), &typed).await {
        Ok(Outcome::Refused) => {
            state
                .metrics
                .auth_failures
                .with_label_values(&["console"])
                .inc();
            login_refused(StatusCode::UNAUTHORIZED, &typed, &next, LOGIN_REFUSED)
        }
        Ok(Outcome::LoggedIn {
            secret,
            must_change,
        }) => {
            let target = if must_change { "/password" } else { &next };
            let mut response = Redirect::to(target).into_response();
            response.headers_mut().insert(
                SET_COOKIE,
                session_cookie_value(secret.expose(), state.console.session_lifetime),
            );
            response
        }
        Err(err) => err.into_response(),
    }
}

/// What a login came to.
enum Outcome {
    /// Refused; the answer does not say why.
    Refused,
    /// A new session, whose cookie holds `secret`.
    LoggedIn { secret: Secret, must_change: bool },
}

/// Checks a login and opens a session; audits every outcome.
async fn log_in(
    state: &AppState,
    person: Option<StoredPerson>,
    password: Secret,
    address: Option<&String>,
    typed: &str,
) -> Result<Outcome, ConsoleError> {
    let now = OffsetDateTime::now_utc();
    let Some(person) = person else {
        verify(password, None).await?;
        let entry = NewAuditEntry {
            actor: "anonymous".into(),
            action: "person.login".into(),
            target: format!("person:{typed}"),
            outcome: "denied",
            remote_addr: address.cloned(),
            details: serde_json::json!({ "reason": "unknown_user" }),
        };
        state.audit_refusal(entry).await;
        tracing::info!(?address, "console login for an unknown username refused");
        return Ok(Outcome::Refused);
    };
    let username = person.username.clone();
    // The hash is checked in every case, so a locked or disabled account answers in the same
    // time as a wrong password.
    let matches = verify(password, Some(person.password_hash.clone())).await?;
    let refusal = if person.disabled_at.is_some() {
        Some("disabled")
    } else if person.locked_at(now) {
        Some("locked")
    } else {
        None
    };
    if let Some(reason) = refusal {
        let details = serde_json::json!({
            "reason": reason,
            "locked_until": person.locked_until,
        });
        state
            .audit_refusal(person_entry(
                &username,
                "person.login",
                "denied",
                address,
                details,
            ))
            .await;
        tracing::info!(%username, reason, "console login refused");
        return Ok(Outcome::Refused);
    }
    if !matches {
        let failure = state
            .store
            .person_login_failed(
                person.id,
                now,
                state.console.lockout_attempts,
                state.console.lockout_duration,
            )
            .await?;
        if failure.already_locked {
            // A guess that raced the one that locked the account.
            let details = serde_json::json!({ "reason": "locked" });
            state
                .audit_refusal(person_entry(
                    &username,
                    "person.login",
                    "denied",
                    address,
                    details,
                ))
                .await;
            return Ok(Outcome::Refused);
        }
        let details = serde_json::json!({
            "reason": "wrong_password",
            "failed_logins": if failure.locked {
                i64::from(state.console.lockout_attempts)
            } else {
                failure.failed_logins
            },
        });
        state
            .audit(person_entry(
                &username,
                "person.login",
                "denied",
                address,
                details,
            ))
            .await;
        tracing::info!(%username, "console login with a wrong password");
        if let Some(until) = failure.locked_until {
            tracing::warn!(%username, "console account locked after wrong passwords");
            state
                .audit(person_entry(
                    &username,
                    "person.locked",
                    "ok",
                    address,
                    serde_json::json!({
                        "failed_logins": state.console.lockout_attempts,
                        "locked_until": until,
                        "lockout_seconds": state.console.lockout_duration.as_secs(),
                    }),
                ))
                .await;
        }
        return Ok(Outcome::Refused);
    }
    let secret = new_secret(SecretKind::Session);
    let csrf = new_secret(SecretKind::Session);
    let session = NewSession {
        secret_hash: hash_secret(secret.expose()),
        csrf_token: hash_secret(csrf.expose()),
        person_id: person.id,
        expires_at: now + state.console.session_lifetime,
        address: address.cloned(),
    };
    let session_id = state.store.session_create(&session, now).await?;
    state.store.person_login_ok(person.id, now).await?;
    let must_change = person.must_change_password != 0;
    state
        .audit(person_entry(
            &username,
            "person.login",
            "ok",
            address,
            serde_json::json!({
                "session": session_id,
                "role": person.role,
                "must_change_password": must_change,
            }),
        ))
        .await;
    tracing::info!(%username, "console login");
    Ok(Outcome::LoggedIn {
        secret,
        must_change,
    })
}

#[derive(Deserialize)]
struct NoFields {}

async fn logout_create(
    State(state): State<AppState>,
    posted: SessionPosted<NoFields>,
) -> Result<Response, ConsoleError> {
    let current = posted.current;
    let now = OffsetDateTime::now_utc();
    state
        .store
        .session_end(current.session_id, "logout", now)
        .await?;
    state
        .audit(person_entry(
            &current.person.username,
            "person.logout",
            "ok",
            current.person.address.as_ref(),
            serde_json::json!({ "session": current.session_id }),
        ))
        .await;
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie_removal());
    Ok(response)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    forced: bool,
    error: Option<String>,
    min_length: usize,
}

/// The password page's layout: no menu while a new password is due (every item leads back here).
fn password_layout(current: &Current) -> Layout {
    let mut layout = Layout::new(&current.person, Section::None, "Đổi mật khẩu");
    if current.must_change_password {
        layout.menu.clear();
    }
    layout
}

async fn password_show(current: Current) -> Response {
    render(&PasswordPage {
        layout: password_layout(&current),
        forced: current.must_change_password,
        error: None,
        min_length: password::MIN_LENGTH,
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default = "no_secret")]
    current: Secret,
    #[serde(default = "no_secret")]
    new: Secret,
    #[serde(default = "no_secret")]
    repeat: Secret,
}

async fn password_update(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ConsoleError> {
    let posted = match SessionPosted::<PasswordForm>::from_request(request, &state).await {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    let current = posted.current;
    let form = posted.form;
    let person = &current.person;
    let address = person.address.as_ref();
    let refuse = |message: &str| {
        let mut response = render(&PasswordPage {
            layout: password_layout(&current),
            forced: current.must_change_password,
            error: Some(message.to_owned()),
            min_length: password::MIN_LENGTH,
        });
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
    };
    let Some(stored) = state.store.person_by_id(person.id).await? else {
        return Err(ConsoleError::NotFound);
    };
    let now = OffsetDateTime::now_utc();
    if !verify(form.current.clone(), Some(stored.password_hash)).await? {
        // A wrong current password counts toward the lockout like a login.
        let failure = state
            .store
            .person_login_failed(
                person.id,
                now,
                state.console.lockout_attempts,
                state.console.lockout_duration,
            )
            .await?;
        state
            .audit(person_entry(
                &person.username,
                "person.password_changed",
                "denied",
                address,
                serde_json::json!({ "reason": "wrong_password" }),
            ))
            .await;
        if let Some(until) = failure.locked_until {
            state
                .audit(person_entry(
                    &person.username,
                    "person.locked",
                    "ok",
                    address,
                    serde_json::json!({
                        "failed_logins": state.console.lockout_attempts,
                        "locked_until": until,
                        "during": "password_change",
                    }),
                ))
                .await;
            state
                .store
                .session_end(current.session_id, "locked", now)
                .await?;
            let mut response = Redirect::to("/login").into_response();
            response
                .headers_mut()
                .insert(SET_COOKIE, session_cookie_removal());
            return Ok(response);
        }
        return Ok(refuse("Mật khẩu hiện tại không đúng."));
    }
    if form.new != form.repeat {
        return Ok(refuse("Hai lần nhập mật khẩu mới không khớp nhau."));
    }
    if form.new == form.current {
        return Ok(refuse("Mật khẩu mới phải khác mật khẩu hiện tại."));
    }
    if let Err(broken) = check_policy(&form.new, &person.username) {
        return Ok(refuse(&broken.to_string()));
    }
    let new_hash = hash(form.new).await?;
    state
        .store
        .person_set_password(
            person.id,
            &new_hash,
            false,
            Some(current.session_id),
            &person.principal().actor(),
            now,
        )
        .await?;
    state
        .audit(person_entry(
            &person.username,
            "person.password_changed",
            "ok",
            address,
            serde_json::json!({
                "forced": current.must_change_password,
                "other_sessions_ended": true,
            }),
        ))
        .await;
    tracing::info!(username = %person.username, "console password changed");
    Ok(Redirect::to("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(
            local_path(Some("/incidents?state=open")),
            "/incidents?state=open"
        );
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("/login?next=/")), "/");
        assert_eq!(local_path(Some("")), "/");
        assert_eq!(local_path(None), "/");
    }
}
