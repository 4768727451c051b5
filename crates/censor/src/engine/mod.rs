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
//! 6. `police`: token bucket per flow and direction; a packet that does not fit waits for
//!    the tokens it lacks if no other packet of that direction is waiting, else is dropped
//!    (a queue of one packet, like `tc tbf` with `limit` one packet);
//! 7. `delay` + `jitter`: the frame is held and released later;
//! 8. otherwise forwarded.
//!
//! A block by `drop`, `reject` or `block_probability` with `residual` set also drops later
//! client-to-server packets on the (client IP, server IP, server port) 3-tuple, new flows
//! included, for that long.
//!
//! Memory is bounded: the flow table holds at most `max_flows` flows (oldest idle first out),
//! the hold queue at most [`MAX_HELD`] frames, the event log at most [`MAX_EVENTS`] events,
//! the flow-identity ordinals at most `4 x max_flows` tuples (then they restart from 0). A
//! tracked flow that only met pass actions costs under 1 KiB of heap, its share of the tables
//! included (`tests/flow_memory.rs`).
//!
//! The engine is split along that pipeline, one module per stage:
//!
//! | module | stage |
//! |---|---|
//! | `flows` | the flows in the censor's `FlowTable` (`crate::flow_table`: keying, client = first sender, expiry and eviction), identity, per-rule flow state |
//! | `classify` | feeding the first packets of each direction to the classifiers (`wire::inspect`) |
//! | `chain` | the rule chain: the first active, enabled rule whose conditions hold |
//! | `effects` | an action's effects in the order above, and residual blocks |
//! | `accounting` | per-rule counters, per-inside-address attribution, the decision log, the report, per-call 100 ms bins |
//! | `reject` | crafting the TCP RST / ICMP port-unreachable frames of `reject` |
//! | `control` | live control: rules on and off, policy swap, status |
//!
//! The conditions a rule can hold are one enum, [`crate::policy::Condition`]; adding one
//! touches that enum (its variant and its arm in `Condition::holds`) and its raw key.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;

use callwall_wire::packet::{Frame, L4};

pub use crate::flow::Dir;
use crate::flow::{Endpoint, FlowKey};
use crate::flow_table::FlowTable;
use crate::policy::Policy;
use crate::rng::{self, DrawKey, Purpose};
pub use callwall_results::censor::{
    deciding_rule, CensorReport, DecisionEvent as Event, EngineStats, HostRuleCounters,
    InsideReport, Outcome, RuleCounters, RuleReport,
};
pub use effects::GE_SLOT_NS;

mod accounting;
pub use accounting::{BinCounts, CallBins, PairBins, BIN_NS, MAX_BINS, MAX_BIN_PAIRS};
mod chain;
mod classify;
mod control;
mod effects;
mod flows;
mod reject;
#[cfg(test)]
mod tests;

use chain::{Decision, PacketCtx};
use flows::Flow;
pub use flows::FlowView;

/// Frames held for delay at most; past it, new frames to hold are dropped and counted.
pub const MAX_HELD: usize = 65_536;
/// Decision events buffered at most; past it they are counted as lost.
pub const MAX_EVENTS: usize = 100_000;

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

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release_ns: u64,
    seq: u64,
    dir: DirOrd,
    frame: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DirOrd(u8);

/// The censor engine. See the module docs for the contract.
pub struct Engine {
    policy: Policy,
    needs_inspection: bool,
    seed: u64,
    /// Flows seen so far per (proto, client, server, server port): the ordinal of the next.
    ordinals: flows::Ordinals,
    flows: FlowTable<Box<Flow>>,
    /// The flow of the last frame handled and the frame's side in it ([`Engine::last_flow`]).
    last: Option<(FlowKey, usize)>,
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
    /// Per-call time bins of the watched inside addresses ([`Engine::watch_calls`]).
    bins: CallBins,
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
            seed,
            ordinals: flows::Ordinals::default(),
            flows: FlowTable::default(),
            last: None,
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
            bins: CallBins::default(),
            policy,
        }
    }

    /// Turns the decision log off (benchmarks).
    pub fn set_event_log(&mut self, on: bool) {
        self.log_events = on;
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Handles one frame travelling in `dir` at `now_ns` (nanoseconds since the run's start):
    /// parse, flow, classify, residual blocks, rule chain and effects, accounting, reject,
    /// hold, decision log.
    pub fn handle_frame(&mut self, now_ns: u64, dir: Dir, frame: &[u8]) -> Verdict {
        self.stats.frames += 1;
        self.stats.bytes += frame.len() as u64;
        self.last = None;
        let parsed = match Frame::parse(frame) {
            Ok(f) => f,
            Err(_) => return self.malformed(),
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
        // The IP packet's length as it is on the wire (Ethernet padding included).
        let ip_len = (frame.len() - parsed.l3_offset) as u64;
        let (rel, flow_ident, packet_index) = self.track(now_ns, key, proto, src, dst, payload);
        self.last = Some((key, rel));

        if rel == 0
            && !self.residual.is_empty()
            && self.residual_blocked(now_ns, &key, ip.src, frame.len())
        {
            self.bin(now_ns, dir, ip.src, ip.dst, ip_len, Verdict::Drop);
            return Verdict::Drop;
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
        let inside = if dir == Dir::Up { ip.src } else { ip.dst };
        self.count(idx, frame.len(), inside, decision.verdict);
        if decision.outcome == Outcome::Reject {
            let n = self.inject_reject(dir, &parsed, frame, tcp, payload.len());
            self.counters[idx].injected += n;
        }
        let jitter_draw = DrawKey {
            rule: idx,
            flow: flow_ident,
            dir: rel,
            packet: packet_index,
            purpose: Purpose::Jitter,
        };
        if decision.verdict == Verdict::Held
            && !self.hold(now_ns, dir, frame, &decision, jitter_draw)
        {
            self.bin(now_ns, dir, ip.src, ip.dst, ip_len, Verdict::Drop);
            return Verdict::Drop;
        }
        self.log(now_ns, &key, &decision);
        self.bin(now_ns, dir, ip.src, ip.dst, ip_len, decision.verdict);
        decision.verdict
    }

    /// A frame that failed to parse: counted, then forwarded or dropped by policy.
    fn malformed(&mut self) -> Verdict {
        self.stats.malformed += 1;
        match self.policy.malformed {
            crate::policy::MalformedPolicy::Forward => Verdict::Forward,
            crate::policy::MalformedPolicy::Drop => {
                self.stats.malformed_dropped += 1;
                Verdict::Drop
            }
        }
    }

    /// Holds a frame for its action's delay and jitter; false (and counted as a drop) when
    /// the hold queue is full.
    fn hold(&mut self, now_ns: u64, dir: Dir, frame: &[u8], d: &Decision, draw: DrawKey) -> bool {
        let action = match d.rule {
            Some(r) => &self.policy.rules[r].action,
            None => &self.policy.default,
        };
        let jitter = rng::below(self.seed, draw, action.jitter_ns);
        let release_ns = now_ns + d.wait_ns + action.delay_ns + jitter;
        if self.held.len() >= MAX_HELD {
            self.stats.hold_overflow += 1;
            let c = &mut self.counters[draw.rule];
            c.delayed -= 1;
            c.dropped += 1;
            return false;
        }
        self.held_seq += 1;
        self.held.push(Reverse(Held {
            release_ns,
            seq: self.held_seq,
            dir: DirOrd(dir as u8),
            frame: frame.to_vec(),
        }));
        true
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

    /// The flow of the frame [`Engine::handle_frame`] handled last, as the engine sees it (its
    /// number, client and server, the frame's side); `None` when that frame was not IP or did
    /// not parse. This is how the offline replay attributes frames to the engine's own flows.
    pub fn last_flow(&self) -> Option<FlowView> {
        let (key, rel) = self.last?;
        let flow = self.flows.get(&key)?;
        let side = if rel == 0 {
            crate::flow_table::Side::ClientToServer
        } else {
            crate::flow_table::Side::ServerToClient
        };
        Some(FlowView { serial: flow.serial, flow: flow.id(), side })
    }
}
