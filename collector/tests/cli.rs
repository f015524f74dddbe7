//! The `cntt-collector` binary as an administrator meets it: help that teaches, clear errors with
//! exit code 1, nothing half-done.

use std::path::Path;
use std::process::{Command, Output};

fn collector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cntt-collector"))
        .args(args)
        .env_remove("CNTT_COLLECTOR_CONFIG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(dir: &Path) -> String {
    let config = dir.join("collector.toml");
    let text = format!(
        "[database]\nurl = \"sqlite://{}/c.db\"\n[tls]\ncert = \"tls/server.pem\"\nkey = \"tls/server-key.pem\"\n",
        dir.display()
    );
    std::fs::write(&config, text).unwrap();
    config.display().to_string()
}

#[test]
fn help_shows_first_steps_and_every_command() {
    let help = stdout(&collector(&["--help"]));
    for needle in [
        "tls init",
        "units import",
        "enroll-token create",
        "serve",
        "api-token",
        "audit",
        "retention",
    ] {
        assert!(help.contains(needle), "--help mentions {needle}:\n{help}");
    }
    let create = stdout(&collector(&["enroll-token", "create", "--help"]));
    assert!(
        create.contains("--ttl") && create.contains("7d"),
        "{create}"
    );
}

#[test]
fn broken_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, "[tls]\ncert = 'a'\nkey = 'b'\nport = 8443\n").unwrap();
    let output = collector(&["--config", config.to_str().unwrap(), "units", "list"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("collector.toml") && err.contains("unknown field `port`"),
        "{err}"
    );
    let missing = collector(&["--config", "/nonexistent/collector.toml", "serve"]);
    assert!(
        stderr(&missing).contains("reading config file /nonexistent/collector.toml"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn units_import_and_list_the_shipped_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dak-nong-units.csv");
    let output = collector(&["--config", &config, "units", "import", dataset]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("128 created"),
        "{}",
        stdout(&output)
    );
    let again = collector(&["--config", &config, "units", "import", dataset]);
    assert!(
        stdout(&again).contains("0 created, 0 updated, 128 unchanged"),
        "{}",
        stdout(&again)
    );

    let tree = stdout(&collector(&[
        "--config", &config, "units", "list", "--root", "67", "--depth", "1",
    ]));
    assert!(tree.starts_with("67  Tỉnh Đắk Nông  [province]"), "{tree}");
    let districts = tree
        .lines()
        .filter(|line| line.contains("[district]"))
        .count();
    assert_eq!(districts, 8, "{tree}");
    assert!(
        tree.contains("67.S.TTTT  Sở Thông tin và Truyền thông  [department]"),
        "{tree}"
    );

    // A bad file is refused whole, with line numbers, and changes nothing.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note\nX1,Xã Một,commune,663,,,,\nX2,,commune,663,,,,\n").unwrap();
    let output = collector(&[
        "--config",
        &config,
        "units",
        "import",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("line 3: unit X2 has no name"),
        "{}",
        stderr(&output)
    );
    let tree = stdout(&collector(&[
        "--config", &config, "units", "list", "--root", "663",
    ]));
    assert!(!tree.contains("X1"), "nothing of the bad file landed");
}

#[test]
fn tls_init_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let output = collector(&[
        "tls",
        "init",
        "--dir",
        tls.to_str().unwrap(),
        "--host",
        "localhost",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let again = collector(&[
        "tls",
        "init",
        "--dir",
        tls.to_str().unwrap(),
        "--host",
        "localhost",
    ]);
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );

    let config = write_config(dir.path());
    let unit_file = dir.path().join("units.csv");
    std::fs::write(&unit_file, "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note\n67,Tỉnh Đắk Nông,province,,,,,\n").unwrap();
    assert!(collector(&[
        "--config",
        &config,
        "units",
        "import",
        unit_file.to_str().unwrap()
    ])
    .status
    .success());
    let created = stdout(&collector(&[
        "--config",
        &config,
        "enroll-token",
        "create",
        "--unit",
        "67",
        "--uses",
        "3",
        "--ttl",
        "2h",
    ]));
    assert!(created.starts_with("cntt_enroll_"), "{created}");
    let listed = stdout(&collector(&["--config", &config, "enroll-token", "list"]));
    assert!(
        listed.contains("\t67\t0/3\t") && listed.contains("active"),
        "{listed}"
    );
    assert!(
        !listed.contains(created.lines().next().unwrap()),
        "secrets are never listed"
    );
    let officer = collector(&[
        "--config",
        &config,
        "api-token",
        "create",
        "--role",
        "officer",
        "--name",
        "x",
    ]);
    assert!(
        stderr(&officer).contains("an officer token needs --unit"),
        "{}",
        stderr(&officer)
    );
    let unknown = collector(&[
        "--config",
        &config,
        "enroll-token",
        "create",
        "--unit",
        "999",
    ]);
    assert!(
        stderr(&unknown).contains("no unit with code \"999\""),
        "{}",
        stderr(&unknown)
    );
    let audit = stdout(&collector(&["--config", &config, "audit", "list"]));
    assert!(
        audit.contains("enroll_token.create") && audit.contains("unit.import"),
        "{audit}"
    );
}

#[test]
fn retention_runs_once_by_hand_and_refuses_a_short_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let dry = collector(&["--config", &config, "retention", "run", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = stdout(&dry);
    for needle in [
        "dry run at ",
        "nothing changed",
        "ROWS\tWHAT\tOLDER THAN (+07)",
        "0\tprobe results rolled up into 0 agent-target-hours, then deleted\t",
        "0\taudit entries deleted\t",
        "kept forever (retention.incidents is not set)",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let run = collector(&["--config", &config, "retention", "run"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).starts_with("retention run at "),
        "{}",
        stdout(&run)
    );

    let short = dir.path().join("short.toml");
    let text = std::fs::read_to_string(&config).unwrap() + "[retention]\naudit = \"90d\"\n";
    std::fs::write(&short, text).unwrap();
    let refused = collector(&["--config", short.to_str().unwrap(), "retention", "run"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("retention.audit = \"90d\" is below the legal floor of 365d"),
        "{}",
        stderr(&refused)
    );
}
