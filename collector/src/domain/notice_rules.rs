//! Who is told of an incident, and when (issue 5, items 2 and 3). Pure: the store passes the
//! incident, the rules, the contacts and the notices already planned; [`plan`] says which notices
//! to add. Planning again with the same inputs adds nothing, and the database's unique key on
//! (incident, contact, channel, kind, step) makes a notice exist once whoever plans it.
//!
//! # Rules
//!
//! - An incident is announced only when it is not folded under another (`parent_id`), is still
//!   open, and has lasted the grace period since the collector learnt of it: a flap is never
//!   announced, and a grouped outage is announced once, by its top incident.
//! - A security incident is the exception: QĐ 02/2017 Điều 12.2 asks for a prompt report of any
//!   breach of information security, so once the grace period has passed it is announced even
//!   when it was already resolved or closed (a defacement removed in 20 minutes is still a
//!   defacement); the opening, resolution and closing notices then follow each other in order.
//! - A rule matches an incident when the incident's unit is the rule's unit or below it (no unit:
//!   every unit), its kind is listed (or the rule lists none), and its severity is at least the
//!   rule's. Its role says who: `leadership` and `it_officer` are the contacts of that role of the
//!   incident's unit, or of the nearest unit above that has some; `so_on_duty` and
//!   `so_leadership` are every such contact of the provincial IT authority (the Sở), and `police`
//!   every contact of the provincial police (Công an tỉnh, which oversees information security
//!   since 2025), wherever they are filed.
//! - A rule with no delay gives the opening notice; one with a delay an escalation once the
//!   incident has been open that long (from its start), unless someone has acknowledged it
//!   (from the incident page or the link in a notice): then it is being handled, and nobody
//!   higher up is woken.
//! - Every `reminder_every` of the incident's life, those already told get a reminder (only the
//!   latest one is owed; missed ones are not sent in a burst).
//! - When the incident ends, everyone told of it gets the resolution notice; when an officer
//!   closes it, the closing report.
//! - A contact is reached on each channel it has that the collector has set up: email, webhook.
//! - While a maintenance window covers an incident (`held_until`), nobody is told of it: no
//!   opening, escalation or reminder; the resolution and closing notices to those already told
//!   still go. After the window, an incident still open is announced once, its escalations and
//!   reminders counting from the window's end (`counted_from`); one that ended inside the window
//!   is never announced.

use std::collections::BTreeSet;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    /// The first notice, after the grace period (Biểu mẫu 03 fields).
    Opening,
    /// Still open after an escalation delay; told to people higher up.
    Escalation,
    /// Still open, to those already told.
    Reminder,
    /// Ended, with its duration, to everyone told of the opening.
    Resolution,
    /// Closed by an officer with the closing report's fields (Biểu mẫu 04).
    Closing,
    /// A sample an administrator sends to check the setup.
    Test,
}

impl NoticeKind {
    /// The name stored in `notices.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Opening => "opening",
            NoticeKind::Escalation => "escalation",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Resolution => "resolution",
            NoticeKind::Closing => "closing",
            NoticeKind::Test => "test",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<NoticeKind> {
        [
            NoticeKind::Opening,
            NoticeKind::Escalation,
            NoticeKind::Reminder,
            NoticeKind::Resolution,
            NoticeKind::Closing,
            NoticeKind::Test,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// Default rules, used while none are stored: the unit's IT officer is told of everything, its
/// leadership of high and critical incidents, the Sở's on-duty officer after 30 minutes and the
/// Sở's leadership after 4 hours; security incidents reach the Sở's on-duty officer at once (after
/// the grace period only), and the police contacts, where any are filed, when high or critical.
pub fn defaults() -> Vec<Rule> {
    vec![
        Rule {
            unit_id: None,
            kinds: vec!["security".into()],
            min_severity: 0,
            role: "so_on_duty".into(),
            after_ms: 0,
        },
        Rule {
            unit_id: None,
            kinds: vec!["security".into()],
            min_severity: severity_rank("high"),
            role: "police".into(),
            after_ms: 0,
        },
        Rule {
            unit_id: None,
            kinds: Vec::new(),
            min_severity: 0,
            role: "it_officer".into(),
            after_ms: 0,
        },
        Rule {
            unit_id: None,
            kinds: Vec::new(),
            min_severity: severity_rank("high"),
            role: "leadership".into(),
            after_ms: 0,
        },
        Rule {
            unit_id: None,
            kinds: Vec::new(),
            min_severity: severity_rank("medium"),
            role: "so_on_duty".into(),
            after_ms: 30 * 60_000,
        },
        Rule {
            unit_id: None,
            kinds: Vec::new(),
            min_severity: severity_rank("high"),
            role: "so_leadership".into(),
            after_ms: 4 * 3_600_000,
        },
    ]
}

/// The roles a contact may have.
pub const ROLES: &[&str] = &[
    "leadership",
    "it_officer",
    "so_on_duty",
    "so_leadership",
    "police",
];

/// Whether contacts of `role` are reached wherever they are filed (the Sở's and the police's),
/// rather than by the incident's unit and the units above it.
pub fn province_wide(role: &str) -> bool {
    role.starts_with("so_") || role == "police"
}

/// Orders severities: low 0 … critical 3.
pub fn severity_rank(severity: &str) -> u8 {
    match severity {
        "medium" => 1,
        "high" => 2,
        "critical" => 3,
        _ => 0,
    }
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Incidents of this unit and below; none: every unit.
    pub unit_id: Option<i64>,
    /// Kinds it covers; empty: every kind.
    pub kinds: Vec<String>,
    /// Least severity rank.
    pub min_severity: u8,
    /// Who: `leadership`, `it_officer`, `so_on_duty`, `so_leadership`.
    pub role: String,
    /// 0: the opening notice; more: an escalation after that long open.
    pub after_ms: i64,
}

/// A contact with its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Id.
    pub id: i64,
    /// Unit.
    pub unit_id: i64,
    /// Role.
    pub role: String,
    /// Channels it is reached on, set up in the collector: `email`, `webhook:<name>`.
    pub channels: Vec<String>,
}

/// The incident as planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The incident's unit and the units above it, nearest first.
    pub unit_chain: Vec<i64>,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// `open`, `acknowledged`, `resolved` or `closed`.
    pub state: String,
    /// Whether it is folded under another incident.
    pub folded: bool,
    /// Its start, Unix ms.
    pub started_at: i64,
    /// When the collector learnt of it, Unix ms.
    pub created_at: i64,
    /// Whether it is one agent's silence, which an outage inferred a little later may explain.
    pub silent_agent: bool,
    /// A maintenance window covers it now: no opening, escalation or reminder before this.
    pub held_until: Option<i64>,
    /// What escalations and reminders count from: its start, or the end of the maintenance
    /// window it started in (`domain::maintenance::hold`).
    pub counted_from: i64,
}

/// A notice planned or sent: (contact, channel, kind, step).
pub type NoticeKey = (i64, String, NoticeKind, i64);

/// Timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Grace period, ms.
    pub grace_ms: i64,
    /// Reminder interval, ms; 0 for none.
    pub reminder_ms: i64,
    /// Extra wait for one agent's silence: the inference's gather time, so that when a whole
    /// unit or district goes dark, its agents are folded under the outage before anyone is told.
    pub silent_extra_ms: i64,
}

/// The notices to add for `subject` at `now`, given those it already has.
pub fn plan(
    subject: &Subject,
    rules: &[Rule],
    contacts: &[Contact],
    existing: &BTreeSet<NoticeKey>,
    timing: Timing,
    now: i64,
) -> Vec<NoticeKey> {
    let mut wanted: BTreeSet<NoticeKey> = BTreeSet::new();
    let open = matches!(subject.state.as_str(), "open" | "acknowledged");
    let told: BTreeSet<(i64, String)> = existing
        .iter()
        .filter(|(_, _, kind, _)| matches!(kind, NoticeKind::Opening | NoticeKind::Escalation))
        .map(|(contact, channel, _, _)| (*contact, channel.clone()))
        .collect();
    let grace = timing.grace_ms
        + if subject.silent_agent {
            timing.silent_extra_ms
        } else {
            0
        };
    let past_grace = now >= subject.created_at + grace;
    // A security incident is reported even when it ended within the grace period (Điều 12.2):
    // once, by the opening rules, and only if nobody was told while it was open.
    let late_security = !open && subject.kind == "security" && told.is_empty();
    let held = subject.held_until.is_some_and(|until| now < until);
    if !subject.folded && past_grace && !held && (open || late_security) {
        for rule in rules.iter().filter(|rule| matches(rule, subject)) {
            if (!open || subject.state == "acknowledged") && rule.after_ms != 0 {
                continue;
            }
            let due = rule.after_ms == 0 || now >= subject.counted_from + rule.after_ms;
            if !due {
                continue;
            }
            let (kind, step) = if rule.after_ms == 0 {
                (NoticeKind::Opening, 0)
            } else {
                (NoticeKind::Escalation, rule.after_ms)
            };
            for contact in recipients(&rule.role, subject, contacts) {
                for channel in &contact.channels {
                    // Someone told at the opening is not told again by an escalation.
                    if kind == NoticeKind::Escalation
                        && told.contains(&(contact.id, channel.clone()))
                    {
                        continue;
                    }
                    wanted.insert((contact.id, channel.clone(), kind, step));
                }
            }
        }
        if timing.reminder_ms > 0 {
            let n = (now - subject.counted_from) / timing.reminder_ms;
            if n >= 1 {
                for (contact, channel) in &told {
                    wanted.insert((*contact, channel.clone(), NoticeKind::Reminder, n));
                }
            }
        }
    }
    if !open {
        let told_now: BTreeSet<(i64, String)> = wanted
            .iter()
            .map(|(contact, channel, _, _)| (*contact, channel.clone()))
            .chain(told)
            .collect();
        for (contact, channel) in &told_now {
            wanted.insert((*contact, channel.clone(), NoticeKind::Resolution, 0));
            if subject.state == "closed" {
                wanted.insert((*contact, channel.clone(), NoticeKind::Closing, 0));
            }
        }
    }
    wanted.difference(existing).cloned().collect()
}

fn matches(rule: &Rule, subject: &Subject) -> bool {
    rule.unit_id
        .is_none_or(|unit| subject.unit_chain.contains(&unit))
        && (rule.kinds.is_empty() || rule.kinds.contains(&subject.kind))
        && severity_rank(&subject.severity) >= rule.min_severity
}

fn recipients<'a>(role: &str, subject: &Subject, contacts: &'a [Contact]) -> Vec<&'a Contact> {
    let of_role = contacts.iter().filter(|contact| contact.role == role);
    if province_wide(role) {
        return of_role.collect();
    }
    for unit in &subject.unit_chain {
        let here: Vec<&Contact> = of_role
            .clone()
            .filter(|contact| contact.unit_id == *unit)
            .collect();
        if !here.is_empty() {
            return here;
        }
    }
    Vec::new()
}

/// A stored rule as imported: the unit by code, the delay as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    /// Unit code; none: every unit.
    pub unit_code: Option<String>,
    /// Kinds, comma-separated, or `*`.
    pub kinds: String,
    /// Least severity.
    pub min_severity: String,
    /// Role told.
    pub role: String,
    /// Delay, ms: 0 for the opening notice.
    pub after_ms: i64,
}

/// The header a rules file must have.
pub const RULES_HEADER: [&str; 5] = ["unit_code", "kinds", "min_severity", "role", "after"];

/// Parses a rules file (CSV, header [`RULES_HEADER`]; `kinds` separated by `;` or `*`; `after`
/// a duration like `0s`, `30m`, `4h`). A file with any bad row is refused whole.
///
/// # Errors
///
/// When the header or any row is bad; every problem is listed by line.
pub fn parse_rules_csv(bytes: &[u8]) -> anyhow::Result<Vec<RuleRecord>> {
    let kinds_known = crate::domain::incident::INCIDENT_KINDS;
    crate::domain::csv_import::parse(
        bytes,
        |names| crate::domain::csv_import::fixed_header(names, &RULES_HEADER, None),
        |_, row| {
            let kinds = row.field(1);
            let bad_kind = kinds
                .split(';')
                .map(str::trim)
                .find(|kind| !kind.is_empty() && *kind != "*" && !kinds_known.contains(kind));
            let min_severity = if row.field(2).is_empty() {
                "low".to_owned()
            } else {
                row.field(2)
            };
            let after = humantime::parse_duration(&row.field(4));
            if let Some(kind) = bad_kind {
                return Err(format!(
                    "kind {kind:?} must be one of {}",
                    kinds_known.join(", ")
                ));
            }
            if !["low", "medium", "high", "critical"].contains(&min_severity.as_str()) {
                return Err(format!(
                    "min_severity {min_severity:?} must be low, medium, high or critical"
                ));
            }
            if !ROLES.contains(&row.field(3).as_str()) {
                return Err(format!(
                    "role {:?} must be one of {}",
                    row.field(3),
                    ROLES.join(", ")
                ));
            }
            let after = after.map_err(|err| {
                format!(
                    "after {:?} is not a duration like 0s, 30m or 4h: {err}",
                    row.field(4)
                )
            })?;
            Ok(RuleRecord {
                unit_code: row.optional(0),
                kinds: if kinds.trim().is_empty() {
                    "*".to_owned()
                } else {
                    kinds.replace(';', ",")
                },
                min_severity,
                role: row.field(3),
                after_ms: i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const TIMING: Timing = Timing {
        grace_ms: 2 * MIN,
        reminder_ms: 240 * MIN,
        silent_extra_ms: 90_000,
    };

    /// Commune 11 under district 10 under province 1; contacts: the district's officer and
    /// leader (the commune has none), the Sở's on-duty officer (unit 5) by email and webhook.
    fn contacts() -> Vec<Contact> {
        let contact = |id, unit_id, role: &str, channels: &[&str]| Contact {
            id,
            unit_id,
            role: role.into(),
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        };
        vec![
            contact(1, 10, "it_officer", &["email"]),
            contact(2, 10, "leadership", &["email"]),
            contact(3, 5, "so_on_duty", &["email", "webhook:bot"]),
            contact(4, 5, "so_leadership", &["email"]),
            contact(5, 20, "it_officer", &["email"]),
        ]
    }

    fn subject(severity: &str, state: &str) -> Subject {
        Subject {
            unit_chain: vec![11, 10, 1],
            kind: "wan".into(),
            severity: severity.into(),
            state: state.into(),
            folded: false,
            started_at: 0,
            created_at: 0,
            silent_agent: false,
            held_until: None,
            counted_from: 0,
        }
    }

    #[test]
    fn an_acknowledged_incident_is_not_escalated() {
        let told: BTreeSet<NoticeKey> = run(&subject("high", "open"), &BTreeSet::new(), 3 * MIN)
            .into_iter()
            .collect();
        let acknowledged = subject("high", "acknowledged");
        assert!(run(&acknowledged, &told, 31 * MIN).is_empty());
        assert!(!run(&subject("high", "open"), &told, 31 * MIN).is_empty());
    }

    #[test]
    fn a_window_holds_news_but_never_the_end_of_news() {
        let keys =
            |planned: &[NoticeKey]| -> BTreeSet<NoticeKey> { planned.iter().cloned().collect() };
        // Begun inside a window that ends at 60 min: nothing while it lasts.
        let mut held = subject("high", "open");
        held.held_until = Some(60 * MIN);
        held.counted_from = 60 * MIN;
        assert!(run(&held, &BTreeSet::new(), 30 * MIN).is_empty());
        // Ended inside the window: never announced, not even afterwards.
        let mut ended = held.clone();
        ended.state = "resolved".into();
        assert!(run(&ended, &BTreeSet::new(), 30 * MIN).is_empty());
        ended.held_until = None;
        assert!(run(&ended, &BTreeSet::new(), 90 * MIN).is_empty());
        // Still open at the end: the opening once, escalations counted from the window's end.
        held.held_until = None;
        let opening = run(&held, &BTreeSet::new(), 61 * MIN);
        assert!(
            opening.iter().all(|key| key.2 == NoticeKind::Opening),
            "{opening:?}"
        );
        assert!(!opening.is_empty());
        let told = keys(&opening);
        assert!(run(&held, &told, 62 * MIN).is_empty());
        let escalation = run(&held, &told, 91 * MIN);
        assert_eq!(
            escalation,
            vec![
                (3, "email".into(), NoticeKind::Escalation, 30 * MIN),
                (3, "webhook:bot".into(), NoticeKind::Escalation, 30 * MIN)
            ]
        );
        // Told before a window began: no reminder inside it, the resolution still goes.
        let mut before = subject("high", "open");
        before.held_until = Some(10 * 60 * MIN);
        let told = keys(&run(&subject("high", "open"), &BTreeSet::new(), 3 * MIN));
        assert!(run(&before, &told, 5 * 60 * MIN).is_empty());
        before.state = "resolved".into();
        let resolution = run(&before, &told, 5 * 60 * MIN);
        assert!(!resolution.is_empty());
        assert!(
            resolution.iter().all(|key| key.2 == NoticeKind::Resolution),
            "{resolution:?}"
        );
    }

    fn run(subject: &Subject, existing: &BTreeSet<NoticeKey>, now: i64) -> Vec<NoticeKey> {
        plan(subject, &defaults(), &contacts(), existing, TIMING, now)
    }

    #[test]
    fn rules_files_are_read_or_refused_whole() {
        let good = "unit_code,kinds,min_severity,role,after\n663,wan;lan,high,leadership,0s\n,*,,so_on_duty,30m\n";
        let rules = parse_rules_csv(good.as_bytes()).unwrap();
        assert_eq!(rules[0].kinds, "wan,lan");
        assert_eq!(rules[1].unit_code, None);
        assert_eq!(rules[1].after_ms, 30 * MIN);
        let bad = "unit_code,kinds,min_severity,role,after\n,printer,,it_officer,0s\n,*,urgent,it_officer,0s\n,*,,boss,0s\n,*,,it_officer,soon\n";
        let err = format!("{:#}", parse_rules_csv(bad.as_bytes()).unwrap_err());
        for line in [
            "line 2: kind \"printer\"",
            "line 3: min_severity",
            "line 4: role \"boss\"",
            "line 5: after \"soon\"",
        ] {
            assert!(err.contains(line), "{line} in {err}");
        }
    }

    #[test]
    fn nothing_before_the_grace_period_nor_for_a_folded_incident() {
        assert!(run(&subject("high", "open"), &BTreeSet::new(), MIN).is_empty());
        let mut folded = subject("high", "open");
        folded.folded = true;
        assert!(run(&folded, &BTreeSet::new(), 10 * MIN).is_empty());
        // One agent's silence waits for the gather time too.
        let mut silent = subject("medium", "open");
        silent.silent_agent = true;
        assert!(run(&silent, &BTreeSet::new(), 3 * MIN).is_empty());
        assert_eq!(run(&silent, &BTreeSet::new(), 3 * MIN + 30_000).len(), 1);
        // Resolved within the grace period: nobody was told, nobody hears of the end.
        assert!(run(&subject("high", "resolved"), &BTreeSet::new(), 10 * MIN).is_empty());
    }

    #[test]
    fn the_opening_goes_to_the_nearest_officer_and_leadership_by_severity() {
        let opening = run(&subject("high", "open"), &BTreeSet::new(), 2 * MIN);
        assert_eq!(
            opening,
            vec![
                (1, "email".into(), NoticeKind::Opening, 0),
                (2, "email".into(), NoticeKind::Opening, 0),
            ]
        );
        let low = run(&subject("low", "open"), &BTreeSet::new(), 2 * MIN);
        assert_eq!(low, vec![(1, "email".into(), NoticeKind::Opening, 0)]);
    }

    #[test]
    fn escalations_reminders_and_the_end_follow_the_clock() {
        let mut existing: BTreeSet<NoticeKey> =
            run(&subject("high", "open"), &BTreeSet::new(), 2 * MIN)
                .into_iter()
                .collect();
        assert!(run(&subject("high", "open"), &existing, 29 * MIN).is_empty());
        let escalation = run(&subject("high", "open"), &existing, 30 * MIN);
        assert_eq!(
            escalation,
            vec![
                (3, "email".into(), NoticeKind::Escalation, 30 * MIN),
                (3, "webhook:bot".into(), NoticeKind::Escalation, 30 * MIN),
            ]
        );
        existing.extend(escalation);
        let later = run(&subject("high", "open"), &existing, 241 * MIN);
        let kinds: Vec<(i64, NoticeKind, i64)> =
            later.iter().map(|(c, _, k, s)| (*c, *k, *s)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, NoticeKind::Reminder, 1),
                (2, NoticeKind::Reminder, 1),
                (3, NoticeKind::Reminder, 1),
                (3, NoticeKind::Reminder, 1),
                (4, NoticeKind::Escalation, 240 * MIN),
            ]
        );
        existing.extend(later);
        let end = run(&subject("high", "resolved"), &existing, 300 * MIN);
        assert_eq!(end.len(), 5, "everyone told hears of the end: {end:?}");
        assert!(end
            .iter()
            .all(|(_, _, kind, _)| *kind == NoticeKind::Resolution));
        existing.extend(end);
        assert!(run(&subject("high", "resolved"), &existing, 400 * MIN).is_empty());
        let closing = run(&subject("high", "closed"), &existing, 500 * MIN);
        assert_eq!(closing.len(), 5);
        assert!(closing
            .iter()
            .all(|(_, _, kind, _)| *kind == NoticeKind::Closing));
    }

    #[test]
    fn a_security_incident_reaches_the_so_and_police_at_once_even_when_already_closed() {
        let mut all = contacts();
        all.push(Contact {
            id: 6,
            unit_id: 7,
            role: "police".into(),
            channels: vec!["email".into()],
        });
        let security = |severity: &str, state: &str| Subject {
            kind: "security".into(),
            ..subject(severity, state)
        };
        let plan_at = |subject: &Subject, existing: &BTreeSet<NoticeKey>, now: i64| {
            plan(subject, &defaults(), &all, existing, TIMING, now)
        };
        // Open past the grace period: the officer, leadership, the Sở's on-duty officer on both
        // channels and the police, all at once rather than after 30 minutes.
        let opening = plan_at(&security("critical", "open"), &BTreeSet::new(), 2 * MIN);
        let who: Vec<(i64, NoticeKind)> = opening.iter().map(|(c, _, k, _)| (*c, *k)).collect();
        assert_eq!(
            who,
            vec![
                (1, NoticeKind::Opening),
                (2, NoticeKind::Opening),
                (3, NoticeKind::Opening),
                (3, NoticeKind::Opening),
                (6, NoticeKind::Opening),
            ]
        );
        // A medium one does not go to the police.
        let medium = plan_at(&security("medium", "open"), &BTreeSet::new(), 2 * MIN);
        assert!(medium.iter().all(|(c, _, _, _)| *c != 6), "{medium:?}");
        // Before the grace period, nothing.
        assert!(plan_at(&security("critical", "closed"), &BTreeSet::new(), MIN).is_empty());
        // Closed within the grace period: announced after it, each contact hearing opening,
        // resolution and closing in that order, and nothing more afterwards.
        let late = plan_at(&security("critical", "closed"), &BTreeSet::new(), 2 * MIN);
        let officer: Vec<NoticeKind> = late
            .iter()
            .filter(|(c, _, _, _)| *c == 3)
            .map(|(_, _, k, _)| *k)
            .collect();
        assert_eq!(
            officer,
            [
                NoticeKind::Opening,
                NoticeKind::Resolution,
                NoticeKind::Closing,
                NoticeKind::Opening,
                NoticeKind::Resolution,
                NoticeKind::Closing,
            ]
        );
        let existing: BTreeSet<NoticeKey> = late.into_iter().collect();
        assert!(plan_at(&security("critical", "closed"), &existing, 300 * MIN).is_empty());
        // No escalation of a closed incident, however late.
        assert!(
            plan_at(&security("critical", "closed"), &BTreeSet::new(), 300 * MIN)
                .iter()
                .all(|(_, _, kind, _)| *kind != NoticeKind::Escalation)
        );
        // Other kinds keep the flap rule.
        assert!(run(&subject("critical", "closed"), &BTreeSet::new(), 2 * MIN).is_empty());
    }
}
