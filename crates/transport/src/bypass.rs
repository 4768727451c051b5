//! Circumvention options ("bypasses") a call's strategy can apply, as a scenario writes them:
//!
//! ```toml
//! [[calls]]
//! transport = "quic"
//! strategy = "quic-443"
//! options = { bypass = { decoy = "random", source_port = "below-server" } }
//! ```
//!
//! The contract:
//! - Every bypass is one optional key of [`Bypass`]; unset keys change nothing, so a call
//!   without `bypass` behaves exactly as before.
//! - Each transport lists, per strategy, the keys it honours ([`VoiceTransport::bypasses`]).
//!   A call that sets a key its strategy does not honour is refused before anything starts
//!   ([`check_bypass`]), with the keys that strategy does honour: a bypass is never silently
//!   ignored, so a "works" in a result always means the bypass was on the wire.
//! - The sources for each bypass (what was published about it, and against which censor) are
//!   in `docs/bypasses.md`; the per-key docs below say what goes on the wire.
//!
//! Two older options are bypasses too and stay where they were: `sni` (a domestic-looking name,
//! or `""` for none) and `printable_prefix` (against the fully-encrypted-traffic test), both on
//! [`crate::StrategyOptions`].
//!
//! [`udp`] builds what the UDP transports (`reflector`, `noise`, `quic`) put on the wire for
//! `decoy` and `source_port`.
//!
//! [`VoiceTransport::bypasses`]: crate::VoiceTransport::bypasses

pub mod udp;

use serde::{Deserialize, Serialize};

use crate::{TransportError, VoiceTransport};

/// The bypasses a call applies. See the module docs for the contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bypass {
    /// A datagram sent from the call's own UDP socket to the server's address and port before
    /// the real handshake (the "fake first datagram" that defeated the August 2025 call
    /// restriction and the GFW's QUIC SNI filter), so the flow's first packet is not the
    /// handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoy: Option<Decoy>,
    /// QUIC: spread the ClientHello over this many Initial packets (2-8), each carrying part of
    /// it in CRYPTO frames, so no single Initial holds the whole SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_split: Option<u8>,
    /// QUIC: the version on the wire. Filters that match version 1's bytes or decrypt with
    /// version 1's salt do not see other versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_version: Option<QuicVersion>,
    /// TLS: the largest TLS record plaintext for the client's first flight, so the ClientHello
    /// spans several records (TLS record splitting, which beat the 2021 TSPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_record: Option<u16>,
    /// TCP: write the client's first flight in TCP segments of at most this many bytes (TCP
    /// segmentation of the ClientHello).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_segment: Option<u16>,
    /// UDP: which source port the caller binds (the GFW's QUIC filter only inspects flows whose
    /// source port is above the destination port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<SourcePort>,
    /// UDP: move the flow to a fresh source port every this often (port hopping), so per-flow
    /// state (a first-packet verdict, a residual block) does not follow the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_hop: Option<callwall_units::Duration>,
    /// WireGuard framing (`udp-wg`): junk datagrams sent before the handshake initiation
    /// (AmneziaWG's Jc/Jmin/Jmax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junk: Option<Junk>,
    /// WireGuard framing (`udp-wg`): custom message-type values for initiation, response,
    /// cookie and data (AmneziaWG's H1-H4) instead of 1-4, so the header no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wg_headers: Option<[u32; 4]>,
    /// WireGuard framing (`udp-wg`): random bytes prepended to the initiation and the response
    /// (AmneziaWG's S1/S2), so their sizes are no longer 148 and 92.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wg_padding: Option<[u16; 2]>,
    /// DTLS: shape the ClientHello like a browser's (`"chrome"`, `"firefox"`) as far as the
    /// stack allows (cipher suites, groups, extensions); see the webrtc transport's docs for what
    /// it can and cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtls_mimic: Option<String>,
}

/// What the decoy datagram holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoy {
    /// 64 bytes from the call's seeded generator.
    Random,
    /// A well-formed DNS query (RFC 1035) for an ordinary name.
    Dns,
    /// A STUN Binding request (RFC 8489) with a FINGERPRINT: what the censor matches on, sent
    /// on purpose, to test a classifier that has learnt to look past the first packet.
    Stun,
}

/// QUIC version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuicVersion {
    /// RFC 9000 version 1 (the default).
    V1,
    /// RFC 9369 version 2 (another salt and labels).
    V2,
    /// IETF draft 29 (0xff00001d), still spoken by some stacks; another salt.
    #[serde(rename = "draft-29")]
    Draft29,
}

/// Which source port a UDP caller binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourcePort {
    /// A port below the server's port (the caller is root in its namespace, so low ports bind).
    BelowServer,
    /// A port above the server's port (what an OS's ephemeral range gives anyway).
    AboveServer,
}

/// AmneziaWG-style junk before the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Junk {
    /// How many junk datagrams (AmneziaWG's Jc), 1-128.
    pub count: u8,
    /// Smallest junk size in bytes (Jmin).
    pub min: u16,
    /// Largest junk size in bytes (Jmax), at most 1280.
    pub max: u16,
}

impl Bypass {
    /// The keys set, in declaration order (the names scenarios write).
    pub fn keys(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                k.push(name)
            }
        };
        add(self.decoy.is_some(), "decoy");
        add(self.quic_split.is_some(), "quic_split");
        add(self.quic_version.is_some(), "quic_version");
        add(self.tls_record.is_some(), "tls_record");
        add(self.tcp_segment.is_some(), "tcp_segment");
        add(self.source_port.is_some(), "source_port");
        add(self.port_hop.is_some(), "port_hop");
        add(self.junk.is_some(), "junk");
        add(self.wg_headers.is_some(), "wg_headers");
        add(self.wg_padding.is_some(), "wg_padding");
        add(self.dtls_mimic.is_some(), "dtls_mimic");
        k
    }

    /// True when no bypass is set.
    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }

    /// A short label for reports: the keys set with their values, e.g.
    /// `decoy=random source_port=below-server`.
    pub fn label(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        let Some(map) = v.as_object() else { return String::new() };
        self.keys()
            .iter()
            .filter_map(|k| map.get(*k).map(|val| (k, val)))
            .map(|(k, val)| match val {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks values that are wrong whatever the transport (ranges); the message names the key.
    pub fn validate(&self) -> Result<(), BypassError> {
        if let Some(n) = self.quic_split {
            if !(2..=8).contains(&n) {
                return Err(BypassError::QuicSplit(n));
            }
        }
        for (key, v) in [("tls_record", self.tls_record), ("tcp_segment", self.tcp_segment)] {
            if v == Some(0) {
                return Err(BypassError::ZeroSize(key));
            }
        }
        if let Some(d) = self.port_hop {
            if d.as_std() < std::time::Duration::from_millis(100) {
                return Err(BypassError::PortHop(d));
            }
        }
        if let Some(j) = self.junk {
            if j.count == 0 || j.count > 128 || j.min > j.max || j.max > 1280 {
                return Err(BypassError::Junk(j));
            }
        }
        if let Some(h) = self.wg_headers {
            let mut s = h.to_vec();
            s.sort_unstable();
            s.dedup();
            if s.len() != 4 || h.iter().any(|&v| v <= 4) {
                return Err(BypassError::WgHeaders(h));
            }
        }
        if let Some([s1, s2]) = self.wg_padding {
            if s1 > 1000 || s2 > 1000 {
                return Err(BypassError::WgPadding([s1, s2]));
            }
        }
        Ok(())
    }
}

/// A bypass value out of range, whatever the transport ([`Bypass::validate`]); the message
/// names the key and the range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BypassError {
    #[error("bypass.quic_split = {0}: use 2 to 8 Initial packets")]
    QuicSplit(u8),
    /// `tls_record` or `tcp_segment` (the key) set to 0.
    #[error("bypass.{0} = 0: use a size of at least 1 byte")]
    ZeroSize(&'static str),
    #[error("bypass.port_hop = {0}: hop at most every 100ms")]
    PortHop(callwall_units::Duration),
    #[error("bypass.junk = {{ count = {}, min = {}, max = {} }}: count 1-128, min <= max <= 1280", .0.count, .0.min, .0.max)]
    Junk(Junk),
    #[error(
        "bypass.wg_headers = {0:?}: four distinct values, each above 4 (1-4 are WireGuard's own)"
    )]
    WgHeaders([u32; 4]),
    #[error("bypass.wg_padding = [{}, {}]: at most 1000 bytes each", .0[0], .0[1])]
    WgPadding([u16; 2]),
}

/// Refuses a call whose bypass sets a key its strategy does not honour (see the module docs),
/// or a value out of range. Transports call it at the top of `dial`/`answer`; the launcher calls
/// it before anything starts.
pub fn check_bypass(
    t: &dyn VoiceTransport,
    strategy: &str,
    bypass: &Bypass,
) -> Result<(), TransportError> {
    bypass.validate().map_err(|e| TransportError::Bypass(e.to_string()))?;
    let honoured = t.bypasses(strategy);
    for key in bypass.keys() {
        if !honoured.contains(&key) {
            let offered =
                if honoured.is_empty() { "none".to_string() } else { honoured.join(", ") };
            return Err(TransportError::Bypass(format!(
                "bypass.{key} is not available with {} strategy {strategy:?} (it honours: {offered}); see docs/bypasses.md",
                t.name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_labels_them() {
        let b: Bypass = serde_json::from_str(
            r#"{"decoy":"dns","quic_split":3,"quic_version":"draft-29","source_port":"below-server",
                "port_hop":"2s","junk":{"count":4,"min":40,"max":70},"wg_headers":[5,6,7,8]}"#,
        )
        .unwrap();
        assert_eq!(b.decoy, Some(Decoy::Dns));
        assert_eq!(b.keys().len(), 7);
        assert!(
            b.label().starts_with("decoy=dns quic_split=3 quic_version=draft-29"),
            "{}",
            b.label()
        );
        b.validate().unwrap();
        assert!(Bypass::default().is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_json::from_str::<Bypass>(r#"{"decoy":"random","dcoy":1}"#).is_err());
        assert!(serde_json::from_str::<Bypass>(r#"{"decoy":"quic"}"#).is_err());
        let bad = |j: &str| serde_json::from_str::<Bypass>(j).unwrap().validate().unwrap_err();
        assert_eq!(bad(r#"{"quic_split":1}"#), BypassError::QuicSplit(1));
        assert_eq!(bad(r#"{"wg_headers":[1,2,3,4]}"#), BypassError::WgHeaders([1, 2, 3, 4]));
        assert_eq!(
            bad(r#"{"junk":{"count":3,"min":80,"max":40}}"#),
            BypassError::Junk(Junk { count: 3, min: 80, max: 40 })
        );
        assert_eq!(bad(r#"{"port_hop":"10ms"}"#), BypassError::PortHop("10ms".parse().unwrap()));
        assert_eq!(
            bad(r#"{"tls_record":0}"#).to_string(),
            "bypass.tls_record = 0: use a size of at least 1 byte"
        );
        assert_eq!(
            bad(r#"{"junk":{"count":3,"min":80,"max":40}}"#).to_string(),
            "bypass.junk = { count = 3, min = 80, max = 40 }: count 1-128, min <= max <= 1280"
        );
    }
}
