//! The rule chain: for each packet, the first rule that is active at that moment, switched on
//! and whose conditions all hold decides; packets no rule matches get the default action.
//!
//! The established-flow fast path: once a flow's classification is settled (inspection off,
//! not TCP or UDP, both directions past `inspect_packets`, or the classifiers done), a rule
//! whose conditions are all [`crate::policy::Condition::settled_static`] gives the same
//! answer for every later packet of the same slot (direction relative to the flow x
//! direction through the censor). The first such rule that holds is found once per slot
//! and memoised in the flow; later packets skip the settled-static rules before it (known
//! not to hold), take it when they reach it (if active and switched on), and evaluate every
//! other rule as before. Time windows, switches and per-packet conditions are still read on
//! every packet, so the decision is the same as without the memo.

use std::net::IpAddr;

use callwall_wire::inspect::FlowInspector;

use super::flows::{Flow, NO_MEMO};
use super::{Engine, Outcome, Verdict};
use crate::flow::{Dir, FlowKey};
use crate::policy::Policy;
use crate::policy::Subject;

/// One packet as the chain sees it.
pub(super) struct PacketCtx {
    pub(super) now_ns: u64,
    pub(super) dir: Dir,
    /// 0: client to server; 1: server to client.
    pub(super) rel: usize,
    pub(super) proto: u8,
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) payload_len: usize,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
}

/// Outcome of running the chain on one packet.
pub(super) struct Decision {
    pub(super) rule: Option<usize>,
    pub(super) verdict: Verdict,
    pub(super) outcome: Outcome,
}

/// Per rule of `policy`: its match is settled-static.
pub(super) fn static_rules(policy: &Policy) -> Vec<bool> {
    policy.rules.iter().map(|r| r.m.settled_static()).collect()
}

impl Engine {
    /// True when no classifier will see another packet of `flow`, so the facts the rules read
    /// are final.
    fn settled(&self, flow: &Flow) -> bool {
        use callwall_wire::packet::{PROTO_TCP, PROTO_UDP};
        if !self.needs_inspection || (flow.proto != PROTO_UDP && flow.proto != PROTO_TCP) {
            return true;
        }
        let limit = u64::from(self.policy.inspect_packets);
        (flow.packets[0] > limit && flow.packets[1] > limit)
            || flow.inspector.as_ref().is_some_and(|i| i.facts().done)
    }

    /// Runs the chain on one packet of flow `key` and applies the deciding action's effects.
    pub(super) fn decide(&mut self, key: &FlowKey, p: &PacketCtx, ip_len: u64) -> Decision {
        let rules_len = self.policy.rules.len();
        let mut chosen = None;
        let slot = p.rel * 2 + p.dir as usize;
        let mut new_memo = None;
        {
            let flow = &self.flows[key];
            let fast = self.fast_path && self.settled(flow);
            let subject = Subject {
                now_ns: p.now_ns,
                dir: p.dir,
                proto: p.proto,
                src_port: p.sport,
                dst_port: p.dport,
                src: p.src,
                dst: p.dst,
                payload_len: p.payload_len,
                client: flow.client,
                server: flow.server,
                flow_start_ns: flow.start_ns,
                packets_this_dir: flow.packets[p.rel],
                bytes: flow.bytes,
                facts: flow.inspector.as_deref().map(FlowInspector::facts),
            };
            let memo = match (fast, flow.chain_memo[slot]) {
                (false, _) => None,
                (true, NO_MEMO) => {
                    let m = (0..rules_len)
                        .find(|&i| self.static_rules[i] && self.policy.rules[i].m.holds(&subject))
                        .unwrap_or(rules_len);
                    new_memo = Some(m as u32);
                    Some(m)
                }
                (true, m) => Some(m as usize),
            };
            for (i, rule) in self.policy.rules.iter().enumerate() {
                if p.now_ns < rule.active_from_ns
                    || p.now_ns >= rule.active_until_ns
                    || self.disabled.get(i).copied().unwrap_or(false)
                {
                    continue;
                }
                if let Some(m) = memo.filter(|_| self.static_rules[i]) {
                    if i < m {
                        continue;
                    }
                    if i == m {
                        chosen = Some(i);
                        break;
                    }
                }
                if rule.m.holds(&subject) {
                    chosen = Some(i);
                    break;
                }
            }
        }
        if let (Some(m), Some(f)) = (new_memo, self.flows.get_mut(key)) {
            f.chain_memo[slot] = m;
        }
        let action = match chosen {
            Some(i) => self.policy.rules[i].action,
            None => self.policy.default,
        };
        let state_idx = chosen.unwrap_or(rules_len);
        let (verdict, outcome) = self.apply(key, state_idx, &action, p, ip_len);
        Decision { rule: chosen, verdict, outcome }
    }
}
