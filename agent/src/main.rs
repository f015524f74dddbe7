//! Command line of `cntt-agent`: parses arguments, loads the config, starts logging and hands over
//! to the library. Errors are reported here, once, with their full chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cntt_agent::config::Config;
use cntt_agent::identity::{enroll, Identity};
use cntt_agent::outbox::Outbox;
use cntt_common::wire::{
    Event, Incident, IncidentKind, IncidentPhase, IncidentSource, Payload, Severity,
};
use cntt_common::Secret;
use time::OffsetDateTime;

/// Monitoring agent for an agency's IT (cán bộ chuyên trách CNTT).
///
/// Sends heartbeats with the state of this machine to the provincial collector (run by the Sở,
/// the provincial IT authority), keeping everything on disk while the WAN is down. First steps:
///   cntt-agent enroll --server https://collector.example:8443 --ca ca.pem
///   (it reads the enrollment token from standard input, or from CNTT_ENROLL_TOKEN)
///   cntt-agent run
#[derive(Debug, Parser)]
#[command(name = "cntt-agent", version, verbatim_doc_comment)]
struct Cli {
    #[arg(long, short, global = true, env = "CNTT_AGENT_CONFIG", help = config_help())]
    config: Option<PathBuf>,
    /// Log filter, e.g. info, debug, cntt_agent=debug.
    #[arg(long, global = true, env = "CNTT_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

const DEFAULT_CONFIG: &str = "/etc/cntt-agent/agent.toml";

/// The help of `--config`, naming the default file (issue 16: `--help` did not say which).
fn config_help() -> String {
    format!(
        "Configuration file (TOML) [default: {DEFAULT_CONFIG} (Windows: %ProgramData%\\cntt-agent\\agent.toml); built-in defaults apply when it does not exist]; every setting is in agent.example.toml"
    )
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join the collector with a one-time enrollment token from the Sở (the provincial IT authority).
    Enroll {
        /// Collector URL, e.g. https://collector.example:8443.
        #[arg(long)]
        server: String,
        /// Enrollment token. Better left out: the agent then reads it from CNTT_ENROLL_TOKEN or
        /// standard input, which keeps it out of `ps` and the shell history.
        #[arg(long, env = "CNTT_ENROLL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The collector's CA certificate (ca.pem from `cntt-collector tls init`); it is pinned.
        #[arg(long)]
        ca: PathBuf,
        /// Enroll again even if this machine is already enrolled.
        #[arg(long)]
        force: bool,
    },
    /// Run until SIGINT or SIGTERM.
    Run,
    /// Check every target once and print a table; exits 1 when something is down.
    Check,
    /// Show enrollment, outbox depth, last delivery, open incidents and drop counters.
    Status,
    /// File an incident by hand (security incidents above all).
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Simulate a fleet of agents for load tests: each enrolls and sends through the agent's own
    /// outbox, uplink and detector, with made-up readings and scripted outages.
    ///
    /// Example:
    ///   cntt-agent simulate --agents 5000 --units units-tokens.csv --server https://127.0.0.1:8443 \
    ///     --ca ca.pem --outage link:663@2m+5m --outage server:24700@1m+3m --outage disk:664@0s+10m
    #[command(verbatim_doc_comment)]
    Simulate {
        /// How many agents.
        #[arg(long)]
        agents: usize,
        /// CSV `unit,token[,district]` with a header: an enrollment token per unit.
        #[arg(long)]
        units: PathBuf,
        /// Collector URL.
        #[arg(long)]
        server: String,
        /// The collector's CA certificate.
        #[arg(long)]
        ca: PathBuf,
        /// Folder of the agents' state folders; agents already enrolled there are reused.
        #[arg(long, default_value = "simulate")]
        state_dir: PathBuf,
        /// Heartbeat interval of each agent.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        heartbeat: std::time::Duration,
        /// Interval between two rounds of checks of each agent.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        probe_every: std::time::Duration,
        /// Stop after this long (default: until SIGINT or SIGTERM).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// A scripted outage, KIND:CODE@START+LENGTH with KIND link, server or disk and CODE a unit
        /// or district code; repeat for several.
        #[arg(long = "outage")]
        outages: Vec<cntt_agent::simulate::Outage>,
        /// Agents of a unit or district that come back from a WAN cut, CODE:LENGTH (e.g. 663:24h):
        /// their outboxes start with LENGTH of records, dated in the past.
        #[arg(long)]
        backlog: Option<cntt_agent::simulate::Backlog>,
        /// At the end, wait this long at most for the outboxes to empty.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        drain: std::time::Duration,
        /// Write the figures of the run (events recorded and pending, round trips, backlog
        /// delivery) to this JSON file.
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Give each agent its own HTTPS client, hence its own connections and TLS sessions, as
        /// real agents have (default: one client shared by all, a few hundred connections at
        /// most). Raise the open-files limit (`ulimit -n`) above the number of agents.
        #[arg(long)]
        client_per_agent: bool,
    },
    /// Periodic reports of the IT officer (quarter, half-year, year; QĐ 02/2017 Điều 12.1).
    #[command(subcommand)]
    Report(ReportCommand),
    /// The Windows service (as administrator): install, uninstall, start, stop. On Linux systemd
    /// runs the agent (cntt-agent.service).
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Register the service (automatic start, LocalSystem), with --config when given.
    Install,
    /// Stop the service and remove it; the state folder is kept.
    Uninstall,
    /// Start the service.
    Start,
    /// Stop the service; unsent events stay in the outbox.
    Stop,
    /// What Windows starts; not for people (use `run` in a console).
    #[command(hide = true)]
    Run,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Write a draft report for a period, prefilled with the unit's monitoring figures and
    /// incidents. Works offline from the figures the agent kept last.
    ///
    /// Example: cntt-agent report draft --period 2026-Q4
    /// then edit the file (sections 1 to 8) and run: cntt-agent report submit <file>
    #[command(verbatim_doc_comment)]
    Draft {
        /// The period: 2026-Q4 (quarter), 2026-H1 (half-year), 2026-9M, 2026 (year), 2026-M11.
        #[arg(long)]
        period: String,
        /// The reporting scheme, when several share the period's frequency.
        #[arg(long)]
        scheme: Option<String>,
        /// File to write; default bao-cao-<period>.md in the current folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check a report and queue it for the Sở. It is kept on disk and sent when the
    /// collector can be reached; its submission time is now, even if the WAN is down.
    /// Submitting again keeps every version.
    #[command(verbatim_doc_comment)]
    Submit {
        /// The report file written by `report draft` and filled in.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum IncidentCommand {
    /// Report an incident; it travels through the outbox like everything else.
    ///
    /// Example:
    ///   cntt-agent incident report --kind security --title "Phát hiện mã độc trên máy kế toán" \
    ///     --discovered-at "23/11/2026 08:12" --system "Máy kế toán 02" --severity high
    #[command(verbatim_doc_comment)]
    Report {
        /// security, server, lan, wan, internet, host or other.
        #[arg(long, value_parser = parse_incident_kind)]
        kind: IncidentKind,
        /// One line saying what happened (in Vietnamese).
        #[arg(long)]
        title: String,
        /// What happened, what was seen, what was done so far.
        #[arg(long, default_value = "")]
        description: String,
        /// When it was discovered, Vietnam time: "dd/mm/yyyy hh:mm" or "yyyy-mm-dd hh:mm"; now when absent.
        #[arg(long, value_parser = parse_local_time)]
        discovered_at: Option<OffsetDateTime>,
        /// A system affected; repeat for several.
        #[arg(long = "system")]
        systems: Vec<String>,
        /// low, medium, high or critical.
        #[arg(long, default_value = "high", value_parser = parse_severity)]
        severity: Severity,
    },
}

fn parse_incident_kind(text: &str) -> Result<IncidentKind, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("{text:?} is not one of security, server, lan, wan, internet, host, other")
    })
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not one of low, medium, high, critical"))
}

/// Reads a Vietnam-time moment as officers write it.
fn parse_local_time(text: &str) -> Result<OffsetDateTime, String> {
    use time::macros::format_description;
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    let formats = [
        format_description!("[day]/[month]/[year] [hour]:[minute]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    let vietnam = time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset");
    formats
        .iter()
        .find_map(|format| time::PrimitiveDateTime::parse(text, format).ok())
        .map(|local| local.assume_offset(vietnam))
        .ok_or_else(|| {
            format!("{text:?} is not a time like \"23/11/2026 08:12\" or \"2026-11-23 08:12\"")
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Service(ServiceCommand::Run) = cli.command {
        // The service logs to its state folder: it has no terminal.
        return match service_run(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing(&cli.log_level, &cli.log_format);
    // The agent is I/O-bound: two workers are plenty, and each thread costs resident memory on the
    // many-core machines it is installed on. Blocking work (DNS lookups, file syncs) is brief.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            let _ = std::io::stdout().write_all(output.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: never in journald, files or pipes (issue 16).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The config named by `--config`, else the platform's default file if it exists, else defaults.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    match &cli.config {
        Some(path) => Config::load(path, false),
        None => Config::load(&cntt_agent::platform::default_config_path(), true),
    }
}

/// `cntt-agent service run`, started by the Windows service control manager.
fn service_run(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    cntt_agent::platform::service::run(config, &cli.log_level)
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Enroll {
            server,
            token,
            ca,
            force,
        } => {
            let token = match token {
                Some(token) => token,
                None => read_token_from_stdin()?,
            };
            let identity =
                enroll(&server, &Secret::new(token), &ca, &config.state_dir, force).await?;
            let warning = identity
                .enroll_warning
                .as_deref()
                .map(|warning| format!("WARNING: {warning}\n"))
                .unwrap_or_default();
            Ok(format!(
                "enrolled as agent {} of {} ({})\n{warning}credential saved in {} (owner-only); CA pinned\nnext: cntt-agent run\n",
                identity.agent_id,
                identity.unit_code,
                identity.unit_name,
                config.state_dir.display()
            ))
        }
        Command::Run => {
            cntt_agent::run(config, shutdown_signal()).await?;
            Ok(String::new())
        }
        Command::Service(command) => {
            use cntt_agent::platform::ServiceAction;
            let action = match command {
                ServiceCommand::Install => ServiceAction::Install,
                ServiceCommand::Uninstall => ServiceAction::Uninstall,
                ServiceCommand::Start => ServiceAction::Start,
                ServiceCommand::Stop => ServiceAction::Stop,
                ServiceCommand::Run => unreachable!("handled in main before the runtime starts"),
            };
            cntt_agent::platform::service::command(action, cli.config.as_deref())
        }
        Command::Simulate {
            agents,
            units,
            server,
            ca,
            state_dir,
            heartbeat,
            probe_every,
            duration,
            outages,
            backlog,
            drain,
            summary,
            client_per_agent,
        } => {
            let fleet = cntt_agent::simulate::Fleet {
                agents,
                units_file: units,
                server,
                ca,
                state_dir,
                heartbeat,
                probe_every,
                duration,
                outages,
                backlog,
                drain,
                summary,
                client_per_agent,
            };
            cntt_agent::simulate::run(fleet, shutdown_signal()).await
        }
        Command::Status => {
            let identity = Identity::load(&config.state_dir)?;
            // A running agent holds the lock; then read its outbox without touching it.
            let running = cntt_agent::lock_state_dir(&config.state_dir).is_err();
            let stats = Outbox::inspect(&config.state_dir.join("outbox"))?;
            let board = cntt_agent::status::Board::load(&config.state_dir)?;
            Ok(cntt_agent::report::status(
                &identity, running, &stats, &board,
            ))
        }
        Command::Check => {
            let identity = Identity::load(&config.state_dir).ok();
            let server = config
                .uplink
                .url
                .clone()
                .or(identity.map(|identity| identity.server))
                .unwrap_or_default();
            let prober = std::sync::Arc::new(cntt_agent::probe::Prober::new());
            let targets = cntt_agent::effective_targets(&config, &server, prober.icmp_mode());
            let (table, all_up) = cntt_agent::report::check(&prober, &targets).await;
            if all_up {
                Ok(table)
            } else {
                let _ = std::io::stdout().write_all(table.as_bytes());
                anyhow::bail!("một số mục tiêu không đạt (some targets are down)")
            }
        }
        Command::Report(ReportCommand::Draft {
            period,
            scheme,
            out,
            force,
        }) => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("bao-cao-{period}.md")));
            cntt_agent::reports::draft_command(&config, &period, scheme.as_deref(), &out, force)
                .await
        }
        Command::Report(ReportCommand::Submit { file }) => {
            cntt_agent::reports::submit_command(&config, &file, OffsetDateTime::now_utc())
        }
        Command::Incident(IncidentCommand::Report {
            kind,
            title,
            description,
            discovered_at,
            systems,
            severity,
        }) => {
            if title.trim().is_empty() {
                anyhow::bail!("--title must not be empty");
            }
            let now = OffsetDateTime::now_utc();
            let incident = Incident {
                incident_id: uuid::Uuid::new_v4(),
                phase: IncidentPhase::Opened,
                kind,
                source: IncidentSource::Manual,
                severity,
                title: title.trim().to_owned(),
                description,
                target: None,
                started_at: discovered_at.unwrap_or(now),
                ended_at: None,
                discovered_at: Some(discovered_at.unwrap_or(now)),
                systems_affected: systems,
                evidence: Vec::new(),
                consequences: Vec::new(),
            };
            if let Err(problem) = incident.check_lengths() {
                anyhow::bail!(
                    "{problem}: the collector would refuse it; shorten it (the title to at most {} characters, details in --description)",
                    cntt_common::wire::MAX_INCIDENT_TITLE
                );
            }
            let id = incident.incident_id;
            let event = Event::new(0, now, &Payload::Incident(Box::new(incident)));
            cntt_agent::spool::submit(&config.state_dir, &event)?;
            // With no agent running, record it now so it is in the outbox for the next run.
            if let Ok(_lock) = cntt_agent::lock_state_dir(&config.state_dir) {
                let (mut outbox, _report) =
                    Outbox::open(&config.state_dir.join("outbox"), config.outbox.clone())?;
                cntt_agent::spool::drain(&config.state_dir, &mut outbox)?;
            }
            Ok(format!(
                "Đã ghi nhận sự cố {id}.\nBáo cáo sẽ được gửi về máy chủ giám sát của Sở ngay khi có kết nối; nó không bị mất khi mạng gián đoạn.\n"
            ))
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM; stop with Ctrl-C");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Reads the enrollment token: typed at the terminal without being echoed when standard input is
/// one, else one line of standard input (piped in), so the token never appears on a command line
/// (issue 13, L4) nor on the screen.
fn read_token_from_stdin() -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let token = rpassword::prompt_password("Enrollment token (not shown as you type): ")
            .context("reading the enrollment token from the terminal")?;
        return non_empty_token(&token);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the enrollment token from standard input")?;
    non_empty_token(&line)
}

/// The token as typed or piped, trimmed; an error when nothing was given.
fn non_empty_token(text: &str) -> anyhow::Result<String> {
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!(
            "no enrollment token: type it when asked, pipe it on standard input or set CNTT_ENROLL_TOKEN"
        );
    }
    Ok(token.to_owned())
}
