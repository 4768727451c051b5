//! Flow identity: an endpoint and a direction-independent 5-tuple key.

pub use callwall_results::censor::Endpoint;

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
