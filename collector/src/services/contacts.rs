//! Contacts as files: the CSV import format of the people notices go to (issue 5).
//!
//! Header, exactly: `unit_code,name,role,position,phone,email,webhook`, optionally followed by
//! `digest` (`yes` to receive a daily summary of the incidents the contact may see). `role` is one of
//! `leadership`, `it_officer`, `so_on_duty`, `so_leadership`, `police`; `email` and `webhook` (a webhook
//! name from `[notify]`) may be empty, but not both. A file with any bad row is refused whole, with
//! every problem listed by line, like the units file.

use std::collections::HashSet;
use std::path::Path;

use crate::domain::csv_import;
use crate::domain::notice_rules::ROLES;
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
    csv_import::read(path, parse_csv)
}

/// Parses contacts CSV text; see [`read_csv`].
///
/// # Errors
///
/// As [`read_csv`].
pub fn parse_csv(bytes: &[u8]) -> anyhow::Result<Vec<ContactRecord>> {
    let mut seen = HashSet::new();
    csv_import::parse(
        bytes,
        |names| csv_import::fixed_header(names, &HEADER, Some("digest")),
        |with_digest, row| {
            let record = ContactRecord {
                unit_code: row.field(0),
                name: row.field(1),
                role: row.field(2),
                position: row.field(3),
                phone: row.field(4),
                email: row.optional(5),
                webhook: row.optional(6),
                digest: *with_digest
                    && matches!(
                        row.field(7).to_lowercase().as_str(),
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
                Some(problem) => Err(problem),
                None => Ok(record),
            }
        },
    )
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
