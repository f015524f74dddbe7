//! Units as files and as text: the CSV import format and the tree printed by `units list`.
//!
//! The CSV format (UTF-8, header row exactly as [`HEADER`], optionally followed by
//! [`UPLINK_COLUMN`]) is documented in
//! `collector/data/README.md`; `collector/data/dak-nong-units.csv` is the shipped example. A file
//! with any bad row is refused whole, with every problem listed by line, so an import never lands
//! half-way.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::path::Path;

use anyhow::bail;

use crate::domain::csv_import;
use crate::store::{Unit, UnitRecord};

/// The header an import file must have.
pub const HEADER: [&str; 8] = [
    "code",
    "name",
    "kind",
    "parent_code",
    "valid_from",
    "valid_to",
    "successor_codes",
    "note",
];

/// An optional ninth column: the code of the unit whose connection this one's WAN runs through,
/// when it is not the parent (topology-aware outage inference; see `inference`).
pub const UPLINK_COLUMN: &str = "uplink_code";

/// The kinds of unit.
pub const KINDS: [&str; 4] = ["province", "department", "district", "commune"];

/// Reads and checks an import file.
///
/// # Errors
///
/// When the file cannot be read, its header is wrong, or any row is bad; the message lists each
/// problem with its line number.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<UnitRecord>> {
    csv_import::read(path, parse_csv)
}

/// Parses import CSV text; see [`read_csv`].
///
/// # Errors
///
/// As [`read_csv`].
pub fn parse_csv(bytes: &[u8]) -> anyhow::Result<Vec<UnitRecord>> {
    let mut seen = HashSet::new();
    csv_import::parse(
        bytes,
        |names| csv_import::fixed_header(names, &HEADER, Some(UPLINK_COLUMN)),
        |with_uplink, row| {
            let record = UnitRecord {
                code: row.field(0),
                name: row.field(1),
                kind: row.field(2),
                parent_code: row.optional(3),
                valid_from: row.optional(4),
                valid_to: row.optional(5),
                successor_codes: row.field(6),
                note: row.field(7),
                uplink_code: if *with_uplink { row.optional(8) } else { None },
            };
            check(&record)?;
            if !seen.insert(record.code.clone()) {
                return Err(format!("code {} appears twice", record.code));
            }
            Ok(record)
        },
    )
}

fn check(record: &UnitRecord) -> Result<(), String> {
    if record.code.is_empty()
        || record.code.len() > 64
        || record.code.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "code {:?} must be 1 to 64 characters without spaces",
            record.code
        ));
    }
    if record.name.is_empty() {
        return Err(format!("unit {} has no name", record.code));
    }
    if !KINDS.contains(&record.kind.as_str()) {
        return Err(format!(
            "kind {:?} must be one of {}",
            record.kind,
            KINDS.join(", ")
        ));
    }
    if record.parent_code.as_deref() == Some(record.code.as_str()) {
        return Err(format!("unit {} is its own parent", record.code));
    }
    if record.uplink_code.as_deref() == Some(record.code.as_str()) {
        return Err(format!("unit {} is its own uplink", record.code));
    }
    for date in [&record.valid_from, &record.valid_to].into_iter().flatten() {
        time::Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| format!("{date:?} is not a date like 2025-07-01"))?;
    }
    if let (Some(from), Some(to)) = (&record.valid_from, &record.valid_to) {
        if from > to {
            return Err(format!(
                "unit {} ends ({to}) before it starts ({from})",
                record.code
            ));
        }
    }
    Ok(())
}

/// Type words that open a territorial unit's name, longest first so "Thành phố" wins over
/// shorter prefixes.
const TYPE_WORDS: [&str; 9] = [
    "Thành phố",
    "Thị trấn",
    "Thị xã",
    "Đặc khu",
    "Phường",
    "Huyện",
    "Quận",
    "Tỉnh",
    "Xã",
];

/// The name of the body that reports for a unit: the people's committee of a territory ("UBND xã
/// Đắk Mil" for the commune "Xã Đắk Mil", "UBND thành phố Gia Nghĩa", "UBND tỉnh Lâm Đồng"); an
/// agency (`department`) is its own body and keeps its name.
///
/// Unit names in the data name territories with their type word first (see
/// `collector/data/README.md`); a name already naming the committee, or without a known type
/// word, is prefixed with "UBND" only where that is missing.
pub fn body_name(kind: &str, name: &str) -> String {
    let territory = matches!(kind, "province" | "district" | "commune");
    let name = name.trim();
    if !territory || name.starts_with("UBND ") || name.starts_with("Ủy ban nhân dân") {
        return name.to_owned();
    }
    for word in TYPE_WORDS {
        if let Some(rest) = name.strip_prefix(word) {
            if rest.starts_with(' ') {
                return format!("UBND {}{rest}", word.to_lowercase());
            }
        }
    }
    format!("UBND {name}")
}

/// What `units list` prints.
#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    /// Start at this unit instead of the roots.
    pub root: Option<String>,
    /// Only units valid on this ISO date.
    pub at: Option<String>,
    /// Stop below this depth (0 = roots only).
    pub depth: Option<usize>,
}

/// Draws the unit tree, one unit a line: code, name, kind and validity.
///
/// # Errors
///
/// When the root code is unknown.
pub fn render_tree(units: &[Unit], options: &TreeOptions) -> anyhow::Result<String> {
    let mut children: BTreeMap<Option<i64>, Vec<&Unit>> = BTreeMap::new();
    let visible = |unit: &Unit| options.at.as_deref().is_none_or(|at| unit.valid_on(at));
    for unit in units.iter().filter(|unit| visible(unit)) {
        children.entry(unit.parent_id).or_default().push(unit);
    }
    for list in children.values_mut() {
        // Departments first, then districts, then communes, each by code.
        list.sort_by_key(|unit| {
            (
                KINDS.iter().position(|kind| *kind == unit.kind),
                unit.code.clone(),
            )
        });
    }
    let roots: Vec<&Unit> = match &options.root {
        Some(code) => match units.iter().find(|unit| &unit.code == code) {
            Some(unit) => vec![unit],
            None => bail!("no unit with code {code:?}"),
        },
        None => {
            // Units whose parent is hidden (e.g. by --at) are drawn as roots so nothing disappears.
            let shown: HashSet<i64> = units
                .iter()
                .filter(|unit| visible(unit))
                .map(|unit| unit.id)
                .collect();
            units
                .iter()
                .filter(|unit| {
                    visible(unit) && unit.parent_id.is_none_or(|parent| !shown.contains(&parent))
                })
                .collect()
        }
    };
    let mut out = String::new();
    let mut seen = HashSet::new();
    for root in roots {
        draw(
            &mut out,
            root,
            &children,
            "",
            "",
            0,
            options.depth,
            &mut seen,
        );
    }
    if out.is_empty() {
        out.push_str("(no units; import some with: cntt-collector units import FILE.csv)\n");
    }
    Ok(out)
}

#[allow(
    clippy::too_many_arguments,
    reason = "a private recursive helper; a struct would only rename the same state"
)]
fn draw(
    out: &mut String,
    unit: &Unit,
    children: &BTreeMap<Option<i64>, Vec<&Unit>>,
    lead: &str,
    child_lead: &str,
    depth: usize,
    max_depth: Option<usize>,
    seen: &mut HashSet<i64>,
) {
    if !seen.insert(unit.id) {
        return;
    }
    let validity = match (&unit.valid_from, &unit.valid_to) {
        (None, None) => String::new(),
        (from, to) => format!(
            "  {} → {}",
            from.as_deref().unwrap_or("?"),
            to.as_deref().unwrap_or("nay")
        ),
    };
    let _ = writeln!(
        out,
        "{lead}{}  {}  [{}]{validity}",
        unit.code, unit.name, unit.kind
    );
    if max_depth.is_some_and(|max| depth >= max) {
        return;
    }
    let kids = children
        .get(&Some(unit.id))
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, kid) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        draw(
            out,
            kid,
            children,
            &format!("{child_lead}{branch}"),
            &format!("{child_lead}{next}"),
            depth + 1,
            max_depth,
            seen,
        );
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn check_error(csv: &str, expected: &str) {
        let err = format!("{:#}", parse_csv(csv.as_bytes()).unwrap_err());
        assert!(
            err.contains(expected),
            "error {err:?} should contain {expected:?}"
        );
    }

    const HEAD: &str = "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note\n";

    #[test]
    fn an_uplink_column_may_follow() {
        let csv = format!(
            "{}uplink_code\n67,Tỉnh,province,,,,,,\n663,Huyện,district,67,,,,,\n24700,Xã,commune,663,,,,,67\n",
            HEAD.replace('\n', ",")
        );
        let records = parse_csv(csv.as_bytes()).unwrap();
        let uplinks: Vec<Option<&str>> = records.iter().map(|r| r.uplink_code.as_deref()).collect();
        assert_eq!(uplinks, [None, None, Some("67")]);
        check_error(
            &format!(
                "{}uplink\n67,Tỉnh,province,,,,,,\n",
                HEAD.replace('\n', ",")
            ),
            "optionally followed by ,uplink_code",
        );
        check_error(
            &format!(
                "{}uplink_code\n67,Tỉnh,province,,,,,,67\n",
                HEAD.replace('\n', ",")
            ),
            "unit 67 is its own uplink",
        );
    }

    #[test]
    fn bad_files_are_refused_whole_with_every_problem() {
        check_error("code,name\n1,x\n", "the header row must be exactly");
        check_error(
            &format!("{HEAD}67,Tỉnh,state,,,,,\n"),
            "line 2: kind \"state\" must be one of",
        );
        check_error(
            &format!("{HEAD}67,Tỉnh,province,,2025-13-01,,,\n"),
            "is not a date",
        );
        check_error(
            &format!("{HEAD}67,Tỉnh,province,,2025-07-01,2025-06-30,,\n"),
            "ends (2025-06-30) before it starts",
        );
        check_error(
            &format!("{HEAD}67,A,province,,,,,\n67,B,province,,,,,\n"),
            "line 3: code 67 appears twice",
        );
        check_error(
            &format!("{HEAD}67,,province,,,,,\n660,X,district,660,,,,\n"),
            "line 2: unit 67 has no name\n  line 3: unit 660 is its own parent",
        );
    }

    #[test]
    fn shipped_dataset_starts_from_today_and_keeps_history_with_successors() {
        let records = parse_csv(include_bytes!("../../data/dak-nong-units.csv")).unwrap();
        let by_code: BTreeMap<&str, &UnitRecord> =
            records.iter().map(|r| (r.code.as_str(), r)).collect();
        let valid_on = |r: &UnitRecord, day: &str| {
            r.valid_from.as_deref().is_none_or(|from| from <= day)
                && r.valid_to.as_deref().is_none_or(|to| day <= to)
        };
        // Today's hierarchy comes first: the province, its departments, its communes.
        assert_eq!(records[0].code, "68");
        let today: Vec<&UnitRecord> = records
            .iter()
            .filter(|r| valid_on(r, "2026-12-04"))
            .collect();
        assert!(today
            .iter()
            .all(|r| r.code == "68" || r.parent_code.as_deref() == Some("68")));
        let n_departments = today.iter().filter(|r| r.kind == "department").count();
        let n_communes = today.iter().filter(|r| r.kind == "commune").count();
        assert_eq!((n_departments, n_communes), (14, 28));
        assert_eq!(by_code["68.S.KHCN"].name, "Sở Khoa học và Công nghệ");
        // The history: 8 district-level units, the departments merged in 2025, nothing of the
        // former province after 2025-06-30, and every unit that ended has known successors.
        let districts = records
            .iter()
            .filter(|r| r.kind == "district" && r.parent_code.as_deref() == Some("67"))
            .count();
        assert_eq!(districts, 8);
        let tttt = by_code["67.S.TTTT"];
        assert_eq!(
            (tttt.valid_to.as_deref(), tttt.successor_codes.as_str()),
            (Some("2025-02-28"), "67.S.KHCN")
        );
        assert_eq!(by_code["67.S.KHCN"].successor_codes, "68.S.KHCN");
        assert_eq!(by_code["67.S.TNMT"].successor_codes, "67.S.NNMT");
        for record in &records {
            if record.code == "67" || record.parent_code.as_deref() == Some("67") {
                assert!(
                    record
                        .valid_to
                        .as_deref()
                        .is_some_and(|to| to <= "2025-06-30"),
                    "{} outlives the former province",
                    record.code
                );
            }
            if record.valid_to.is_some() {
                assert!(!record.successor_codes.is_empty(), "{}", record.code);
            }
            for successor in record.successor_codes.split(';').filter(|s| !s.is_empty()) {
                assert!(by_code.contains_key(successor), "{successor}");
            }
        }
    }

    #[test]
    fn body_names_name_the_committee_of_a_territory() {
        let check = |kind: &str, name: &str, expected: &str| {
            assert_eq!(body_name(kind, name), expected, "{kind} {name}");
        };
        check("commune", "Xã Đắk Mil", "UBND xã Đắk Mil");
        check("commune", "Phường Nghĩa Đức", "UBND phường Nghĩa Đức");
        check("commune", "Thị trấn Đắk Mil", "UBND thị trấn Đắk Mil");
        check("commune", "Đặc khu Phú Quốc", "UBND đặc khu Phú Quốc");
        check("district", "Huyện Cư Jút", "UBND huyện Cư Jút");
        check(
            "district",
            "Thành phố Gia Nghĩa",
            "UBND thành phố Gia Nghĩa",
        );
        check("district", "Thị xã Gia Nghĩa", "UBND thị xã Gia Nghĩa");
        check("province", "Tỉnh Lâm Đồng", "UBND tỉnh Lâm Đồng");
        check("province", "Thành phố Hà Nội", "UBND thành phố Hà Nội");
        check(
            "department",
            "Sở Khoa học và Công nghệ",
            "Sở Khoa học và Công nghệ",
        );
        check("department", "Thanh tra tỉnh", "Thanh tra tỉnh");
        // Already the committee, or no type word: "UBND" once, never twice.
        check("commune", "UBND xã Đắk Mil", "UBND xã Đắk Mil");
        check("commune", "Đắk Mil", "UBND Đắk Mil");
        // A type word only counts as a whole word.
        check("commune", "Xãđặc", "UBND Xãđặc");
    }

    #[test]
    fn tree_is_drawn_with_validity() {
        let unit =
            |id: i64, code: &str, kind: &str, parent_id: Option<i64>, to: Option<&str>| Unit {
                id,
                code: code.into(),
                name: format!("Đơn vị {code}"),
                kind: kind.into(),
                parent_id,
                parent_code: None,
                valid_from: None,
                valid_to: to.map(str::to_owned),
                successor_codes: String::new(),
                note: String::new(),
                uplink_code: None,
            };
        let units = [
            unit(1, "67", "province", None, Some("2025-06-30")),
            unit(2, "660", "district", Some(1), Some("2025-06-30")),
            unit(3, "24611", "commune", Some(2), Some("2025-06-30")),
            unit(4, "67.S.TTTT", "department", Some(1), None),
        ];
        let tree = render_tree(&units, &TreeOptions::default()).unwrap();
        expect![[r#"
            67  Đơn vị 67  [province]  ? → 2025-06-30
            ├── 67.S.TTTT  Đơn vị 67.S.TTTT  [department]
            └── 660  Đơn vị 660  [district]  ? → 2025-06-30
                └── 24611  Đơn vị 24611  [commune]  ? → 2025-06-30
        "#]]
        .assert_eq(&tree);
        let today = render_tree(
            &units,
            &TreeOptions {
                at: Some("2026-11-23".into()),
                ..TreeOptions::default()
            },
        )
        .unwrap();
        expect![[r#"
            67.S.TTTT  Đơn vị 67.S.TTTT  [department]
        "#]]
        .assert_eq(&today);
    }
}
