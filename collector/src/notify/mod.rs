//! Notices to leadership and the Sở TT&TT (issue 5): what to tell whom and when, written to the
//! database first and then delivered by email or webhook.
//!
//! `render` writes the notices' words; the engine and the channels follow.

pub mod render;
