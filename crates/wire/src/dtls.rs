//! DTLS records (RFC 6347 section 4.1, RFC 9147 section 4) and the handshake messages a censor
//! reads in the clear: ClientHello, ServerHello and HelloVerifyRequest (RFC 6347 section 4.2).
//!
//! A ClientHello's fingerprint ([`crate::tls::ClientHello::fingerprint`] with kind `d`) tells
//! implementations apart (webrtc-rs, pion, browsers): see that function for what goes in.

use crate::reader::Reader;
use crate::tls::{self, ClientHello, ServerHello};
use std::fmt;

/// DTLS 1.0 record version (RFC 4347).
pub const VERSION_1_0: u16 = 0xfeff;
/// DTLS 1.2 record version (RFC 6347); DTLS 1.3 keeps it as legacy_record_version.
pub const VERSION_1_2: u16 = 0xfefd;
/// Length of the DTLS record header.
pub const RECORD_HEADER_LEN: usize = 13;
/// Length of the DTLS handshake header (RFC 6347 section 4.2.2).
pub const HANDSHAKE_HEADER_LEN: usize = 12;

/// Content types (RFC 6347 section 4.1, IANA).
pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

/// Why bytes are not a DTLS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsError {
    Truncated,
    /// Content type outside 20-23.
    BadContentType,
    /// Version neither FE FF nor FE FD.
    BadVersion,
    /// The length field points past the datagram.
    BadLength,
    /// Not a handshake record, or not the handshake message asked for.
    WrongHandshake,
    /// The handshake message is fragmented across records (RFC 6347 section 4.2.3); only
    /// the first fragment is in this record.
    Fragmented,
    /// The hello body is malformed.
    BadHello(tls::HelloError),
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtlsError::Truncated => f.write_str("truncated dtls record"),
            DtlsError::BadContentType => f.write_str("dtls content type outside 20-23"),
            DtlsError::BadVersion => f.write_str("dtls version is neither fe ff nor fe fd"),
            DtlsError::BadLength => f.write_str("dtls record length past the datagram"),
            DtlsError::WrongHandshake => f.write_str("not the expected dtls handshake message"),
            DtlsError::Fragmented => f.write_str("dtls handshake message is fragmented"),
            DtlsError::BadHello(e) => write!(f, "dtls hello: {e}"),
        }
    }
}

impl std::error::Error for DtlsError {}

/// A DTLS record (plaintext header form, RFC 6347 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    pub version: u16,
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
    pub fragment: &'a [u8],
}

/// Parses the record at the start of `buf`; returns it and the bytes after it (several
/// records may share a datagram, RFC 6347 section 4.1.1).
pub fn parse_record(buf: &[u8]) -> Result<(Record<'_>, &[u8]), DtlsError> {
    let mut r = Reader::new(buf);
    let content_type = r.u8().ok_or(DtlsError::Truncated)?;
    // RFC 6347 section 4.1: ContentType change_cipher_spec(20), alert(21), handshake(22),
    // application_data(23).
    if !(20..=23).contains(&content_type) {
        return Err(DtlsError::BadContentType);
    }
    let version = r.u16().ok_or(DtlsError::Truncated)?;
    // RFC 6347 section 4.1: DTLS 1.0 is {254, 255}, DTLS 1.2 is {254, 253}.
    if version != VERSION_1_0 && version != VERSION_1_2 {
        return Err(DtlsError::BadVersion);
    }
    let epoch = r.u16().ok_or(DtlsError::Truncated)?;
    let seq = r.take(6).ok_or(DtlsError::Truncated)?;
    let sequence = seq.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let len = r.u16().ok_or(DtlsError::Truncated)?;
    let fragment = r.take(usize::from(len)).ok_or(DtlsError::BadLength)?;
    Ok((Record { content_type, version, epoch, sequence, fragment }, r.rest()))
}

/// Iterates over the records of a datagram; stops at the first bad one.
pub fn records(buf: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let (rec, r) = parse_record(rest).ok()?;
        rest = r;
        Some(rec)
    })
}

/// True when every byte of the datagram is whole, valid DTLS records.
pub fn is_dtls_datagram(buf: &[u8]) -> bool {
    let mut rest = buf;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match parse_record(rest) {
            Ok((_, r)) => rest = r,
            Err(_) => return false,
        }
    }
    true
}

/// The DTLS handshake header (RFC 6347 section 4.2.2) at offset 13 of a handshake record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake<'a> {
    pub msg_type: u8,
    /// Length of the whole message.
    pub length: u32,
    pub message_seq: u16,
    pub fragment_offset: u32,
    pub fragment_length: u32,
    /// The fragment in this record.
    pub body: &'a [u8],
}

impl Handshake<'_> {
    /// True when this record holds the whole message.
    pub fn is_whole(&self) -> bool {
        self.fragment_offset == 0 && self.fragment_length == self.length
    }
}

/// Reads the handshake header of an epoch-0 handshake record.
pub fn parse_handshake<'a>(rec: &Record<'a>) -> Result<Handshake<'a>, DtlsError> {
    if rec.content_type != content::HANDSHAKE {
        return Err(DtlsError::WrongHandshake);
    }
    let mut r = Reader::new(rec.fragment);
    let msg_type = r.u8().ok_or(DtlsError::Truncated)?;
    let length = r.u24().ok_or(DtlsError::Truncated)?;
    let message_seq = r.u16().ok_or(DtlsError::Truncated)?;
    let fragment_offset = r.u24().ok_or(DtlsError::Truncated)?;
    let fragment_length = r.u24().ok_or(DtlsError::Truncated)?;
    let body = r.take(fragment_length as usize).ok_or(DtlsError::Truncated)?;
    Ok(Handshake { msg_type, length, message_seq, fragment_offset, fragment_length, body })
}

/// The handshake type at offset 13 of a datagram, if it starts with a DTLS handshake record
/// in epoch 0 (a cheap peek: 1 ClientHello, 2 ServerHello, 3 HelloVerifyRequest).
pub fn handshake_type(buf: &[u8]) -> Option<u8> {
    let (rec, _) = parse_record(buf).ok()?;
    if rec.content_type != content::HANDSHAKE || rec.epoch != 0 {
        return None;
    }
    rec.fragment.first().copied()
}

/// Finds the ClientHello in the first record of a datagram (it must be whole there).
pub fn client_hello(buf: &[u8]) -> Result<ClientHello<'_>, DtlsError> {
    let (rec, _) = parse_record(buf)?;
    let hs = parse_handshake(&rec)?;
    if hs.msg_type != tls::handshake::CLIENT_HELLO {
        return Err(DtlsError::WrongHandshake);
    }
    if !hs.is_whole() {
        return Err(DtlsError::Fragmented);
    }
    ClientHello::parse(hs.body, true).map_err(DtlsError::BadHello)
}

/// Finds the ServerHello among the records of a datagram (a server flight often packs
/// ServerHello, Certificate, ... in one datagram).
pub fn server_hello(buf: &[u8]) -> Result<ServerHello<'_>, DtlsError> {
    for rec in records(buf) {
        if rec.epoch != 0 {
            break;
        }
        let Ok(hs) = parse_handshake(&rec) else { continue };
        if hs.msg_type == tls::handshake::SERVER_HELLO {
            if !hs.is_whole() {
                return Err(DtlsError::Fragmented);
            }
            return ServerHello::parse(hs.body).map_err(DtlsError::BadHello);
        }
    }
    Err(DtlsError::WrongHandshake)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::ext;
    use proptest::prelude::*;

    /// A DTLS 1.2 ClientHello record shaped like pion's or webrtc-rs's.
    pub(crate) fn client_hello_record(suites: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[3; 32]);
        body.push(0); // session id
        body.push(0); // cookie
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut e = Vec::new();
        for (t, v) in exts {
            e.extend_from_slice(&t.to_be_bytes());
            e.extend_from_slice(&(v.len() as u16).to_be_bytes());
            e.extend_from_slice(v);
        }
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        handshake_record(1, &body)
    }

    pub(crate) fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut hs = vec![msg_type];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&[0, 0, 0, 0, 0]);
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(body);
        let mut rec = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    pub(crate) fn pion_like() -> Vec<u8> {
        client_hello_record(
            &[0xc02b, 0xc02f, 0xc00a, 0xc014],
            &[
                (ext::SUPPORTED_GROUPS, vec![0, 4, 0, 0x1d, 0, 0x17]),
                (ext::EC_POINT_FORMATS, vec![1, 0]),
                (ext::SIGNATURE_ALGORITHMS, vec![0, 4, 4, 3, 8, 4]),
                (ext::USE_SRTP, vec![0, 4, 0, 7, 0, 1, 0]),
                (ext::EXTENDED_MASTER_SECRET, vec![]),
                (ext::RENEGOTIATION_INFO, vec![0]),
            ],
        )
    }

    #[test]
    fn client_hello_fields_and_fingerprint() {
        let b = pion_like();
        assert_eq!(handshake_type(&b), Some(1));
        assert!(is_dtls_datagram(&b));
        let ch = client_hello(&b).unwrap();
        assert_eq!(ch.legacy_version, VERSION_1_2);
        assert_eq!(ch.cookie, Some(&[][..]));
        assert_eq!(ch.srtp_profiles().collect::<Vec<_>>(), vec![7, 1]);
        assert_eq!(
            ch.fingerprint('d'),
            "dfefd|c02b,c02f,c00a,c014|000a,000b,000d,000e,0017,ff01|001d,0017|0403,0804|0000|0007,0001|-"
        );
        // A different implementation (other suites) gets another fingerprint.
        let other = client_hello_record(&[0xc02b, 0xcca9], &[]);
        assert_ne!(client_hello(&other).unwrap().fingerprint_hash('d'), ch.fingerprint_hash('d'));
    }

    #[test]
    fn server_hello_in_a_flight() {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[5; 32]);
        body.push(0);
        body.extend_from_slice(&[0xc0, 0x2b, 0]);
        body.extend_from_slice(&[0, 6, 0, 10, 0, 2, 0, 0x1d]);
        let mut dg = handshake_record(2, &body);
        dg.extend_from_slice(&handshake_record(11, &[0; 20]));
        assert_eq!(handshake_type(&dg), Some(2));
        let sh = server_hello(&dg).unwrap();
        assert_eq!(sh.cipher_suite, 0xc02b);
        assert_eq!(sh.extensions().map(|e| e.0).collect::<Vec<_>>(), vec![10]);
        assert_eq!(records(&dg).count(), 2);
    }

    #[test]
    fn near_misses() {
        let good = pion_like();
        let mut b = good.clone();
        b[1..3].copy_from_slice(&[0x03, 0x03]); // TLS version, not DTLS
        assert_eq!(parse_record(&b).map(|_| ()), Err(DtlsError::BadVersion));
        let mut b = good.clone();
        b[0] = 24;
        assert_eq!(parse_record(&b).map(|_| ()), Err(DtlsError::BadContentType));
        let mut b = good.clone();
        b[12] = b[12].wrapping_add(1);
        assert_eq!(parse_record(&b).map(|_| ()), Err(DtlsError::BadLength));
        let mut b = good.clone();
        b.push(0);
        assert!(!is_dtls_datagram(&b));
        // Fragmented ClientHello.
        let mut b = good;
        b[13 + 11] = b[13 + 11].wrapping_sub(1);
        assert!(client_hello(&b).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = records(&bytes).count();
            let _ = is_dtls_datagram(&bytes);
            let _ = client_hello(&bytes).map(|c| c.fingerprint_hash('d'));
            let _ = server_hello(&bytes);
        }

        #[test]
        fn mutated_never_panics(idx in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
            let mut b = pion_like();
            let i = idx % b.len();
            b[i] = val;
            b.truncate(cut);
            let _ = client_hello(&b).map(|c| (c.fingerprint('d'), c.sni()));
        }
    }
}
