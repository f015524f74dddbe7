//! Reporting schemes as data: their periods, data windows and due dates (QĐ 02/2017 Điều 12.1).
//!
//! Design note:
//!
//! - **A scheme** (chế độ báo cáo) is a frequency (month, quarter, half-year, nine months, year), a
//!   data-window rule and a due-date rule. The defaults take the due date of the Sở TT&TT's working
//!   regulation (Điều 17.3: the 10th of the period's last month) and end the data window (thời
//!   gian chốt số liệu) the day before the last working day before it, so that at least one
//!   working day lies between them as Nghị định 09/2019/NĐ-CP requires: the decree's own window
//!   (to the 14th) would end after a due date on the 10th, and a report cannot count days that
//!   have not happened yet. Each period's rule text says so. The decree's window is
//!   `data = "nd09"`. Other offices use other rules (the 25th, a
//!   fixed 20 June), so every part is configurable per scheme (`[[reports.schemes]]`).
//! - **Days off.** A due date on a day off moves by the scheme's `shift`: `earlier` (the Sở's
//!   rule: a Saturday moves 1 day earlier, a Sunday 2), `later`, or `none`. Days off are weekends
//!   and the holiday calendar, which is data (`collector/data/holidays-vn.csv`, or
//!   `reports.holidays_file`), because lunar holidays and the yearly swaps are announced, not
//!   computed.
//! - **Explained dates.** Every due date carries the rule that produced it in Vietnamese, with
//!   each day it stepped over, and warnings when the calendar does not cover the year or the due
//!   date does not come after the end of the data window (a scheme with `data = "nd09"` and the
//!   10th as due date would not, against Nghị định 09's one working day between them). A per-period override with a reason replaces the
//!   computed date and says so.
//! - **Labels.** `2026-M11`, `2026-Q4`, `2026-H1`, `2026-9M`, `2026`: the label names the
//!   frequency, so `--period 2026-Q4` finds its scheme.
//!
//! Everything here is pure: the store keeps overrides, `admin` prints, `compliance` judges.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// The holiday calendar shipped with the collector.
pub const SHIPPED_HOLIDAYS: &str = include_str!("../../data/holidays-vn.csv");

// Dates as ISO 8601 (`2026-12-10`) in JSON: serde's default for `time::Date` is `[2026, 344]`
// (issue 16).
time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// Vietnam's offset from UTC; due dates end at midnight there.
pub const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+07:00 is a valid offset"),
};

/// Public holidays by date, and the years the calendar covers.
#[derive(Debug, Clone, Default)]
pub struct Holidays {
    days: BTreeMap<Date, String>,
    years: BTreeSet<i32>,
}

impl Holidays {
    /// The calendar shipped in `collector/data/holidays-vn.csv`.
    pub fn shipped() -> Holidays {
        Holidays::parse(SHIPPED_HOLIDAYS).expect("the shipped holiday calendar is valid")
    }

    /// Reads a calendar file (`date,name,note`, one holiday a line).
    ///
    /// # Errors
    ///
    /// When the file cannot be read or a line is not a date and a name.
    pub fn load(path: &Path) -> anyhow::Result<Holidays> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading holiday calendar {}", path.display()))?;
        Holidays::parse(&text).with_context(|| format!("in holiday calendar {}", path.display()))
    }

    /// Parses calendar text: a `date,name,note` header, then `YYYY-MM-DD,name[,note]` lines.
    ///
    /// # Errors
    ///
    /// When the header is missing or a line is bad; the message gives the line number.
    pub fn parse(text: &str) -> anyhow::Result<Holidays> {
        let text = text.trim_start_matches('\u{feff}');
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim().starts_with("date,name") => {}
            _ => bail!("line 1 must be the header date,name,note"),
        }
        let mut holidays = Holidays::default();
        for (index, line) in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(3, ',');
            let date = fields.next().unwrap_or_default().trim();
            let name = fields.next().unwrap_or_default().trim();
            let date = parse_date(date).with_context(|| format!("line {}", index + 1))?;
            if name.is_empty() {
                bail!("line {}: the holiday has no name", index + 1);
            }
            holidays.years.insert(date.year());
            holidays.days.insert(date, name.to_owned());
        }
        Ok(holidays)
    }

    /// The holiday's name on `date`, if it is one.
    pub fn name(&self, date: Date) -> Option<&str> {
        self.days.get(&date).map(String::as_str)
    }

    /// Whether the calendar lists any holiday of `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Whether `date` is a working day: not a weekend, not a holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && self.name(date).is_none()
    }
}

/// Parses `YYYY-MM-DD`.
///
/// # Errors
///
/// When the text is not such a date.
pub fn parse_date(text: &str) -> anyhow::Result<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), format)
        .map_err(|_| anyhow::anyhow!("{text:?} is not a date like 2026-12-10"))
}

/// How often a scheme's reports are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    /// Twelve a year: `2026-M01` … `2026-M12`.
    Month,
    /// Four a year: `2026-Q1` … `2026-Q4`.
    Quarter,
    /// The first half of the year: `2026-H1`.
    HalfYear,
    /// The first nine months: `2026-9M`.
    NineMonths,
    /// The whole year: `2026`.
    Year,
}

impl Frequency {
    /// How many periods a year has.
    fn count(self) -> u8 {
        match self {
            Frequency::Month => 12,
            Frequency::Quarter => 4,
            Frequency::HalfYear | Frequency::NineMonths | Frequency::Year => 1,
        }
    }

    /// First and last month of period `index` (1-based).
    fn months(self, index: u8) -> (u8, u8) {
        match self {
            Frequency::Month => (index, index),
            Frequency::Quarter => (index * 3 - 2, index * 3),
            Frequency::HalfYear => (1, 6),
            Frequency::NineMonths => (1, 9),
            Frequency::Year => (1, 12),
        }
    }

    /// The frequency a period label names, with the period's year and index.
    fn parse_label(label: &str) -> Option<(Frequency, i32, u8)> {
        let (year, rest) = match label.split_once('-') {
            Some((year, rest)) => (year, Some(rest)),
            None => (label, None),
        };
        if year.len() != 4 {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let (frequency, index) = match rest {
            None => (Frequency::Year, 1),
            Some("H1") => (Frequency::HalfYear, 1),
            Some("9M") => (Frequency::NineMonths, 1),
            Some(rest) if rest.starts_with('Q') && rest.len() == 2 => {
                (Frequency::Quarter, rest[1..].parse().ok()?)
            }
            Some(rest) if rest.starts_with('M') && rest.len() == 3 => {
                (Frequency::Month, rest[1..].parse().ok()?)
            }
            Some(_) => return None,
        };
        (1..=frequency.count())
            .contains(&index)
            .then_some((frequency, year, index))
    }

    fn label(self, year: i32, index: u8) -> String {
        match self {
            Frequency::Month => format!("{year}-M{index:02}"),
            Frequency::Quarter => format!("{year}-Q{index}"),
            Frequency::HalfYear => format!("{year}-H1"),
            Frequency::NineMonths => format!("{year}-9M"),
            Frequency::Year => format!("{year}"),
        }
    }

    fn label_vi(self, year: i32, index: u8) -> String {
        match self {
            Frequency::Month => format!("tháng {index} năm {year}"),
            Frequency::Quarter => {
                let roman = ["I", "II", "III", "IV"][usize::from(index - 1)];
                format!("quý {roman} năm {year}")
            }
            Frequency::HalfYear => format!("6 tháng đầu năm {year}"),
            Frequency::NineMonths => format!("9 tháng đầu năm {year}"),
            Frequency::Year => format!("năm {year}"),
        }
    }
}

/// Where a period's data window lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataRule {
    /// Nghị định 09/2019: from the 15th of the month before the period to the 14th of its last
    /// month (years and year-to-date periods start on 15 December of the year before).
    #[default]
    Nd09,
    /// The calendar months of the period.
    Calendar,
    /// Ends on the day before the last working day before the due date, so at least one working
    /// day lies between the cut-off and the due date (Nghị định 09/2019/NĐ-CP); starts the day
    /// after the cut-off of the period before, found the same way. The shipped schemes use it,
    /// because their due date (the 10th) falls before the decree's cut-off (the 14th).
    BeforeDue,
}

/// Which month the due day is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DueMonth {
    /// The period's last month (the Sở's regulation).
    #[default]
    Last,
    /// The month after the period.
    Next,
}

/// Where a due date on a day off moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Shift {
    /// To the last working day before it (a Saturday 1 day, a Sunday 2).
    #[default]
    Earlier,
    /// To the first working day after it.
    Later,
    /// It stays.
    None,
}

/// A scheme as written in `[[reports.schemes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeConfig {
    /// Name used on the command line and in reports, e.g. `quarterly`.
    pub name: String,
    /// `month`, `quarter`, `half-year`, `nine-months` or `year`.
    pub frequency: Frequency,
    /// `nd09` (default) or `calendar`.
    #[serde(default)]
    pub data: DataRule,
    /// Day of the month the report is due; with `due_month`.
    #[serde(default)]
    pub due_day: Option<u8>,
    /// `last` (default): the period's last month; `next`: the month after.
    #[serde(default)]
    pub due_month: DueMonth,
    /// A fixed due date `MM-DD` in the period's year, for schemes with one period a year.
    #[serde(default)]
    pub due_date: Option<String>,
    /// `earlier` (default), `later` or `none`.
    #[serde(default)]
    pub shift: Shift,
    /// Where the rule comes from, shown beside every date it produces.
    #[serde(default)]
    pub source: String,
}

/// How a due date is found before days off are stepped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueRule {
    /// Day `day` of a month counted from the period's end.
    DayOf {
        /// Day of the month, clamped to the month's length.
        day: u8,
        /// Which month.
        month: DueMonth,
    },
    /// A fixed date in the period's year.
    Fixed {
        /// Month.
        month: Month,
        /// Day.
        day: u8,
    },
}

/// A checked scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Name, e.g. `quarterly`.
    pub name: String,
    /// How often.
    pub frequency: Frequency,
    /// Data window rule.
    pub data: DataRule,
    /// Due date rule.
    pub due: DueRule,
    /// Days-off rule.
    pub shift: Shift,
    /// Where the rule comes from.
    pub source: String,
}

/// A manual due date for one period, with the reason people gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// Scheme name.
    pub scheme: String,
    /// Period label.
    pub period: String,
    /// The due date to use.
    #[serde(with = "iso_date")]
    pub due: Date,
    /// Why.
    pub reason: String,
}

/// One period of a scheme, with its dates explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Scheme name.
    pub scheme: String,
    /// Label, e.g. `2026-Q4`.
    pub label: String,
    /// Vietnamese name, e.g. `quý IV năm 2026`.
    pub label_vi: String,
    /// First day of the data window.
    #[serde(with = "iso_date")]
    pub data_from: Date,
    /// Last day of the data window (inclusive).
    #[serde(with = "iso_date")]
    pub data_to: Date,
    /// The due date the rule gives before days off are stepped over.
    #[serde(with = "iso_date")]
    pub nominal_due: Date,
    /// The due date.
    #[serde(with = "iso_date")]
    pub due: Date,
    /// How the due date was found, in Vietnamese.
    pub rule: String,
    /// Whether a manual override set the due date.
    pub overridden: bool,
    /// Problems worth a look, in Vietnamese.
    pub warnings: Vec<String>,
}

impl Period {
    /// The last instant a submission counts as on time: the end of the due date in Vietnam.
    pub fn deadline(&self) -> OffsetDateTime {
        let next = self
            .due
            .next_day()
            .expect("due dates are far from the end of time");
        next.midnight().assume_offset(VIETNAM) - time::Duration::milliseconds(1)
    }

    /// The data window as an instant range `[from, to)` in Vietnam's time.
    pub fn window(&self) -> (OffsetDateTime, OffsetDateTime) {
        let from = self.data_from.midnight().assume_offset(VIETNAM);
        let to = self
            .data_to
            .next_day()
            .expect("data windows are far from the end of time")
            .midnight()
            .assume_offset(VIETNAM);
        (from, to)
    }
}

impl Scheme {
    /// The built-in schemes: each frequency with the Nghị định 09/2019 data window and the Sở
    /// TT&TT's due date, the 10th of the period's last month, moved earlier off days off.
    pub fn defaults() -> Vec<Scheme> {
        [
            ("monthly", Frequency::Month),
            ("quarterly", Frequency::Quarter),
            ("half-year", Frequency::HalfYear),
            ("nine-months", Frequency::NineMonths),
            ("yearly", Frequency::Year),
        ]
        .into_iter()
        .map(|(name, frequency)| Scheme {
            name: name.to_owned(),
            frequency,
            data: DataRule::BeforeDue,
            due: DueRule::DayOf {
                day: 10,
                month: DueMonth::Last,
            },
            shift: Shift::Earlier,
            source: "Quy chế làm việc của Sở, Điều 17.3".to_owned(),
        })
        .collect()
    }

    /// Checks a configured scheme.
    ///
    /// # Errors
    ///
    /// When the name is empty, no due rule or two are given, or a day is out of range.
    pub fn check(config: SchemeConfig) -> anyhow::Result<Scheme> {
        let name = config.name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "reports.schemes: name {:?} must be letters, digits, '-' or '_', like quarterly",
                config.name
            );
        }
        let due = match (config.due_day, &config.due_date) {
            (Some(day), None) => {
                if !(1..=31).contains(&day) {
                    bail!("reports.schemes {name}: due_day must be 1 to 31, found {day}");
                }
                DueRule::DayOf {
                    day,
                    month: config.due_month,
                }
            }
            (None, Some(text)) => {
                if config.frequency.count() != 1 {
                    bail!("reports.schemes {name}: due_date suits schemes with one period a year; use due_day for {:?}", config.frequency);
                }
                let date = parse_date(&format!("2024-{text}")).with_context(|| {
                    format!("reports.schemes {name}: due_date {text:?} must be MM-DD, like 12-15")
                })?;
                DueRule::Fixed {
                    month: date.month(),
                    day: date.day(),
                }
            }
            _ => bail!("reports.schemes {name}: give exactly one of due_day and due_date"),
        };
        Ok(Scheme {
            name: name.to_owned(),
            frequency: config.frequency,
            data: config.data,
            due,
            shift: config.shift,
            source: config.source,
        })
    }

    /// The period with `label`, if it belongs to this scheme.
    ///
    /// # Errors
    ///
    /// When the label is not a period label or names another frequency; the message shows the
    /// scheme's labels.
    pub fn period(
        &self,
        label: &str,
        holidays: &Holidays,
        overrides: &[Override],
    ) -> anyhow::Result<Period> {
        match Frequency::parse_label(label.trim()) {
            Some((frequency, year, index)) if frequency == self.frequency => {
                Ok(self.build(year, index, holidays, overrides))
            }
            _ => bail!(
                "{label:?} is not a period of scheme {} ({}); its periods look like {}",
                self.name,
                frequency_vi(self.frequency),
                self.frequency.label(2026, self.frequency.count())
            ),
        }
    }

    /// Every period of `year`, in order.
    pub fn periods(&self, year: i32, holidays: &Holidays, overrides: &[Override]) -> Vec<Period> {
        (1..=self.frequency.count())
            .map(|index| self.build(year, index, holidays, overrides))
            .collect()
    }

    /// The periods a unit may be reporting on at `today`: the data window has started and the due
    /// date is at most `grace_days` past.
    pub fn open_periods(
        &self,
        today: Date,
        grace_days: i64,
        holidays: &Holidays,
        overrides: &[Override],
    ) -> Vec<Period> {
        (today.year() - 1..=today.year() + 1)
            .flat_map(|year| self.periods(year, holidays, overrides))
            .filter(|period| {
                period.data_from <= today && period.due + time::Duration::days(grace_days) >= today
            })
            .collect()
    }

    /// The due date the rule gives for a period whose due month is `(year, month)` (the day of
    /// the rule, in that month), before days off.
    fn rule_day(&self, year: i32, month: u8) -> Date {
        let day = match self.due {
            DueRule::DayOf { day, .. } | DueRule::Fixed { day, .. } => day,
        };
        date(year, month, day.min(month_of(month).length(year)))
    }

    /// `due` moved off days off by the scheme's shift, with the days stepped over.
    fn shifted(&self, due: Date, holidays: &Holidays) -> (Date, Vec<String>) {
        let mut due = due;
        let mut steps = Vec::new();
        if self.shift != Shift::None {
            while !holidays.is_working_day(due) {
                steps.push(match holidays.name(due) {
                    Some(name) => format!("{} nghỉ {name}", show_date(due)),
                    None => format!("{} là {}", show_date(due), weekday_vi(due.weekday())),
                });
                due = match self.shift {
                    Shift::Earlier => due.previous_day(),
                    _ => due.next_day(),
                }
                .expect("due dates are far from the ends of time");
            }
        }
        (due, steps)
    }

    /// The last day of data for a report due on `due`: the day before the last working day
    /// before it.
    fn cut_off(due: Date, holidays: &Holidays) -> Date {
        let mut working = due.previous_day().expect("far from the start of time");
        while !holidays.is_working_day(working) {
            working = working.previous_day().expect("far from the start of time");
        }
        working.previous_day().expect("far from the start of time")
    }

    fn build(&self, year: i32, index: u8, holidays: &Holidays, overrides: &[Override]) -> Period {
        let (first, last) = self.frequency.months(index);
        let (nominal_due, mut rule) = match self.due {
            DueRule::DayOf { day, month } => {
                let (due_year, due_month, which) = match month {
                    DueMonth::Last => (year, last, "tháng cuối kỳ"),
                    DueMonth::Next if last == 12 => (year + 1, 1, "tháng sau kỳ"),
                    DueMonth::Next => (year, last + 1, "tháng sau kỳ"),
                };
                (
                    self.rule_day(due_year, due_month),
                    format!("ngày {day} {which}"),
                )
            }
            DueRule::Fixed { month, day } => (
                Date::from_calendar_date(year, month, day)
                    .unwrap_or_else(|_| last_day(year, month as u8)),
                format!("ngày {day:02}/{:02} hằng năm", month as u8),
            ),
        };
        let (mut due, steps) = self.shifted(nominal_due, holidays);
        let (data_from, data_to) = match self.data {
            DataRule::Nd09 => {
                let (from_year, from_month) = if first == 1 {
                    (year - 1, 12)
                } else {
                    (year, first - 1)
                };
                (date(from_year, from_month, 15), date(year, last, 14))
            }
            DataRule::Calendar => (date(year, first, 1), last_day(year, last)),
            DataRule::BeforeDue => {
                // The period before is due in this one's due month moved back by the length
                // of the period; this window starts the day after that one's cut-off.
                let length = i32::from(last - first + 1);
                let months =
                    nominal_due.year() * 12 + i32::from(u8::from(nominal_due.month())) - 1 - length;
                let month = u8::try_from(months.rem_euclid(12) + 1).expect("a month is 1 to 12");
                let (before, _) =
                    self.shifted(self.rule_day(months.div_euclid(12), month), holidays);
                let from = Self::cut_off(before, holidays)
                    .next_day()
                    .expect("far from the end of time");
                (from, Self::cut_off(due, holidays))
            }
        };
        if !steps.is_empty() {
            let direction = if self.shift == Shift::Earlier {
                "lùi về"
            } else {
                "dời đến"
            };
            let _ = write!(
                rule,
                "; {} → {direction} {} {}",
                steps.join(", "),
                weekday_vi(due.weekday()),
                show_date(due)
            );
        }
        if self.data == DataRule::BeforeDue {
            let _ = write!(
                rule,
                "; số liệu chốt đến hết ngày {}, trước hạn nộp ít nhất 1 ngày làm việc như Nghị \
                 định 09/2019/NĐ-CP yêu cầu (không chốt theo ngày 14 của Nghị định vì hạn nộp \
                 đến trước ngày đó)",
                show_date(data_to)
            );
        }
        if !self.source.is_empty() {
            let _ = write!(rule, " ({})", self.source);
        }
        let label = self.frequency.label(year, index);
        let mut overridden = false;
        if let Some(manual) = overrides
            .iter()
            .find(|o| o.scheme == self.name && o.period == label)
        {
            due = manual.due;
            overridden = true;
            rule = format!(
                "điều chỉnh thủ công: {} (quy tắc: hạn {})",
                manual.reason,
                show_date(nominal_due)
            );
        }
        let mut warnings = Vec::new();
        if !holidays.covers(due.year()) {
            warnings.push(format!(
                "lịch nghỉ lễ chưa có năm {}: chỉ tính thứ Bảy, Chủ nhật",
                due.year()
            ));
        }
        if due <= data_to {
            warnings.push(format!(
                "hạn nộp {} không sau ngày chốt số liệu {} (Nghị định 09/2019 cần ít nhất 1 ngày làm việc giữa hai ngày)",
                show_date(due),
                show_date(data_to)
            ));
        }
        Period {
            scheme: self.name.clone(),
            label,
            label_vi: self.frequency.label_vi(year, index),
            data_from,
            data_to,
            nominal_due,
            due,
            rule,
            overridden,
            warnings,
        }
    }
}

/// Finds the scheme a period label belongs to: `preferred` by name when given, else the only one
/// of the label's frequency among `schemes`.
///
/// # Errors
///
/// When the label is not a period label, no scheme has its frequency, or several do and none was
/// named.
pub fn scheme_for<'a>(
    schemes: &'a [Scheme],
    label: &str,
    preferred: Option<&str>,
) -> anyhow::Result<&'a Scheme> {
    if let Some(name) = preferred {
        return schemes
            .iter()
            .find(|scheme| scheme.name == name)
            .with_context(|| {
                format!(
                    "no reporting scheme is named {name:?}; known: {}",
                    names(schemes)
                )
            });
    }
    let Some((frequency, _, _)) = Frequency::parse_label(label.trim()) else {
        bail!("{label:?} is not a period like 2026-Q4, 2026-M11, 2026-H1, 2026-9M or 2026");
    };
    let matching: Vec<&Scheme> = schemes
        .iter()
        .filter(|scheme| scheme.frequency == frequency)
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no reporting scheme has {label:?}'s frequency; known: {}",
            names(schemes)
        ),
        _ => bail!(
            "several schemes have {label:?}'s frequency ({}); name one with --scheme",
            matching
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn names(schemes: &[Scheme]) -> String {
    schemes
        .iter()
        .map(|scheme| scheme.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn frequency_vi(frequency: Frequency) -> &'static str {
    match frequency {
        Frequency::Month => "hằng tháng",
        Frequency::Quarter => "hằng quý",
        Frequency::HalfYear => "6 tháng",
        Frequency::NineMonths => "9 tháng",
        Frequency::Year => "hằng năm",
    }
}

/// `dd/mm/yyyy`.
pub fn show_date(date: Date) -> String {
    format!(
        "{:02}/{:02}/{}",
        date.day(),
        date.month() as u8,
        date.year()
    )
}

/// The Vietnamese name of a weekday.
pub fn weekday_vi(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "thứ Hai",
        Weekday::Tuesday => "thứ Ba",
        Weekday::Wednesday => "thứ Tư",
        Weekday::Thursday => "thứ Năm",
        Weekday::Friday => "thứ Sáu",
        Weekday::Saturday => "thứ Bảy",
        Weekday::Sunday => "Chủ nhật",
    }
}

fn month_of(number: u8) -> Month {
    Month::try_from(number).expect("month numbers here are 1 to 12")
}

fn date(year: i32, month: u8, day: u8) -> Date {
    Date::from_calendar_date(year, month_of(month), day).expect("days here exist in every month")
}

fn last_day(year: i32, month: u8) -> Date {
    let month = month_of(month);
    Date::from_calendar_date(year, month, month.length(year))
        .expect("the last day of a month exists")
}

/// The periods of `scheme` in `year` as a table for people: label, data window, due date, rule.
pub fn table(scheme: &Scheme, periods: &[Period]) -> String {
    let mut out = format!(
        "Chế độ báo cáo {} ({})\n",
        scheme.name,
        frequency_vi(scheme.frequency)
    );
    let width = periods
        .iter()
        .map(|p| p.label.len() + p.label_vi.chars().count() + 3)
        .max()
        .unwrap_or(0);
    for period in periods {
        let name = format!("{} ({})", period.label, period.label_vi);
        let pad = width.saturating_sub(name.chars().count());
        let _ = writeln!(
            out,
            "{name}{}  số liệu {} – {}  hạn nộp {} {}  quy tắc: {}",
            " ".repeat(pad),
            show_date(period.data_from),
            show_date(period.data_to),
            weekday_vi(period.due.weekday()),
            show_date(period.due),
            period.rule
        );
        for warning in &period.warnings {
            let _ = writeln!(out, "    lưu ý: {warning}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn scheme(name: &str) -> Scheme {
        Scheme::defaults()
            .into_iter()
            .find(|scheme| scheme.name == name)
            .unwrap()
    }

    #[test]
    fn quarters_follow_decree_09_and_the_tenth_of_the_last_month() {
        let periods = scheme("quarterly").periods(2026, &Holidays::shipped(), &[]);
        let got: Vec<(&str, Date, Date, Date)> = periods
            .iter()
            .map(|p| (p.label.as_str(), p.data_from, p.data_to, p.due))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "2026-Q1",
                    date!(2025 - 12 - 09),
                    date!(2026 - 03 - 08),
                    date!(2026 - 03 - 10)
                ),
                (
                    "2026-Q2",
                    date!(2026 - 03 - 09),
                    date!(2026 - 06 - 08),
                    date!(2026 - 06 - 10)
                ),
                (
                    "2026-Q3",
                    date!(2026 - 06 - 09),
                    date!(2026 - 09 - 08),
                    date!(2026 - 09 - 10)
                ),
                (
                    "2026-Q4",
                    date!(2026 - 09 - 09),
                    date!(2026 - 12 - 08),
                    date!(2026 - 12 - 10)
                ),
            ]
        );
        assert_eq!(periods[3].label_vi, "quý IV năm 2026");
        // The data window ends a working day before the due date, and the rule says why.
        assert!(periods[3].warnings.is_empty(), "{:?}", periods[3].warnings);
        assert!(
            periods[3].rule.contains(
                "số liệu chốt đến hết ngày 08/12/2026, trước hạn nộp ít nhất 1 ngày làm việc"
            ),
            "{}",
            periods[3].rule
        );
        // A scheme configured with the decree's own window is warned about.
        let nd09 = Scheme {
            data: DataRule::Nd09,
            ..scheme("quarterly")
        };
        let q4 = nd09.period("2026-Q4", &Holidays::shipped(), &[]).unwrap();
        assert!(q4.warnings[0].contains("không sau ngày chốt số liệu 14/12/2026"));
    }

    #[test]
    fn saturdays_sundays_and_holidays_move_the_due_date_earlier() {
        let holidays = Holidays::shipped();
        // 10/03/2024 is a Sunday: two days earlier.
        let q1 = scheme("quarterly")
            .period("2024-Q1", &holidays, &[])
            .unwrap();
        assert_eq!(q1.due, date!(2024 - 03 - 08));
        assert!(q1.rule.contains("10/03/2024 là Chủ nhật"), "{}", q1.rule);
        // 10/01/2026 is a Saturday: one day earlier.
        let monthly = scheme("monthly");
        assert_eq!(
            monthly.period("2026-M01", &holidays, &[]).unwrap().due,
            date!(2026 - 01 - 09)
        );
        // 10/02/2024 is a Saturday, and 9 and 8 February are Tết: back to Wednesday the 7th.
        let tet = monthly.period("2024-M02", &holidays, &[]).unwrap();
        assert_eq!(tet.due, date!(2024 - 02 - 07));
        assert_eq!(
            tet.rule,
            "ngày 10 tháng cuối kỳ; 10/02/2024 là thứ Bảy, 09/02/2024 nghỉ Tết Nguyên đán, \
             08/02/2024 nghỉ Tết Nguyên đán → lùi về thứ Tư 07/02/2024; số liệu chốt đến hết ngày \
             05/02/2024, trước hạn nộp ít nhất 1 ngày làm việc như Nghị định 09/2019/NĐ-CP yêu cầu \
             (không chốt theo ngày 14 của Nghị định vì hạn nộp đến trước ngày đó) (Quy chế làm \
             việc của Sở, Điều 17.3)"
        );
        // Windows follow one another: January's ended the day before its due date's eve.
        assert_eq!(tet.data_from, date!(2024 - 01 - 09));
        assert_eq!(tet.data_to, date!(2024 - 02 - 05));
    }

    #[test]
    fn configured_schemes_take_fixed_dates_later_shifts_and_calendar_windows() {
        let half = Scheme::check(SchemeConfig {
            name: "van-phong".into(),
            frequency: Frequency::HalfYear,
            data: DataRule::Calendar,
            due_day: None,
            due_month: DueMonth::Last,
            due_date: Some("06-20".into()),
            shift: Shift::Later,
            source: String::new(),
        })
        .unwrap();
        // 20/06/2026 is a Saturday: with `later`, Monday the 22nd.
        let period = half.period("2026-H1", &Holidays::shipped(), &[]).unwrap();
        assert_eq!(
            (period.data_from, period.data_to, period.due),
            (
                date!(2026 - 01 - 01),
                date!(2026 - 06 - 30),
                date!(2026 - 06 - 22)
            )
        );
        let bad = SchemeConfig {
            due_day: Some(10),
            ..SchemeConfig {
                name: "x".into(),
                frequency: Frequency::Quarter,
                data: DataRule::Nd09,
                due_day: None,
                due_month: DueMonth::Next,
                due_date: Some("12-15".into()),
                shift: Shift::None,
                source: String::new(),
            }
        };
        assert!(Scheme::check(bad)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
    }

    #[test]
    fn overrides_replace_the_date_and_say_why() {
        let overrides = [Override {
            scheme: "yearly".into(),
            period: "2026".into(),
            due: date!(2026 - 12 - 15),
            reason: "Công văn 123/SKHCN gia hạn".into(),
        }];
        let year = scheme("yearly")
            .period("2026", &Holidays::shipped(), &overrides)
            .unwrap();
        assert_eq!(
            (year.nominal_due, year.due),
            (date!(2026 - 12 - 10), date!(2026 - 12 - 15))
        );
        assert!(year.overridden && year.rule.starts_with("điều chỉnh thủ công: Công văn 123"));
        // The window stays where the rule puts it: an override moves only the due date.
        assert_eq!(
            (year.data_from, year.data_to),
            (date!(2025 - 12 - 09), date!(2026 - 12 - 08))
        );
    }

    #[test]
    fn labels_find_their_scheme_and_bad_labels_are_explained() {
        let schemes = Scheme::defaults();
        assert_eq!(
            scheme_for(&schemes, "2026-Q4", None).unwrap().name,
            "quarterly"
        );
        assert_eq!(scheme_for(&schemes, "2026", None).unwrap().name, "yearly");
        assert_eq!(
            scheme_for(&schemes, "2026-9M", None).unwrap().name,
            "nine-months"
        );
        assert!(scheme_for(&schemes, "2026-Q5", None).is_err());
        let err = scheme("quarterly")
            .period("2026-M11", &Holidays::shipped(), &[])
            .unwrap_err();
        assert!(err.to_string().contains("2026-Q4"), "{err}");
    }

    #[test]
    fn deadlines_end_at_midnight_in_vietnam_and_open_periods_span_years() {
        let holidays = Holidays::shipped();
        let q4 = scheme("quarterly")
            .period("2026-Q4", &holidays, &[])
            .unwrap();
        assert_eq!(
            q4.deadline(),
            time::macros::datetime!(2026-12-10 16:59:59.999 UTC)
        );
        let open = scheme("quarterly").open_periods(date!(2026 - 01 - 05), 60, &holidays, &[]);
        let labels: Vec<&str> = open.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2025-Q4", "2026-Q1"]);
    }

    #[test]
    fn broken_calendars_are_refused_with_the_line() {
        let err = Holidays::parse("date,name,note\n2026-02-30,Tết,\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert!(Holidays::shipped().covers(2026));
    }
}
