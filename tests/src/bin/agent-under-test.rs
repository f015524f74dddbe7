//! The agent as its own process, for tests that must kill it (`kill -9`) at random points.
//!
//! Usage: `agent-under-test CONFIG.toml`. It runs `cntt_agent::run` until SIGTERM, exactly like
//! `cntt-agent run`, but lives in the test package so its tests always run a fresh build of it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: agent-under-test CONFIG.toml");
        return ExitCode::from(2);
    };
    let config = match cntt_agent::config::Config::load(std::path::Path::new(&path), false) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let res = runtime.block_on(cntt_agent::run(config, async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
        terminate.recv().await;
    }));
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
