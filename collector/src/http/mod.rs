//! HTTP: the TLS accept loop ([`server`]), the API for agents and scripts ([`api`]).
//! console for people ([`console`]). Handlers call services and the store; they hold no SQL.

pub mod api;
pub mod console;
pub mod server;
