//! A cheap DNS message check (RFC 1035 section 4.1): header, one question whose name is a
//! well-formed sequence of labels. Used to label UDP and TCP flows; it does not decode records.

use crate::reader::Reader;

/// True when `msg` (a UDP payload, or a TCP message without its 2-byte length) looks like a
/// DNS query or response with exactly one question.
pub fn looks_like_dns(msg: &[u8]) -> bool {
    let mut r = Reader::new(msg);
    let (Some(_id), Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) =
        (r.u16(), r.u16(), r.u16(), r.u16(), r.u16(), r.u16())
    else {
        return false;
    };
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    // RFC 1035 section 4.1.1: opcode 0-2 (and 4 NOTIFY, 5 UPDATE); Z must be zero
    // (RFC 6840 took two of its bits for AD and CD, so only bit 6 of byte 3 is checked).
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || flags & 0x0040 != 0 || qd != 1 {
        return false;
    }
    if !response && (an != 0 || ns != 0 || ar > 1) {
        return false;
    }
    // RFC 1035 section 4.1.2: QNAME as labels of at most 63 bytes, at most 255 in all.
    let mut total = 0usize;
    loop {
        let Some(len) = r.u8() else { return false };
        if len == 0 {
            break;
        }
        if len > 63 || r.skip(usize::from(len)).is_none() {
            return false;
        }
        total += usize::from(len) + 1;
        if total > 255 {
            return false;
        }
    }
    // QTYPE and QCLASS; QCLASS IN(1), CH(3), HS(4), ANY(255), or the mDNS unicast bit.
    let (Some(_qtype), Some(qclass)) = (r.u16(), r.u16()) else { return false };
    if !matches!(qclass & 0x7fff, 1 | 3 | 4 | 255) {
        return false;
    }
    // A plain query ends here (or carries one EDNS OPT record).
    response || ar == 1 || r.is_empty()
}

/// DNS over TCP (RFC 1035 section 4.2.2): a 2-byte length, then the message.
pub fn looks_like_dns_tcp(segment: &[u8]) -> bool {
    match segment {
        [hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            len >= 12 && len >= rest.len() && looks_like_dns(&rest[..rest.len().min(len)])
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn query() -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        q
    }

    #[test]
    fn queries() {
        assert!(looks_like_dns(&query()));
        let mut t = (query().len() as u16).to_be_bytes().to_vec();
        t.extend_from_slice(&query());
        assert!(looks_like_dns_tcp(&t));
        let mut q = query();
        q.push(0);
        assert!(!looks_like_dns(&q), "trailing byte in a plain query");
        let mut q = query();
        q[5] = 2;
        assert!(!looks_like_dns(&q));
        assert!(!looks_like_dns(b"GET / HTTP/1.1\r\n\r\n"));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = looks_like_dns(&bytes);
            let _ = looks_like_dns_tcp(&bytes);
        }
    }
}
