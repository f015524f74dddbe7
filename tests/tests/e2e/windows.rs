//! The Windows agent under Wine (issue 16): the `cntt-agent.exe` cross-built for
//! `x86_64-pc-windows-gnu` runs under Debian's Wine against a real collector on loopback:
//! `--version`, `check` (ICMP through `icmp.dll`, a TCP check of the collector), `enroll` (the
//! token on standard input), `run` until the collector has its first heartbeat with a Windows host
//! snapshot, and the officer's `status` and `incident report` from a console beside the running
//! agent. The service itself (install, start, stop, uninstall, enrollment from the registry) is
//! exercised through the MSI by `packaging/windows/test-msi`.
//!
//! `scripts/test` builds the `.exe` (`tests/wine/setup`, then `cargo build --target
//! x86_64-pc-windows-gnu -p cntt-agent`); when it was not built, the test says so and how to build
//! it, and passes without running (a plain `cargo test` on a machine without MinGW and Wine).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use e2e::{eventually, repo_file, spawn_collector, sqlite_db, ChildGuard};

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

/// Runs the agent under Wine with `args`, `stdin` as its standard input, and waits.
fn wine(exe: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = wine_command(exe, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tests/wine/run");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("writing standard input");
    child.wait_with_output().expect("waiting for wine")
}

fn wine_command(exe: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(repo_file("tests/wine/run"));
    command.arg(exe).args(args);
    command
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
    let as_str = |args: &[String]| args.iter().map(String::as_str).collect::<Vec<_>>();

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
