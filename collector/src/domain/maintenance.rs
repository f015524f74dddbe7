//! Planned maintenance (issue 17): windows during which problems are recorded but nobody is told.
//! Pure: the store passes the windows and what an incident concerns; nothing here reads the
//! database or the clock.
//!
//! # Rules
//!
//! - A window covers a unit and, unless it says otherwise, every unit under it; or one agent; or
//!   one target (by name, on any agent of a unit, or on one agent); or one registered system (by
//!   its code). Times are UTC Unix milliseconds, every occurrence half-open `[start, end)`.
//! - A window happens once, or again every day or every week from its first start (Vietnam has no
//!   daylight saving, so "every Saturday 22:00" is always the same instant plus whole weeks), until
//!   its last day if it has one. A cancelled window covers nothing from its cancellation on.
//! - During an occurrence, incidents are still detected, recorded and shown (marked as in planned
//!   maintenance), but no opening, escalation or reminder notice is planned for an incident the
//!   window covers ([`hold`]).
//! - When the occurrence ends, a problem still open is announced once, as if it had started then
//!   (escalation delays count from the window's end); one that ended inside the window is never
//!   announced.
//! - A resolution or closing notice to someone already told is never held: a window silences news,
//!   never the end of news.
//! - Security incidents are never held: a breach during a server upgrade is still a breach
//!   (QĐ 02/2017 Điều 12.2), and planned work does not make it expected.
//! - Inference opens no unit or district outage for a unit a window covers at that time.
//! - Down time inside an occurrence is "planned" and reported apart ([`planned_intervals`]); whether
//!   it counts against availability is the setting `maintenance.planned_counts_against`.

use std::fmt;
use std::str::FromStr;

use time::{OffsetDateTime, PrimitiveDateTime};

use super::periods::VIETNAM;

const DAY_MS: i64 = 86_400_000;

/// How often a window comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Once.
    Once,
    /// Every day at the same time.
    Daily,
    /// Every week on the same day and time.
    Weekly,
}

impl Repeat {
    /// The name stored and accepted: `once`, `daily`, `weekly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Repeat::Once => "once",
            Repeat::Daily => "daily",
            Repeat::Weekly => "weekly",
        }
    }

    fn period_ms(self) -> Option<i64> {
        match self {
            Repeat::Once => None,
            Repeat::Daily => Some(DAY_MS),
            Repeat::Weekly => Some(7 * DAY_MS),
        }
    }

    /// In Vietnamese, for people.
    pub fn text(self) -> &'static str {
        match self {
            Repeat::Once => "một lần",
            Repeat::Daily => "hằng ngày",
            Repeat::Weekly => "hằng tuần",
        }
    }
}

impl FromStr for Repeat {
    type Err = String;

    fn from_str(text: &str) -> Result<Repeat, String> {
        match text.trim() {
            "once" | "" => Ok(Repeat::Once),
            "daily" => Ok(Repeat::Daily),
            "weekly" => Ok(Repeat::Weekly),
            other => Err(format!("repeat {other:?} must be once, daily or weekly")),
        }
    }
}

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A unit, and with `subtree` every unit under it.
    Unit {
        /// Internal unit id.
        unit_id: i64,
        /// Whether the units under it are covered too.
        subtree: bool,
    },
    /// One agent.
    Agent(String),
    /// A target by name: on any agent of `unit_id` (and under it), or on any agent when none.
    Target {
        /// The target's name as agents report it.
        name: String,
        /// The unit whose agents' target it is, if limited.
        unit_id: Option<i64>,
    },
    /// A registered system, by its code.
    System(String),
}

impl Scope {
    /// The kind stored in `maintenance_windows.scope_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Unit { .. } => "unit",
            Scope::Agent(_) => "agent",
            Scope::Target { .. } => "target",
            Scope::System(_) => "system",
        }
    }
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Id.
    pub id: String,
    /// What it covers.
    pub scope: Scope,
    /// First start, Unix ms.
    pub starts_at: i64,
    /// Length of each occurrence, ms (more than zero).
    pub duration_ms: i64,
    /// How often it comes back.
    pub repeat: Repeat,
    /// No occurrence starts at or after this, Unix ms; none: for ever (recurring) .
    pub until: Option<i64>,
    /// When it was cancelled, Unix ms: nothing is covered from then on.
    pub cancelled_at: Option<i64>,
}

impl Window {
    /// The occurrence going on at `at`, if any.
    pub fn occurrence_at(&self, at: i64) -> Option<(i64, i64)> {
        if at < self.starts_at || self.cancelled_at.is_some_and(|cancelled| at >= cancelled) {
            return None;
        }
        let period = self.repeat.period_ms();
        let latest = match period {
            None => self.starts_at,
            Some(period) => self.starts_at + (at - self.starts_at) / period * period,
        };
        // A recurring window longer than its period overlaps itself: an earlier occurrence may
        // still be going on.
        let mut candidates = vec![latest];
        if let Some(period) = period {
            let mut start = latest - period;
            while start >= self.starts_at && start + self.duration_ms > at && candidates.len() < 8 {
                candidates.push(start);
                start -= period;
            }
        }
        candidates
            .into_iter()
            .filter(|start| self.may_start(*start))
            .map(|start| (start, self.end_of(start)))
            .find(|(start, end)| *start <= at && at < *end)
    }

    /// Whether an occurrence may start at `start`: the first always, later ones before the last
    /// day and the cancellation.
    fn may_start(&self, start: i64) -> bool {
        start == self.starts_at
            || (self.until.is_none_or(|until| start < until)
                && self.cancelled_at.is_none_or(|cancelled| start < cancelled))
    }

    /// The occurrences overlapping `[from, to)`, in order, cut at the cancellation.
    pub fn occurrences_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let period = self.repeat.period_ms();
        let mut start = match period {
            None => self.starts_at,
            Some(period) => {
                let back = (from - self.duration_ms - self.starts_at).max(0);
                self.starts_at + back / period * period
            }
        };
        loop {
            if start >= to
                || !self.may_start(start)
                || self
                    .cancelled_at
                    .is_some_and(|cancelled| start >= cancelled)
            {
                break;
            }
            let end = self.end_of(start);
            if end > from && start < to {
                out.push((start.max(from), end.min(to)));
            }
            match period {
                Some(period) => start += period,
                None => break,
            }
            if out.len() > 10_000 {
                break;
            }
        }
        out
    }

    /// The next occurrence that has not ended at `at` (the one going on, or the next to come).
    pub fn next_occurrence(&self, at: i64) -> Option<(i64, i64)> {
        if let Some(now) = self.occurrence_at(at) {
            return Some(now);
        }
        let horizon = at + self.repeat.period_ms().unwrap_or(0) + self.duration_ms + 1;
        let first_start = at.max(self.starts_at);
        self.occurrences_between(first_start, horizon.max(self.starts_at + 1))
            .into_iter()
            .find(|(start, _)| *start >= at)
            .map(|(start, _)| (start, self.end_of(start)))
    }

    fn end_of(&self, start: i64) -> i64 {
        let end = start.saturating_add(self.duration_ms);
        match self.cancelled_at {
            Some(cancelled) => end.min(cancelled),
            None => end,
        }
    }

    /// Whether it covers what `subject` concerns (at any time).
    pub fn covers(&self, subject: &Covered) -> bool {
        match &self.scope {
            Scope::Unit { unit_id, subtree } => {
                if *subtree {
                    subject.unit_chain.contains(unit_id)
                } else {
                    subject.unit_chain.first() == Some(unit_id)
                }
            }
            Scope::Agent(agent) => subject.agent_id.as_deref() == Some(agent.as_str()),
            Scope::Target { name, unit_id } => {
                subject.target.as_deref() == Some(name.as_str())
                    && unit_id.is_none_or(|unit| subject.unit_chain.contains(&unit))
            }
            Scope::System(code) => subject.system_code.as_deref() == Some(code.as_str()),
        }
    }
}

/// What an incident concerns, as windows see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covered {
    /// Its unit and the units above it, nearest first.
    pub unit_chain: Vec<i64>,
    /// The agent that reported it.
    pub agent_id: Option<String>,
    /// The target it is about.
    pub target: Option<String>,
    /// The registered system it is about.
    pub system_code: Option<String>,
}

/// How windows hold an incident's notices at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// A window covers it now: no opening, escalation or reminder until this instant.
    pub until: Option<i64>,
    /// The start that notices count from: its start, or the end of the window it started in.
    pub counted_from: i64,
    /// Whether it started inside a window (shown as "trong lịch bảo trì").
    pub started_in_window: bool,
}

/// How `windows` hold notices of an incident of `kind` about `subject`, started at `started_at`.
pub fn hold(windows: &[Window], subject: &Covered, kind: &str, started_at: i64, now: i64) -> Hold {
    let mut held = Hold {
        until: None,
        counted_from: started_at,
        started_in_window: false,
    };
    if kind == "security" {
        return held;
    }
    let covering: Vec<&Window> = windows.iter().filter(|w| w.covers(subject)).collect();
    // Started inside: notices count from the end of the windows it started in, chained when one
    // occurrence ends inside another.
    let mut at = started_at;
    for _ in 0..64 {
        let end = covering
            .iter()
            .filter_map(|w| w.occurrence_at(at))
            .map(|(_, end)| end)
            .max();
        match end {
            Some(end) if end > at => {
                held.started_in_window = true;
                at = end;
            }
            _ => break,
        }
    }
    held.counted_from = at;
    held.until = covering
        .iter()
        .filter_map(|w| w.occurrence_at(now))
        .map(|(_, end)| end)
        .max();
    held
}

/// The planned (maintenance) intervals of one subject within `[from, to)`, merged and sorted.
pub fn planned_intervals(
    windows: &[Window],
    subject: &Covered,
    from: i64,
    to: i64,
) -> Vec<(i64, i64)> {
    let mut all: Vec<(i64, i64)> = windows
        .iter()
        .filter(|w| w.covers(subject))
        .flat_map(|w| w.occurrences_between(from, to))
        .collect();
    merge(&mut all)
}

/// Sorts and merges half-open intervals.
pub fn merge(intervals: &mut [(i64, i64)]) -> Vec<(i64, i64)> {
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(start, end) in intervals.iter() {
        if end <= start {
            continue;
        }
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Length of the part of `[start, end)` inside the merged `planned` intervals.
pub fn overlap_ms(planned: &[(i64, i64)], start: i64, end: i64) -> i64 {
    planned
        .iter()
        .map(|(s, e)| (end.min(*e) - start.max(*s)).max(0))
        .sum()
}

/// A local time in Vietnam, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (or with `T`), as Unix ms.
///
/// # Errors
///
/// When the text is not such a time.
pub fn parse_local(text: &str) -> Result<i64, String> {
    let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let seconds =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let normal = text.trim().replacen('T', " ", 1);
    let local = PrimitiveDateTime::parse(&normal, &minutes)
        .or_else(|_| PrimitiveDateTime::parse(&normal, &seconds))
        .map_err(|_| format!("{text:?} is not a time like 2026-12-12 22:00 (Vietnam time)"))?;
    let at = local.assume_offset(VIETNAM);
    Ok(at.unix_timestamp() * 1000)
}

/// Unix ms as `dd/mm/yyyy HH:MM` in Vietnam's time, for people.
pub fn local_text(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(VIETNAM);
    let format = time::macros::format_description!("[day]/[month]/[year] [hour]:[minute]");
    at.format(&format).unwrap_or_default()
}

/// A length of time for people, in Vietnamese: `4 giờ`, `1 giờ 30 phút`, `45 phút`.
pub fn duration_text(ms: i64) -> String {
    let minutes = ms / 60_000;
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} ngày"));
    }
    if hours > 0 {
        parts.push(format!("{hours} giờ"));
    }
    if minutes > 0 || parts.is_empty() {
        parts.push(format!("{minutes} phút"));
    }
    parts.join(" ")
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    /// Saturday 12/12/2026 22:00 in Vietnam.
    fn saturday_22() -> i64 {
        parse_local("2026-12-12 22:00").unwrap()
    }

    fn weekly_over(unit_id: i64) -> Window {
        Window {
            id: "w".into(),
            scope: Scope::Unit {
                unit_id,
                subtree: true,
            },
            starts_at: saturday_22(),
            duration_ms: 4 * HOUR,
            repeat: Repeat::Weekly,
            until: None,
            cancelled_at: None,
        }
    }

    fn commune(chain: &[i64]) -> Covered {
        Covered {
            unit_chain: chain.to_vec(),
            ..Covered::default()
        }
    }

    #[test]
    fn a_weekly_window_comes_back_every_saturday_night_across_midnight() {
        let window = weekly_over(10);
        let week = 7 * 24 * HOUR;
        let s = saturday_22();
        assert_eq!(window.occurrence_at(s - 1), None);
        assert_eq!(window.occurrence_at(s), Some((s, s + 4 * HOUR)));
        // Sunday 01:59 is inside, 02:00 is not.
        assert_eq!(
            window.occurrence_at(s + 4 * HOUR - 1),
            Some((s, s + 4 * HOUR))
        );
        assert_eq!(window.occurrence_at(s + 4 * HOUR), None);
        assert_eq!(
            window.occurrence_at(s + 3 * week + HOUR),
            Some((s + 3 * week, s + 3 * week + 4 * HOUR))
        );
        assert_eq!(window.occurrence_at(s + 3 * week + 5 * HOUR), None);
        assert_eq!(
            window.occurrences_between(s + HOUR, s + week + HOUR),
            vec![(s + HOUR, s + 4 * HOUR), (s + week, s + week + HOUR)]
        );
        assert_eq!(
            window.next_occurrence(s + 5 * HOUR),
            Some((s + week, s + week + 4 * HOUR))
        );
    }

    #[test]
    fn the_last_day_and_a_cancellation_end_the_repeats() {
        let s = saturday_22();
        let week = 7 * 24 * HOUR;
        let mut window = weekly_over(10);
        window.until = Some(s + week + 1);
        assert!(window.occurrence_at(s + week + HOUR).is_some());
        assert_eq!(window.occurrence_at(s + 2 * week + HOUR), None);
        window.until = None;
        window.cancelled_at = Some(s + HOUR);
        assert_eq!(window.occurrence_at(s + 30 * MIN), Some((s, s + HOUR)));
        assert_eq!(window.occurrence_at(s + 2 * HOUR), None);
        assert_eq!(window.occurrence_at(s + week + HOUR), None);
        assert_eq!(
            window.occurrences_between(s, s + 2 * week),
            vec![(s, s + HOUR)]
        );
    }

    #[test]
    fn scopes_cover_the_subtree_an_agent_a_target_or_a_system() {
        let window = weekly_over(10);
        assert!(window.covers(&commune(&[11, 10, 1])));
        assert!(window.covers(&commune(&[10, 1])));
        assert!(!window.covers(&commune(&[12, 1])));
        let own = Window {
            scope: Scope::Unit {
                unit_id: 10,
                subtree: false,
            },
            ..weekly_over(10)
        };
        assert!(!own.covers(&commune(&[11, 10, 1])));
        let target = Window {
            scope: Scope::Target {
                name: "mail".into(),
                unit_id: Some(10),
            },
            ..weekly_over(10)
        };
        let mut about_mail = commune(&[11, 10, 1]);
        about_mail.target = Some("mail".into());
        assert!(target.covers(&about_mail));
        assert!(!target.covers(&commune(&[11, 10, 1])));
        let agent = Window {
            scope: Scope::Agent("a-1".into()),
            ..weekly_over(10)
        };
        let mut of_agent = commune(&[11]);
        of_agent.agent_id = Some("a-1".into());
        assert!(agent.covers(&of_agent));
        let system = Window {
            scope: Scope::System("HTTT-01".into()),
            ..weekly_over(10)
        };
        let mut of_system = commune(&[11]);
        of_system.system_code = Some("HTTT-01".into());
        assert!(system.covers(&of_system));
    }

    #[test]
    fn a_problem_begun_in_a_window_counts_from_its_end_and_is_held_until_then() {
        let s = saturday_22();
        let windows = [weekly_over(10)];
        let held = hold(&windows, &commune(&[11, 10]), "wan", s + HOUR, s + 2 * HOUR);
        assert_eq!(held.until, Some(s + 4 * HOUR));
        assert_eq!(held.counted_from, s + 4 * HOUR);
        assert!(held.started_in_window);
        let after = hold(&windows, &commune(&[11, 10]), "wan", s + HOUR, s + 5 * HOUR);
        assert_eq!(after.until, None);
        assert_eq!(after.counted_from, s + 4 * HOUR);
        // Begun before the window: told as usual before it, held during it.
        let before = hold(&windows, &commune(&[11, 10]), "wan", s - HOUR, s + HOUR);
        assert_eq!(before.counted_from, s - HOUR);
        assert!(!before.started_in_window);
        assert_eq!(before.until, Some(s + 4 * HOUR));
        // Other units and security incidents are never held.
        assert_eq!(
            hold(&windows, &commune(&[12]), "wan", s + HOUR, s + 2 * HOUR).until,
            None
        );
        let security = hold(
            &windows,
            &commune(&[11, 10]),
            "security",
            s + HOUR,
            s + 2 * HOUR,
        );
        assert_eq!(security.until, None);
        assert_eq!(security.counted_from, s + HOUR);
    }

    #[test]
    fn planned_time_is_merged_and_cut_to_the_period() {
        let s = saturday_22();
        let mut other = weekly_over(10);
        other.starts_at = s + 3 * HOUR;
        other.repeat = Repeat::Once;
        let windows = [weekly_over(10), other];
        let planned = planned_intervals(&windows, &commune(&[11, 10]), s + HOUR, s + 10 * HOUR);
        assert_eq!(planned, vec![(s + HOUR, s + 7 * HOUR)]);
        assert_eq!(overlap_ms(&planned, s, s + 2 * HOUR), HOUR);
    }

    #[test]
    fn times_and_lengths_read_and_print_in_vietnam_time() {
        assert_eq!(local_text(saturday_22()), "12/12/2026 22:00");
        assert_eq!(parse_local("2026-12-12T22:00"), Ok(saturday_22()));
        assert_eq!(
            parse_local("2026-12-12 22:00:30"),
            Ok(saturday_22() + 30_000)
        );
        assert!(parse_local("12/12/2026").is_err());
        assert_eq!(duration_text(4 * HOUR), "4 giờ");
        assert_eq!(duration_text(90 * MIN), "1 giờ 30 phút");
        assert_eq!(duration_text(26 * HOUR), "1 ngày 2 giờ");
        assert_eq!("weekly".parse::<Repeat>(), Ok(Repeat::Weekly));
        assert!("monthly".parse::<Repeat>().is_err());
    }
}
