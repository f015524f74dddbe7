//! End-to-end and storage tests: one binary, cases grouped by concern.
//!
//! Each case marked with `both_databases!` runs twice, on a SQLite file and on a fresh PostgreSQL
//! database, so the storage layer is held to the same contract on both.

use std::time::Duration;

use e2e::Db;

/// Declares `async fn name(db: Db)` cases and a `name::sqlite` / `name::postgres` test for each.
macro_rules! both_databases {
    ($(async fn $name:ident($db:ident: Db) $body:block)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(e2e::Db::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(e2e::Db::Postgres).await;
                }
            }

            async fn $name($db: e2e::Db) $body
        )*
    };
}

mod ack_links;
mod api_dates;
mod audit_chain;
mod bad_input;
mod channels;
mod console;
mod console_auth;
mod console_incidents;
mod console_reports;
mod consolidated_truth;
mod detection;
mod documents;
mod failover;
mod flow;
mod full_disk;
mod group_commit;
mod harness;
mod hostile;
mod incident_documents;
mod incidents_api;
mod inference;
mod keep_alive;
mod lifecycle;
mod maintenance;
mod notify;
mod prometheus;
mod reports;
mod retention;
mod security;
mod simulate;
mod slow_body;
mod store;
mod tidy;
mod windows;

/// How long end-to-end waits may take before a test fails.
const WAIT: Duration = Duration::from_secs(20);

/// Shorthand so cases read as `db(Db::Sqlite)`.
#[allow(dead_code, reason = "used by some modules only")]
fn is_postgres(db: Db) -> bool {
    db == Db::Postgres
}
