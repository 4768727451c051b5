//! What the censor did, as data: its counters per rule and per inside address, the bridge's I/O
//! counters, and the decision log's events with typed flows and outcomes.
//!
//! The censor engine (`callwall_censor`) produces these; the harness stores them in the
//! [`crate::RunResult`]; renderers read them. Nothing here parses a formatted string back.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address and port (port 0 for protocols without ports).
///
/// JSON: `{"ip": "10.1.0.2", "port": 4000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// An IP protocol number. JSON: `"udp"`, `"tcp"`, `"icmp"`, `"icmpv6"` or `"ipN"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proto(pub u8);

impl Proto {
    pub const TCP: Proto = Proto(6);
    pub const UDP: Proto = Proto(17);

    /// `udp`, `tcp`, `icmp`, `icmpv6` or `ipN`.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self.0 {
            17 => "udp".into(),
            6 => "tcp".into(),
            1 => "icmp".into(),
            58 => "icmpv6".into(),
            n => format!("ip{n}").into(),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A protocol name that is none of `udp`, `tcp`, `icmp`, `icmpv6` or `ipN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected udp, tcp, icmp, icmpv6 or ipN")]
pub struct UnknownProto(pub String);

impl FromStr for Proto {
    type Err = UnknownProto;
    fn from_str(s: &str) -> Result<Proto, UnknownProto> {
        Ok(Proto(match s {
            "udp" => 17,
            "tcp" => 6,
            "icmp" => 1,
            "icmpv6" => 58,
            _ => s
                .strip_prefix("ip")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| UnknownProto(s.to_string()))?,
        }))
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Proto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Proto, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A flow as the censor saw it: the side that sent its first packet is the client.
///
/// JSON: `{"proto": "udp", "client": {..}, "server": {..}}`; displayed as
/// `udp 10.1.0.2:40000 -> 10.3.0.2:3478`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Flow {
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
}

impl Flow {
    /// Whether `addr` is one of the flow's two ends.
    pub fn involves(&self, addr: IpAddr) -> bool {
        self.client.ip == addr || self.server.ip == addr
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.proto, self.client, self.server)
    }
}

/// What the censor did to a packet (the effect that decided it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Sent on unchanged.
    Forward,
    /// Dropped by a `drop` action.
    Drop,
    /// Dropped, with a TCP RST or ICMP unreachable injected.
    Reject,
    /// Dropped because `block_probability` blocked the flow.
    Block,
    /// Dropped by residual blocking after an earlier block.
    Residual,
    /// Dropped because the flow outlived `cut_after`.
    Cut,
    /// Dropped because the direction carried more than `freeze_after`.
    Freeze,
    /// Dropped by random or burst loss.
    Loss,
    /// Met the token-bucket policer without its tokens: held for them (the one packet per flow
    /// direction the policer queues, verdict delay) or dropped.
    Police,
    /// Held and released later.
    Delay,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Forward,
        Outcome::Drop,
        Outcome::Reject,
        Outcome::Block,
        Outcome::Residual,
        Outcome::Cut,
        Outcome::Freeze,
        Outcome::Loss,
        Outcome::Police,
        Outcome::Delay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forward => "forward",
            Outcome::Drop => "drop",
            Outcome::Reject => "reject",
            Outcome::Block => "block",
            Outcome::Residual => "residual",
            Outcome::Cut => "cut",
            Outcome::Freeze => "freeze",
            Outcome::Loss => "loss",
            Outcome::Police => "police",
            Outcome::Delay => "delay",
        }
    }

    /// Anything but forwarding harms the flow.
    pub fn is_harmful(self) -> bool {
        self != Outcome::Forward
    }

    /// Outcomes that hit some packets of a flow and let others through (loss, policing).
    pub fn is_intermittent(self) -> bool {
        matches!(self, Outcome::Loss | Outcome::Police)
    }

    /// Outcomes that degrade a flow rather than stop it.
    pub fn is_degrading(self) -> bool {
        matches!(self, Outcome::Delay | Outcome::Loss | Outcome::Police | Outcome::Freeze)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line of the censor's decision log: the first time a flow gets an outcome from a rule,
/// and every time that changes. The same type is written as JSONL by the censor, read back by
/// the harness, stored in the results and drawn by the renderers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// Run time (t=0 when the calls start).
    pub t_ms: f64,
    pub flow: Flow,
    /// The deciding rule's name (the default action's name when no rule matched).
    pub rule: String,
    pub outcome: Outcome,
    /// Classifier labels of the flow at the time.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// True when no rule matched and the default action decided.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_rule: bool,
}

impl DecisionEvent {
    /// Everything but the default action passing a flow.
    pub fn is_notable(&self) -> bool {
        !(self.default_rule && self.outcome == Outcome::Forward)
    }
}

/// What each rule did. The default action has a row too.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleCounters {
    /// Packets the rule matched (it decided their fate).
    pub packets: u64,
    pub bytes: u64,
    /// Distinct flows it matched at least once.
    pub flows: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub delayed: u64,
    /// Frames injected (RST, ICMP).
    pub injected: u64,
    /// Drops by residual blocking this rule started.
    pub residual_dropped: u64,
}

/// Engine-wide counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EngineStats {
    pub frames: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub malformed_dropped: u64,
    pub flows_created: u64,
    pub flows_evicted: u64,
    pub flows_expired: u64,
    pub hold_overflow: u64,
    pub events_lost: u64,
}

/// What one rule did to the packets of one inside address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostRuleCounters {
    pub forwarded: u64,
    pub dropped: u64,
    pub delayed: u64,
    /// Bytes of those frames (as they crossed the censor, headers included).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub bytes: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The censor's results for a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CensorReport {
    pub rules: Vec<RuleReport>,
    /// Per inside address, per rule: for naming the rule that decided each call.
    #[serde(default)]
    pub by_inside: Vec<InsideReport>,
    pub stats: EngineStats,
}

/// Per rule, what it did to one inside address's packets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InsideReport {
    pub addr: IpAddr,
    pub rules: Vec<(String, HostRuleCounters)>,
}

impl CensorReport {
    /// The rule that hit `addr`'s packets hardest; see [`deciding_rule`].
    pub fn deciding_rule(&self, addr: IpAddr) -> Option<&str> {
        deciding_rule(&self.by_inside, addr)
    }
}

/// The rule that hit `addr`'s packets hardest (most drops, then most delays), if any rule
/// other than a plain pass touched them.
pub fn deciding_rule(by_inside: &[InsideReport], addr: IpAddr) -> Option<&str> {
    let row = by_inside.iter().find(|r| r.addr == addr)?;
    row.rules
        .iter()
        .filter(|(_, c)| c.dropped + c.delayed > 0)
        .max_by_key(|(_, c)| (c.dropped, c.delayed))
        .map(|(n, _)| n.as_str())
}

/// One rule's row: its name, description, action summary and counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleReport {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub action: String,
    pub counters: RuleCounters,
}

/// I/O counters of the censor's bridge.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BridgeStats {
    pub received: [u64; 2],
    pub sent: [u64; 2],
    /// Sends the kernel refused (full buffers); those frames are lost, as on a real link.
    pub send_errors: u64,
    /// Frames longer than the receive buffer (cut short; dropped).
    pub oversize: u64,
    /// Frames the kernel dropped at the censor's packet sockets before the censor read them
    /// (receive buffer or ring full: the censor did not keep up), per direction `[up, down]`
    /// (`PACKET_STATISTICS`' `tp_drops`). Lost on the path like network loss, but the
    /// censor's doing: a call degraded by them was degraded by an overloaded censor.
    #[serde(default, skip_serializing_if = "both_zero")]
    pub kernel_drops: [u64; 2],
    /// Frames the kernel queued for the censor's packet sockets, read or dropped, per
    /// direction (`tp_packets`).
    #[serde(default, skip_serializing_if = "both_zero")]
    pub kernel_frames: [u64; 2],
    /// Times a receive ring was full and the kernel froze its queue (`tp_freeze_q_cnt`; ring
    /// path only).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ring_freezes: u64,
    /// Frames the kernel dropped from its per-CPU input backlogs while the censor ran
    /// (`/proc/net/softnet_stat`), machine-wide: every namespace's traffic counts, so this
    /// says the machine was overloaded, not that these were the censor's frames.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub backlog_drops: u64,
}

fn both_zero(v: &[u64; 2]) -> bool {
    v[0] == 0 && v[1] == 0
}

impl BridgeStats {
    /// Frames the kernel dropped at the censor's sockets, both directions.
    pub fn kernel_dropped(&self) -> u64 {
        self.kernel_drops[0] + self.kernel_drops[1]
    }

    /// Why frames may have been lost in the censor rather than on the network (a call's
    /// reason and the report show it); `None` when the kernel dropped nothing at the censor.
    pub fn overload(&self) -> Option<crate::cause::Overload> {
        let dropped = self.kernel_dropped();
        if dropped == 0 {
            return None;
        }
        let seen = self.kernel_frames[0] + self.kernel_frames[1];
        Some(crate::cause::Overload { dropped, seen })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drops_are_optional_and_make_an_overload_note() {
        let old: BridgeStats =
            serde_json::from_str(r#"{"received":[1,2],"sent":[1,2],"send_errors":0,"oversize":0}"#)
                .unwrap();
        assert_eq!(old, BridgeStats { received: [1, 2], sent: [1, 2], ..Default::default() });
        assert_eq!(old.overload(), None);
        assert!(!serde_json::to_string(&old).unwrap().contains("kernel"));
        let b = BridgeStats { kernel_frames: [600, 400], kernel_drops: [0, 5], ..old };
        assert_eq!(b.overload(), Some(crate::cause::Overload { dropped: 5, seen: 1000 }));
        let back: BridgeStats = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn an_event_round_trips_with_typed_endpoints() {
        let ev = DecisionEvent {
            t_ms: 1.5,
            flow: Flow {
                proto: Proto::UDP,
                client: Endpoint { ip: "10.1.0.2".parse().unwrap(), port: 4000 },
                server: Endpoint { ip: "fd00::2".parse().unwrap(), port: 443 },
            },
            rule: "r".into(),
            outcome: Outcome::Reject,
            labels: vec!["stun".into()],
            sni: None,
            default_rule: false,
        };
        let j = serde_json::to_string(&ev).unwrap();
        assert!(
            j.contains(r#""flow":{"proto":"udp","client":{"ip":"10.1.0.2","port":4000}"#),
            "{j}"
        );
        assert!(j.contains(r#""outcome":"reject""#), "{j}");
        assert_eq!(serde_json::from_str::<DecisionEvent>(&j).unwrap(), ev);
        assert_eq!(ev.flow.to_string(), "udp 10.1.0.2:4000 -> [fd00::2]:443");
        assert!(ev.flow.involves("fd00::2".parse().unwrap()));
    }

    #[test]
    fn protocols_and_outcomes_have_names_that_parse_back() {
        for p in [1u8, 6, 17, 47, 58] {
            assert_eq!(Proto(p).name().parse::<Proto>().unwrap(), Proto(p));
        }
        assert_eq!("foo".parse::<Proto>(), Err(UnknownProto("foo".into())));
        for o in Outcome::ALL {
            let j = serde_json::to_string(&o).unwrap();
            assert_eq!(j, format!("\"{}\"", o.as_str()));
            assert_eq!(serde_json::from_str::<Outcome>(&j).unwrap(), o);
        }
    }
}

/// A change made to the censor while it runs, through its control channel (rules switched on
/// or off, the policy swapped). Kept apart from [`DecisionEvent`]: it is about the censor, not
/// about a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum ControlChange {
    /// Rule `index` (1-based) switched on.
    RuleOn { index: usize, name: String },
    /// Rule `index` (1-based) switched off.
    RuleOff { index: usize, name: String },
    /// The whole policy replaced by the one read from `source`, which has `rules` rules.
    PolicySwap { source: String, rules: usize },
}

/// One control change, at run time `t_ms` (t=0 when the calls start).
///
/// JSON: `{"t_ms": 12000.0, "change": "rule-off", "index": 1, "name": "stun-first"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    pub t_ms: f64,
    #[serde(flatten)]
    pub change: ControlChange,
}
