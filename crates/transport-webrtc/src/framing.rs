//! TURN message framing over a byte stream (RFC 8656 §12.5), sans I/O.
//!
//! Over UDP every datagram is one STUN or ChannelData message. Over TCP and TLS the messages
//! follow each other on one stream, delimited by their own length fields:
//! - a STUN message (first two bits `00`, RFC 8489 §5) is 20 header bytes plus the length field,
//!   which is always a multiple of 4;
//! - a ChannelData message (first byte 0x40..=0x4F, channel numbers 0x4000..=0x4FFF, RFC 8656
//!   §12.4) is 4 header bytes plus the length field, and over a stream it "MUST be padded to a
//!   multiple of four bytes"; the padding is not counted in the length field (RFC 8656 §12.5).
//!
//! [`frame_for_stream`] turns one datagram into its stream form; [`Deframer`] splits a stream
//! back into datagrams. Neither allocates more than one message, reads a clock or panics. The
//! demultiplexing, header sizes and ChannelData padding are `callwall_wire::stun`'s.

use callwall_wire::stun::{self, ChannelData, Demux, CHANNEL_DATA_HEADER_LEN};

/// Why bytes could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("not a stun or channeldata message (first byte {0:#04x})")]
    UnknownMessage(u8),
    #[error("message shorter than its header ({0} bytes)")]
    Truncated(usize),
    #[error("stun length {0} is not a multiple of 4 (RFC 8489 §5)")]
    BadStunLength(u16),
}

/// What a message is, from its first byte (RFC 7983 §7 demultiplexing, as RFC 8656 §12 uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stun,
    ChannelData,
}

fn kind(first: u8) -> Result<Kind, FramingError> {
    match stun::demux(first) {
        Demux::Stun => Ok(Kind::Stun),
        Demux::ChannelData => Ok(Kind::ChannelData),
        _ => Err(FramingError::UnknownMessage(first)),
    }
}

/// The size of the message at the start of `header` (at least 4 bytes) as
/// `(message length, length on a stream)`.
fn sizes(header: &[u8]) -> Result<(usize, usize), FramingError> {
    let first = *header.first().ok_or(FramingError::Truncated(0))?;
    if header.len() < 4 {
        return Err(FramingError::Truncated(header.len()));
    }
    let len = u16::from_be_bytes([header[2], header[3]]);
    match kind(first)? {
        Kind::Stun => {
            if !len.is_multiple_of(4) {
                return Err(FramingError::BadStunLength(len));
            }
            let total = stun::HEADER_LEN + usize::from(len);
            Ok((total, total))
        }
        Kind::ChannelData => {
            let total = CHANNEL_DATA_HEADER_LEN + usize::from(len);
            Ok((total, total.next_multiple_of(4)))
        }
    }
}

/// Returns `datagram` as it must go on a TCP or TLS stream: STUN unchanged, ChannelData padded
/// with zeros to a multiple of 4 (RFC 8656 §12.5). Any padding already present is kept only up to
/// that length.
pub fn frame_for_stream(datagram: &[u8]) -> Result<Vec<u8>, FramingError> {
    let (message, on_stream) = sizes(datagram)?;
    let message = datagram.get(..message).ok_or(FramingError::Truncated(datagram.len()))?;
    let mut out = Vec::with_capacity(on_stream);
    match kind(message[0])? {
        Kind::Stun => out.extend_from_slice(message),
        Kind::ChannelData => {
            let channel = u16::from_be_bytes([message[0], message[1]]);
            let data = &message[CHANNEL_DATA_HEADER_LEN..];
            ChannelData { channel, data }.emit(&mut out, true);
        }
    }
    Ok(out)
}

/// Splits a TURN stream into datagrams. Feed it with [`Deframer::push`], drain it with
/// [`Deframer::next_datagram`]. ChannelData comes out without its stream padding.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. An error means the
    /// stream is out of sync and must be closed.
    pub fn next_datagram(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        if self.buf.len() < 4 {
            // Check the first byte early, so garbage fails fast.
            if let Some(&first) = self.buf.first() {
                kind(first)?;
            }
            return Ok(None);
        }
        let (message, on_stream) = sizes(&self.buf)?;
        if self.buf.len() < on_stream {
            return Ok(None);
        }
        let datagram = self.buf[..message].to_vec();
        self.buf.drain(..on_stream);
        Ok(Some(datagram))
    }

    /// Bytes held that do not yet form a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN Binding request with no attributes (RFC 8489 §5).
    const BINDING: [u8; 20] =
        [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    /// ChannelData on channel 0x4001 with a 5-byte payload, unpadded as over UDP.
    const CHANNEL_5: [u8; 9] = [0x40, 0x01, 0x00, 0x05, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE];

    #[test]
    fn test_messages_are_what_the_wire_codec_writes() {
        let binding =
            callwall_wire::stun::StunRepr::binding_request(BINDING[8..].try_into().unwrap());
        assert_eq!(binding.to_bytes(), BINDING);
        let cd = ChannelData { channel: 0x4001, data: &CHANNEL_5[4..] };
        assert_eq!(cd.to_bytes(false), CHANNEL_5);
    }

    #[test]
    fn stun_goes_unchanged() {
        assert_eq!(frame_for_stream(&BINDING).expect("frame"), BINDING.to_vec());
    }

    #[test]
    fn channel_data_is_padded_to_four() {
        let f = frame_for_stream(&CHANNEL_5).expect("frame");
        assert_eq!(f.len(), 12);
        assert_eq!(&f[..9], &CHANNEL_5);
        assert_eq!(&f[9..], &[0, 0, 0]);
        // Already padded over UDP: the padding is kept, not doubled.
        let mut padded = CHANNEL_5.to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(frame_for_stream(&padded).expect("frame"), f);
    }

    #[test]
    fn deframer_splits_across_arbitrary_reads() {
        let mut stream = Vec::new();
        stream.extend(frame_for_stream(&BINDING).expect("frame"));
        stream.extend(frame_for_stream(&CHANNEL_5).expect("frame"));
        stream.extend(frame_for_stream(&BINDING).expect("frame"));
        for chunk in 1..stream.len() {
            let mut d = Deframer::new();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Some(m) = d.next_datagram().expect("in sync") {
                    out.push(m);
                }
            }
            assert_eq!(out, vec![BINDING.to_vec(), CHANNEL_5.to_vec(), BINDING.to_vec()]);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Deframer::new();
        d.push(&[0x16, 0x03, 0x01]);
        assert_eq!(d.next_datagram(), Err(FramingError::UnknownMessage(0x16)));
        assert_eq!(frame_for_stream(&[0x40]), Err(FramingError::Truncated(1)));
        assert_eq!(frame_for_stream(&[0x40, 0, 0, 8, 1]), Err(FramingError::Truncated(5)));
        assert_eq!(frame_for_stream(&[0, 1, 0, 3]), Err(FramingError::BadStunLength(3)));
        for len in 0..64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let _ = frame_for_stream(&bytes);
            let mut d = Deframer::new();
            d.push(&bytes);
            let _ = d.next_datagram();
        }
    }
}
