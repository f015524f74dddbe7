//! Command line of `cntt-agent`: parses arguments, loads the config, starts logging and hands over
//! to the library. Errors are reported here, once, with their full chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cntt_agent::config::Config;
use cntt_agent::identity::{enroll, Identity};
use cntt_agent::outbox::Outbox;
use cntt_common::Secret;

/// Monitoring agent for an agency's IT (cán bộ chuyên trách CNTT).
///
/// Sends heartbeats with the state of this machine to the provincial collector (Sở TT&TT), keeping
/// everything on disk while the WAN is down. First steps:
///   cntt-agent enroll --server https://collector.example:8443 --ca ca.pem --token cntt_enroll_...
///   cntt-agent run
#[derive(Debug, Parser)]
#[command(name = "cntt-agent", version, verbatim_doc_comment)]
struct Cli {
    /// Configuration file (TOML); see agent/agent.example.toml. Defaults apply when the default
    /// file does not exist.
    #[arg(long, short, global = true, env = "CNTT_AGENT_CONFIG")]
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Join the collector with a one-time enrollment token from the Sở TT&TT.
    Enroll {
        /// Collector URL, e.g. https://collector.example:8443.
        #[arg(long)]
        server: String,
        /// Enrollment token (or set CNTT_ENROLL_TOKEN, which keeps it out of the shell history).
        #[arg(long, env = "CNTT_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// The collector's CA certificate (ca.pem from `cntt-collector tls init`); it is pinned.
        #[arg(long)]
        ca: PathBuf,
        /// Enroll again even if this machine is already enrolled.
        #[arg(long)]
        force: bool,
    },
    /// Run until SIGINT or SIGTERM.
    Run,
    /// Show enrollment and how many events wait in the outbox.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level, &cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let config = match &cli.config {
        Some(path) => Config::load(path, false)?,
        None => Config::load(std::path::Path::new(DEFAULT_CONFIG), true)?,
    };
    match cli.command {
        Command::Enroll {
            server,
            token,
            ca,
            force,
        } => {
            let identity =
                enroll(&server, &Secret::new(token), &ca, &config.state_dir, force).await?;
            Ok(format!(
                "enrolled as agent {} of {} ({})\ncredential saved in {} (owner-only); CA pinned\nnext: cntt-agent run\n",
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
        Command::Status => {
            let identity = Identity::load(&config.state_dir)?;
            // A running agent holds the lock; then read its outbox without touching it.
            let running = cntt_agent::lock_state_dir(&config.state_dir).is_err();
            let stats = Outbox::inspect(&config.state_dir.join("outbox"))?;
            Ok(format!(
                "agent {}\nunit {} ({})\ncollector {}\nrunning: {}\noutbox: {} events waiting ({} critical), {} bytes, {} routine samples dropped so far\n",
                identity.agent_id,
                identity.unit_code,
                identity.unit_name,
                identity.server,
                if running { "yes" } else { "no" },
                stats.records,
                stats.critical_records,
                stats.bytes,
                stats.dropped_routine_total
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
