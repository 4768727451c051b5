//! The sans-I/O censor engine.
//!
//! [`Engine::handle_frame`] takes one Ethernet frame, the time and the direction it travels,
//! and returns a [`Verdict`]. Held (delayed) frames and injected frames (TCP RST, ICMP) come
//! out of [`Engine::poll_transmit`]; [`Engine::poll_timeout`] says when to call it next. The
//! engine reads no clock and does no I/O. Every random decision is a counter-based draw
//! ([`crate::rng`]) keyed by the scenario's seed, the rule, the flow's stable identity (no
//! ephemeral port), the direction and the packet's index in that direction: a flow's losses,
//! burst states, jitter and block decision depend only on its own packets, never on how they
//! interleave with other flows', so the same seed gives the same decisions run after run.
//!
//! Per packet: parse (malformed frames are counted and forwarded or dropped by policy; non-IP
//! frames such as ARP are forwarded), find or create the flow (the side that sent the first
//! packet is the client), check residual blocks, feed the classifiers for the first
//! `inspect_packets` packets of each direction, then run the rule chain: the first active rule
//! whose match holds decides. Its action's effects apply in this order, stopping at the first
//! that drops or holds the packet:
//!
//! 1. `block_probability`: decided once per flow; a blocked flow loses every packet;
//! 2. `drop` / `reject` (reject also injects TCP RST both ways or ICMP port unreachable);
//! 3. `cut_after`: drop once the flow is that old;
//! 4. `freeze_after`: drop packets in the frozen direction once it carried that many bytes;
//! 5. `loss` / `burst_loss`: random or Gilbert-Elliott loss, state per flow and direction (the
//!    chain steps once per packet and once per [`GE_SLOT_NS`] of silence before it);
//! 6. `police`: token bucket per flow and direction, excess dropped;
//! 7. `delay` + `jitter`: the frame is held and released later;
//! 8. otherwise forwarded.
//!
//! A block by `drop`, `reject` or `block_probability` with `residual` set also drops later
//! client-to-server packets on the (client IP, server IP, server port) 3-tuple, new flows
//! included, for that long.
//!
//! Memory is bounded: the flow table holds at most `max_flows` flows (oldest idle first out),
//! the hold queue at most [`MAX_HELD`] frames, the event log at most [`MAX_EVENTS`] events,
//! the flow-identity ordinals at most `4 x max_flows` tuples (then they restart from 0).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;

use crate::rng::{self, DrawKey, FlowIdentity, Purpose};
use callwall_wire::inspect::{self, FlowFacts, FlowInspector};
use callwall_wire::packet::{build, Frame, TcpInfo, L4, PROTO_TCP, PROTO_UDP};
use serde::Serialize;

use crate::flow::{Endpoint, FlowKey};
use crate::policy::{Action, DirMatch, Match, NamePattern, Policy, ProtoMatch};
pub use callwall_results::censor::{
    deciding_rule, CensorReport, DecisionEvent as Event, EngineStats, HostRuleCounters,
    InsideReport, Outcome, RuleCounters, RuleReport,
};

/// Frames held for delay at most; past it, new frames to hold are dropped and counted.
pub const MAX_HELD: usize = 65_536;
/// Decision events buffered at most; past it they are counted as lost.
pub const MAX_EVENTS: usize = 100_000;

/// The direction a frame travels through the censor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From the inside (censored, client) network to the outside.
    Up,
    /// From the outside to the inside.
    Down,
}

impl Dir {
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
}

/// What to do with the frame just handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on unchanged.
    Forward,
    /// Discard it.
    Drop,
    /// The engine kept a copy; it comes out of `poll_transmit` later.
    Held,
}

/// A frame the engine wants sent in direction `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dir: Dir,
    pub frame: Vec<u8>,
}

/// Per-rule state of one flow.
#[derive(Debug, Clone)]
struct RuleFlowState {
    rule: usize,
    /// Token bucket per flow direction (0 = client to server).
    tokens: [f64; 2],
    refilled_ns: [u64; 2],
    ge_bad: [bool; 2],
    /// When the Gilbert-Elliott chain of each direction last stepped.
    ge_last_ns: [Option<u64>; 2],
    blocked: Option<bool>,
}

struct Flow {
    client: Endpoint,
    server: Endpoint,
    proto: u8,
    start_ns: u64,
    last_ns: u64,
    /// Index 0: client to server; 1: server to client.
    packets: [u64; 2],
    bytes: [u64; 2],
    inspector: Option<Box<FlowInspector>>,
    rules: Vec<RuleFlowState>,
    last_logged: Option<(usize, Outcome)>,
    /// [`FlowIdentity::digest`]: what random draws for this flow are keyed on.
    ident: u64,
}

impl Flow {
    fn id(&self) -> callwall_results::Flow {
        callwall_results::Flow {
            proto: callwall_results::Proto(self.proto),
            client: self.client,
            server: self.server,
        }
    }

    fn rule_state(&mut self, rule: usize, depth: f64, now: u64) -> (&mut RuleFlowState, bool) {
        match self.rules.iter().position(|r| r.rule == rule) {
            Some(i) => (&mut self.rules[i], false),
            None => {
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

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release_ns: u64,
    seq: u64,
    dir: DirOrd,
    frame: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DirOrd(u8);

/// Outcome of running the chain on one packet.
struct Decision {
    rule: Option<usize>,
    verdict: Verdict,
    outcome: Outcome,
}

/// The censor engine. See the module docs for the contract.
pub struct Engine {
    policy: Policy,
    needs_inspection: bool,
    seed: u64,
    /// Flows seen so far per (proto, client, server, server port): the ordinal of the next.
    ordinals: HashMap<(u8, IpAddr, IpAddr, u16), u32>,
    flows: HashMap<FlowKey, Flow>,
    order: VecDeque<FlowKey>,
    residual: HashMap<(IpAddr, IpAddr, u16), (u64, usize)>,
    held: BinaryHeap<Reverse<Held>>,
    held_seq: u64,
    out: VecDeque<Transmit>,
    counters: Vec<RuleCounters>,
    stats: EngineStats,
    events: VecDeque<Event>,
    /// Control changes (rules on/off, policy swaps) waiting for the decision log.
    control_events: VecDeque<callwall_results::ControlEvent>,
    log_events: bool,
    /// Per inside address (the censored side's end of each packet), what each rule did.
    by_inside: HashMap<IpAddr, Vec<HostRuleCounters>>,
    /// Per rule: switched off through the control channel ([`Engine::control`]).
    disabled: Vec<bool>,
}

/// The Gilbert-Elliott chain's time step between a flow direction's packets: one voice frame.
pub const GE_SLOT_NS: u64 = 20_000_000;

/// The probability that a Gilbert-Elliott chain (good to bad `p`, bad to good `r` per step) is
/// in the bad state `steps` steps after being bad (`was_bad`) or good: with `l = 1 - p - r`
/// and the stationary `pi = p / (p + r)`, `pi + (1 - pi) l^k` from bad, `pi (1 - l^k)` from
/// good (for one step: `1 - r` and `p`).
fn ge_bad_after(p: f64, r: f64, was_bad: bool, steps: u64) -> f64 {
    let (p, r) = (p.clamp(0.0, 1.0), r.clamp(0.0, 1.0));
    if p + r <= 0.0 {
        return if was_bad { 1.0 } else { 0.0 };
    }
    let pi = p / (p + r);
    let lk = (1.0 - p - r).powf(steps.min(1 << 20) as f64);
    if was_bad {
        pi + (1.0 - pi) * lk
    } else {
        pi * (1.0 - lk)
    }
}

/// Most inside addresses tracked for attribution; more are not attributed.
pub const MAX_INSIDE_HOSTS: usize = 1024;

impl Engine {
    pub fn new(policy: Policy, seed: u64) -> Engine {
        let n = policy.rules.len();
        Engine {
            // Classify unless `inspect_packets = 0` (bounded to the first packets of each flow):
            // the decision log and reports name what each flow was, even when no rule asks.
            needs_inspection: policy.inspect_packets > 0,
            policy,
            seed,
            ordinals: HashMap::new(),
            flows: HashMap::new(),
            order: VecDeque::new(),
            residual: HashMap::new(),
            held: BinaryHeap::new(),
            held_seq: 0,
            out: VecDeque::new(),
            counters: vec![RuleCounters::default(); n + 1],
            stats: EngineStats::default(),
            events: VecDeque::new(),
            control_events: VecDeque::new(),
            log_events: true,
            by_inside: HashMap::new(),
            disabled: vec![false; n],
        }
    }

    /// Turns the decision log off (benchmarks).
    pub fn set_event_log(&mut self, on: bool) {
        self.log_events = on;
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Handles one frame travelling in `dir` at `now_ns` (nanoseconds since the run's start).
    pub fn handle_frame(&mut self, now_ns: u64, dir: Dir, frame: &[u8]) -> Verdict {
        self.stats.frames += 1;
        self.stats.bytes += frame.len() as u64;
        let parsed = match Frame::parse(frame) {
            Ok(f) => f,
            Err(_) => {
                self.stats.malformed += 1;
                return match self.policy.malformed {
                    crate::policy::MalformedPolicy::Forward => Verdict::Forward,
                    crate::policy::MalformedPolicy::Drop => {
                        self.stats.malformed_dropped += 1;
                        Verdict::Drop
                    }
                };
            }
        };
        let Some(ip) = parsed.ip else {
            self.stats.non_ip += 1;
            return Verdict::Forward;
        };
        let (sport, dport, payload, tcp) = match ip.l4 {
            L4::Udp(t) => (t.src_port, t.dst_port, t.payload, None),
            L4::Tcp(t, info) => (t.src_port, t.dst_port, t.payload, Some(info)),
            L4::Other(body) => (0, 0, body, None),
        };
        let proto = ip.proto;
        let src = Endpoint { ip: ip.src, port: sport };
        let dst = Endpoint { ip: ip.dst, port: dport };
        let key = FlowKey::new(proto, src, dst);
        if !self.flows.contains_key(&key) {
            self.make_room(now_ns);
            let ident = self.flow_identity(proto, src, dst).digest();
            self.flows.insert(
                key,
                Flow {
                    client: src,
                    server: dst,
                    proto,
                    start_ns: now_ns,
                    last_ns: now_ns,
                    packets: [0; 2],
                    bytes: [0; 2],
                    inspector: None,
                    rules: Vec::new(),
                    last_logged: None,
                    ident,
                },
            );
            self.order.push_back(key);
            self.stats.flows_created += 1;
        }
        // The IP packet's length as it is on the wire (Ethernet padding included).
        let ip_len = (frame.len() - parsed.l3_offset) as u64;
        let needs_inspection = self.needs_inspection;
        let inspect_packets = u64::from(self.policy.inspect_packets);
        let flow = self.flows.get_mut(&key).expect("flow inserted above");
        let rel = usize::from(src != flow.client);
        flow.last_ns = now_ns;
        flow.packets[rel] += 1;
        flow.bytes[rel] += payload.len() as u64;
        let (flow_ident, packet_index) = (flow.ident, flow.packets[rel]);
        if needs_inspection
            && flow.packets[rel] <= inspect_packets
            && (proto == PROTO_UDP || proto == PROTO_TCP)
        {
            let insp = flow.inspector.get_or_insert_with(|| {
                Box::new(FlowInspector::with_config(inspect::InspectorConfig {
                    max_packets_per_dir: inspect_packets as u32,
                    ..Default::default()
                }))
            });
            let p = if proto == PROTO_UDP { inspect::Proto::Udp } else { inspect::Proto::Tcp };
            let d =
                if rel == 0 { inspect::Dir::ClientToServer } else { inspect::Dir::ServerToClient };
            insp.observe(p, d, payload);
        }

        // Residual blocking: client-to-server packets on a blocked 3-tuple.
        if rel == 0 && !self.residual.is_empty() {
            let k3 = (flow.client.ip, flow.server.ip, flow.server.port);
            if let Some(&(until, rule)) = self.residual.get(&k3) {
                if now_ns < until {
                    let c = &mut self.counters[rule];
                    c.residual_dropped += 1;
                    c.dropped += 1;
                    self.attribute(ip.src, rule, Verdict::Drop);
                    let d = Decision {
                        rule: Some(rule),
                        verdict: Verdict::Drop,
                        outcome: Outcome::Residual,
                    };
                    self.log(now_ns, &key, &d);
                    return Verdict::Drop;
                }
                self.residual.remove(&k3);
            }
        }

        let ctx = PacketCtx {
            now_ns,
            dir,
            rel,
            proto,
            sport,
            dport,
            payload_len: payload.len(),
            src: ip.src,
            dst: ip.dst,
        };
        let decision = self.decide(&key, &ctx, ip_len);
        let idx = decision.rule.unwrap_or(self.policy.rules.len());
        let c = &mut self.counters[idx];
        c.packets += 1;
        c.bytes += frame.len() as u64;
        match decision.verdict {
            Verdict::Forward => c.forwarded += 1,
            Verdict::Drop => c.dropped += 1,
            Verdict::Held => c.delayed += 1,
        }
        let inside = if dir == Dir::Up { ip.src } else { ip.dst };
        self.attribute(inside, idx, decision.verdict);
        if decision.outcome == Outcome::Reject {
            let n = self.inject_reject(dir, &parsed, frame, tcp, payload.len());
            self.counters[idx].injected += n;
        }
        if decision.verdict == Verdict::Held {
            let action = match decision.rule {
                Some(r) => &self.policy.rules[r].action,
                None => &self.policy.default,
            };
            let key = DrawKey {
                rule: idx,
                flow: flow_ident,
                dir: rel,
                packet: packet_index,
                purpose: Purpose::Jitter,
            };
            let jitter = rng::below(self.seed, key, action.jitter_ns);
            let release_ns = now_ns + action.delay_ns + jitter;
            if self.held.len() >= MAX_HELD {
                self.stats.hold_overflow += 1;
                let c = &mut self.counters[idx];
                c.delayed -= 1;
                c.dropped += 1;
                return Verdict::Drop;
            }
            self.held_seq += 1;
            self.held.push(Reverse(Held {
                release_ns,
                seq: self.held_seq,
                dir: DirOrd(dir as u8),
                frame: frame.to_vec(),
            }));
        }
        self.log(now_ns, &key, &decision);
        decision.verdict
    }

    fn decide(&mut self, key: &FlowKey, p: &PacketCtx, ip_len: u64) -> Decision {
        let rules_len = self.policy.rules.len();
        let mut chosen = None;
        {
            let flow = &self.flows[key];
            for (i, rule) in self.policy.rules.iter().enumerate() {
                if p.now_ns < rule.active_from_ns
                    || p.now_ns >= rule.active_until_ns
                    || self.disabled.get(i).copied().unwrap_or(false)
                {
                    continue;
                }
                if matches(&rule.m, flow, p) {
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
        let (verdict, outcome) = self.apply(key, state_idx, &action, p, ip_len);
        Decision { rule: chosen, verdict, outcome }
    }

    fn apply(
        &mut self,
        key: &FlowKey,
        rule: usize,
        a: &Action,
        p: &PacketCtx,
        ip_len: u64,
    ) -> (Verdict, Outcome) {
        if a.is_pass() {
            self.note_flow(key, rule, p.now_ns, 0.0);
            return (Verdict::Forward, Outcome::Forward);
        }
        let depth = a.police.map_or(0.0, |(_, d)| d as f64);
        let seed = self.seed;
        let flow = self.flows.get_mut(key).expect("flow exists");
        let (client, server) = (flow.client, flow.server);
        let draw = |purpose| DrawKey {
            rule,
            flow: flow.ident,
            dir: p.rel,
            packet: flow.packets[p.rel],
            purpose,
        };
        let block_key = DrawKey { packet: 0, dir: 0, ..draw(Purpose::Block) };
        let (loss_key, flip_key, burst_key) =
            (draw(Purpose::Loss), draw(Purpose::BurstFlip), draw(Purpose::BurstLoss));
        let age = p.now_ns.saturating_sub(flow.start_ns);
        let dir_bytes = flow.bytes;
        let (st, new) = flow.rule_state(rule, depth, p.now_ns);
        if new {
            self.counters[rule].flows += 1;
        }
        // 1. Per-flow block decision.
        if let Some(prob) = a.block_probability {
            let blocked = *st.blocked.get_or_insert_with(|| rng::chance(seed, block_key, prob));
            if blocked {
                if let Some(r) = a.residual_ns {
                    self.residual.insert((client.ip, server.ip, server.port), (p.now_ns + r, rule));
                }
                return (Verdict::Drop, Outcome::Block);
            }
        }
        // 2. Drop / reject.
        if a.drop || a.reject {
            if let Some(r) = a.residual_ns {
                self.residual.insert((client.ip, server.ip, server.port), (p.now_ns + r, rule));
            }
            return (Verdict::Drop, if a.reject { Outcome::Reject } else { Outcome::Drop });
        }
        // 3. Cut.
        if a.cut_after_ns.is_some_and(|t| age >= t) {
            return (Verdict::Drop, Outcome::Cut);
        }
        // 4. Freeze: the direction has carried its quota (counting this packet's bytes).
        if let Some((limit, fdir)) = a.freeze_after {
            let applies = match fdir {
                DirMatch::Up => p.rel == 0,
                DirMatch::Down => p.rel == 1,
                DirMatch::Any => true,
            };
            if applies && dir_bytes[p.rel] > limit {
                return (Verdict::Drop, Outcome::Freeze);
            }
        }
        // 5. Loss.
        if let Some(l) = a.loss {
            if rng::chance(seed, loss_key, l) {
                return (Verdict::Drop, Outcome::Loss);
            }
        }
        if let Some(ge) = a.burst_loss {
            // One step per packet, and one per GE_SLOT_NS of silence before it: a burst lasts
            // as long in time for a sparse flow (a TCP retransmission backing off) as for voice.
            let steps = st.ge_last_ns[p.rel]
                .map_or(1, |last| (p.now_ns.saturating_sub(last) / GE_SLOT_NS).max(1));
            st.ge_last_ns[p.rel] = Some(p.now_ns);
            let bad = &mut st.ge_bad[p.rel];
            *bad = rng::chance(seed, flip_key, ge_bad_after(ge.p, ge.r, *bad, steps));
            let l = if *bad { ge.loss_bad } else { ge.loss_good };
            if rng::chance(seed, burst_key, l) {
                return (Verdict::Drop, Outcome::Loss);
            }
        }
        // 6. Police.
        if let Some((rate, depth)) = a.police {
            let i = p.rel;
            let dt = p.now_ns.saturating_sub(st.refilled_ns[i]) as f64 / 1e9;
            st.tokens[i] = (st.tokens[i] + dt * rate as f64).min(depth as f64);
            st.refilled_ns[i] = p.now_ns;
            if (ip_len as f64) > st.tokens[i] {
                return (Verdict::Drop, Outcome::Police);
            }
            st.tokens[i] -= ip_len as f64;
        }
        // 7. Delay.
        if a.delay_ns > 0 || a.jitter_ns > 0 {
            return (Verdict::Held, Outcome::Delay);
        }
        (Verdict::Forward, Outcome::Forward)
    }

    fn attribute(&mut self, inside: IpAddr, rule: usize, verdict: Verdict) {
        let n = self.policy.rules.len() + 1;
        if !self.by_inside.contains_key(&inside) && self.by_inside.len() >= MAX_INSIDE_HOSTS {
            return;
        }
        let row =
            self.by_inside.entry(inside).or_insert_with(|| vec![HostRuleCounters::default(); n]);
        let c = &mut row[rule];
        match verdict {
            Verdict::Forward => c.forwarded += 1,
            Verdict::Drop => c.dropped += 1,
            Verdict::Held => c.delayed += 1,
        }
    }

    fn note_flow(&mut self, key: &FlowKey, rule: usize, now: u64, depth: f64) {
        let flow = self.flows.get_mut(key).expect("flow exists");
        let (_, new) = flow.rule_state(rule, depth, now);
        if new {
            self.counters[rule].flows += 1;
        }
    }

    fn inject_reject(
        &mut self,
        dir: Dir,
        f: &Frame<'_>,
        frame: &[u8],
        tcp: Option<TcpInfo>,
        len: usize,
    ) -> u64 {
        let Some(ip) = f.ip else { return 0 };
        let Some(t) = ip.l4.transport() else { return 0 };
        let (a, b) = ((ip.src, t.src_port), (ip.dst, t.dst_port));
        match tcp {
            Some(info) => {
                if info.has(TcpInfo::RST) {
                    return 0;
                }
                let seq_next = info
                    .seq
                    .wrapping_add(len as u32)
                    .wrapping_add(u32::from(info.has(TcpInfo::SYN)));
                // To the sender, as if from the receiver.
                let back = build::tcp(
                    f.dst_mac,
                    f.src_mac,
                    b,
                    a,
                    if info.has(TcpInfo::ACK) { info.ack } else { 0 },
                    seq_next,
                    TcpInfo::RST | TcpInfo::ACK,
                    &[],
                );
                // To the receiver, as if from the sender.
                let fwd = build::tcp(f.src_mac, f.dst_mac, a, b, seq_next, 0, TcpInfo::RST, &[]);
                self.out.push_back(Transmit { dir: dir.reverse(), frame: back });
                self.out.push_back(Transmit { dir, frame: fwd });
                2
            }
            None if ip.proto == PROTO_UDP => {
                let quoted = &frame[f.l3_offset..];
                let icmp = build::port_unreachable(f.dst_mac, f.src_mac, ip.dst, ip.src, quoted);
                self.out.push_back(Transmit { dir: dir.reverse(), frame: icmp });
                1
            }
            None => 0,
        }
    }

    fn log(&mut self, now_ns: u64, key: &FlowKey, d: &Decision) {
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

    /// Evicts expired flows from the front of the insertion order, and, when the table is
    /// full, the oldest flow that has been idle (a second chance for recently active ones).
    /// The stable identity of a new flow from `client` to `server` (see [`crate::rng`]).
    fn flow_identity(&mut self, proto: u8, client: Endpoint, server: Endpoint) -> FlowIdentity {
        if self.ordinals.len() >= 4 * self.policy.max_flows.max(1) {
            self.ordinals.clear();
        }
        let n = self.ordinals.entry((proto, client.ip, server.ip, server.port)).or_insert(0);
        let ordinal = *n;
        *n = n.wrapping_add(1);
        FlowIdentity {
            proto,
            client: client.ip,
            server: server.ip,
            server_port: server.port,
            ordinal,
        }
    }

    fn make_room(&mut self, now: u64) {
        let timeout = self.policy.flow_timeout_ns;
        for _ in 0..2 {
            let Some(k) = self.order.front().copied() else { break };
            match self.flows.get(&k) {
                None => {
                    self.order.pop_front();
                }
                Some(f) if now.saturating_sub(f.last_ns) >= timeout => {
                    self.order.pop_front();
                    self.flows.remove(&k);
                    self.stats.flows_expired += 1;
                }
                Some(_) => break,
            }
        }
        let mut tries = 0;
        while self.flows.len() >= self.policy.max_flows {
            let Some(k) = self.order.pop_front() else { break };
            let Some(f) = self.flows.get(&k) else { continue };
            tries += 1;
            if tries <= 8 && now.saturating_sub(f.last_ns) < 1_000_000_000 {
                self.order.push_back(k);
                continue;
            }
            self.flows.remove(&k);
            self.stats.flows_evicted += 1;
        }
        // Keep the order queue from growing without bound through second chances.
        if self.order.len() > 2 * self.policy.max_flows + 16 {
            let flows = &self.flows;
            self.order.retain(|k| flows.contains_key(k));
        }
    }

    /// The next frame to send: injected frames first, then held frames due at `now_ns`.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<Transmit> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        if self.held.peek().is_some_and(|Reverse(h)| h.release_ns <= now_ns) {
            let Reverse(h) = self.held.pop()?;
            let dir = if h.dir.0 == Dir::Up as u8 { Dir::Up } else { Dir::Down };
            return Some(Transmit { dir, frame: h.frame });
        }
        None
    }

    /// When `poll_transmit` next has something: `Some(0)` if now.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.out.is_empty() {
            return Some(0);
        }
        self.held.peek().map(|Reverse(h)| h.release_ns)
    }

    /// The next decision-log event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Number of flows in the table now.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
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

/// Live control (see [`crate::control`]): rules switched on and off and the policy swapped
/// while the flow table, held frames and residual blocks of surviving rules stay.
impl Engine {
    /// Applies one control command at `now_ns` and says what it did. `load` turns a `swap`'s
    /// path into a compiled policy (the I/O adapter reads the scenario file); its error is
    /// passed back in the response. A failed command changes nothing.
    pub fn control(
        &mut self,
        now_ns: u64,
        cmd: &crate::control::Command,
        load: &mut dyn FnMut(&std::path::Path) -> Result<Policy, String>,
    ) -> crate::control::Response {
        use crate::control::{Change, Command, Response};
        let result: Result<Option<Change>, String> = match cmd {
            Command::Status => Ok(None),
            Command::Enable { rule } => self.set_rule_enabled(now_ns, rule, Some(true)),
            Command::Disable { rule } => self.set_rule_enabled(now_ns, rule, Some(false)),
            Command::Toggle { rule } => self.set_rule_enabled(now_ns, rule, None),
            Command::Swap { policy } => load(policy).map(|p| {
                let source = policy.display().to_string();
                let rules = p.rules.len();
                self.swap_policy(now_ns, p, &source);
                Some(Change::PolicySwap { source, rules })
            }),
        };
        let (ok, error, change) = match result {
            Ok(c) => (true, None, c),
            Err(e) => (false, Some(e), None),
        };
        Response { ok, t_ms: now_ns as f64 / 1e6, error, change, rules: self.rule_status() }
    }

    /// The 0-based index of a rule, or an error naming the rules there are.
    pub fn rule_index(&self, rule: &crate::control::RuleRef) -> Result<usize, String> {
        use crate::control::RuleRef;
        let n = self.policy.rules.len();
        let found = match rule {
            RuleRef::Index(i) => i.checked_sub(1).filter(|&i| i < n),
            RuleRef::Name(name) => self.policy.rules.iter().position(|r| &r.name == name),
        };
        found.ok_or_else(|| {
            let names: Vec<String> = self
                .policy
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{} {}", i + 1, r.name))
                .collect();
            if n == 0 {
                format!("no rule {rule}: the policy has no rules (swap in another policy)")
            } else {
                format!(
                    "no rule {rule}: use a number from 1 to {n} or a name ({})",
                    names.join(", ")
                )
            }
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
    ) -> Result<Option<crate::control::Change>, String> {
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

struct PacketCtx {
    now_ns: u64,
    dir: Dir,
    /// 0: client to server; 1: server to client.
    rel: usize,
    proto: u8,
    sport: u16,
    dport: u16,
    payload_len: usize,
    src: IpAddr,
    dst: IpAddr,
}

fn in_any(list: &[crate::policy::Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

fn matches(m: &Match, flow: &Flow, p: &PacketCtx) -> bool {
    if let Some(d) = m.dir {
        let ok = match d {
            DirMatch::Up => p.dir == Dir::Up,
            DirMatch::Down => p.dir == Dir::Down,
            DirMatch::Any => true,
        };
        if !ok {
            return false;
        }
    }
    if let Some(proto) = m.proto {
        let ok = match proto {
            ProtoMatch::Udp => p.proto == PROTO_UDP,
            ProtoMatch::Tcp => p.proto == PROTO_TCP,
            ProtoMatch::Icmp => p.proto == 1 || p.proto == 58,
            ProtoMatch::Any => true,
        };
        if !ok {
            return false;
        }
    }
    if m.src_port.as_ref().is_some_and(|l| !l.contains(p.sport))
        || m.dst_port.as_ref().is_some_and(|l| !l.contains(p.dport))
        || m.server_port.as_ref().is_some_and(|l| !l.contains(flow.server.port))
        || m.src.as_ref().is_some_and(|l| !in_any(l, p.src))
        || m.dst.as_ref().is_some_and(|l| !in_any(l, p.dst))
        || m.server.as_ref().is_some_and(|l| !in_any(l, flow.server.ip))
        || m.server_not.as_ref().is_some_and(|l| in_any(l, flow.server.ip))
        || m.min_payload.is_some_and(|n| (p.payload_len as u64) < u64::from(n))
        || m.max_payload.is_some_and(|n| (p.payload_len as u64) > u64::from(n))
        || m.first_packets.is_some_and(|n| flow.packets[p.rel] > u64::from(n))
        || m.min_age_ns.is_some_and(|t| p.now_ns.saturating_sub(flow.start_ns) < t)
        || m.max_age_ns.is_some_and(|t| p.now_ns.saturating_sub(flow.start_ns) > t)
        || m.min_flow_bytes.is_some_and(|n| flow.bytes[0] + flow.bytes[1] < n)
        || m.min_client_bytes.is_some_and(|n| flow.bytes[0] < n)
        || m.min_server_bytes.is_some_and(|n| flow.bytes[1] < n)
        || m.client_port_above_server_port
            .is_some_and(|want| (flow.client.port > flow.server.port) != want)
    {
        return false;
    }
    if !m.needs_inspection() {
        return true;
    }
    let Some(facts) = flow.inspector.as_deref().map(FlowInspector::facts) else {
        return false;
    };
    inspect_matches(m, facts)
}

fn inspect_matches(m: &Match, f: &FlowFacts) -> bool {
    if m.label.is_some_and(|l| !f.labels.intersects(l))
        || m.first_label.is_some_and(|l| !f.first_packet_labels.intersects(l))
        || m.not_label.is_some_and(|l| f.labels.intersects(l))
    {
        return false;
    }
    let sni = if m.sni_first_packet { &f.first_packet_sni } else { &f.sni };
    if let Some(pats) = &m.sni {
        match sni {
            Some(name) if pats.iter().any(|p| p.matches(name)) => {}
            _ => return false,
        }
    }
    if let Some(pats) = &m.sni_not {
        match sni {
            Some(name) if !pats.iter().any(|p| p.matches(name)) => {}
            _ => return false,
        }
    }
    if let Some(alpns) = &m.alpn {
        if !f.alpn.iter().any(|a| alpns.iter().any(|w| w == a)) {
            return false;
        }
    }
    if let Some(fps) = &m.dtls_fingerprint {
        let hash = f.dtls_fingerprint_hash.map(|h| format!("{h:016x}"));
        let hit = fps.iter().any(|w| {
            f.dtls_fingerprint.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(w))
                || hash.as_deref() == Some(w.as_str())
        });
        if !hit {
            return false;
        }
    }
    let stun_attr =
        |pats: &Option<Vec<NamePattern>>,
         get: fn(&callwall_wire::inspect::StunFacts) -> Option<&str>| match pats {
            None => true,
            Some(pats) => {
                f.stun.as_ref().and_then(get).is_some_and(|v| pats.iter().any(|p| p.matches(v)))
            }
        };
    if !stun_attr(&m.stun_software, |s| s.software.as_deref())
        || !stun_attr(&m.stun_username, |s| s.username.as_deref())
        || !stun_attr(&m.stun_realm, |s| s.realm.as_deref())
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::raw;
    use callwall_wire::packet::build;
    use proptest::prelude::*;

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const MS: u64 = 1_000_000;

    fn engine(policy: &str, seed: u64) -> Engine {
        let raw: raw::Policy = toml::from_str(policy).expect("policy parses");
        let resolve = |n: &str| (n == "relay").then(|| vec!["10.3.0.2".parse().unwrap()]);
        Engine::new(Policy::compile(&raw, &resolve).expect("policy compiles"), seed)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn up_udp(sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
        build::udp(CLIENT_MAC, ROUTER_MAC, (ip("10.1.0.2"), sport), (ip(dst), dport), payload)
    }

    fn down_udp(src: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        build::udp(ROUTER_MAC, CLIENT_MAC, (ip(src), sport), (ip("10.1.0.2"), dport), payload)
    }

    #[test]
    fn passes_by_default_and_counts() {
        let mut e = engine("", 1);
        for i in 0..10 {
            assert_eq!(
                e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x")),
                Verdict::Forward
            );
        }
        let r = e.report();
        assert_eq!(r.rules.last().unwrap().name, "default-pass");
        assert_eq!(r.rules.last().unwrap().counters.forwarded, 10);
        assert_eq!(r.stats.flows_created, 1);
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut e = engine(
            r#"
            [[rules]]
            name = "allow-dns"
            match = { proto = "udp", dst_port = "53" }
            action = "pass"
            [[rules]]
            name = "drop-udp"
            match = { proto = "udp" }
            action = "drop"
            "#,
            1,
        );
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 53, b"q")),
            Verdict::Forward
        );
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"q")),
            Verdict::Drop
        );
        let r = e.report();
        assert_eq!(r.rules[0].counters.forwarded, 1);
        assert_eq!(r.rules[1].counters.dropped, 1);
        assert_eq!(r.deciding_rule(ip("10.1.0.2")), Some("drop-udp"));
    }

    #[test]
    fn server_side_matches_use_the_flow_not_the_packet() {
        let mut e = engine(
            r#"
            [[rules]]
            name = "relay-port"
            match = { server_port = "3478", server = ["relay"] }
            action = "drop"
            "#,
            1,
        );
        // The reply from the relay has source port 3478, but the flow's server is the relay.
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, b"a")),
            Verdict::Drop
        );
        assert_eq!(
            e.handle_frame(MS, Dir::Down, &down_udp("10.3.0.2", 3478, 4000, b"b")),
            Verdict::Drop
        );
        assert_eq!(
            e.handle_frame(MS, Dir::Up, &up_udp(4000, "10.2.0.2", 3478, b"c")),
            Verdict::Forward
        );
    }

    #[test]
    fn activation_window() {
        let mut e = engine(
            r#"
            [[rules]]
            name = "later"
            active = { from = "5s", until = "8s" }
            action = "drop"
            "#,
            1,
        );
        let f = up_udp(4000, "10.2.0.2", 5000, b"x");
        assert_eq!(e.handle_frame(4_999 * MS, Dir::Up, &f), Verdict::Forward);
        assert_eq!(e.handle_frame(5_000 * MS, Dir::Up, &f), Verdict::Drop);
        assert_eq!(e.handle_frame(8_000 * MS, Dir::Up, &f), Verdict::Forward);
    }

    #[test]
    fn police_limits_the_rate_per_direction() {
        // 80 kbit/s = 10 000 B/s; 200-byte IP packets every 10 ms = 20 000 B/s offered.
        let mut e = engine(
            r#"
            [[rules]]
            name = "throttle"
            match = { proto = "udp" }
            action = { police = "80kbit" }
            "#,
            1,
        );
        let payload = [0u8; 172]; // 20 IP + 8 UDP + 172 = 200 bytes of IP
        let mut passed_up = 0;
        let mut passed_down = 0;
        for i in 0..1000u64 {
            if e.handle_frame(i * 10 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, &payload))
                == Verdict::Forward
            {
                passed_up += 1;
            }
            if e.handle_frame(
                i * 10 * MS + 5 * MS,
                Dir::Down,
                &down_udp("10.2.0.2", 5000, 4000, &payload),
            ) == Verdict::Forward
            {
                passed_down += 1;
            }
        }
        // 10 s at 10 000 B/s = 100 000 B = 500 packets (+ the initial bucket).
        assert!((495..=510).contains(&passed_up), "up {passed_up}");
        assert!((495..=510).contains(&passed_down), "down {passed_down}");
    }

    #[test]
    fn delay_and_jitter_hold_frames() {
        let mut e = engine(
            r#"
            [[rules]]
            name = "slow"
            action = { delay = "50ms", jitter = "10ms" }
            "#,
            7,
        );
        let f = up_udp(4000, "10.2.0.2", 5000, b"x");
        assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Held);
        let due = e.poll_timeout().unwrap();
        assert!((50 * MS..60 * MS).contains(&due), "{due}");
        assert!(e.poll_transmit(due - 1).is_none());
        let t = e.poll_transmit(due).unwrap();
        assert_eq!((t.dir, t.frame), (Dir::Up, f));
        assert!(e.poll_timeout().is_none());
    }

    #[test]
    fn loss_is_seeded_and_close_to_its_rate() {
        let run = |seed| {
            let mut e = engine("[[rules]]\nname = \"lossy\"\naction = { loss = \"20%\" }", seed);
            (0..5000u64)
                .map(|i| {
                    e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"))
                        == Verdict::Drop
                })
                .collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3), "same seed, same decisions");
        assert_ne!(a, run(4));
        let dropped = a.iter().filter(|d| **d).count();
        assert!((900..1100).contains(&dropped), "{dropped}");
    }

    /// The decisions for one flow (`10.1.0.2:ephemeral -> 10.2.0.2:5000` and back) while other
    /// flows' packets are interleaved as `noise` says (how many of them before each packet).
    fn decisions_of_one_flow(
        policy: &str,
        seed: u64,
        ephemeral: u16,
        noise: &[u64],
    ) -> Vec<Verdict> {
        let mut e = engine(policy, seed);
        let mut out = Vec::new();
        for (i, &n) in noise.iter().enumerate() {
            // Our flow's own timing is fixed (a packet each way every 20 ms); others' vary.
            let t = (i as u64 + 1) * 20 * MS;
            for j in 0..n {
                let other = 6000 + (i as u16 + j as u16) % 7;
                e.handle_frame(t - MS, Dir::Up, &up_udp(other, "10.2.0.3", 5000, b"other"));
                e.handle_frame(t - MS, Dir::Down, &down_udp("10.2.0.3", 5000, other, b"other"));
            }
            out.push(e.handle_frame(t, Dir::Up, &up_udp(ephemeral, "10.2.0.2", 5000, b"mine")));
            out.push(e.handle_frame(t, Dir::Down, &down_udp("10.2.0.2", 5000, ephemeral, b"mine")));
        }
        while e.poll_transmit(u64::MAX).is_some() {}
        out
    }

    #[test]
    fn a_flows_random_decisions_ignore_other_flows_and_its_ephemeral_port() {
        for policy in [
            "[[rules]]\nname = \"lossy\"\naction = { loss = \"20%\" }",
            "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"5%\", r = \"30%\" } }",
            "[[rules]]\nname = \"coin\"\naction = { block_probability = \"50%\" }",
        ] {
            let quiet = vec![0u64; 400];
            let busy: Vec<u64> = (0..400u64).map(|i| (i * 7919) % 5).collect();
            let a = decisions_of_one_flow(policy, 11, 40000, &quiet);
            assert_eq!(
                a,
                decisions_of_one_flow(policy, 11, 40000, &busy),
                "{policy}: interleaving"
            );
            assert_eq!(
                a,
                decisions_of_one_flow(policy, 11, 51234, &busy),
                "{policy}: ephemeral port"
            );
            if !policy.contains("coin") {
                assert!(a.contains(&Verdict::Drop) && a.contains(&Verdict::Forward), "{policy}");
                assert_ne!(a, decisions_of_one_flow(policy, 12, 40000, &quiet), "{policy}: seed");
            }
        }
    }

    #[test]
    fn jitter_of_a_flow_ignores_other_flows() {
        let policy = "[[rules]]\nname = \"slow\"\naction = { delay = \"50ms\", jitter = \"10ms\" }";
        let releases = |noise: &[u64]| {
            let mut e = engine(policy, 3);
            let mut t = 0;
            let mut out = Vec::new();
            for (i, &n) in noise.iter().enumerate() {
                for j in 0..n {
                    t += MS;
                    let other = 6000 + (i as u16 + j as u16) % 7;
                    e.handle_frame(t, Dir::Up, &up_udp(other, "10.2.0.3", 5000, b"other"));
                }
                t += MS;
                let mine = up_udp(4000, "10.2.0.2", 5000, &(i as u32).to_be_bytes());
                e.handle_frame(t, Dir::Up, &mine);
                // Delay relative to the packet's own arrival: what the flow experiences.
                let sent = t;
                let mut held = Vec::new();
                while let Some(at) = e.poll_timeout() {
                    while let Some(tx) = e.poll_transmit(at) {
                        if tx.frame == mine {
                            held.push(at - sent);
                        }
                    }
                    if !held.is_empty() {
                        break;
                    }
                }
                out.extend(held);
            }
            out
        };
        let quiet = vec![0u64; 100];
        let busy: Vec<u64> = (0..100u64).map(|i| (i * 31) % 4).collect();
        let a = releases(&quiet);
        assert_eq!(a.len(), 100);
        assert_eq!(a, releases(&busy));
        assert!(a.iter().any(|&d| d != a[0]), "jitter varies");
    }

    #[test]
    fn gilbert_elliott_steps_with_time_between_sparse_packets() {
        // One step: the per-packet probabilities.
        assert!((ge_bad_after(0.03, 0.3, true, 1) - 0.7).abs() < 1e-12);
        assert!((ge_bad_after(0.03, 0.3, false, 1) - 0.03).abs() < 1e-12);
        // Many steps: the stationary loss, whatever the state was.
        let pi = 0.03 / 0.33;
        assert!((ge_bad_after(0.03, 0.3, true, 1000) - pi).abs() < 1e-9);
        assert!((ge_bad_after(0.03, 0.3, false, 1000) - pi).abs() < 1e-9);
        // A flow sending once a second (a TCP retransmission backing off) does not stay in one
        // burst across its packets: its losses are close to independent at the mean rate.
        let mut e = engine(
            "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"3%\", r = \"30%\" } }",
            5,
        );
        let drops: Vec<bool> = (0..20000u64)
            .map(|i| {
                e.handle_frame(i * 1000 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"))
                    == Verdict::Drop
            })
            .collect();
        let lost = drops.iter().filter(|d| **d).count() as f64 / drops.len() as f64;
        assert!((0.07..0.11).contains(&lost), "{lost}");
        let pairs = drops.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        let after_loss = pairs / drops.iter().filter(|d| **d).count() as f64;
        assert!(after_loss < 0.15, "P(loss | previous lost) = {after_loss}");
    }

    #[test]
    fn gilbert_elliott_loss_comes_in_bursts() {
        let mut e = engine(
            "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"2%\", r = \"20%\" } }",
            5,
        );
        let drops: Vec<bool> = (0..20000u64)
            .map(|i| {
                e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"))
                    == Verdict::Drop
            })
            .collect();
        let lost = drops.iter().filter(|d| **d).count() as f64 / drops.len() as f64;
        // Stationary bad-state probability p/(p+r) = 0.02/0.22 ~ 9 %.
        assert!((0.06..0.13).contains(&lost), "{lost}");
        let runs = drops.windows(2).filter(|w| w[0] && !w[1]).count();
        let mean_burst = drops.iter().filter(|d| **d).count() as f64 / runs as f64;
        assert!(mean_burst > 3.0, "mean burst {mean_burst}");
    }

    #[test]
    fn cut_after_and_freeze_after() {
        let mut e = engine("[[rules]]\nname = \"cut\"\naction = { cut_after = \"2s\" }", 1);
        assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"x")), Verdict::Forward);
        assert_eq!(
            e.handle_frame(1_999 * MS, Dir::Down, &down_udp("10.2.0.2", 2, 1, b"x")),
            Verdict::Forward
        );
        assert_eq!(
            e.handle_frame(2_000 * MS, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"x")),
            Verdict::Drop
        );

        let mut e =
            engine("[[rules]]\nname = \"freeze\"\naction = { freeze_after = \"1000B\" }", 1);
        let big = [0u8; 400];
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"hello")),
            Verdict::Forward
        );
        let verdicts: Vec<Verdict> = (0..4)
            .map(|i| e.handle_frame(i * MS, Dir::Down, &down_udp("10.2.0.2", 2, 1, &big)))
            .collect();
        assert_eq!(verdicts, [Verdict::Forward, Verdict::Forward, Verdict::Drop, Verdict::Drop]);
        // The client's direction is not frozen.
        assert_eq!(
            e.handle_frame(9 * MS, Dir::Up, &up_udp(1, "10.2.0.2", 2, &big)),
            Verdict::Forward
        );
    }

    #[test]
    fn reject_injects_rst_both_ways_for_tcp_and_icmp_for_udp() {
        let mut e = engine("[[rules]]\nname = \"rst\"\naction = \"reject\"", 1);
        let syn = build::tcp(
            CLIENT_MAC,
            ROUTER_MAC,
            (ip("10.1.0.2"), 40000),
            (ip("10.2.0.2"), 443),
            1000,
            0,
            TcpInfo::SYN,
            &[],
        );
        assert_eq!(e.handle_frame(0, Dir::Up, &syn), Verdict::Drop);
        let a = e.poll_transmit(0).unwrap();
        let b = e.poll_transmit(0).unwrap();
        assert_eq!(a.dir, Dir::Down);
        assert_eq!(b.dir, Dir::Up);
        let pa = Frame::parse(&a.frame).unwrap().ip.unwrap();
        match pa.l4 {
            L4::Tcp(t, info) => {
                assert_eq!((t.src_port, t.dst_port), (443, 40000));
                assert!(info.has(TcpInfo::RST));
                assert_eq!(info.ack, 1001, "acknowledges the SYN");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pa.src, ip("10.2.0.2"));
        assert_eq!(a.frame[0..6], CLIENT_MAC, "sent back to the client's MAC");
        // UDP gets ICMP port unreachable back to the sender, quoting the datagram.
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x")),
            Verdict::Drop
        );
        let icmp = e.poll_transmit(0).unwrap();
        assert_eq!(icmp.dir, Dir::Down);
        let p = Frame::parse(&icmp.frame).unwrap().ip.unwrap();
        assert_eq!((p.proto, p.dst), (1, ip("10.1.0.2")));
        assert_eq!(build::checksum(0, &icmp.frame[34..]), 0, "valid ICMP checksum");
        assert_eq!(e.report().rules[0].counters.injected, 3);
    }

    #[test]
    fn block_probability_is_per_flow_with_residual_on_the_3_tuple() {
        let mut e = engine(
            "[[rules]]\nname = \"fet\"\nmatch = { proto = \"udp\", dst_port = \"9000\" }\naction = { block_probability = \"50%\", residual = \"180s\" }",
            11,
        );
        let mut blocked_ports = Vec::new();
        for sport in 1000..1040u16 {
            let first = e.handle_frame(0, Dir::Up, &up_udp(sport, "10.2.0.2", 9000, b"x"));
            let second = e.handle_frame(MS, Dir::Up, &up_udp(sport, "10.2.0.2", 9000, b"y"));
            if first == Verdict::Drop {
                blocked_ports.push(sport);
            }
            if blocked_ports.is_empty() {
                assert_eq!(first, second, "the decision is per flow");
            }
        }
        assert!(!blocked_ports.is_empty());
        // After the first block every new flow to the 3-tuple is dropped (residual).
        assert_eq!(
            e.handle_frame(2 * MS, Dir::Up, &up_udp(2000, "10.2.0.2", 9000, b"z")),
            Verdict::Drop
        );
        // ...until it expires: then the packet is decided afresh, not by the residual block.
        let before = e.report().rules[0].counters.residual_dropped;
        assert!(before > 0);
        e.handle_frame(500_000 * MS, Dir::Up, &up_udp(2001, "10.2.0.2", 9000, b"z"));
        assert_eq!(e.report().rules[0].counters.residual_dropped, before);
        assert!(e.report().rules[0].counters.residual_dropped > 0);
    }

    #[test]
    fn malformed_frames_follow_policy() {
        let mut e = engine("", 1);
        let mut f = up_udp(1, "10.2.0.2", 2, b"x");
        f[14] = 0x41; // IPv4 with IHL 1: invalid
        assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Forward);
        let mut e = engine("malformed = \"drop\"", 1);
        assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Drop);
        assert_eq!(e.stats().malformed, 1);
        // ARP passes.
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(e.handle_frame(0, Dir::Up, &arp), Verdict::Forward);
    }

    #[test]
    fn flow_table_is_bounded() {
        let mut e = engine("max_flows = 100", 1);
        for i in 0..10_000u32 {
            let sport = (i % 60000) as u16 + 1;
            let dst = format!("10.2.{}.{}", (i >> 8) & 0xff, i & 0xff);
            e.handle_frame(u64::from(i) * MS * 10, Dir::Up, &up_udp(sport, &dst, 5000, b"x"));
            assert!(e.flow_count() <= 100);
        }
        assert!(e.stats().flows_evicted + e.stats().flows_expired >= 9_900);
    }

    #[test]
    fn stun_attributes_and_per_direction_bytes_match() {
        let mut e = engine(
            r#"
            [[rules]]
            name = "wa-relay"
            match = { stun_username = ["*wa*"], min_client_bytes = "40B" }
            action = "drop"
            "#,
            1,
        );
        // A STUN Binding request with USERNAME "wa-user" (RFC 8489: type 0x0006, padded).
        let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[9; 12]);
        stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
        stun.extend_from_slice(b"wa-user\0");
        assert_eq!(stun.len(), 32);
        // 32 bytes so far: below min_client_bytes.
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun)),
            Verdict::Forward
        );
        // 64 bytes: now it matches.
        assert_eq!(
            e.handle_frame(MS, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun)),
            Verdict::Drop
        );
        // Another flow without that USERNAME is left alone.
        let plain = [0x80u8; 64];
        assert_eq!(
            e.handle_frame(MS, Dir::Up, &up_udp(4001, "10.3.0.2", 3478, &plain)),
            Verdict::Forward
        );
    }

    /// A TLS 1.3-shaped ClientHello handshake message (RFC 8446 section 4.1.2) with an SNI.
    fn client_hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0];
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        let mut list = (sni.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&sni);
        let mut exts = vec![0, 0];
        exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
        exts.extend_from_slice(&list);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        hs
    }

    fn tls_record(fragment: &[u8]) -> Vec<u8> {
        let mut r = vec![22, 3, 1];
        r.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        r.extend_from_slice(fragment);
        r
    }

    #[test]
    fn first_packet_sni_is_defeated_by_record_splitting_reassembly_is_not() {
        let hello = client_hello("api.twitter.com");
        let whole = tls_record(&hello);
        let mut split = tls_record(&hello[..10]);
        split.extend_from_slice(&tls_record(&hello[10..]));
        let seg = |sport: u16, payload: &[u8]| {
            build::tcp(
                CLIENT_MAC,
                ROUTER_MAC,
                (ip("10.1.0.2"), sport),
                (ip("10.3.0.2"), 443),
                1,
                1,
                0x18,
                payload,
            )
        };
        for (first_packet, split_verdict) in [(true, Verdict::Forward), (false, Verdict::Drop)] {
            let mut e = engine(
                &format!(
                    r#"
                    [[rules]]
                    name = "sni"
                    match = {{ sni = ["*twitter.com"], sni_first_packet = {first_packet} }}
                    action = "drop"
                    "#
                ),
                1,
            );
            assert_eq!(e.handle_frame(0, Dir::Up, &seg(5000, &whole)), Verdict::Drop);
            assert_eq!(e.handle_frame(0, Dir::Up, &seg(5001, &split)), split_verdict);
        }
        let bad =
            "[[rules]]\nname = \"x\"\nmatch = { sni_first_packet = true }\naction = \"drop\"\n";
        let raw: raw::Policy = toml::from_str(bad).unwrap();
        let err = Policy::compile(&raw, &|_: &str| None).unwrap_err().to_string();
        assert!(err.contains("sni_first_packet"), "{err}");
    }

    #[test]
    fn inspect_packets_zero_skips_classification() {
        let mut e = engine("inspect_packets = 0", 1);
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[9; 12]);
        e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun));
        assert!(e.flows.values().all(|f| f.inspector.is_none()));
        let raw: raw::Policy = toml::from_str(
            "inspect_packets = 0\n[[rules]]\nname = \"s\"\nmatch = { label = [\"stun\"] }\naction = \"drop\"\n",
        )
        .unwrap();
        let err = Policy::compile(&raw, &|_: &str| None).unwrap_err().to_string();
        assert!(err.contains("inspect_packets = 0"), "{err}");
    }

    #[test]
    fn decision_log_records_changes_only() {
        let mut e =
            engine("[[rules]]\nname = \"late\"\nactive = { from = \"1s\" }\naction = \"drop\"", 1);
        for i in 0..20u64 {
            e.handle_frame(i * 100 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"));
        }
        let events: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            (events[0].rule.as_str(), events[0].outcome),
            ("default-pass", Outcome::Forward)
        );
        assert!(events[0].default_rule && !events[0].is_notable());
        assert_eq!((events[1].rule.as_str(), events[1].outcome), ("late", Outcome::Drop));
        assert!(!events[1].default_rule && events[1].is_notable());
        assert_eq!(events[1].flow.to_string(), "udp 10.1.0.2:4000 -> 10.2.0.2:5000");
    }

    proptest! {
        #[test]
        fn random_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..50)) {
            let mut e = engine("[[rules]]\nname = \"mix\"\nmatch = { proto = \"udp\" }\naction = { police = \"100kbit\", loss = \"10%\", delay = \"1ms\" }", 1);
            for (i, f) in frames.iter().enumerate() {
                let dir = if i % 2 == 0 { Dir::Up } else { Dir::Down };
                e.handle_frame(i as u64 * MS, dir, f);
                while e.poll_transmit(i as u64 * MS + 10 * MS).is_some() {}
            }
        }
    }

    // Live control: rules switched and policies swapped while flows run.

    const TWO_RULES: &str = r#"
        [[rules]]
        name = "drop-udp-9000"
        match = { proto = "udp", dst_port = "9000" }
        action = "drop"
        [[rules]]
        name = "delay-udp"
        match = { proto = "udp" }
        action = { delay = "50ms" }
        "#;

    fn no_load(_: &std::path::Path) -> Result<Policy, String> {
        Err("no policies in this test".into())
    }

    fn control_events(e: &mut Engine) -> Vec<(String, &'static str)> {
        use crate::control::Change;
        std::iter::from_fn(|| e.poll_control_event())
            .map(|ev| match ev.change {
                Change::RuleOn { name, .. } => (name, "rule-on"),
                Change::RuleOff { name, .. } => (name, "rule-off"),
                Change::PolicySwap { source, .. } => (source, "policy-swap"),
            })
            .collect()
    }

    #[test]
    fn disabling_a_rule_lets_the_next_one_decide_and_is_logged() {
        use crate::control::{Change, Command, RuleRef};
        let mut e = engine(TWO_RULES, 1);
        let pkt = up_udp(4000, "10.2.0.2", 9000, b"voice");
        assert_eq!(e.handle_frame(0, Dir::Up, &pkt), Verdict::Drop);
        let r = e.control(
            10 * MS,
            &Command::Disable { rule: RuleRef::Name("drop-udp-9000".into()) },
            &mut no_load,
        );
        assert!(r.ok, "{r:?}");
        assert_eq!(r.change, Some(Change::RuleOff { index: 1, name: "drop-udp-9000".into() }));
        assert!(!r.rules[0].enabled && r.rules[1].enabled);
        assert_eq!(r.rules[0].dropped, 1);
        // Same flow, next packet: the first rule is skipped, the second holds it.
        assert_eq!(e.handle_frame(20 * MS, Dir::Up, &pkt), Verdict::Held);
        assert_eq!(e.flow_count(), 1);
        // Disabling again is a no-op, not a second log line.
        let r = e.control(30 * MS, &Command::Disable { rule: RuleRef::Index(1) }, &mut no_load);
        assert!(r.ok && r.change.is_none());
        // Toggle back on: dropped again.
        let r = e.control(40 * MS, &Command::Toggle { rule: RuleRef::Index(1) }, &mut no_load);
        assert_eq!(r.change, Some(Change::RuleOn { index: 1, name: "drop-udp-9000".into() }));
        assert_eq!(e.handle_frame(50 * MS, Dir::Up, &pkt), Verdict::Drop);
        assert_eq!(
            control_events(&mut e),
            vec![("drop-udp-9000".into(), "rule-off"), ("drop-udp-9000".into(), "rule-on")]
        );
        let r = e.report();
        assert_eq!(r.rules[0].counters.dropped, 2);
        assert_eq!(r.rules[1].counters.delayed, 1);
    }

    #[test]
    fn unknown_rules_are_errors_that_change_nothing() {
        use crate::control::{Command, RuleRef};
        let mut e = engine(TWO_RULES, 1);
        for rule in [RuleRef::Index(3), RuleRef::Name("nope".into())] {
            let r = e.control(0, &Command::Toggle { rule }, &mut no_load);
            assert!(!r.ok);
            let msg = r.error.unwrap();
            assert!(msg.contains("from 1 to 2") && msg.contains("1 drop-udp-9000"), "{msg}");
            assert!(r.rules.iter().all(|s| s.enabled));
        }
        let r = e.control(0, &Command::Swap { policy: "x.toml".into() }, &mut no_load);
        assert_eq!(r.error.as_deref(), Some("no policies in this test"));
        assert_eq!(e.policy().rules.len(), 2);
        assert!(control_events(&mut e).is_empty());
    }

    #[test]
    fn disabling_a_rule_lifts_its_residual_blocks() {
        use crate::control::{Command, RuleRef};
        let mut e = engine(
            "[[rules]]\nname = \"big\"\nmatch = { proto = \"udp\", dst_port = \"9000\", min_payload = 2 }\naction = { drop = true, residual = \"180s\" }",
            1,
        );
        assert_eq!(
            e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 9000, b"aa")),
            Verdict::Drop
        );
        // A new flow to the same 3-tuple that the rule does not match is dropped by the
        // residual block...
        assert_eq!(
            e.handle_frame(MS, Dir::Up, &up_udp(4001, "10.2.0.2", 9000, b"a")),
            Verdict::Drop
        );
        assert_eq!(e.report().rules[0].counters.residual_dropped, 1);
        e.control(2 * MS, &Command::Disable { rule: RuleRef::Index(1) }, &mut no_load);
        // ...until the rule is switched off.
        assert_eq!(
            e.handle_frame(3 * MS, Dir::Up, &up_udp(4002, "10.2.0.2", 9000, b"a")),
            Verdict::Forward
        );
    }

    #[test]
    fn swapping_the_policy_keeps_flows_and_carries_counters_by_name() {
        use crate::control::{Change, Command};
        let mut e = engine(TWO_RULES, 1);
        let voice = up_udp(4000, "10.2.0.2", 9000, b"voice");
        let other = up_udp(4001, "10.2.0.2", 7000, b"other");
        assert_eq!(e.handle_frame(0, Dir::Up, &voice), Verdict::Drop);
        assert_eq!(e.handle_frame(0, Dir::Up, &other), Verdict::Held);
        let raw: raw::Policy = toml::from_str(
            r#"
            [[rules]]
            name = "delay-udp"
            match = { proto = "udp", dst_port = "7000" }
            action = "drop"
            "#,
        )
        .unwrap();
        let new = Policy::compile(&raw, &|_| None).unwrap();
        let mut load = |p: &std::path::Path| {
            assert_eq!(p, std::path::Path::new("scenarios/other.toml"));
            Ok(new.clone())
        };
        let r =
            e.control(5 * MS, &Command::Swap { policy: "scenarios/other.toml".into() }, &mut load);
        assert!(r.ok);
        assert_eq!(
            r.change,
            Some(Change::PolicySwap { source: "scenarios/other.toml".into(), rules: 1 })
        );
        assert_eq!(e.flow_count(), 2, "the flow table is kept");
        // The rule with the same name keeps its counters; the other's leave the report.
        assert_eq!(r.rules.len(), 1);
        assert_eq!((r.rules[0].name.as_str(), r.rules[0].delayed), ("delay-udp", 1));
        // Running flows meet the new policy at their next packet.
        assert_eq!(e.handle_frame(6 * MS, Dir::Up, &voice), Verdict::Forward);
        assert_eq!(e.handle_frame(6 * MS, Dir::Up, &other), Verdict::Drop);
        let report = e.report();
        assert_eq!(report.rules.len(), 2);
        assert_eq!(report.rules[0].counters.dropped, 1);
        assert_eq!(report.rules[1].counters.forwarded, 1);
        assert_eq!(control_events(&mut e), vec![("scenarios/other.toml".into(), "policy-swap")]);
    }
}
