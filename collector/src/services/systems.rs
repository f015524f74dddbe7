//! The register of each unit's information systems and the reporting profile of each unit, as
//! CSV files (issue 12): what an incident report (Thông tư 20/2017 Biểu mẫu 03/04) says about the
//! affected system and about the organisation that reports.
//!
//! Systems, header exactly:
//! `unit_code,code,name,security_level,purpose,operator,governing_body,connection_provider,security_provider,os,services,public_addresses,domains`.
//! `code` is unique across the province (agents' targets and manual incidents name it with
//! `system = "code"`); `security_level` is 1 to 5 (Nghị định 85/2016/NĐ-CP); the rest may be empty.
//!
//! Profiles, header exactly: `unit_code,reporting_name,governing_body,address,phone,email,symbol`:
//! the unit's name as a reporting body (`UBND xã Đắk Mil`; empty: derived from the unit's name),
//! its governing body for the letterhead, address, phone, e-mail and the symbol of its documents'
//! numbers (`UBND` in `03/BC-UBND`; empty: the unit code).
//!
//! A file with any bad row is refused whole, with every problem listed by line.

use std::collections::HashSet;
use std::path::Path;

use crate::domain::csv_import;

/// The header of a systems file.
pub const SYSTEMS_HEADER: [&str; 13] = [
    "unit_code",
    "code",
    "name",
    "security_level",
    "purpose",
    "operator",
    "governing_body",
    "connection_provider",
    "security_provider",
    "os",
    "services",
    "public_addresses",
    "domains",
];

/// The header of a profiles file.
pub const PROFILES_HEADER: [&str; 7] = [
    "unit_code",
    "reporting_name",
    "governing_body",
    "address",
    "phone",
    "email",
    "symbol",
];

/// One information system of a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct InfoSystem {
    /// Code of the unit that operates it.
    pub unit_code: String,
    /// Its code, unique.
    pub code: String,
    /// Its name: `Cổng thông tin điện tử xã Đắk Mil`.
    pub name: String,
    /// Security level 1 to 5 (Nghị định 85/2016/NĐ-CP).
    pub security_level: u8,
    /// What it is for.
    pub purpose: String,
    /// The unit that operates it (đơn vị vận hành).
    pub operator: String,
    /// Its governing body (cơ quan chủ quản).
    pub governing_body: String,
    /// Who provides its connection (đơn vị cung cấp dịch vụ kết nối).
    pub connection_provider: String,
    /// Who provides its security service (đơn vị cung cấp dịch vụ bảo đảm an toàn thông tin).
    pub security_provider: String,
    /// Operating system and version.
    pub os: String,
    /// Services it runs.
    pub services: String,
    /// Public IP addresses.
    pub public_addresses: String,
    /// Domain names.
    pub domains: String,
}

/// How a unit reports: its name as a reporting body, letterhead and contact details.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct UnitProfile {
    /// Unit code.
    pub unit_code: String,
    /// Name as a reporting body; empty: [`reporting_name`] of the unit.
    pub reporting_name: String,
    /// Governing body on the letterhead; empty: none, or the province's for a department.
    pub governing_body: String,
    /// Postal address.
    pub address: String,
    /// Phone.
    pub phone: String,
    /// E-mail.
    pub email: String,
    /// Symbol in document numbers; empty: the unit code.
    pub symbol: String,
}

/// The agency line of a letterhead for a reporting body: `UBND xã Đắk Mil` is written out as
/// `ỦY BAN NHÂN DÂN\nXÃ ĐẮK MIL` (Nghị định 30/2020: a People's Committee has no governing body
/// line).
pub fn letterhead_agency(reporting_name: &str) -> String {
    match reporting_name.strip_prefix("UBND ") {
        Some(rest) => format!("ỦY BAN NHÂN DÂN\n{}", rest.to_uppercase()),
        None => reporting_name.to_uppercase(),
    }
}

/// Reads and checks a systems file.
///
/// # Errors
///
/// When the file cannot be read, its header is wrong, or any row is bad.
pub fn read_systems(path: &Path) -> anyhow::Result<Vec<InfoSystem>> {
    csv_import::read(path, parse_systems)
}

/// Parses systems CSV text; see [`read_systems`].
///
/// # Errors
///
/// As [`read_systems`].
pub fn parse_systems(bytes: &[u8]) -> anyhow::Result<Vec<InfoSystem>> {
    let mut seen = HashSet::new();
    csv_import::parse(
        bytes,
        |names| csv_import::fixed_header(names, &SYSTEMS_HEADER, None),
        |_, row| {
            let level = row.field(3);
            let system = InfoSystem {
                unit_code: row.field(0),
                code: row.field(1),
                name: row.field(2),
                security_level: level.parse().unwrap_or(0),
                purpose: row.field(4),
                operator: row.field(5),
                governing_body: row.field(6),
                connection_provider: row.field(7),
                security_provider: row.field(8),
                os: row.field(9),
                services: row.field(10),
                public_addresses: row.field(11),
                domains: row.field(12),
            };
            if system.unit_code.is_empty() || system.code.is_empty() || system.name.is_empty() {
                Err("unit_code, code and name must not be empty".to_owned())
            } else if !(1..=5).contains(&system.security_level) {
                Err(format!(
                    "security_level {level:?} must be 1 to 5 (Nghị định 85/2016)"
                ))
            } else if !seen.insert(system.code.clone()) {
                Err(format!("system code {} appears twice", system.code))
            } else {
                Ok(system)
            }
        },
    )
}

/// Reads and checks a profiles file.
///
/// # Errors
///
/// When the file cannot be read, its header is wrong, or any row is bad.
pub fn read_profiles(path: &Path) -> anyhow::Result<Vec<UnitProfile>> {
    csv_import::read(path, parse_profiles)
}

/// Parses profiles CSV text; see [`read_profiles`].
///
/// # Errors
///
/// As [`read_profiles`].
pub fn parse_profiles(bytes: &[u8]) -> anyhow::Result<Vec<UnitProfile>> {
    let mut seen = HashSet::new();
    csv_import::parse(
        bytes,
        |names| csv_import::fixed_header(names, &PROFILES_HEADER, None),
        |_, row| {
            let profile = UnitProfile {
                unit_code: row.field(0),
                reporting_name: row.field(1),
                governing_body: row.field(2),
                address: row.field(3),
                phone: row.field(4),
                email: row.field(5),
                symbol: row.field(6),
            };
            if profile.unit_code.is_empty() {
                Err("unit_code must not be empty".to_owned())
            } else if !profile.email.is_empty() && profile.email.parse::<lettre::Address>().is_err()
            {
                Err(format!("{:?} is not an email address", profile.email))
            } else if !seen.insert(profile.unit_code.clone()) {
                Err(format!("unit {} appears twice", profile.unit_code))
            } else {
                Ok(profile)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_and_profiles_are_read_and_bad_files_refused_whole() {
        let head = SYSTEMS_HEADER.join(",");
        let good = format!(
            "{head}\n663,dakmil-portal,Cổng thông tin điện tử xã Đắk Mil,2,Thông tin,UBND xã Đắk Mil,UBND tỉnh,VNPT,,Ubuntu 22.04,\"HTTP, HTTPS\",203.0.113.10,dakmil.gov.vn\n"
        );
        let systems = parse_systems(good.as_bytes()).unwrap();
        assert_eq!(systems[0].security_level, 2);
        assert_eq!(systems[0].services, "HTTP, HTTPS");
        let pad = ",".repeat(9);
        let bad = format!("{head}\n663,a,A,6{pad}\n663,a,A,1{pad}\n,b,B,1{pad}\n");
        let error = format!("{:#}", parse_systems(bad.as_bytes()).unwrap_err());
        assert!(
            error.contains("line 2") && error.contains("1 to 5"),
            "{error}"
        );
        assert!(error.contains("line 4"), "{error}");

        let head = PROFILES_HEADER.join(",");
        let profiles = parse_profiles(
            format!("{head}\n663,,,Thôn 1,0261 3 123 456,ubnd@dakmil.gov.vn,UBND\n").as_bytes(),
        )
        .unwrap();
        assert_eq!(profiles[0].symbol, "UBND");
        assert!(parse_profiles(format!("{head}\n663,,,,,not-mail,\n").as_bytes()).is_err());
    }

    #[test]
    fn communes_report_as_their_peoples_committee() {
        assert_eq!(
            letterhead_agency("UBND xã Đắk Mil"),
            "ỦY BAN NHÂN DÂN\nXÃ ĐẮK MIL"
        );
        assert_eq!(letterhead_agency("Sở Y tế"), "SỞ Y TẾ");
    }
}
