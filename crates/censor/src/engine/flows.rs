//! The engine's flows in the censor's [`FlowTable`](crate::flow_table::FlowTable) (a flow per direction-independent 5-tuple,
//! the first sender is the client, expiry after `flow_timeout` and eviction of the oldest idle
//! flow when the table is full: the rule is in [`crate::flow_table`]), each with its stable
//! identity for random draws and its per-rule flow state.

use std::collections::HashMap;
use std::net::IpAddr;

use callwall_wire::inspect::FlowInspector;

use super::{Engine, Outcome};
use crate::flow::{Endpoint, FlowKey};
use crate::flow_table::{self, Removed, Tracked};
use crate::rng::FlowIdentity;

/// Per-rule state of one flow.
#[derive(Debug, Clone)]
pub(super) struct RuleFlowState {
    pub(super) rule: usize,
    /// Token bucket per flow direction (0 = client to server).
    pub(super) tokens: [f64; 2],
    pub(super) refilled_ns: [u64; 2],
    pub(super) ge_bad: [bool; 2],
    /// When the Gilbert-Elliott chain of each direction last stepped.
    pub(super) ge_last_ns: [Option<u64>; 2],
    pub(super) blocked: Option<bool>,
}

pub(super) struct Flow {
    pub(super) client: Endpoint,
    pub(super) server: Endpoint,
    pub(super) proto: u8,
    pub(super) start_ns: u64,
    pub(super) last_ns: u64,
    /// Index 0: client to server; 1: server to client.
    pub(super) packets: [u64; 2],
    pub(super) bytes: [u64; 2],
    pub(super) inspector: Option<Box<FlowInspector>>,
    /// State of the rules with effects (police, loss, block decision...) that decided a
    /// packet of this flow.
    pub(super) rules: Vec<RuleFlowState>,
    /// Rules (by index, below 64, the default action's index included) whose pass action
    /// decided a packet of this flow: counted once in the rule's `flows` without a
    /// [`RuleFlowState`], which a pass never reads (a rule index keeps its action until a
    /// policy swap clears both).
    pub(super) passed: u64,
    pub(super) last_logged: Option<(usize, Outcome)>,
    /// [`FlowIdentity::digest`]: what random draws for this flow are keyed on.
    pub(super) ident: u64,
    /// The flow's number: `flows_created` when it was created (1 for the first).
    pub(super) serial: u64,
}

impl Tracked for Flow {
    #[inline]
    fn last_ns(&self) -> u64 {
        self.last_ns
    }
}

/// The flow of the frame the engine handled last, as [`super::Engine::last_flow`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowView {
    /// The flow's number in the engine (1 for the first flow created); a 5-tuple that comes
    /// back after its flow expired or was evicted is a new flow with a new number.
    pub serial: u64,
    /// Protocol, client (the first sender) and server.
    pub flow: callwall_results::Flow,
    /// Which way the frame went within the flow.
    pub side: flow_table::Side,
}

impl Flow {
    pub(super) fn id(&self) -> callwall_results::Flow {
        callwall_results::Flow {
            proto: callwall_results::Proto(self.proto),
            client: self.client,
            server: self.server,
        }
    }

    /// Notes that `rule`'s pass action decided a packet of this flow; true the first time.
    pub(super) fn note_pass(&mut self, rule: usize, now: u64) -> bool {
        if rule < 64 {
            let new = self.passed & (1 << rule) == 0;
            self.passed |= 1 << rule;
            new
        } else {
            self.rule_state(rule, 0.0, now).1
        }
    }

    pub(super) fn rule_state(
        &mut self,
        rule: usize,
        depth: f64,
        now: u64,
    ) -> (&mut RuleFlowState, bool) {
        match self.rules.iter().position(|r| r.rule == rule) {
            Some(i) => (&mut self.rules[i], false),
            None => {
                // Most flows meet one such rule: no spare capacity.
                self.rules.reserve_exact(1);
                self.rules.push(RuleFlowState {
                    rule,
                    tokens: [depth; 2],
                    refilled_ns: [now; 2],
                    ge_bad: [false; 2],
                    ge_last_ns: [None; 2],
                    blocked: None,
                });
                let last = self.rules.len() - 1;
                (&mut self.rules[last], true)
            }
        }
    }
}

impl Engine {
    /// Finds or creates the flow of a packet from `src` to `dst` and counts the packet in it.
    /// Returns the packet's direction relative to the flow (0: client to server, 1: server to
    /// client), the flow's identity digest and the packet's index in that direction; the
    /// classifiers see the packet here too.
    #[inline]
    pub(super) fn track(
        &mut self,
        now_ns: u64,
        key: FlowKey,
        proto: u8,
        src: Endpoint,
        dst: Endpoint,
        payload: &[u8],
    ) -> (usize, u64, u64) {
        if !self.flows.contains_key(&key) {
            let (timeout, max) = (self.policy.flow_timeout_ns, self.policy.max_flows);
            let stats = &mut self.stats;
            self.flows.make_room(now_ns, timeout, max, |why, _| match why {
                Removed::Expired => stats.flows_expired += 1,
                Removed::Evicted => stats.flows_evicted += 1,
            });
            let ident = self.flow_identity(proto, src, dst).digest();
            self.stats.flows_created += 1;
            self.flows.insert(
                key,
                Box::new(Flow {
                    client: src,
                    server: dst,
                    proto,
                    start_ns: now_ns,
                    last_ns: now_ns,
                    packets: [0; 2],
                    bytes: [0; 2],
                    inspector: None,
                    rules: Vec::new(),
                    passed: 0,
                    last_logged: None,
                    ident,
                    serial: self.stats.flows_created,
                }),
            );
        }
        let needs_inspection = self.needs_inspection;
        let inspect_packets = self.policy.inspect_packets;
        let flow = self.flows.get_mut(&key).expect("flow inserted above");
        let rel = flow_table::side(flow.client, src) as usize;
        flow.last_ns = now_ns;
        flow.packets[rel] += 1;
        flow.bytes[rel] += payload.len() as u64;
        if needs_inspection {
            super::classify::observe(flow, rel, inspect_packets, payload);
        }
        (rel, flow.ident, flow.packets[rel])
    }

    /// The stable identity of a new flow from `client` to `server` (see [`crate::rng`]).
    fn flow_identity(&mut self, proto: u8, client: Endpoint, server: Endpoint) -> FlowIdentity {
        if self.ordinals.len() >= 4 * self.policy.max_flows.max(1) {
            self.ordinals.clear();
        }
        let ordinal = self.ordinals.next(proto, client.ip, server.ip, server.port);
        FlowIdentity {
            proto,
            client: client.ip,
            server: server.ip,
            server_port: server.port,
            ordinal,
        }
    }
}

/// Flows seen so far per (proto, client IP, server IP, server port) tuple: the ordinal of the
/// next. IPv4 tuples are kept in 16 bytes (key and count) instead of the 44 of a general
/// tuple, so the map the engine bounds at `4 x max_flows` tuples takes about a third of the
/// memory for IPv4 traffic; the ordinals are the same.
#[derive(Default)]
pub(super) struct Ordinals {
    v4: HashMap<(u32, u32, u16, u8), u32>,
    other: HashMap<(u8, IpAddr, IpAddr, u16), u32>,
}

impl Ordinals {
    /// Tuples held.
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// Forgets every tuple (ordinals restart from 0); keeps the maps' capacity.
    pub(super) fn clear(&mut self) {
        self.v4.clear();
        self.other.clear();
    }

    /// The ordinal of the next flow of this tuple (0 for its first), counted.
    fn next(&mut self, proto: u8, client: IpAddr, server: IpAddr, server_port: u16) -> u32 {
        let n = match (client, server) {
            (IpAddr::V4(c), IpAddr::V4(s)) => {
                self.v4.entry((u32::from(c), u32::from(s), server_port, proto)).or_insert(0)
            }
            _ => self.other.entry((proto, client, server, server_port)).or_insert(0),
        };
        let ordinal = *n;
        *n = n.wrapping_add(1);
        ordinal
    }
}
