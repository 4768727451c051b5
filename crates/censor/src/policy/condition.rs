//! The compiled match of a rule: a list of typed [`Condition`]s that must all hold (an empty
//! list always holds). Each condition is one variant, compiled from one key of the raw
//! `match` table (`compile.rs`) and evaluated by one arm of [`Condition::holds`]: adding a
//! condition touches the variant, its arm, and its raw key.

use std::net::IpAddr;

use callwall_wire::inspect::{FlowFacts, StunFacts};
use callwall_wire::packet::{PROTO_TCP, PROTO_UDP};
use callwall_wire::Labels;
use serde::Serialize;

use super::raw::PortList;
use super::{Cidr, ProtoMatch};
use crate::flow::{Dir, Endpoint};

/// A host-name pattern: exact, `*.suffix`, or `*substring*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NamePattern {
    Exact(String),
    Suffix(String),
    Substring(String),
}

/// Why a host-name pattern was rejected (each variant holds the pattern, lowercased).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamePatternError {
    /// Empty, or only stars.
    #[error("invalid name pattern {0:?}: write \"example.com\", \"*.example.com\" or \"*twimg*\"")]
    Empty(String),
    /// A star in the middle.
    #[error("invalid name pattern {0:?}: '*' may only start or surround a pattern")]
    MisplacedStar(String),
}

impl NamePattern {
    pub fn parse(s: &str) -> Result<Self, NamePatternError> {
        let s = s.to_ascii_lowercase();
        if s.is_empty() || s == "*" || s == "**" {
            return Err(NamePatternError::Empty(s));
        }
        if s.len() > 2 && s.starts_with('*') && s.ends_with('*') {
            Ok(NamePattern::Substring(s[1..s.len() - 1].to_string()))
        } else if let Some(rest) = s.strip_prefix('*') {
            Ok(NamePattern::Suffix(rest.to_string()))
        } else if s.contains('*') {
            Err(NamePatternError::MisplacedStar(s))
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

/// One condition of a rule's match; the raw key it comes from is named on each variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `dir`: the frame travels this way through the censor (`"any"` compiles to nothing).
    Dir(Dir),
    /// `proto` (`"any"` compiles to nothing).
    Proto(ProtoMatch),
    /// `src_port`: the packet's source port.
    SrcPort(PortList),
    /// `dst_port`: the packet's destination port.
    DstPort(PortList),
    /// `server_port`: the flow's server port.
    ServerPort(PortList),
    /// `src`: the packet's source address.
    Src(Vec<Cidr>),
    /// `dst`: the packet's destination address.
    Dst(Vec<Cidr>),
    /// `server`: the flow's server address.
    Server(Vec<Cidr>),
    /// `server_not`: the flow's server address is none of these.
    ServerNot(Vec<Cidr>),
    /// `min_payload`: transport payload at least this long.
    MinPayload(u32),
    /// `max_payload`: transport payload at most this long.
    MaxPayload(u32),
    /// `first_packets`: among the first N packets of its direction of the flow.
    FirstPackets(u32),
    /// `min_age`: the flow is at least this old (ns).
    MinAge(u64),
    /// `max_age`: the flow is at most this old (ns).
    MaxAge(u64),
    /// `min_flow_bytes`: payload bytes of both directions so far.
    MinFlowBytes(u64),
    /// `min_client_bytes`: payload bytes the client sent so far.
    MinClientBytes(u64),
    /// `min_server_bytes`: payload bytes the server sent so far.
    MinServerBytes(u64),
    /// `client_port_above_server_port`.
    ClientPortAboveServerPort(bool),
    /// `label`: the flow has any of these labels.
    Label(Labels),
    /// `first_label`: the flow's first packet has any of these labels.
    FirstLabel(Labels),
    /// `not_label`: the flow has none of these labels.
    NotLabel(Labels),
    /// `sni` (with `sni_first_packet`): the flow's server name matches one pattern.
    Sni { patterns: Vec<NamePattern>, first_packet: bool },
    /// `sni_not` (with `sni_first_packet`): the flow has a server name matching no pattern.
    SniNot { patterns: Vec<NamePattern>, first_packet: bool },
    /// `alpn`: the flow offered one of these ALPN protocols.
    Alpn(Vec<String>),
    /// `dtls_fingerprint`: lower-case fingerprint strings or 16-hex-digit hashes.
    DtlsFingerprint(Vec<String>),
    /// `tls_fingerprint`: the flow's TLS-over-TCP or QUIC ClientHello fingerprint (lower-case
    /// string or 16-hex-digit hash) is one of these.
    TlsFingerprint(Vec<String>),
    /// `stun_software`.
    StunSoftware(Vec<NamePattern>),
    /// `stun_username`.
    StunUsername(Vec<NamePattern>),
    /// `stun_realm`.
    StunRealm(Vec<NamePattern>),
}

/// What a condition looks at: one packet and its flow as they are when the chain runs (the
/// packet already counted in the flow).
pub struct Subject<'a> {
    pub now_ns: u64,
    pub dir: Dir,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub payload_len: usize,
    pub client: Endpoint,
    pub server: Endpoint,
    pub flow_start_ns: u64,
    /// The flow's packets so far in this packet's direction.
    pub packets_this_dir: u64,
    /// The flow's payload bytes so far: client to server, server to client.
    pub bytes: [u64; 2],
    /// What the classifiers learned of the flow; `None` if they never saw it (then every
    /// condition that needs them fails).
    pub facts: Option<&'a FlowFacts>,
}

fn in_any(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

fn stun_attr(facts: &FlowFacts, pats: &[NamePattern], get: fn(&StunFacts) -> Option<&str>) -> bool {
    facts.stun.as_deref().and_then(get).is_some_and(|v| pats.iter().any(|p| p.matches(v)))
}

impl Condition {
    /// True when the condition needs the classifiers' view of the flow.
    pub fn needs_inspection(&self) -> bool {
        matches!(
            self,
            Condition::Label(_)
                | Condition::FirstLabel(_)
                | Condition::NotLabel(_)
                | Condition::Sni { .. }
                | Condition::SniNot { .. }
                | Condition::Alpn(_)
                | Condition::DtlsFingerprint(_)
                | Condition::TlsFingerprint(_)
                | Condition::StunSoftware(_)
                | Condition::StunUsername(_)
                | Condition::StunRealm(_)
        )
    }

    /// Whether the condition holds for `s`.
    #[inline]
    pub fn holds(&self, s: &Subject<'_>) -> bool {
        let age = || s.now_ns.saturating_sub(s.flow_start_ns);
        match self {
            Condition::Dir(d) => s.dir == *d,
            Condition::Proto(p) => match p {
                ProtoMatch::Udp => s.proto == PROTO_UDP,
                ProtoMatch::Tcp => s.proto == PROTO_TCP,
                ProtoMatch::Icmp => s.proto == 1 || s.proto == 58,
                ProtoMatch::Any => true,
            },
            Condition::SrcPort(l) => l.contains(s.src_port),
            Condition::DstPort(l) => l.contains(s.dst_port),
            Condition::ServerPort(l) => l.contains(s.server.port),
            Condition::Src(l) => in_any(l, s.src),
            Condition::Dst(l) => in_any(l, s.dst),
            Condition::Server(l) => in_any(l, s.server.ip),
            Condition::ServerNot(l) => !in_any(l, s.server.ip),
            Condition::MinPayload(n) => s.payload_len as u64 >= u64::from(*n),
            Condition::MaxPayload(n) => s.payload_len as u64 <= u64::from(*n),
            Condition::FirstPackets(n) => s.packets_this_dir <= u64::from(*n),
            Condition::MinAge(t) => age() >= *t,
            Condition::MaxAge(t) => age() <= *t,
            Condition::MinFlowBytes(n) => s.bytes[0] + s.bytes[1] >= *n,
            Condition::MinClientBytes(n) => s.bytes[0] >= *n,
            Condition::MinServerBytes(n) => s.bytes[1] >= *n,
            Condition::ClientPortAboveServerPort(want) => (s.client.port > s.server.port) == *want,
            Condition::Label(l) => s.facts.is_some_and(|f| f.labels.intersects(*l)),
            Condition::FirstLabel(l) => {
                s.facts.is_some_and(|f| f.first_packet_labels.intersects(*l))
            }
            Condition::NotLabel(l) => s.facts.is_some_and(|f| !f.labels.intersects(*l)),
            Condition::Sni { patterns, first_packet } => s.facts.is_some_and(|f| {
                let sni = if *first_packet { &f.first_packet_sni } else { &f.sni };
                sni.as_deref().is_some_and(|name| patterns.iter().any(|p| p.matches(name)))
            }),
            Condition::SniNot { patterns, first_packet } => s.facts.is_some_and(|f| {
                let sni = if *first_packet { &f.first_packet_sni } else { &f.sni };
                sni.as_deref().is_some_and(|name| !patterns.iter().any(|p| p.matches(name)))
            }),
            Condition::Alpn(alpns) => {
                s.facts.is_some_and(|f| f.alpn.iter().any(|a| alpns.iter().any(|w| w == a)))
            }
            Condition::DtlsFingerprint(fps) => s.facts.is_some_and(|f| {
                let hash = f.dtls_fingerprint_hash.map(|h| format!("{h:016x}"));
                fps.iter().any(|w| {
                    f.dtls_fingerprint.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(w))
                        || hash.as_deref() == Some(w.as_str())
                })
            }),
            Condition::TlsFingerprint(fps) => s.facts.is_some_and(|f| {
                let hash = f.tls_fingerprint_hash.map(|h| format!("{h:016x}"));
                fps.iter().any(|w| {
                    f.tls_fingerprint.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(w))
                        || hash.as_deref() == Some(w.as_str())
                })
            }),
            Condition::StunSoftware(p) => {
                s.facts.is_some_and(|f| stun_attr(f, p, |s| s.software.as_deref()))
            }
            Condition::StunUsername(p) => {
                s.facts.is_some_and(|f| stun_attr(f, p, |s| s.username.as_deref()))
            }
            Condition::StunRealm(p) => {
                s.facts.is_some_and(|f| stun_attr(f, p, |s| s.realm.as_deref()))
            }
        }
    }
}

/// A rule's compiled match: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Match {
    /// Cheap packet and flow conditions first, then those that need the classifiers.
    pub conditions: Vec<Condition>,
}

impl Match {
    /// True when the match needs the classifiers' view of the flow.
    pub fn needs_inspection(&self) -> bool {
        self.conditions.iter().any(Condition::needs_inspection)
    }

    /// Whether every condition holds for `s`.
    #[inline]
    pub fn holds(&self, s: &Subject<'_>) -> bool {
        self.conditions.iter().all(|c| c.holds(s))
    }

    /// The first condition `pick` selects, e.g. `m.find(|c| match c { Condition::Server(l) =>
    /// Some(l), _ => None })`.
    pub fn find<'a, T>(&'a self, pick: impl FnMut(&'a Condition) -> Option<T>) -> Option<T> {
        self.conditions.iter().find_map(pick)
    }
}
