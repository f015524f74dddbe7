//! Availability and time to recover of one unit over one period (issue 4, item 6).
//!
//! The periodic reports and the dashboards show, per unit, per kind and per period, the share of
//! time up, the number of incidents and the mean and longest time to recover. Every one of those
//! figures comes from [`figures`], so a report and a dashboard never disagree. The module is pure:
//! callers pass the unit's validity ([`UnitSpan`], from `store::units::Unit`, see
//! [`UnitSpan::from_days`]) and its incidents ([`Outage`], from `store::incidents::StoredIncident`),
//! and nothing here reads the database or the clock.
//!
//! # Rules
//!
//! - Times are UTC Unix milliseconds, and every interval is half-open, `[start, end)`.
//! - Observed time is the part of the window during which the unit existed and that is not in the future (before `now`).
//! - A unit created during the period is judged only on its days of existence, and a unit merged away only until its last day.
//! - The unit that takes over after a merger or split is judged on its own days, so history before the change stays with the unit as it then was.
//! - A unit with no observed time in the window has no availability (`None`), rather than 0 % or 100 %.
//! - Down time comes only from incidents: time without data from an agent counts as up.
//! - Down time is the union of the unit's incident intervals within observed time, so overlapping incidents are counted once.
//! - An open incident is down until the end of observed time: the window's end, the unit's end or `now`, whichever comes first.
//! - Availability is `(observed − down) / observed`.
//! - Down time during planned maintenance (issue 17) is reported apart, as `planned_down_ms`; it is
//!   part of `down_ms` (and so of availability) only when the setting says planned work counts
//!   against the unit ([`figures_with_planned`]).
//! - An incident counts in a window if it started during observed time, or started earlier and was not yet resolved when observed time began.
//! - So an incident spanning two periods counts in each of them, and one ending exactly when a period begins counts only in the period before.
//! - The time to recover of an incident is its full duration, `ended_at − started_at`, even where it began before the window.
//! - It counts in the one period during whose observed time the incident ended, its end included, so each time to recover is reported once.
//! - Open incidents, and incidents that ended after observed time, count as incidents but not in the time to recover.
//! - The mean time to recover is rounded down to the millisecond.
//! - An end before the start (bad data from an agent) is read as a zero-length incident at its start.
//! - Outages of other units are ignored, so one list may serve every unit.
//! - With no `kind`, every kind counts; for a set of kinds (say, all but `security`), filter the outages before the call.
//! - Aggregating units is the caller's task: [`combine`] adds the figures of different units over the same window.
//! - [`combine`] weights availability by observed time and recomputes the mean time to recover from sums, never averaging averages.
//! - For a longer period, call [`figures`] with the longer window: combining consecutive periods of one unit counts a boundary-spanning incident once per period.
//! - Do not combine figures of different kinds of the same unit either: their down times may overlap.

use serde::Serialize;
use time::{Date, Time, UtcOffset};

/// Kinds that make a unit down when no kind is asked for: those that stop people from working.
/// Used by `GET /api/v1/availability` and the metrics alike.
pub const SERVICE_KINDS: &[&str] = &["lan", "wan", "internet", "server", "agent_unreachable"];

/// Vietnam's time, in which the units' validity dates are days.
const VIETNAM: UtcOffset = time::macros::offset!(+7);

/// A period to judge, in Unix milliseconds, half-open: `[start, end)`.
///
/// A window whose end is not after its start is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First millisecond of the period.
    pub start: i64,
    /// First millisecond after the period.
    pub end: i64,
}

/// When a unit existed, in Unix milliseconds, half-open: `[valid_from, valid_to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnitSpan {
    /// Internal unit id, as in `store::units::Unit::id`.
    pub unit_id: i64,
    /// First millisecond of existence, or none when it existed before any window.
    pub valid_from: Option<i64>,
    /// First millisecond after the unit ended (merged away, split, abolished), or none while it exists.
    pub valid_to: Option<i64>,
}

impl UnitSpan {
    /// The span of a unit whose validity is given as days, like `store::units::Unit`.
    ///
    /// Both days are included and are days in Vietnam's time: the unit exists from 00:00 +07:00
    /// of `first_day` to 00:00 +07:00 of the day after `last_day`.
    pub fn from_days(unit_id: i64, first_day: Option<Date>, last_day: Option<Date>) -> UnitSpan {
        UnitSpan {
            unit_id,
            valid_from: first_day.map(midnight_in_vietnam),
            // The last representable day has no next day; such a unit never ends.
            valid_to: last_day.and_then(Date::next_day).map(midnight_in_vietnam),
        }
    }
}

/// The start of a day in Vietnam's time, in Unix milliseconds.
fn midnight_in_vietnam(day: Date) -> i64 {
    // Any `Date` is within ±10 000 years, so its seconds times 1000 fit in i64.
    day.with_time(Time::MIDNIGHT)
        .assume_offset(VIETNAM)
        .unix_timestamp()
        * 1000
}

/// One incident of a unit, as far as availability is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// Internal id of the unit it belongs to.
    pub unit_id: i64,
    /// The wire's `IncidentKind` as stored: one of `store::incidents::INCIDENT_KINDS`.
    pub kind: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms, or none while the incident is open.
    pub ended_at: Option<i64>,
}

/// Availability and time to recover of a unit (or of several, see [`combine`]) over a window.
///
/// Invariants, for figures made by this module: `down_ms <= observed_ms`; `recovered <= incidents`;
/// the time-to-recover fields are `None` exactly when `recovered == 0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Time judged: the window within the unit's existence and before `now`.
    pub observed_ms: i64,
    /// Time within `observed_ms` during which at least one incident was going on, and which counts
    /// against availability: all of it, or, when planned maintenance does not count, only the
    /// part outside maintenance windows.
    pub down_ms: i64,
    /// Time within `observed_ms` down during planned maintenance (`domain::maintenance`), shown
    /// apart; part of `down_ms` only when planned maintenance counts against the unit.
    pub planned_down_ms: i64,
    /// Share of observed time up, from 0 to 1, or none when nothing was observed.
    pub availability: Option<f64>,
    /// Incidents that count in the window.
    pub incidents: u32,
    /// Those of them that ended during observed time.
    pub recovered: u32,
    /// Sum of the full durations of the recovered incidents, kept so [`combine`] can recompute the mean.
    pub total_time_to_recover_ms: i64,
    /// Mean full duration of the recovered incidents, rounded down.
    pub mean_time_to_recover_ms: Option<i64>,
    /// Longest full duration of the recovered incidents.
    pub longest_time_to_recover_ms: Option<i64>,
}

impl Figures {
    /// Builds figures from the additive parts, deriving availability and mean the same way for
    /// [`figures`] and [`combine`].
    fn from_parts(
        observed_ms: i64,
        down_ms: i64,
        planned_down_ms: i64,
        incidents: u32,
        recovered: u32,
        total_time_to_recover_ms: i64,
        longest_time_to_recover_ms: Option<i64>,
    ) -> Figures {
        let availability = (observed_ms > 0)
            .then(|| observed_ms.saturating_sub(down_ms) as f64 / observed_ms as f64);
        let mean_time_to_recover_ms =
            (recovered > 0).then(|| total_time_to_recover_ms / i64::from(recovered));
        Figures {
            observed_ms,
            down_ms,
            planned_down_ms,
            availability,
            incidents,
            recovered,
            total_time_to_recover_ms,
            mean_time_to_recover_ms,
            longest_time_to_recover_ms,
        }
    }
}

/// The figures of one unit over one window, by the rules in the module documentation.
///
/// `now` is the current time (Unix ms): later time is not observed and open incidents stop there.
/// `outages` may hold incidents of any unit; only those of `span.unit_id` are used. `kind`, when
/// given, keeps only incidents of that kind (a kind no incident has gives full availability).
pub fn figures(
    window: Window,
    now: i64,
    span: &UnitSpan,
    outages: &[Outage],
    kind: Option<&str>,
) -> Figures {
    figures_with_planned(window, now, span, outages, kind, &Planned::default())
}

/// The unit's planned maintenance within a window, for [`figures_with_planned`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// Its maintenance occurrences, merged and sorted (`domain::maintenance::planned_intervals`).
    pub intervals: Vec<(i64, i64)>,
    /// Whether down time during them counts against availability.
    pub counts_against: bool,
}

/// [`figures`], with down time during planned maintenance reported apart and, unless
/// `planned.counts_against`, not counted against availability.
pub fn figures_with_planned(
    window: Window,
    now: i64,
    span: &UnitSpan,
    outages: &[Outage],
    kind: Option<&str>,
    planned: &Planned,
) -> Figures {
    let observed_start = window.start.max(span.valid_from.unwrap_or(i64::MIN));
    let observed_end = window.end.min(now).min(span.valid_to.unwrap_or(i64::MAX));
    if observed_end <= observed_start {
        return Figures::from_parts(0, 0, 0, 0, 0, 0, None);
    }

    let mut down = Vec::new();
    let mut incidents = 0u32;
    let mut recovered = 0u32;
    let mut total_time_to_recover_ms = 0i64;
    let mut longest_time_to_recover_ms = None;
    let selected = outages.iter().filter(|outage| {
        outage.unit_id == span.unit_id && kind.is_none_or(|kind| outage.kind == kind)
    });
    for outage in selected {
        let start = outage.started_at;
        let end = outage.ended_at.map(|end| end.max(start));
        let started_during = observed_start <= start && start < observed_end;
        let going_on_at_start =
            start < observed_start && end.is_none_or(|end| end > observed_start);
        if !(started_during || going_on_at_start) {
            continue;
        }
        incidents = incidents.saturating_add(1);

        let down_start = start.max(observed_start);
        let down_end = end.unwrap_or(i64::MAX).min(observed_end);
        if down_start < down_end {
            down.push((down_start, down_end));
        }

        let ended_during = end.filter(|&end| end <= observed_end);
        if let Some(end) = ended_during {
            let time_to_recover_ms = end.saturating_sub(start);
            recovered = recovered.saturating_add(1);
            total_time_to_recover_ms = total_time_to_recover_ms.saturating_add(time_to_recover_ms);
            longest_time_to_recover_ms = longest_time_to_recover_ms.max(Some(time_to_recover_ms));
        }
    }

    let merged = crate::domain::maintenance::merge(&mut down);
    let down_ms: i64 = merged.iter().map(|(start, end)| end - start).sum();
    let planned_down_ms: i64 = merged
        .iter()
        .map(|(start, end)| {
            crate::domain::maintenance::overlap_ms(&planned.intervals, *start, *end)
        })
        .sum();
    Figures::from_parts(
        observed_end.saturating_sub(observed_start),
        if planned.counts_against {
            down_ms
        } else {
            down_ms - planned_down_ms
        },
        planned_down_ms,
        incidents,
        recovered,
        total_time_to_recover_ms,
        longest_time_to_recover_ms,
    )
}

/// The figures of several units over the same window, as one: for a parent from its children, or
/// for the province from its agencies.
///
/// Availability is weighted by observed time (total up over total observed), counts add up, and
/// the mean time to recover is recomputed from the sums. See the module documentation for what
/// not to combine. No parts give figures with no availability.
pub fn combine(parts: &[Figures]) -> Figures {
    let mut observed_ms = 0i64;
    let mut down_ms = 0i64;
    let mut planned_down_ms = 0i64;
    let mut incidents = 0u32;
    let mut recovered = 0u32;
    let mut total_time_to_recover_ms = 0i64;
    let mut longest_time_to_recover_ms = None;
    for part in parts {
        observed_ms = observed_ms.saturating_add(part.observed_ms);
        down_ms = down_ms.saturating_add(part.down_ms);
        planned_down_ms = planned_down_ms.saturating_add(part.planned_down_ms);
        incidents = incidents.saturating_add(part.incidents);
        recovered = recovered.saturating_add(part.recovered);
        total_time_to_recover_ms =
            total_time_to_recover_ms.saturating_add(part.total_time_to_recover_ms);
        longest_time_to_recover_ms =
            longest_time_to_recover_ms.max(part.longest_time_to_recover_ms);
    }
    Figures::from_parts(
        observed_ms,
        down_ms,
        planned_down_ms,
        incidents,
        recovered,
        total_time_to_recover_ms,
        longest_time_to_recover_ms,
    )
}

#[cfg(test)]
mod tests {
    //! Every expected value below is computed by hand; the comment above each `check` shows how.
    //! Unless a test says otherwise, the window is the monthly data period of Nghị định 09/2019,
    //! 15/02/2025 to 14/03/2025 in Vietnam's time: 28 days = 672 h, judged on 01/04/2025.

    use expect_test::{expect, Expect};
    use time::macros::{date, datetime};
    use time::OffsetDateTime;

    use super::*;

    fn ms(at: OffsetDateTime) -> i64 {
        at.unix_timestamp() * 1000 + i64::from(at.millisecond())
    }

    fn window(start: OffsetDateTime, end: OffsetDateTime) -> Window {
        Window {
            start: ms(start),
            end: ms(end),
        }
    }

    fn period() -> Window {
        window(
            datetime!(2025-02-15 00:00 +7),
            datetime!(2025-03-15 00:00 +7),
        )
    }

    fn after_period() -> i64 {
        ms(datetime!(2025-04-01 00:00 +7))
    }

    fn unit(unit_id: i64) -> UnitSpan {
        UnitSpan::from_days(unit_id, None, None)
    }

    fn outage(
        unit_id: i64,
        kind: &str,
        started_at: OffsetDateTime,
        ended_at: Option<OffsetDateTime>,
    ) -> Outage {
        Outage {
            unit_id,
            kind: kind.to_owned(),
            started_at: ms(started_at),
            ended_at: ended_at.map(ms),
        }
    }

    /// Figures of each unit, then, for several units, of all of them combined.
    fn check(
        window: Window,
        now: i64,
        spans: &[UnitSpan],
        outages: &[Outage],
        kind: Option<&str>,
        expect: Expect,
    ) {
        let parts: Vec<Figures> = spans
            .iter()
            .map(|span| figures(window, now, span, outages, kind))
            .collect();
        let mut out = String::new();
        for (span, part) in spans.iter().zip(&parts) {
            out.push_str(&format!("unit {}: {}\n", span.unit_id, render(part)));
        }
        if spans.len() > 1 {
            out.push_str(&format!("combined: {}\n", render(&combine(&parts))));
        }
        expect.assert_eq(&out);
    }

    fn render(figures: &Figures) -> String {
        let availability = match figures.availability {
            Some(availability) => format!("{:.6}%", availability * 100.0),
            None => "none".to_owned(),
        };
        let time_to_recover = match (
            figures.mean_time_to_recover_ms,
            figures.longest_time_to_recover_ms,
        ) {
            (Some(mean), Some(longest)) => {
                format!("mean {} longest {}", duration(mean), duration(longest))
            }
            (None, None) => "none".to_owned(),
            (mean, longest) => format!("BROKEN mean {mean:?} longest {longest:?}"),
        };
        format!(
            "observed {}, down {}, availability {availability}, incidents {}, recovered {}, time to recover {time_to_recover}",
            duration(figures.observed_ms),
            duration(figures.down_ms),
            figures.incidents,
            figures.recovered,
        )
    }

    /// Hours and minutes, with seconds and milliseconds only when there are some.
    fn duration(ms: i64) -> String {
        let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
        let (seconds, millis) = (ms / 1000 % 60, ms % 1000);
        match (seconds, millis) {
            (0, 0) => format!("{hours}h{minutes:02}m"),
            (_, 0) => format!("{hours}h{minutes:02}m{seconds:02}s"),
            _ => format!("{hours}h{minutes:02}m{seconds:02}.{millis:03}s"),
        }
    }

    #[test]
    fn down_time_in_planned_maintenance_is_apart_and_counts_only_when_set() {
        // Down 08:00 to 12:00 = 4 h, of which 10:00 to 12:00 inside a window 10:00 to 14:00.
        // Not counting it: down 2 h, (672 − 2) / 672 = 99.702381 %; counting it: 4 h, 99.404762 %.
        let outages = [outage(
            1,
            "wan",
            datetime!(2025-03-01 08:00 +7),
            Some(datetime!(2025-03-01 12:00 +7)),
        )];
        let mut planned = Planned {
            intervals: vec![(
                ms(datetime!(2025-03-01 10:00 +7)),
                ms(datetime!(2025-03-01 14:00 +7)),
            )],
            counts_against: false,
        };
        let apart =
            figures_with_planned(period(), after_period(), &unit(1), &outages, None, &planned);
        assert_eq!(render(&apart), "observed 672h00m, down 2h00m, availability 99.702381%, incidents 1, recovered 1, time to recover mean 4h00m longest 4h00m");
        assert_eq!(apart.planned_down_ms, 2 * 3_600_000);
        planned.counts_against = true;
        let counted =
            figures_with_planned(period(), after_period(), &unit(1), &outages, None, &planned);
        assert_eq!(counted.down_ms, 4 * 3_600_000);
        assert_eq!(counted.planned_down_ms, 2 * 3_600_000);
        assert_eq!(
            format!("{:.6}", counted.availability.unwrap() * 100.0),
            "99.404762"
        );
        let both = combine(&[apart, counted]);
        assert_eq!(both.planned_down_ms, 4 * 3_600_000);
        assert_eq!(both.down_ms, 6 * 3_600_000);
    }

    #[test]
    fn no_incidents_is_full_availability() {
        // 672 h observed, 0 down: 672 / 672 = 100 %. The outage of unit 2 is not unit 1's.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[outage(
                2,
                "server",
                datetime!(2025-03-01 08:00 +7),
                Some(datetime!(2025-03-01 10:00 +7)),
            )],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 0h00m, availability 100.000000%, incidents 0, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn one_incident_inside() {
        // 08:00 to 10:00 = 2 h down: (672 − 2) / 672 = 670 / 672 = 99.702381 %; TTR 2 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[outage(
                1,
                "server",
                datetime!(2025-03-01 08:00 +7),
                Some(datetime!(2025-03-01 10:00 +7)),
            )],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 2h00m, availability 99.702381%, incidents 1, recovered 1, time to recover mean 2h00m longest 2h00m
            "#]],
        );
    }

    #[test]
    fn incident_spanning_the_window_start() {
        // 14/02 22:00 to 15/02 03:00: 3 h of it inside (00:00 to 03:00), 669 / 672 = 99.553571 %.
        // It ended inside, so it has a TTR, and that is its full 5 h, not the 3 h inside.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[outage(
                1,
                "wan",
                datetime!(2025-02-14 22:00 +7),
                Some(datetime!(2025-02-15 03:00 +7)),
            )],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 3h00m, availability 99.553571%, incidents 1, recovered 1, time to recover mean 5h00m longest 5h00m
            "#]],
        );
    }

    #[test]
    fn incident_spanning_the_window_end_counts_in_both_periods() {
        let outages = [outage(
            1,
            "wan",
            datetime!(2025-03-14 20:00 +7),
            Some(datetime!(2025-03-15 06:00 +7)),
        )];
        // This period: 20:00 to 24:00 = 4 h down, 668 / 672 = 99.404762 %; it counts as an incident
        // but did not end in the period, so no TTR yet.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 4h00m, availability 99.404762%, incidents 1, recovered 0, time to recover none
            "#]],
        );
        // Next period, 15/03 to 14/04 = 31 days = 744 h: 00:00 to 06:00 = 6 h down,
        // 738 / 744 = 99.193548 %; it counts again, and its full 10 h TTR is reported here.
        check(
            window(
                datetime!(2025-03-15 00:00 +7),
                datetime!(2025-04-15 00:00 +7),
            ),
            ms(datetime!(2025-05-01 00:00 +7)),
            &[unit(1)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 744h00m, down 6h00m, availability 99.193548%, incidents 1, recovered 1, time to recover mean 10h00m longest 10h00m
            "#]],
        );
    }

    #[test]
    fn incident_spanning_the_whole_window() {
        // Down from 10/02 to 20/03: all 672 h down, 0 / 672 = 0 %; ended after the period, no TTR.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[outage(
                1,
                "server",
                datetime!(2025-02-10 00:00 +7),
                Some(datetime!(2025-03-20 00:00 +7)),
            )],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 672h00m, availability 0.000000%, incidents 1, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn open_incident_counts_until_now() {
        // Judged on 01/03 00:00: observed 15/02 to 01/03 = 14 days = 336 h.
        // Open since 28/02 18:00: 6 h down until now, 330 / 336 = 98.214286 %; open, so no TTR.
        check(
            period(),
            ms(datetime!(2025-03-01 00:00 +7)),
            &[unit(1)],
            &[outage(1, "lan", datetime!(2025-02-28 18:00 +7), None)],
            None,
            expect![[r#"
                unit 1: observed 336h00m, down 6h00m, availability 98.214286%, incidents 1, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn open_incident_counts_until_window_end() {
        // Open since 14/03 00:00, judged on 01/04: down until the period's end, 24 h,
        // 648 / 672 = 96.428571 %; no TTR.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[outage(1, "lan", datetime!(2025-03-14 00:00 +7), None)],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 24h00m, availability 96.428571%, incidents 1, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn overlapping_incidents_are_down_once_and_count_twice() {
        // 08:00–12:00 (4 h) and 10:00–16:00 (6 h), of different kinds: union 08:00–16:00 = 8 h,
        // 664 / 672 = 98.809524 %; 2 incidents, TTR mean (4 + 6) / 2 = 5 h, longest 6 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-03-01 08:00 +7),
                    Some(datetime!(2025-03-01 12:00 +7)),
                ),
                outage(
                    1,
                    "wan",
                    datetime!(2025-03-01 10:00 +7),
                    Some(datetime!(2025-03-01 16:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 8h00m, availability 98.809524%, incidents 2, recovered 2, time to recover mean 5h00m longest 6h00m
            "#]],
        );
        // 08:00–18:00 (10 h) with 09:00–10:00 (1 h) inside it: union 10 h, 662 / 672 = 98.511905 %;
        // TTR mean (10 + 1) / 2 = 5.5 h = 5 h 30 min, longest 10 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-03-02 08:00 +7),
                    Some(datetime!(2025-03-02 18:00 +7)),
                ),
                outage(
                    1,
                    "host",
                    datetime!(2025-03-02 09:00 +7),
                    Some(datetime!(2025-03-02 10:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 10h00m, availability 98.511905%, incidents 2, recovered 2, time to recover mean 5h30m longest 10h00m
            "#]],
        );
    }

    #[test]
    fn adjacent_incidents() {
        // 08:00–10:00 (2 h) then 10:00–11:00 (1 h): 3 h down, 669 / 672 = 99.553571 %;
        // TTR mean (2 + 1) / 2 = 1.5 h = 1 h 30 min, longest 2 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-03-01 08:00 +7),
                    Some(datetime!(2025-03-01 10:00 +7)),
                ),
                outage(
                    1,
                    "server",
                    datetime!(2025-03-01 10:00 +7),
                    Some(datetime!(2025-03-01 11:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 3h00m, availability 99.553571%, incidents 2, recovered 2, time to recover mean 1h30m longest 2h00m
            "#]],
        );
    }

    #[test]
    fn incidents_touching_the_window_edges() {
        // Ending exactly at 15/02 00:00: belongs to the period before, not counted.
        // Starting exactly at 15/03 00:00: belongs to the next period, not counted.
        // 14/03 23:00 to 15/03 00:00: inside, 1 h down, 671 / 672 = 99.851190 %, and it ended
        // at the period's end, which counts as ending in it: TTR 1 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[
                outage(
                    1,
                    "wan",
                    datetime!(2025-02-14 20:00 +7),
                    Some(datetime!(2025-02-15 00:00 +7)),
                ),
                outage(
                    1,
                    "wan",
                    datetime!(2025-03-15 00:00 +7),
                    Some(datetime!(2025-03-15 01:00 +7)),
                ),
                outage(
                    1,
                    "wan",
                    datetime!(2025-03-14 23:00 +7),
                    Some(datetime!(2025-03-15 00:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 1h00m, availability 99.851190%, incidents 1, recovered 1, time to recover mean 1h00m longest 1h00m
            "#]],
        );
    }

    #[test]
    fn unit_created_during_the_window() {
        // Valid from 01/03 (00:00 +07:00): observed 01/03 to 15/03 = 14 days = 336 h.
        // 20/02 08:00–10:00 was before the unit existed: not counted.
        // 28/02 20:00 to 01/03 02:00: 2 h of it after creation, 334 / 336 = 99.404762 %;
        // TTR is its full 6 h.
        check(
            period(),
            after_period(),
            &[UnitSpan::from_days(1, Some(date!(2025 - 03 - 01)), None)],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-02-20 08:00 +7),
                    Some(datetime!(2025-02-20 10:00 +7)),
                ),
                outage(
                    1,
                    "server",
                    datetime!(2025-02-28 20:00 +7),
                    Some(datetime!(2025-03-01 02:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 336h00m, down 2h00m, availability 99.404762%, incidents 1, recovered 1, time to recover mean 6h00m longest 6h00m
            "#]],
        );
    }

    #[test]
    fn unit_merged_away_during_the_window_and_its_successor() {
        // Unit 1's last day is 28/02, so it ends at 01/03 00:00 +07:00: observed 15/02 to 01/03 =
        // 14 days = 336 h. Unit 2 takes over from 01/03: observed 01/03 to 15/03 = 336 h.
        // Unit 1, 28/02 23:00 to 01/03 01:00: 1 h before its end, 335 / 336 = 99.702381 %; it
        // ended after the unit did, so no TTR. Its 05/03 incident (an agent not yet moved) is after
        // its end: not counted.
        // Unit 2, 10/03 08:00–09:00: 1 h, 335 / 336 = 99.702381 %, TTR 1 h.
        // Combined: observed 336 + 336 = 672 h, down 1 + 1 = 2 h, 670 / 672 = 99.702381 %;
        // 2 incidents, 1 recovered, TTR 1 h.
        check(
            period(),
            after_period(),
            &[
                UnitSpan::from_days(1, None, Some(date!(2025 - 02 - 28))),
                UnitSpan::from_days(2, Some(date!(2025 - 03 - 01)), None),
            ],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-02-28 23:00 +7),
                    Some(datetime!(2025-03-01 01:00 +7)),
                ),
                outage(
                    1,
                    "server",
                    datetime!(2025-03-05 08:00 +7),
                    Some(datetime!(2025-03-05 09:00 +7)),
                ),
                outage(
                    2,
                    "server",
                    datetime!(2025-03-10 08:00 +7),
                    Some(datetime!(2025-03-10 09:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 336h00m, down 1h00m, availability 99.702381%, incidents 1, recovered 0, time to recover none
                unit 2: observed 336h00m, down 1h00m, availability 99.702381%, incidents 1, recovered 1, time to recover mean 1h00m longest 1h00m
                combined: observed 672h00m, down 2h00m, availability 99.702381%, incidents 2, recovered 1, time to recover mean 1h00m longest 1h00m
            "#]],
        );
    }

    #[test]
    fn nothing_observed_means_no_availability() {
        let outages = [outage(
            1,
            "server",
            datetime!(2025-03-01 08:00 +7),
            Some(datetime!(2025-03-01 10:00 +7)),
        )];
        // Ended on 31/01, before the period: its incidents on 01/03 (a stale agent) do not count.
        check(
            period(),
            after_period(),
            &[UnitSpan::from_days(1, None, Some(date!(2025 - 01 - 31)))],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 0h00m, down 0h00m, availability none, incidents 0, recovered 0, time to recover none
            "#]],
        );
        // Created on 01/04, after the period.
        check(
            period(),
            after_period(),
            &[UnitSpan::from_days(1, Some(date!(2025 - 04 - 01)), None)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 0h00m, down 0h00m, availability none, incidents 0, recovered 0, time to recover none
            "#]],
        );
        // Judged on 01/02, before the period began.
        check(
            period(),
            ms(datetime!(2025-02-01 00:00 +7)),
            &[unit(1)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 0h00m, down 0h00m, availability none, incidents 0, recovered 0, time to recover none
            "#]],
        );
        // A window ending before it starts is empty.
        check(
            Window {
                start: period().end,
                end: period().start,
            },
            after_period(),
            &[unit(1)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 0h00m, down 0h00m, availability none, incidents 0, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn window_partly_in_the_future() {
        // Judged on 10/03 12:00: observed 15/02 00:00 to 10/03 12:00 = 23 days 12 h = 564 h.
        // 09/03 00:00–01:00: 1 h down, 563 / 564 = 99.822695 %, TTR 1 h.
        // 12/03 (after now, from an agent with a fast clock): not counted.
        check(
            period(),
            ms(datetime!(2025-03-10 12:00 +7)),
            &[unit(1)],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-03-09 00:00 +7),
                    Some(datetime!(2025-03-09 01:00 +7)),
                ),
                outage(
                    1,
                    "server",
                    datetime!(2025-03-12 08:00 +7),
                    Some(datetime!(2025-03-12 09:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 564h00m, down 1h00m, availability 99.822695%, incidents 1, recovered 1, time to recover mean 1h00m longest 1h00m
            "#]],
        );
    }

    #[test]
    fn kind_filter() {
        let outages = [
            outage(
                1,
                "server",
                datetime!(2025-03-01 08:00 +7),
                Some(datetime!(2025-03-01 10:00 +7)),
            ),
            outage(
                1,
                "wan",
                datetime!(2025-03-02 08:00 +7),
                Some(datetime!(2025-03-02 11:00 +7)),
            ),
        ];
        // All kinds: 2 h + 3 h = 5 h, 667 / 672 = 99.255952 %; TTR mean 2.5 h, longest 3 h.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &outages,
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 5h00m, availability 99.255952%, incidents 2, recovered 2, time to recover mean 2h30m longest 3h00m
            "#]],
        );
        // WAN only: 3 h, 669 / 672 = 99.553571 %.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &outages,
            Some("wan"),
            expect![[r#"
                unit 1: observed 672h00m, down 3h00m, availability 99.553571%, incidents 1, recovered 1, time to recover mean 3h00m longest 3h00m
            "#]],
        );
        // Servers only: 2 h, 670 / 672 = 99.702381 %.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &outages,
            Some("server"),
            expect![[r#"
                unit 1: observed 672h00m, down 2h00m, availability 99.702381%, incidents 1, recovered 1, time to recover mean 2h00m longest 2h00m
            "#]],
        );
        // A kind with no incident: 100 %.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &outages,
            Some("security"),
            expect![[r#"
                unit 1: observed 672h00m, down 0h00m, availability 100.000000%, incidents 0, recovered 0, time to recover none
            "#]],
        );
    }

    #[test]
    fn combine_weights_by_observed_time_and_recomputes_the_mean() {
        // Unit 1, the whole 672 h: 01/03 00:00–12:00 = 12 h, 660 / 672 = 98.214286 %, TTR 12 h.
        // Unit 2, created 08/03: 08/03 to 15/03 = 7 days = 168 h; 4 h + 8 h = 12 h down,
        // 156 / 168 = 92.857143 %, TTR mean (4 + 8) / 2 = 6 h, longest 8 h.
        // Combined: (672 + 168 − 24) / (672 + 168) = 816 / 840 = 97.142857 % (the plain mean of
        // the two, 95.535714 %, would overweight unit 2's week); TTR mean (12 + 4 + 8) / 3 = 8 h
        // (not the mean of means, 9 h); longest 12 h.
        check(
            period(),
            after_period(),
            &[
                unit(1),
                UnitSpan::from_days(2, Some(date!(2025 - 03 - 08)), None),
            ],
            &[
                outage(
                    1,
                    "server",
                    datetime!(2025-03-01 00:00 +7),
                    Some(datetime!(2025-03-01 12:00 +7)),
                ),
                outage(
                    2,
                    "wan",
                    datetime!(2025-03-10 08:00 +7),
                    Some(datetime!(2025-03-10 12:00 +7)),
                ),
                outage(
                    2,
                    "wan",
                    datetime!(2025-03-11 08:00 +7),
                    Some(datetime!(2025-03-11 16:00 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 12h00m, availability 98.214286%, incidents 1, recovered 1, time to recover mean 12h00m longest 12h00m
                unit 2: observed 168h00m, down 12h00m, availability 92.857143%, incidents 2, recovered 2, time to recover mean 6h00m longest 8h00m
                combined: observed 840h00m, down 24h00m, availability 97.142857%, incidents 3, recovered 3, time to recover mean 8h00m longest 12h00m
            "#]],
        );
    }

    #[test]
    fn zero_length_and_backwards_incidents() {
        // An end before its start (bad data) is a zero-length incident at its start: it counts,
        // with no down time and a TTR of 0. A zero-length incident exactly at the window's start
        // counts in this window (it started in it). 10:00:00.000 to 10:00:00.001 is 1 ms down.
        // Down 1 ms, so availability 1 − 1 / 2 419 200 000 rounds to 100.000000 %; 3 incidents;
        // TTR mean (0 + 0 + 1) / 3 = 0.33 ms, rounded down to 0; longest 1 ms.
        check(
            period(),
            after_period(),
            &[unit(1)],
            &[
                outage(
                    1,
                    "other",
                    datetime!(2025-03-01 10:00 +7),
                    Some(datetime!(2025-03-01 09:00 +7)),
                ),
                outage(
                    1,
                    "other",
                    datetime!(2025-02-15 00:00 +7),
                    Some(datetime!(2025-02-15 00:00 +7)),
                ),
                outage(
                    1,
                    "other",
                    datetime!(2025-03-02 10:00:00.000 +7),
                    Some(datetime!(2025-03-02 10:00:00.001 +7)),
                ),
            ],
            None,
            expect![[r#"
                unit 1: observed 672h00m, down 0h00m00.001s, availability 100.000000%, incidents 3, recovered 3, time to recover mean 0h00m longest 0h00m00.001s
            "#]],
        );
    }
}
