//! Command line of `cntt-collector`: parses arguments, loads the config, starts logging and hands
//! over to the library. Errors are reported here, once, with their full chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cntt_collector::config::tls;
use cntt_collector::config::Config;
use cntt_collector::domain::auth::Role;
use cntt_collector::services::units::TreeOptions;
use cntt_collector::store::{redact_url, Store};
use cntt_collector::{admin, build};

/// mimalloc rather than glibc's malloc: ingest allocates and frees many small buffers across
/// threads, where glibc spent about a tenth of the collector's CPU (issue 15, measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: option 15 of mimalloc 2 and 3, which libmimalloc-sys does
/// not name (the test below checks it is the option whose default is 1,000 ms).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back to the system at once rather than after mimalloc's default second,
/// unless `MIMALLOC_PURGE_DELAY` says otherwise. A district's backlog arrives in a burst of
/// hundreds of requests: with the delay, the collector's resident memory in the fleet's recovery
/// run peaked at 173 MiB, with 100 ms at 162 MiB, without it at 130 and 152 MiB (two runs, two
/// days; docs/performance-fleet.md holds the latest); it costs about 5 % of
/// ingest throughput in pages faulted in again (issue 15, `scripts/fleetbench recovery` and
/// `scripts/ingestbench` sprints, figures in the closing notes).
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of mimalloc, which it reads atomically; no pointers.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

/// Keeps transparent huge pages off this process, unless `MIMALLOC_ALLOW_THP` is set. mimalloc 3
/// asks the kernel for them on its arenas (`madvise(MADV_HUGEPAGE)`), and where the kernel grants
/// them on request (`/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`, as on Debian) a 2 MiB
/// page stays resident whole for any block alive in it. Measured one after the other on one
/// morning (issue 15): in the fleet's recovery run (`scripts/fleetbench recovery`, 3 minutes) the
/// collector's peak resident memory was 156, 160 and 162 MiB with them and 123 and 131 MiB
/// without, and the backlogs drained sooner (87 and 91 s against 95 to 104); in
/// `scripts/ingestbench` on SQLite, 56 MiB against 90 and 91, at the same throughput (25.4k and
/// 29.0k requests in 20 s without, 25.1k and 23.3k with). Linux only: elsewhere there is nothing
/// to turn off.
#[allow(unsafe_code)]
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with integer arguments only; it sets a flag of this process (inherited by
        // children), read by the kernel when it faults pages in.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

/// Central collector of the provincial IT monitoring system, run by the provincial IT authority
/// (the Sở Khoa học và Công nghệ since 1 March 2025, the Sở TT&TT before).
///
/// Receives data from cntt-agent over HTTPS, stores it in SQLite or PostgreSQL, and serves the API.
/// First steps on a new server:
///   cntt-collector tls init --dir /etc/cntt-collector/tls --host collector.example
///   cntt-collector units import collector/data/dak-nong-units.csv
///   cntt-collector user create --username admin --name "Nguyễn Văn A" --role admin
///   cntt-collector api-token create --role admin --name "Sở KH&CN"
///   cntt-collector enroll-token create --unit 68.S.KHCN --uses 5 --ttl 7d
///   cntt-collector contacts import contacts.csv && cntt-collector notify test --contact 1
///   cntt-collector serve
#[derive(Debug, Parser)]
#[command(name = "cntt-collector", version, verbatim_doc_comment)]
struct Cli {
    /// Configuration file (TOML); see collector/collector.example.toml.
    #[arg(
        long,
        short,
        global = true,
        env = "CNTT_COLLECTOR_CONFIG",
        default_value = "/etc/cntt-collector/collector.toml"
    )]
    config: PathBuf,
    /// Log filter, e.g. info, debug, cntt_collector=debug.
    #[arg(long, global = true, env = "CNTT_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTPS server until SIGINT or SIGTERM.
    Serve,
    /// Certificates for sites without a PKI.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Agencies (đơn vị): import and show the hierarchy.
    #[command(subcommand)]
    Units(UnitsCommand),
    /// One-time tokens with which agents enroll into a unit.
    #[command(subcommand, name = "enroll-token")]
    EnrollToken(EnrollTokenCommand),
    /// People's accounts on the web console (log in at https://<listen.address>/).
    ///
    /// Roles: admin (the Sở, whole province), officer (one unit and its children; can act),
    /// viewer (read only), leadership (read only; lands on Tổng quan).
    /// A new account gets a one-time password, printed once (or read from standard input with
    /// --password-stdin; never on the command line); the first login must change it.
    /// Examples:
    ///   cntt-collector user create --username tuan.nv --name "Nguyễn Văn Tuấn" --role officer --unit 68.24670
    ///   echo "$INITIAL" | cntt-collector user create --username sotttt --name "Trần Thị B" --role admin --password-stdin
    ///   cntt-collector user list
    ///   cntt-collector user reset-password tuan.nv     (forgotten password or locked account)
    ///   cntt-collector user disable tuan.nv            (left the post; sessions end at once)
    #[command(subcommand, verbatim_doc_comment)]
    User(UserCommand),
    /// Tokens with which people use the API.
    #[command(subcommand, name = "api-token")]
    ApiToken(ApiTokenCommand),
    /// Enrolled agents.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// People notices go to: leadership, IT officers, the provincial IT authority's on-duty officers and leaders.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Units' information systems (named in incident reports) and reporting profiles.
    #[command(subcommand)]
    Systems(SystemsCommand),
    /// Notices to leadership by email and webhook.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Planned maintenance windows: problems are recorded and shown, nobody is told.
    ///
    /// During a window incidents are still detected and shown (marked "trong lịch bảo trì"), but
    /// no notice goes out and no unit or district outage is inferred; afterwards, problems still
    /// open are announced once. Down time in a unit's windows is shown apart in availability.
    /// Times are Vietnam time. Examples:
    ///   cntt-collector maintenance add --unit 68.24670 --start "2026-12-12 22:00" --duration 4h \
    ///       --repeat weekly --reason "Bảo trì đường truyền hằng tuần của nhà mạng"
    ///   cntt-collector maintenance add --agent 5f0c… --start "2026-12-06 08:00" --duration 2h --reason "Nâng cấp máy chủ"
    ///   cntt-collector maintenance list [--all]
    ///   cntt-collector maintenance cancel ID
    #[command(subcommand, verbatim_doc_comment)]
    Maintenance(MaintenanceCommand),
    /// Roll up and delete data older than the [retention] policy.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// IT officers (cán bộ chuyên trách CNTT): registry and the check against QĐ 02/2017 Điều 4.
    #[command(subcommand)]
    Officers(OfficersCommand),
    /// Reporting periods of a scheme: data window, due date and the rule behind it.
    ///
    /// Example: cntt-collector periods --scheme quarterly --year 2026
    /// Schemes: monthly, quarterly, half-year, nine-months, yearly, and any in [[reports.schemes]].
    #[command(verbatim_doc_comment, args_conflicts_with_subcommands = true)]
    Periods {
        #[command(subcommand)]
        action: Option<PeriodsCommand>,
        /// Scheme name.
        #[arg(long, default_value = "quarterly")]
        scheme: String,
        /// Year.
        #[arg(long)]
        year: Option<i32>,
    },
    /// Periodic reports: who has submitted, and the consolidated provincial report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
}

#[derive(Debug, Subcommand)]
enum OfficersCommand {
    /// Create or update officers from a CSV file. Columns by name: unit_code, full_name,
    /// degree_level (none, intermediate, college, university, master, doctorate) and it_degree
    /// (yes/no) are required; position, phone, email, degree_field, english_level, certificates,
    /// decision_number, decision_date, active_from, active_to, note are optional. A file with any
    /// bad row is refused whole.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// List officers with their qualification against Điều 4.
    List {
        /// Only this unit.
        #[arg(long)]
        unit: Option<String>,
    },
    /// Units with no qualified officer, and why.
    Check {
        /// On this date (YYYY-MM-DD); default today.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PeriodsCommand {
    /// Set the due date of one period by hand (e.g. the Sở announced another date), with the
    /// reason; audited.
    Override {
        /// Scheme name.
        #[arg(long)]
        scheme: String,
        /// Period, e.g. 2026-Q4.
        #[arg(long)]
        period: String,
        /// New due date, YYYY-MM-DD.
        #[arg(long)]
        due: String,
        /// Why, e.g. the letter that set it.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Each unit's standing for a period (on time, late, missing, pending, not required) and the
    /// reporting rate of each district and the province.
    Status {
        /// Period, e.g. 2026-Q4, 2026-H1, 2026.
        #[arg(long)]
        period: String,
        /// Scheme, when several share the period's frequency.
        #[arg(long)]
        scheme: Option<String>,
    },
    /// Write the consolidated provincial report of a period: an XLSX workbook (one row per unit)
    /// and a DOCX document in the Nghị định 30/2020 format, ready to sign.
    Consolidate {
        /// Period, e.g. 2026-Q4.
        #[arg(long)]
        period: String,
        /// Scheme, when several share the period's frequency.
        #[arg(long)]
        scheme: Option<String>,
        /// Folder to write into.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Make a private CA and a server certificate: ca.pem (give it to agents), ca-key.pem, server.pem,
    /// server-key.pem.
    Init {
        /// Folder to write into.
        #[arg(long)]
        dir: PathBuf,
        /// DNS name or IP address agents use to reach the collector; repeat for several.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UnitsCommand {
    /// Create or update units from a CSV file (header: code,name,kind,parent_code,valid_from,valid_to,
    /// successor_codes,note). A file with any bad row is refused whole.
    Import {
        /// The CSV file, e.g. collector/data/dak-nong-units.csv.
        file: PathBuf,
    },
    /// Print the unit tree.
    List {
        /// Start at this unit.
        #[arg(long)]
        root: Option<String>,
        /// Only units valid on this date (YYYY-MM-DD).
        #[arg(long)]
        at: Option<String>,
        /// Stop below this depth (0 = the top only).
        #[arg(long)]
        depth: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum EnrollTokenCommand {
    /// Create a token for one unit; prints it once.
    Create {
        /// Code of the unit the agents belong to, e.g. 68.S.KHCN or 68.24670.
        #[arg(long)]
        unit: String,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it stays valid, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
        /// Free text, e.g. who it was given to.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List tokens with their state.
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id from `enroll-token list`.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ApiTokenCommand {
    /// Create a token; prints it once.
    Create {
        /// admin (the provincial IT authority, everything), officer (one unit and its children), viewer (read-only).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Unit the token is limited to (required for officer, optional for viewer).
        #[arg(long)]
        unit: Option<String>,
        /// Whose token it is, e.g. a person's name.
        #[arg(long)]
        name: String,
        /// How long it stays valid, e.g. 90d; limits.api_token_ttl (a year) when absent.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
    },
    /// List tokens.
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id from `api-token list`.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; prints its one-time password once.
    Create {
        /// Login name: letters a-z, digits, '.', '_' or '-' (stored lowercase).
        #[arg(long)]
        username: String,
        /// Full name, as the console shows it.
        #[arg(long)]
        name: String,
        /// admin (whole province), officer (a unit and its children, can act), viewer (read
        /// only) or leadership (read only, lands on Tổng quan).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Unit code the account is limited to (required for officer; none for admin).
        #[arg(long)]
        unit: Option<String>,
        /// Read the one-time password from the first line of standard input instead of
        /// generating one (at least 10 characters; it must still be changed at first login).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts: username, name, role, unit, state (active, disabled, locked until), last
    /// login.
    List,
    /// Disable an account: it can no longer log in and its sessions end at once.
    Disable {
        /// Username from `user list`.
        username: String,
    },
    /// Give an account a new one-time password (forgotten password, or to lift a lockout); its
    /// sessions end and the next login must change it.
    ResetPassword {
        /// Username from `user list`.
        username: String,
        /// Read the one-time password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// List agents.
    List,
    /// Revoke an agent's credential.
    Revoke {
        /// Agent id from `agents list`.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the newest entries.
    List {
        /// Only this action, e.g. auth.failed or agent.enroll.
        #[arg(long)]
        action: Option<String>,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Check that no entry was changed, inserted or removed behind the collector's back.
    ///
    /// Every audit entry carries a hash: SHA-256 of the previous entry's hash and its own fields
    /// (id, time, actor, action, target, outcome, address, details). This recomputes the chain
    /// from its start to the newest entry and prints, in Vietnamese, how many entries were
    /// checked and the first broken one.
    ///
    /// Exit status: 0 when the chain is intact, 1 when it is broken (or on any error), so it can
    /// run from cron or a monitoring check:
    ///   cntt-collector audit verify || mail -s "audit log tampered" security@example
    ///
    /// Entries removed by the retention job (older than retention.audit) do not break the chain:
    /// it starts from the hash of the last deleted entry, which retention keeps. Someone able to
    /// rewrite the whole database could rewrite the chain too; compare with the copy on the syslog
    /// server ([audit.syslog]), whose messages carry each entry's hash.
    #[command(verbatim_doc_comment)]
    Verify,
}

#[derive(Debug, Subcommand)]
enum SystemsCommand {
    /// Create or update information systems from a CSV file (header: unit_code,code,name,
    /// security_level,purpose,operator,governing_body,connection_provider,security_provider,os,
    /// services,public_addresses,domains; security_level 1 to 5). A file with any bad row is
    /// refused whole.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Create or update units' reporting profiles from a CSV file (header: unit_code,
    /// reporting_name,governing_body,address,phone,email,symbol).
    Profiles {
        /// The CSV file.
        file: PathBuf,
    },
    /// List information systems.
    List,
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum MaintenanceCommand {
    /// Plan a window over a unit (and the units under it), one agent, a target or a system.
    Add {
        /// The unit's code (with --target: the unit whose agents' target it is).
        #[arg(long)]
        unit: Option<String>,
        /// Cover only the unit itself, not the units under it.
        #[arg(long)]
        no_subtree: bool,
        /// One agent's id (`cntt-collector agents list`).
        #[arg(long)]
        agent: Option<String>,
        /// A target's name, as agents report it.
        #[arg(long)]
        target: Option<String>,
        /// A registered system's code (`cntt-collector systems list`).
        #[arg(long)]
        system: Option<String>,
        /// First start, Vietnam time: "2026-12-12 22:00".
        #[arg(long)]
        start: String,
        /// Length of each occurrence: 4h, 90m.
        #[arg(long)]
        duration: String,
        /// once (default), daily or weekly.
        #[arg(long, default_value = "once")]
        repeat: String,
        /// Last day an occurrence may start: 2027-06-30.
        #[arg(long)]
        until: Option<String>,
        /// Why (shown to people and in the audit log).
        #[arg(long)]
        reason: String,
        /// Email address reminded before a long window ends (default: the Sở's on-duty contacts).
        #[arg(long)]
        remind_to: Option<String>,
    },
    /// List active and planned windows.
    List {
        /// Ended and cancelled windows too.
        #[arg(long)]
        all: bool,
    },
    /// Cancel a window from now on (it stays in the list, marked cancelled).
    Cancel {
        /// The window's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Create or update contacts from a CSV file (header: unit_code,name,role,position,phone,email,
    /// webhook, then optionally any of digest, zalo_id, channels, quiet_hours; role: leadership,
    /// it_officer, so_on_duty, so_leadership or police). A file with any bad row is refused whole.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// List contacts.
    List,
    /// Change one contact's Zalo user id, choice of channels or quiet hours.
    Set {
        /// Contact id, from `contacts list`.
        id: i64,
        /// Its user id on the province's Zalo bot; `-` for none.
        #[arg(long)]
        zalo: Option<String>,
        /// The channels it is reached on, among email, webhook, zalo, sms (e.g. `email,zalo`);
        /// `default` for every channel it has an address for.
        #[arg(long)]
        channels: Option<String>,
        /// Hours (Vietnam time) when Zalo and SMS notices that are not urgent wait, e.g.
        /// `22:00-06:00`; `none` for none.
        #[arg(long)]
        quiet_hours: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Replace the routing rules from a CSV file (header: unit_code,kinds,min_severity,role,after;
    /// e.g. `68.24670,wan;lan,high,leadership,0s` or `,*,medium,so_on_duty,30m`). Without rules the
    /// defaults apply (see collector.example.toml).
    #[command(name = "rules-import")]
    RulesImport {
        /// The CSV file.
        file: PathBuf,
    },
    /// Send a sample notice to one contact now, on each of its channels, to check the setup.
    Test {
        /// Contact id or email address, from `contacts list`.
        #[arg(long)]
        contact: String,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Apply the policy once now, as the server does every retention.run_every, and print what was
    /// removed.
    Run {
        /// Only count what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration like 30m, 24h or 7d: {err}"))
}

/// The one-time password of `user create|reset-password`: the first line of standard input with
/// `--password-stdin`, else generated.
fn initial_password(from_stdin: bool) -> anyhow::Result<admin::people::InitialPassword> {
    if !from_stdin {
        return Ok(admin::people::InitialPassword::Generate);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        anyhow::bail!("--password-stdin: standard input held no password");
    }
    Ok(admin::people::InitialPassword::Given(
        cntt_common::Secret::new(password),
    ))
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    no_transparent_huge_pages();
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
            match err.downcast_ref::<CheckFailed>() {
                Some(CheckFailed(text)) => {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                }
                None => eprintln!("error: {err:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// A check that ran and found a fault (`audit verify`): its report goes to standard output, as a
/// success's would, and the exit status is 1.
#[derive(Debug)]
struct CheckFailed(String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

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

async fn run(cli: Cli) -> anyhow::Result<String> {
    if let Command::Tls(TlsCommand::Init { dir, hosts, force }) = &cli.command {
        let files = tls::init(dir, hosts, *force)?;
        return Ok(format!(
            "wrote\n  {}  CA certificate: give it to agents (cntt-agent enroll --ca)\n  {}  CA key: keep it safe, offline if you can\n  {}  server certificate (tls.cert)\n  {}  server key (tls.key)\n",
            files.ca_cert.display(),
            files.ca_key.display(),
            files.server_cert.display(),
            files.server_key.display()
        ));
    }
    let config = Config::load(&cli.config)?;
    if let Command::Serve = cli.command {
        return serve(&config).await.map(|()| String::new());
    }
    // Commands write audit entries too: they are forwarded like the server's.
    let store = cntt_collector::jobs::audit_forward::attach(
        Store::connect(&config.database).await?,
        &config.audit,
        prometheus::IntCounter::new("audit_forward_dropped", "entries not forwarded")
            .expect("metric definition is valid"),
    )?;
    let output = match cli.command {
        Command::Serve | Command::Tls(_) => unreachable!("handled above"),
        Command::Migrate => format!(
            "database {} is up to date\n",
            redact_url(&config.database.url)
        ),
        Command::Units(UnitsCommand::Import { file }) => admin::units_import(&store, &file).await?,
        Command::Units(UnitsCommand::List { root, at, depth }) => {
            admin::units_list(&store, &TreeOptions { root, at, depth }).await?
        }
        Command::EnrollToken(EnrollTokenCommand::Create {
            unit,
            uses,
            ttl,
            note,
        }) => admin::enroll_token_create(&store, &unit, uses, ttl, &note).await?,
        Command::EnrollToken(EnrollTokenCommand::List) => admin::enroll_tokens_list(&store).await?,
        Command::EnrollToken(EnrollTokenCommand::Revoke { id }) => {
            admin::enroll_token_revoke(&store, id).await?
        }
        Command::ApiToken(ApiTokenCommand::Create {
            role,
            unit,
            name,
            ttl,
        }) => {
            let ttl = ttl.unwrap_or(config.limits.api_token_ttl);
            admin::api_token_create(&store, role, unit.as_deref(), &name, Some(ttl)).await?
        }
        Command::User(UserCommand::Create {
            username,
            name,
            role,
            unit,
            password_stdin,
        }) => {
            let spec = admin::people::UserSpec {
                username,
                full_name: name,
                role,
                unit,
                password: initial_password(password_stdin)?,
            };
            admin::people::user_create(&store, spec).await?
        }
        Command::User(UserCommand::List) => admin::people::users_list(&store).await?,
        Command::User(UserCommand::Disable { username }) => {
            admin::people::user_disable(&store, &username).await?
        }
        Command::User(UserCommand::ResetPassword {
            username,
            password_stdin,
        }) => {
            let password = initial_password(password_stdin)?;
            admin::people::user_reset_password(&store, &username, password).await?
        }
        Command::ApiToken(ApiTokenCommand::List) => admin::api_tokens_list(&store).await?,
        Command::ApiToken(ApiTokenCommand::Revoke { id }) => {
            admin::api_token_revoke(&store, id).await?
        }
        Command::Agents(AgentsCommand::List) => admin::agents_list(&store).await?,
        Command::Agents(AgentsCommand::Revoke { id }) => admin::agent_revoke(&store, &id).await?,
        Command::Audit(AuditCommand::List { action, limit }) => {
            admin::audit_list(&store, action.as_deref(), limit).await?
        }
        Command::Audit(AuditCommand::Verify) => {
            let (text, intact) = admin::audit_verify(&store).await?;
            if !intact {
                store.close().await;
                return Err(anyhow::Error::new(CheckFailed(text)));
            }
            text
        }
        Command::Contacts(ContactsCommand::Import { file }) => {
            admin::contacts_import(&store, &file).await?
        }
        Command::Contacts(ContactsCommand::List) => admin::contacts_list(&store).await?,
        Command::Contacts(ContactsCommand::Set {
            id,
            zalo,
            channels,
            quiet_hours,
        }) => {
            let set = admin::ContactSet {
                zalo,
                channels,
                quiet_hours,
            };
            admin::contacts_set(&store, id, &set).await?
        }
        Command::Systems(SystemsCommand::Import { file }) => {
            admin::systems_import(&store, &file).await?
        }
        Command::Systems(SystemsCommand::Profiles { file }) => {
            admin::profiles_import(&store, &file).await?
        }
        Command::Systems(SystemsCommand::List) => admin::systems_list(&store).await?,
        Command::Maintenance(MaintenanceCommand::Add {
            unit,
            no_subtree,
            agent,
            target,
            system,
            start,
            duration,
            repeat,
            until,
            reason,
            remind_to,
        }) => {
            let request = cntt_collector::services::maintenance::WindowRequest {
                unit,
                subtree: Some(!no_subtree),
                agent,
                target,
                system,
                start,
                duration,
                repeat: Some(repeat),
                until,
                reason,
                remind_to,
            };
            admin::maintenance::add(&store, &config.maintenance, &request).await?
        }
        Command::Maintenance(MaintenanceCommand::List { all }) => {
            admin::maintenance::list(&store, all).await?
        }
        Command::Maintenance(MaintenanceCommand::Cancel { id }) => {
            admin::maintenance::cancel(&store, &id).await?
        }
        Command::Notify(NotifyCommand::RulesImport { file }) => {
            admin::notify_rules_import(&store, &file).await?
        }
        Command::Notify(NotifyCommand::Test { contact }) => {
            admin::notify_test(&store, &config.notify, &contact).await?
        }
        Command::Retention(RetentionCommand::Run { dry_run }) => {
            admin::retention_run(&store, &config.retention, dry_run).await?
        }
        Command::Officers(OfficersCommand::Import { file }) => {
            admin::reports::officers_import(&store, &file).await?
        }
        Command::Officers(OfficersCommand::List { unit }) => {
            admin::reports::officers_list(&store, unit.as_deref()).await?
        }
        Command::Officers(OfficersCommand::Check { at }) => {
            admin::reports::officers_check(&store, &config.reports, at.as_deref()).await?
        }
        Command::Periods {
            action:
                Some(PeriodsCommand::Override {
                    scheme,
                    period,
                    due,
                    reason,
                }),
            ..
        } => {
            admin::reports::period_override(
                &store,
                &config.reports,
                &scheme,
                &period,
                &due,
                &reason,
            )
            .await?
        }
        Command::Periods {
            action: None,
            scheme,
            year,
        } => {
            let year = year.unwrap_or_else(|| time::OffsetDateTime::now_utc().year());
            admin::reports::periods_show(&store, &config.reports, &scheme, year).await?
        }
        Command::Report(ReportCommand::Status { period, scheme }) => {
            admin::reports::report_status(&store, &config.reports, &period, scheme.as_deref())
                .await?
        }
        Command::Report(ReportCommand::Consolidate {
            period,
            scheme,
            out,
        }) => {
            admin::reports::report_consolidate(
                &store,
                &config.reports,
                &period,
                scheme.as_deref(),
                &out,
            )
            .await?
        }
    };
    store.close().await;
    Ok(output)
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let (server, store) = build(config).await?;
    let address = server.local_addr()?;
    tracing::info!(%address, database = %redact_url(&config.database.url), "collector listening on https://{address}");
    server.run(shutdown_signal()).await.context("serving")?;
    store.close().await;
    tracing::info!("collector stopped");
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_we_set() {
        // Set in the environment, mimalloc reads it at start and the collector leaves it alone:
        // option 15 then holds that number.
        let from_env = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|value| value.trim().parse::<std::ffi::c_long>().ok());
        let (before, after) = match from_env {
            Some(delay) => (delay, delay),
            None => (1000, 0),
        };
        // SAFETY: reads and sets integer options of mimalloc; no pointers.
        unsafe {
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                before,
                "mimalloc's purge delay is 1,000 ms by default or MIMALLOC_PURGE_DELAY; another number means its options were renumbered"
            );
        }
        purge_freed_memory_at_once();
        // SAFETY: as above.
        unsafe { assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), after) }
    }
}
