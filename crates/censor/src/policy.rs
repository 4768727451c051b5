//! The censor policy: what a scenario file says (the `raw` serde model, which rejects unknown
//! keys) and the validated, compiled form the engine runs.
//!
//! A policy is an ordered list of rules; for each packet the first rule whose match holds and
//! which is active at that moment decides the action (turmoil-style rule chain). Packets no rule
//! matches get the policy's default action.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use callwall_units::{Bytes, Duration, Percent, Rate};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The serde model of a policy, as written in a scenario's `[censor]` table.
pub mod raw {
    use super::*;

    /// `[censor]`.
    #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct Policy {
        /// What happens to packets no rule matches: `"pass"` (default) or `"drop"`.
        #[serde(default)]
        pub default: Option<NamedAction>,
        /// What happens to frames that fail to parse: `"forward"` (default) or `"drop"`.
        #[serde(default)]
        pub malformed: Option<MalformedPolicy>,
        /// Flow table capacity (default 65536). The oldest idle flows are evicted past it.
        #[serde(default)]
        pub max_flows: Option<usize>,
        /// How many packets per direction of a flow the classifiers look at (default 16; 0
        /// turns classification off, which no rule that needs it allows).
        #[serde(default)]
        pub inspect_packets: Option<u32>,
        /// A flow unseen for this long is forgotten (default 60s, as the GFW's QUIC tracking).
        #[serde(default)]
        pub flow_timeout: Option<Duration>,
        #[serde(default)]
        pub rules: Vec<Rule>,
    }

    /// `[[censor.rules]]`.
    #[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct Rule {
        /// Unique, shown in reports as the rule responsible.
        pub name: String,
        /// A sentence for reports: what this rule models.
        #[serde(default)]
        pub description: Option<String>,
        /// The rule only acts within this window of run time (t=0 when the calls start).
        #[serde(default)]
        pub active: Option<Window>,
        #[serde(default, rename = "match")]
        pub matches: Match,
        pub action: Action,
    }

    #[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct Window {
        #[serde(default)]
        pub from: Option<Duration>,
        #[serde(default)]
        pub until: Option<Duration>,
    }

    /// All conditions must hold (an absent condition always holds).
    #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct Match {
        /// `"up"` (inside to outside, client side first), `"down"`, or `"any"`.
        #[serde(default)]
        pub dir: Option<DirMatch>,
        /// `"udp"`, `"tcp"`, `"icmp"` or `"any"`.
        #[serde(default)]
        pub proto: Option<ProtoMatch>,
        /// Packet source / destination port: `"3478"`, `"596-599"`, or a list of those.
        #[serde(default)]
        pub src_port: Option<PortList>,
        #[serde(default)]
        pub dst_port: Option<PortList>,
        /// The port of the flow's server (the side that did not send the first packet).
        #[serde(default)]
        pub server_port: Option<PortList>,
        /// Packet source / destination: CIDRs or host names of the topology.
        #[serde(default)]
        pub src: Option<Vec<String>>,
        #[serde(default)]
        pub dst: Option<Vec<String>>,
        /// The flow's server address: CIDRs or host names.
        #[serde(default)]
        pub server: Option<Vec<String>>,
        /// Negation of `server`: the flow's server is NOT in these (whitelists).
        #[serde(default)]
        pub server_not: Option<Vec<String>>,
        /// Transport payload length bounds, inclusive.
        #[serde(default)]
        pub min_payload: Option<u32>,
        #[serde(default)]
        pub max_payload: Option<u32>,
        /// Only the first N packets of the flow in this packet's direction.
        #[serde(default)]
        pub first_packets: Option<u32>,
        /// Flow age bounds.
        #[serde(default)]
        pub min_age: Option<Duration>,
        #[serde(default)]
        pub max_age: Option<Duration>,
        /// Flow bytes so far (both directions) at least this.
        #[serde(default)]
        pub min_flow_bytes: Option<Bytes>,
        /// Transport payload bytes the client has sent so far (this packet included) at least this.
        #[serde(default)]
        pub min_client_bytes: Option<Bytes>,
        /// Transport payload bytes the server has sent so far (this packet included) at least this.
        #[serde(default)]
        pub min_server_bytes: Option<Bytes>,
        /// The flow's client port is greater than its server port (the GFW's QUIC filter).
        #[serde(default)]
        pub client_port_above_server_port: Option<bool>,
        /// Classifier labels of the flow seen so far (any of them), e.g. `["stun", "dtls"]`.
        #[serde(default)]
        pub label: Option<Vec<String>>,
        /// Labels of the flow's very first packet (any of them): once the first packet is not
        /// recognised, the flow never matches (TSPU and GFW first-packet semantics).
        #[serde(default)]
        pub first_label: Option<Vec<String>>,
        /// The flow's labels include none of these.
        #[serde(default)]
        pub not_label: Option<Vec<String>>,
        /// Server name patterns: `"example.com"` exact, `"*.example.com"` suffix,
        /// `"*twimg*"` substring.
        #[serde(default)]
        pub sni: Option<Vec<String>>,
        /// The flow has an SNI that matches none of these (whitelists).
        #[serde(default)]
        pub sni_not: Option<Vec<String>>,
        /// `sni`/`sni_not` read the server name from the first client packet only, as the
        /// 2021 TSPU did (a ClientHello split over TLS records, TCP segments or QUIC Initials
        /// then has no SNI and never matches `sni`). Default false: reassembled.
        #[serde(default)]
        pub sni_first_packet: Option<bool>,
        #[serde(default)]
        pub alpn: Option<Vec<String>>,
        /// DTLS ClientHello fingerprint strings or 16-hex-digit hashes.
        #[serde(default)]
        pub dtls_fingerprint: Option<Vec<String>>,
        /// STUN SOFTWARE attribute patterns (same syntax as `sni`).
        #[serde(default)]
        pub stun_software: Option<Vec<String>>,
        /// STUN USERNAME attribute patterns (same syntax as `sni`).
        #[serde(default)]
        pub stun_username: Option<Vec<String>>,
        /// STUN REALM attribute patterns (same syntax as `sni`).
        #[serde(default)]
        pub stun_realm: Option<Vec<String>>,
    }

    /// An action: a name (`"pass"`, `"drop"`, `"reject"`) or a table of effects.
    #[derive(Debug, Clone, Default, Serialize, PartialEq)]
    pub struct Action(pub ActionTable);

    #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct ActionTable {
        /// Drop every matched packet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub drop: bool,
        /// Drop and inject TCP RST both ways, or ICMP port unreachable for UDP.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub reject: bool,
        /// Police each direction of each matched flow to this rate (token bucket; excess dropped).
        #[serde(default)]
        pub police: Option<Rate>,
        /// Token bucket depth for `police` (default 1500B: no burst, like TSPU).
        #[serde(default)]
        pub burst: Option<Bytes>,
        /// Random independent loss.
        #[serde(default)]
        pub loss: Option<Percent>,
        /// Bursty loss (Gilbert-Elliott).
        #[serde(default)]
        pub burst_loss: Option<GilbertElliott>,
        /// Hold each matched packet this long...
        #[serde(default)]
        pub delay: Option<Duration>,
        /// ...plus a uniform random extra in [0, jitter).
        #[serde(default)]
        pub jitter: Option<Duration>,
        /// Drop the flow's packets once the flow is this old.
        #[serde(default)]
        pub cut_after: Option<Duration>,
        /// Drop packets in `freeze_dir` once that direction has carried this many bytes (no RST).
        #[serde(default)]
        pub freeze_after: Option<Bytes>,
        /// `"down"` (server to client, default) or `"up"` or `"any"`.
        #[serde(default)]
        pub freeze_dir: Option<DirMatch>,
        /// Decide once per flow: with this probability the flow is blocked (all its packets
        /// dropped); otherwise the rest of this action applies.
        #[serde(default)]
        pub block_probability: Option<Percent>,
        /// After a block (by `drop`, `reject` or `block_probability`), drop client-to-server
        /// packets on the (client IP, server IP, server port) 3-tuple for this long.
        #[serde(default)]
        pub residual: Option<Duration>,
    }

    #[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct GilbertElliott {
        /// Probability of moving from the good to the bad state, per step. The chain of each
        /// flow direction steps once per packet and once per 20 ms of silence before it, so a
        /// burst lasts as long in time for a sparse flow as for a voice stream.
        pub p: Percent,
        /// Probability of moving from the bad to the good state, per step.
        pub r: Percent,
        /// Loss in the bad state (default 100%).
        #[serde(default)]
        pub loss_bad: Option<Percent>,
        /// Loss in the good state (default 0%).
        #[serde(default)]
        pub loss_good: Option<Percent>,
    }

    impl<'de> Deserialize<'de> for Action {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Action;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("\"pass\", \"drop\", \"reject\" or a table such as { police = \"128kbit\" }")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Action, E> {
                    let n: NamedAction = s.parse().map_err(E::custom)?;
                    Ok(Action(n.into_table()))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Action, A::Error> {
                    ActionTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(Action)
                }
            }
            d.deserialize_any(V)
        }
    }

    /// A port set: `"443"`, `"596-599"`, or a list of those. Serializes as a list of strings.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PortList(pub Vec<(u16, u16)>);

    impl Serialize for PortList {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            }))
        }
    }

    impl PortList {
        pub fn contains(&self, port: u16) -> bool {
            self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
        }
    }

    fn parse_range(s: &str) -> Result<(u16, u16), String> {
        let bad = || format!("invalid port {s:?}: write \"443\" or \"596-599\" (0-65535)");
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
        Ok((lo, hi))
    }

    impl<'de> Deserialize<'de> for PortList {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = PortList;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a port \"443\", a range \"596-599\", or a list of those")
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortList, E> {
                    let p = u16::try_from(v)
                        .map_err(|_| E::custom(format!("port {v} out of range 0-65535")))?;
                    Ok(PortList(vec![(p, p)]))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortList, E> {
                    let p = u16::try_from(v)
                        .map_err(|_| E::custom(format!("port {v} out of range 0-65535")))?;
                    Ok(PortList(vec![(p, p)]))
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<PortList, E> {
                    Ok(PortList(vec![parse_range(s).map_err(E::custom)?]))
                }
                fn visit_seq<A: de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<PortList, A::Error> {
                    let mut out = Vec::new();
                    while let Some(item) = seq.next_element::<PortItem>()? {
                        out.push(item.0);
                    }
                    if out.is_empty() {
                        return Err(de::Error::custom("empty port list"));
                    }
                    Ok(PortList(out))
                }
            }
            d.deserialize_any(V)
        }
    }

    struct PortItem((u16, u16));
    impl<'de> Deserialize<'de> for PortItem {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let list = PortList::deserialize(d)?;
            Ok(PortItem(list.0[0]))
        }
    }
}

/// `"pass"`, `"drop"` or `"reject"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NamedAction {
    Pass,
    Drop,
    Reject,
}

impl NamedAction {
    fn into_table(self) -> raw::ActionTable {
        match self {
            NamedAction::Pass => raw::ActionTable::default(),
            NamedAction::Drop => raw::ActionTable { drop: true, ..Default::default() },
            NamedAction::Reject => raw::ActionTable { reject: true, ..Default::default() },
        }
    }
}

impl FromStr for NamedAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pass" => Ok(NamedAction::Pass),
            "drop" => Ok(NamedAction::Drop),
            "reject" => Ok(NamedAction::Reject),
            _ => Err(format!(
                "unknown action {s:?}: use \"pass\", \"drop\", \"reject\" or a table such as {{ police = \"128kbit\", loss = \"5%\" }}"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for NamedAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MalformedPolicy {
    #[default]
    Forward,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirMatch {
    Up,
    Down,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoMatch {
    Udp,
    Tcp,
    Icmp,
    Any,
}

/// An IPv4 or IPv6 prefix. Serializes as its string form, `"10.3.0.0/24"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid address {s:?}: write an IP (\"10.3.0.2\") or a CIDR (\"10.3.0.0/24\", \"fd00:3::/64\")")
        };
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad());
        }
        Ok(Cidr { addr, len })
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A host-name pattern: exact, `*.suffix`, or `*substring*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NamePattern {
    Exact(String),
    Suffix(String),
    Substring(String),
}

impl NamePattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase();
        if s.is_empty() || s == "*" || s == "**" {
            return Err(format!("invalid name pattern {s:?}: write \"example.com\", \"*.example.com\" or \"*twimg*\""));
        }
        if s.len() > 2 && s.starts_with('*') && s.ends_with('*') {
            Ok(NamePattern::Substring(s[1..s.len() - 1].to_string()))
        } else if let Some(rest) = s.strip_prefix('*') {
            Ok(NamePattern::Suffix(rest.to_string()))
        } else if s.contains('*') {
            Err(format!("invalid name pattern {s:?}: '*' may only start or surround a pattern"))
        } else {
            Ok(NamePattern::Exact(s))
        }
    }

    /// Case-insensitive match.
    pub fn matches(&self, name: &str) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        match self {
            NamePattern::Exact(p) => eq(p, name),
            NamePattern::Suffix(p) => {
                name.len() >= p.len() && eq(&name[name.len() - p.len()..], p)
                    // "*.example.com" also covers "example.com" itself.
                    || p.strip_prefix('.').is_some_and(|bare| eq(bare, name))
            }
            NamePattern::Substring(p) => name.to_ascii_lowercase().contains(p.as_str()),
        }
    }
}

/// Why a policy failed validation. `path` names the key, e.g. `rules[2] "qos".match.server`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    pub rule_index: Option<usize>,
    pub path: String,
    pub message: String,
}

/// A compiled rule chain, ready for the engine.
#[derive(Debug, Clone)]
pub struct Policy {
    pub default: Action,
    pub default_name: &'static str,
    pub malformed: MalformedPolicy,
    pub max_flows: usize,
    pub inspect_packets: u32,
    pub flow_timeout_ns: u64,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    pub active_from_ns: u64,
    pub active_until_ns: u64,
    pub m: Match,
    pub action: Action,
}

#[derive(Debug, Clone, Default)]
pub struct Match {
    pub dir: Option<DirMatch>,
    pub proto: Option<ProtoMatch>,
    pub src_port: Option<raw::PortList>,
    pub dst_port: Option<raw::PortList>,
    pub server_port: Option<raw::PortList>,
    pub src: Option<Vec<Cidr>>,
    pub dst: Option<Vec<Cidr>>,
    pub server: Option<Vec<Cidr>>,
    pub server_not: Option<Vec<Cidr>>,
    pub min_payload: Option<u32>,
    pub max_payload: Option<u32>,
    pub first_packets: Option<u32>,
    pub min_age_ns: Option<u64>,
    pub max_age_ns: Option<u64>,
    pub min_flow_bytes: Option<u64>,
    pub min_client_bytes: Option<u64>,
    pub min_server_bytes: Option<u64>,
    pub client_port_above_server_port: Option<bool>,
    pub label: Option<callwall_wire::Labels>,
    pub first_label: Option<callwall_wire::Labels>,
    pub not_label: Option<callwall_wire::Labels>,
    pub sni: Option<Vec<NamePattern>>,
    pub sni_not: Option<Vec<NamePattern>>,
    /// `sni`/`sni_not` see only the SNI of the first client packet.
    pub sni_first_packet: bool,
    pub alpn: Option<Vec<String>>,
    pub dtls_fingerprint: Option<Vec<String>>,
    pub stun_software: Option<Vec<NamePattern>>,
    pub stun_username: Option<Vec<NamePattern>>,
    pub stun_realm: Option<Vec<NamePattern>>,
}

impl Match {
    /// True when the match needs the classifiers' view of the flow.
    pub fn needs_inspection(&self) -> bool {
        self.label.is_some()
            || self.first_label.is_some()
            || self.not_label.is_some()
            || self.sni.is_some()
            || self.sni_not.is_some()
            || self.alpn.is_some()
            || self.dtls_fingerprint.is_some()
            || self.stun_software.is_some()
            || self.stun_username.is_some()
            || self.stun_realm.is_some()
    }
}

/// A compiled action. Effects apply in a fixed order, documented on [`crate::engine`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Action {
    pub drop: bool,
    pub reject: bool,
    /// (bytes per second, bucket depth in bytes)
    pub police: Option<(u64, u64)>,
    pub loss: Option<f64>,
    pub burst_loss: Option<GeParams>,
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub cut_after_ns: Option<u64>,
    pub freeze_after: Option<(u64, DirMatch)>,
    pub block_probability: Option<f64>,
    pub residual_ns: Option<u64>,
}

impl Action {
    /// True if the action never changes a packet (plain pass).
    pub fn is_pass(&self) -> bool {
        *self == Action::default()
    }

    /// A one-line summary for reports, e.g. `police 128kbit + loss 5%`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.block_probability {
            parts.push(format!("block {:.0}% of flows", p * 100.0));
        }
        if self.drop {
            parts.push("drop".into());
        }
        if self.reject {
            parts.push("reject".into());
        }
        if let Some(t) = self.cut_after_ns {
            parts.push(format!(
                "cut after {}",
                Duration::from_std(std::time::Duration::from_nanos(t))
            ));
        }
        if let Some((n, d)) = self.freeze_after {
            parts.push(format!("freeze {d:?} after {}", Bytes::new(n)).to_lowercase());
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {}%", l * 100.0));
        }
        if let Some(ge) = self.burst_loss {
            parts.push(format!("burst loss p={}% r={}%", ge.p * 100.0, ge.r * 100.0));
        }
        if let Some((bps, _)) = self.police {
            parts.push(format!("police {}", Rate::from_bits_per_sec(bps * 8)));
        }
        if self.delay_ns > 0 || self.jitter_ns > 0 {
            parts.push(format!(
                "delay {} jitter {}",
                Duration::from_std(std::time::Duration::from_nanos(self.delay_ns)),
                Duration::from_std(std::time::Duration::from_nanos(self.jitter_ns))
            ));
        }
        if let Some(r) = self.residual_ns {
            parts.push(format!(
                "residual {}",
                Duration::from_std(std::time::Duration::from_nanos(r))
            ));
        }
        if parts.is_empty() {
            "pass".into()
        } else {
            parts.join(" + ")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeParams {
    pub p: f64,
    pub r: f64,
    pub loss_bad: f64,
    pub loss_good: f64,
}

/// Resolves a host name of the topology to the prefixes it covers (its addresses, and the
/// per-call address range the harness uses on it).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<Vec<Cidr>>;

fn is_valid_rule_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Policy {
    /// Validates a raw policy. `resolve` turns host names into addresses.
    pub fn compile(raw: &raw::Policy, resolve: Resolver<'_>) -> Result<Policy, PolicyError> {
        let top = |path: &str, message: String| PolicyError {
            rule_index: None,
            path: path.into(),
            message,
        };
        let default = raw.default.unwrap_or(NamedAction::Pass);
        if default == NamedAction::Reject {
            return Err(top("default", "the default action can be \"pass\" or \"drop\"".into()));
        }
        let max_flows = raw.max_flows.unwrap_or(65_536);
        if !(16..=4_000_000).contains(&max_flows) {
            return Err(top(
                "max_flows",
                format!("{max_flows} is out of range: use 16 to 4000000"),
            ));
        }
        let inspect_packets = raw.inspect_packets.unwrap_or(16);
        if inspect_packets > 1000 {
            return Err(top(
                "inspect_packets",
                format!("{inspect_packets} is out of range: use 0 to 1000"),
            ));
        }
        let flow_timeout = raw.flow_timeout.unwrap_or(Duration::from_secs(60));
        if flow_timeout == Duration::ZERO {
            return Err(top("flow_timeout", "must be longer than 0s".into()));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let err = |key: &str, message: String| PolicyError {
                rule_index: Some(i),
                path: format!("rules[{i}] {:?}.{key}", r.name),
                message,
            };
            if !is_valid_rule_name(&r.name) {
                return Err(err("name", "use 1-64 letters, digits, '-', '_' or '.'".into()));
            }
            if raw.rules[..i].iter().any(|o| o.name == r.name) {
                return Err(err(
                    "name",
                    "another rule has this name; rule names must be unique".into(),
                ));
            }
            let (from, until) = match r.active {
                None => (0, u64::MAX),
                Some(w) => {
                    let from = w.from.map_or(0, |d| d.as_nanos());
                    let until = w.until.map_or(u64::MAX, |d| d.as_nanos());
                    if from >= until {
                        return Err(err("active", "`from` must be before `until`".into()));
                    }
                    (from, until)
                }
            };
            let m = compile_match(&r.matches, resolve)
                .map_err(|(k, m)| err(&format!("match.{k}"), m))?;
            if inspect_packets == 0 && m.needs_inspection() {
                return Err(err(
                    "match",
                    "needs the classifiers, but inspect_packets = 0 turns them off: raise it"
                        .into(),
                ));
            }
            let action =
                compile_action(&r.action.0).map_err(|(k, m)| err(&format!("action.{k}"), m))?;
            rules.push(Rule {
                name: r.name.clone(),
                description: r.description.clone(),
                active_from_ns: from,
                active_until_ns: until,
                m,
                action,
            });
        }
        Ok(Policy {
            default: default.into_table_compiled(),
            default_name: if default == NamedAction::Drop {
                "default-drop"
            } else {
                "default-pass"
            },
            malformed: raw.malformed.unwrap_or_default(),
            max_flows,
            inspect_packets,
            flow_timeout_ns: flow_timeout.as_nanos(),
            rules,
        })
    }

    /// True when some rule needs the classifiers.
    pub fn needs_inspection(&self) -> bool {
        self.rules.iter().any(|r| r.m.needs_inspection())
    }
}

impl NamedAction {
    fn into_table_compiled(self) -> Action {
        // The named actions have no parameters, so compiling cannot fail.
        compile_action(&self.into_table()).unwrap_or_default()
    }
}

type KeyErr = (String, String);

fn compile_addrs(
    key: &str,
    list: &Option<Vec<String>>,
    resolve: Resolver<'_>,
) -> Result<Option<Vec<Cidr>>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one address".into()));
    }
    let mut out = Vec::new();
    for item in list {
        if item.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && !item.contains(':') {
            match resolve(item) {
                Some(cidrs) if !cidrs.is_empty() => out.extend(cidrs),
                _ => {
                    return Err((
                        key.into(),
                        format!(
                            "unknown host {item:?}; name a host of the topology or write a CIDR"
                        ),
                    ))
                }
            }
        } else {
            out.push(item.parse::<Cidr>().map_err(|m| (key.to_string(), m))?);
        }
    }
    Ok(Some(out))
}

fn compile_labels(
    key: &str,
    list: &Option<Vec<String>>,
) -> Result<Option<callwall_wire::Labels>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one label".into()));
    }
    let mut set = callwall_wire::Labels::EMPTY;
    for name in list {
        let label: callwall_wire::Label = name
            .parse()
            .map_err(|e: callwall_wire::label::UnknownLabel| (key.to_string(), e.to_string()))?;
        set.insert(label);
    }
    Ok(Some(set))
}

fn compile_names(
    key: &str,
    list: &Option<Vec<String>>,
) -> Result<Option<Vec<NamePattern>>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one pattern".into()));
    }
    list.iter()
        .map(|s| NamePattern::parse(s).map_err(|m| (key.to_string(), m)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn compile_match(m: &raw::Match, resolve: Resolver<'_>) -> Result<Match, KeyErr> {
    if let (Some(lo), Some(hi)) = (m.min_payload, m.max_payload) {
        if lo > hi {
            return Err(("min_payload".into(), format!("{lo} is above max_payload {hi}")));
        }
    }
    if m.sni_first_packet.is_some() && m.sni.is_none() && m.sni_not.is_none() {
        return Err((
            "sni_first_packet".into(),
            "only applies to sni or sni_not: add one, or remove sni_first_packet".into(),
        ));
    }
    if m.first_packets == Some(0) {
        return Err(("first_packets".into(), "must be at least 1".into()));
    }
    if let (Some(lo), Some(hi)) = (m.min_age, m.max_age) {
        if lo > hi {
            return Err(("min_age".into(), "is above max_age".into()));
        }
    }
    let lower = |v: &Option<Vec<String>>| {
        v.as_ref().map(|l| l.iter().map(|s| s.to_ascii_lowercase()).collect())
    };
    Ok(Match {
        dir: m.dir,
        proto: m.proto,
        src_port: m.src_port.clone(),
        dst_port: m.dst_port.clone(),
        server_port: m.server_port.clone(),
        src: compile_addrs("src", &m.src, resolve)?,
        dst: compile_addrs("dst", &m.dst, resolve)?,
        server: compile_addrs("server", &m.server, resolve)?,
        server_not: compile_addrs("server_not", &m.server_not, resolve)?,
        min_payload: m.min_payload,
        max_payload: m.max_payload,
        first_packets: m.first_packets,
        min_age_ns: m.min_age.map(Duration::as_nanos),
        max_age_ns: m.max_age.map(Duration::as_nanos),
        min_flow_bytes: m.min_flow_bytes.map(Bytes::get),
        min_client_bytes: m.min_client_bytes.map(Bytes::get),
        min_server_bytes: m.min_server_bytes.map(Bytes::get),
        client_port_above_server_port: m.client_port_above_server_port,
        label: compile_labels("label", &m.label)?,
        first_label: compile_labels("first_label", &m.first_label)?,
        not_label: compile_labels("not_label", &m.not_label)?,
        sni: compile_names("sni", &m.sni)?,
        sni_not: compile_names("sni_not", &m.sni_not)?,
        sni_first_packet: m.sni_first_packet.unwrap_or(false),
        alpn: m.alpn.clone(),
        dtls_fingerprint: lower(&m.dtls_fingerprint),
        stun_software: compile_names("stun_software", &m.stun_software)?,
        stun_username: compile_names("stun_username", &m.stun_username)?,
        stun_realm: compile_names("stun_realm", &m.stun_realm)?,
    })
}

fn compile_action(a: &raw::ActionTable) -> Result<Action, KeyErr> {
    let e = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
    let blocks = a.drop || a.reject;
    let shapes = a.police.is_some()
        || a.loss.is_some()
        || a.burst_loss.is_some()
        || a.delay.is_some()
        || a.jitter.is_some()
        || a.cut_after.is_some()
        || a.freeze_after.is_some();
    if a.drop && a.reject {
        return e("reject", "choose one of drop and reject");
    }
    if blocks && shapes {
        return e(if a.drop { "drop" } else { "reject" }, "a blocking action drops every packet, so shaping effects with it would never apply; use block_probability to block only some flows");
    }
    if blocks && a.block_probability.is_some() {
        return e(
            "block_probability",
            "already blocking every flow with drop/reject; remove one of them",
        );
    }
    if a.residual.is_some() && !blocks && a.block_probability.is_none() {
        return e(
            "residual",
            "residual blocking follows a block: add drop, reject or block_probability",
        );
    }
    if a.burst.is_some() && a.police.is_none() {
        return e("burst", "burst is the depth of the police token bucket: add police");
    }
    if a.freeze_dir.is_some() && a.freeze_after.is_none() {
        return e("freeze_dir", "freeze_dir needs freeze_after");
    }
    if a.loss.is_some() && a.burst_loss.is_some() {
        return e("loss", "choose one of loss and burst_loss");
    }
    let police = a.police.map(|r| {
        let depth = a.burst.map_or(1500, |b| b.get().max(1));
        (r.bytes_per_sec().max(1), depth)
    });
    let burst_loss = a.burst_loss.map(|g| GeParams {
        p: g.p.as_fraction(),
        r: g.r.as_fraction(),
        loss_bad: g.loss_bad.map_or(1.0, Percent::as_fraction),
        loss_good: g.loss_good.map_or(0.0, Percent::as_fraction),
    });
    Ok(Action {
        drop: a.drop,
        reject: a.reject,
        police,
        loss: a.loss.map(Percent::as_fraction),
        burst_loss,
        delay_ns: a.delay.map_or(0, Duration::as_nanos),
        jitter_ns: a.jitter.map_or(0, Duration::as_nanos),
        cut_after_ns: a.cut_after.map(Duration::as_nanos),
        freeze_after: a.freeze_after.map(|b| (b.get(), a.freeze_dir.unwrap_or(DirMatch::Down))),
        block_probability: a.block_probability.map(Percent::as_fraction),
        residual_ns: a.residual.map(Duration::as_nanos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, String> {
        let raw: raw::Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        let resolve = |name: &str| (name == "relay").then(|| vec!["10.3.0.2".parse().unwrap()]);
        Policy::compile(&raw, &resolve).map_err(|e| e.to_string())
    }

    #[test]
    fn compiles_a_chain() {
        let p = parse(
            r#"
            default = "pass"
            [[rules]]
            name = "throttle"
            match = { proto = "udp", dst_port = ["596-599", "1400"], server = ["relay", "10.9.0.0/16"] }
            action = { police = "64kbit", loss = "10%" }
            [[rules]]
            name = "drop-rest"
            active = { from = "5s" }
            action = "drop"
            "#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2);
        let m = &p.rules[0].m;
        assert!(m.dst_port.as_ref().unwrap().contains(598));
        assert!(!m.dst_port.as_ref().unwrap().contains(600));
        assert!(m.server.as_ref().unwrap()[0].contains("10.3.0.2".parse().unwrap()));
        assert_eq!(p.rules[0].action.police, Some((8000, 1500)));
        assert_eq!(p.rules[0].action.summary(), "loss 10% + police 64kbit");
        assert_eq!(p.rules[1].active_from_ns, 5_000_000_000);
        assert!(p.rules[1].action.drop);
    }

    #[test]
    fn rejects_bad_policies_naming_the_key() {
        let cases = [
            (
                r#"[[rules]]
name = "x"
match = { bogus = 1 }
action = "drop""#,
                "unknown field `bogus`",
            ),
            (
                r#"[[rules]]
name = "x"
action = "explode""#,
                "unknown action",
            ),
            (
                r#"[[rules]]
name = "x"
action = { drop = true, police = "1kbit" }"#,
                "action.drop",
            ),
            (
                r#"[[rules]]
name = "x"
match = { server = ["nowhere"] }
action = "drop""#,
                "unknown host \"nowhere\"",
            ),
            (
                r#"[[rules]]
name = "x"
match = { dst_port = "70000" }
action = "drop""#,
                "invalid port",
            ),
            (
                r#"[[rules]]
name = "x"
action = { police = "fast" }"#,
                "invalid rate",
            ),
            (
                r#"[[rules]]
name = "a"
action = "drop"
[[rules]]
name = "a"
action = "pass""#,
                "unique",
            ),
            (
                r#"[[rules]]
name = "x"
action = { residual = "10s" }"#,
                "residual",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}\n=> {err}\nwanted {want}");
        }
    }

    #[test]
    fn raw_policies_round_trip_through_json() {
        // The harness hands the raw policy to the censor process as JSON.
        let text = r#"
            [[rules]]
            name = "a"
            match = { dst_port = ["596-599", "1400"], server_port = 443, sni = ["*.x"] }
            action = { police = "64kbit", loss = "10%", delay = "5ms" }
            [[rules]]
            name = "b"
            action = "reject"
        "#;
        let raw: raw::Policy = toml::from_str(text).unwrap();
        let json = serde_json::to_string(&raw).unwrap();
        let back: raw::Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(raw, back, "{json}");
    }

    #[test]
    fn name_patterns() {
        let p = NamePattern::parse("*.googlevideo.com").unwrap();
        assert!(p.matches("rr1.googlevideo.com"));
        assert!(p.matches("googlevideo.com"));
        assert!(!p.matches("googlevideo.com.evil"));
        assert!(NamePattern::parse("*twimg*").unwrap().matches("pbs.TWIMG.com"));
        assert!(NamePattern::parse("t.co").unwrap().matches("T.CO"));
        assert!(NamePattern::parse("a*b").is_err());
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.3.0.0/24".parse().unwrap();
        assert!(c.contains("10.3.0.200".parse().unwrap()));
        assert!(!c.contains("10.4.0.1".parse().unwrap()));
        let c6: Cidr = "fd00:3::/64".parse().unwrap();
        assert!(c6.contains("fd00:3::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("10.1.1.1".parse().unwrap()));
    }
}
