//! The web console: server-rendered pages in Vietnamese for officers, the Sở and leadership,
//! on the collector's own HTTPS port.
//!
//! Design:
//! - Pages are askama templates (`templates/`, checked at compile time) extending `base.html`;
//!   every page struct has a `layout: Layout` field that the base reads (who is logged in, which
//!   menu item is current, the form token).
//! - Readable without JavaScript: every action is a plain `<form method="post">`; htmx (served from
//!   `static/`, never a CDN: agencies' networks may have no Internet) only spares reloads.
//! - Who is asking is a [`Person`] (`session.rs`); every form is a [`Posted`], which refuses a post
//!   from another origin or without the session's form token before the handler runs.
//! - Actions go through the same store functions, scope checks and audit as the API.
//! - Errors are pages ([`ConsoleError`]), never JSON; refusals are audited like the API's.

mod ack;
mod audit;
mod incidents;
mod login;
mod maintenance;
mod notices;
mod officers;
mod overview;
mod reports;
mod session;
mod units;

use askama::Template;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::http::api::AppState;
use crate::store::NewAuditEntry;

pub use session::{Person, Posted, SESSION_COOKIE};

/// The console's routes. Merged into the API's router by `http::api::app`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(overview::routes())
        .merge(incidents::routes())
        .merge(units::routes())
        .merge(audit::routes())
        .route("/static/{file}", get(static_show))
        .merge(login::routes())
        .merge(reports::routes())
        .merge(officers::routes())
        .merge(notices::routes())
        .merge(maintenance::routes())
        .merge(ack::routes())
        .layer(middleware::map_response(console_headers))
        .with_state(state)
}

/// The menu: path, label, and who sees it.
const MENU: [(&str, &str, Section); 8] = [
    ("/", "Tổng quan", Section::Overview),
    ("/incidents", "Sự cố", Section::Incidents),
    ("/units", "Đơn vị và máy", Section::Units),
    ("/reports", "Báo cáo định kỳ", Section::Reports),
    ("/officers", "Cán bộ", Section::Officers),
    ("/notices", "Thông báo", Section::Notices),
    ("/maintenance", "Lịch bảo trì", Section::Maintenance),
    ("/audit", "Nhật ký", Section::Audit),
];

/// The part of the console a page belongs to, for the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Tổng quan.
    Overview,
    /// Sự cố.
    Incidents,
    /// Đơn vị và máy.
    Units,
    /// Báo cáo định kỳ.
    Reports,
    /// Cán bộ.
    Officers,
    /// Thông báo.
    Notices,
    /// Lịch bảo trì.
    Maintenance,
    /// Nhật ký (administrators only).
    Audit,
    /// Pages outside the menu (login, password, errors).
    None,
}

/// One menu entry as the base template shows it.
#[derive(Debug, Clone)]
pub struct MenuItem {
    /// Where it leads.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether it is the current page's section.
    pub current: bool,
}

/// What `base.html` needs from every page.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's title (also the `<h1>`).
    pub title: String,
    /// The logged-in person's name and role in Vietnamese; empty on the login page.
    pub who: String,
    /// The menu, empty when nobody is logged in.
    pub menu: Vec<MenuItem>,
    /// The session's form token, for the logout form and every other form.
    pub csrf: String,
}

impl Layout {
    /// The layout of a page seen by `person`, in `section`.
    pub fn new(person: &Person, section: Section, title: impl Into<String>) -> Layout {
        let menu = MENU
            .iter()
            .filter(|(_, _, item)| *item != Section::Audit || person.is_admin())
            .map(|(href, label, item)| MenuItem {
                href,
                label,
                current: *item == section,
            })
            .collect();
        Layout {
            title: title.into(),
            who: format!("{} ({})", person.full_name, role_label(person.role)),
            menu,
            csrf: person.csrf_token.clone(),
        }
    }

    /// The layout of a page shown to nobody in particular (login, errors before login).
    pub fn anonymous(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            who: String::new(),
            menu: Vec::new(),
            csrf: String::new(),
        }
    }
}

/// A role as people read it.
pub fn role_label(role: crate::domain::auth::Role) -> &'static str {
    use crate::domain::auth::Role;
    match role {
        Role::Admin => "quản trị",
        Role::Officer => "cán bộ chuyên trách",
        Role::Viewer => "chỉ xem",
        Role::Leadership => "lãnh đạo",
    }
}

/// Renders a page; a template that fails to render is a 500 page, logged once.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => ConsoleError::Internal(anyhow::Error::new(err).context("rendering a page"))
            .into_response(),
    }
}

/// Renders a page holding a form; `refused` (a submission came back with its reason and what
/// was typed) answers 422 instead of 200.
pub fn render_form(page: &impl Template, refused: bool) -> Response {
    let mut response = render(page);
    if refused && response.status() == axum::http::StatusCode::OK {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// What can go wrong while serving a page; each is shown as a page in Vietnamese.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No such thing (or not visible to this person: the console does not tell them apart).
    #[error("not found")]
    NotFound,
    /// Logged in, but not allowed; the refusal is already audited.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A form that does not make sense; the message is Vietnamese and says what to fix.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Our fault; logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            ConsoleError::NotFound => (
                StatusCode::NOT_FOUND,
                "Không tìm thấy",
                "Trang hoặc mục này không có, hoặc không thuộc phạm vi của anh/chị.".to_owned(),
            ),
            ConsoleError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "Không được phép",
                "Tài khoản của anh/chị không có quyền với mục này.".to_owned(),
            ),
            ConsoleError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Chưa hợp lệ", message.clone())
            }
            ConsoleError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "console page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Lỗi máy chủ",
                    "Máy chủ gặp lỗi khi xử lý yêu cầu. Lỗi đã được ghi lại; xin thử lại sau."
                        .to_owned(),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout::anonymous(title),
            message,
        };
        let html = page
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Lỗi</title><p>Lỗi máy chủ.</p>".into());
        (status, Html(html)).into_response()
    }
}

impl Person {
    /// Refuses, with an audit entry, something outside this person's role or scope.
    pub async fn forbid(&self, state: &AppState, target: &str, why: &str) -> ConsoleError {
        let entry = NewAuditEntry {
            actor: self.principal().actor(),
            action: "access.denied".into(),
            target: target.to_owned(),
            outcome: "denied",
            remote_addr: self.address.clone(),
            details: serde_json::json!({ "role": self.role, "reason": why, "via": "console" }),
        };
        tracing::warn!(actor = %entry.actor, target, why, "console access denied");
        state.audit(entry).await;
        ConsoleError::Forbidden(why.to_owned())
    }
}

/// The console's own files, compiled in.
const STATIC_FILES: [(&str, &str, &[u8]); 2] = [
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("static/console.css"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/htmx.min.js"),
    ),
];

async fn static_show(Path(file): Path<String>) -> Response {
    let Some((_, media_type, body)) = STATIC_FILES.iter().find(|(name, _, _)| *name == file) else {
        return ConsoleError::NotFound.into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    // Compiled into the binary: the same for as long as this version runs.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

/// Headers on every console answer: nothing from elsewhere runs or frames the console, nothing
/// is sniffed, pages are never cached (they hold unit data).
async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Where to go after a successful form: back to a page of the console (never elsewhere).
pub fn see_other(path: &str) -> Response {
    let path = if path.starts_with('/') && !path.starts_with("//") {
        path
    } else {
        "/"
    };
    Redirect::to(path).into_response()
}
