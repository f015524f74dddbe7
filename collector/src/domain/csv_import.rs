//! What every CSV import file shares (units, contacts, IT officers, notification rules): UTF-8
//! with or without the byte-order mark spreadsheet programs write, a header row, and a file with
//! any bad row refused whole, the first [`MAX_PROBLEMS`] problems listed with their line numbers.
//!
//! Each import says what its header must be and what one row means; this module does the rest.

use std::path::Path;

use anyhow::{bail, Context};

/// Most problems listed before giving up on a file.
pub(crate) const MAX_PROBLEMS: usize = 20;

/// One data row, with its fields trimmed.
pub(crate) struct Row<'a> {
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    /// Field `index`, trimmed; empty when the row is shorter.
    pub(crate) fn field(&self, index: usize) -> String {
        self.record
            .get(index)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    }

    /// Field `index`, or none when empty.
    pub(crate) fn optional(&self, index: usize) -> Option<String> {
        Some(self.field(index)).filter(|text| !text.is_empty())
    }
}

/// Reads the file at `path` and parses it with `parse`; errors name the file.
///
/// # Errors
///
/// When the file cannot be read, or as `parse`.
pub(crate) fn read<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> anyhow::Result<Vec<T>>,
) -> anyhow::Result<Vec<T>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("in {}", path.display()))
}

/// Parses CSV bytes: `header` checks the header row (names trimmed) and returns what the rows
/// need of it; `row` turns one data row into a value, or says what is wrong with it.
///
/// # Errors
///
/// When the header is refused, or any row is bad: nothing is returned then, and the message lists
/// every problem (up to [`MAX_PROBLEMS`]) by line.
pub(crate) fn parse<H, T>(
    bytes: &[u8],
    header: impl FnOnce(&[String]) -> anyhow::Result<H>,
    mut row: impl FnMut(&H, &Row<'_>) -> Result<T, String>,
) -> anyhow::Result<Vec<T>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let names: Vec<String> = reader
        .headers()
        .context("reading the header row")?
        .iter()
        .map(|name| name.trim().to_owned())
        .collect();
    let context = header(&names)?;
    let mut problems = Vec::new();
    let mut records = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let problem = match record {
            Err(err) => Some(err.to_string()),
            Ok(record) => match row(&context, &Row { record: &record }) {
                Ok(value) => {
                    records.push(value);
                    None
                }
                Err(problem) => Some(problem),
            },
        };
        if let Some(problem) = problem {
            problems.push(format!("line {line}: {problem}"));
            if problems.len() >= MAX_PROBLEMS {
                problems.push(format!("… stopping after {MAX_PROBLEMS} problems"));
                break;
            }
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

/// Checks a header of fixed columns, optionally followed by one more named `extra`; returns
/// whether the extra column is there.
///
/// # Errors
///
/// When the header differs, saying what it must be.
pub(crate) fn fixed_header(
    names: &[String],
    expected: &[&str],
    extra: Option<&str>,
) -> anyhow::Result<bool> {
    let with_extra = extra.is_some()
        && names.len() == expected.len() + 1
        && names.get(expected.len()).map(String::as_str) == extra;
    if names.iter().take(expected.len()).ne(expected.iter())
        || (names.len() != expected.len() && !with_extra)
    {
        match extra {
            Some(extra) => bail!(
                "the header row must be exactly {:?}, optionally followed by ,{extra}; found {:?}",
                expected.join(","),
                names.join(",")
            ),
            None => bail!(
                "the header row must be exactly {:?}; found {:?}",
                expected.join(","),
                names.join(",")
            ),
        }
    }
    Ok(with_extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> anyhow::Result<Vec<u32>> {
        parse(
            text.as_bytes(),
            |names| fixed_header(names, &["n"], Some("note")),
            |_, row| {
                row.field(0)
                    .parse::<u32>()
                    .map_err(|_| format!("{:?} is not a number", row.field(0)))
            },
        )
    }

    #[test]
    fn a_bom_is_skipped_and_bad_files_are_refused_whole_with_every_line() {
        assert_eq!(numbers("\u{feff}n\n1\n 2 \n").unwrap(), [1, 2]);
        assert_eq!(numbers("n,note\n3,x\n").unwrap(), [3]);
        let err = numbers("n\n1\nx\n2\ny\n").unwrap_err().to_string();
        assert!(
            err.contains("line 3: \"x\" is not a number\n  line 5: \"y\""),
            "{err}"
        );
        let many: String = std::iter::once("n\n".to_owned())
            .chain((0..30).map(|_| "x\n".to_owned()))
            .collect();
        let err = numbers(&many).unwrap_err().to_string();
        assert!(
            err.ends_with("line 21: \"x\" is not a number\n  … stopping after 20 problems"),
            "{err}"
        );
        let err = numbers("m\n1\n").unwrap_err().to_string();
        assert!(
            err.contains("the header row must be exactly \"n\", optionally followed by ,note"),
            "{err}"
        );
    }
}
