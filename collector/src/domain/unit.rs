//! A unit (đơn vị) of the hierarchy of agencies, with validity dates so history stays
//! attributable. Stored by `store::units`; here so that pure rules (scopes, reports) can use it
//! without reaching up into the store.

use serde::Serialize;

/// A unit as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Unit {
    /// Internal id.
    #[serde(skip)]
    pub id: i64,
    /// Official or local code, unique.
    pub code: String,
    /// Full Vietnamese name.
    pub name: String,
    /// `province`, `department`, `district` or `commune`.
    pub kind: String,
    /// Parent's internal id.
    #[serde(skip)]
    pub parent_id: Option<i64>,
    /// Parent's code.
    pub parent_code: Option<String>,
    /// First day of validity, ISO date, or none when unknown.
    pub valid_from: Option<String>,
    /// Last day of validity, or none while the unit exists.
    pub valid_to: Option<String>,
    /// Codes of the units that took over, separated by `;`.
    pub successor_codes: String,
    /// Free text.
    pub note: String,
    /// Code of the unit its WAN connection runs through, when not its parent.
    pub uplink_code: Option<String>,
}

impl Unit {
    /// Whether the unit existed on an ISO date (`YYYY-MM-DD` compares as text).
    pub fn valid_on(&self, date: &str) -> bool {
        let started = self.valid_from.as_deref().is_none_or(|from| from <= date);
        let not_ended = self.valid_to.as_deref().is_none_or(|to| date <= to);
        started && not_ended
    }
}
