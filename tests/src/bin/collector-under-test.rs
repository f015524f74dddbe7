//! The collector as its own process, for tests that must kill it (`kill -9`) at random points.
//!
//! Usage: `collector-under-test CONFIG.toml`. It serves exactly like `cntt-collector serve` (same
//! `cntt_collector::build` and `Server::run`, background evaluation included) until SIGTERM. It
//! lives in the test package so its tests always run a fresh build of it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: collector-under-test CONFIG.toml");
        return ExitCode::from(2);
    };
    if std::env::var_os("E2E_CHILD_LOGS").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let res: anyhow::Result<()> = runtime.block_on(async {
        let config = cntt_collector::config::Config::load(std::path::Path::new(&path))?;
        let (server, _store) = cntt_collector::build(&config).await?;
        server
            .run(async {
                let mut terminate =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler installs");
                terminate.recv().await;
            })
            .await
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
