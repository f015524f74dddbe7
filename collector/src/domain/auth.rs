//! Secrets and who may do what.
//!
//! Three kinds of secret exist, each a random 256-bit value with a readable prefix so a leaked one
//! is easy to spot in a repository or a paste: enrollment tokens (`cntt_enroll_…`), agent
//! credentials (`cntt_agent_…`) and API tokens for people (`cntt_api_…`). The collector stores only
//! their SHA-256 hashes; a random 256-bit secret needs no slow password hash.
//!
//! People act with a [`Role`]: `admin` (the Sở TT&TT: everything), `officer` (one unit and its
//! children, read and write) and `viewer` (read-only, optionally scoped to a unit). [`Principal`]
//! is the authenticated caller; [`Scope`] answers "may this caller see unit X".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cntt_common::Secret;
use sha2::{Digest, Sha256};

use crate::domain::unit::Unit;

/// What a secret is for; decides its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// One-time enrollment token for an agent.
    Enroll,
    /// An agent's credential.
    Agent,
    /// A person's API token.
    Api,
    /// A person's console session (the cookie).
    Session,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::Enroll => "cntt_enroll_",
            SecretKind::Agent => "cntt_agent_",
            SecretKind::Api => "cntt_api_",
            SecretKind::Session => "cntt_session_",
        }
    }
}

/// Makes a new random secret of a kind.
///
/// # Panics
///
/// When the operating system has no source of randomness, which leaves nothing safe to do.
pub fn new_secret(kind: SecretKind) -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let mut text = String::with_capacity(kind.prefix().len() + 64);
    text.push_str(kind.prefix());
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    Secret::new(text)
}

/// The SHA-256 of a secret, as lowercase hex: what the database keeps.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Sở TT&TT: everything.
    Admin,
    /// An agency's IT officer: their unit and its children.
    Officer,
    /// Read-only.
    Viewer,
    /// An agency's leadership: read-only, lands on the overview (people accounts only).
    Leadership,
}

impl Role {
    /// Whether this role may change anything (acknowledge, close, submit, file); viewers and
    /// leadership only read.
    pub fn can_act(self) -> bool {
        matches!(self, Role::Admin | Role::Officer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Viewer => "viewer",
            Role::Leadership => "leadership",
        })
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "officer" => Ok(Role::Officer),
            "viewer" => Ok(Role::Viewer),
            "leadership" => Ok(Role::Leadership),
            _ => Err(format!(
                "unknown role {text:?}; expected admin, officer, viewer or leadership"
            )),
        }
    }
}

/// Someone authenticated: an API token (machines, scripts) or a person logged in to the console.
#[derive(Debug, Clone)]
pub struct Principal {
    /// How they appear in the audit log: `api-token:ID` or `person:USERNAME`.
    pub actor: String,
    /// Token name or the person's full name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Scope unit id; none means the whole province.
    pub unit_id: Option<i64>,
}

impl Principal {
    /// How this principal appears in the audit log.
    pub fn actor(&self) -> String {
        self.actor.clone()
    }
}

/// The set of units a principal may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every unit.
    All,
    /// These unit ids: one unit and everything under it.
    Units(HashSet<i64>),
}

impl Scope {
    /// The scope of a principal given the unit tree.
    pub fn of(principal: &Principal, units: &[Unit]) -> Scope {
        match principal.unit_id {
            None => Scope::All,
            Some(root) => Scope::Units(subtree(root, units)),
        }
    }

    /// Whether a unit is inside.
    pub fn contains(&self, unit_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Units(ids) => ids.contains(&unit_id),
        }
    }
}

/// A unit and all its descendants.
pub fn subtree(root: i64, units: &[Unit]) -> HashSet<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for unit in units {
        if let Some(parent) = unit.parent_id {
            children.entry(parent).or_default().push(unit.id);
        }
    }
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for &child in children.get(&id).map(Vec::as_slice).unwrap_or_default() {
            // A cycle in imported data must not loop forever.
            if seen.insert(child) {
                stack.push(child);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: i64, parent_id: Option<i64>) -> Unit {
        Unit {
            id,
            code: id.to_string(),
            name: String::new(),
            kind: "commune".into(),
            parent_id,
            parent_code: None,
            valid_from: None,
            valid_to: None,
            successor_codes: String::new(),
            note: String::new(),
            uplink_code: None,
        }
    }

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = new_secret(SecretKind::Agent);
        let b = new_secret(SecretKind::Agent);
        assert!(a.expose().starts_with("cntt_agent_"));
        assert_eq!(a.expose().len(), "cntt_agent_".len() + 64);
        assert_ne!(a, b);
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scope_covers_the_subtree_only() {
        let units = [
            unit(1, None),
            unit(2, Some(1)),
            unit(3, Some(2)),
            unit(4, Some(1)),
            unit(5, Some(5)),
        ];
        let officer = Principal {
            actor: "api-token:1".into(),
            name: "x".into(),
            role: Role::Officer,
            unit_id: Some(2),
        };
        let scope = Scope::of(&officer, &units);
        assert!(scope.contains(2) && scope.contains(3));
        assert!(!scope.contains(1) && !scope.contains(4));
        assert_eq!(
            subtree(5, &units),
            HashSet::from([5]),
            "a self-parented unit does not loop"
        );
    }
}
