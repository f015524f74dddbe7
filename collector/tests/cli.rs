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

/// `cntt-collector tls init` into `dir` for the host localhost.
fn tls_init(dir: &Path) -> Output {
    collector(&[
        "tls",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--host",
        "localhost",
    ])
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

/// Logs written to a pipe (journald, a file) carry no colour codes (issue 16).
#[test]
fn logs_off_a_terminal_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let output = collector(&["--config", &config, "--log-level", "debug", "units", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("DEBUG"), "a log line was written:\n{err}");
    assert!(!err.contains('\u{1b}'), "no escape codes:\n{err:?}");
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
        stdout(&output).contains("143 created"),
        "{}",
        stdout(&output)
    );
    let again = collector(&["--config", &config, "units", "import", dataset]);
    assert!(
        stdout(&again).contains("0 created, 0 updated, 143 unchanged"),
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
        tree.contains("67.S.TTTT  Sở Thông tin và Truyền thông  [department]  ? → 2025-02-28"),
        "{tree}"
    );

    // Today's hierarchy: the province 68, its departments and communes, nothing of 67.
    let today = stdout(&collector(&[
        "--config",
        &config,
        "units",
        "list",
        "--at",
        "2026-12-04",
        "--depth",
        "1",
    ]));
    assert!(
        today.starts_with("68  Tỉnh Lâm Đồng  [province]  2025-07-01 → nay"),
        "{today}"
    );
    assert!(
        today.contains("68.S.KHCN  Sở Khoa học và Công nghệ  [department]  2025-07-01 → nay"),
        "{today}"
    );
    assert_eq!(today.lines().count(), 1 + 14 + 28, "{today}");
    assert!(
        !today.contains("67.S.") && !today.contains("Tỉnh Đắk Nông"),
        "{today}"
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
    let output = tls_init(&tls);
    assert!(output.status.success(), "{}", stderr(&output));
    let again = tls_init(&tls);
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

#[test]
fn periods_print_hand_computed_due_dates_with_their_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let run = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        collector(&all)
    };
    // 2024: 10/03 is a Sunday, so Q1 is due Friday 08/03; the other quarters are on the 10th.
    let output = run(&["periods", "--scheme", "quarterly", "--year", "2024"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("2024-Q")).collect();
    let expected = [
        (
            "2024-Q1 (quý I năm 2024)",
            "số liệu 07/12/2023 – 06/03/2024",
            "hạn nộp thứ Sáu 08/03/2024",
            "10/03/2024 là Chủ nhật, 09/03/2024 là thứ Bảy → lùi về thứ Sáu 08/03/2024",
        ),
        (
            "2024-Q2 (quý II năm 2024)",
            "số liệu 07/03/2024 – 06/06/2024",
            "hạn nộp thứ Hai 10/06/2024",
            "ngày 10 tháng cuối kỳ; số liệu chốt đến hết ngày",
        ),
        (
            "2024-Q3 (quý III năm 2024)",
            "số liệu 07/06/2024 – 08/09/2024",
            "hạn nộp thứ Ba 10/09/2024",
            "ngày 10 tháng cuối kỳ; số liệu chốt đến hết ngày",
        ),
        (
            "2024-Q4 (quý IV năm 2024)",
            "số liệu 09/09/2024 – 08/12/2024",
            "hạn nộp thứ Ba 10/12/2024",
            "ngày 10 tháng cuối kỳ; số liệu chốt đến hết ngày",
        ),
    ];
    assert_eq!(lines.len(), 4, "{text}");
    for (line, parts) in lines.iter().zip(expected) {
        for part in [parts.0, parts.1, parts.2, parts.3] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
    }
    // Monthly, 2026: 10/01 is a Saturday (one day earlier), 10/05 a Sunday (two days earlier).
    let text = stdout(&run(&["periods", "--scheme", "monthly", "--year", "2026"]));
    assert!(
        text.contains("2026-M01 (tháng 1 năm 2026)") && text.contains("hạn nộp thứ Sáu 09/01/2026"),
        "{text}"
    );
    assert!(
        text.contains(
            "hạn nộp thứ Sáu 08/05/2026  quy tắc: ngày 10 tháng cuối kỳ; 10/05/2026 là Chủ nhật"
        ),
        "{text}"
    );
    // Monthly, 2024: 10/02 is a Saturday and 09/02, 08/02 are Tết, so Wednesday 07/02.
    let text = stdout(&run(&["periods", "--scheme", "monthly", "--year", "2024"]));
    assert!(text.contains("hạn nộp thứ Tư 07/02/2024  quy tắc: ngày 10 tháng cuối kỳ; 10/02/2024 là thứ Bảy, 09/02/2024 nghỉ Tết Nguyên đán, 08/02/2024 nghỉ Tết Nguyên đán → lùi về thứ Tư 07/02/2024"), "{text}");
    // A due date set by hand says so, with its reason, and is audited.
    let output = run(&[
        "periods",
        "override",
        "--scheme",
        "yearly",
        "--period",
        "2026",
        "--due",
        "2026-12-15",
        "--reason",
        "Công văn 123/STTTT gia hạn",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&run(&["periods", "--scheme", "yearly", "--year", "2026"]));
    assert!(text.contains("hạn nộp thứ Ba 15/12/2026  quy tắc: điều chỉnh thủ công: Công văn 123/STTTT gia hạn (quy tắc: hạn 10/12/2026)"), "{text}");
    let audit = stdout(&run(&["audit", "list", "--action", "period.override"]));
    assert!(audit.contains("yearly:2026"), "{audit}");
    // Mistakes are explained.
    let output = run(&["periods", "--scheme", "weekly", "--year", "2026"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("no reporting scheme is named \"weekly\"; known: monthly, quarterly"),
        "{}",
        stderr(&output)
    );
    let output = run(&[
        "periods",
        "override",
        "--scheme",
        "quarterly",
        "--period",
        "2026-Q5",
        "--due",
        "2026-12-15",
        "--reason",
        "x",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("2026-Q5"), "{}", stderr(&output));
}

#[test]
fn officers_are_imported_and_checked_against_article_4() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let run = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        collector(&all)
    };
    let units = dir.path().join("units.csv");
    std::fs::write(
        &units,
        "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note
67,Tỉnh Đắk Nông,province,,,,,
67.S.TTTT,Sở Thông tin và Truyền thông,department,67,,,,
663,Huyện Đắk Mil,district,67,,,,
24700,Thị trấn Đắk Mil,commune,663,,,,
",
    )
    .unwrap();
    assert!(run(&["units", "import", units.to_str().unwrap()])
        .status
        .success());
    let officers = dir.path().join("officers.csv");
    std::fs::write(
        &officers,
        "unit_code,full_name,degree_level,it_degree,english_level,decision_number
67.S.TTTT,Nguyễn Văn An,university,yes,B1,12/QĐ-STTTT
663,Trần Thị Bình,college,yes,B,
24700,Lê Văn Cường,college,yes,B,5/QĐ-UBND
",
    )
    .unwrap();
    let output = run(&["officers", "import", officers.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let check = stdout(&run(&["officers", "check", "--at", "2026-11-23"]));
    assert!(check.contains("ngày 23/11/2026: 1 / 3 đơn vị"), "{check}");
    assert!(check.contains("663  Huyện Đắk Mil (cán bộ: Trần Thị Bình): trình độ cao đẳng dưới chuẩn đại học trở lên đối với sở, ngành, cấp huyện"), "{check}");
    assert!(
        check.contains("Chưa gửi quyết định phân công về Sở (Điều 14.1): Trần Thị Bình"),
        "{check}"
    );
    // A bad file is refused whole, every problem named.
    std::fs::write(
        &officers,
        "unit_code,full_name,degree_level,it_degree\n99,X,phd,maybe\n",
    )
    .unwrap();
    let output = run(&["officers", "import", officers.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("line 2: degree_level \"phd\""),
        "{}",
        stderr(&output)
    );
    let help = stdout(&collector(&["report", "consolidate", "--help"]));
    assert!(
        help.contains("Nghị định 30/2020") && help.contains("--out"),
        "{help}"
    );
}

#[test]
fn audit_verify_says_what_it_checked_and_fails_on_a_changed_entry() {
    let help = stdout(&collector(&["audit", "verify", "--help"]));
    for needle in [
        "SHA-256",
        "Exit status: 0",
        "retention.audit",
        "[audit.syslog]",
    ] {
        assert!(help.contains(needle), "{needle:?} in\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let empty = collector(&["--config", &config, "audit", "verify"]);
    assert!(empty.status.success(), "{}", stderr(&empty));
    assert_eq!(
        stdout(&empty),
        "Nhật ký kiểm toán chưa có mục nào để kiểm tra.\n"
    );
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dak-nong-units.csv");
    for _ in 0..2 {
        let import = collector(&["--config", &config, "units", "import", dataset]);
        assert!(import.status.success(), "{}", stderr(&import));
    }
    let intact = collector(&["--config", &config, "audit", "verify"]);
    assert!(intact.status.success(), "{}", stderr(&intact));
    assert_eq!(
        stdout(&intact),
        "Chuỗi băm của nhật ký kiểm toán nguyên vẹn: đã kiểm tra 2 mục (từ mục #1 đến mục #2).\n"
    );

    // Someone with the database file drops the trigger and rewrites the first entry.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}/c.db", dir.path().display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'cli:someone-else' WHERE id = 1")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let broken = collector(&["--config", &config, "audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "{}", stderr(&broken));
    let text = stdout(&broken);
    for needle in [
        "CHUỖI BĂM BỊ PHÁ VỠ: nhật ký kiểm toán đã bị sửa ngoài cntt-collector.",
        "Đã kiểm tra 0 mục nguyên vẹn trước chỗ hỏng.",
        "Mục hỏng đầu tiên: #1 lúc ",
        "cli:someone-else unit.import",
        "Mã băm lưu trong mục (",
        "Hãy giữ nguyên cơ sở dữ liệu",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
}

/// The serving collector keeps transparent huge pages off its heap (issue 15: they held its
/// recovery peak above 150 MiB); `MIMALLOC_ALLOW_THP` set in the environment leaves the kernel's
/// choice alone.
#[cfg(target_os = "linux")]
#[test]
fn serve_keeps_transparent_huge_pages_off_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let made = tls_init(&tls);
    assert!(made.status.success(), "{}", stderr(&made));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{}/c.db\"\n[tls]\ncert = \"{}/server.pem\"\nkey = \"{}/server-key.pem\"\n",
            dir.path().display(),
            tls.display(),
            tls.display()
        ),
    )
    .unwrap();
    // `THP_enabled` in /proc/PID/status is 0 once the process has turned them off; the collector
    // does it first thing, so by the time it listens the line is final.
    let thp_enabled = |allow: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cntt-collector"));
        command
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("CNTT_COLLECTOR_CONFIG")
            .env_remove("MIMALLOC_ALLOW_THP")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(value) = allow {
            command.env("MIMALLOC_ALLOW_THP", value);
        }
        let mut child = command.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the collector exited before listening"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the collector did not listen within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(|value| value.trim().to_owned())
            .expect("/proc/PID/status has a THP_enabled line (Linux 5.0 and later)")
    };
    assert_eq!(thp_enabled(None), "0", "turned off by default");
    // With the variable set, the collector leaves the flag as the kernel set it: 1 unless a parent
    // turned it off for this test run (the flag is inherited).
    let inherited = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(|value| value.trim().to_owned())
        .unwrap();
    assert_eq!(thp_enabled(Some("1")), inherited, "left alone when set");
}
