//! Types shared by `cntt-agent` and `cntt-collector`.
//!
//! This crate holds only what crosses the network between the two: the versioned wire protocol in
//! [`wire`] and the [`Secret`] wrapper that keeps credentials out of logs. It has no I/O and depends on
//! serde and time types only, so both sides agree on the bytes without sharing any runtime.
#![warn(missing_docs)]

pub mod report;
mod secret;
pub mod wire;

pub use secret::Secret;
