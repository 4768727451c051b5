//! Packet views and protocol classifiers for the callwall censor.
//!
//! Everything here is a pure function over `&[u8]`: no I/O, no clock, no allocation on the
//! parse path, and no panic on any input (property tests feed random and mutated bytes, and
//! `fuzz/` at the repository root has a cargo-fuzz target per parser). Unknown codes are data,
//! not errors. Each check cites the RFC section it implements.
//!
//! Where callwall also writes a format, its builder lives beside the parser, smoltcp's
//! `Repr::parse`/`emit` style: [`stun::StunRepr`] and [`stun::ChannelData::emit`] for STUN and
//! TURN ChannelData, [`dns::Query`] for DNS queries. Builders append to a `Vec<u8>`; a
//! round-trip property test and the fuzz targets check that parsing what they emit gives back
//! the same value. No other crate encodes these formats by hand.
//!
//! | module | detects |
//! | --- | --- |
//! | [`packet`] | Ethernet (one VLAN tag), IPv4, IPv6 (extension headers), UDP, TCP |
//! | [`stun`] | STUN (RFC 8489) and classic STUN (RFC 3489), attributes, FINGERPRINT check, TURN ChannelData (RFC 8656), RFC 7983 first-byte demux; builders [`stun::StunRepr`], [`stun::ChannelData::emit`] |
//! | [`dtls`] | DTLS 1.0/1.2 records, handshake header, ClientHello/ServerHello, ClientHello fingerprint, bounded [`dtls::HelloReassembler`] for fragmented hellos |
//! | [`rtp`] | RTP and RTCP headers (RFC 3550, RFC 5761 demux); SRTP/SRTCP look the same; [`rtp::RtpEvidence`] across packets; [`rtp::prove_rtcp`] from one datagram's structure |
//! | [`quic`] | long headers (v1, v2, VN), Initial decryption (RFC 9001, RFC 9369), CRYPTO reassembly, ClientHello |
//! | [`tls`] | TLS records, ClientHello SNI/ALPN/fields, fingerprint, reassembly across TCP segments |
//! | [`wireguard`] | WireGuard message shapes and the transport counter |
//! | [`fet`] | the GFW's fully-encrypted-traffic test (Wu et al. 2023) with the exemption that applied |
//! | [`dns`] | a DNS message with one question (UDP, TCP); the [`dns::Query`] codec |
//! | [`label`] | [`Label`] names used by scenarios and the [`Labels`] bit-set |
//! | [`inspect`] | [`classify_datagram`], [`classify_segment`], and the bounded per-flow [`FlowInspector`] |
//! | [`pcap`] | pcap/pcapng reader in memory and streaming from any `Read` in bounded memory (Ethernet, raw IP, SLL, SLL2, BSD loopback), pcap writer |
//!
//! What it does not do: it does not reassemble IP fragments (a non-first fragment has no
//! transport header and is reported as such), it does not reorder TCP segments, it does not
//! decrypt anything but QUIC Initial packets (whose keys are public), it does not read DTLS 1.3
//! ciphertext records or QUIC short headers beyond their first byte, and it never decides
//! policy; that is the censor's job.
#![forbid(unsafe_code)]

pub mod dns;
pub mod dtls;
pub mod fet;
pub mod inspect;
pub mod label;
pub mod packet;
pub mod pcap;
pub mod quic;
mod reader;
pub mod rtp;
pub mod stun;
pub mod tls;
pub mod wireguard;

pub use inspect::{
    classify_datagram, classify_segment, Dir, FlowFacts, FlowInspector, InspectorConfig, Proto,
};
pub use label::{Label, Labels, UnknownLabel};
pub use packet::{Frame, IpAddr, ParseError, Transport, L4};
