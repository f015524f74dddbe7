//! Contacts as files: the CSV import format of the people notices go to (issues 5 and 17).
//!
//! Header: `unit_code,name,role,position,phone,email,webhook`, optionally followed, in any order,
//! by any of `digest` (`yes` to receive a daily summary of the incidents the contact may see),
//! `zalo_id` (the contact's user id on the province's Zalo bot), `channels` (the channels it
//! chooses among `email`, `webhook`, `zalo`, `sms`, e.g. `email,zalo`; empty: every channel it
//! has an address for) and `quiet_hours` (`22:00-06:00`, Vietnam time: Zalo and SMS notices that
//! are not urgent wait until they end). `role` is one of `leadership`, `it_officer`, `so_on_duty`,
//! `so_leadership`, `police`; a contact needs at least one of `email`, `webhook` (a webhook name
//! from `[notify]`), `zalo_id` and `phone` (SMS). A file without `zalo_id`, `channels` or
//! `quiet_hours` leaves those settings of contacts already stored as they are. A file with any
//! bad row is refused whole, with every problem listed by line, like the units file.

use std::collections::HashSet;
use std::path::Path;

use anyhow::bail;

use crate::domain::channels::{self, QuietHours};
use crate::domain::csv_import;
use crate::domain::notice_rules::ROLES;
use crate::store::{ContactRecord, ContactSettings};

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

/// The columns that may follow [`HEADER`], in any order.
pub const OPTIONAL: [&str; 4] = ["digest", "zalo_id", "channels", "quiet_hours"];

/// Where each of [`OPTIONAL`] is in a file, if it is.
type Columns = [Option<usize>; 4];

fn header(names: &[String]) -> anyhow::Result<Columns> {
    let mut columns: Columns = [None; 4];
    let fixed_ok = names.len() >= HEADER.len() && names.iter().zip(HEADER).all(|(a, b)| a == b);
    let mut extra_ok = fixed_ok;
    for (index, name) in names.iter().enumerate().skip(HEADER.len()) {
        match OPTIONAL.iter().position(|optional| optional == name) {
            Some(at) if columns[at].is_none() => columns[at] = Some(index),
            _ => extra_ok = false,
        }
    }
    if !extra_ok {
        bail!(
            "the header row must be exactly {:?}, optionally followed by any of {} (in any order, each once); found {:?}",
            HEADER.join(","),
            OPTIONAL.join(", "),
            names.join(",")
        );
    }
    Ok(columns)
}

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
    csv_import::parse(bytes, header, |columns, row| {
        let [digest, zalo_id, chosen, quiet_hours] = *columns;
        let field =
            |column: Option<usize>| column.map(|index| row.field(index)).unwrap_or_default();
        let choice = channels::parse_choice(&field(chosen))?;
        let quiet = QuietHours::parse(&field(quiet_hours))?;
        let record = ContactRecord {
            unit_code: row.field(0),
            name: row.field(1),
            role: row.field(2),
            position: row.field(3),
            phone: row.field(4),
            email: row.optional(5),
            webhook: row.optional(6),
            digest: matches!(
                field(digest).to_lowercase().as_str(),
                "yes" | "có" | "1" | "true"
            ),
            zalo_id: zalo_id.and_then(|index| row.optional(index)),
            channels: choice,
            quiet_hours: quiet,
            given: ContactSettings {
                zalo_id: zalo_id.is_some(),
                channels: chosen.is_some(),
                quiet_hours: quiet_hours.is_some(),
            },
        };
        let reachable = record.email.is_some()
            || record.webhook.is_some()
            || record.zalo_id.is_some()
            || !channels::phone_digits(&record.phone).is_empty();
        let unaddressed = record.channels.as_deref().and_then(|choice| {
            let has = |family: &str| match family {
                "email" => record.email.is_some(),
                "webhook" => record.webhook.is_some(),
                // Without the column, the Zalo id stored stands: it cannot be checked here.
                "zalo" => record.zalo_id.is_some() || !record.given.zalo_id,
                _ => !channels::phone_digits(&record.phone).is_empty(),
            };
            choice
                .split(',')
                .find(|family| !has(family))
                .map(str::to_owned)
        });
        let problem = if record.unit_code.is_empty() || record.name.is_empty() {
            Some("unit_code and name must not be empty".to_owned())
        } else if !ROLES.contains(&record.role.as_str()) {
            Some(format!(
                "role {:?} must be one of {}",
                record.role,
                ROLES.join(", ")
            ))
        } else if !reachable {
            Some(format!(
                "{} has no email, webhook, Zalo id or phone",
                record.name
            ))
        } else if let Some(family) = unaddressed {
            Some(format!(
                "{} chooses channel {family} but has no address for it",
                record.name
            ))
        } else if record
            .zalo_id
            .as_deref()
            .is_some_and(|id| id.contains(char::is_whitespace))
        {
            Some(format!(
                "Zalo id {:?} has spaces",
                record.zalo_id.as_deref().unwrap_or_default()
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
    })
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
            "line 3: B has no email, webhook, Zalo id or phone",
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

    #[test]
    fn zalo_ids_channel_choices_and_quiet_hours_are_read_when_their_columns_are_there() {
        let csv = "unit_code,name,role,position,phone,email,webhook,quiet_hours,zalo_id,channels\n\
             663,An,it_officer,,0912 345 678,an@b.vn,,22:00-06:00,zalo-an,\n\
             663,Bình,leadership,,0987 654 321,binh@b.vn,,,,sms;email\n\
             663,Chi,leadership,,,,,,zalo-chi,\n";
        let records = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(records[0].zalo_id.as_deref(), Some("zalo-an"));
        assert_eq!(records[0].quiet_hours.unwrap().show(), "22:00-06:00");
        assert_eq!(records[0].channels, None);
        assert_eq!(records[1].channels.as_deref(), Some("email,sms"));
        assert_eq!(records[2].zalo_id.as_deref(), Some("zalo-chi"));
        assert_eq!(
            records[0].given,
            ContactSettings {
                zalo_id: true,
                channels: true,
                quiet_hours: true
            }
        );
        let old = parse_csv(
            HEAD.replace('\n', ",digest\n663,D,it_officer,,,d@b.vn,,yes\n")
                .as_bytes(),
        )
        .unwrap();
        assert!(old[0].digest);
        assert_eq!(old[0].given, ContactSettings::default());
        let bad = "unit_code,name,role,position,phone,email,webhook,channels,quiet_hours,zalo_id\n\
                   663,A,it_officer,,,a@b.vn,,sms,,\n\
                   663,B,it_officer,,,b@b.vn,,telegram,,\n\
                   663,C,it_officer,,,c@b.vn,,,22h-6h,\n\
                   663,D,it_officer,,,d@b.vn,,zalo,,\n";
        let err = format!("{:#}", parse_csv(bad.as_bytes()).unwrap_err());
        for expected in [
            "line 2: A chooses channel sms but has no address for it",
            "line 3: channel \"telegram\" must be one of email, webhook, zalo, sms",
            "line 4: quiet hours \"22h-6h\" are not like",
            "line 5: D chooses channel zalo but has no address for it",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
        assert!(format!(
            "{:#}",
            parse_csv(b"unit_code,name,role,position,phone,email,webhook,zalo_id,zalo_id\n")
                .unwrap_err()
        )
        .contains("optionally followed by any of"));
    }
}
