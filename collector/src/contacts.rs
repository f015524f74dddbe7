//! Contacts as files: the CSV import format of the people notices go to (issue 5).
//!
//! Header, exactly: `unit_code,name,role,position,phone,email,webhook`, optionally followed by
//! `digest` (`yes` to receive a daily summary of the incidents the contact may see). `role` is one of
//! `leadership`, `it_officer`, `so_on_duty`, `so_leadership`; `email` and `webhook` (a webhook
//! name from `[notify]`) may be empty, but not both. A file with any bad row is refused whole, with
//! every problem listed by line, like the units file.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};

use crate::notify::rules::ROLES;
use crate::store::ContactRecord;

/// The header a contacts file must have.
pub const HEADER: [&str; 7] = [
    "unit_code",
    "name",
    "role",
    "position",
    "phone",
    "email",
    "webhook",
];

/// Reads and checks a contacts file.
///
/// # Errors
///
/// When the file cannot be read, its header is wrong, or any row is bad.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<ContactRecord>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_csv(&bytes).with_context(|| format!("in {}", path.display()))
}

/// Parses contacts CSV text; see [`read_csv`].
///
/// # Errors
///
/// As [`read_csv`].
pub fn parse_csv(bytes: &[u8]) -> anyhow::Result<Vec<ContactRecord>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = reader.headers().context("reading the header row")?.clone();
    let with_digest = header.len() == HEADER.len() + 1
        && header.get(HEADER.len()).map(str::trim) == Some("digest");
    if header.iter().take(HEADER.len()).map(str::trim).ne(HEADER)
        || (header.len() != HEADER.len() && !with_digest)
    {
        bail!(
            "the header row must be exactly {:?}, optionally followed by ,digest; found {:?}",
            HEADER.join(","),
            header.iter().collect::<Vec<_>>().join(",")
        );
    }
    let mut problems = Vec::new();
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    for (index, row) in reader.records().enumerate() {
        let line = index + 2;
        let row = match row {
            Ok(row) => row,
            Err(err) => {
                problems.push(format!("line {line}: {err}"));
                continue;
            }
        };
        let field = |i: usize| row.get(i).map(str::trim).unwrap_or_default().to_owned();
        let optional = |i: usize| Some(field(i)).filter(|text| !text.is_empty());
        let record = ContactRecord {
            unit_code: field(0),
            name: field(1),
            role: field(2),
            position: field(3),
            phone: field(4),
            email: optional(5),
            webhook: optional(6),
            digest: with_digest
                && matches!(
                    field(7).to_lowercase().as_str(),
                    "yes" | "có" | "1" | "true"
                ),
        };
        let problem = if record.unit_code.is_empty() || record.name.is_empty() {
            Some("unit_code and name must not be empty".to_owned())
        } else if !ROLES.contains(&record.role.as_str()) {
            Some(format!(
                "role {:?} must be one of {}",
                record.role,
                ROLES.join(", ")
            ))
        } else if record.email.is_none() && record.webhook.is_none() {
            Some(format!(
                "{} has neither an email nor a webhook",
                record.name
            ))
        } else if record
            .email
            .as_deref()
            .is_some_and(|email| email.parse::<lettre::Address>().is_err())
        {
            Some(format!(
                "{:?} is not an email address",
                record.email.as_deref().unwrap_or_default()
            ))
        } else if !seen.insert((
            record.unit_code.clone(),
            record.name.clone(),
            record.role.clone(),
        )) {
            Some(format!(
                "{} appears twice with role {}",
                record.name, record.role
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => problems.push(format!("line {line}: {problem}")),
            None => records.push(record),
        }
        if problems.len() >= 20 {
            problems.push("… stopping after 20 problems".to_owned());
            break;
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was imported; fix these rows first:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "unit_code,name,role,position,phone,email,webhook\n";

    #[test]
    fn good_rows_are_read_and_bad_files_refused_whole() {
        let csv = format!(
            "{HEAD}663,Nguyễn Văn An,it_officer,Cán bộ chuyên trách CNTT,0912 345 678,an.nv@dakmil.gov.vn,\n\
             67.S.TTTT,Trực ứng cứu,so_on_duty,,,,nhom-truc\n"
        );
        let records = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].webhook.as_deref(), Some("nhom-truc"));
        let bad = format!(
            "{HEAD}663,A,boss,,,a@b.vn,\n663,B,leadership,,,,\n663,C,leadership,,,not-an-address,\n"
        );
        let err = format!("{:#}", parse_csv(bad.as_bytes()).unwrap_err());
        for expected in [
            "line 2: role \"boss\" must be one of",
            "line 3: B has neither an email nor a webhook",
            "line 4: \"not-an-address\" is not an email address",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
        let digest = "unit_code,name,role,position,phone,email,webhook,digest\n67.S.TTTT,D,so_leadership,,,d@b.vn,,yes\n";
        assert!(parse_csv(digest.as_bytes()).unwrap()[0].digest);
        assert!(!records[0].digest);
        assert!(format!("{:#}", parse_csv(b"name,email\n").unwrap_err())
            .contains("the header row must be exactly"));
    }
}
