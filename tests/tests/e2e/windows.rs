//! The Windows agent under Wine (issue 16): the `cntt-agent.exe` cross-built for
//! `x86_64-pc-windows-gnu` runs under Debian's Wine against a real collector on loopback:
//! `--version`, `check` (ICMP through `icmp.dll`, a TCP check of the collector), `enroll` (the
//! token on standard input), `run` until the collector has its first heartbeat with a Windows host
//! snapshot, and the officer's `status` and `incident report` from a console beside the running
//! agent. The MSI (`packaging/windows/build-msi`) has its tables read with `msiinfo`, then is
//! installed with Wine's `msiexec`: the service starts, enrolls itself with the properties given
//! to the installer and delivers; a newer MSI upgrades it in place, keeping its identity; the
//! uninstall removes the service and the program and keeps the state folder; installed without
//! properties, the service waits until the officer runs `cntt-agent enroll`, then delivers.
//!
//! `scripts/test` builds the `.exe` (`tests/wine/setup`, then `cargo build --target
//! x86_64-pc-windows-gnu -p cntt-agent`) and the MSI; when they were not built, the tests say so
//! and how to build them, and pass without running (a plain `cargo test` on a machine without
//! MinGW and Wine). The two tests take turns with Wine ([`WINE`]), since the MSI's service lives
//! in the prefix's one Wine server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use e2e::{eventually, repo_file, spawn_collector, sqlite_db, ChildGuard};

use crate::WAIT;

/// Held by a test while it uses Wine.
static WINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Heartbeats and uploads under Wine start slower than natively (the first start of a prefix).
const WINE_WAIT: Duration = Duration::from_secs(90);

/// The cross-built agent: `CNTT_WINDOWS_AGENT_EXE`, else the debug build of the Windows target.
fn windows_agent() -> Option<PathBuf> {
    let exe = std::env::var_os("CNTT_WINDOWS_AGENT_EXE").map_or_else(
        || repo_file("target/x86_64-pc-windows-gnu/debug/cntt-agent.exe"),
        PathBuf::from,
    );
    if exe.is_file() {
        return Some(exe);
    }
    eprintln!(
        "SKIPPED: {} was not built, so the Windows agent was not run under Wine; \
         build it with: tests/wine/setup && cargo build --target x86_64-pc-windows-gnu -p cntt-agent \
         (scripts/test does)",
        exe.display()
    );
    None
}

/// The Windows path Wine gives a Linux path (drive Z: is the Linux root).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display())
}

/// The longest a Wine command may take before the test fails (and kills it).
const WINE_COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// Runs the agent under Wine with `args`, `stdin` as its standard input, and waits.
///
/// Output goes to files, not pipes: the Wine services a command may start (the first of a
/// session starts `services.exe` and its drivers) inherit its handles and would hold a pipe open
/// long after the command ended.
fn wine(exe: &Path, args: &[&str], stdin: &str) -> Output {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = wine_command(exe, args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("starting tests/wine/run");
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("writing standard input");
    drop(input);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for wine") {
            break status;
        }
        if started.elapsed() > WINE_COMMAND_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not end within {WINE_COMMAND_LIMIT:?}",
                exe.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).expect("reading stdout"),
        stderr: std::fs::read(&err_path).expect("reading stderr"),
    }
}

fn wine_command(exe: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(repo_file("tests/wine/run"));
    command.arg(exe).args(args);
    command
}

fn as_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_agent_checks_enrolls_and_delivers_under_wine() {
    let Some(exe) = windows_agent() else {
        return;
    };
    let _wine = WINE.lock().await;
    let version = wine(&exe, &["--version"], "");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("cntt-agent {}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        text(&version)
    );

    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let port = collector.base_url.rsplit(':').next().unwrap().to_owned();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{}'\n\
             [heartbeat]\ninterval = \"1s\"\n\
             [uplink]\nurl = \"{}\"\nlinger = \"100ms\"\n\
             [[target]]\nname = \"loopback\"\nkind = \"lan\"\ncheck = \"icmp\"\naddress = \"127.0.0.1\"\n\
             [[target]]\nname = \"collector\"\nkind = \"wan\"\ncheck = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n",
            windows_path(&dir.path().join("state")),
            collector.base_url
        ),
    )
    .unwrap();
    let config = windows_path(&config);
    let with_config = |args: &[&'static str]| -> Vec<String> {
        ["--config", &config]
            .iter()
            .chain(args)
            .map(|arg| (*arg).to_owned())
            .collect()
    };

    let check = wine(&exe, &as_str(&with_config(&["check"])), "");
    let check_text = text(&check);
    assert!(check.status.success(), "{check_text}");
    assert!(
        check_text.contains("loopback") && check_text.contains("collector"),
        "{check_text}"
    );

    let token = collector
        .enroll_token("663", 1, Duration::from_secs(3600))
        .await;
    let ca = windows_path(&collector.ca_pem);
    let mut enroll_args = with_config(&["enroll", "--server"]);
    enroll_args.extend([collector.base_url.clone(), "--ca".into(), ca]);
    let enroll = wine(&exe, &as_str(&enroll_args), &format!("{token}\n"));
    let enroll_text = text(&enroll);
    assert!(enroll.status.success(), "{enroll_text}");
    assert!(
        enroll_text.contains("enrolled as agent") && !enroll_text.contains(&token),
        "{enroll_text}"
    );
    assert!(dir.path().join("state").join("credential.json").is_file());

    let run_args = with_config(&["run"]);
    let mut agent = ChildGuard(
        wine_command(&exe, &as_str(&run_args))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the agent under wine"),
    );
    let listed = eventually(WINE_WAIT, "the Windows agent's first heartbeat", || async {
        let agents = collector.store.agents_list(None).await.unwrap();
        agents
            .into_iter()
            .find(|listed| listed.last_seen_at.is_some() && listed.heartbeat_interval == Some(1))
    })
    .await;
    assert_eq!(listed.unit_code, "663");
    let agent_id = listed.id.clone();
    // Host health as on Linux: the snapshot names Windows, its processors and memory. Under Wine
    // sysinfo lists no drive and no interface, and Wine's processor times do not follow Windows'
    // (kernel time without idle time), so those are printed, not checked.
    let host = eventually(WINE_WAIT, "a host snapshot from Windows", || async {
        let agents = collector.store.agents_list(None).await.unwrap();
        let listed = agents.into_iter().find(|listed| listed.id == agent_id)?;
        serde_json::from_str::<serde_json::Value>(listed.host_snapshot.as_deref()?).ok()
    })
    .await;
    eprintln!("host snapshot from the Windows agent under Wine: {host}");
    assert!(
        host["os_name"]
            .as_str()
            .unwrap_or_default()
            .contains("Windows"),
        "{host}"
    );
    assert!(
        host["cpu_count"].as_u64().unwrap_or_default() >= 1,
        "{host}"
    );
    assert!(
        host["memory_total_bytes"].as_u64().unwrap_or_default() > 0,
        "{host}"
    );
    assert!(
        host["load_average"].is_null(),
        "Windows has no load average: {host}"
    );

    // The officer's commands, from a console beside the running agent.
    let status = wine(&exe, &as_str(&with_config(&["status"])), "");
    assert!(status.status.success(), "{}", text(&status));
    let incident_args = with_config(&[
        "incident",
        "report",
        "--kind",
        "security",
        "--title",
        "Phát hiện mã độc trên máy kế toán (thử trên Wine)",
    ]);
    let report = wine(&exe, &as_str(&incident_args), "");
    assert!(report.status.success(), "{}", text(&report));
    eventually(WINE_WAIT, "the incident filed on Windows", || async {
        let counts = collector.store.incidents_count().await.unwrap();
        let security = counts
            .iter()
            .filter(|count| count.kind == "security")
            .map(|count| count.count)
            .sum::<i64>();
        (security == 1).then_some(())
    })
    .await;
    agent.kill();
}

/// The MSI `scripts/test` builds from the debug exe: `CNTT_WINDOWS_MSI`, else
/// `target/windows-msi/cntt-agent-<version>-x64.msi`.
fn windows_msi() -> Option<PathBuf> {
    let msi = std::env::var_os("CNTT_WINDOWS_MSI").map_or_else(
        || {
            repo_file(&format!(
                "target/windows-msi/cntt-agent-{}-x64.msi",
                env!("CARGO_PKG_VERSION")
            ))
        },
        PathBuf::from,
    );
    if msi.is_file() && windows_agent().is_some() {
        return Some(msi);
    }
    eprintln!(
        "SKIPPED: {} was not built, so the MSI was neither checked nor installed under Wine; \
         build it with: CNTT_AGENT_EXE=target/x86_64-pc-windows-gnu/debug/cntt-agent.exe \
         packaging/windows/build-msi target/windows-msi (scripts/test does)",
        msi.display()
    );
    None
}

/// The rows of one table of `msi`, as `msiinfo export` prints them (after its three header lines,
/// without the CR of its CR LF line ends).
fn msi_table(msi: &Path, table: &str) -> Vec<Vec<String>> {
    let output = Command::new("msiinfo")
        .arg("export")
        .arg(msi)
        .arg(table)
        .output()
        .expect("running msiinfo (Debian's msitools)");
    assert!(
        output.status.success(),
        "msiinfo export {table}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(3)
        .map(|line| {
            line.trim_end_matches('\r')
                .split('\t')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// Runs a program of the Wine prefix (`msiexec`, `reg`) with `args`, and waits.
fn wine_tool(tool: &str, args: &[&str]) -> Output {
    wine(Path::new(tool), args, "")
}

/// The Linux path of the Wine prefix's `%ProgramData%\cntt-agent`.
fn wine_program_data() -> PathBuf {
    let prefix = std::env::var_os("WINEPREFIX")
        .map_or_else(|| repo_file("target/wine/prefix"), PathBuf::from);
    prefix.join("drive_c/ProgramData/cntt-agent")
}

/// A Windows path with backslashes, as an officer types it.
fn backslashed(path: &Path) -> String {
    windows_path(path).replace('/', "\\")
}

/// The product codes of the CNTT Agent products installed in the Wine prefix.
fn installed_products() -> Vec<String> {
    let products = wine_tool(
        "reg",
        &[
            "query",
            "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
            "/s",
        ],
    );
    let listing = String::from_utf8_lossy(&products.stdout).into_owned();
    let mut codes = Vec::new();
    let mut key = "";
    for line in listing.lines() {
        if line.starts_with("HKEY_") {
            key = line.trim_end().rsplit('\\').next().unwrap_or_default();
        } else if line.contains("DisplayName") && line.trim_end().ends_with("CNTT Agent") {
            codes.push(key.to_owned());
        }
    }
    codes
}

#[test]
fn msi_tables_install_the_service_and_nothing_else() {
    let Some(msi) = windows_msi() else {
        return;
    };
    let files = msi_table(&msi, "File");
    let names: Vec<&str> = files.iter().map(|row| row[2].as_str()).collect();
    assert_eq!(
        names,
        ["cntt-agent.exe"],
        "only the agent, never the Wine stand-in DLL"
    );
    assert!(!format!("{files:?}")
        .to_lowercase()
        .contains("bcryptprimitives"));

    let services = msi_table(&msi, "ServiceInstall");
    assert_eq!(services.len(), 1, "{services:?}");
    let service = &services[0];
    // Name, display name, own process (16), automatic start (2), normal errors (1), LocalSystem,
    // arguments, component.
    assert_eq!(
        (
            service[1].as_str(),
            service[3].as_str(),
            service[4].as_str(),
            service[5].as_str(),
            service[8].as_str(),
            service[10].as_str(),
            service[11].as_str()
        ),
        (
            "cntt-agent",
            "16",
            "2",
            "1",
            "LocalSystem",
            "service run",
            "AgentExe"
        ),
        "{service:?}"
    );
    let controls = msi_table(&msi, "ServiceControl");
    // Start on install (1), stop on install (2) and uninstall (32), remove on uninstall (128).
    assert_eq!(controls.len(), 1, "{controls:?}");
    assert_eq!(
        (controls[0][1].as_str(), controls[0][2].as_str()),
        ("cntt-agent", "163")
    );

    let upgrade_code = "{3B2E66A4-F60A-4B45-8512-C443D2A7A474}";
    let upgrades = msi_table(&msi, "Upgrade");
    assert!(
        upgrades
            .iter()
            .any(|row| row[0] == upgrade_code && row[6] == "WIX_UPGRADE_DETECTED"),
        "{upgrades:?}"
    );
    let properties = msi_table(&msi, "Property");
    let property = |name: &str| {
        properties
            .iter()
            .find(|row| row[0] == name)
            .map(|row| row[1].clone())
            .unwrap_or_default()
    };
    assert_eq!(property("UpgradeCode").to_uppercase(), upgrade_code);
    assert_eq!(property("MsiHiddenProperties"), "ENROLL_TOKEN");
    let secure = property("SecureCustomProperties");
    for name in [
        "COLLECTOR_URL",
        "CA_FILE",
        "ENROLL_TOKEN",
        "WIX_UPGRADE_DETECTED",
    ] {
        assert!(
            secure.split(';').any(|item| item == name),
            "{name} in {secure}"
        );
    }
    let components = msi_table(&msi, "Component");
    let enrollment = components
        .iter()
        .find(|row| row[0] == "Enrollment")
        .expect("the enrollment component");
    assert_eq!(enrollment[4], "COLLECTOR_URL AND CA_FILE AND ENROLL_TOKEN");
    let registry = msi_table(&msi, "Registry");
    let values: Vec<(&str, &str)> = registry
        .iter()
        .map(|row| (row[3].as_str(), row[4].as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("CollectorUrl", "[COLLECTOR_URL]"),
            ("CaFile", "[CA_FILE]"),
            ("EnrollToken", "[ENROLL_TOKEN]")
        ]
    );
    // The key holding the token is for SYSTEM and Administrators only (GENERIC_ALL).
    let locks = msi_table(&msi, "LockPermissions");
    let token_locks: Vec<(&str, &str)> = locks
        .iter()
        .filter(|row| row[0] == "EnrollToken" && row[1] == "Registry")
        .map(|row| (row[3].as_str(), row[4].as_str()))
        .collect();
    assert_eq!(
        token_locks,
        [("SYSTEM", "268435456"), ("Administrators", "268435456")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msi_installs_enrolls_upgrades_and_uninstalls_under_wine() {
    let Some(msi) = windows_msi() else {
        return;
    };
    let _wine = WINE.lock().await;
    // Wine ends services when its last ordinary program exits: one waits for input throughout.
    let mut keepalive = ChildGuard(
        wine_command(Path::new("cmd"), &["/c", "pause"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cmd under wine"),
    );
    // What an interrupted run left installed would make this install a repair.
    for product in installed_products() {
        let _ = wine_tool("msiexec", &["/x", &product, "/qn"]);
    }
    let program_data = wine_program_data();
    let _ = std::fs::remove_dir_all(&program_data);
    std::fs::create_dir_all(&program_data).unwrap();
    std::fs::write(
        program_data.join("agent.toml"),
        "[heartbeat]\ninterval = \"1s\"\n[uplink]\nlinger = \"100ms\"\n[probes]\ndefaults = false\n",
    )
    .unwrap();

    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let token = collector
        .enroll_token("664", 1, Duration::from_secs(3600))
        .await;
    let msi_path = backslashed(&msi);
    let install = wine_tool(
        "msiexec",
        &[
            "/i",
            &msi_path,
            "/qn",
            &format!("COLLECTOR_URL={}", collector.base_url),
            &format!("CA_FILE={}", backslashed(&collector.ca_pem)),
            &format!("ENROLL_TOKEN={token}"),
        ],
    );
    assert!(install.status.success(), "{}", text(&install));
    let enrolled = eventually(
        WINE_WAIT,
        "the MSI's service enrolled and delivering",
        || async {
            let agents = collector.store.agents_list(None).await.unwrap();
            agents.into_iter().find(|listed| {
                listed.last_seen_at.is_some() && listed.heartbeat_interval == Some(1)
            })
        },
    )
    .await;
    assert_eq!(enrolled.unit_code, "664");
    let state = program_data.join("state");
    assert!(state.join("credential.json").is_file());
    let token_value = wine_tool(
        "reg",
        &[
            "query",
            "HKLM\\SOFTWARE\\cntt-agent\\Enrollment",
            "/v",
            "EnrollToken",
        ],
    );
    assert!(
        !token_value.status.success(),
        "the service deletes the token once enrolled: {}",
        text(&token_value)
    );
    let log = std::fs::read_to_string(state.join("logs").join("agent.log")).unwrap();
    assert!(
        log.contains("enrolled with the settings given to the installer"),
        "{log}"
    );
    assert!(!log.contains(&token), "the token never reaches the log");

    // A newer MSI, without properties, upgrades in place: same identity, still delivering.
    let newer_dir = tempfile::tempdir().unwrap();
    let build = Command::new(repo_file("packaging/windows/build-msi"))
        .arg(newer_dir.path())
        .env("CNTT_AGENT_EXE", windows_agent().unwrap())
        .env("CNTT_MSI_VERSION", "99.0.0")
        .output()
        .expect("running build-msi");
    assert!(build.status.success(), "{}", text(&build));
    let newer = backslashed(&newer_dir.path().join("cntt-agent-99.0.0-x64.msi"));
    let upgrade = wine_tool("msiexec", &["/i", &newer, "/qn"]);
    assert!(upgrade.status.success(), "{}", text(&upgrade));
    let products = installed_products();
    assert_eq!(
        products.len(),
        1,
        "the upgrade replaced the product: {products:?}"
    );
    let version = wine_tool(
        "reg",
        &[
            "query",
            &format!(
                "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{}",
                products[0]
            ),
            "/v",
            "DisplayVersion",
        ],
    );
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("99.0.0"),
        "{}",
        text(&version)
    );
    let seen_before = collector.store.agents_list(None).await.unwrap()[0].last_seq;
    eventually(
        WINE_WAIT,
        "the upgraded service delivering as the same agent",
        || async {
            let agents = collector.store.agents_list(None).await.unwrap();
            (agents.len() == 1 && agents[0].id == enrolled.id && agents[0].last_seq > seen_before)
                .then_some(())
        },
    )
    .await;

    let uninstall = wine_tool("msiexec", &["/x", &newer, "/qn"]);
    assert!(uninstall.status.success(), "{}", text(&uninstall));
    assert_eq!(installed_products(), Vec::<String>::new());
    let service = wine_tool(
        "reg",
        &[
            "query",
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\cntt-agent",
        ],
    );
    assert!(
        !service.status.success(),
        "service removed: {}",
        text(&service)
    );
    let prefix_program = program_data
        .parent()
        .and_then(Path::parent)
        .expect("drive_c")
        .join("Program Files/cntt-agent/cntt-agent.exe");
    assert!(
        !prefix_program.exists(),
        "{} removed",
        prefix_program.display()
    );
    assert!(
        state.join("credential.json").is_file(),
        "the state folder is kept for a reinstall"
    );
    // Wine's msiexec may return before the service has reported itself stopped.
    eventually(WAIT, "the service's graceful stop in its log", || async {
        let log = std::fs::read_to_string(state.join("logs").join("agent.log")).ok()?;
        log.trim_end().ends_with("service stopped").then_some(())
    })
    .await;

    // A fresh machine installed without properties: the service waits, the officer enrolls from
    // an administrator's console, and the waiting service starts delivering by itself.
    std::fs::remove_dir_all(&state).unwrap();
    let plain = wine_tool("msiexec", &["/i", &msi_path, "/qn"]);
    assert!(plain.status.success(), "{}", text(&plain));
    eventually(WINE_WAIT, "the service waiting for enrollment", || async {
        let log = std::fs::read_to_string(state.join("logs").join("agent.log")).ok()?;
        log.contains("not enrolled and no enrollment settings from the installer")
            .then_some(())
    })
    .await;
    let second_token = collector
        .enroll_token("24700", 1, Duration::from_secs(3600))
        .await;
    let ca = backslashed(&collector.ca_pem);
    let enroll = wine(
        &prefix_program,
        &["enroll", "--server", &collector.base_url, "--ca", &ca],
        &format!("{second_token}\n"),
    );
    assert!(enroll.status.success(), "{}", text(&enroll));
    eventually(
        WINE_WAIT,
        "the waiting service delivering after enroll",
        || async {
            let agents = collector.store.agents_list(None).await.unwrap();
            agents
                .into_iter()
                .find(|listed| listed.unit_code == "24700" && listed.last_seen_at.is_some())
        },
    )
    .await;
    for product in installed_products() {
        let removed = wine_tool("msiexec", &["/x", &product, "/qn"]);
        assert!(removed.status.success(), "{}", text(&removed));
    }
    keepalive.kill();
}
