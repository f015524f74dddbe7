//! The registry of IT officers (cán bộ chuyên trách CNTT) and the check against QĐ 02/2017 Điều 4.
//!
//! Import format (CSV, UTF-8, columns by header name, order free): `unit_code`, `full_name`,
//! `degree_level` and `it_degree` are required; `position`, `phone`, `email`, `degree_field`,
//! `english_level`, `certificates`, `decision_number`, `decision_date`, `active_from`, `active_to`
//! and `note` are optional. `degree_level` is `none`, `intermediate` (trung cấp), `college` (cao
//! đẳng), `university` (đại học), `master` or `doctorate`; `it_degree` is `yes`/`no` (có/không):
//! whether the degree is in IT or Tin học. Dates are `YYYY-MM-DD`. A file with any bad row is
//! refused whole, every problem listed by line.
//!
//! The standard (Điều 4.1): a degree in IT, university level or above for departments, districts
//! and public service units, college level or above for communes; English at level B or
//! equivalent. [`gaps`] says, in Vietnamese, what an officer lacks; [`unit_gaps`] what a unit
//! lacks (no officer, or none qualified). Điều 14.1 (the assignment decision is sent to the Sở) is
//! shown beside it, not counted as a qualification.

use std::collections::HashSet;
use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use crate::csv_import;

/// Degree levels, lowest first.
pub const DEGREE_LEVELS: [&str; 6] = [
    "none",
    "intermediate",
    "college",
    "university",
    "master",
    "doctorate",
];

/// English levels that meet "level B or equivalent".
const ENGLISH_B_OR_ABOVE: [&str; 6] = ["B", "B1", "B2", "C", "C1", "C2"];

const REQUIRED_COLUMNS: [&str; 4] = ["unit_code", "full_name", "degree_level", "it_degree"];
const OPTIONAL_COLUMNS: [&str; 11] = [
    "position",
    "phone",
    "email",
    "degree_field",
    "english_level",
    "certificates",
    "decision_number",
    "decision_date",
    "active_from",
    "active_to",
    "note",
];

/// One officer as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OfficerRecord {
    /// Code of the unit the officer serves.
    pub unit_code: String,
    /// Full name.
    pub full_name: String,
    /// Position.
    pub position: String,
    /// Phone.
    pub phone: String,
    /// Email, where reminders go.
    pub email: String,
    /// One of [`DEGREE_LEVELS`].
    pub degree_level: String,
    /// Field of the degree, as written.
    pub degree_field: String,
    /// Whether the degree is in IT.
    pub it_degree: bool,
    /// English level, e.g. `B`, `B1`.
    pub english_level: String,
    /// Certificates, e.g. `CCNA; MCSA`.
    pub certificates: String,
    /// Number of the assignment decision (Điều 14.1).
    pub decision_number: String,
    /// Its date.
    pub decision_date: Option<String>,
    /// First day in the role.
    pub active_from: Option<String>,
    /// Last day in the role.
    pub active_to: Option<String>,
    /// Free text.
    pub note: String,
}

impl OfficerRecord {
    /// Whether the officer is in the role on `date` (`YYYY-MM-DD`).
    pub fn active_on(&self, date: &str) -> bool {
        self.active_from.as_deref().is_none_or(|from| from <= date)
            && self.active_to.as_deref().is_none_or(|to| date <= to)
    }
}

/// Reads and checks an officers file.
///
/// # Errors
///
/// When the file cannot be read, a required column is missing, or any row is bad.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<OfficerRecord>> {
    csv_import::read(path, parse_csv)
}

/// Parses officers CSV text; see [`read_csv`].
///
/// # Errors
///
/// As [`read_csv`].
pub fn parse_csv(bytes: &[u8]) -> anyhow::Result<Vec<OfficerRecord>> {
    let mut seen = HashSet::new();
    csv_import::parse(bytes, check_header, |header, row| {
        let column = |name: &str| header.iter().position(|h| h == name);
        let field = |name: &str| column(name).map(|i| row.field(i)).unwrap_or_default();
        let optional = |name: &str| column(name).and_then(|i| row.optional(i));
        let it_degree = field("it_degree").to_lowercase();
        let record = OfficerRecord {
            unit_code: field("unit_code"),
            full_name: field("full_name"),
            position: field("position"),
            phone: field("phone"),
            email: field("email"),
            degree_level: field("degree_level").to_lowercase(),
            degree_field: field("degree_field"),
            it_degree: matches!(it_degree.as_str(), "yes" | "có" | "1" | "true"),
            english_level: field("english_level").to_uppercase(),
            certificates: field("certificates"),
            decision_number: field("decision_number"),
            decision_date: optional("decision_date"),
            active_from: optional("active_from"),
            active_to: optional("active_to"),
            note: field("note"),
        };
        let mut problems = Vec::new();
        if record.unit_code.is_empty() || record.full_name.is_empty() {
            problems.push("unit_code and full_name must not be empty".to_owned());
        }
        if !DEGREE_LEVELS.contains(&record.degree_level.as_str()) {
            problems.push(format!(
                "degree_level {:?} must be one of {}",
                record.degree_level,
                DEGREE_LEVELS.join(", ")
            ));
        }
        if !matches!(
            it_degree.as_str(),
            "yes" | "no" | "có" | "không" | "1" | "0" | "true" | "false"
        ) {
            problems.push(format!("it_degree {it_degree:?} must be yes or no"));
        }
        if !record.email.is_empty() && record.email.parse::<lettre::Address>().is_err() {
            problems.push(format!("{:?} is not an email address", record.email));
        }
        for (name, value) in [
            ("decision_date", &record.decision_date),
            ("active_from", &record.active_from),
            ("active_to", &record.active_to),
        ] {
            if let Some(value) = value {
                if crate::periods::parse_date(value).is_err() {
                    problems.push(format!("{name} {value:?} is not a date like 2026-01-31"));
                }
            }
        }
        if let (Some(from), Some(to)) = (&record.active_from, &record.active_to) {
            if to < from {
                problems.push("active_to is before active_from".to_owned());
            }
        }
        if !seen.insert((record.unit_code.clone(), record.full_name.clone())) {
            problems.push(format!(
                "{} appears twice in {}",
                record.full_name, record.unit_code
            ));
        }
        if problems.is_empty() {
            Ok(record)
        } else {
            Err(problems.join("; "))
        }
    })
}

/// Columns by name: every required one present, none unknown.
fn check_header(names: &[String]) -> anyhow::Result<Vec<String>> {
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|name| !names.iter().any(|h| h == name))
        .collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|h| {
            !REQUIRED_COLUMNS.contains(&h.as_str()) && !OPTIONAL_COLUMNS.contains(&h.as_str())
        })
        .collect();
    if !missing.is_empty() || !unknown.is_empty() {
        bail!(
            "the header row needs {} and may have {}; missing {:?}, unknown {:?}",
            REQUIRED_COLUMNS.join(","),
            OPTIONAL_COLUMNS.join(","),
            missing,
            unknown
        );
    }
    Ok(names.to_vec())
}

fn degree_vi(level: &str) -> &'static str {
    match level {
        "intermediate" => "trung cấp",
        "college" => "cao đẳng",
        "university" => "đại học",
        "master" => "thạc sĩ",
        "doctorate" => "tiến sĩ",
        _ => "chưa qua đào tạo",
    }
}

fn rank(level: &str) -> usize {
    DEGREE_LEVELS
        .iter()
        .position(|known| *known == level)
        .unwrap_or(0)
}

/// What `officer` lacks against Điều 4.1 for a unit of `unit_kind`, each a Vietnamese phrase; empty
/// when qualified.
pub fn gaps(unit_kind: &str, officer: &OfficerRecord) -> Vec<String> {
    let mut gaps = Vec::new();
    let (required, whom) = if unit_kind == "commune" {
        ("college", "cấp xã")
    } else {
        ("university", "sở, ngành, cấp huyện")
    };
    if !officer.it_degree {
        gaps.push("bằng cấp không thuộc chuyên ngành CNTT hoặc Tin học".to_owned());
    }
    if rank(&officer.degree_level) < rank(required) {
        gaps.push(format!(
            "trình độ {} dưới chuẩn {} trở lên đối với {whom}",
            degree_vi(&officer.degree_level),
            degree_vi(required)
        ));
    }
    if officer.english_level.is_empty() {
        gaps.push("chưa có chứng chỉ tiếng Anh trình độ B".to_owned());
    } else if !ENGLISH_B_OR_ABOVE.contains(&officer.english_level.as_str()) {
        gaps.push(format!(
            "tiếng Anh trình độ {} chưa đạt trình độ B",
            officer.english_level
        ));
    }
    gaps
}

/// Why a unit of `unit_kind` has no qualified officer among `officers` (those active on the day
/// asked), or `None` when it has one.
pub fn unit_gaps(unit_kind: &str, officers: &[&OfficerRecord]) -> Option<String> {
    if officers.is_empty() {
        return Some("chưa có cán bộ chuyên trách CNTT".to_owned());
    }
    let mut reasons = Vec::new();
    for officer in officers {
        let gaps = gaps(unit_kind, officer);
        if gaps.is_empty() {
            return None;
        }
        reasons.push(format!("{}: {}", officer.full_name, gaps.join(", ")));
    }
    Some(reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "unit_code,full_name,position,email,degree_level,degree_field,it_degree,english_level,certificates,decision_number,decision_date,active_from,active_to\n";

    #[test]
    fn the_standard_depends_on_the_unit_level() {
        let officer = |level: &str, it: bool, english: &str| OfficerRecord {
            full_name: "Trần Thị Bình".into(),
            degree_level: level.into(),
            it_degree: it,
            english_level: english.into(),
            ..OfficerRecord::default()
        };
        assert!(gaps("department", &officer("university", true, "B")).is_empty());
        assert!(gaps("commune", &officer("college", true, "B1")).is_empty());
        assert_eq!(
            gaps("district", &officer("college", true, "B")),
            ["trình độ cao đẳng dưới chuẩn đại học trở lên đối với sở, ngành, cấp huyện"]
        );
        assert_eq!(
            gaps("commune", &officer("master", false, "A2")),
            [
                "bằng cấp không thuộc chuyên ngành CNTT hoặc Tin học",
                "tiếng Anh trình độ A2 chưa đạt trình độ B"
            ]
        );
        assert_eq!(
            unit_gaps("commune", &[]).unwrap(),
            "chưa có cán bộ chuyên trách CNTT"
        );
        let good = officer("college", true, "B");
        let weak = officer("intermediate", true, "B");
        assert_eq!(unit_gaps("commune", &[&weak, &good]), None);
        assert!(unit_gaps("commune", &[&weak])
            .unwrap()
            .starts_with("Trần Thị Bình: trình độ trung cấp"));
    }

    #[test]
    fn imports_check_every_row_and_refuse_the_file_whole() {
        let good = format!("{HEAD}67.S.TTTT,Nguyễn Văn An,Chuyên viên,an@example.vn,university,Công nghệ thông tin,yes,B1,CCNA,12/QĐ-STTTT,2024-03-01,2024-03-01,\n");
        let records = parse_csv(good.as_bytes()).unwrap();
        assert_eq!(records[0].decision_number, "12/QĐ-STTTT");
        assert!(records[0].it_degree && records[0].active_on("2026-11-23"));
        let bad = format!("{HEAD}67.S.TTTT,Nguyễn Văn An,,an@,phd,,maybe,,,,2024-13-01,,\n");
        let err = format!("{:#}", parse_csv(bad.as_bytes()).unwrap_err());
        for expected in [
            "line 2",
            "degree_level \"phd\"",
            "it_degree \"maybe\"",
            "\"an@\" is not an email",
            "decision_date \"2024-13-01\"",
        ] {
            assert!(err.contains(expected), "{expected} missing from {err}");
        }
        let err = parse_csv(b"unit_code,name\n").unwrap_err().to_string();
        assert!(
            err.contains("missing [\"full_name\", \"degree_level\", \"it_degree\"]"),
            "{err}"
        );
    }
}
