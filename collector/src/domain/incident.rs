//! What every layer knows of incidents: the kinds and states they can have, as stored.

/// The kinds an incident can have, as stored (the wire's `IncidentKind` names).
pub const INCIDENT_KINDS: &[&str] = &[
    "lan",
    "wan",
    "internet",
    "server",
    "host",
    "security",
    "other",
    "agent_unreachable",
];

/// The states an incident can be in.
pub const INCIDENT_STATES: &[&str] = &["open", "acknowledged", "resolved", "closed"];
