//! Sub-seeds: every random stream of a run is seeded by [`derive`] from the scenario's seed.
//!
//! A stream is named by a [`Purpose`] (what the randomness is for) and an index (which one of
//! them: a call's placement, a racing attempt, a peer's role, or a name through
//! [`name_index`]). [`derive`] mixes the three with SplitMix64's finalizer ([`mix`]).
//!
//! Guarantees: `derive` is a pure function (the same inputs give the same sub-seed on every
//! machine and release of this crate); for one seed, distinct purposes give independent
//! streams, and for one seed and purpose, distinct indices give distinct sub-seeds (the mixing
//! is a bijection at each step, so they never collide). It is not a cryptographic derivation:
//! sub-seeds drive simulations, never keys.
//!
//! Adding a stream means adding a [`Purpose`] with a new code; the codes of the others stay,
//! so no existing stream changes.

/// What a random stream is for. Each variant has a fixed code ([`Purpose::code`]) that is part
/// of the derivation: two sites with different purposes cannot share a stream by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// One placement of a call in a run (index: the placement's number in the run); the
    /// result is the seed both peers of that placement get.
    Placement,
    /// One attempt of a racing peer (index: the attempt's number); the attempt's seed.
    Attempt,
    /// WebRTC: the RTP SSRC of a peer (index: the role).
    RtpSsrc,
    /// WebRTC: the first RTP sequence number of a peer (index: the role).
    RtpSequence,
    /// WebRTC: the first RTP timestamp of a peer (index: the role).
    RtpTimestamp,
    /// WebRTC: the bytes of a decoy datagram (index: the role).
    Decoy,
    /// QUIC: the caller's bypass choices, such as source port and padding (index: the call
    /// id's [`name_index`]).
    QuicBypass,
    /// Noise: a peer's indices, padding and obfuscation prefixes (index: the call id's
    /// [`name_index`] plus the role).
    NoiseCall,
    /// Reflector: the caller's bypass choices (index: the call id's [`name_index`]).
    ReflectorBypass,
}

impl Purpose {
    /// The fixed code mixed into [`derive`]; never reused, never changed.
    pub const fn code(self) -> u64 {
        match self {
            Purpose::Placement => 1,
            Purpose::Attempt => 2,
            Purpose::RtpSsrc => 3,
            Purpose::RtpSequence => 4,
            Purpose::RtpTimestamp => 5,
            Purpose::Decoy => 6,
            Purpose::QuicBypass => 7,
            Purpose::NoiseCall => 8,
            Purpose::ReflectorBypass => 9,
        }
    }
}

/// The sub-seed of stream (`purpose`, `index`) under `seed`. See the module docs for what it
/// guarantees.
pub fn derive(seed: u64, purpose: Purpose, index: u64) -> u64 {
    mix(mix(mix(seed) ^ purpose.code()) ^ index)
}

/// An index from a name (FNV-1a, 64 bits), for streams kept per call id.
pub fn name_index(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer, in which
/// every output bit depends on every input bit.
pub const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Purpose; 9] = [
        Purpose::Placement,
        Purpose::Attempt,
        Purpose::RtpSsrc,
        Purpose::RtpSequence,
        Purpose::RtpTimestamp,
        Purpose::Decoy,
        Purpose::QuicBypass,
        Purpose::NoiseCall,
        Purpose::ReflectorBypass,
    ];

    #[test]
    fn known_vectors() {
        // SplitMix64 seeded with 0: its first output is mix(0).
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(1), 0x910A_2DEC_8902_5CC1);
        assert_eq!(derive(1, Purpose::Placement, 1), DERIVE_1_PLACEMENT_1);
        assert_eq!(name_index(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_index("a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// Pinned so that a change to the derivation (which changes every run's randomness) is a
    /// deliberate one.
    const DERIVE_1_PLACEMENT_1: u64 = 0x7095_BEEB_D765_75E4;

    #[test]
    fn deterministic() {
        for p in ALL {
            assert_eq!(derive(42, p, 7), derive(42, p, 7));
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u64> = ALL.iter().map(|p| p.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }

    #[test]
    fn distinct_purposes_indices_and_seeds_differ() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..4u64 {
            for p in ALL {
                for i in 0..64u64 {
                    assert!(seen.insert(derive(seed, p, i)), "{seed} {p:?} {i}");
                }
            }
        }
    }

    #[test]
    fn sub_seeds_look_uniform() {
        // Adjacent indices: about half the bits differ, and each bit is set about half the time.
        let n = 4096u64;
        let mut ones = [0u32; 64];
        let mut flips = 0u64;
        for i in 0..n {
            let a = derive(1, Purpose::Attempt, i);
            flips += u64::from((a ^ derive(1, Purpose::Attempt, i + 1)).count_ones());
            for (b, o) in ones.iter_mut().enumerate() {
                *o += ((a >> b) & 1) as u32;
            }
        }
        let mean_flips = flips as f64 / n as f64;
        assert!((28.0..36.0).contains(&mean_flips), "{mean_flips}");
        for o in ones {
            assert!((1800..2300).contains(&o), "{o}");
        }
    }
}
