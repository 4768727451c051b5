//! Flow identity: an endpoint, a direction-independent 5-tuple key, and the direction a frame
//! travels through the censor.
//!
//! Directions: [`Dir`] (up/down through the censor) is the one direction of the censor, its
//! policy (`dir`, `freeze_dir`: `"any"` is `None`) and its bridge. Within a flow the engine
//! and the classifiers use the flow-relative direction (client to server or back:
//! [`callwall_wire::inspect::Dir`], index 0/1 of per-flow arrays); that is a different fact
//! (who spoke first), not another spelling of this one.

pub use callwall_results::censor::Endpoint;
use serde::Serialize;

/// The direction a frame travels through the censor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From the inside (censored, client) network to the outside.
    Up,
    /// From the outside to the inside.
    Down,
}

impl Dir {
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
}

/// A flow's key: the protocol and both endpoints in a canonical order, so that both
/// directions of a flow find the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: u8,
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl FlowKey {
    pub fn new(proto: u8, a: Endpoint, b: Endpoint) -> FlowKey {
        if a <= b {
            FlowKey { proto, lo: a, hi: b }
        } else {
            FlowKey { proto, lo: b, hi: a }
        }
    }
}

/// `udp`, `tcp`, `icmp` or `ipN`.
pub fn proto_name(proto: u8) -> String {
    match proto {
        17 => "udp".into(),
        6 => "tcp".into(),
        1 | 58 => "icmp".into(),
        n => format!("ip{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let a = Endpoint { ip: "10.1.0.2".parse().unwrap(), port: 4000 };
        let b = Endpoint { ip: "fd00::2".parse().unwrap(), port: 443 };
        assert_eq!(FlowKey::new(17, a, b), FlowKey::new(17, b, a));
        assert_ne!(FlowKey::new(17, a, b), FlowKey::new(6, a, b));
        assert_eq!(b.to_string(), "[fd00::2]:443");
    }
}
