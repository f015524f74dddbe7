//! Tidy checks that keep the repository honest: module docs, the API description, example configs.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for crate_dir in ["common", "agent", "collector", "tests"] {
        rust_files(&e2e::repo_file(crate_dir), &mut files);
    }
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(files.len() > 20, "found the sources");
    assert!(
        undocumented.is_empty(),
        "files without a //! module doc: {undocumented:#?}"
    );
}

/// Files a merge tool leaves behind (`*.orig`, `*.rej`): four were once committed under
/// `collector/src/` (issue 16).
#[test]
fn no_merge_leftovers() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "orig" || ext == "rej")
            {
                out.push(path);
            }
        }
    }
    let mut leftovers = Vec::new();
    for dir in [
        "common",
        "agent",
        "collector",
        "tests",
        "docs",
        "packaging",
        "scripts",
        "dashboards",
    ] {
        walk(&e2e::repo_file(dir), &mut leftovers);
    }
    assert!(leftovers.is_empty(), "merge leftovers: {leftovers:#?}");
}

#[test]
fn openapi_document_parses_and_lists_every_route() {
    let text =
        std::fs::read_to_string(e2e::repo_file("collector/src/http/api/openapi.json")).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let router = std::fs::read_to_string(e2e::repo_file("collector/src/http/api/mod.rs")).unwrap();
    let routes: Vec<&str> = router
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(routes.len() >= 7, "{routes:?}");
    for route in routes {
        assert!(
            document["paths"].get(route).is_some(),
            "openapi.json lacks {route}"
        );
    }
}

#[test]
fn no_wire_dependency_creeps_into_common() {
    let manifest = std::fs::read_to_string(e2e::repo_file("common/Cargo.toml")).unwrap();
    for forbidden in ["tokio", "reqwest", "sqlx", "axum"] {
        assert!(
            !manifest.contains(forbidden),
            "common must not depend on {forbidden}"
        );
    }
}

/// Names of provinces and departments that user-facing text must take from the organisation or
/// the units data, never spell out (issue 12): compared in lower case.
const HARD_CODED_NAMES: [&str; 11] = [
    "đắk nông",
    "đăk nông",
    "daknong",
    "lâm đồng",
    "lamdong",
    "thông tin và truyền thông",
    "tt&tt",
    "stttt",
    "khoa học và công nghệ",
    "kh&cn",
    "skhcn",
];

/// Legal citations, which name the issuing province as it was: removed from a string before it is
/// checked. Keep this list short and every entry a full citation.
const CITATIONS: [&str; 4] = [
    "quy chế quản lý chuyên môn nghiệp vụ đối với cán bộ, công chức, viên chức chuyên trách công \
     nghệ thông tin tại các cơ quan nhà nước tỉnh đắk nông",
    "quyết định số 02/2017/qđ-ubnd ngày 24/01/2017 của ubnd tỉnh đắk nông",
    "quyết định số 02/2017/qđ-ubnd ngày 24/01/2017 của ủy ban nhân dân tỉnh đắk nông",
    "thông tư 20/2017/tt-btttt của bộ thông tin và truyền thông",
];

/// The hard-coded names in `text`, once its citations are taken out.
fn hard_coded_names(text: &str) -> Vec<&'static str> {
    let mut text = text.to_lowercase();
    for citation in CITATIONS {
        text = text.replace(citation, " ");
    }
    HARD_CODED_NAMES
        .into_iter()
        .filter(|name| text.contains(name))
        .collect()
}

/// A string literal of a Rust file: the line it starts on and its text, line continuations joined.
struct Literal {
    offset: usize,
    line: usize,
    text: String,
}

/// Splits Rust source into its code, with comments, strings and character literals blanked out
/// (newlines kept), and its string literals. Enough of Rust's lexical rules for our own sources:
/// line and nested block comments, escapes, raw strings, byte strings, and lifetimes.
fn lex(source: &str) -> (Vec<char>, Vec<Literal>) {
    let chars: Vec<char> = source.chars().collect();
    let mut code = chars.clone();
    let mut literals = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let blank = |code: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut code[from..to] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            blank(&mut code, start, i);
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += chars[start..i].iter().filter(|c| **c == '\n').count();
            blank(&mut code, start, i);
            continue;
        }
        let after_ident = start > 0 && ident(chars[start - 1]);
        // Raw strings: r"…", r#"…"#, br"…".
        let raw_start = match (c, next) {
            ('r', Some('"' | '#')) if !after_ident => Some(i + 1),
            ('b', Some('r')) if !after_ident && matches!(chars.get(i + 2), Some('"' | '#')) => {
                Some(i + 2)
            }
            _ => None,
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let body = j + 1;
                let mut end = body;
                let closes = |at: usize| {
                    chars[at] == '"' && (1..=hashes).all(|k| chars.get(at + k) == Some(&'#'))
                };
                while end < chars.len() && !closes(end) {
                    end += 1;
                }
                let text: String = chars[body..end].iter().collect();
                literals.push(Literal {
                    offset: start,
                    line,
                    text: text.clone(),
                });
                line += text.matches('\n').count();
                i = (end + 1 + hashes).min(chars.len());
                blank(&mut code, start, i);
                continue;
            }
        }
        if c == '"' || (c == 'b' && next == Some('"') && !after_ident) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut text = String::new();
            let first_line = line;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    let escaped = chars[j + 1];
                    j += 2;
                    match escaped {
                        // A line continuation: the newline and the next line's indent vanish.
                        '\n' => {
                            line += 1;
                            while j < chars.len() && chars[j].is_whitespace() {
                                if chars[j] == '\n' {
                                    line += 1;
                                }
                                j += 1;
                            }
                        }
                        'n' => text.push('\n'),
                        other => text.push(other),
                    }
                    continue;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            literals.push(Literal {
                offset: start,
                line: first_line,
                text,
            });
            i = (j + 1).min(chars.len());
            blank(&mut code, start, i);
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if next == Some('\\') {
                // Past the escaped character, so '\'' ends at its last quote.
                (i + 3..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                i = end + 1;
                blank(&mut code, start, i);
                continue;
            }
        }
        if c == '\n' {
            line += 1;
        }
        i += 1;
    }
    (code, literals)
}

/// Character ranges of the items marked `#[cfg(test)]` in blanked code: from the attribute to the
/// item's `;` or its matching closing brace.
fn test_items(code: &[char]) -> Vec<(usize, usize)> {
    let text: String = code.iter().collect();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let start_byte = from + found;
        let start = text[..start_byte].chars().count();
        let mut i = start + "#[cfg(test)]".len();
        let mut depth = 0usize;
        while i < code.len() {
            match code[i] {
                ';' if depth == 0 => break,
                '{' => depth += 1,
                '}' if depth <= 1 => break,
                '}' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        ranges.push((start, i));
        from = start_byte + "#[cfg(test)]".len();
    }
    ranges
}

/// Every hard-coded name in the user-facing strings of one Rust file, as `path:line: names: text`.
fn offenders_in_rust(path: &Path, source: &str) -> Vec<String> {
    let (code, literals) = lex(source);
    let tests = test_items(&code);
    literals
        .iter()
        .filter(|literal| {
            !tests
                .iter()
                .any(|(from, to)| (*from..=*to).contains(&literal.offset))
        })
        .filter_map(|literal| {
            let names = hard_coded_names(&literal.text);
            (!names.is_empty()).then(|| {
                format!(
                    "{}:{}: {}: {:?}",
                    path.display(),
                    literal.line,
                    names.join(", "),
                    literal.text.chars().take(120).collect::<String>()
                )
            })
        })
        .collect()
}

/// Every hard-coded name in a JSON document's strings (dashboards: all text is for people).
fn offenders_in_json(path: &Path, source: &str) -> Vec<String> {
    source
        .lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let names = hard_coded_names(line);
            (!names.is_empty()).then(|| {
                format!(
                    "{}:{}: {}: {}",
                    path.display(),
                    index + 1,
                    names.join(", "),
                    line.trim().chars().take(120).collect::<String>()
                )
            })
        })
        .collect()
}

#[test]
fn the_name_checker_reads_rust_as_rust() {
    let source = r##"//! Sở TT&TT in a module doc is fine.
/// So is Đắk Nông in a doc comment.
fn label() -> &'static str {
    let _brace = '{';
    let _quote = '\'';
    let _lifetime: &'static str = "";
    // Lâm Đồng in a comment.
    /* Lâm Đồng /* nested */ still a comment */
    let _citation = "Quyết định số 02/2017/QĐ-UBND ngày 24/01/2017 của UBND tỉnh Đắk Nông";
    let _raw = r#"UBND TỈNH LÂM ĐỒNG"#;
    "Trực ứng cứu Sở \
     TT&TT"
}

#[cfg(test)]
mod tests {
    const EXAMPLE: &str = "Sở Khoa học và Công nghệ";
}

fn after() -> &'static str {
    "Sở KH&CN"
}
"##;
    let found = offenders_in_rust(Path::new("x.rs"), source);
    let lines: Vec<&str> = found
        .iter()
        .map(|line| line.split(": ").next().unwrap())
        .collect();
    assert_eq!(lines, ["x.rs:10", "x.rs:11", "x.rs:21"], "{found:#?}");
}

/// Issue 12: no user-facing string hard-codes a province or department; names come from the
/// organisation (`collector/data/organisation.toml`) or the units data under `collector/data/`.
/// Comments, doc comments, `#[cfg(test)]` items, `tests.rs` files and the citations above are
/// exempt.
#[test]
fn no_user_facing_string_hard_codes_a_province_or_department() {
    let mut files = Vec::new();
    for crate_dir in ["agent/src", "collector/src", "common/src"] {
        rust_files(&e2e::repo_file(crate_dir), &mut files);
    }
    files.retain(|path| path.file_name().is_none_or(|name| name != "tests.rs"));
    files.sort();
    let root = e2e::repo_file("");
    let shown = |path: &Path| path.strip_prefix(&root).unwrap_or(path).to_path_buf();
    let mut offenders = Vec::new();
    let mut n_literals = 0;
    for path in &files {
        let source = std::fs::read_to_string(path).unwrap();
        n_literals += lex(&source).1.len();
        offenders.extend(offenders_in_rust(&shown(path), &source));
    }
    // A lexer that lost its way would swallow code into one long string and find little.
    assert!(n_literals > 3000, "only {n_literals} string literals found");
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(e2e::repo_file("dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    dashboards.sort();
    assert!(
        files.len() > 20 && dashboards.len() > 3,
        "found the sources"
    );
    for path in &dashboards {
        let source = std::fs::read_to_string(path).unwrap();
        offenders.extend(offenders_in_json(&shown(path), &source));
    }
    assert!(
        offenders.is_empty(),
        "user-facing strings that hard-code a province or department; take the name from \
         crate::domain::organisation or the units data, or add a full legal citation to CITATIONS:\n{}",
        offenders.join("\n")
    );
}
