//! The Windows service: `cntt-agent service install|uninstall|start|stop` talk to the service
//! control manager (the `windows-service` crate); `cntt-agent service run` is what the manager
//! starts (never typed by people). The service runs the same daemon as `cntt-agent run`, logs to
//! `<state folder>\logs\agent.log`, and stops it gracefully (unsent events stay in the outbox)
//! on a stop or shutdown request.
//!
//! Before the daemon can run the agent must be enrolled. When it is not, the service waits
//! instead of failing: every [`ENROLL_RETRY`] it looks again for a credential (an officer ran
//! `cntt-agent enroll`) and for the settings an MSI left in the registry (`registry.rs`), with
//! which it enrolls itself and then deletes the token.

#![allow(unsafe_code)] // define_windows_service! expands to an `unsafe` block in this module.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::registry;
use crate::config::Config;
use crate::identity::{enroll, CREDENTIAL_FILE};
use crate::logfile::{LogFile, ROTATE_BYTES};
use crate::platform::ServiceAction;
use crate::vi;

/// The service's name, as `sc.exe` and the MSI's `ServiceInstall` know it.
pub const SERVICE_NAME: &str = "cntt-agent";

/// How often a service not yet enrolled looks again for a credential or MSI settings.
pub const ENROLL_RETRY: Duration = Duration::from_secs(30);

/// The longest wait between two failed enrollments with the MSI's settings: the wait doubles
/// from [`ENROLL_RETRY`], so a refused token does not knock on the collector every 30 seconds,
/// while a network that comes back is tried again within the hour.
pub const ENROLL_RETRY_MAX: Duration = Duration::from_secs(3600);

/// How long `service stop` and `service uninstall` wait for the service to stop.
const STOP_WAIT: Duration = Duration::from_secs(40);

/// The config and log filter of the process the manager started, set once before the dispatcher
/// runs; the manager calls [`service_main`] without them.
static LAUNCH: OnceLock<(Config, String)> = OnceLock::new();

windows_service::define_windows_service!(ffi_service_main, service_main);

/// Carries out `cntt-agent service <action>`; `config_path` (made absolute) is passed to the
/// service's command line by `install`.
///
/// # Errors
///
/// When the service control manager refuses (not an administrator: the message says to run the
/// console as administrator) or the service is not in the expected state.
pub fn command(action: ServiceAction, config_path: Option<&Path>) -> anyhow::Result<String> {
    let manager_access = match action {
        ServiceAction::Install => {
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE
        }
        _ => ServiceManagerAccess::CONNECT,
    };
    let manager = ServiceManager::local_computer(None::<&str>, manager_access)
        .map_err(|err| anyhow::anyhow!("{}: {err}", vi::SERVICE_NEEDS_ADMIN))?;
    match action {
        ServiceAction::Install => install(&manager, config_path),
        ServiceAction::Uninstall => {
            let service = manager
                .open_service(
                    SERVICE_NAME,
                    ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
                )
                .context("opening the cntt-agent service")?;
            stop_and_wait(&service)?;
            service
                .delete()
                .context("deleting the cntt-agent service")?;
            Ok(vi::SERVICE_UNINSTALLED.to_owned())
        }
        ServiceAction::Start => {
            let service = manager
                .open_service(
                    SERVICE_NAME,
                    ServiceAccess::START | ServiceAccess::QUERY_STATUS,
                )
                .context("opening the cntt-agent service")?;
            if service.query_status()?.current_state != ServiceState::Running {
                service
                    .start::<&str>(&[])
                    .context("starting the cntt-agent service")?;
            }
            Ok(vi::SERVICE_STARTED.to_owned())
        }
        ServiceAction::Stop => {
            let service = manager
                .open_service(
                    SERVICE_NAME,
                    ServiceAccess::STOP | ServiceAccess::QUERY_STATUS,
                )
                .context("opening the cntt-agent service")?;
            stop_and_wait(&service)?;
            Ok(vi::SERVICE_STOPPED.to_owned())
        }
    }
}

/// Registers the service: automatic start, LocalSystem, this executable with `service run`.
fn install(manager: &ServiceManager, config_path: Option<&Path>) -> anyhow::Result<String> {
    let executable_path = std::env::current_exe().context("finding this executable's path")?;
    let mut launch_arguments: Vec<OsString> = Vec::new();
    if let Some(path) = config_path {
        let path = std::path::absolute(path)
            .with_context(|| format!("making {} absolute", path.display()))?;
        launch_arguments.extend(["--config".into(), path.into_os_string()]);
    }
    launch_arguments.extend(["service".into(), "run".into()]);
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: vi::SERVICE_DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path,
        launch_arguments,
        dependencies: Vec::new(),
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .context("registering the cntt-agent service (is it installed already?)")?;
    if let Err(err) = service.set_description(vi::SERVICE_DESCRIPTION) {
        tracing::warn!(error = %err, "cannot set the service's description");
    }
    Ok(vi::SERVICE_INSTALLED.to_owned())
}

/// Asks a running service to stop and waits until it has (or [`STOP_WAIT`] passes).
fn stop_and_wait(service: &windows_service::service::Service) -> anyhow::Result<()> {
    if service.query_status()?.current_state == ServiceState::Stopped {
        return Ok(());
    }
    service.stop().context("stopping the cntt-agent service")?;
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if service.query_status()?.current_state == ServiceState::Stopped {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("the cntt-agent service did not stop within {STOP_WAIT:?}")
}

/// Runs as the service the manager started: logs to the state folder, hands control to the
/// dispatcher, and returns when the service has stopped.
///
/// # Errors
///
/// When the log file cannot be opened or the process was not started by the service control
/// manager (then `cntt-agent run` is what the person wanted).
pub fn run(config: Config, log_level: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state folder {}", config.state_dir.display()))?;
    if let Err(err) = super::restrict_dir(&config.state_dir) {
        // Logged once the log is open; the daemon runs regardless, as on Unix.
        eprintln!("cannot protect {}: {err}", config.state_dir.display());
    }
    let log_path = config.state_dir.join("logs").join("agent.log");
    let log = LogFile::open(&log_path, ROTATE_BYTES)
        .with_context(|| format!("opening log file {}", log_path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(log))
        .init();
    let _ = LAUNCH.set((config, log_level.to_owned()));
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        .context("connecting to the service control manager (this command is for Windows itself; in a console use cntt-agent run)")?;
    Ok(())
}

/// The service's entry point, on a thread of the dispatcher.
fn service_main(_arguments: Vec<OsString>) {
    if let Err(err) = serve() {
        tracing::error!(
            error = format!("{err:#}"),
            "the service stopped on an error"
        );
    }
}

/// Reports the service running, runs the daemon until a stop request, then reports it stopped
/// (with exit code 1 when the daemon failed, so Windows' recovery options apply).
fn serve() -> anyhow::Result<()> {
    let (config, _log_level) = LAUNCH
        .get()
        .cloned()
        .context("the service started without its configuration")?;
    let (stop_sender, stop_receiver) = watch::channel(false);
    // The handler runs on the dispatcher's thread; the daemon watches `stop_receiver`.
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_sender.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)
        .context("registering the service control handler")?;
    let report = |state, accept, exit_code| {
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(15),
            process_id: None,
        })
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::Win32(0),
    )
    .context("reporting the service running")?;
    tracing::info!(state_dir = %config.state_dir.display(), "service started");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let res = runtime.block_on(async {
        if !wait_for_identity(&config, stop_receiver.clone()).await {
            return Ok(());
        }
        crate::run(config, stopped(stop_receiver)).await
    });
    drop(runtime);
    let exit_code = match &res {
        Ok(()) => ServiceExitCode::Win32(0),
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    tracing::info!("service stopped");
    let _ = report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit_code,
    );
    res
}

/// Completes when a stop was requested.
async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// Waits until the agent is enrolled, enrolling with the MSI's settings when there are some;
/// false when a stop came first.
async fn wait_for_identity(config: &Config, stop: watch::Receiver<bool>) -> bool {
    let mut said_waiting = false;
    let mut backoff = ENROLL_RETRY;
    let mut next_attempt = Instant::now();
    loop {
        if config.state_dir.join(CREDENTIAL_FILE).exists() {
            return true;
        }
        match registry::enrollment_settings() {
            Some(_) if Instant::now() < next_attempt => {}
            Some(settings) => {
                let res = enroll(
                    &settings.server,
                    &settings.token,
                    &settings.ca_file,
                    &config.state_dir,
                    false,
                )
                .await;
                match res {
                    Ok(identity) => {
                        registry::forget_token();
                        tracing::info!(
                            agent_id = %identity.agent_id,
                            unit = identity.unit_code,
                            server = identity.server,
                            "enrolled with the settings given to the installer"
                        );
                        if let Some(warning) = identity.enroll_warning {
                            tracing::warn!(warning, "the collector warned at enrollment");
                        }
                        return true;
                    }
                    Err(err) => {
                        tracing::error!(
                            error = format!("{err:#}"),
                            server = settings.server,
                            ca_file = %settings.ca_file.display(),
                            retry_in = ?backoff,
                            "cannot enroll with the settings given to the installer"
                        );
                        next_attempt = Instant::now() + backoff;
                        backoff = (backoff * 2).min(ENROLL_RETRY_MAX);
                    }
                }
            }
            None if !said_waiting => {
                said_waiting = true;
                tracing::warn!(
                    state_dir = %config.state_dir.display(),
                    "not enrolled and no enrollment settings from the installer; waiting for: cntt-agent enroll --server URL --ca ca.pem"
                );
            }
            None => {}
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return false,
            () = tokio::time::sleep(ENROLL_RETRY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on the Windows target (under Wine in `scripts/test`): the manager answers, and a
    /// service that does not exist is reported as such (installing needs an administrator and is
    /// exercised by the Wine end-to-end step).
    #[test]
    fn manager_answers() {
        let manager =
            ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).unwrap();
        let missing =
            manager.open_service("cntt-agent-no-such-service", ServiceAccess::QUERY_STATUS);
        assert!(missing.is_err());
    }
}
