//! Units (đơn vị): the hierarchy of agencies, with validity dates so history stays attributable.

use std::collections::HashMap;

use anyhow::{bail, Context};
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};

pub use crate::domain::unit::Unit;

/// A unit to create or update, as read from an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    /// Code, the key of the import.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Parent's code; must be in the same import or already stored.
    pub parent_code: Option<String>,
    /// First day of validity.
    pub valid_from: Option<String>,
    /// Last day of validity.
    pub valid_to: Option<String>,
    /// Successors, `;`-separated.
    pub successor_codes: String,
    /// Free text.
    pub note: String,
    /// Code of the unit its WAN connection runs through, when not its parent; must be in the same
    /// import or already stored.
    pub uplink_code: Option<String>,
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Units that were not there before.
    pub created: u64,
    /// Units whose fields changed.
    pub updated: u64,
    /// Units already exactly as imported.
    pub unchanged: u64,
}

impl Store {
    /// Creates or updates units by code, in one transaction: either the whole file lands or
    /// nothing does. Parents may come after their children in `records`.
    ///
    /// # Errors
    ///
    /// When a parent code is neither in `records` nor stored, or on a database error.
    pub async fn units_import(
        &self,
        records: &[UnitRecord],
        now: OffsetDateTime,
    ) -> anyhow::Result<ImportSummary> {
        let now = millis(now);
        let existing: HashMap<String, Unit> = self
            .units_all()
            .await?
            .into_iter()
            .map(|unit| (unit.code.clone(), unit))
            .collect();
        let mut tx = self.begin_write().await.context("starting unit import")?;
        let mut summary = ImportSummary::default();
        // First pass: every row exists with its own fields; second pass: links to parents, so the
        // file's order does not matter.
        for record in records {
            let before = existing.get(&record.code);
            let same = before.is_some_and(|unit| {
                unit.name == record.name
                    && unit.kind == record.kind
                    && unit.parent_code == record.parent_code
                    && unit.valid_from == record.valid_from
                    && unit.valid_to == record.valid_to
                    && unit.successor_codes == record.successor_codes
                    && unit.note == record.note
                    && unit.uplink_code == record.uplink_code
            });
            match (before, same) {
                (Some(_), true) => summary.unchanged += 1,
                (Some(_), false) => summary.updated += 1,
                (None, _) => summary.created += 1,
            }
            if same {
                continue;
            }
            sqlx::query(
                "INSERT INTO units (code, name, kind, valid_from, valid_to, successor_codes, note, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (code) DO UPDATE SET name = $2, kind = $3, valid_from = $4, valid_to = $5,
                     successor_codes = $6, note = $7, updated_at = $8",
            )
            .bind(&record.code)
            .bind(&record.name)
            .bind(&record.kind)
            .bind(&record.valid_from)
            .bind(&record.valid_to)
            .bind(&record.successor_codes)
            .bind(&record.note)
            .bind(now)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing unit {}", record.code))?;
        }
        for record in records {
            let parent_id: Option<i64> = match &record.parent_code {
                None => None,
                Some(parent_code) => {
                    let row: Option<(i64,)> =
                        sqlx::query_as("SELECT id FROM units WHERE code = $1")
                            .bind(parent_code)
                            .fetch_optional(&mut *tx)
                            .await?;
                    match row {
                        Some((id,)) => Some(id),
                        None => bail!(
                            "unit {}: parent {parent_code} is neither in the file nor stored",
                            record.code
                        ),
                    }
                }
            };
            sqlx::query("UPDATE units SET parent_id = $1 WHERE code = $2")
                .bind(parent_id)
                .bind(&record.code)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("linking unit {} to its parent", record.code))?;
            let uplink_id: Option<i64> = match &record.uplink_code {
                None => None,
                Some(uplink_code) => {
                    let row: Option<(i64,)> =
                        sqlx::query_as("SELECT id FROM units WHERE code = $1")
                            .bind(uplink_code)
                            .fetch_optional(&mut *tx)
                            .await?;
                    match row {
                        Some((id,)) => Some(id),
                        None => bail!(
                            "unit {}: uplink {uplink_code} is neither in the file nor stored",
                            record.code
                        ),
                    }
                }
            };
            sqlx::query("UPDATE units SET uplink_id = $1 WHERE code = $2")
                .bind(uplink_id)
                .bind(&record.code)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("linking unit {} to its uplink", record.code))?;
        }
        // Connections must lead somewhere: refuse a file that makes units each other's uplink.
        let links: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT u.code, up.code FROM units u LEFT JOIN units up ON up.id = COALESCE(u.uplink_id, u.parent_id)",
        )
        .fetch_all(&mut *tx)
        .await
        .context("reading the topology back")?;
        if let Some(cycle) = find_cycle(&links) {
            bail!(
                "nothing was imported: units' uplinks (or parents) go round in a circle: {}",
                cycle.join(" → ")
            );
        }
        tx.commit().await.context("committing unit import")?;
        Ok(summary)
    }

    /// Every unit, ordered by code.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn units_all(&self) -> anyhow::Result<Vec<Unit>> {
        let units = sqlx::query_as::<_, Unit>(
            "SELECT u.id, u.code, u.name, u.kind, u.parent_id, p.code AS parent_code, u.valid_from, u.valid_to,
                    u.successor_codes, u.note, l.code AS uplink_code
             FROM units u LEFT JOIN units p ON p.id = u.parent_id LEFT JOIN units l ON l.id = u.uplink_id
             ORDER BY u.code",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing units")?;
        Ok(units)
    }

    /// One unit by code.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn unit_by_code(&self, code: &str) -> anyhow::Result<Option<Unit>> {
        let unit = sqlx::query_as::<_, Unit>(
            "SELECT u.id, u.code, u.name, u.kind, u.parent_id, p.code AS parent_code, u.valid_from, u.valid_to,
                    u.successor_codes, u.note, l.code AS uplink_code
             FROM units u LEFT JOIN units p ON p.id = u.parent_id LEFT JOIN units l ON l.id = u.uplink_id
             WHERE u.code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading unit {code}"))?;
        Ok(unit)
    }
}

/// A unit that is no longer valid on some day, and who answers for it then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Its last day of validity.
    pub valid_to: String,
    /// The unit answering for it on that day (first successor the data names, followed through
    /// later changes), if any.
    pub successor: Option<Unit>,
}

impl Ended {
    /// The sentence for people, in English like the rest of the API: which unit ended when, and
    /// where its history is counted.
    pub fn describe(&self, unit: &Unit) -> String {
        match &self.successor {
            Some(next) => format!(
                "unit {} ({}) ended on {}; its history is counted for its successor {} ({}): ask the Sở for an enrollment token of {}",
                unit.code, unit.name, self.valid_to, next.code, next.name, next.code
            ),
            None => format!(
                "unit {} ({}) ended on {} and the units data names no successor valid today",
                unit.code, unit.name, self.valid_to
            ),
        }
    }
}

impl Store {
    /// One unit by internal id.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn unit_by_id(&self, id: i64) -> anyhow::Result<Option<Unit>> {
        let unit = sqlx::query_as::<_, Unit>(
            "SELECT u.id, u.code, u.name, u.kind, u.parent_id, p.code AS parent_code, u.valid_from, u.valid_to,
                    u.successor_codes, u.note, l.code AS uplink_code
             FROM units u LEFT JOIN units p ON p.id = u.parent_id LEFT JOIN units l ON l.id = u.uplink_id
             WHERE u.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading unit {id}"))?;
        Ok(unit)
    }

    /// The unit an enrollment token enrolls into, whether or not the token is still usable.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn unit_of_enroll_token(&self, token_hash: &str) -> anyhow::Result<Option<Unit>> {
        let id: Option<(i64,)> =
            sqlx::query_as("SELECT unit_id FROM enroll_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .context("reading an enrollment token's unit")?;
        match id {
            Some((id,)) => self.unit_by_id(id).await,
            None => Ok(None),
        }
    }

    /// Whether `unit` has ended before `date` (`YYYY-MM-DD`), and who answers for it then.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn unit_ended(&self, unit: &Unit, date: &str) -> anyhow::Result<Option<Ended>> {
        let Some(valid_to) = unit.valid_to.clone().filter(|to| to.as_str() < date) else {
            return Ok(None);
        };
        let mut current = unit.clone();
        let mut successor = None;
        for _ in 0..16 {
            let mut next = None;
            for code in current.successor_codes.split(';').map(str::trim) {
                if code.is_empty() {
                    continue;
                }
                if let Some(found) = self.unit_by_code(code).await? {
                    let valid = found.valid_on(date);
                    if next.is_none() || valid {
                        next = Some(found);
                    }
                    if valid {
                        break;
                    }
                }
            }
            let Some(found) = next else { break };
            if found.valid_on(date) {
                successor = Some(found);
                break;
            }
            current = found;
        }
        Ok(Some(Ended {
            valid_to,
            successor,
        }))
    }
}

/// A cycle in the uplink graph given as (unit, uplink) codes, from its first unit back to it.
fn find_cycle(links: &[(String, Option<String>)]) -> Option<Vec<String>> {
    let up: HashMap<&str, &str> = links
        .iter()
        .filter_map(|(code, uplink)| uplink.as_deref().map(|uplink| (code.as_str(), uplink)))
        .collect();
    for (start, _) in links {
        let mut path = vec![start.as_str()];
        let mut current = start.as_str();
        while let Some(next) = up.get(current) {
            if *next == start {
                path.push(next);
                return Some(path.into_iter().map(str::to_owned).collect());
            }
            if path.contains(next) || path.len() > links.len() {
                break;
            }
            path.push(next);
            current = next;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found() {
        let link = |code: &str, up: Option<&str>| (code.to_owned(), up.map(str::to_owned));
        let tree = [
            link("67", None),
            link("663", Some("67")),
            link("24700", Some("663")),
        ];
        assert_eq!(find_cycle(&tree), None);
        let round = [link("67", None), link("a", Some("b")), link("b", Some("a"))];
        assert_eq!(
            find_cycle(&round),
            Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()])
        );
    }
}
