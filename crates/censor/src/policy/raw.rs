//! The serde model of a policy, as written in a scenario's `[censor]` table (unknown keys
//! rejected), and the schema's named values (`"pass"`, `"up"`, `"udp"`, ...).
use std::fmt;
use std::str::FromStr;

use callwall_units::{Bytes, Duration, Percent, Rate};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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
    /// TLS-over-TCP or QUIC ClientHello fingerprint strings or 16-hex-digit hashes (the
    /// JA3/JA4-style scoring the TSPU applies from 2026).
    #[serde(default)]
    pub tls_fingerprint: Option<Vec<String>>,
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

/// The keys a table of `T` accepts, exactly as serde's derive lists them (after `rename`):
/// the list `deny_unknown_fields` checks against, so it cannot drift from the struct. For a
/// struct deserialized through `deserialize_struct` (every derived one without `flatten`);
/// empty for anything else.
pub fn keys_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    /// A deserializer that records the field list the derive hands it, then stops.
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// The keys of a rule's `match` table, from [`Match`] itself.
pub fn match_keys() -> &'static [&'static str] {
    keys_of::<Match>()
}

/// The keys of a rule's `action` table, from [`ActionTable`] itself.
pub fn action_keys() -> &'static [&'static str] {
    keys_of::<ActionTable>()
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
    /// Police each direction of each matched flow to this rate (token bucket; a packet that
    /// does not fit waits if no other packet of that direction waits, else is dropped).
    #[serde(default)]
    pub police: Option<Rate>,
    /// Token bucket depth for `police` (default: 100 ms of the rate, at least 6000 B; see
    /// [`crate::policy::default_burst`]).
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
                f.write_str(
                    "\"pass\", \"drop\", \"reject\" or a table such as { police = \"128kbit\" }",
                )
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

/// A port or port range that is not `"443"` or `"596-599"` within 0-65535, low to high.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {0:?}: write \"443\" or \"596-599\" (0-65535)")]
pub struct BadPort(pub String);

fn parse_range(s: &str) -> Result<(u16, u16), BadPort> {
    let bad = || BadPort(s.to_string());
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
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
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

/// `"pass"`, `"drop"` or `"reject"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NamedAction {
    Pass,
    Drop,
    Reject,
}

impl NamedAction {
    pub(super) fn into_table(self) -> ActionTable {
        match self {
            NamedAction::Pass => ActionTable::default(),
            NamedAction::Drop => ActionTable { drop: true, ..Default::default() },
            NamedAction::Reject => ActionTable { reject: true, ..Default::default() },
        }
    }
}

/// An action name that is none of `pass`, `drop` or `reject`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}: use \"pass\", \"drop\", \"reject\" or a table such as {{ police = \"128kbit\", loss = \"5%\" }}")]
pub struct UnknownAction(pub String);

impl FromStr for NamedAction {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, UnknownAction> {
        match s {
            "pass" => Ok(NamedAction::Pass),
            "drop" => Ok(NamedAction::Drop),
            "reject" => Ok(NamedAction::Reject),
            _ => Err(UnknownAction(s.to_string())),
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
