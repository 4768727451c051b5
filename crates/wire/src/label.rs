//! Classifier labels: what a packet or a flow looks like.
//!
//! A [`Label`] is one fact a classifier found ("this is a STUN message", "this is a DTLS
//! ClientHello"); [`Labels`] is a small bit-set of them, cheap to copy and to test. Scenario files
//! name labels by their lowercase [`Label::name`] and parse them with [`str::parse`].

use std::fmt;
use std::str::FromStr;

macro_rules! labels {
    ($( $(#[$doc:meta])* $variant:ident = $bit:literal, $name:literal; )*) => {
        /// One classifier fact. The discriminant is its bit in [`Labels`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Label {
            $( $(#[$doc])* $variant = $bit, )*
        }

        impl Label {
            /// Every label, in bit order.
            pub const ALL: &'static [Label] = &[$(Label::$variant,)*];

            /// The lowercase name scenarios use.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Label::$variant => $name, )*
                }
            }
        }
    };
}

labels! {
    /// A STUN message (RFC 8489), with or without the magic cookie.
    Stun = 0, "stun";
    /// A classic STUN message (RFC 3489): no magic cookie. Also carries [`Label::Stun`].
    StunClassic = 1, "stun-classic";
    /// TURN ChannelData (RFC 8656 section 12).
    TurnChannelData = 2, "turn-channel-data";
    /// A DTLS record (RFC 6347 / RFC 9147 plaintext header).
    Dtls = 3, "dtls";
    /// A DTLS handshake record carrying a ClientHello.
    DtlsClientHello = 4, "dtls-client-hello";
    /// A DTLS handshake record carrying a ServerHello.
    DtlsServerHello = 5, "dtls-server-hello";
    /// An RTP (or SRTP) packet (RFC 3550).
    Rtp = 6, "rtp";
    /// An RTCP (or SRTCP) packet (RFC 3550, demultiplexed per RFC 5761): proven by one datagram's
    /// structure ([`crate::rtp::prove_rtcp`]) or by evidence across packets.
    Rtcp = 7, "rtcp";
    /// A QUIC packet: a long header of a known version, or a short header on a QUIC flow.
    Quic = 8, "quic";
    /// A QUIC Initial packet.
    QuicInitial = 9, "quic-initial";
    /// QUIC version 2 (RFC 9369).
    QuicV2 = 10, "quic-v2";
    /// A QUIC Version Negotiation packet (version 0).
    QuicVersionNegotiation = 11, "quic-version-negotiation";
    /// A TLS record over TCP (RFC 8446 section 5.1).
    Tls = 12, "tls";
    /// A TLS ClientHello over TCP.
    TlsClientHello = 13, "tls-client-hello";
    /// An HTTP/1.x request line.
    Http = 14, "http";
    /// A DNS message (RFC 1035 section 4.1).
    Dns = 15, "dns";
    /// A WireGuard message of any type.
    Wireguard = 16, "wireguard";
    /// A WireGuard handshake initiation or response.
    WireguardHandshake = 17, "wireguard-handshake";
    /// The first client data of a TCP flow met none of the GFW's exemptions (see [`crate::fet`]).
    FullyEncrypted = 18, "fully-encrypted";
    /// A ClientHello (TLS, DTLS or QUIC) carried a server name.
    Sni = 19, "sni";
}

impl Label {
    /// Its bit in [`Labels`].
    pub const fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A label name that is not one of [`Label::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLabel {
    pub name: String,
}

impl fmt::Display for UnknownLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown classifier label `{}`; use one of: ", self.name)?;
        for (i, l) in Label::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(l.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownLabel {}

impl FromStr for Label {
    type Err = UnknownLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL
            .iter()
            .copied()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownLabel { name: s.to_owned() })
    }
}

/// A set of [`Label`]s as a bit-set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Labels(pub u32);

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Labels({self})")
    }
}

impl Labels {
    pub const EMPTY: Labels = Labels(0);

    pub const fn contains(self, label: Label) -> bool {
        self.0 & label.bit() != 0
    }

    /// True when every label of `other` is in `self`.
    pub const fn contains_all(self, other: Labels) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when some label of `other` is in `self`.
    pub const fn intersects(self, other: Labels) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn with(self, label: Label) -> Labels {
        Labels(self.0 | label.bit())
    }

    pub fn insert(&mut self, label: Label) {
        self.0 |= label.bit();
    }

    pub fn remove(&mut self, label: Label) {
        self.0 &= !label.bit();
    }

    pub const fn union(self, other: Labels) -> Labels {
        Labels(self.0 | other.0)
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The labels in bit order.
    pub fn iter(self) -> impl Iterator<Item = Label> {
        Label::ALL.iter().copied().filter(move |l| self.contains(*l))
    }
}

impl From<Label> for Labels {
    fn from(l: Label) -> Self {
        Labels(l.bit())
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        iter.into_iter().fold(Labels::EMPTY, Labels::with)
    }
}

impl std::ops::BitOr for Labels {
    type Output = Labels;
    fn bitor(self, rhs: Labels) -> Labels {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Labels {
    fn bitor_assign(&mut self, rhs: Labels) {
        self.0 |= rhs.0;
    }
}

/// `stun,dtls` style; empty prints as `-`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(l.name())?;
        }
        Ok(())
    }
}

/// Parses a comma-separated list of label names (the inverse of `Display`; `-` is empty).
impl FromStr for Labels {
    type Err = UnknownLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "-" {
            return Ok(Labels::EMPTY);
        }
        s.split(',').map(|p| p.trim().parse::<Label>()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for l in Label::ALL {
            assert_eq!(l.name().parse::<Label>().unwrap(), *l);
            assert_eq!(l.name(), l.name().to_lowercase());
        }
        let mut names: Vec<_> = Label::ALL.iter().map(|l| l.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Label::ALL.len());
        assert!(Label::ALL.len() <= 32);
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let e = "sctp".parse::<Label>().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`sctp`") && msg.contains("turn-channel-data") && msg.contains("quic-v2")
        );
    }

    #[test]
    fn set_operations() {
        let s: Labels = [Label::Stun, Label::Dtls].into_iter().collect();
        assert!(s.contains(Label::Stun) && !s.contains(Label::Rtp));
        assert_eq!(s.to_string(), "stun,dtls");
        assert_eq!("stun, dtls".parse::<Labels>().unwrap(), s);
        assert_eq!(Labels::EMPTY.to_string(), "-");
        assert_eq!(s.len(), 2);
        assert!(s.contains_all(Label::Dtls.into()));
        assert!(!s.intersects(Label::Quic.into()));
    }
}
