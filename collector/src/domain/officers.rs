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
//! equivalent, which is bậc 2 (A2) of the six-level framework of Thông tư 01/2014/TT-BGDĐT. The
//! levels officers write (old scale A/B/C, framework A1–C2) are mapped to the framework by the data
//! file `collector/data/english-levels.csv` (see the README beside it), not by code.
//! [`gaps`] says, in Vietnamese, what an officer lacks; [`unit_gaps`] what a unit lacks (no
//! officer, or none qualified). Neither ever starts with, changes or repeats an officer's name, so
//! callers may print the name beside the text and adjust the text's first letter (issue 12).
//! Điều 14.1 (the assignment decision is sent to the Sở) is shown beside it, not counted as a
//! qualification.

use std::collections::HashSet;
use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use crate::domain::csv_import;

/// Degree levels, lowest first.
pub const DEGREE_LEVELS: [&str; 6] = [
    "none",
    "intermediate",
    "college",
    "university",
    "master",
    "doctorate",
];

/// The English levels officers write, mapped to the six-level framework; see the README in
/// `collector/data/`.
const ENGLISH_LEVELS: &str = include_str!("../../data/english-levels.csv");

/// "Trình độ B hoặc tương đương" of Điều 4.1: bậc 2 (A2) of the six-level framework.
const ENGLISH_REQUIRED_LEVEL: u8 = 2;

/// The framework level (1 to 6) of an English level as written, e.g. 2 for "B" or "a2"; `None`
/// when the level is not in `english-levels.csv`.
pub fn english_framework_level(written: &str) -> Option<u8> {
    let written = written.trim().to_uppercase();
    ENGLISH_LEVELS.lines().skip(1).find_map(|line| {
        let mut fields = line.split(',');
        let level = fields.next()?;
        let framework = fields.next()?.parse().ok()?;
        (level == written).then_some(framework)
    })
}

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
                if crate::domain::periods::parse_date(value).is_err() {
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
    let english = officer.english_level.trim();
    match english_framework_level(english) {
        _ if english.is_empty() => gaps
            .push("chưa có chứng chỉ tiếng Anh trình độ B (bậc 2/A2) hoặc tương đương".to_owned()),
        Some(level) if level >= ENGLISH_REQUIRED_LEVEL => {}
        Some(level) => gaps.push(format!(
            "tiếng Anh trình độ {english} (bậc {level}) chưa đạt trình độ B (bậc 2/A2) hoặc \
             tương đương"
        )),
        None => gaps.push(format!(
            "tiếng Anh trình độ {english} chưa quy đổi được sang khung năng lực ngoại ngữ 6 bậc \
             (Thông tư 01/2014/TT-BGDĐT), cần kiểm tra lại"
        )),
    }
    gaps
}

/// Why a unit of `unit_kind` has no qualified officer among `officers` (those active on the day
/// asked), or `None` when it has one.
///
/// The text starts with a lower-case word and never with a name, so a caller may print the
/// officer's name before it ("Sở Y tế (cán bộ: Lê Minh Châu): tiếng Anh …") and change its first
/// letter. With one officer it does not name them (the caller shows who); with several it names
/// each, as written, after the opening words.
pub fn unit_gaps(unit_kind: &str, officers: &[&OfficerRecord]) -> Option<String> {
    let mut reasons = Vec::new();
    for officer in officers {
        let gaps = gaps(unit_kind, officer);
        if gaps.is_empty() {
            return None;
        }
        reasons.push((officer.full_name.as_str(), gaps.join(", ")));
    }
    match reasons.as_slice() {
        [] => Some("chưa có cán bộ chuyên trách CNTT".to_owned()),
        [(_, gaps)] => Some(gaps.clone()),
        several => Some(format!(
            "cả {} cán bộ đều chưa đạt chuẩn: {}",
            several.len(),
            several
                .iter()
                .map(|(name, gaps)| format!("{name} – {gaps}"))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "unit_code,full_name,position,email,degree_level,degree_field,it_degree,english_level,certificates,decision_number,decision_date,active_from,active_to\n";

    fn officer(name: &str, level: &str, it: bool, english: &str) -> OfficerRecord {
        OfficerRecord {
            full_name: name.into(),
            degree_level: level.into(),
            it_degree: it,
            english_level: english.into(),
            ..OfficerRecord::default()
        }
    }

    #[test]
    fn the_standard_depends_on_the_unit_level() {
        let officer =
            |level: &str, it: bool, english: &str| officer("Trần Thị Bình", level, it, english);
        assert!(gaps("department", &officer("university", true, "B")).is_empty());
        assert!(gaps("commune", &officer("college", true, "B1")).is_empty());
        assert_eq!(
            gaps("district", &officer("college", true, "B")),
            ["trình độ cao đẳng dưới chuẩn đại học trở lên đối với sở, ngành, cấp huyện"]
        );
        assert_eq!(
            gaps("commune", &officer("master", false, "A1")),
            [
                "bằng cấp không thuộc chuyên ngành CNTT hoặc Tin học",
                "tiếng Anh trình độ A1 (bậc 1) chưa đạt trình độ B (bậc 2/A2) hoặc tương đương"
            ]
        );
        assert_eq!(
            unit_gaps("commune", &[]).unwrap(),
            "chưa có cán bộ chuyên trách CNTT"
        );
        let good = officer("college", true, "B");
        let weak = officer("intermediate", true, "B");
        assert_eq!(unit_gaps("commune", &[&weak, &good]), None);
        assert_eq!(
            unit_gaps("commune", &[&weak]).unwrap(),
            "trình độ trung cấp dưới chuẩn cao đẳng trở lên đối với cấp xã"
        );
    }

    /// Issue 12: "trình độ B" is bậc 2 (A2) and meets Điều 4.1; A and A1 do not.
    #[test]
    fn english_levels_are_read_on_the_six_level_framework() {
        let check = |english: &str, expected: Option<&str>| {
            let found = gaps(
                "department",
                &officer("Lê Minh Châu", "university", true, english),
            );
            assert_eq!(found.first().map(String::as_str), expected, "{english:?}");
        };
        for accepted in ["B", "b", " B ", "A2", "a2", "C", "B1", "B2", "C1", "C2"] {
            check(accepted, None);
        }
        let below = |level: &str, step: u8| {
            format!(
                "tiếng Anh trình độ {level} (bậc {step}) chưa đạt trình độ B (bậc 2/A2) hoặc \
                 tương đương"
            )
        };
        check("A", Some(&below("A", 1)));
        check("A1", Some(&below("A1", 1)));
        check(
            "",
            Some("chưa có chứng chỉ tiếng Anh trình độ B (bậc 2/A2) hoặc tương đương"),
        );
        check(
            "IELTS 6.0",
            Some(
                "tiếng Anh trình độ IELTS 6.0 chưa quy đổi được sang khung năng lực ngoại ngữ 6 \
                 bậc (Thông tư 01/2014/TT-BGDĐT), cần kiểm tra lại",
            ),
        );
        assert_eq!(english_framework_level("C"), Some(3));
    }

    /// Issue 12: a report printed "(cán bộ: Lê Minh Châu): lê Minh Châu: …". The reason never
    /// starts with or repeats a name, and names are kept as written.
    #[test]
    fn unit_gaps_never_lower_case_or_repeat_a_name() {
        let chau = officer("Lê Minh Châu", "university", true, "A");
        let y_bih = officer("Y Bih Niê", "college", true, "B");
        let check = |officers: &[&OfficerRecord], expected: &str| {
            let reason = unit_gaps("department", officers).unwrap();
            assert_eq!(reason, expected);
            assert!(reason.starts_with(char::is_lowercase), "{reason}");
            for officer in officers {
                let name = officer.full_name.as_str();
                assert!(reason.matches(name).count() <= 1, "{reason}");
                assert!(!reason.contains(&name.to_lowercase()), "{reason}");
            }
        };
        check(
            &[&chau],
            "tiếng Anh trình độ A (bậc 1) chưa đạt trình độ B (bậc 2/A2) hoặc tương đương",
        );
        check(
            &[&chau, &y_bih],
            "cả 2 cán bộ đều chưa đạt chuẩn: Lê Minh Châu – tiếng Anh trình độ A (bậc 1) chưa đạt \
             trình độ B (bậc 2/A2) hoặc tương đương; Y Bih Niê – trình độ cao đẳng dưới chuẩn đại \
             học trở lên đối với sở, ngành, cấp huyện",
        );
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
