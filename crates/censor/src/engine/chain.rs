//! The rule chain: for each packet, the first rule that is active at that moment, switched on
//! and whose conditions all hold decides; packets no rule matches get the default action.

use std::net::IpAddr;

use callwall_wire::inspect::FlowInspector;

use super::{Engine, Outcome, Verdict};
use crate::flow::{Dir, FlowKey};
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
    /// For a held packet: how long the policer holds it before its `delay` starts (0 for
    /// every other decision).
    pub(super) wait_ns: u64,
}

impl Engine {
    /// Runs the chain on one packet of flow `key` and applies the deciding action's effects.
    pub(super) fn decide(&mut self, key: &FlowKey, p: &PacketCtx, ip_len: u64) -> Decision {
        let rules_len = self.policy.rules.len();
        let mut chosen = None;
        {
            let flow = &self.flows[key];
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
            for (i, rule) in self.policy.rules.iter().enumerate() {
                if p.now_ns < rule.active_from_ns
                    || p.now_ns >= rule.active_until_ns
                    || self.disabled.get(i).copied().unwrap_or(false)
                {
                    continue;
                }
                if rule.m.holds(&subject) {
                    chosen = Some(i);
                    break;
                }
            }
        }
        let action = match chosen {
            Some(i) => self.policy.rules[i].action,
            None => self.policy.default,
        };
        let state_idx = chosen.unwrap_or(rules_len);
        let mut wait_ns = 0;
        let (verdict, outcome) = self.apply(key, state_idx, &action, p, ip_len, &mut wait_ns);
        Decision { rule: chosen, verdict, outcome, wait_ns }
    }
}
