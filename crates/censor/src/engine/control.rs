//! Live control (see [`crate::control`]): rules switched on and off and the policy swapped
//! while the flow table, held frames and residual blocks of surviving rules stay.

use super::{Engine, HostRuleCounters, RuleCounters, MAX_EVENTS};
use crate::policy::Policy;

/// Live control (see [`crate::control`]): rules switched on and off and the policy swapped
/// while the flow table, held frames and residual blocks of surviving rules stay.
impl Engine {
    /// Applies one control command at `now_ns` and says what it did. `load` turns a `swap`'s
    /// path into a compiled policy (the I/O adapter reads the scenario file); its error is
    /// passed back in the response. A failed command changes nothing.
    pub fn control<E: std::fmt::Display>(
        &mut self,
        now_ns: u64,
        cmd: &crate::control::Command,
        load: &mut dyn FnMut(&std::path::Path) -> Result<Policy, E>,
    ) -> crate::control::Response {
        use crate::control::{Change, Command, Response};
        let mut switch =
            |rule, on| self.set_rule_enabled(now_ns, rule, on).map_err(|e| e.to_string());
        // The response carries the error as text (the control protocol's answer is JSON).
        let result = match cmd {
            Command::Status => Ok(None),
            Command::Enable { rule } => switch(rule, Some(true)),
            Command::Disable { rule } => switch(rule, Some(false)),
            Command::Toggle { rule } => switch(rule, None),
            Command::Swap { policy } => match load(policy) {
                Ok(p) => {
                    let source = policy.display().to_string();
                    let rules = p.rules.len();
                    self.swap_policy(now_ns, p, &source);
                    Ok(Some(Change::PolicySwap { source, rules }))
                }
                Err(e) => Err(e.to_string()),
            },
        };
        let (ok, error, change) = match result {
            Ok(c) => (true, None, c),
            Err(e) => (false, Some(e), None),
        };
        Response { ok, t_ms: now_ns as f64 / 1e6, error, change, rules: self.rule_status() }
    }

    /// The 0-based index of a rule, or an error naming the rules there are.
    pub fn rule_index(
        &self,
        rule: &crate::control::RuleRef,
    ) -> Result<usize, crate::control::UnknownRule> {
        use crate::control::RuleRef;
        let n = self.policy.rules.len();
        let found = match rule {
            RuleRef::Index(i) => i.checked_sub(1).filter(|&i| i < n),
            RuleRef::Name(name) => self.policy.rules.iter().position(|r| &r.name == name),
        };
        found.ok_or_else(|| crate::control::UnknownRule {
            rule: rule.clone(),
            rules: self.policy.rules.iter().map(|r| r.name.clone()).collect(),
        })
    }

    /// Whether rule `index` (0-based) is switched on.
    pub fn rule_enabled(&self, index: usize) -> bool {
        index < self.policy.rules.len() && !self.disabled.get(index).copied().unwrap_or(false)
    }

    /// Switches a rule on (`Some(true)`), off (`Some(false)`) or over (`None`). Returns the
    /// change, or `None` if the rule already was in that state; every change goes to the
    /// decision log. Switching a rule off lifts the residual blocks it started.
    pub fn set_rule_enabled(
        &mut self,
        now_ns: u64,
        rule: &crate::control::RuleRef,
        on: Option<bool>,
    ) -> Result<Option<crate::control::Change>, crate::control::UnknownRule> {
        use crate::control::Change;
        let i = self.rule_index(rule)?;
        let was = self.rule_enabled(i);
        let want = on.unwrap_or(!was);
        if want == was {
            return Ok(None);
        }
        self.disabled.resize(self.policy.rules.len(), false);
        self.disabled[i] = !want;
        if !want {
            self.residual.retain(|_, &mut (_, r)| r != i);
        }
        let name = self.policy.rules[i].name.clone();
        let change = if want {
            Change::RuleOn { index: i + 1, name }
        } else {
            Change::RuleOff { index: i + 1, name }
        };
        self.log_control(now_ns, change.clone());
        Ok(Some(change))
    }

    /// Replaces the policy, keeping the flow table (flows keep what the classifiers learned,
    /// so a rule of the new policy that matches on a label applies to running flows at their
    /// next packet), held frames and statistics. Every rule of the new policy starts switched
    /// on. Counters, per-address attribution and residual blocks carry over for rules whose
    /// name is in both policies (and for the default action); those of rules not in the new
    /// policy leave the report (the decision log keeps the swap). Per-flow rule state (token
    /// buckets, loss state, block decisions) starts afresh. `source` names the policy in the
    /// decision log.
    pub fn swap_policy(&mut self, now_ns: u64, policy: Policy, source: &str) {
        let old_n = self.policy.rules.len();
        let new_n = policy.rules.len();
        // Old index -> new index, by name; the default action maps to the default action.
        let map: Vec<Option<usize>> = self
            .policy
            .rules
            .iter()
            .map(|r| policy.rules.iter().position(|n| n.name == r.name))
            .chain(std::iter::once(Some(new_n)))
            .collect();
        let mut counters = vec![RuleCounters::default(); new_n + 1];
        for (old, new) in map.iter().enumerate() {
            if let (Some(new), Some(c)) = (new, self.counters.get(old)) {
                counters[*new] = c.clone();
            }
        }
        self.counters = counters;
        for row in self.by_inside.values_mut() {
            let mut fresh = vec![HostRuleCounters::default(); new_n + 1];
            for (old, new) in map.iter().enumerate().take(old_n + 1) {
                if let (Some(new), Some(c)) = (new, row.get(old)) {
                    fresh[*new] = c.clone();
                }
            }
            *row = fresh;
        }
        self.residual.retain(|_, (_, r)| match map.get(*r).copied().flatten() {
            Some(n) if n < new_n => {
                *r = n;
                true
            }
            _ => false,
        });
        for flow in self.flows.values_mut() {
            flow.rules.clear();
            flow.passed = 0;
            flow.last_logged = None;
        }
        self.disabled = vec![false; new_n];
        self.policy = policy;
        self.log_control(
            now_ns,
            crate::control::Change::PolicySwap { source: source.to_string(), rules: new_n },
        );
    }

    /// Every rule with its state and counters, in policy order.
    pub fn rule_status(&self) -> Vec<crate::control::RuleStatus> {
        self.policy
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let c = self.counters.get(i).cloned().unwrap_or_default();
                crate::control::RuleStatus {
                    index: i + 1,
                    name: r.name.clone(),
                    action: r.action.summary(),
                    enabled: self.rule_enabled(i),
                    packets: c.packets,
                    dropped: c.dropped,
                    delayed: c.delayed,
                    flows: c.flows,
                }
            })
            .collect()
    }

    /// A control change in the decision log; logged even when the per-packet log is off and
    /// past [`MAX_EVENTS`] (changes come from a person at a keyboard: there are few).
    fn log_control(&mut self, now_ns: u64, change: crate::control::Change) {
        if self.control_events.len() >= MAX_EVENTS {
            self.control_events.pop_front();
        }
        self.control_events
            .push_back(callwall_results::ControlEvent { t_ms: now_ns as f64 / 1e6, change });
    }

    /// The next control change for the decision log (every change is kept, whether or not
    /// per-packet logging is on; at most [`MAX_EVENTS`] wait here, oldest dropped first).
    pub fn poll_control_event(&mut self) -> Option<callwall_results::ControlEvent> {
        self.control_events.pop_front()
    }
}
