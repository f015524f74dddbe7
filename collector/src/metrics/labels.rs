//! The `district` and `unit` labels of a unit, shared by every per-unit family.
//!
//! `unit` is the unit's code. `district` is the code of the district-level unit the unit belongs
//! to (a commune's district, a district itself), or the unit's own code for units above or beside
//! the districts (the province, its departments); it is never empty, so dashboards can group by it.

use std::collections::HashMap;

use crate::store::Unit;

/// Labels of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLabel {
    /// Code of its district-level unit, or its own code above the districts.
    pub district: String,
    /// Its code.
    pub unit: String,
}

impl UnitLabel {
    /// For a unit id the database does not know (never expected: agents belong to stored units).
    pub fn unknown() -> UnitLabel {
        UnitLabel {
            district: "unknown".to_owned(),
            unit: "unknown".to_owned(),
        }
    }
}

/// Labels of every unit, by internal id.
#[derive(Debug, Clone, Default)]
pub struct UnitLabels {
    by_id: HashMap<i64, UnitLabel>,
}

impl UnitLabels {
    /// Labels of `units`, walking up to each one's district.
    pub fn new(units: &[Unit]) -> UnitLabels {
        let by_id: HashMap<i64, &Unit> = units.iter().map(|unit| (unit.id, unit)).collect();
        let mut labels = HashMap::with_capacity(units.len());
        for unit in units {
            let mut district = None;
            let mut current = Some(unit);
            // The depth bound keeps a (never expected) cycle in parents from looping forever.
            for _ in 0..16 {
                let Some(at) = current else { break };
                if at.kind == "district" {
                    district = Some(at.code.clone());
                    break;
                }
                current = at.parent_id.and_then(|parent| by_id.get(&parent).copied());
            }
            labels.insert(
                unit.id,
                UnitLabel {
                    district: district.unwrap_or_else(|| unit.code.clone()),
                    unit: unit.code.clone(),
                },
            );
        }
        UnitLabels { by_id: labels }
    }

    /// The labels of a unit.
    pub fn get(&self, unit_id: i64) -> Option<&UnitLabel> {
        self.by_id.get(&unit_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: i64, code: &str, kind: &str, parent_id: Option<i64>) -> Unit {
        Unit {
            id,
            code: code.to_owned(),
            name: code.to_owned(),
            kind: kind.to_owned(),
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
    fn district_is_the_district_above_or_the_unit_itself() {
        let units = [
            unit(1, "67", "province", None),
            unit(2, "67.S.TTTT", "department", Some(1)),
            unit(3, "663", "district", Some(1)),
            unit(4, "24700", "commune", Some(3)),
        ];
        let labels = UnitLabels::new(&units);
        let district = |id| labels.get(id).unwrap().district.clone();
        assert_eq!(district(1), "67");
        assert_eq!(district(2), "67.S.TTTT");
        assert_eq!(district(3), "663");
        assert_eq!(district(4), "663");
        assert_eq!(labels.get(4).unwrap().unit, "24700");
        assert!(labels.get(5).is_none());
    }
}
