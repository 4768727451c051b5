//! RTP and RTCP headers (RFC 3550 sections 5.1 and 6.4), demultiplexed per RFC 5761 section 4.
//! SRTP and SRTCP (RFC 3711) keep these headers in the clear, so they classify the same.

/// An RTP fixed header (RFC 3550 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub padding: bool,
    pub extension: bool,
    pub csrc_count: u8,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Bytes of header, including CSRCs and the extension header (RFC 3550 section 5.3.1).
    pub header_len: usize,
}

/// An RTCP common header (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// Reception report count, or the feedback message type (RFC 4585).
    pub count: u8,
    pub packet_type: u8,
    /// Length of this packet in bytes ((length field + 1) * 4).
    pub packet_len: usize,
    pub ssrc: u32,
}

/// True when the second byte is an RTCP packet type (RFC 5761 section 4: RTP payload types
/// 64-95, which with the marker bit are 192-223, are reserved so that RTCP can be told apart).
pub const fn is_rtcp_type(second_byte: u8) -> bool {
    matches!(second_byte, 192..=223)
}

/// Parses an RTP header. None for RTCP packet types, for versions other than 2, and when
/// the CSRC list or extension run past the packet.
pub fn parse_rtp(buf: &[u8]) -> Option<RtpHeader> {
    let h = buf.get(..12)?;
    // RFC 3550 section 5.1: V = 2.
    if h[0] >> 6 != 2 || is_rtcp_type(h[1]) {
        return None;
    }
    let csrc_count = h[0] & 0x0f;
    let mut header_len = 12 + 4 * usize::from(csrc_count);
    let extension = h[0] & 0x10 != 0;
    if extension {
        // RFC 3550 section 5.3.1: 16-bit profile, 16-bit length in 32-bit words.
        let len = buf.get(header_len + 2..header_len + 4)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    if header_len > buf.len() {
        return None;
    }
    let padding = h[0] & 0x20 != 0;
    if padding {
        // RFC 3550 section 5.1: the last octet counts the padding, itself included. (For SRTP
        // the last octets are the auth tag, so this is checked loosely.)
        if buf.len() == header_len {
            return None;
        }
    }
    Some(RtpHeader {
        padding,
        extension,
        csrc_count,
        marker: h[1] & 0x80 != 0,
        payload_type: h[1] & 0x7f,
        sequence: u16::from_be_bytes([h[2], h[3]]),
        timestamp: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        header_len,
    })
}

/// Parses the first RTCP header of a (possibly compound) packet. The standard types are
/// 200-204 (SR, RR, SDES, BYE, APP; RFC 3550 section 12.1) plus 205-207 (RFC 4585 feedback,
/// RFC 3611 XR); the first packet's length must fit.
pub fn parse_rtcp(buf: &[u8]) -> Option<RtcpHeader> {
    let h = buf.get(..8)?;
    if h[0] >> 6 != 2 || !(200..=207).contains(&h[1]) {
        return None;
    }
    let packet_len = (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1) * 4;
    if packet_len > buf.len() {
        return None;
    }
    Some(RtcpHeader {
        count: h[0] & 0x1f,
        packet_type: h[1],
        packet_len,
        ssrc: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
    })
}

/// True for payload types a real stream uses: the static types 0-34 and the dynamic range
/// 96-127 (RFC 3551 section 6; 35-71 and 77-95 are unassigned, 72-76 collide with RTCP).
pub const fn is_plausible_payload_type(pt: u8) -> bool {
    pt <= 34 || (pt >= 96 && pt <= 127)
}

/// Streams (SSRCs) an [`RtpEvidence`] follows at once; more are ignored.
pub const MAX_STREAMS: usize = 4;
/// Consecutive in-order packets of one SSRC, the first included, before it counts as RTP.
pub const PACKETS_FOR_EVIDENCE: u8 = 3;
/// Largest forward step of the sequence number still taken as the same stream (losses).
pub const MAX_SEQ_STEP: u16 = 64;
/// Largest forward step of the timestamp still taken as the same stream (about 46 s of a
/// 90 kHz video clock, 87 s of 48 kHz audio).
pub const MAX_TS_STEP: u32 = 1 << 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stream {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// In-order packets seen in a row (saturating at [`PACKETS_FOR_EVIDENCE`]).
    run: u8,
}

/// Evidence across packets that a UDP flow carries RTP or RTCP, so that one random-looking
/// datagram whose first byte happens to fall in 128-191 (a 1 in 4 chance for any encrypted
/// payload) is not called RTP.
///
/// RTP: [`PACKETS_FOR_EVIDENCE`] packets of one SSRC, each with a plausible payload type
/// ([`is_plausible_payload_type`]), a sequence number 1 to [`MAX_SEQ_STEP`] ahead of the
/// previous one and a timestamp 0 to [`MAX_TS_STEP`] ahead (RFC 3550 section 5.1: the sequence
/// number increments by one per packet, the timestamp by the sampling instants). A packet out
/// of order is ignored, not counted against the stream. RTCP: a compound packet whose first
/// header parses ([`parse_rtcp`]), once the flow has RTP evidence (RFC 5761 multiplexing) or
/// the same sender SSRC was seen in an earlier RTCP packet.
///
/// For random payloads a stream needs the same 32-bit SSRC in three packets, so a false label
/// has a probability near 2^-64 per pair of packets. Bounded: [`MAX_STREAMS`] streams and as
/// many RTCP sender SSRCs; no allocation.
#[derive(Debug, Clone, Default)]
pub struct RtpEvidence {
    streams: [Option<Stream>; MAX_STREAMS],
    rtcp_ssrcs: [Option<u32>; MAX_STREAMS],
    rtp_confirmed: bool,
    rtcp_confirmed: bool,
}

impl RtpEvidence {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once some stream showed RTP evidence.
    pub fn rtp_confirmed(&self) -> bool {
        self.rtp_confirmed
    }

    /// True once RTCP was confirmed.
    pub fn rtcp_confirmed(&self) -> bool {
        self.rtcp_confirmed
    }

    /// Takes an RTP header; true when this packet belongs to a stream with evidence.
    pub fn observe_rtp(&mut self, h: &RtpHeader) -> bool {
        if !is_plausible_payload_type(h.payload_type) {
            return false;
        }
        let slot = self.streams.iter().position(|s| s.is_some_and(|s| s.ssrc == h.ssrc));
        let Some(i) = slot else {
            if let Some(free) = self.streams.iter_mut().find(|s| s.is_none()) {
                *free = Some(Stream {
                    ssrc: h.ssrc,
                    sequence: h.sequence,
                    timestamp: h.timestamp,
                    run: 1,
                });
            }
            return false;
        };
        let Some(s) = self.streams[i].as_mut() else { return false };
        let seq_step = h.sequence.wrapping_sub(s.sequence);
        let ts_step = h.timestamp.wrapping_sub(s.timestamp);
        if s.run >= PACKETS_FOR_EVIDENCE {
            // Confirmed: later packets of the stream are RTP whatever their order.
            return true;
        }
        if (1..=MAX_SEQ_STEP).contains(&seq_step) && ts_step <= MAX_TS_STEP {
            s.run += 1;
            s.sequence = h.sequence;
            s.timestamp = h.timestamp;
        } else if seq_step != 0 && seq_step < u16::MAX - MAX_SEQ_STEP {
            // Neither a step forward nor a reordered or repeated packet: start over.
            *s = Stream { ssrc: h.ssrc, sequence: h.sequence, timestamp: h.timestamp, run: 1 };
        }
        if s.run >= PACKETS_FOR_EVIDENCE {
            self.rtp_confirmed = true;
            return true;
        }
        false
    }

    /// Takes an RTCP header; true when RTCP is confirmed for the flow.
    pub fn observe_rtcp(&mut self, h: &RtcpHeader) -> bool {
        let seen = self.rtcp_ssrcs.contains(&Some(h.ssrc));
        if !seen {
            if let Some(free) = self.rtcp_ssrcs.iter_mut().find(|s| s.is_none()) {
                *free = Some(h.ssrc);
            }
        }
        if seen || self.rtp_confirmed {
            self.rtcp_confirmed = true;
        }
        self.rtcp_confirmed && (seen || self.rtp_confirmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rtp_opus_packet() {
        let mut b = vec![0x80, 0x6f, 0x12, 0x34, 0, 0, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef];
        b.extend_from_slice(&[0xaa; 60]);
        let h = parse_rtp(&b).unwrap();
        assert_eq!(
            (h.payload_type, h.sequence, h.ssrc, h.header_len),
            (111, 0x1234, 0xdeadbeef, 12)
        );
        assert!(parse_rtcp(&b).is_none());
        // One-byte header extension (RFC 8285) of one word.
        let mut e =
            vec![0x90, 0xef, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0];
        e.extend_from_slice(&[1; 20]);
        let h = parse_rtp(&e).unwrap();
        assert!(h.marker && h.extension);
        assert_eq!(h.header_len, 20);
        e.truncate(14);
        assert!(parse_rtp(&e).is_none());
    }

    #[test]
    fn rtcp_receiver_report() {
        let b = [
            0x81, 201, 0, 7, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        let h = parse_rtcp(&b).unwrap();
        assert_eq!((h.packet_type, h.count, h.packet_len), (201, 1, 32));
        assert!(parse_rtp(&b).is_none());
        assert!(parse_rtcp(&b[..31]).is_none());
        let mut v1 = b;
        v1[0] = 0x41;
        assert!(parse_rtcp(&v1).is_none());
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut b = vec![0x80, pt];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&ssrc.to_be_bytes());
        b.extend_from_slice(&[0x3c; 40]);
        b
    }

    fn feed(e: &mut RtpEvidence, b: &[u8]) -> bool {
        e.observe_rtp(&parse_rtp(b).unwrap())
    }

    #[test]
    fn evidence_needs_three_packets_of_one_stream() {
        let mut e = RtpEvidence::new();
        assert!(!feed(&mut e, &rtp(111, 65534, 1000, 7)));
        assert!(!feed(&mut e, &rtp(111, 65535, 1960, 7)));
        // Sequence wraps (RFC 3550 section 5.1); a loss of two packets is fine.
        assert!(feed(&mut e, &rtp(111, 2, 4840, 7)));
        assert!(e.rtp_confirmed());
        // Later packets of the stream, even reordered, stay RTP; another SSRC starts over.
        assert!(feed(&mut e, &rtp(111, 1, 3880, 7)));
        assert!(!feed(&mut e, &rtp(96, 10, 0, 8)));
        // RTCP on a flow with RTP evidence.
        let rr = [0x81, 201, 0, 1, 0, 0, 0, 7];
        assert!(e.observe_rtcp(&parse_rtcp(&rr).unwrap()));
    }

    #[test]
    fn no_evidence_without_a_stream() {
        let mut e = RtpEvidence::new();
        // Implausible payload type (77-95 unassigned).
        for i in 0..5u16 {
            assert!(!feed(&mut e, &rtp(80, i, u32::from(i) * 160, 9)));
        }
        // Sequence numbers that do not advance.
        for _ in 0..5 {
            assert!(!feed(&mut e, &rtp(0, 5, 160, 9)));
        }
        // Jumps.
        for i in 0..5u16 {
            assert!(!feed(&mut e, &rtp(0, i.wrapping_mul(1000), 160, 10)));
        }
        // Timestamp jumps.
        for i in 0..5u16 {
            assert!(!feed(&mut e, &rtp(0, i, u32::from(i) << 30, 11)));
        }
        assert!(!e.rtp_confirmed());
        // A single RTCP packet; the same sender again confirms.
        let rr = [0x81, 201, 0, 1, 1, 2, 3, 4];
        assert!(!e.observe_rtcp(&parse_rtcp(&rr).unwrap()));
        assert!(e.observe_rtcp(&parse_rtcp(&rr).unwrap()));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_rtp(&bytes);
            let _ = parse_rtcp(&bytes);
        }
    }
}
