//! Accounting: per-rule counters, per-inside-address attribution (bounded to
//! [`MAX_INSIDE_HOSTS`] addresses), the decision log (changes of (rule, outcome) per flow,
//! bounded to [`MAX_EVENTS`]), the report built from them, and per-call time bins
//! ([`CallBins`]) for judging calls whose peers report nothing (issue 13).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use callwall_wire::inspect::{FlowFacts, FlowInspector};

use super::chain::Decision;
use super::{
    CensorReport, Dir, Engine, Event, HostRuleCounters, InsideReport, RuleReport, Verdict,
    MAX_EVENTS,
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

/// Width of one call bin: 100 ms of engine time.
pub const BIN_NS: u64 = 100_000_000;
/// Most (inside, outside) address pairs binned; packets of further pairs are counted in
/// [`CallBins::unbinned_packets`], not binned.
pub const MAX_BIN_PAIRS: usize = 128;
/// Most bins per pair and direction (10 minutes from the pair's first packet); later packets
/// are counted in [`PairBins::late_packets`].
pub const MAX_BINS: usize = 6_000;

/// What the censor did with one direction of one address pair in one bin: packets it
/// forwarded (held and released later counts as forwarded), their IP bytes, packets dropped.
/// Serialized as `[forwarded_packets, forwarded_bytes, dropped_packets]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[u32; 3]", into = "[u32; 3]")]
pub struct BinCounts {
    pub forwarded_packets: u32,
    pub forwarded_bytes: u32,
    pub dropped_packets: u32,
}

impl From<[u32; 3]> for BinCounts {
    fn from(a: [u32; 3]) -> Self {
        BinCounts { forwarded_packets: a[0], forwarded_bytes: a[1], dropped_packets: a[2] }
    }
}

impl From<BinCounts> for [u32; 3] {
    fn from(b: BinCounts) -> Self {
        [b.forwarded_packets, b.forwarded_bytes, b.dropped_packets]
    }
}

/// The bins of one (inside, outside) address pair: `up` is inside to outside (a caller's
/// packets towards its callee or relay), `down` the reverse. Bin `i` of each vector covers
/// engine time `[(first_bin + i) × BIN_NS, (first_bin + i + 1) × BIN_NS)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairBins {
    pub inside: IpAddr,
    pub outside: IpAddr,
    /// Index (from engine time 0) of the bin of the pair's first packet.
    pub first_bin: u64,
    pub up: Vec<BinCounts>,
    pub down: Vec<BinCounts>,
    /// Packets past [`MAX_BINS`], not binned.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_packets: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-call time bins: for every inside address the harness asked to watch (each external
/// call's caller address), per outside address it talks to, per direction, per 100 ms: what
/// the censor forwarded and dropped. Bounded: at most [`MAX_BIN_PAIRS`] pairs of at most
/// [`MAX_BINS`] bins per direction (12 bytes each: under 19 MB in the worst case, a few KB
/// per call in practice). Sans-I/O: [`CallBins::record`] takes the engine's time.
#[derive(Debug, Clone, Default)]
pub struct CallBins {
    watch: HashSet<IpAddr>,
    pairs: HashMap<(IpAddr, IpAddr), PairBins>,
    /// Packets of watched addresses not binned because [`MAX_BIN_PAIRS`] pairs were full.
    pub unbinned_packets: u64,
}

impl CallBins {
    /// Starts binning the packets of `inside` (added to those already watched).
    pub fn watch(&mut self, inside: impl IntoIterator<Item = IpAddr>) {
        self.watch.extend(inside);
    }

    /// Counts one decided packet of `len` IP bytes at engine time `now_ns` travelling in
    /// `dir` between `inside` and `outside`. A no-op for addresses not watched.
    #[inline]
    pub fn record(
        &mut self,
        now_ns: u64,
        dir: Dir,
        inside: IpAddr,
        outside: IpAddr,
        len: u64,
        verdict: Verdict,
    ) {
        if self.watch.is_empty() || !self.watch.contains(&inside) {
            return;
        }
        let bin = now_ns / BIN_NS;
        let full = self.pairs.len() >= MAX_BIN_PAIRS;
        let pair = match self.pairs.entry((inside, outside)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                self.unbinned_packets += 1;
                return;
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(PairBins {
                inside,
                outside,
                first_bin: bin,
                up: Vec::new(),
                down: Vec::new(),
                late_packets: 0,
            }),
        };
        // A packet stamped before the pair's first one (the bridge's clock never goes back,
        // but held frames are decided at arrival) lands in the first bin.
        let i = bin.saturating_sub(pair.first_bin);
        if i >= MAX_BINS as u64 {
            pair.late_packets += 1;
            return;
        }
        let i = i as usize;
        let bins = if dir == Dir::Up { &mut pair.up } else { &mut pair.down };
        if bins.len() <= i {
            bins.resize(i + 1, BinCounts::default());
        }
        let b = &mut bins[i];
        match verdict {
            Verdict::Forward | Verdict::Held => {
                b.forwarded_packets = b.forwarded_packets.saturating_add(1);
                b.forwarded_bytes =
                    b.forwarded_bytes.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
            }
            Verdict::Drop => b.dropped_packets = b.dropped_packets.saturating_add(1),
        }
    }

    /// Every binned pair, ordered by (inside, outside).
    pub fn pairs(&self) -> Vec<PairBins> {
        let mut v: Vec<PairBins> = self.pairs.values().cloned().collect();
        v.sort_by_key(|p| (p.inside, p.outside));
        v
    }
}

impl Engine {
    /// Bins the packets of these inside addresses per outside address, direction and 100 ms
    /// (see [`CallBins`]); read them back with [`Engine::call_bins`].
    pub fn watch_calls(&mut self, inside: impl IntoIterator<Item = IpAddr>) {
        self.bins.watch(inside);
    }

    /// The per-call bins so far.
    pub fn call_bins(&self) -> Vec<PairBins> {
        self.bins.pairs()
    }

    /// Bins one decided packet (see [`CallBins::record`]); `src`/`dst` as on the wire.
    #[inline]
    pub(super) fn bin(
        &mut self,
        now_ns: u64,
        dir: Dir,
        src: IpAddr,
        dst: IpAddr,
        len: u64,
        v: Verdict,
    ) {
        let (inside, outside) = if dir == Dir::Up { (src, dst) } else { (dst, src) };
        self.bins.record(now_ns, dir, inside, outside, len, v);
    }
}

#[cfg(test)]
mod bin_tests {
    use super::*;
    use crate::policy::{raw, Policy};
    use callwall_wire::packet::build;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const MS: u64 = 1_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn engine(policy: &str) -> Engine {
        let raw: raw::Policy = toml::from_str(policy).unwrap();
        Engine::new(Policy::compile(&raw, &|_: &str| None).unwrap(), 1)
    }

    fn up(src: &str, dst: &str, payload: usize) -> Vec<u8> {
        build::udp(A, B, (ip(src), 4000), (ip(dst), 5000), &vec![0; payload])
    }

    fn down(src: &str, dst: &str, payload: usize) -> Vec<u8> {
        build::udp(B, A, (ip(src), 5000), (ip(dst), 4000), &vec![0; payload])
    }

    #[test]
    fn bins_per_pair_direction_and_100_ms_only_for_watched_callers() {
        let mut e = engine("default = \"pass\"\n[[rules]]\nname = \"no-9\"\nmatch = { dst = [\"10.2.0.9/32\"] }\naction = \"drop\"\n");
        e.watch_calls([ip("10.1.0.20")]);
        // 1.05 s and 1.15 s: two bins; the signal server is a pair of its own.
        e.handle_frame(1_050 * MS, Dir::Up, &up("10.1.0.20", "10.2.0.2", 72));
        e.handle_frame(1_060 * MS, Dir::Up, &up("10.1.0.20", "10.2.0.2", 72));
        e.handle_frame(1_150 * MS, Dir::Down, &down("10.2.0.2", "10.1.0.20", 72));
        e.handle_frame(1_350 * MS, Dir::Up, &up("10.1.0.20", "10.2.0.2", 72));
        e.handle_frame(1_100 * MS, Dir::Up, &up("10.1.0.20", "10.4.0.2", 10));
        e.handle_frame(1_100 * MS, Dir::Up, &up("10.1.0.20", "10.2.0.9", 10));
        // Not watched: no bins.
        e.handle_frame(1_100 * MS, Dir::Up, &up("10.1.0.21", "10.2.0.2", 10));
        let bins = e.call_bins();
        assert_eq!(bins.len(), 3, "{bins:?}");
        let p = &bins[0];
        assert_eq!((p.inside, p.outside, p.first_bin), (ip("10.1.0.20"), ip("10.2.0.2"), 10));
        let ip_len = 20 + 8 + 72;
        let f = |n: u32| BinCounts {
            forwarded_packets: n,
            forwarded_bytes: n * ip_len,
            dropped_packets: 0,
        };
        assert_eq!(p.up, [f(2), f(0), f(0), f(1)]);
        assert_eq!(p.down, [BinCounts::default(), f(1)]);
        let dropped = bins.iter().find(|p| p.outside == ip("10.2.0.9")).unwrap();
        assert_eq!(
            dropped.up,
            [BinCounts { forwarded_packets: 0, forwarded_bytes: 0, dropped_packets: 1 }]
        );
        // Compact on the wire and back.
        let json = serde_json::to_string(p).unwrap();
        assert!(json.contains("[[2,200,0],[0,0,0],[0,0,0],[1,100,0]]"), "{json}");
        assert_eq!(&serde_json::from_str::<PairBins>(&json).unwrap(), p);
    }

    #[test]
    fn memory_is_bounded_in_pairs_and_bins() {
        let mut b = CallBins::default();
        let inside = ip("10.1.0.20");
        b.watch([inside]);
        for k in 0..(MAX_BIN_PAIRS as u32 + 5) {
            let outside = IpAddr::V4(std::net::Ipv4Addr::from(0x0a02_0000 + k));
            b.record(0, Dir::Up, inside, outside, 100, Verdict::Forward);
        }
        assert_eq!(b.pairs().len(), MAX_BIN_PAIRS);
        assert_eq!(b.unbinned_packets, 5);
        let outside = ip("10.2.0.0");
        b.record(BIN_NS * MAX_BINS as u64 + 1, Dir::Down, inside, outside, 1, Verdict::Drop);
        b.record(u64::MAX, Dir::Down, inside, outside, u64::MAX, Verdict::Forward);
        let p = b.pairs().into_iter().find(|p| p.outside == outside).unwrap();
        assert_eq!((p.late_packets, p.down.len()), (2, 0));
        b.record(
            BIN_NS * (MAX_BINS as u64 - 1),
            Dir::Down,
            inside,
            outside,
            u64::MAX,
            Verdict::Held,
        );
        let p = b.pairs().into_iter().find(|p| p.outside == outside).unwrap();
        assert_eq!(p.down.len(), MAX_BINS);
        assert_eq!(p.down[MAX_BINS - 1].forwarded_bytes, u32::MAX);
    }

    #[test]
    fn nothing_watched_costs_nothing() {
        let mut e = engine("default = \"pass\"\n");
        e.handle_frame(0, Dir::Up, &up("10.1.0.20", "10.2.0.2", 72));
        assert!(e.call_bins().is_empty());
    }
}
