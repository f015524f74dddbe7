//! The `cntt-agent` binary as an IT officer meets it.

use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cntt-agent"))
        .args(args)
        .env_remove("CNTT_AGENT_CONFIG")
        .output()
        .unwrap()
}

/// A state folder with nothing enrolled: its config file (naming the folder) and an empty CA file.
fn unenrolled() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "").unwrap();
    (dir, config, ca)
}

#[test]
fn help_teaches_enrollment() {
    let help = String::from_utf8(agent(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("cntt-agent enroll --server") && help.contains("run"),
        "{help}"
    );
}

#[test]
fn help_names_the_default_config_file() {
    let help = String::from_utf8(agent(&["--help"]).stdout).unwrap();
    assert!(help.contains("/etc/cntt-agent/agent.toml"), "{help}");
}

/// Logs written to a pipe (journald, a file) carry no colour codes (issue 16).
#[test]
fn logs_off_a_terminal_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    // One HTTP check of a closed loopback port: the HTTP client logs at trace level.
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[probes]\ndefaults = false\n[[target]]\nname = \"x\"\nkind = \"server\"\ncheck = \"http\"\naddress = \"http://127.0.0.1:1/\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let output = agent(&[
        "--config",
        config.to_str().unwrap(),
        "--log-level",
        "trace",
        "check",
    ]);
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("TRACE"), "a log line was written:\n{err}");
    assert!(!err.contains('\u{1b}'), "no escape codes:\n{err:?}");
}

#[test]
fn run_without_enrollment_says_what_to_do() {
    let (_dir, config, _ca) = unenrolled();
    let output = agent(&["--config", config.to_str().unwrap(), "run"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("not enrolled") && err.contains("cntt-agent enroll"),
        "{err}"
    );
}

#[test]
fn enroll_refuses_plain_http_and_unknown_config_keys() {
    let (_dir, config, ca) = unenrolled();
    let output = agent(&[
        "--config",
        config.to_str().unwrap(),
        "enroll",
        "--server",
        "http://collector",
        "--token",
        "t",
        "--ca",
        ca.to_str().unwrap(),
    ]);
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("must start with https://"), "{err}");
    std::fs::write(&config, "heartbeat_every = 5\n").unwrap();
    let output = agent(&["--config", config.to_str().unwrap(), "status"]);
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("unknown field `heartbeat_every`"), "{err}");
}

#[test]
fn report_commands_teach_and_refuse_without_enrollment() {
    let help = String::from_utf8_lossy(&agent(&["report", "draft", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--period") && help.contains("2026-Q4") && help.contains("report submit"),
        "{help}"
    );
    let (dir, config, _ca) = unenrolled();
    let report = dir.path().join("bao-cao.md");
    std::fs::write(&report, "# không có phần thông tin\n").unwrap();
    let output = agent(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "submit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("enroll"), "{stderr}");
}

/// On Linux the Windows service commands explain, in Vietnamese, that systemd runs the agent.
#[cfg(unix)]
#[test]
fn service_commands_name_the_systemd_unit_off_windows() {
    for action in ["install", "uninstall", "start", "stop", "run"] {
        let output = agent(&["service", action]);
        assert_eq!(output.status.code(), Some(1), "service {action}");
        let err = String::from_utf8(output.stderr).unwrap();
        assert!(
            err.contains("chỉ dùng trên Windows")
                && err.contains("systemctl enable --now cntt-agent"),
            "service {action}: {err}"
        );
    }
}

/// The enrollment token typed at a terminal is not echoed (the screen, a shared session, a
/// recording), and piped in it is read all the same. The terminal is a real pseudo-terminal, driven
/// by Python's `pty` module: the token is typed only once the prompt is shown, as a person would.
#[test]
fn the_enrollment_token_is_not_echoed_at_a_terminal() {
    let (_dir, config, ca) = unenrolled();
    let token = "sekret-4711-token";
    // After the token is read the agent refuses the plain http:// address: proof that it got there.
    let args = [
        env!("CARGO_BIN_EXE_cntt-agent"),
        "--config",
        config.to_str().unwrap(),
        "enroll",
        "--server",
        "http://collector",
        "--ca",
        ca.to_str().unwrap(),
    ];
    const DRIVE: &str = r#"
import os, pty, sys, termios, time
token, args = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop("CNTT_AGENT_CONFIG", None)
    os.environ.pop("CNTT_ENROLL_TOKEN", None)
    os.execv(args[0], args)
seen = b""
deadline = time.time() + 20
while b"not shown" not in seen and time.time() < deadline:
    seen += os.read(fd, 4096)
# The prompt is written just before echo is turned off: a person never types that fast, a script
# does. Wait (a while at most) for the terminal to stop echoing, as its settings on the master say.
while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < deadline:
    time.sleep(0.01)
os.write(fd, token.encode() + b"\r")
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
"#;
    let output = Command::new("python3")
        .args(["-c", DRIVE, token])
        .args(args)
        .output()
        .expect("python3 runs");
    let screen = String::from_utf8(output.stdout).unwrap();
    assert!(
        screen.contains("Enrollment token (not shown as you type)"),
        "the prompt is shown:\n{screen}"
    );
    assert!(
        screen.contains("must start with https://"),
        "the token was read:\n{screen}"
    );
    assert!(
        !screen.contains(token),
        "the token is not echoed:\n{screen}"
    );

    // Piped in (a script, `read -rs` then a pipe), and refused when nothing comes.
    let piped = |input: &str| {
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .env_remove("CNTT_AGENT_CONFIG")
            .env_remove("CNTT_ENROLL_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stderr).unwrap()
    };
    let err = piped(&format!("{token}\n"));
    assert!(err.contains("must start with https://"), "{err}");
    let err = piped("");
    assert!(err.contains("no enrollment token"), "{err}");
}
