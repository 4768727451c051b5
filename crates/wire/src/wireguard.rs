//! WireGuard message shapes (the WireGuard whitepaper, section 5.4): a type byte, three
//! reserved zero bytes, and a fixed length per type.

/// Initiation length (whitepaper section 5.4.2).
pub const INITIATION_LEN: usize = 148;
/// Response length (section 5.4.3).
pub const RESPONSE_LEN: usize = 92;
/// Cookie reply length (section 5.4.7).
pub const COOKIE_REPLY_LEN: usize = 64;
/// Smallest transport data message: 16-byte header + empty payload's 16-byte tag (keepalive).
pub const MIN_TRANSPORT_LEN: usize = 32;

/// A WireGuard message, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Type 1: handshake initiation.
    Initiation { sender: u32 },
    /// Type 2: handshake response.
    Response { sender: u32, receiver: u32 },
    /// Type 3: cookie reply.
    CookieReply { receiver: u32 },
    /// Type 4: transport data; `counter` is the 64-bit little-endian nonce counter.
    Transport { receiver: u32, counter: u64, payload_len: usize },
}

impl Message {
    pub const fn is_handshake(&self) -> bool {
        matches!(self, Message::Initiation { .. } | Message::Response { .. })
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Classifies a UDP payload by WireGuard's message shapes. Indices are little-endian.
pub fn parse(buf: &[u8]) -> Option<Message> {
    // Section 5.4: `type` (1 byte) then `reserved` (3 bytes of zero).
    let (&typ, rest) = buf.split_first()?;
    if rest.get(..3)? != [0, 0, 0] {
        return None;
    }
    match (typ, buf.len()) {
        (1, INITIATION_LEN) => Some(Message::Initiation { sender: le32(buf, 4)? }),
        (2, RESPONSE_LEN) => {
            Some(Message::Response { sender: le32(buf, 4)?, receiver: le32(buf, 8)? })
        }
        (3, COOKIE_REPLY_LEN) => Some(Message::CookieReply { receiver: le32(buf, 4)? }),
        (4, n) if n >= MIN_TRANSPORT_LEN => Some(Message::Transport {
            receiver: le32(buf, 4)?,
            counter: u64::from_le_bytes(buf.get(8..16)?.try_into().ok()?),
            payload_len: n - 16,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn initiation() -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0x78, 0x56, 0x34, 0x12];
        b.resize(INITIATION_LEN, 0xa5);
        b
    }

    #[test]
    fn shapes() {
        assert_eq!(parse(&initiation()), Some(Message::Initiation { sender: 0x1234_5678 }));
        let mut r = vec![2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0];
        r.resize(RESPONSE_LEN, 7);
        assert_eq!(parse(&r), Some(Message::Response { sender: 1, receiver: 2 }));
        let mut c = vec![3, 0, 0, 0, 9, 0, 0, 0];
        c.resize(COOKIE_REPLY_LEN, 0);
        assert_eq!(parse(&c), Some(Message::CookieReply { receiver: 9 }));
        let mut d = vec![4, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        d.resize(32, 0x11);
        assert_eq!(
            parse(&d),
            Some(Message::Transport { receiver: 9, counter: 5, payload_len: 16 })
        );
    }

    #[test]
    fn near_misses() {
        let mut b = initiation();
        b.pop();
        assert_eq!(parse(&b), None, "147 bytes is not an initiation");
        let mut b = initiation();
        b[2] = 1;
        assert_eq!(parse(&b), None, "reserved bytes must be zero");
        assert_eq!(
            parse(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None,
            "transport shorter than 32"
        );
        assert_eq!(parse(&[5, 0, 0, 0]), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
