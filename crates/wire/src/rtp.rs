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

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_rtp(&bytes);
            let _ = parse_rtcp(&bytes);
        }
    }
}
