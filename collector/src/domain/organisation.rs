//! Who issues the collector's documents: the provincial IT authority, as data with dates.
//!
//! The names on a document (the issuing agency, its governing body, the place of the date line,
//! the document symbol, the signer) changed in 2025: the Sở Thông tin và Truyền thông was merged
//! into the Sở Khoa học và Công nghệ, and the province it served into a new one. So they are
//! never code: the shipped list (`collector/data/organisation.toml`) holds one entry per span of
//! time, true for today by default, and a collector's configuration may replace it with its own
//! `[[organisation]]` entries. A document takes the entry in force on its own date, so a report
//! of 2024 reprinted today still names the body that existed then.
//!
//! Pure domain data: parsed and checked once from configuration, read by the documents, the
//! notices and the report builders.

use anyhow::{bail, Context};
use serde::Deserialize;
use time::{Date, OffsetDateTime};

/// The shipped entries.
const SHIPPED: &str = include_str!("../../data/organisation.toml");

/// Vietnam's time, in which document dates are days.
const VIETNAM: time::UtcOffset = time::macros::offset!(+7);

/// Who signs a document for the organisation (Nghị định 30/2020, Điều 13 and Phụ lục I).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// `KT.` (ký thay) when a deputy signs for the head, `TL.` or `TUQ.` when another person signs
    /// on the head's behalf; none when the head signs.
    #[serde(default)]
    pub authority: Option<String>,
    /// The head's title, uppercase: `GIÁM ĐỐC`.
    pub head_title: String,
    /// The signer's own title when it is not the head's, uppercase: `PHÓ GIÁM ĐỐC`.
    #[serde(default)]
    pub title: Option<String>,
    /// The signer's full name; empty when it is written by hand.
    #[serde(default)]
    pub name: String,
}

impl Signer {
    /// The title lines of the signature block, separated by `\n`: `GIÁM ĐỐC`, or
    /// `KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC` when a deputy signs.
    pub fn title_lines(&self) -> String {
        let head = match &self.authority {
            Some(authority) => format!("{authority} {}", self.head_title),
            None => self.head_title.clone(),
        };
        match &self.title {
            Some(title) if self.authority.is_some() => format!("{head}\n{title}"),
            _ => head,
        }
    }
}

/// The provincial IT authority during one span of time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// First day this entry is in force (inclusive); none for "since always".
    #[serde(default, with = "optional_date")]
    pub valid_from: Option<Date>,
    /// Last day this entry is in force (inclusive); none while it is.
    #[serde(default, with = "optional_date")]
    pub valid_to: Option<Date>,
    /// The issuing agency: `Sở Khoa học và Công nghệ`.
    pub name: String,
    /// Its usual short name in running text: `Sở KH&CN`.
    pub short_name: String,
    /// The governing body in full: `Ủy ban nhân dân tỉnh Lâm Đồng`.
    pub governing_body: String,
    /// The governing body as the letterhead writes it: `UBND tỉnh Lâm Đồng`.
    pub governing_body_short: String,
    /// The province, lowercase type word: `tỉnh Lâm Đồng`.
    pub province: String,
    /// The place name of the date line: `Lâm Đồng`.
    pub place: String,
    /// Postal address; empty when not configured.
    #[serde(default)]
    pub address: String,
    /// Telephone; empty when not configured.
    #[serde(default)]
    pub phone: String,
    /// E-mail; empty when not configured.
    #[serde(default)]
    pub email: String,
    /// The agency's abbreviation in document symbols: `SKHCN` (as in `…/BC-SKHCN`).
    pub symbol: String,
    /// The division that drafts the documents, for the archive line (`Lưu: VT, CNTT.`).
    pub it_division: String,
    /// Who signs.
    pub signer: Signer,
}

impl Organisation {
    /// The governing body line of the letterhead, uppercase: `UBND TỈNH LÂM ĐỒNG`.
    pub fn header_parent(&self) -> String {
        self.governing_body_short.to_uppercase()
    }

    /// The issuing agency line of the letterhead, uppercase: `SỞ KHOA HỌC VÀ CÔNG NGHỆ`.
    pub fn header_agency(&self) -> String {
        self.name.to_uppercase()
    }

    /// The number and symbol of a document of `kind` (`BC` for a report), its number left blank
    /// to be filled in by the clerk: `      /BC-SKHCN`.
    pub fn number(&self, kind: &str) -> String {
        format!("      /{kind}-{}", self.symbol)
    }

    /// The archive line of "Nơi nhận": `Lưu: VT, CNTT.`.
    pub fn archive_line(&self) -> String {
        format!("Lưu: VT, {}.", self.it_division)
    }

    fn in_force_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|from| from <= day) && self.valid_to.is_none_or(|to| day <= to)
    }
}

/// Every entry, ordered by date, covering all time without gaps or overlaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisations {
    entries: Vec<Organisation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    organisation: Vec<Organisation>,
}

impl Default for Organisations {
    fn default() -> Organisations {
        Organisations::shipped()
    }
}

impl Organisations {
    /// The shipped entries (`collector/data/organisation.toml`).
    pub fn shipped() -> Organisations {
        let file: File = toml::from_str(SHIPPED).expect("the shipped organisation file parses");
        Organisations::check(file.organisation).expect("the shipped organisation file is valid")
    }

    /// Checks configured entries: at least one, every text field filled, ordered by date, each
    /// starting the day after the previous one ends, the first open at its start and the last
    /// open at its end, so every day has exactly one entry.
    ///
    /// # Errors
    ///
    /// Names the entry and the problem.
    pub fn check(mut entries: Vec<Organisation>) -> anyhow::Result<Organisations> {
        if entries.is_empty() {
            bail!("organisation: at least one [[organisation]] entry is needed");
        }
        entries.sort_by_key(|entry| entry.valid_from);
        for (index, entry) in entries.iter().enumerate() {
            let at = || format!("organisation entry {} ({})", index + 1, entry.name);
            for (field, value) in [
                ("name", &entry.name),
                ("short_name", &entry.short_name),
                ("governing_body", &entry.governing_body),
                ("governing_body_short", &entry.governing_body_short),
                ("province", &entry.province),
                ("place", &entry.place),
                ("symbol", &entry.symbol),
                ("it_division", &entry.it_division),
                ("signer.head_title", &entry.signer.head_title),
            ] {
                if value.trim().is_empty() {
                    bail!("{}: {field} is empty", at());
                }
            }
            if entry.signer.authority.is_some() != entry.signer.title.is_some() {
                bail!(
                    "{}: signer.authority (such as \"KT.\") and signer.title (such as \"PHÓ GIÁM ĐỐC\") go together",
                    at()
                );
            }
            if let (Some(from), Some(to)) = (entry.valid_from, entry.valid_to) {
                if to < from {
                    bail!("{}: valid_to {to} is before valid_from {from}", at());
                }
            }
            let expected_from = match index {
                0 => None,
                _ => entries[index - 1].valid_to.and_then(Date::next_day),
            };
            if index == 0 && entry.valid_from.is_some() {
                bail!("{}: the first entry must have no valid_from, so every earlier document has a body", at());
            }
            if index > 0 && entry.valid_from != expected_from {
                bail!(
                    "{}: valid_from must be the day after the previous entry's valid_to ({})",
                    at(),
                    expected_from.map_or("none".to_owned(), |day| day.to_string())
                );
            }
            if index + 1 == entries.len() && entry.valid_to.is_some() {
                bail!(
                    "{}: the last entry must have no valid_to, so today's documents have a body",
                    at()
                );
            }
        }
        Ok(Organisations { entries })
    }

    /// Parses `[[organisation]]` entries from TOML text (a whole file).
    ///
    /// # Errors
    ///
    /// When the text is not such a file or the entries are invalid.
    pub fn parse(text: &str) -> anyhow::Result<Organisations> {
        let file: File = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
        Organisations::check(file.organisation).context("checking [[organisation]]")
    }

    /// The entry in force on `day`.
    pub fn at(&self, day: Date) -> &Organisation {
        self.entries
            .iter()
            .find(|entry| entry.in_force_on(day))
            .expect("checked entries cover every day")
    }

    /// The entry in force at `now`, by Vietnam's calendar.
    pub fn current(&self, now: OffsetDateTime) -> &Organisation {
        self.at(now.to_offset(VIETNAM).date())
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[Organisation] {
        &self.entries
    }
}

mod optional_date {
    use serde::{Deserialize, Deserializer};
    use time::Date;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Date>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| {
            crate::domain::periods::parse_date(&text)
                .map_err(|err| serde::de::Error::custom(format!("{err:#}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_shipped_entries_name_the_body_in_force_on_each_day() {
        let organisations = Organisations::shipped();
        let check = |day: Date, name: &str, parent: &str, place: &str| {
            let entry = organisations.at(day);
            assert_eq!(
                (
                    entry.name.as_str(),
                    entry.header_parent(),
                    entry.place.as_str()
                ),
                (name, parent.to_owned(), place),
                "{day}"
            );
        };
        check(
            date!(2024 - 12 - 31),
            "Sở Thông tin và Truyền thông",
            "UBND TỈNH ĐẮK NÔNG",
            "Đắk Nông",
        );
        check(
            date!(2025 - 02 - 28),
            "Sở Thông tin và Truyền thông",
            "UBND TỈNH ĐẮK NÔNG",
            "Đắk Nông",
        );
        check(
            date!(2025 - 03 - 01),
            "Sở Khoa học và Công nghệ",
            "UBND TỈNH ĐẮK NÔNG",
            "Đắk Nông",
        );
        check(
            date!(2025 - 07 - 01),
            "Sở Khoa học và Công nghệ",
            "UBND TỈNH LÂM ĐỒNG",
            "Lâm Đồng",
        );
        check(
            date!(2026 - 12 - 04),
            "Sở Khoa học và Công nghệ",
            "UBND TỈNH LÂM ĐỒNG",
            "Lâm Đồng",
        );
        let today = organisations.at(date!(2026 - 12 - 04));
        assert_eq!(today.header_agency(), "SỞ KHOA HỌC VÀ CÔNG NGHỆ");
        assert_eq!(today.number("BC"), "      /BC-SKHCN");
        assert_eq!(today.archive_line(), "Lưu: VT, CNTT.");
    }

    #[test]
    fn signer_lines_follow_the_authority() {
        let head = Signer {
            authority: None,
            head_title: "GIÁM ĐỐC".into(),
            title: None,
            name: String::new(),
        };
        assert_eq!(head.title_lines(), "GIÁM ĐỐC");
        let deputy = Signer {
            authority: Some("KT.".into()),
            title: Some("PHÓ GIÁM ĐỐC".into()),
            ..head
        };
        assert_eq!(deputy.title_lines(), "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC");
    }

    #[test]
    fn entries_must_cover_every_day_once() {
        let entry = |from: Option<&str>, to: Option<&str>| {
            let mut text = String::from("[[organisation]]\n");
            if let Some(from) = from {
                text += &format!("valid_from = \"{from}\"\n");
            }
            if let Some(to) = to {
                text += &format!("valid_to = \"{to}\"\n");
            }
            text + "name = \"Sở A\"\nshort_name = \"Sở A\"\ngoverning_body = \"Ủy ban nhân dân tỉnh B\"\n\
                     governing_body_short = \"UBND tỉnh B\"\nprovince = \"tỉnh B\"\nplace = \"B\"\n\
                     symbol = \"SA\"\nit_division = \"CNTT\"\nsigner = { head_title = \"GIÁM ĐỐC\" }\n"
        };
        let check = |text: String, expected: Option<&str>| {
            let res = Organisations::parse(&text);
            match expected {
                None => assert!(res.is_ok(), "{res:?}"),
                Some(part) => {
                    let message = format!("{:#}", res.expect_err("refused"));
                    assert!(message.contains(part), "{message}");
                }
            }
        };
        check(entry(None, None), None);
        check(
            entry(None, Some("2025-06-30")) + &entry(Some("2025-07-01"), None),
            None,
        );
        check(
            entry(None, Some("2025-06-30")) + &entry(Some("2025-07-02"), None),
            Some("day after the previous entry's valid_to (2025-07-01)"),
        );
        check(
            entry(Some("2020-01-01"), None),
            Some("first entry must have no valid_from"),
        );
        check(
            entry(None, Some("2025-06-30")),
            Some("last entry must have no valid_to"),
        );
        check(
            entry(None, None).replace(
                "signer = { head_title = \"GIÁM ĐỐC\" }",
                "signer = { head_title = \"GIÁM ĐỐC\", authority = \"KT.\" }",
            ),
            Some("go together"),
        );
        check(
            entry(None, None).replace("place = \"B\"", "place = \" \""),
            Some("place is empty"),
        );
        check(entry(None, None) + "colour = 1\n", Some("unknown field"));
    }
}
