//! Ethernet, IPv4, IPv6, UDP and TCP views.
//!
//! [`Frame::parse`] takes an Ethernet II frame (optionally one 802.1Q tag) and gives the
//! network and transport headers as small values plus a borrowed payload. Checksums are not
//! verified: a censor acts on what it sees, valid or not.

use std::fmt;
pub use std::net::IpAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// EtherType values (IEEE 802 numbers).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// IP protocol numbers (IANA).
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// Why a frame could not be parsed as far as its transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the header it claims to carry.
    Truncated,
    /// A length or offset field points outside the buffer or below the minimum.
    BadLength,
    /// IP version field is neither 4 nor 6.
    BadVersion,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Truncated => "truncated header",
            ParseError::BadLength => "length field out of range",
            ParseError::BadVersion => "unknown IP version",
        })
    }
}

impl std::error::Error for ParseError {}

/// A parsed Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ethertype: u16,
    /// Offset of the L3 header within the frame.
    pub l3_offset: usize,
    /// `None` for non-IP frames (ARP and others), which a bridge forwards untouched.
    pub ip: Option<IpPacket<'a>>,
}

/// The IP layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol or the IPv6 upper-layer next header (after skipping extension headers).
    pub proto: u8,
    pub ttl: u8,
    /// Offset of the L4 header within the frame.
    pub l4_offset: usize,
    /// True for an IPv4 fragment with a non-zero offset or an IPv6 fragment header with one:
    /// such a packet carries no transport header.
    pub later_fragment: bool,
    /// True when more fragments follow (IPv4 MF flag or IPv6 M flag).
    pub more_fragments: bool,
    pub l4: L4<'a>,
}

/// The transport layer of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    Udp(Transport<'a>),
    Tcp(Transport<'a>, TcpInfo),
    /// Any other protocol, or a later fragment, or a transport header that failed to parse.
    Other(&'a [u8]),
}

/// Ports and payload of a UDP datagram or TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// The TCP header fields the censor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

impl TcpInfo {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Frame<'a> {
    /// Parses an Ethernet II frame. Non-IP frames give `ip: None`; an IP header that fails to
    /// parse gives an error, so the caller can count it and apply its malformed-packet policy.
    pub fn parse(buf: &'a [u8]) -> Result<Frame<'a>, ParseError> {
        if buf.len() < 14 {
            return Err(ParseError::Truncated);
        }
        let mut dst_mac = [0; 6];
        let mut src_mac = [0; 6];
        dst_mac.copy_from_slice(&buf[0..6]);
        src_mac.copy_from_slice(&buf[6..12]);
        let mut ethertype = be16(buf, 12).ok_or(ParseError::Truncated)?;
        let mut l3_offset = 14;
        if ethertype == ETHERTYPE_VLAN {
            ethertype = be16(buf, 16).ok_or(ParseError::Truncated)?;
            l3_offset = 18;
        }
        let ip = match ethertype {
            ETHERTYPE_IPV4 => Some(parse_ipv4(buf, l3_offset)?),
            ETHERTYPE_IPV6 => Some(parse_ipv6(buf, l3_offset)?),
            _ => None,
        };
        Ok(Frame { dst_mac, src_mac, ethertype, l3_offset, ip })
    }
}

/// RFC 791 section 3.1.
fn parse_ipv4(buf: &[u8], off: usize) -> Result<IpPacket<'_>, ParseError> {
    let h = buf.get(off..).ok_or(ParseError::Truncated)?;
    if h.len() < 20 {
        return Err(ParseError::Truncated);
    }
    if h[0] >> 4 != 4 {
        return Err(ParseError::BadVersion);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < 20 || total < ihl || h.len() < ihl {
        return Err(ParseError::BadLength);
    }
    // Trailing Ethernet padding is not payload; a total length past the buffer is truncation.
    let total = total.min(h.len());
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let later_fragment = frag & 0x1fff != 0;
    let more_fragments = frag & 0x2000 != 0;
    let proto = h[9];
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let body = &h[ihl..total];
    let l4 = if later_fragment { L4::Other(body) } else { parse_l4(proto, body) };
    Ok(IpPacket {
        src,
        dst,
        proto,
        ttl: h[8],
        l4_offset: off + ihl,
        later_fragment,
        more_fragments,
        l4,
    })
}

/// RFC 8200 sections 3 and 4; extension headers are skipped (at most 8 of them).
fn parse_ipv6(buf: &[u8], off: usize) -> Result<IpPacket<'_>, ParseError> {
    let h = buf.get(off..).ok_or(ParseError::Truncated)?;
    if h.len() < 40 {
        return Err(ParseError::Truncated);
    }
    if h[0] >> 4 != 6 {
        return Err(ParseError::BadVersion);
    }
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let end = (40 + payload_len).min(h.len());
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    let mut next = h[6];
    let mut pos = 40;
    let mut later_fragment = false;
    let mut more_fragments = false;
    for _ in 0..8 {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units, not counting
            // the first 8 octets.
            0 | 43 | 60 => {
                let len = (usize::from(*h.get(pos + 1).ok_or(ParseError::Truncated)?) + 1) * 8;
                next = h[pos];
                pos += len;
            }
            // Fragment header: fixed 8 octets (RFC 8200 section 4.5).
            44 => {
                let fo = be16(h, pos + 2).ok_or(ParseError::Truncated)?;
                later_fragment = fo & 0xfff8 != 0;
                more_fragments = fo & 1 != 0;
                next = h[pos];
                pos += 8;
            }
            _ => break,
        }
        if pos > end {
            return Err(ParseError::BadLength);
        }
    }
    let body = &h[pos..end];
    let l4 = if later_fragment { L4::Other(body) } else { parse_l4(next, body) };
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto: next,
        ttl: h[7],
        l4_offset: off + pos,
        later_fragment,
        more_fragments,
        l4,
    })
}

fn parse_l4(proto: u8, body: &[u8]) -> L4<'_> {
    match proto {
        // RFC 768.
        PROTO_UDP if body.len() >= 8 => {
            let len = usize::from(u16::from_be_bytes([body[4], body[5]]));
            let end = if (8..=body.len()).contains(&len) { len } else { body.len() };
            L4::Udp(Transport {
                src_port: u16::from_be_bytes([body[0], body[1]]),
                dst_port: u16::from_be_bytes([body[2], body[3]]),
                payload: &body[8..end],
            })
        }
        // RFC 9293 section 3.1.
        PROTO_TCP if body.len() >= 20 => {
            let data_off = usize::from(body[12] >> 4) * 4;
            if data_off < 20 || data_off > body.len() {
                return L4::Other(body);
            }
            let (Some(seq), Some(ack)) = (be32(body, 4), be32(body, 8)) else {
                return L4::Other(body);
            };
            L4::Tcp(
                Transport {
                    src_port: u16::from_be_bytes([body[0], body[1]]),
                    dst_port: u16::from_be_bytes([body[2], body[3]]),
                    payload: &body[data_off..],
                },
                TcpInfo {
                    seq,
                    ack,
                    flags: body[13],
                    window: u16::from_be_bytes([body[14], body[15]]),
                },
            )
        }
        _ => L4::Other(body),
    }
}

impl<'a> L4<'a> {
    /// Ports and payload for UDP and TCP.
    pub fn transport(&self) -> Option<&Transport<'a>> {
        match self {
            L4::Udp(t) | L4::Tcp(t, _) => Some(t),
            L4::Other(_) => None,
        }
    }
}

/// Builders for test and injected packets. They compute valid checksums.
pub mod build {
    use super::*;

    /// Internet checksum (RFC 1071) over `data`, folded, starting from `sum`.
    pub fn checksum(mut sum: u32, data: &[u8]) -> u16 {
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
        let mut sum = 0u32;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                add(&s.octets());
                add(&d.octets());
            }
            (s, d) => {
                add(&to_v6(s).octets());
                add(&to_v6(d).octets());
            }
        }
        sum + u32::from(proto) + len as u32
    }

    fn to_v6(a: IpAddr) -> Ipv6Addr {
        match a {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        }
    }

    /// Builds Ethernet + IP (v4 or v6 after `src`) + the given L4 header and payload, with the
    /// L4 checksum computed at `csum_at` within `l4`.
    fn ip_frame(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        mut l4: Vec<u8>,
        csum_at: usize,
    ) -> Vec<u8> {
        let ck = checksum(pseudo_sum(src, dst, proto, l4.len()), &l4);
        // UDP over IPv4 may send 0 for "no checksum"; a computed 0 is sent as 0xffff (RFC 768).
        let ck = if ck == 0 && proto == PROTO_UDP { 0xffff } else { ck };
        l4[csum_at..csum_at + 2].copy_from_slice(&ck.to_be_bytes());
        let mut f = Vec::with_capacity(14 + 40 + l4.len());
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                let total = (20 + l4.len()) as u16;
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[6] = 0x40; // don't fragment
                ip[8] = 64;
                ip[9] = proto;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let ck = checksum(0, &ip);
                ip[10..12].copy_from_slice(&ck.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (s, d) => {
                f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                let mut ip = [0u8; 40];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
                ip[6] = proto;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&to_v6(s).octets());
                ip[24..40].copy_from_slice(&to_v6(d).octets());
                f.extend_from_slice(&ip);
            }
        }
        f.extend_from_slice(&l4);
        f
    }

    /// A UDP datagram in an Ethernet frame.
    pub fn udp(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        payload: &[u8],
    ) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(8 + payload.len());
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        ip_frame(src_mac, dst_mac, src.0, dst.0, PROTO_UDP, l4, 6)
    }

    /// A TCP segment (no options) in an Ethernet frame.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(20 + payload.len());
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.push(5 << 4);
        l4.push(flags);
        l4.extend_from_slice(&65535u16.to_be_bytes());
        l4.extend_from_slice(&[0, 0, 0, 0]);
        l4.extend_from_slice(payload);
        ip_frame(src_mac, dst_mac, src.0, dst.0, PROTO_TCP, l4, 16)
    }

    /// ICMP destination unreachable, port unreachable (RFC 792 type 3 code 3; RFC 4443 type 1
    /// code 4 for IPv6), quoting the offending IP packet `quoted` (truncated to fit 576/1280).
    pub fn port_unreachable(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        quoted: &[u8],
    ) -> Vec<u8> {
        let v4 = matches!((src, dst), (IpAddr::V4(_), IpAddr::V4(_)));
        let max_quote = if v4 { 576 - 20 - 8 } else { 1280 - 40 - 8 };
        let q = &quoted[..quoted.len().min(max_quote)];
        let mut l4 = Vec::with_capacity(8 + q.len());
        if v4 {
            l4.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
            l4.extend_from_slice(q);
            let ck = checksum(0, &l4);
            l4[2..4].copy_from_slice(&ck.to_be_bytes());
            // ip_frame recomputes the L4 checksum with a pseudo-header; ICMPv4 has none, so
            // build the IPv4 part by hand through a zero-proto trick is avoided: write directly.
            let mut f = ip_frame(src_mac, dst_mac, src, dst, PROTO_ICMP, l4.clone(), 2);
            let l4_off = 14 + 20;
            f[l4_off + 2..l4_off + 4].copy_from_slice(&ck.to_be_bytes());
            f
        } else {
            l4.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 0]);
            l4.extend_from_slice(q);
            ip_frame(src_mac, dst_mac, src, dst, PROTO_ICMPV6, l4, 2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn udp_v4_round_trip() {
        let f = build::udp(A, B, (v4("10.0.0.1"), 5000), (v4("10.0.0.2"), 3478), b"hello");
        let p = Frame::parse(&f).unwrap();
        assert_eq!(p.src_mac, A);
        let ip = p.ip.unwrap();
        assert_eq!(ip.src, v4("10.0.0.1"));
        assert_eq!(ip.proto, PROTO_UDP);
        let t = ip.l4.transport().unwrap();
        assert_eq!((t.src_port, t.dst_port, t.payload), (5000, 3478, &b"hello"[..]));
        // The IPv4 header checksum verifies to zero.
        assert_eq!(build::checksum(0, &f[14..34]), 0);
    }

    #[test]
    fn tcp_v6_round_trip() {
        let f = build::tcp(
            A,
            B,
            (v4("fd00::1"), 40000),
            (v4("fd00::2"), 443),
            7,
            9,
            TcpInfo::PSH | TcpInfo::ACK,
            b"\x16\x03\x01",
        );
        let ip = Frame::parse(&f).unwrap().ip.unwrap();
        match ip.l4 {
            L4::Tcp(t, info) => {
                assert_eq!(t.dst_port, 443);
                assert_eq!(t.payload, b"\x16\x03\x01");
                assert_eq!((info.seq, info.ack), (7, 9));
                assert!(info.has(TcpInfo::ACK) && !info.has(TcpInfo::SYN));
            }
            other => panic!("expected tcp, got {other:?}"),
        }
    }

    #[test]
    fn arp_is_not_ip() {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(Frame::parse(&f).unwrap().ip, None);
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let f = build::udp(A, B, (v4("10.0.0.1"), 1), (v4("10.0.0.2"), 2), b"xyz");
        for n in 0..f.len() {
            let _ = Frame::parse(&f[..n]);
        }
        assert_eq!(Frame::parse(&f[..20]), Err(ParseError::Truncated));
    }

    #[test]
    fn later_fragments_have_no_ports() {
        let mut f = build::udp(A, B, (v4("10.0.0.1"), 1), (v4("10.0.0.2"), 2), b"xyz");
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16*8
        let ip = Frame::parse(&f).unwrap().ip.unwrap();
        assert!(ip.later_fragment);
        assert!(matches!(ip.l4, L4::Other(_)));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Frame::parse(&bytes);
        }

        #[test]
        fn mutated_frames_never_panic(idx in 0usize..60, val in any::<u8>(), cut in 0usize..80) {
            let mut f = build::tcp(A, B, (v4("10.0.0.1"), 1), (v4("10.0.0.2"), 2), 1, 2, 0x18, b"payload-bytes");
            let i = idx % f.len();
            f[i] = val;
            f.truncate(cut.max(1).min(f.len()));
            let _ = Frame::parse(&f);
        }
    }
}
