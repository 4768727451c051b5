//! What an ICE agent did during one call: the candidates it gathered, the pairs it checked and
//! the pair it nominated. A transport that runs ICE (webrtc `ice`, the strategy `auto` uses)
//! fills an [`IceReport`]; [`crate::peer::run_peer`] puts it in the peer's report.
//!
//! Times are milliseconds from the start of the transport's `dial`/`answer`. The report holds
//! only what the local agent saw: a check the censor dropped shows as a pair that sent requests
//! and got no response, a relay the censor blocked as a candidate that was never gathered
//! (with the gathering error when the stack reported one).

use serde::{Deserialize, Serialize};

/// One local candidate, or one candidate source that failed to produce one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// `host`, `srflx`, `prflx` or `relay`.
    pub kind: String,
    /// How it was obtained: `host-udp`, `host-tcp` (ICE-TCP, RFC 6544), `stun`, `turn-udp`,
    /// `turn-tcp`, `turn-tls`.
    pub via: String,
    /// `udp` or `tcp` (the candidate's own transport as ICE sees it).
    pub protocol: String,
    /// `ip:port`; empty when the source failed.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub priority: u32,
    /// When the candidate was gathered (or the source gave up).
    pub gathered_ms: Option<f64>,
    /// Why the source produced no candidate, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One candidate pair the agent checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcePair {
    /// `via` of the local candidate (see [`IceCandidate::via`]).
    pub local_via: String,
    pub local: String,
    pub remote_kind: String,
    pub remote: String,
    /// The pair's state from the agent's stats (`succeeded`, `failed`, `in-progress`, ...).
    pub state: String,
    pub nominated: bool,
    /// Connectivity checks sent and answered (RFC 8445 §7.2).
    pub requests_sent: u64,
    pub responses_received: u64,
}

/// The nominated pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceSelected {
    pub local_kind: String,
    pub local_via: String,
    pub local: String,
    pub remote_kind: Option<String>,
    pub remote: Option<String>,
    /// `udp` or `tcp`.
    pub protocol: String,
}

/// What one peer's ICE agent did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IceReport {
    /// When gathering stopped: complete, or cut short so the description could go out.
    pub gathering_ms: Option<f64>,
    /// True when gathering completed before the description was sent.
    #[serde(default)]
    pub gathering_complete: bool,
    pub candidates: Vec<IceCandidate>,
    pub pairs: Vec<IcePair>,
    pub selected: Option<IceSelected>,
    /// When the connection (ICE and DTLS) was up.
    pub connected_ms: Option<f64>,
}

impl IceReport {
    /// Per candidate source (`via`): whether it produced a candidate, and whether a pair using
    /// it succeeded. Sorted by source name.
    pub fn by_source(&self) -> Vec<(String, bool, bool)> {
        let mut vias: Vec<String> = self.candidates.iter().map(|c| c.via.clone()).collect();
        vias.sort();
        vias.dedup();
        vias.into_iter()
            .map(|v| {
                let gathered = self.candidates.iter().any(|c| c.via == v && c.error.is_none());
                let ok = self.pairs.iter().any(|p| p.local_via == v && p.state == "succeeded");
                (v, gathered, ok)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_source_and_serde() {
        let r = IceReport {
            gathering_ms: Some(1000.0),
            gathering_complete: false,
            candidates: vec![
                IceCandidate {
                    kind: "relay".into(),
                    via: "turn-tcp".into(),
                    protocol: "udp".into(),
                    address: "10.3.0.2:50000".into(),
                    priority: 1,
                    gathered_ms: Some(80.0),
                    error: None,
                },
                IceCandidate {
                    kind: "relay".into(),
                    via: "turn-udp".into(),
                    protocol: "udp".into(),
                    address: String::new(),
                    priority: 0,
                    gathered_ms: None,
                    error: Some("no allocation".into()),
                },
            ],
            pairs: vec![IcePair {
                local_via: "turn-tcp".into(),
                local: "10.3.0.2:50000".into(),
                remote_kind: "host".into(),
                remote: "10.2.0.2:4000".into(),
                state: "succeeded".into(),
                nominated: true,
                requests_sent: 2,
                responses_received: 2,
            }],
            selected: None,
            connected_ms: Some(1400.0),
        };
        assert_eq!(
            r.by_source(),
            vec![("turn-tcp".into(), true, true), ("turn-udp".into(), false, false)]
        );
        let back: IceReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
