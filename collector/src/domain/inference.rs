//! Topology-aware outage inference (issue 4, items 3 and 4): from which agents are silent, decide
//! which outages to announce, so that one district link down is one incident, not forty.
//!
//! The module is pure. The store reads the units, the agents and the open incidents, calls
//! [`plan`] and applies the [`Plan`] in the same transaction (`store::inference`); then
//! [`correct`] turns the agents' own WAN/LAN incidents, delivered when they come back, into the
//! true start and end of the inferred ones.
//!
//! # Model
//!
//! - Every unit's WAN connection runs through its *uplink*: the unit named in the units file's
//!   `uplink_code`, by default its parent. Uplinks form a tree (cycles are refused on import).
//! - An agent is *silent* while it has an open "agent unreachable" incident (the silence sweep).
//! - A unit is *dark* when at least `share` of its own agents are silent. Its outage is announced
//!   as a **unit** incident when it also has at least `unit_min_agents` agents: one machine alone
//!   may simply be switched off.
//! - The *members* of an uplink X are the units behind it that have agents (directly or further
//!   down), and X's own agents as one more member. X is dark when at least `share` of its members
//!   are dark; when at least `uplink_min_units` of them are, its outage is announced as one
//!   **uplink** incident at X, which covers everything behind X.
//! - An outage opens once its condition has held for the *gather* time since its last agent was
//!   found silent, so that units cut off together are seen together.
//! - Only the highest announcement is opened: a unit already covered by an uplink incident gets
//!   none of its own. Incidents opened earlier stay open while they still hold, folded under the
//!   higher one.
//! - Every managed incident (agent unreachable, unit, uplink) gets as parent the nearest incident
//!   above it that holds: an agent's under its unit's, else under the nearest uplink's; a unit's
//!   under the nearest uplink's at or above its unit; an uplink's under the nearest one strictly
//!   above. Incidents without a parent are the ones people are told about.
//! - An inferred incident that no longer holds is resolved, at the first return of an agent it
//!   covers (else now). Agents come back one by one as their retries fire, so for a while (the
//!   *settle* time) what was folded under it stays there and no new outage opens inside what it
//!   covered; after that, what is still silent is released to stand alone.
//!
//! # Correction from evidence
//!
//! Agents that come back deliver the WAN/LAN incidents they detected while cut off. The store links
//! each to the inferred incident that covers its agent and overlaps it in time. [`correct`] then
//! computes the inferred incident's window from that evidence: per agent, the span of its linked
//! incidents; per unit, the time all its agents saw the outage (latest start, earliest end); per
//! uplink, the time all its members did. So a link cut at 08:12 and back at 09:40 reads
//! 08:12–09:40 within one probe interval, whatever the heartbeat and silence thresholds were.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How an inferred incident stands for its outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every agent (or the configured share) of one unit silent: the unit's connection.
    Unit,
    /// Several units behind one uplink silent: the uplink's connection.
    Uplink,
}

impl Scope {
    /// The name stored in `incidents.scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Unit => "unit",
            Scope::Uplink => "uplink",
        }
    }

    /// Parses a stored scope name; `agent` and unknown names are not inferred outages.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "unit" => Some(Scope::Unit),
            "uplink" => Some(Scope::Uplink),
            _ => None,
        }
    }
}

/// A unit with the unit its connection runs through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLink {
    /// Internal unit id.
    pub id: i64,
    /// The uplink: the configured one, else the parent; none at the top.
    pub uplink: Option<i64>,
}

/// An active agent as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// Agent id.
    pub id: String,
    /// Its unit.
    pub unit_id: i64,
    /// Its open "agent unreachable" incident, while it is silent.
    pub unreachable: Option<Managed>,
    /// When it last came back: the end of its latest resolved "agent unreachable" incident.
    pub returned_at: Option<i64>,
}

/// An open incident the planner manages (an agent's unreachable incident or an inferred outage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// Incident id.
    pub id: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// When the collector opened it, Unix ms.
    pub detected_at: i64,
    /// Current parent.
    pub parent_id: Option<String>,
}

/// An open inferred outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOutage {
    /// The unit it is about.
    pub unit_id: i64,
    /// Unit or uplink.
    pub scope: Scope,
    /// The incident.
    pub incident: Managed,
}

/// An inferred outage resolved during the settle time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlingOutage {
    /// Incident id.
    pub id: String,
    /// The unit it was about.
    pub unit_id: i64,
    /// Unit or uplink.
    pub scope: Scope,
}

/// The thresholds of the model, from `[incidents]` in the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Share of agents or members that must be silent, in (0, 1].
    pub share: f64,
    /// Fewest agents a unit needs for a unit incident.
    pub unit_min_agents: usize,
    /// Fewest dark members an uplink needs for an uplink incident.
    pub uplink_min_units: usize,
    /// How long an outage's condition must hold before it opens, ms: agents cut off at the same
    /// moment are found silent over about one heartbeat interval, and a unit should not open its
    /// own incident just before its whole district turns out to be dark.
    pub gather_ms: i64,
}

/// Where an incident should hang.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Parent {
    /// An incident that exists.
    Existing(String),
    /// One this plan opens.
    New(i64, Scope),
}

/// An outage to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutage {
    /// The unit it is about.
    pub unit_id: i64,
    /// Unit or uplink.
    pub scope: Scope,
    /// When the last of its silent agents was heard: the best guess until evidence arrives.
    pub started_at: i64,
    /// Dark units it covers (for an uplink: its dark members; for a unit: itself).
    pub dark_units: Vec<i64>,
    /// Silent agents it covers.
    pub silent_agents: usize,
}

/// An outage that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Incident id.
    pub id: String,
    /// First return of an agent it covers, or the evaluation time.
    pub ended_at: i64,
}

/// What to change, in order: open, resolve, then re-parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Outages to open.
    pub open: Vec<NewOutage>,
    /// Outages to resolve.
    pub resolve: Vec<Ended>,
    /// Incidents whose parent changes: (incident, new parent or none to release it).
    pub reparent: Vec<(Parent, Option<Parent>)>,
}

impl Plan {
    /// Drops the outages `skip` picks (units in planned maintenance, `domain::maintenance`), and
    /// the folding of incidents under them: those incidents stay on their own.
    pub fn without_openings(mut self, skip: impl Fn(&NewOutage) -> bool) -> Plan {
        let dropped: Vec<(i64, Scope)> = self
            .open
            .iter()
            .filter(|outage| skip(outage))
            .map(|outage| (outage.unit_id, outage.scope))
            .collect();
        if dropped.is_empty() {
            return self;
        }
        self.open
            .retain(|outage| !dropped.contains(&(outage.unit_id, outage.scope)));
        self.reparent.retain(|(_, parent)| {
            !matches!(parent, Some(Parent::New(unit, scope)) if dropped.contains(&(*unit, *scope)))
        });
        self
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.resolve.is_empty() && self.reparent.is_empty()
    }
}

/// The topology with the agents on it, and what is dark.
struct Picture<'a> {
    uplink: HashMap<i64, Option<i64>>,
    downlinks: HashMap<i64, Vec<i64>>,
    agents: HashMap<i64, Vec<&'a AgentState>>,
    rules: Rules,
    monitored: HashMap<i64, bool>,
    dark: HashMap<i64, bool>,
    dark_members: HashMap<i64, Vec<i64>>,
}

impl<'a> Picture<'a> {
    fn new(units: &[UnitLink], agents: &'a [AgentState], rules: Rules) -> Picture<'a> {
        let known: BTreeSet<i64> = units.iter().map(|unit| unit.id).collect();
        let mut uplink = HashMap::new();
        let mut downlinks: HashMap<i64, Vec<i64>> = HashMap::new();
        for unit in units {
            let up = unit
                .uplink
                .filter(|up| known.contains(up) && *up != unit.id);
            uplink.insert(unit.id, up);
            if let Some(up) = up {
                downlinks.entry(up).or_default().push(unit.id);
            }
        }
        let mut by_unit: HashMap<i64, Vec<&AgentState>> = HashMap::new();
        for agent in agents {
            by_unit.entry(agent.unit_id).or_default().push(agent);
        }
        let mut picture = Picture {
            uplink,
            downlinks,
            agents: by_unit,
            rules,
            monitored: HashMap::new(),
            dark: HashMap::new(),
            dark_members: HashMap::new(),
        };
        for unit in &known {
            picture.evaluate(*unit, 0);
        }
        picture
    }

    fn meets(&self, part: usize, whole: usize) -> bool {
        // A tiny tolerance so that 0.8 of 5 is 4, whatever the float rounding.
        whole > 0 && part as f64 + 1e-9 >= self.rules.share * whole as f64
    }

    /// Whether the unit's own agents are dark.
    fn unit_dark(&self, unit: i64) -> bool {
        let agents = self.agents.get(&unit).map_or(&[][..], Vec::as_slice);
        let silent = agents
            .iter()
            .filter(|agent| agent.unreachable.is_some())
            .count();
        self.meets(silent, agents.len())
    }

    fn n_agents(&self, unit: i64) -> usize {
        self.agents.get(&unit).map_or(0, Vec::len)
    }

    /// Fills `monitored`, `dark` and `dark_members` for `unit` and everything behind it. The depth
    /// guard only matters for a cyclic topology, which imports refuse.
    fn evaluate(&mut self, unit: i64, depth: usize) -> (bool, bool) {
        if let (Some(monitored), Some(dark)) = (self.monitored.get(&unit), self.dark.get(&unit)) {
            return (*monitored, *dark);
        }
        if depth > 64 {
            return (false, false);
        }
        let mut n_members = 0;
        let mut dark_members = Vec::new();
        if self.n_agents(unit) > 0 {
            n_members += 1;
            if self.unit_dark(unit) {
                dark_members.push(unit);
            }
        }
        for child in self.downlinks.get(&unit).cloned().unwrap_or_default() {
            let (monitored, dark) = self.evaluate(child, depth + 1);
            if monitored {
                n_members += 1;
                if dark {
                    dark_members.push(child);
                }
            }
        }
        let monitored = n_members > 0;
        let dark = self.meets(dark_members.len(), n_members);
        self.monitored.insert(unit, monitored);
        self.dark.insert(unit, dark);
        self.dark_members.insert(unit, dark_members);
        (monitored, dark)
    }

    fn unit_holds(&self, unit: i64) -> bool {
        self.n_agents(unit) >= self.rules.unit_min_agents && self.unit_dark(unit)
    }

    fn uplink_holds(&self, unit: i64) -> bool {
        self.dark.get(&unit).copied().unwrap_or(false)
            && self.dark_members.get(&unit).map_or(0, Vec::len) >= self.rules.uplink_min_units
    }

    /// `unit`, its uplink, that one's uplink, and so on.
    fn chain(&self, unit: i64) -> Vec<i64> {
        let mut chain = vec![unit];
        let mut current = unit;
        while let Some(Some(up)) = self.uplink.get(&current) {
            if chain.contains(up) || chain.len() > 64 {
                break;
            }
            chain.push(*up);
            current = *up;
        }
        chain
    }

    /// Units behind `unit` (itself included).
    fn covered(&self, unit: i64) -> Vec<i64> {
        let mut out = vec![unit];
        let mut index = 0;
        while index < out.len() {
            for child in self.downlinks.get(&out[index]).into_iter().flatten() {
                if !out.contains(child) {
                    out.push(*child);
                }
            }
            index += 1;
        }
        out
    }

    fn silent_in(&self, units: &[i64]) -> Vec<&'a AgentState> {
        units
            .iter()
            .flat_map(|unit| self.agents.get(unit).into_iter().flatten())
            .filter(|agent| agent.unreachable.is_some())
            .copied()
            .collect()
    }
}

/// Decides which outages to open, resolve and fold, from the units, the active agents, the open
/// inferred outages and those still settling, at `now` (Unix ms). Pure; see the module's notes.
pub fn plan(
    units: &[UnitLink],
    agents: &[AgentState],
    open: &[OpenOutage],
    settling: &[SettlingOutage],
    rules: Rules,
    now: i64,
) -> Plan {
    let picture = Picture::new(units, agents, rules);
    let mut settling_units: BTreeSet<i64> = settling
        .iter()
        .flat_map(|outage| match outage.scope {
            Scope::Unit => vec![outage.unit_id],
            Scope::Uplink => picture.covered(outage.unit_id),
        })
        .collect();
    let mut settling_ids: BTreeSet<&str> =
        settling.iter().map(|outage| outage.id.as_str()).collect();
    let existing: BTreeMap<(i64, Scope), &OpenOutage> = open
        .iter()
        .map(|outage| ((outage.unit_id, outage.scope), outage))
        .collect();
    let mut plan = Plan::default();

    // Which outages hold now: existing ones that still do, and new ones at the highest level.
    let mut holding: BTreeMap<(i64, Scope), Parent> = BTreeMap::new();
    for outage in open {
        let holds = match outage.scope {
            Scope::Unit => picture.unit_holds(outage.unit_id),
            Scope::Uplink => picture.uplink_holds(outage.unit_id),
        };
        if holds {
            holding.insert(
                (outage.unit_id, outage.scope),
                Parent::Existing(outage.incident.id.clone()),
            );
        } else {
            let covered = match outage.scope {
                Scope::Unit => vec![outage.unit_id],
                Scope::Uplink => picture.covered(outage.unit_id),
            };
            let ended_at = covered
                .iter()
                .flat_map(|unit| picture.agents.get(unit).into_iter().flatten())
                .filter(|agent| agent.unreachable.is_none())
                .filter_map(|agent| agent.returned_at)
                .filter(|returned| *returned >= outage.incident.started_at)
                .min()
                .unwrap_or(now);
            plan.resolve.push(Ended {
                id: outage.incident.id.clone(),
                ended_at,
            });
            // Ending now, it starts to settle now.
            settling_units.extend(covered);
            settling_ids.insert(&outage.incident.id);
        }
    }
    let mut units_sorted: Vec<i64> = units.iter().map(|unit| unit.id).collect();
    units_sorted.sort_unstable();
    for unit in &units_sorted {
        let chain = picture.chain(*unit);
        let covered_above = |from: usize| chain[from..].iter().any(|up| picture.uplink_holds(*up));
        let gathered = |units: &[i64]| {
            picture
                .silent_in(units)
                .iter()
                .filter_map(|agent| agent.unreachable.as_ref().map(|i| i.detected_at))
                .max()
                .is_some_and(|last| now - last >= rules.gather_ms)
        };
        if picture.uplink_holds(*unit)
            && !settling_units.contains(unit)
            && gathered(&picture.covered(*unit))
            && !covered_above(1)
            && !existing.contains_key(&(*unit, Scope::Uplink))
        {
            let covered = picture.covered(*unit);
            let silent = picture.silent_in(&covered);
            plan.open.push(NewOutage {
                unit_id: *unit,
                scope: Scope::Uplink,
                started_at: latest_start(&silent, now),
                dark_units: picture.dark_members[unit].clone(),
                silent_agents: silent.len(),
            });
            holding.insert((*unit, Scope::Uplink), Parent::New(*unit, Scope::Uplink));
        }
        if picture.unit_holds(*unit)
            && !settling_units.contains(unit)
            && gathered(&[*unit])
            && !covered_above(0)
            && !existing.contains_key(&(*unit, Scope::Unit))
        {
            let silent = picture.silent_in(&[*unit]);
            plan.open.push(NewOutage {
                unit_id: *unit,
                scope: Scope::Unit,
                started_at: latest_start(&silent, now),
                dark_units: vec![*unit],
                silent_agents: silent.len(),
            });
            holding.insert((*unit, Scope::Unit), Parent::New(*unit, Scope::Unit));
        }
    }

    // Every managed incident hangs under the nearest holding outage above it.
    let nearest_uplink = |unit: i64, from: usize| -> Option<Parent> {
        picture.chain(unit)[from..]
            .iter()
            .find_map(|up| holding.get(&(*up, Scope::Uplink)).cloned())
    };
    let mut want = |id: &str, current: &Option<String>, parent: Option<Parent>| {
        let same = match (&parent, current) {
            (None, None) => true,
            (Some(Parent::Existing(wanted)), Some(current)) => wanted == current,
            // Still under an outage that just ended: wait for the settle time before releasing.
            (None, Some(current)) => settling_ids.contains(current.as_str()),
            _ => false,
        };
        if !same {
            plan.reparent
                .push((Parent::Existing(id.to_owned()), parent));
        }
    };
    for agent in agents {
        if let Some(unreachable) = &agent.unreachable {
            let parent = holding
                .get(&(agent.unit_id, Scope::Unit))
                .cloned()
                .or_else(|| nearest_uplink(agent.unit_id, 0));
            want(&unreachable.id, &unreachable.parent_id, parent);
        }
    }
    for outage in open {
        if !holding.contains_key(&(outage.unit_id, outage.scope)) {
            // Resolving releases it from its parent too: it is over, and stands on its own.
            want(&outage.incident.id, &outage.incident.parent_id, None);
            continue;
        }
        let parent = match outage.scope {
            Scope::Unit => nearest_uplink(outage.unit_id, 0),
            Scope::Uplink => nearest_uplink(outage.unit_id, 1),
        };
        want(&outage.incident.id, &outage.incident.parent_id, parent);
    }
    for new in &plan.open.clone() {
        let parent = match new.scope {
            Scope::Unit => nearest_uplink(new.unit_id, 0),
            Scope::Uplink => nearest_uplink(new.unit_id, 1),
        };
        if parent.is_some() {
            plan.reparent
                .push((Parent::New(new.unit_id, new.scope), parent));
        }
    }
    plan.reparent.sort();
    plan
}

fn latest_start(silent: &[&AgentState], now: i64) -> i64 {
    silent
        .iter()
        .filter_map(|agent| {
            agent
                .unreachable
                .as_ref()
                .map(|incident| incident.started_at)
        })
        .max()
        .unwrap_or(now)
}

/// One agent's WAN/LAN incident linked to an inferred outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The agent that saw it.
    pub agent_id: String,
    /// The member it counts for: for a unit outage the unit itself; for an uplink outage the unit
    /// behind the uplink (or the uplink itself) through which the agent's unit is connected.
    pub member: i64,
    /// Start as the agent detected it.
    pub started_at: i64,
    /// End as the agent detected it; none while it lasts.
    pub ended_at: Option<i64>,
}

/// The window an inferred outage had according to its evidence: per agent the span of its
/// incidents, per member the time all its agents saw it, overall the time all members did.
/// `None` without evidence, or when the evidence does not overlap (then the inference stands).
pub fn correct(evidence: &[Evidence]) -> Option<(i64, Option<i64>)> {
    let mut per_agent: BTreeMap<(&str, i64), (i64, Option<i64>)> = BTreeMap::new();
    for item in evidence {
        let entry = per_agent
            .entry((item.agent_id.as_str(), item.member))
            .or_insert((item.started_at, item.ended_at));
        entry.0 = entry.0.min(item.started_at);
        entry.1 = match (entry.1, item.ended_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let mut per_member: BTreeMap<i64, (i64, Option<i64>)> = BTreeMap::new();
    for ((_, member), (start, end)) in per_agent {
        let entry = per_member.entry(member).or_insert((start, end));
        entry.0 = entry.0.max(start);
        entry.1 = earliest(entry.1, end);
    }
    let mut window: Option<(i64, Option<i64>)> = None;
    for (start, end) in per_member.into_values() {
        window = Some(match window {
            None => (start, end),
            Some((s, e)) => (s.max(start), earliest(e, end)),
        });
    }
    window.filter(|(start, end)| end.is_none_or(|end| end >= *start))
}

/// The earlier of two ends, where none means "still going".
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        share: 1.0,
        unit_min_agents: 2,
        uplink_min_units: 2,
        gather_ms: 1000,
    };

    /// Province 1; district 10 with communes 11, 12, 13; district 20 with commune 21.
    fn units() -> Vec<UnitLink> {
        [
            (1, None),
            (10, Some(1)),
            (11, Some(10)),
            (12, Some(10)),
            (13, Some(10)),
            (20, Some(1)),
            (21, Some(20)),
        ]
        .into_iter()
        .map(|(id, uplink)| UnitLink { id, uplink })
        .collect()
    }

    /// `n` agents in `unit`, named `u<unit>a<i>`; the first `silent` of them silent since 1000+i.
    fn agents(unit: i64, n: usize, silent: usize) -> Vec<AgentState> {
        (0..n)
            .map(|i| AgentState {
                id: format!("u{unit}a{i}"),
                unit_id: unit,
                unreachable: (i < silent).then(|| Managed {
                    id: format!("x-u{unit}a{i}"),
                    started_at: 1000 + i as i64,
                    detected_at: 2000 + i as i64,
                    parent_id: None,
                }),
                returned_at: None,
            })
            .collect()
    }

    fn fleet(silent: [usize; 3]) -> Vec<AgentState> {
        let mut all = agents(11, 4, silent[0]);
        all.extend(agents(12, 4, silent[1]));
        all.extend(agents(13, 4, silent[2]));
        all.extend(agents(21, 2, 0));
        all
    }

    fn ex(id: &str) -> Parent {
        Parent::Existing(id.into())
    }

    fn reparents(plan: &Plan) -> Vec<(Parent, Option<Parent>)> {
        plan.reparent.clone()
    }

    #[test]
    fn outages_of_units_in_maintenance_are_not_opened_and_nothing_is_folded_under_them() {
        let planned = plan(&units(), &fleet([4, 0, 0]), &[], &[], RULES, 5000);
        assert!(!planned.open.is_empty());
        assert!(planned
            .reparent
            .iter()
            .any(|(_, parent)| matches!(parent, Some(Parent::New(..)))));
        assert_eq!(planned.clone().without_openings(|_| false), planned);
        let held = planned.clone().without_openings(|_| true);
        assert!(held.open.is_empty());
        assert!(held
            .reparent
            .iter()
            .all(|(_, parent)| !matches!(parent, Some(Parent::New(..)))));
    }

    #[test]
    fn one_silent_agent_is_only_its_own_incident() {
        let plan = plan(&units(), &fleet([1, 0, 0]), &[], &[], RULES, 5000);
        assert!(plan.is_empty(), "{plan:#?}");
    }

    #[test]
    fn a_dark_unit_is_one_unit_incident_over_its_agents() {
        let plan = plan(&units(), &fleet([4, 0, 0]), &[], &[], RULES, 5000);
        assert_eq!(
            plan.open,
            vec![NewOutage {
                unit_id: 11,
                scope: Scope::Unit,
                started_at: 1003,
                dark_units: vec![11],
                silent_agents: 4,
            }]
        );
        let expected: Vec<_> = (0..4)
            .map(|i| {
                (
                    ex(&format!("x-u11a{i}")),
                    Some(Parent::New(11, Scope::Unit)),
                )
            })
            .collect();
        assert_eq!(reparents(&plan), expected);
        assert!(plan.resolve.is_empty());
    }

    #[test]
    fn a_unit_with_one_agent_gets_no_unit_incident_but_counts_for_its_uplink() {
        let units = units();
        let mut agents = agents(11, 1, 1);
        agents.extend(self::agents(12, 1, 1));
        let plan = plan(&units, &agents, &[], &[], RULES, 5000);
        assert_eq!(plan.open.len(), 1, "{plan:#?}");
        assert_eq!(
            (plan.open[0].unit_id, plan.open[0].scope),
            (10, Scope::Uplink)
        );
        assert_eq!(plan.open[0].dark_units, vec![11, 12]);
        assert_eq!(
            reparents(&plan),
            vec![
                (ex("x-u11a0"), Some(Parent::New(10, Scope::Uplink))),
                (ex("x-u12a0"), Some(Parent::New(10, Scope::Uplink))),
            ]
        );
    }

    #[test]
    fn every_unit_behind_an_uplink_dark_is_one_uplink_incident() {
        let plan = plan(&units(), &fleet([4, 4, 4]), &[], &[], RULES, 5000);
        assert_eq!(plan.open.len(), 1, "{plan:#?}");
        assert_eq!(plan.open[0].scope, Scope::Uplink);
        assert_eq!(plan.open[0].unit_id, 10);
        assert_eq!(plan.open[0].silent_agents, 12);
        assert_eq!(plan.reparent.len(), 12);
        assert!(plan
            .reparent
            .iter()
            .all(|(_, parent)| *parent == Some(Parent::New(10, Scope::Uplink))));
    }

    #[test]
    fn an_outage_waits_for_the_gather_time_so_units_cut_together_are_seen_together() {
        // The last agent was found silent at 2003: nothing opens before 3003.
        assert!(plan(&units(), &fleet([4, 0, 0]), &[], &[], RULES, 3000).is_empty());
        assert_eq!(
            plan(&units(), &fleet([4, 0, 0]), &[], &[], RULES, 3003)
                .open
                .len(),
            1
        );
        // 12 and 13 found silent just now (11 earlier): nothing while gathering, then one
        // district incident rather than commune ones.
        let mut agents = fleet([4, 4, 4]);
        for agent in agents
            .iter_mut()
            .filter(|agent| [12, 13].contains(&agent.unit_id))
        {
            agent.unreachable.as_mut().unwrap().detected_at = 9000;
        }
        assert!(plan(&units(), &agents, &[], &[], RULES, 9500).is_empty());
        let late = plan(&units(), &agents, &[], &[], RULES, 10_000);
        let opened: Vec<_> = late.open.iter().map(|o| (o.unit_id, o.scope)).collect();
        assert_eq!(opened, vec![(10, Scope::Uplink)]);
    }

    #[test]
    fn two_of_three_units_dark_are_two_unit_incidents() {
        let plan = plan(&units(), &fleet([4, 4, 0]), &[], &[], RULES, 5000);
        let opened: Vec<_> = plan.open.iter().map(|o| (o.unit_id, o.scope)).collect();
        assert_eq!(opened, vec![(11, Scope::Unit), (12, Scope::Unit)]);
    }

    #[test]
    fn a_share_below_one_tolerates_a_reporting_agent() {
        let rules = Rules {
            share: 0.75,
            ..RULES
        };
        let plan = plan(&units(), &fleet([3, 0, 0]), &[], &[], rules, 5000);
        assert_eq!(plan.open.len(), 1);
        assert_eq!(plan.open[0].silent_agents, 3);
        let plan = self::plan(&units(), &fleet([2, 0, 0]), &[], &[], rules, 5000);
        assert!(plan.open.is_empty());
    }

    #[test]
    fn an_existing_unit_incident_folds_under_a_new_uplink_incident() {
        let mut agents = fleet([4, 4, 4]);
        for agent in agents.iter_mut().filter(|agent| agent.unit_id == 11) {
            agent.unreachable.as_mut().unwrap().parent_id = Some("unit-11".into());
        }
        let open = [OpenOutage {
            unit_id: 11,
            scope: Scope::Unit,
            incident: Managed {
                id: "unit-11".into(),
                started_at: 900,
                detected_at: 0,
                parent_id: None,
            },
        }];
        let plan = plan(&units(), &agents, &open, &[], RULES, 5000);
        assert_eq!(plan.open.len(), 1);
        assert_eq!(plan.open[0].scope, Scope::Uplink);
        let moved: BTreeMap<_, _> = plan.reparent.iter().cloned().collect();
        // Unit 11's agents stay under unit 11's incident, which goes under the uplink's.
        assert!(!moved.contains_key(&ex("x-u11a0")));
        assert_eq!(
            moved[&ex("unit-11")],
            Some(Parent::New(10, Scope::Uplink)),
            "{plan:#?}"
        );
        assert_eq!(moved[&ex("x-u12a0")], Some(Parent::New(10, Scope::Uplink)));
        assert!(plan.resolve.is_empty());
    }

    #[test]
    fn a_returning_unit_ends_the_uplink_incident_and_the_others_settle_before_release() {
        let mut agents = fleet([0, 4, 4]);
        for agent in &mut agents {
            if let Some(unreachable) = &mut agent.unreachable {
                unreachable.parent_id = Some("uplink-10".into());
            }
            if agent.unit_id == 11 {
                agent.returned_at = Some(7000 + agent.id.len() as i64);
            }
        }
        agents[0].returned_at = Some(6500);
        let open = [OpenOutage {
            unit_id: 10,
            scope: Scope::Uplink,
            incident: Managed {
                id: "uplink-10".into(),
                started_at: 1003,
                detected_at: 0,
                parent_id: None,
            },
        }];
        let first = plan(&units(), &agents, &open, &[], RULES, 9000);
        assert_eq!(
            first,
            Plan {
                resolve: vec![Ended {
                    id: "uplink-10".into(),
                    ended_at: 6500
                }],
                ..Plan::default()
            },
            "the others stay folded while they may still be on their way back"
        );
        let settling = [SettlingOutage {
            id: "uplink-10".into(),
            unit_id: 10,
            scope: Scope::Uplink,
        }];
        assert!(plan(&units(), &agents, &[], &settling, RULES, 9500).is_empty());
        // Settled, units 12 and 13 are still dark on their own: each gets its own incident.
        let after = plan(&units(), &agents, &[], &[], RULES, 99_000);
        let opened: Vec<_> = after.open.iter().map(|o| (o.unit_id, o.scope)).collect();
        assert_eq!(opened, vec![(12, Scope::Unit), (13, Scope::Unit)]);
        let moved: BTreeMap<_, _> = after.reparent.iter().cloned().collect();
        assert_eq!(moved[&ex("x-u12a0")], Some(Parent::New(12, Scope::Unit)));
        assert_eq!(moved[&ex("x-u13a3")], Some(Parent::New(13, Scope::Unit)));
    }

    #[test]
    fn a_resolved_outage_releases_agents_still_silent() {
        let mut agents = agents(11, 4, 1);
        agents[0].unreachable.as_mut().unwrap().parent_id = Some("unit-11".into());
        agents[1].returned_at = Some(4000);
        let open = [OpenOutage {
            unit_id: 11,
            scope: Scope::Unit,
            incident: Managed {
                id: "unit-11".into(),
                started_at: 1003,
                detected_at: 0,
                parent_id: None,
            },
        }];
        let plan = plan(&units(), &agents, &open, &[], RULES, 9000);
        assert_eq!(
            plan.resolve,
            vec![Ended {
                id: "unit-11".into(),
                ended_at: 4000
            }]
        );
        assert!(plan.reparent.is_empty(), "settling first: {plan:#?}");
        let later = self::plan(&units(), &agents, &[], &[], RULES, 99_000);
        assert_eq!(later.reparent, vec![(ex("x-u11a0"), None)]);
    }

    #[test]
    fn a_plan_applied_is_stable() {
        // Once folded as planned, planning again changes nothing.
        let mut agents = fleet([4, 0, 0]);
        for agent in &mut agents {
            if let Some(unreachable) = &mut agent.unreachable {
                unreachable.parent_id = Some("unit-11".into());
            }
        }
        let open = [OpenOutage {
            unit_id: 11,
            scope: Scope::Unit,
            incident: Managed {
                id: "unit-11".into(),
                started_at: 1003,
                detected_at: 0,
                parent_id: None,
            },
        }];
        assert!(plan(&units(), &agents, &open, &[], RULES, 9000).is_empty());
    }

    #[test]
    fn a_cyclic_topology_does_not_hang() {
        let units = vec![
            UnitLink {
                id: 1,
                uplink: Some(2),
            },
            UnitLink {
                id: 2,
                uplink: Some(1),
            },
        ];
        let mut agents = agents(1, 2, 2);
        agents.extend(self::agents(2, 2, 2));
        let _ = plan(&units, &agents, &[], &[], RULES, 5000);
    }

    fn evidence(agent: &str, member: i64, start: i64, end: Option<i64>) -> Evidence {
        Evidence {
            agent_id: agent.into(),
            member,
            started_at: start,
            ended_at: end,
        }
    }

    #[test]
    fn correction_takes_the_time_every_member_saw_the_outage() {
        assert_eq!(correct(&[]), None);
        // Unit: four agents, probes a little apart.
        let unit = [
            evidence("a", 11, 100, Some(900)),
            evidence("b", 11, 120, Some(880)),
            evidence("c", 11, 110, Some(905)),
        ];
        assert_eq!(correct(&unit), Some((120, Some(880))));
        // One agent's outage in two pieces counts as its whole span.
        let flapping = [
            evidence("a", 11, 100, Some(400)),
            evidence("a", 11, 450, Some(900)),
        ];
        assert_eq!(correct(&flapping), Some((100, Some(900))));
        // Uplink: unit 11 went first; the uplink outage is when both were out.
        let uplink = [
            evidence("a", 11, 100, Some(900)),
            evidence("b", 12, 300, Some(910)),
        ];
        assert_eq!(correct(&uplink), Some((300, Some(900))));
        // Still going for one agent: the end is the others' earliest.
        let going = [
            evidence("a", 11, 100, None),
            evidence("b", 11, 90, Some(800)),
        ];
        assert_eq!(correct(&going), Some((100, Some(800))));
        // Evidence that does not overlap leaves the inference alone.
        let apart = [
            evidence("a", 11, 100, Some(200)),
            evidence("b", 12, 300, Some(400)),
        ];
        assert_eq!(correct(&apart), None);
    }
}
