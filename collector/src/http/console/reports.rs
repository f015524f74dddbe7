//! Báo cáo định kỳ: an officer's periodic report as a form prefilled from monitoring (the
//! sections of QĐ 02/2017 Điều 5 as `cntt_common::report` defines them), drafts kept on the
//! server, submission, earlier versions; for the Sở, the compliance table of a period, due-date
//! overrides and the consolidated report.
//!
//! Everything goes through what the API and the CLI use: the prefill is the agents' context
//! (`services::reports::context`), a submission is `services::reports::submit` (the checks of
//! `cntt_common::report::parse`, timeliness by arrival, audited as `report.submit`), an override
//! is `services::reports::override_due` (audited as `period.override`), the documents are the
//! API's (`officer_report_docx`, `documents::consolidate`). The form only writes the Markdown
//! document an agent's officer writes by hand, so both paths file the same thing.
//!
//! Who sees what: a person limited to a unit sees that unit's periods and versions (and those of
//! units below it); the compliance table and the consolidated report cover the province and are
//! for people without a unit limit (the Sở); only people who can act fill, save or submit, and
//! only administrators set a due date.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cntt_common::report::{Block, ContextPeriod, OfficerInfo, ReportContext, SECTIONS};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{render, see_other, ConsoleError, Layout, Person, Posted, Section};
use crate::domain::auth::Scope;
use crate::domain::periods::{show_date, Period, VIETNAM};
use crate::http::api::AppState;
use crate::services::reports::{self, Standing, SubmitError};
use crate::store::{from_millis, millis, NewAuditEntry, StoredReport, Unit};

/// The routes of this part of the console.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(reports_show))
        .route("/reports/unit/{code}", get(unit_show))
        .route(
            "/reports/unit/{code}/{scheme}/{period}",
            get(form_show).post(form_post),
        )
        .route("/reports/versions/{id}", get(version_show))
        .route("/reports/versions/{id}/docx", get(version_docx))
        .route("/reports/compliance", get(compliance_show))
        .route("/reports/compliance/override", post(override_post))
        .route("/reports/consolidated", get(consolidated_download))
}

/// A time as people in Vietnam read it: `dd/mm/yyyy HH:MM`.
pub(super) fn when(ms: i64) -> String {
    let at = from_millis(ms).to_offset(VIETNAM);
    format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        at.day(),
        at.month() as u8,
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// `YYYY-MM-DD` (as stored) as `dd/mm/yyyy`; other text as it is.
pub(super) fn day(text: &str) -> String {
    crate::domain::periods::parse_date(text).map_or_else(|_| text.to_owned(), show_date)
}

/// The badge class of a standing.
fn standing_class(standing: Standing) -> &'static str {
    match standing {
        Standing::OnTime => "good",
        Standing::Late => "warn",
        Standing::Missing => "bad",
        Standing::Pending | Standing::NotRequired => "muted",
    }
}

/// `/reports`: the Sở lands on the compliance table, a unit's people on their unit.
async fn reports_show(
    State(state): State<AppState>,
    person: Person,
) -> Result<Response, ConsoleError> {
    let Some(unit_id) = person.unit_id else {
        return Ok(see_other("/reports/compliance"));
    };
    let units = state.store.units_all().await?;
    let unit = units
        .iter()
        .find(|unit| unit.id == unit_id)
        .ok_or(ConsoleError::NotFound)?;
    Ok(see_other(&format!("/reports/unit/{}", unit.code)))
}

/// The unit `code` if `person` may see it; an out-of-scope unit is refused with an audit entry.
async fn unit_in_scope(
    state: &AppState,
    person: &Person,
    code: &str,
) -> Result<(Unit, Vec<Unit>), ConsoleError> {
    let units = state.store.units_all().await?;
    let Some(unit) = units.iter().find(|unit| unit.code == code).cloned() else {
        return Err(ConsoleError::NotFound);
    };
    if !Scope::of(&person.principal(), &units).contains(unit.id) {
        return Err(person
            .forbid(state, code, "this person may not see that unit's reports")
            .await);
    }
    Ok((unit, units))
}

/// One open period on a unit's page.
struct PeriodRow {
    label_vi: String,
    due: String,
    rule: String,
    versions: u32,
    status: String,
    class: &'static str,
    draft: Option<String>,
    form: String,
}

/// One stored version in a list.
struct VersionRow {
    id: String,
    period: String,
    version: usize,
    submitted_by: String,
    submitted_at: String,
    received_at: String,
    via: &'static str,
}

/// A unit below the person's own, with a link.
struct UnitLink {
    code: String,
    name: String,
}

#[derive(Template)]
#[template(path = "reports_unit.html")]
struct UnitPage {
    layout: Layout,
    unit_code: String,
    unit_name: String,
    reporting: bool,
    can_act: bool,
    officer: Option<OfficerInfo>,
    periods: Vec<PeriodRow>,
    versions: Vec<VersionRow>,
    below: Vec<UnitLink>,
}

/// Versions of a unit, numbered per period by arrival (the first is version 1), newest first.
fn version_rows(reports: &[StoredReport], labels: &HashMap<String, String>) -> Vec<VersionRow> {
    let mut oldest_first: Vec<&StoredReport> = reports.iter().collect();
    oldest_first.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut rows: Vec<VersionRow> = oldest_first
        .into_iter()
        .map(|report| {
            let number = seen
                .entry((report.scheme.clone(), report.period.clone()))
                .or_default();
            *number += 1;
            VersionRow {
                id: report.id.clone(),
                period: labels
                    .get(&format!("{}:{}", report.scheme, report.period))
                    .cloned()
                    .unwrap_or_else(|| report.period.clone()),
                version: *number,
                submitted_by: report.submitted_by.clone(),
                submitted_at: when(report.submitted_at),
                received_at: when(report.received_at),
                via: if report.agent_id.is_some() {
                    "máy trạm (ngoại tuyến)"
                } else {
                    "trực tuyến"
                },
            }
        })
        .collect();
    rows.reverse();
    rows
}

/// `/reports/unit/{code}`: the unit's open periods with their state, and every version it filed.
async fn unit_show(
    State(state): State<AppState>,
    person: Person,
    Path(code): Path<String>,
) -> Result<Response, ConsoleError> {
    let (unit, units) = unit_in_scope(&state, &person, &code).await?;
    let now = OffsetDateTime::now_utc();
    let context = reports::context(&state.store, &state.reports, &unit, now).await?;
    let overrides = state.store.period_overrides().await?;
    let reporting = state.reports.unit_kinds.contains(&unit.kind);
    let mut periods = Vec::new();
    for period in &context.periods {
        let deadline = state
            .reports
            .period(&period.label, Some(&period.scheme), &overrides)
            .map(|found| found.deadline())
            .ok();
        let (status, class) = match (period.versions, deadline) {
            (0, Some(deadline)) if now > deadline => ("Quá hạn, chưa nộp".to_owned(), "bad"),
            (0, _) => ("Chưa nộp".to_owned(), "muted"),
            (n, _) => (format!("Đã nộp ({n} phiên bản)"), "good"),
        };
        let draft = state
            .store
            .report_draft(unit.id, &period.scheme, &period.label)
            .await?
            .map(|draft| when(draft.saved_at));
        periods.push(PeriodRow {
            label_vi: period.label_vi.clone(),
            due: day(&period.due),
            rule: period.rule.clone(),
            versions: period.versions,
            status,
            class,
            draft,
            form: format!(
                "/reports/unit/{}/{}/{}",
                unit.code, period.scheme, period.label
            ),
        });
    }
    let stored = state.store.reports_of_unit(unit.id).await?;
    let labels = period_names(&state, &stored, &overrides);
    let scope = Scope::of(&person.principal(), &units);
    let today = now.to_offset(VIETNAM).date().to_string();
    let subtree = crate::domain::auth::subtree(unit.id, &units);
    let below = units
        .iter()
        .filter(|other| other.id != unit.id && scope.contains(other.id))
        .filter(|other| subtree.contains(&other.id))
        .filter(|other| state.reports.unit_kinds.contains(&other.kind) && other.valid_on(&today))
        .map(|other| UnitLink {
            code: other.code.clone(),
            name: other.name.clone(),
        })
        .collect();
    Ok(render(&UnitPage {
        layout: Layout::new(
            &person,
            Section::Reports,
            format!("Báo cáo định kỳ: {}", unit.name),
        ),
        unit_code: unit.code.clone(),
        unit_name: unit.name.clone(),
        reporting,
        can_act: person.can_act(),
        officer: context.officer,
        periods,
        versions: version_rows(&stored, &labels),
        below,
    }))
}

/// `scheme:label` → the period in words, for the periods of `stored`.
fn period_names(
    state: &AppState,
    stored: &[StoredReport],
    overrides: &[crate::domain::periods::Override],
) -> HashMap<String, String> {
    stored
        .iter()
        .filter_map(|report| {
            let period = state
                .reports
                .period(&report.period, Some(&report.scheme), overrides)
                .ok()?;
            Some((
                format!("{}:{}", report.scheme, report.period),
                period.label_vi,
            ))
        })
        .collect()
}

/// What the report form holds; saved as a draft's JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Fields {
    officer: String,
    position: String,
    phone: String,
    email: String,
    /// Section key → text.
    sections: BTreeMap<String, String>,
}

impl Fields {
    /// From a posted form: the officer's fields and one textarea per section, named by its key.
    fn from_form(form: &HashMap<String, String>) -> Fields {
        let field = |name: &str| {
            form.get(name)
                .map(|value| value.trim().to_owned())
                .unwrap_or_default()
        };
        Fields {
            officer: field("officer"),
            position: field("position"),
            phone: field("phone"),
            email: field("email"),
            sections: SECTIONS
                .iter()
                .map(|spec| {
                    let text = form
                        .get(spec.key)
                        .map(|text| text.replace("\r\n", "\n").trim().to_owned())
                        .unwrap_or_default();
                    (spec.key.to_owned(), text)
                })
                .collect(),
        }
    }

    /// The prefill from monitoring: the registered officer, and the incidents and figures the
    /// draft of `cntt-agent report draft` writes, in the same words.
    fn prefilled(context: &ReportContext, period: &ContextPeriod) -> Fields {
        let officer = context.officer.clone().unwrap_or_default();
        let draft = cntt_common::report::draft(context, period);
        Fields {
            officer: officer.name,
            position: officer.position,
            phone: officer.phone,
            email: officer.email,
            sections: draft_sections(&draft),
        }
    }

    /// A stored version's content, to correct it in a new version.
    fn of_document(document: &str) -> Option<Fields> {
        let report = cntt_common::report::parse(document).ok()?;
        Some(Fields {
            officer: report.front.officer,
            position: report.front.position,
            phone: report.front.phone,
            email: report.front.email,
            sections: SECTIONS
                .iter()
                .map(|spec| {
                    let text = report
                        .sections
                        .get(&spec.number)
                        .cloned()
                        .unwrap_or_default();
                    (spec.key.to_owned(), text)
                })
                .collect(),
        })
    }

    /// The report document, as `cntt-agent report draft` lays it out, with the figures of
    /// `period` and the officer's fields and sections.
    fn document(&self, context: &ReportContext, period: &ContextPeriod) -> String {
        let mut context = context.clone();
        context.officer = Some(OfficerInfo {
            name: self.officer.clone(),
            position: self.position.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
        });
        let draft = cntt_common::report::draft(&context, period);
        let head_end = draft.find("\n## 1. ").map_or(draft.len(), |at| at + 1);
        let mut out = draft[..head_end].to_owned();
        for spec in &SECTIONS {
            let text = self.sections.get(spec.key).map_or("", String::as_str);
            let _ = write!(
                out,
                "## {}. {}\n\n<!-- {} -->\n\n{}\n\n",
                spec.number,
                spec.title,
                spec.hint,
                text.trim()
            );
        }
        out
    }
}

/// The prefilled text of each section of a fresh draft (its hints left out).
fn draft_sections(draft: &str) -> BTreeMap<String, String> {
    let mut texts: BTreeMap<String, String> = SECTIONS
        .iter()
        .map(|spec| (spec.key.to_owned(), String::new()))
        .collect();
    let body = draft.splitn(3, "+++\n").nth(2).unwrap_or_default();
    let mut current: Option<&str> = None;
    for line in body.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let digits: String = heading.chars().take_while(char::is_ascii_digit).collect();
            current = SECTIONS
                .iter()
                .find(|spec| digits.parse::<u8>().is_ok_and(|n| n == spec.number))
                .map(|spec| spec.key);
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("<!--") && trimmed.ends_with("-->") {
            continue;
        }
        if let Some(text) = current.and_then(|key| texts.get_mut(key)) {
            text.push_str(line);
            text.push('\n');
        }
    }
    for text in texts.values_mut() {
        *text = text.trim().to_owned();
    }
    texts
}

/// One section of the form.
struct SectionField {
    number: u8,
    key: &'static str,
    title: &'static str,
    hint: &'static str,
    required: bool,
    text: String,
    rows: usize,
}

#[derive(Template)]
#[template(path = "reports_form.html")]
struct FormPage {
    layout: Layout,
    unit_code: String,
    unit_name: String,
    label_vi: String,
    due: String,
    rule: String,
    data_from: String,
    data_to: String,
    action: String,
    fields: Fields,
    sections: Vec<SectionField>,
    /// Where the prefill came from, in Vietnamese.
    source: String,
    saved: bool,
    problems: Vec<String>,
    versions: Vec<VersionRow>,
}

/// Query of the form page.
#[derive(Debug, Default, Deserialize)]
struct FormQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// The open period `scheme`/`label` of `unit` with its prefill, or not found.
async fn open_period(
    state: &AppState,
    unit: &Unit,
    scheme: &str,
    label: &str,
) -> Result<(ReportContext, ContextPeriod), ConsoleError> {
    let context = reports::context(
        &state.store,
        &state.reports,
        unit,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let period = context
        .periods
        .iter()
        .find(|period| period.scheme == scheme && period.label == label)
        .cloned()
        .ok_or_else(|| {
            ConsoleError::BadRequest(
                "Kỳ báo cáo này không mở để nộp (chưa bắt đầu hoặc đã quá hạn lâu); chọn một kỳ trong danh sách của đơn vị."
                    .into(),
            )
        })?;
    Ok((context, period))
}

/// Renders the form with `fields`.
#[allow(
    clippy::too_many_arguments,
    reason = "the page's parts, each named at the call"
)]
async fn form_page(
    state: &AppState,
    person: &Person,
    unit: &Unit,
    period: &ContextPeriod,
    fields: Fields,
    source: String,
    saved: bool,
    problems: Vec<String>,
) -> Result<FormPage, ConsoleError> {
    let stored: Vec<StoredReport> = state
        .store
        .reports_of_unit(unit.id)
        .await?
        .into_iter()
        .filter(|report| report.scheme == period.scheme && report.period == period.label)
        .collect();
    let labels = HashMap::from([(
        format!("{}:{}", period.scheme, period.label),
        period.label_vi.clone(),
    )]);
    let sections = SECTIONS
        .iter()
        .map(|spec| {
            let text = fields.sections.get(spec.key).cloned().unwrap_or_default();
            let rows = (text.lines().count() + 2).clamp(4, 24);
            SectionField {
                number: spec.number,
                key: spec.key,
                title: spec.title,
                hint: spec.hint,
                required: spec.required,
                text,
                rows,
            }
        })
        .collect();
    Ok(FormPage {
        layout: Layout::new(
            person,
            Section::Reports,
            format!("Báo cáo {} · {}", period.label_vi, unit.name),
        ),
        unit_code: unit.code.clone(),
        unit_name: unit.name.clone(),
        label_vi: period.label_vi.clone(),
        due: day(&period.due),
        rule: period.rule.clone(),
        data_from: day(&period.figures.data_from),
        data_to: day(&period.figures.data_to),
        action: format!(
            "/reports/unit/{}/{}/{}",
            unit.code, period.scheme, period.label
        ),
        fields,
        sections,
        source,
        saved,
        problems,
        versions: version_rows(&stored, &labels),
    })
}

/// `/reports/unit/{code}/{scheme}/{period}`: the form, from the saved draft, else the latest
/// version (to correct it), else the prefill from monitoring.
async fn form_show(
    State(state): State<AppState>,
    person: Person,
    Path((code, scheme, label)): Path<(String, String, String)>,
    Query(query): Query<FormQuery>,
) -> Result<Response, ConsoleError> {
    let (unit, _) = unit_in_scope(&state, &person, &code).await?;
    if !person.can_act() {
        return Err(person
            .forbid(&state, &code, "a read-only account may not fill reports")
            .await);
    }
    let (context, period) = open_period(&state, &unit, &scheme, &label).await?;
    let draft = state
        .store
        .report_draft(unit.id, &period.scheme, &period.label)
        .await?;
    let latest = state
        .store
        .reports_of_unit(unit.id)
        .await?
        .into_iter()
        .find(|report| report.scheme == period.scheme && report.period == period.label);
    let (fields, source) = match (draft, latest) {
        (Some(draft), _) => (
            serde_json::from_str(&draft.fields).unwrap_or_default(),
            format!("Bản nháp lưu lúc {}.", when(draft.saved_at)),
        ),
        (None, Some(latest)) => {
            let document = state.store.report(&latest.id).await?.map(|(_, doc)| doc);
            match document.as_deref().and_then(Fields::of_document) {
                Some(fields) => (
                    fields,
                    format!(
                        "Nội dung phiên bản đã nộp lúc {}; gửi lại sẽ thành phiên bản mới (thời hạn tính theo phiên bản đầu).",
                        when(latest.submitted_at)
                    ),
                ),
                None => (
                    Fields::prefilled(&context, &period),
                    "Điền sẵn từ hệ thống giám sát.".to_owned(),
                ),
            }
        }
        (None, None) => (
            Fields::prefilled(&context, &period),
            "Điền sẵn từ hệ thống giám sát và danh sách cán bộ.".to_owned(),
        ),
    };
    let page = form_page(
        &state,
        &person,
        &unit,
        &period,
        fields,
        source,
        query.saved.is_some(),
        Vec::new(),
    )
    .await?;
    Ok(render(&page))
}

/// Posted report form: `intent` is `save` (a draft) or `submit`.
async fn form_post(
    State(state): State<AppState>,
    Path((code, scheme, label)): Path<(String, String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let person = posted.person;
    let (unit, _) = unit_in_scope(&state, &person, &code).await?;
    if !person.can_act() {
        return Err(person
            .forbid(
                &state,
                &code,
                "a read-only account may not save or submit reports",
            )
            .await);
    }
    let (context, period) = open_period(&state, &unit, &scheme, &label).await?;
    let fields = Fields::from_form(&posted.form);
    let now = OffsetDateTime::now_utc();
    let target = format!("{}:{}:{}", unit.code, period.scheme, period.label);
    let form_path = format!(
        "/reports/unit/{}/{}/{}",
        unit.code, period.scheme, period.label
    );
    match posted.form.get("intent").map(String::as_str) {
        Some("save") => {
            let json = serde_json::to_string(&fields)
                .map_err(|err| ConsoleError::Internal(anyhow::Error::new(err)))?;
            state
                .store
                .report_draft_save(
                    unit.id,
                    &period.scheme,
                    &period.label,
                    &json,
                    &person.principal().actor(),
                    now,
                )
                .await?;
            state
                .audit(NewAuditEntry {
                    actor: person.principal().actor(),
                    action: "report.draft".into(),
                    target,
                    outcome: "ok",
                    remote_addr: person.address.clone(),
                    details: serde_json::json!({ "via": "console" }),
                })
                .await;
            Ok(see_other(&format!("{form_path}?saved=1")))
        }
        Some("submit") => {
            let document = fields.document(&context, &period);
            match reports::submit(&state.store, &state.reports, &unit, document, now).await {
                Ok(submitted) => {
                    state
                        .store
                        .report_draft_delete(unit.id, &period.scheme, &period.label)
                        .await?;
                    state
                        .audit(
                            submitted
                                .audit_entry(person.principal().actor(), person.address.clone()),
                        )
                        .await;
                    Ok(see_other(&format!(
                        "/reports/versions/{}?submitted=1",
                        submitted.id
                    )))
                }
                Err(SubmitError::Invalid(message)) => {
                    let problems = form_problems(&message);
                    let page = form_page(
                        &state,
                        &person,
                        &unit,
                        &period,
                        fields,
                        "Nội dung vừa nhập (chưa nộp).".to_owned(),
                        false,
                        problems,
                    )
                    .await?;
                    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
                }
                Err(SubmitError::Store(err)) => Err(ConsoleError::Internal(err)),
            }
        }
        _ => Err(ConsoleError::BadRequest(
            "Biểu mẫu không cho biết lưu nháp hay nộp báo cáo.".into(),
        )),
    }
}

/// The checks' problems as the form's reader needs them: one per line, without the line numbers
/// of the Markdown document the form writes (the person never saw it) nor the heading line.
fn form_problems(message: &str) -> Vec<String> {
    message
        .lines()
        .map(|line| line.trim().trim_start_matches("- ").trim())
        .filter(|line| !line.is_empty() && !line.ends_with(':'))
        .map(|line| {
            let without_number = line
                .strip_prefix("dòng ")
                .and_then(|rest| rest.split_once(": "))
                .map_or(line, |(_, problem)| problem);
            let mut chars = without_number.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>() + "."
            })
        })
        .collect()
}

/// A stored version if `person` may read it.
async fn readable_version(
    state: &AppState,
    person: &Person,
    id: &str,
) -> Result<(StoredReport, String, Unit), ConsoleError> {
    let Some((report, document)) = state.store.report(id).await? else {
        return Err(ConsoleError::NotFound);
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&person.principal(), &units).contains(report.unit_id) {
        return Err(person
            .forbid(
                state,
                &report.unit_code,
                "this person may not read that unit's reports",
            )
            .await);
    }
    let unit = units
        .into_iter()
        .find(|unit| unit.id == report.unit_id)
        .ok_or(ConsoleError::NotFound)?;
    Ok((report, document, unit))
}

/// A block of the document as the page shows it.
enum Shown {
    Title(String),
    Meta(String),
    Heading(String),
    Paragraph(String),
    Item(String),
    Table(Vec<String>, Vec<Vec<String>>),
}

#[derive(Template)]
#[template(path = "reports_version.html")]
struct VersionPage {
    layout: Layout,
    unit_code: String,
    unit_name: String,
    period: String,
    version: usize,
    submitted_by: String,
    submitted_at: String,
    received_at: String,
    via: &'static str,
    id: String,
    submitted: bool,
    blocks: Vec<Shown>,
}

/// Query of the version page.
#[derive(Debug, Default, Deserialize)]
struct VersionQuery {
    #[serde(default)]
    submitted: Option<String>,
}

/// `/reports/versions/{id}`: one version as the Sở reads it (read only).
async fn version_show(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, ConsoleError> {
    let (report, document, unit) = readable_version(&state, &person, &id).await?;
    let blocks = reports::rendered(&state.store, &state.reports, &report, &document).await?;
    let overrides = state.store.period_overrides().await?;
    let labels = period_names(&state, std::slice::from_ref(&report), &overrides);
    let same_period: Vec<StoredReport> = state
        .store
        .reports_of_period(&report.scheme, &report.period)
        .await?
        .into_iter()
        .filter(|other| other.unit_id == report.unit_id)
        .collect();
    let row = version_rows(&same_period, &labels)
        .into_iter()
        .find(|row| row.id == report.id)
        .ok_or(ConsoleError::NotFound)?;
    let blocks = blocks
        .into_iter()
        .map(|block| match block {
            Block::Title(text) => Shown::Title(text),
            Block::Meta(text) => Shown::Meta(text),
            Block::Heading(text) => Shown::Heading(text),
            Block::Paragraph(text) => Shown::Paragraph(text),
            Block::Item(text) => Shown::Item(text),
            Block::Table(mut rows) => {
                let head = if rows.is_empty() {
                    Vec::new()
                } else {
                    rows.remove(0)
                };
                Shown::Table(head, rows)
            }
        })
        .collect();
    Ok(render(&VersionPage {
        layout: Layout::new(
            &person,
            Section::Reports,
            format!("Báo cáo {} · {}", row.period, unit.name),
        ),
        unit_code: unit.code,
        unit_name: unit.name,
        period: row.period,
        version: row.version,
        submitted_by: row.submitted_by,
        submitted_at: row.submitted_at,
        received_at: row.received_at,
        via: row.via,
        id: report.id,
        submitted: query.submitted.is_some(),
        blocks,
    }))
}

/// `/reports/versions/{id}/docx`: the version as the DOCX the API serves.
async fn version_docx(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let (report, document, unit) = readable_version(&state, &person, &id).await?;
    let bytes =
        crate::http::api::reports::officer_report_docx(&state, &report, &unit, &document).await?;
    let name = format!(
        "bao-cao-{}-{}-{}.docx",
        report.scheme, report.period, report.unit_code
    );
    Ok(download(
        bytes,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &name,
    ))
}

fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Query of the compliance page and the consolidated download: `period=SCHEME:LABEL`.
#[derive(Debug, Default, Deserialize)]
struct PeriodQuery {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

/// Refuses people limited to a unit: the compliance table and the consolidated report cover the
/// whole province, as the API's consolidated report does.
async fn province_only(
    state: &AppState,
    person: &Person,
    target: &str,
) -> Result<(), ConsoleError> {
    if person.unit_id.is_some() {
        return Err(person
            .forbid(
                state,
                target,
                "the compliance table and the consolidated report cover the whole province; this person is limited to one unit",
            )
            .await);
    }
    Ok(())
}

/// The periods offered in the selector (required schemes, latest first, those begun by today)
/// and the one chosen: `wanted`, else the current period of the first required scheme.
fn choose_period(
    settings: &reports::Settings,
    overrides: &[crate::domain::periods::Override],
    wanted: Option<&str>,
) -> Result<(Period, Vec<Period>), ConsoleError> {
    let today = OffsetDateTime::now_utc().to_offset(VIETNAM).date();
    let mut offered = Vec::new();
    for scheme in settings.required_schemes() {
        let mut periods: Vec<Period> = (today.year() - 1..=today.year())
            .flat_map(|year| scheme.periods(year, &settings.holidays, overrides))
            .filter(|period| period.data_from <= today)
            .collect();
        periods.sort_by_key(|period| std::cmp::Reverse(period.data_from));
        offered.extend(periods.into_iter().take(6));
    }
    let chosen = match wanted {
        Some(text) => {
            let (scheme, label) = text.split_once(':').unwrap_or(("", text));
            let scheme = (!scheme.is_empty()).then_some(scheme);
            settings.period(label, scheme, overrides).map_err(|err| {
                ConsoleError::BadRequest(format!("Kỳ báo cáo không hợp lệ: {err:#}."))
            })?
        }
        None => offered.first().cloned().ok_or_else(|| {
            ConsoleError::BadRequest("Chưa có chế độ báo cáo bắt buộc nào.".into())
        })?,
    };
    Ok((chosen, offered))
}

/// A group of the compliance table with its tally.
struct GroupRow {
    name: String,
    code: String,
    required: u32,
    on_time: u32,
    late: u32,
    missing: u32,
    pending: u32,
    not_required: u32,
    rate: String,
    units: Vec<StandingRow>,
}

/// One unit of the compliance table.
struct StandingRow {
    code: String,
    name: String,
    standing: &'static str,
    class: &'static str,
    submitted_at: String,
    versions: u32,
    latest: Option<String>,
    note: String,
}

/// A period in the selector.
struct PeriodOption {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "reports_compliance.html")]
struct CompliancePage {
    layout: Layout,
    options: Vec<PeriodOption>,
    value: String,
    label_vi: String,
    scheme: String,
    label: String,
    data_from: String,
    data_to: String,
    due: String,
    due_iso: String,
    rule: String,
    overridden: bool,
    deadline: String,
    groups: Vec<GroupRow>,
    province_rate: String,
    province_required: u32,
    province_filed: u32,
    is_admin: bool,
    saved: bool,
}

fn rate_text(tally: &reports::Tally) -> String {
    tally.rate().map_or_else(
        || "không có số liệu".to_owned(),
        |rate| format!("{:.1}%", rate * 100.0).replace('.', ","),
    )
}

/// `/reports/compliance?period=SCHEME:LABEL`: each unit's standing, by group, with tallies.
async fn compliance_show(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    province_only(&state, &person, "compliance").await?;
    let overrides = state.store.period_overrides().await?;
    let (period, offered) = choose_period(&state.reports, &overrides, query.period.as_deref())?;
    let now = OffsetDateTime::now_utc();
    let rows = reports::compliance(&state.store, &state.reports, &period, now).await?;
    let (tallies, province) = reports::tallies(&rows);
    let mut groups: Vec<GroupRow> = tallies
        .into_iter()
        .map(|(code, (name, tally))| GroupRow {
            name,
            code,
            required: tally.required,
            on_time: tally.on_time,
            late: tally.late,
            missing: tally.missing,
            pending: tally.pending,
            not_required: 0,
            rate: rate_text(&tally),
            units: Vec::new(),
        })
        .collect();
    for row in &rows {
        let index = match groups
            .iter()
            .position(|group| group.code == row.district_code)
        {
            Some(index) => index,
            None => {
                groups.push(GroupRow {
                    name: row.district_name.clone(),
                    code: row.district_code.clone(),
                    required: 0,
                    on_time: 0,
                    late: 0,
                    missing: 0,
                    pending: 0,
                    not_required: 0,
                    rate: "không có số liệu".to_owned(),
                    units: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        if row.standing == Standing::NotRequired {
            group.not_required += 1;
        }
        let mut note = String::new();
        if let Some(code) = &row.counted_for {
            let _ = write!(note, "Đã kết thúc; tính cho {code}. ");
        }
        if !row.includes.is_empty() {
            let _ = write!(note, "Gồm báo cáo của {}.", row.includes.join(", "));
        }
        group.units.push(StandingRow {
            code: row.unit_code.clone(),
            name: row.unit_name.clone(),
            standing: row.standing.vi(),
            class: standing_class(row.standing),
            submitted_at: row.first_submitted_at.map(when).unwrap_or_default(),
            versions: row.versions,
            latest: row.latest_report.clone(),
            note: note.trim().to_owned(),
        });
    }
    let value = format!("{}:{}", period.scheme, period.label);
    let mut options: Vec<PeriodOption> = offered
        .iter()
        .map(|offer| {
            let option = format!("{}:{}", offer.scheme, offer.label);
            PeriodOption {
                selected: option == value,
                value: option,
                label: offer.label_vi.clone(),
            }
        })
        .collect();
    if !options.iter().any(|option| option.selected) {
        options.insert(
            0,
            PeriodOption {
                value: value.clone(),
                label: period.label_vi.clone(),
                selected: true,
            },
        );
    }
    Ok(render(&CompliancePage {
        layout: Layout::new(&person, Section::Reports, "Tình hình nộp báo cáo định kỳ"),
        options,
        value,
        label_vi: period.label_vi.clone(),
        scheme: period.scheme.clone(),
        label: period.label.clone(),
        data_from: show_date(period.data_from),
        data_to: show_date(period.data_to),
        due: show_date(period.due),
        due_iso: period.due.to_string(),
        rule: period.rule.clone(),
        overridden: period.overridden,
        deadline: when(millis(period.deadline())),
        groups,
        province_rate: rate_text(&province),
        province_required: province.required,
        province_filed: province.on_time + province.late,
        is_admin: person.is_admin(),
        saved: query.saved.is_some(),
    }))
}

/// Posted due-date override.
#[derive(Debug, Deserialize)]
struct OverrideForm {
    scheme: String,
    period: String,
    due: String,
    reason: String,
}

/// `POST /reports/compliance/override`: an administrator sets a period's due date, with the
/// reason (the same function and audit entry as `cntt-collector periods override`).
async fn override_post(
    State(state): State<AppState>,
    posted: Posted<OverrideForm>,
) -> Result<Response, ConsoleError> {
    let (person, form) = (posted.person, posted.form);
    let target = format!("{}:{}", form.scheme, form.period);
    if !person.is_admin() || person.unit_id.is_some() {
        return Err(person
            .forbid(
                &state,
                &target,
                "only the Sở's administrators set due dates",
            )
            .await);
    }
    if form.reason.trim().is_empty() {
        return Err(ConsoleError::BadRequest(
            "Cần ghi lý do đổi hạn nộp (ví dụ số công văn quy định hạn mới).".into(),
        ));
    }
    if crate::domain::periods::parse_date(form.due.trim()).is_err() {
        return Err(ConsoleError::BadRequest(
            "Hạn nộp mới phải là một ngày (năm-tháng-ngày).".into(),
        ));
    }
    let (found, manual) = reports::override_due(
        &state.store,
        &state.reports,
        &form.scheme,
        &form.period,
        form.due.trim(),
        &form.reason,
        &person.principal().actor(),
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|err| ConsoleError::BadRequest(format!("Không đặt được hạn nộp: {err:#}.")))?;
    state
        .audit(NewAuditEntry {
            actor: person.principal().actor(),
            action: "period.override".into(),
            target: format!("{}:{}", manual.scheme, manual.period),
            outcome: "ok",
            remote_addr: person.address.clone(),
            details: serde_json::json!({
                "due": manual.due.to_string(),
                "rule_due": found.due.to_string(),
                "reason": manual.reason,
                "via": "console",
            }),
        })
        .await;
    Ok(see_other(&format!(
        "/reports/compliance?period={}:{}&saved=1",
        manual.scheme, manual.period
    )))
}

/// `/reports/consolidated?period=SCHEME:LABEL&format=docx|xlsx`: the Sở's consolidated report,
/// the same document as `GET /api/v1/reports/consolidated`.
async fn consolidated_download(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    province_only(&state, &person, "consolidated").await?;
    let overrides = state.store.period_overrides().await?;
    let (period, _) = choose_period(&state.reports, &overrides, query.period.as_deref())?;
    let format = match query.format.as_deref() {
        Some("docx") => "docx",
        Some("xlsx") | None => "xlsx",
        Some(_) => {
            return Err(ConsoleError::BadRequest(
                "Định dạng phải là docx hoặc xlsx.".into(),
            ))
        }
    };
    let report = crate::documents::consolidate::build(
        &state.store,
        &state.reports,
        &period,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let (bytes, content_type) = if format == "docx" {
        (
            crate::documents::consolidate::docx(&report)?,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
    } else {
        (
            crate::documents::consolidate::xlsx(&report)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    };
    let name = crate::documents::consolidate::file_name(&period, format);
    Ok(download(bytes, content_type, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_without_the_documents_line_numbers() {
        let message = "báo cáo chưa hợp lệ:\n  - dòng 38: mục 2. Vận hành chưa có nội dung\n  - thiếu mục \"## 4. Hỗ trợ\"";
        assert_eq!(
            form_problems(message),
            [
                "Mục 2. Vận hành chưa có nội dung.",
                "Thiếu mục \"## 4. Hỗ trợ\"."
            ]
        );
    }

    #[test]
    fn the_form_writes_a_document_that_passes_the_checks_and_keeps_the_prefill() {
        let period = ContextPeriod {
            scheme: "quarterly".into(),
            label: "2026-Q4".into(),
            label_vi: "quý IV năm 2026".into(),
            due: "2026-12-10".into(),
            rule: "ngày 10 tháng cuối kỳ".into(),
            figures: cntt_common::report::Figures {
                data_from: "2026-10-01".into(),
                data_to: "2026-12-08".into(),
                machines: 2,
                ..Default::default()
            },
            incidents: Vec::new(),
            versions: 0,
        };
        let context = ReportContext {
            unit_code: "24700".into(),
            unit_name: "Thị trấn Đắk Mil".into(),
            officer: Some(OfficerInfo {
                name: "Nguyễn Văn An".into(),
                ..Default::default()
            }),
            generated_at: OffsetDateTime::UNIX_EPOCH,
            periods: vec![period.clone()],
        };
        let mut fields = Fields::prefilled(&context, &period);
        assert_eq!(fields.officer, "Nguyễn Văn An");
        assert!(fields.sections["figures"].contains('2'), "{fields:?}");
        assert!(fields.sections["advisory"].is_empty());
        // Unfilled, the checks of `parse` name the empty sections.
        let problems = cntt_common::report::parse(&fields.document(&context, &period)).unwrap_err();
        assert!(
            problems.to_string().contains("chưa có nội dung"),
            "{problems}"
        );
        for spec in SECTIONS.iter().filter(|spec| spec.required) {
            if fields.sections[spec.key].is_empty() {
                fields
                    .sections
                    .insert(spec.key.into(), format!("Nội dung mục {}.", spec.number));
            }
        }
        let report = cntt_common::report::parse(&fields.document(&context, &period)).unwrap();
        assert_eq!(report.front.unit, "24700");
        assert_eq!(report.front.officer, "Nguyễn Văn An");
        assert_eq!(report.sections[&1], "Nội dung mục 1.");
        assert_eq!(report.front.figures.machines, 2);
        // Read back, the version gives the same fields (a correction starts from them).
        let again = Fields::of_document(&fields.document(&context, &period)).unwrap();
        assert_eq!(again.sections["advisory"], "Nội dung mục 1.");
        assert_eq!(again.sections["figures"], fields.sections["figures"]);
    }
}
