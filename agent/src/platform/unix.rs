//! Unix (Linux above all): the paths of the Debian package and systemd unit, owner-only modes,
//! the routing table in `/proc`, ICMP through sockets (`probe/icmp.rs`), and no service commands
//! (systemd runs the agent).

mod gateway;

use std::fs::{File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gateway::default_gateway;

/// Whether the system offers an ICMP echo service usable without privileges: not on Unix, where
/// `probe/icmp.rs` opens ICMP sockets itself.
pub const SYSTEM_ICMP: bool = false;

/// The config file read when `--config` is not given.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("/etc/cntt-agent/agent.toml")
}

/// The state folder used when the config names none.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/cntt-agent")
}

/// Makes `dir` readable by its owner only (mode 0700).
///
/// # Errors
///
/// When the mode cannot be changed.
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes the creation, deletion and renaming of files in `dir` durable (fsync of the folder).
///
/// # Errors
///
/// When the folder cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates (or truncates) `path` for writing: owner-only (0600) when `private`, else 0644.
///
/// # Errors
///
/// When the file cannot be created.
pub fn create_file(path: &Path, private: bool) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
}

/// Why the private file at `path` may be read by other users, with the command that fixes it;
/// `None` when it is owner-only or cannot be examined.
pub fn privacy_problem(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "mode {mode:03o} lets other users read it; run: chmod 600 {}",
            path.display()
        )
    })
}

/// Measures CPU use between two samples, through sysinfo.
#[derive(Debug)]
pub struct CpuMeter;

impl CpuMeter {
    /// Takes the baseline the first sample measures from.
    pub fn new(system: &mut sysinfo::System) -> CpuMeter {
        system.refresh_cpu_usage();
        CpuMeter
    }

    /// The number of processors and their use since the last sample, in percent.
    pub fn sample(&mut self, system: &mut sysinfo::System) -> (usize, f32) {
        system.refresh_cpu_usage();
        (system.cpus().len(), system.global_cpu_usage())
    }
}

/// The load average over 1, 5 and 15 minutes.
pub fn load_average() -> [f64; 3] {
    let load = sysinfo::System::load_average();
    [load.one, load.five, load.fifteen]
}

/// Never called on Unix ([`SYSTEM_ICMP`] is false): ICMP goes through sockets.
///
/// # Errors
///
/// Always.
pub fn system_ping(_ip: IpAddr, _timeout: Duration) -> Result<Duration, String> {
    Err("no system icmp service on this platform".to_owned())
}

/// `cntt-agent service`: on Unix, systemd runs the agent.
pub mod service {
    use std::path::Path;

    use crate::config::Config;
    use crate::platform::ServiceAction;

    /// Explains that the command is for Windows and names the systemd unit instead.
    ///
    /// # Errors
    ///
    /// Always, with that explanation.
    pub fn command(_action: ServiceAction, _config_path: Option<&Path>) -> anyhow::Result<String> {
        anyhow::bail!("{}", crate::vi::SERVICE_NOT_WINDOWS)
    }

    /// Explains that the command is for Windows.
    ///
    /// # Errors
    ///
    /// Always, with that explanation.
    pub fn run(_config: Config, _log_level: &str) -> anyhow::Result<()> {
        anyhow::bail!("{}", crate::vi::SERVICE_NOT_WINDOWS)
    }
}
