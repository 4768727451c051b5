//! Counter-based randomness: every random decision of the engine is a pure function of the
//! scenario's seed, the rule, a stable identity of the flow, the direction, the packet's index
//! in that direction and what the draw is for.
//!
//! A sequential generator (one stream for the whole censor) makes one flow's fate depend on
//! how its packets interleave with every other flow's, that is on scheduling: the same seed
//! then gives different losses from run to run. Here a flow's decisions depend only on its own
//! packets, so a call sees the same losses whatever else runs beside it.
//!
//! The flow's identity ([`FlowIdentity`]) deliberately leaves out the client's port, which the
//! kernel picks at random: it is the protocol, the client address, the server address and
//! port, and the ordinal of that tuple among the flows the engine has seen (the first flow from
//! A to B:443 is 0, the next 1, ...). Flows of the same tuple that start at the same moment may
//! swap ordinals; every other flow keeps its identity from run to run.
//!
//! The mixing is SplitMix64's finalizer ([`callwall_units::seed::mix`]) applied over the words
//! of the key (a keyed hash, not a cryptographic one): every output bit depends on every input bit, and outputs of adjacent
//! counters are uncorrelated for simulation purposes (the tests check rates and independence).

use std::net::IpAddr;

// SplitMix64's output function, the one mixer of the workspace (it also derives sub-seeds).
use callwall_units::seed::mix;

/// What a draw decides; part of the key so that two decisions on the same packet are
/// independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// The per-flow block decision (`block_probability`), drawn once per flow and rule.
    Block = 1,
    /// Random loss of one packet.
    Loss = 2,
    /// Gilbert-Elliott: whether the state flips at this packet.
    BurstFlip = 3,
    /// Gilbert-Elliott: whether this packet is lost in its state.
    BurstLoss = 4,
    /// Extra delay of one packet.
    Jitter = 5,
}

/// A flow's identity for random draws: stable across runs (no ephemeral port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowIdentity {
    pub proto: u8,
    pub client: IpAddr,
    pub server: IpAddr,
    pub server_port: u16,
    /// Which flow of this (proto, client, server, server port) tuple it is, in order of first
    /// packet seen.
    pub ordinal: u32,
}

impl FlowIdentity {
    /// A 64-bit digest of the identity (what [`draw`] keys on).
    pub fn digest(&self) -> u64 {
        let mut h = mix(0x6366_6c6f_7769_6400 ^ u64::from(self.proto));
        h = mix(h ^ ip_word(self.client, 0));
        h = mix(h ^ ip_word(self.client, 1));
        h = mix(h ^ ip_word(self.server, 0));
        h = mix(h ^ ip_word(self.server, 1));
        mix(h ^ (u64::from(self.server_port) << 32 | u64::from(self.ordinal)))
    }
}

fn ip_word(ip: IpAddr, half: usize) -> u64 {
    let b = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[half * 8..half * 8 + 8]);
    u64::from_be_bytes(w)
}

/// Where a draw sits: everything but the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawKey {
    /// The rule's index in the chain (the default action has index `rules.len()`).
    pub rule: usize,
    /// [`FlowIdentity::digest`] of the flow.
    pub flow: u64,
    /// 0: client to server; 1: server to client.
    pub dir: usize,
    /// The packet's index in its direction of the flow (1 for the first packet).
    pub packet: u64,
    pub purpose: Purpose,
}

/// A uniformly distributed 64-bit value for `key` under `seed`.
pub fn draw(seed: u64, key: DrawKey) -> u64 {
    let mut h = mix(seed);
    h = mix(h ^ key.rule as u64);
    h = mix(h ^ key.flow);
    h = mix(h ^ (key.dir as u64) << 8 ^ key.purpose as u64);
    mix(h ^ key.packet)
}

/// `true` with probability `p` (clamped to 0..=1).
pub fn chance(seed: u64, key: DrawKey, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    unit(draw(seed, key)) < p
}

/// A value in `0..n` (0 when `n` is 0), uniform up to a bias below 2^-32 for `n` < 2^32.
pub fn below(seed: u64, key: DrawKey, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    ((u128::from(draw(seed, key)) * u128::from(n)) >> 64) as u64
}

/// The top 53 bits of `x` as a float in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(flow: u64, packet: u64) -> DrawKey {
        DrawKey { rule: 0, flow, dir: 0, packet, purpose: Purpose::Loss }
    }

    #[test]
    fn same_key_same_draw_and_every_part_of_the_key_matters() {
        let k = key(7, 3);
        assert_eq!(draw(1, k), draw(1, k));
        assert_ne!(draw(1, k), draw(2, k));
        assert_ne!(draw(1, k), draw(1, DrawKey { rule: 1, ..k }));
        assert_ne!(draw(1, k), draw(1, DrawKey { flow: 8, ..k }));
        assert_ne!(draw(1, k), draw(1, DrawKey { dir: 1, ..k }));
        assert_ne!(draw(1, k), draw(1, DrawKey { packet: 4, ..k }));
        assert_ne!(draw(1, k), draw(1, DrawKey { purpose: Purpose::Jitter, ..k }));
    }

    #[test]
    fn the_identity_ignores_nothing_it_holds() {
        let a = FlowIdentity {
            proto: 17,
            client: "10.1.0.2".parse().unwrap(),
            server: "10.2.0.2".parse().unwrap(),
            server_port: 443,
            ordinal: 0,
        };
        assert_eq!(a.digest(), a.digest());
        for b in [
            FlowIdentity { proto: 6, ..a },
            FlowIdentity { client: "10.1.0.3".parse().unwrap(), ..a },
            FlowIdentity { server: "fd00::2".parse().unwrap(), ..a },
            FlowIdentity { server_port: 444, ..a },
            FlowIdentity { ordinal: 1, ..a },
        ] {
            assert_ne!(a.digest(), b.digest(), "{b:?}");
        }
    }

    #[test]
    fn rates_are_close_to_their_probability_and_draws_are_independent() {
        let n = 200_000u64;
        for p in [0.01, 0.08, 0.3, 0.5] {
            let hits = (1..=n).filter(|&i| chance(9, key(42, i), p)).count() as f64;
            let rate = hits / n as f64;
            // Five standard deviations.
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((rate - p).abs() < 5.0 * sd, "p {p}: rate {rate}");
        }
        // Consecutive packets: P(both lost) is p^2, as for independent draws.
        let p = 0.2;
        let both = (1..n).filter(|&i| chance(3, key(1, i), p) && chance(3, key(1, i + 1), p));
        let rate = both.count() as f64 / n as f64;
        assert!((rate - p * p).abs() < 0.005, "pairs {rate}");
        // Bounded draws stay in range and cover it.
        let mut seen = [false; 10];
        for i in 0..1000 {
            let v = below(5, key(2, i), 10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(below(5, key(2, 0), 0), 0);
        assert!(!chance(5, key(2, 0), 0.0));
        assert!(chance(5, key(2, 0), 1.0));
    }
}
