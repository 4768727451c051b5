//! DTLS records (RFC 6347 section 4.1, RFC 9147 section 4) and the handshake messages a censor
//! reads in the clear: ClientHello, ServerHello and HelloVerifyRequest (RFC 6347 section 4.2).
//!
//! A ClientHello's fingerprint ([`crate::tls::ClientHello::fingerprint`] with kind `d`) tells
//! implementations apart (webrtc-rs, pion, browsers): see that function for what goes in.

use crate::reader::Reader;
use crate::tls::{self, ClientHello, Reassembly, ServerHello};
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

/// Most distinct byte ranges a [`HelloReassembler`] keeps apart before giving up (a hello
/// cut into more pieces than this is not a browser's or a library's, it is an evasion attempt
/// or garbage, and is reported as [`Reassembly::TooLarge`]).
pub const MAX_HELLO_FRAGMENTS: usize = 32;

/// Reassembles a DTLS ClientHello from its handshake fragments (RFC 6347 section 4.2.3),
/// across the records of one datagram and across datagrams, in any order, duplicates and
/// overlaps included (retransmissions repeat fragments).
///
/// Chromium's hello with a post-quantum key share (X25519MLKEM768, 1.2 KB of key) does not
/// fit one datagram and comes as two fragments in two datagrams; without this no fingerprint
/// is possible. Bounded: at most `limit` bytes of hello and [`MAX_HELLO_FRAGMENTS`] disjoint
/// pieces; the first ClientHello `message_seq` seen is the one assembled (fragments of a later
/// hello, sent after a HelloVerifyRequest, are ignored until the first is whole).
///
/// Pure and sans-I/O: feed datagrams with [`HelloReassembler::push`], read the hello with
/// [`HelloReassembler::client_hello`] once it says [`Reassembly::Complete`].
#[derive(Debug, Clone)]
pub struct HelloReassembler {
    limit: usize,
    /// Length and message_seq of the hello being assembled, once a fragment was seen.
    msg: Option<(u32, u16)>,
    body: Vec<u8>,
    /// Disjoint, sorted [start, end) ranges of `body` received so far.
    have: Vec<(u32, u32)>,
    state: Reassembly,
    /// Fragments taken (each ClientHello handshake fragment counts once, duplicates too).
    pub fragments: u32,
}

impl HelloReassembler {
    pub fn new(limit: usize) -> Self {
        HelloReassembler {
            limit,
            msg: None,
            body: Vec::new(),
            have: Vec::new(),
            state: Reassembly::NeedMore,
            fragments: 0,
        }
    }

    /// The state after the last push.
    pub fn state(&self) -> Reassembly {
        self.state
    }

    /// Takes the ClientHello fragments of one datagram. Records that are not epoch-0
    /// handshake records are skipped; a datagram that is not DTLS changes nothing.
    pub fn push(&mut self, datagram: &[u8]) -> Reassembly {
        if self.state != Reassembly::NeedMore {
            return self.state;
        }
        for rec in records(datagram) {
            if rec.content_type != content::HANDSHAKE || rec.epoch != 0 {
                continue;
            }
            // RFC 6347 section 4.2.3: a record may carry several handshake fragments.
            let mut rest = rec.fragment;
            while !rest.is_empty() {
                let Some((hs, r)) = next_handshake(rest) else { break };
                rest = r;
                if hs.msg_type != tls::handshake::CLIENT_HELLO {
                    continue;
                }
                self.take(&hs);
                if self.state != Reassembly::NeedMore {
                    return self.state;
                }
            }
        }
        self.state
    }

    fn take(&mut self, hs: &Handshake<'_>) {
        self.fragments = self.fragments.saturating_add(1);
        let (len, seq) = *self.msg.get_or_insert((hs.length, hs.message_seq));
        if hs.message_seq != seq {
            return;
        }
        let start = hs.fragment_offset;
        let end = start.saturating_add(hs.fragment_length);
        // A fragment must lie inside the message it claims to be part of.
        if hs.length != len || end > len {
            self.state = Reassembly::NotClientHello;
            return;
        }
        if len as usize > self.limit {
            self.state = Reassembly::TooLarge;
            return;
        }
        if self.body.len() != len as usize {
            self.body.resize(len as usize, 0);
        }
        self.body[start as usize..end as usize].copy_from_slice(hs.body);
        if start < end {
            // Insert [start, end) and merge touching ranges.
            let mut merged = (start, end);
            self.have.retain(|&(s, e)| {
                if e < merged.0 || s > merged.1 {
                    true
                } else {
                    merged = (merged.0.min(s), merged.1.max(e));
                    false
                }
            });
            let at = self.have.partition_point(|&(s, _)| s < merged.0);
            self.have.insert(at, merged);
            if self.have.len() > MAX_HELLO_FRAGMENTS {
                self.state = Reassembly::TooLarge;
                return;
            }
        }
        if self.have.first() == Some(&(0, len)) {
            self.state = match ClientHello::parse(&self.body, true) {
                Ok(_) => Reassembly::Complete,
                Err(_) => Reassembly::NotClientHello,
            };
        }
    }

    /// The reassembled hello, once [`Reassembly::Complete`].
    pub fn client_hello(&self) -> Option<ClientHello<'_>> {
        if self.state != Reassembly::Complete {
            return None;
        }
        ClientHello::parse(&self.body, true).ok()
    }
}

/// The handshake fragment at the start of `buf` and the bytes after it.
fn next_handshake(buf: &[u8]) -> Option<(Handshake<'_>, &[u8])> {
    let mut r = Reader::new(buf);
    let msg_type = r.u8()?;
    let length = r.u24()?;
    let message_seq = r.u16()?;
    let fragment_offset = r.u24()?;
    let fragment_length = r.u24()?;
    let body = r.take(fragment_length as usize)?;
    Some((
        Handshake { msg_type, length, message_seq, fragment_offset, fragment_length, body },
        r.rest(),
    ))
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

    /// The body of a whole one-record ClientHello datagram.
    pub(crate) fn hello_body(datagram: &[u8]) -> Vec<u8> {
        datagram[RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN..].to_vec()
    }

    /// One handshake fragment of `body` (a ClientHello of `body.len()` bytes), no record.
    pub(crate) fn fragment(seq: u16, body: &[u8], range: std::ops::Range<usize>) -> Vec<u8> {
        let mut hs = vec![tls::handshake::CLIENT_HELLO];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&seq.to_be_bytes());
        hs.extend_from_slice(&(range.start as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&(range.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body[range]);
        hs
    }

    /// A DTLS 1.0 epoch-0 handshake record around `fragments`.
    pub(crate) fn record_of(fragments: &[Vec<u8>]) -> Vec<u8> {
        let payload: Vec<u8> = fragments.concat();
        let mut rec = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 1];
        rec.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        rec.extend_from_slice(&payload);
        rec
    }

    #[test]
    fn fragmented_hello_reassembles_in_any_order() {
        let whole = pion_like();
        let want = client_hello(&whole).unwrap().fingerprint('d');
        let body = hello_body(&whole);
        let n = body.len();
        // The whole datagram still works through the reassembler.
        let mut r = HelloReassembler::new(4096);
        assert_eq!(r.push(&whole), Reassembly::Complete);
        assert_eq!(r.client_hello().unwrap().fingerprint('d'), want);
        // Two datagrams (Chromium's post-quantum hello), second first, with a duplicate.
        let a = record_of(&[fragment(0, &body, 0..40)]);
        let b = record_of(&[fragment(0, &body, 40..n)]);
        assert_eq!(client_hello(&a), Err(DtlsError::Fragmented));
        let mut r = HelloReassembler::new(4096);
        assert_eq!(r.push(&b), Reassembly::NeedMore);
        assert_eq!(r.push(&b), Reassembly::NeedMore);
        assert!(r.client_hello().is_none());
        assert_eq!(r.push(&a), Reassembly::Complete);
        assert_eq!(r.client_hello().unwrap().fingerprint('d'), want);
        // Overlapping fragments in two records of one datagram, and two fragments in one record.
        let mut dg = record_of(&[fragment(0, &body, 0..30), fragment(0, &body, 20..50)]);
        dg.extend_from_slice(&record_of(&[fragment(0, &body, 45..n)]));
        let mut r = HelloReassembler::new(4096);
        assert_eq!(r.push(&dg), Reassembly::Complete);
        assert_eq!(r.client_hello().unwrap().fingerprint('d'), want);
        // A fragment of a later hello (message_seq 1) does not mix in.
        let mut r = HelloReassembler::new(4096);
        r.push(&a);
        assert_eq!(r.push(&record_of(&[fragment(1, &body, 40..n)])), Reassembly::NeedMore);
        assert_eq!(r.push(&b), Reassembly::Complete);
    }

    #[test]
    fn fragmented_hello_bounds() {
        let body = hello_body(&pion_like());
        let n = body.len();
        let mut r = HelloReassembler::new(n - 1);
        assert_eq!(r.push(&record_of(&[fragment(0, &body, 0..10)])), Reassembly::TooLarge);
        // Too many disjoint pieces: every other byte.
        let mut r = HelloReassembler::new(4096);
        let mut last = Reassembly::NeedMore;
        for i in (0..n).step_by(2) {
            last = r.push(&record_of(&[fragment(0, &body, i..i + 1)]));
        }
        assert_eq!(last, Reassembly::TooLarge);
        // A fragment past the message's end.
        let mut f = fragment(0, &body, 0..10);
        f[6..9].copy_from_slice(&(n as u32).to_be_bytes()[1..]);
        let mut r = HelloReassembler::new(4096);
        assert_eq!(r.push(&record_of(&[f])), Reassembly::NotClientHello);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = records(&bytes).count();
            let _ = is_dtls_datagram(&bytes);
            let _ = client_hello(&bytes).map(|c| c.fingerprint_hash('d'));
            let _ = server_hello(&bytes);
            let mut r = HelloReassembler::new(4096);
            r.push(&bytes);
            r.push(&bytes);
            let _ = r.client_hello().map(|c| c.fingerprint_hash('d'));
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
