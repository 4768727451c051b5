//! What the caller's ICE agent did in a call (webrtc `ice`, the strategy `auto` uses): the
//! nominated candidate pair and, per candidate source (`host-udp`, `host-tcp`, `stun`,
//! `turn-udp`, `turn-tcp`, `turn-tls`), whether it produced a candidate and whether a pair
//! using it succeeded. Filled from the peer's ICE report by the harness; absent for calls that
//! ran no ICE agent.

use serde::{Deserialize, Serialize};

/// The ICE summary of one call (the caller's side).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallIce {
    /// The nominated pair, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<IceChoice>,
    /// One entry per candidate source, sorted by source name.
    #[serde(default)]
    pub sources: Vec<IceSource>,
    /// Milliseconds from the start of the attempt until gathering stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gathering_ms: Option<f64>,
    /// Milliseconds from the start of the attempt until ICE and DTLS were up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_ms: Option<f64>,
}

/// The nominated candidate pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IceChoice {
    /// `host`, `srflx`, `prflx` or `relay`.
    pub local_kind: String,
    /// The local candidate's source (see [`IceSource::via`]).
    pub local_via: String,
    pub local: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// `udp` or `tcp`.
    pub protocol: String,
}

/// The outcome of one candidate source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IceSource {
    /// `host-udp`, `host-tcp` (ICE-TCP), `stun`, `turn-udp`, `turn-tcp` or `turn-tls`.
    pub via: String,
    /// It produced a candidate.
    pub gathered: bool,
    /// A pair using its candidate succeeded.
    pub succeeded: bool,
    /// Why it produced no candidate, when the stack said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl IceSource {
    /// One word for a report: `succeeded`, `gathered` (no pair succeeded) or `failed`.
    pub fn outcome(&self) -> &'static str {
        match (self.gathered, self.succeeded) {
            (_, true) => "succeeded",
            (true, false) => "gathered",
            (false, false) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_and_serde_round_trip() {
        let ice = CallIce {
            selected: Some(IceChoice {
                local_kind: "relay".into(),
                local_via: "turn-tcp".into(),
                local: "10.0.0.9:50000".into(),
                remote_kind: Some("host".into()),
                remote: Some("10.0.1.2:40000".into()),
                protocol: "udp".into(),
            }),
            sources: vec![
                IceSource { via: "host-udp".into(), gathered: true, ..Default::default() },
                IceSource { via: "turn-tcp".into(), gathered: true, succeeded: true, error: None },
                IceSource {
                    via: "turn-udp".into(),
                    error: Some("timeout".into()),
                    ..Default::default()
                },
            ],
            gathering_ms: Some(1000.0),
            connected_ms: Some(1300.0),
        };
        let outcomes: Vec<&str> = ice.sources.iter().map(IceSource::outcome).collect();
        assert_eq!(outcomes, ["gathered", "succeeded", "failed"]);
        let json = serde_json::to_string(&ice).unwrap();
        assert_eq!(serde_json::from_str::<CallIce>(&json).unwrap(), ice);
        assert_eq!(serde_json::from_str::<CallIce>("{}").unwrap(), CallIce::default());
    }
}
