//! Accounting: per-rule counters, per-inside-address attribution (bounded to
//! [`MAX_INSIDE_HOSTS`] addresses), the decision log (changes of (rule, outcome) per flow,
//! bounded to [`MAX_EVENTS`]) and the report built from them.

use std::net::IpAddr;

use callwall_wire::inspect::{FlowFacts, FlowInspector};

use super::chain::Decision;
use super::{
    CensorReport, Engine, Event, HostRuleCounters, InsideReport, RuleReport, Verdict, MAX_EVENTS,
};
use crate::flow::FlowKey;

/// Most inside addresses tracked for attribution; more are not attributed.
pub const MAX_INSIDE_HOSTS: usize = 1024;

impl Engine {
    /// Counts one decided frame of `len` bytes against rule `idx` (the default action is
    /// `rules.len()`) and the inside address it belongs to.
    #[inline]
    pub(super) fn count(&mut self, idx: usize, len: usize, inside: IpAddr, verdict: Verdict) {
        let c = &mut self.counters[idx];
        c.packets += 1;
        c.bytes += len as u64;
        match verdict {
            Verdict::Forward => c.forwarded += 1,
            Verdict::Drop => c.dropped += 1,
            Verdict::Held => c.delayed += 1,
        }
        self.attribute(inside, idx, verdict, len);
    }

    pub(super) fn attribute(&mut self, inside: IpAddr, rule: usize, verdict: Verdict, len: usize) {
        let n = self.policy.rules.len() + 1;
        if !self.by_inside.contains_key(&inside) && self.by_inside.len() >= MAX_INSIDE_HOSTS {
            return;
        }
        let row =
            self.by_inside.entry(inside).or_insert_with(|| vec![HostRuleCounters::default(); n]);
        let c = &mut row[rule];
        c.bytes += len as u64;
        match verdict {
            Verdict::Forward => c.forwarded += 1,
            Verdict::Drop => c.dropped += 1,
            Verdict::Held => c.delayed += 1,
        }
    }

    pub(super) fn log(&mut self, now_ns: u64, key: &FlowKey, d: &Decision) {
        if !self.log_events {
            return;
        }
        let idx = d.rule.unwrap_or(self.policy.rules.len());
        let Some(flow) = self.flows.get_mut(key) else { return };
        if flow.last_logged == Some((idx, d.outcome)) {
            return;
        }
        flow.last_logged = Some((idx, d.outcome));
        if self.events.len() >= MAX_EVENTS {
            self.stats.events_lost += 1;
            return;
        }
        let facts: Option<&FlowFacts> = flow.inspector.as_deref().map(FlowInspector::facts);
        let rule = match d.rule {
            Some(r) => self.policy.rules[r].name.clone(),
            None => self.policy.default_name.to_string(),
        };
        self.events.push_back(Event {
            t_ms: now_ns as f64 / 1e6,
            flow: flow.id(),
            rule,
            outcome: d.outcome,
            labels: facts
                .map(|f| f.labels.iter().map(|l| l.name().to_string()).collect())
                .unwrap_or_default(),
            sni: facts.and_then(|f| f.sni.clone()),
            default_rule: d.rule.is_none(),
        });
    }

    /// Per-rule results, the default action last.
    pub fn report(&self) -> CensorReport {
        let mut rules: Vec<RuleReport> = self
            .policy
            .rules
            .iter()
            .zip(&self.counters)
            .map(|(r, c)| RuleReport {
                name: r.name.clone(),
                description: r.description.clone(),
                action: r.action.summary(),
                counters: c.clone(),
            })
            .collect();
        rules.push(RuleReport {
            name: self.policy.default_name.to_string(),
            description: Some("packets no rule matched".into()),
            action: self.policy.default.summary(),
            counters: self.counters[self.policy.rules.len()].clone(),
        });
        let names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
        let mut by_inside: Vec<InsideReport> = self
            .by_inside
            .iter()
            .map(|(ip, row)| InsideReport {
                addr: *ip,
                rules: names
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .filter(|(_, c)| *c != HostRuleCounters::default())
                    .collect(),
            })
            .collect();
        by_inside.sort_by_key(|r| r.addr);
        CensorReport { rules, stats: self.stats.clone(), by_inside }
    }
}
