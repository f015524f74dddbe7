//! Domain: the pure rules of the product, with no I/O. Every layer above may use it; it uses none.
//!
//! Secrets and roles ([`auth`]), people's passwords ([`password`]), availability figures, reporting periods and the holiday calendar,
//! topology-aware outage planning ([`inference`]), the officers' check, the dated organisation, the
//! shared CSV rules, how contacts are reached ([`channels`]: channel families, choice, quiet hours) and every
//! Vietnamese sentence written into incidents ([`vi`]).

pub mod ack_link;
pub mod auth;
pub mod availability;
pub mod channels;
pub(crate) mod csv_import;
pub mod incident;
pub mod inference;
pub mod maintenance;
pub mod notice_rules;
pub mod officers;
pub mod organisation;
pub mod password;
pub mod periods;
pub mod unit;
pub mod vi;
