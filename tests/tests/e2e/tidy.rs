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

#[test]
fn openapi_document_parses_and_lists_every_route() {
    let text = std::fs::read_to_string(e2e::repo_file("collector/src/api/openapi.json")).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let router = std::fs::read_to_string(e2e::repo_file("collector/src/api/mod.rs")).unwrap();
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
