//! Effects: what the deciding action does to the packet, in the order documented on
//! [`crate::engine`] (block decision, drop/reject, cut, freeze, loss, police, delay), and
//! residual blocks on a blocked flow's 3-tuple.

use std::net::IpAddr;

use super::chain::{Decision, PacketCtx};
use super::{Engine, Outcome, Verdict};
use crate::flow::{Dir, FlowKey};
use crate::policy::Action;
use crate::rng::{self, DrawKey, Purpose};

/// The Gilbert-Elliott chain's time step between a flow direction's packets: one voice frame.
pub const GE_SLOT_NS: u64 = 20_000_000;

/// The probability that a Gilbert-Elliott chain (good to bad `p`, bad to good `r` per step) is
/// in the bad state `steps` steps after being bad (`was_bad`) or good: with `l = 1 - p - r`
/// and the stationary `pi = p / (p + r)`, `pi + (1 - pi) l^k` from bad, `pi (1 - l^k)` from
/// good (for one step: `1 - r` and `p`).
pub(super) fn ge_bad_after(p: f64, r: f64, was_bad: bool, steps: u64) -> f64 {
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

/// What the policer does with a packet of `len` bytes meeting a bucket of `tokens` bytes
/// refilled at `rate` bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Police {
    /// Enough tokens: it passes now.
    Pass,
    /// Too few tokens and no packet waiting (the bucket is not negative): it waits this many
    /// ns for the tokens it lacks, the one packet the policer's queue holds (`tc tbf` with
    /// `limit` one packet behaves the same way).
    Wait(u64),
    /// Too few tokens and a packet already waiting (the bucket is negative): dropped.
    Drop,
}

/// The policer's decision for one packet (pure; see [`Police`]).
pub(super) fn police(tokens: f64, len: f64, rate: f64) -> Police {
    if len <= tokens {
        Police::Pass
    } else if tokens >= 0.0 && rate > 0.0 {
        Police::Wait(((len - tokens) / rate * 1e9).ceil() as u64)
    } else {
        Police::Drop
    }
}

impl Engine {
    /// Residual blocking: a client-to-server packet of flow `key` on a blocked 3-tuple is
    /// dropped (counted and logged here); an expired block is forgotten.
    pub(super) fn residual_blocked(
        &mut self,
        now_ns: u64,
        key: &FlowKey,
        src: IpAddr,
        len: usize,
    ) -> bool {
        let flow = &self.flows[key];
        let k3 = (flow.client.ip, flow.server.ip, flow.server.port);
        let Some(&(until, rule)) = self.residual.get(&k3) else { return false };
        if now_ns < until {
            let c = &mut self.counters[rule];
            c.residual_dropped += 1;
            c.dropped += 1;
            self.attribute(src, rule, Verdict::Drop, len);
            let d = Decision {
                rule: Some(rule),
                verdict: Verdict::Drop,
                outcome: Outcome::Residual,
                wait_ns: 0,
            };
            self.log(now_ns, key, &d);
            return true;
        }
        self.residual.remove(&k3);
        false
    }

    /// Applies action `a` of `rule` to a packet of flow `key`; a packet the policer holds
    /// gets `Verdict::Held`, `Outcome::Police` and its wait in `wait_ns`.
    pub(super) fn apply(
        &mut self,
        key: &FlowKey,
        rule: usize,
        a: &Action,
        p: &PacketCtx,
        ip_len: u64,
        wait_ns: &mut u64,
    ) -> (Verdict, Outcome) {
        if a.is_pass() {
            self.note_pass(key, rule, p.now_ns);
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
                Some(Dir::Up) => p.rel == 0,
                Some(Dir::Down) => p.rel == 1,
                None => true,
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
            match police(st.tokens[i], ip_len as f64, rate as f64) {
                Police::Pass => st.tokens[i] -= ip_len as f64,
                Police::Wait(ns) => {
                    // The packet takes the tokens it lacks on credit: the bucket stays
                    // negative until the packet leaves, and packets meeting a negative
                    // bucket are dropped (the queue of one packet is full).
                    st.tokens[i] -= ip_len as f64;
                    *wait_ns = ns;
                    return (Verdict::Held, Outcome::Police);
                }
                Police::Drop => return (Verdict::Drop, Outcome::Police),
            }
        }
        // 7. Delay.
        if a.delay_ns > 0 || a.jitter_ns > 0 {
            return (Verdict::Held, Outcome::Delay);
        }
        (Verdict::Forward, Outcome::Forward)
    }

    fn note_pass(&mut self, key: &FlowKey, rule: usize, now: u64) {
        let flow = self.flows.get_mut(key).expect("flow exists");
        if flow.note_pass(rule, now) {
            self.counters[rule].flows += 1;
        }
    }
}
