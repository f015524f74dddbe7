//! Jobs: the background loops every collector runs: the evaluation of silence and outages
//! ([`evaluation`]), notices to people ([`notify`]) and retention ([`retention`]). Several collectors
//! may run them at once; each pass takes its row of `job_locks`.

pub mod audit_forward;
pub mod evaluation;
pub mod notify;
pub mod retention;
